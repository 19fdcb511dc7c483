import Foundation
@testable import GatehouseAuth
import GatehouseConfig
@testable import GatehouseCore
import GatehouseEngine
import Testing

/// Ownership rules (`require: { params: … }`): route parameters must equal identity values.
@Suite struct OwnershipRuleTests {
    static let yaml = """
        clerk:
          publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k
          jwks_file: jwks.json
        sign_in_url: /sign-in
        routes:
          - name: user-exact
            match: ["/users/:userId"]
            require: { params: { userId: user_id } }
          - name: user-rest
            match: ["/profile/:userId(.*)"]
            require: { params: { userId: user_id } }
          - name: user-sub
            match: ["/people/:userId/(.*)"]
            require: { params: { userId: user_id } }
          - name: org-slug
            match: ["/orgs/:slug/(.*)"]
            require: { params: { slug: org_slug } }
          - name: org-id
            match: ["/api/orgs/:orgId/(.*)", "/api/v2/orgs/:orgId"]
            require: { params: { orgId: org_id }, org_role: admin }
          - name: tenant
            match: ["/t/:tenant/(.*)"]
            require: { params: { tenant: claims.metadata.tenant } }
        default: protected
        """

    static let org = (id: "org_42", slug: "acme", role: "org:admin", permissions: [String]())

    func run(_ path: String, user: String = "user_abc", org: (id: String, slug: String, role: String, permissions: [String])? = OwnershipRuleTests.org,
             extra: JSONObject = JSONObject()) async throws -> Evaluation {
        let g = try Fixtures.gatekeeper(OwnershipRuleTests.yaml)
        let token = Fixtures.token(user, org: org, extra: extra)
        return await g.evaluate(path, headers: [("Authorization", "Bearer \(token)")])
    }

    @Test(arguments: [
        ("/users/user_abc", true), ("/users/user_abc/", true), ("/users/user_other", false),
        // Matching is case-insensitive, the comparison is not: a case variant is someone else (or nobody).
        ("/users/USER_ABC", false), ("/USERS/user_abc", true),
        // decodeURI decodes %5F to `_`: the value is what matching saw, so it equals the user id.
        ("/users/user%5Fabc", true), ("/users/user%5fabc", true),
        // %3A stays encoded under decodeURI (reserved): compared as it stands, so no match.
        ("/users/user%3Aabc", false),
        // Dot segments are resolved before matching, so `..` cannot step around the check.
        ("/users/user_abc/../user_other", false), ("/users/user_other/../user_abc", true),
        ("/users/x/%2e%2e/user_other", false),
    ])
    func userIdMustEqualSub(path: String, allowed: Bool) async throws {
        let e = try await run(path)
        #expect((e.decision.action == .proxy) == allowed, "\(path): \(e.decision.explanation)")
        if !allowed, e.decision.status == 403 { #expect(e.decision.explanation.contains("params.userId")) }
    }

    @Test func aRestParameterCapturesEverythingAfterThePrefix() async throws {
        // `/profile/:userId(.*)` gives userId = "user_abc/settings" for a sub-page: denied (fail closed), as the
        // README says: use `/people/:userId/(.*)` for a user's sub-pages.
        #expect(try await run("/profile/user_abc").decision.action == .proxy)
        let sub = try await run("/profile/user_abc/settings")
        #expect(sub.decision.status == 403)
        #expect(sub.decision.explanation.contains("'user_abc/settings'"))
        #expect(try await run("/people/user_abc/settings").decision.action == .proxy)
        #expect(try await run("/people/user_abcd/settings").decision.status == 403)
        #expect(try await run("/people/user_ab/c/settings").decision.status == 403)
    }

    @Test func encodedSlashOrTraversalIsRefusedBeforeTheCheck() async throws {
        // `%2F` would keep the parameter one segment long while the app decodes it into two.
        for path in ["/users/user_abc%2F..%2Fuser_other", "/orgs/acme%2F..%2Fother/x", "/users/user_abc%252F"] {
            let e = try await run(path)
            #expect(e.decision.action != .proxy, "\(path): \(e.decision.explanation)")
        }
    }

    @Test(arguments: [
        ("/orgs/acme/settings", true), ("/orgs/ACME/settings", false), ("/orgs/acm%65/settings", true),
        ("/orgs/other/settings", false), ("/orgs/acme/../other/settings", false),
    ])
    func orgSlugMustEqualTheActiveOrganization(path: String, allowed: Bool) async throws {
        let e = try await run(path)
        #expect((e.decision.action == .proxy) == allowed, "\(path): \(e.decision.explanation)")
    }

    @Test func noActiveOrganizationNeverOwnsAnOrgRoute() async throws {
        let e = try await run("/orgs/acme/settings", org: nil)
        #expect(e.decision.status == 403)
        #expect(e.decision.explanation.contains("org_slug (absent)"))
    }

    @Test func orgIdOnEveryPatternOfTheRule() async throws {
        #expect(try await run("/api/orgs/org_42/members").decision.action == .proxy)
        #expect(try await run("/api/v2/orgs/org_42").decision.action == .proxy)
        #expect(try await run("/api/v2/orgs/org_43").decision.status == 403)
        #expect(try await run("/api/orgs/org_41/members").decision.status == 403)
        // The other requirements still hold too.
        let member = try await run("/api/orgs/org_42/members", org: (id: "org_42", slug: "acme", role: "org:member", permissions: []))
        #expect(member.decision.status == 403)
    }

    @Test func aStringClaimCanBeTheOwner() async throws {
        #expect(try await run("/t/blue/x", extra: ["metadata": ["tenant": "blue"]]).decision.action == .proxy)
        #expect(try await run("/t/red/x", extra: ["metadata": ["tenant": "blue"]]).decision.status == 403)
        // A number is not a string: never equal.
        #expect(try await run("/t/7/x", extra: ["metadata": ["tenant": 7]]).decision.status == 403)
        #expect(try await run("/t/blue/x").decision.status == 403)
    }

    @Test func signedOutCallersStillGetTheUsualAnswer() async throws {
        let g = try Fixtures.gatekeeper(OwnershipRuleTests.yaml)
        #expect(await g.evaluate("/users/user_abc").decision.status == 401)
    }

    @Test func explainShowsParametersAndTheComparison() async throws {
        let e = try await run("/api/orgs/org_41/members")
        let json = ExplainReport.json(for: e)
        let parameters = json.value(atPath: ["route", "parameters"])
        #expect(parameters?.value(atPath: ["pattern"]) == .string("/api/orgs/:orgId/(.*)"))
        let first = parameters?.value(atPath: ["comparisons"])?.arrayValue?.first
        #expect(first?.value(atPath: ["parameter"]) == .string("orgId"))
        #expect(first?.value(atPath: ["value"]) == .string("org_41"))
        #expect(first?.value(atPath: ["mustEqual"]) == .string("org_id"))
        #expect(first?.value(atPath: ["expected"]) == .string("org_42"))
        #expect(first?.value(atPath: ["holds"]) == .bool(false))
        let ok = try await run("/api/orgs/org_42/members")
        #expect(ok.decision.explanation.hasSuffix("; params.orgId 'org_42' = org_id"))
    }

    @Test func unnamedGroupsAreParametersByNumber() async throws {
        let g = try Fixtures.gatekeeper("""
            clerk: { publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k, jwks_file: jwks.json }
            sign_in_url: /sign-in
            routes:
              - { name: u, match: ["/u/(.*)"], require: { params: { "0": user_id } } }
            """)
        let token = Fixtures.token("user_abc")
        #expect(await g.evaluate("/u/user_abc", headers: [("Authorization", "Bearer \(token)")]).decision.action == .proxy)
        #expect(await g.evaluate("/u/user_abc/x", headers: [("Authorization", "Bearer \(token)")]).decision.status == 403)
    }

    @Test func anAstralCharacterSplitByAGroupFailsClosed() async throws {
        // `:a(.)` takes one UTF-16 unit: half of an emoji is no string, so nothing can equal it.
        let g = try Fixtures.gatekeeper("""
            clerk: { publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k, jwks_file: jwks.json }
            sign_in_url: /sign-in
            routes:
              - { name: u, match: ["/u/:a(.):b(.*)"], require: { params: { a: user_id } } }
            """)
        let token = Fixtures.token("x")
        let e = await g.evaluate("/u/%F0%9F%98%80", headers: [("Authorization", "Bearer \(token)")])
        #expect(e.decision.status == 403)
        #expect(e.decision.explanation.contains("splits a character"))
    }
}

@Suite struct OwnershipConfigTests {
    func issues(_ route: String) -> [String] {
        Fixtures.configIssues("""
            clerk: { publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k, jwks_file: jwks.json }
            sign_in_url: /sign-in
            routes:
              - \(route)
            """).map(\.description)
    }

