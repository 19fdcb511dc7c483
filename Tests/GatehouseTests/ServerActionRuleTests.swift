import Foundation
@testable import GatehouseAuth
import GatehouseConfig
@testable import GatehouseCore
import GatehouseEngine
import Testing

/// `when:` conditions on rules: Next.js server actions get their own requirements, separate from the page.
@Suite struct ServerActionRuleTests {
    static let yaml = """
        clerk:
          publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k
          jwks_file: jwks.json
        sign_in_url: /sign-in
        routes:
          - name: settings-actions
            match: ["/settings(.*)"]
            when: { server_action: true }
            require: { org_role: admin }
          - name: beta-pages
            match: ["/beta(.*)"]
            when: { headers: { x-beta: { one_of: ["1", "yes"] }, accept: { contains: TEXT/HTML } } }
            access: public
          - name: pages
            match: ["/settings(.*)", "/", "/beta(.*)"]
            access: public
        default: protected
        """

    static let admin = (id: "org_1", slug: "acme", role: "org:admin", permissions: [String]())
    static let member = (id: "org_1", slug: "acme", role: "org:member", permissions: [String]())

    func run(_ path: String, method: String = "GET", headers: [(String, String)] = [], org: (id: String, slug: String, role: String, permissions: [String])?? = nil) async throws -> Evaluation {
        let g = try Fixtures.gatekeeper(ServerActionRuleTests.yaml)
        var all = headers
        if let org { all.append(("Authorization", "Bearer \(Fixtures.token("user_1", org: org))")) }
        return await g.evaluate(path, method: method, headers: all)
    }

    @Test func thePageIsPublicButItsActionsNeedTheRole() async throws {
        #expect(try await run("/settings").route?.name == "pages")
        #expect(try await run("/settings", method: "POST").route?.name == "pages")
        let action: [(String, String)] = [("Next-Action", "7f3a"), ("Accept", "text/x-component")]
        #expect(try await run("/settings", method: "POST", headers: action).decision.status == 401)
        #expect(try await run("/settings", method: "POST", headers: action, org: .some(ServerActionRuleTests.member)).decision.status == 403)
        let ok = try await run("/settings", method: "POST", headers: action, org: .some(ServerActionRuleTests.admin))
        #expect(ok.decision.action == .proxy)
        #expect(ok.route?.name == "settings-actions")
        #expect(ExplainReport.json(for: ok).value(atPath: ["route", "when"]) == .array(["a Next.js server action"]))
        let beta = try await run("/beta", headers: [("X-Beta", "yes"), ("Accept", "text/html")])
        #expect(ExplainReport.json(for: beta).value(atPath: ["route", "when"]) == .array(["header x-beta one of '1', 'yes'", "header accept contains 'TEXT/HTML'"]))
    }

    @Test(arguments: [
        ("POST", [("next-action", "")], true),  // an empty id still selects the action rule
        ("POST", [("Content-Type", "multipart/form-data; boundary=x")], true),
        ("POST", [("Content-Type", "Application/X-WWW-Form-Urlencoded")], true),  // no-JS form: the id is in the body
        ("POST", [("Content-Type", "application/json")], false),
        ("GET", [("Next-Action", "7f3a")], false),  // Next runs actions only for POST
        ("PUT", [("Next-Action", "7f3a")], false),
    ] as [(String, [(String, String)], Bool)])
    func serverActionDetection(method: String, headers: [(String, String)], isAction: Bool) async throws {
        let e = try await run("/settings", method: method, headers: headers)
        #expect((e.route?.name == "settings-actions") == isAction, "\(method) \(headers)")
    }

    @Test func headerConditionsAllMustHold() async throws {
        #expect(try await run("/beta", headers: [("X-Beta", "yes"), ("Accept", "text/html,*/*")]).route?.name == "beta-pages")
        #expect(try await run("/beta", headers: [("X-Beta", "YES"), ("Accept", "text/html")]).route?.name == "pages")  // equals is exact
        #expect(try await run("/beta", headers: [("X-Beta", "1")]).route?.name == "pages")
        #expect(try await run("/beta", headers: [("X-Beta", "2"), ("X-Beta", "1"), ("Accept", "text/html")]).route?.name == "beta-pages")
    }

    @Test(arguments: [
        [("Next-Action", "7f3a")],
        [("Accept", "text/html, text/x-component")],
        [("Next-Url", "/settings"), ("Content-Type", "multipart/form-data; boundary=x")],
    ])
    func clerkServerActionSignalsGet401NotARedirect(headers: [(String, String)]) async throws {
        let g = try Fixtures.gatekeeper("""
            clerk: { publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k, jwks_file: jwks.json }
            sign_in_url: /sign-in
            routes:
              - { name: app, match: ["/dashboard(.*)"] }
            """)
        let page = await g.evaluate("/dashboard", headers: [("Sec-Fetch-Dest", "document"), ("Accept", "text/html")])
        #expect(page.decision.status == 307)
        let action = await g.evaluate("/dashboard", headers: [("Sec-Fetch-Dest", "document"), ("Accept", "text/html")] + headers)
        #expect(action.decision.status == 401, "\(headers)")
        let post = await g.evaluate("/dashboard", method: "POST", headers: headers)
        #expect(post.decision.status == 401)
    }
}

@Suite struct RequestConditionConfigTests {
    func issues(_ when: String) -> [String] {
        Fixtures.configIssues("""
            clerk: { publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k, jwks_file: jwks.json }
            sign_in_url: /sign-in
            routes:
              - name: r
                match: /x
                when: \(when)
            """).map(\.description)
    }

    @Test func validConditionsLoad() {
        #expect(issues("{ headers: { next-action: present, X-A: absent, b: { equals: v }, c: { one_of: [a, b] }, d: { contains: x } }, server_action: false }") == [])
    }

    @Test(arguments: [
        ("{ headers: { next-action: yes } }", "test.yaml:6:37: routes[0] (r).when.headers.next-action: expected present, absent, { equals: … }, { one_of: […] } or { contains: … }, got 'yes'"),
        ("{ headers: { \"bad name\": present } }", "test.yaml:6:24: routes[0] (r).when.headers: 'bad name' is not a header name (letters, digits and '-')"),
        ("{ headers: { a: present, A: absent } }", "test.yaml:6:36: routes[0] (r).when.headers.A: header named twice (names are case-insensitive)"),
        ("{ headers: { a: { equals: v, contains: w } } }", "test.yaml:6:27: routes[0] (r).when.headers.a: expected present, absent, { equals: … }, { one_of: […] } or { contains: … }"),
        ("{ headers: { a: { one_of: [] } } }", "test.yaml:6:37: routes[0] (r).when.headers.a.one_of: expected a non-empty list of values"),
        ("{ headers: { a: { equals: \"\" } } }", "test.yaml:6:37: routes[0] (r).when.headers.a.equals: expected a non-empty value"),
        ("{ header: { a: present } }", "test.yaml:6:13: routes[0] (r).when.header: unknown key (did you mean 'headers'?)"),
        ("{}", "test.yaml:6:11: routes[0] (r).when: expected headers or server_action"),
        ("{ server_action: maybe }", "test.yaml:6:28: routes[0] (r).when.server_action: expected true or false, got 'maybe'"),
        ("{ headers: {} }", "test.yaml:6:22: routes[0] (r).when.headers: expected a mapping of header name to condition, e.g. { next-action: present }"),
    ])
    func preciseErrors(when: String, expected: String) {
        #expect(issues(when) == [expected])
    }
}