    @Test func aParameterMissingFromOnePatternIsAnError() {
        let found = issues(#"{ name: r, match: ["/api/orgs/:orgId/(.*)", "/api/teams/:teamId"], require: { params: { orgId: org_id } } }"#)
        #expect(found == ["test.yaml:4:91: routes[0] (r).require.params: parameter 'orgId' is not in pattern '/api/teams/:teamId' (it has 'teamId'); every pattern of the rule must define it"])
    }

    @Test func anUnnamedGroupThatIsNotThereIsAnError() {
        let found = issues(#"{ name: r, match: ["/a/(.*)"], require: { params: { "1": user_id } } }"#)
        #expect(found.count == 1)
        #expect(found.first?.contains("parameter '1' is not in pattern '/a/(.*)' (it has '0')") == true)
        let none = issues(#"{ name: r, match: ["/a"], require: { params: { x: user_id } } }"#)
        #expect(none.first?.contains("(it has none)") == true)
    }

    @Test func unknownIdentityValuesAreErrors() {
        for value in ["sub", "claims.", "claims.a..b", "'{params.userId}'", "[user_id]"] {
            let found = issues(#"{ name: r, match: ["/u/:id"], require: { params: { id: "# + value + " } } }")
            #expect(found.count == 1, "\(value)")
            #expect(found.first?.hasSuffix("expected user_id, session_id, org_id, org_slug or claims.<dotted path>") == true, "\(value): \(found)")
        }
    }

    @Test func namedCaptureInsideACustomPatternIsRefused() {
        let found = issues(#"{ name: r, match: ["/u/:id((?<x>a)b)"], require: { params: { id: user_id } } }"#)
        #expect(found.first?.contains("has capture groups inside a parameter") == true, "\(found)")
    }

    @Test func publicRoutesCannotHaveParameterRequirements() {
        let found = issues(#"{ name: r, match: ["/u/:id"], access: public, require: { params: { id: user_id } } }"#)
        #expect(found.first?.contains("a public route cannot have requirements") == true)
    }

    @Test func emptyParamsIsAnError() {
        #expect(issues(#"{ name: r, match: ["/u/:id"], require: { params: {} } }"#).first?.contains("expected a mapping of route parameter") == true)
    }
}
