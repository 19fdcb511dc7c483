import Foundation
import GatehouseConfig
@testable import GatehouseCore
import GatehouseEngine
import Testing

/// Methods are case-sensitive tokens, but an upstream may read `get` as GET: no spelling may skip a rule.
@Suite struct MethodCaseTests {
    static let routes = """
        clerk: { jwks_file: jwks.json }
        sign_in_url: /sign-in
        routes:
          - { name: writes, match: ["/api/items(.*)"], methods: [POST, PURGE], access: protected }
          - { name: api, match: ["/api(.*)"], access: public }
        default: protected
        """

    @Test(arguments: ["get", "Get", "post", "Post", "pOST", "put", "delete", "patch", "options", "head", "trace", "connect", "Connect"])
    func caseVariantsOfStandardMethodsAreRefused(method: String) async throws {
        let g = try Fixtures.gatekeeper(Self.routes)
        let e = await g.evaluate("/api/items", method: method)
        #expect(e.decision.status == 400)
        #expect(e.request == nil)
        #expect(e.decision.body?.contains("method names are case-sensitive: '\(method)' is not \(method.uppercased())") == true)
    }

    @Test func exactStandardAndExtensionMethodsAreRouted() async throws {
        let g = try Fixtures.gatekeeper(Self.routes)
        #expect(await g.evaluate("/api/items", method: "POST").route?.name == "writes")
        #expect(await g.evaluate("/api/items", method: "GET").route?.name == "api")
        // Extension methods match the rule whatever their case, and are forwarded as sent.
        for spelling in ["PURGE", "purge", "Purge"] {
            let e = await g.evaluate("/api/items", method: spelling)
            #expect(e.route?.name == "writes", "\(spelling)")
            #expect(e.decision.status == 401, "\(spelling)")
            #expect(e.request?.method == spelling)
        }
        // Not a standard method, so not refused; no rule lists it, so it falls through as usual.
        #expect(await g.evaluate("/api/items", method: "gets").route?.name == "api")
    }

    @Test func methodNameHelpers() {
        #expect(MethodName.standardSpelling(of: "dElEtE") == "DELETE")
        #expect(MethodName.standardSpelling(of: "GETS") == nil)
        #expect(MethodName.standardSpelling(of: "OPTIONSX") == nil)
        #expect(MethodName.matches("purge", anyOf: ["PURGE"]))
        #expect(!MethodName.matches("purge", anyOf: ["POST"]))
        #expect(!MethodName.matches("PURGÉ", anyOf: ["PURGé"]))
    }
}

/// Over a real socket. NIO's parser (llhttp) already refuses methods it does not know, lower-case spellings
/// included, before Gatehouse sees them; forward-auth takes the method from `X-Forwarded-Method`, a header
/// no parser checks, so there the decision-level rule is what refuses `post`.
@Suite(.serialized) struct MethodCaseSocketTests {
    static let routes = """
          - { name: writes, match: ["/public/items(.*)"], methods: [POST, PURGE], access: protected }
          - { name: public, match: ["/", "/public(.*)"], access: public }
        """

    @Test func lowerCaseMethodsNeverReachTheUpstream() async throws {
        let h = try await GatewayHarness(routes: Self.routes)
        for method in ["post", "get", "Purge"] {
            let c = try h.client()
            let response = c.request(method, "/public/items", body: "x")
            #expect(response?.status == 400, "\(method)")
        }
        let c = try h.client()
        #expect(c.request("POST", "/public/items", body: "x")?.status == 401)
        #expect(c.request("PURGE", "/public/items")?.status == 401)
        #expect(c.request("GET", "/public/items")?.status == 200)
        await h.stop()
    }

    @Test func forwardAuthMethodsAreCheckedByGatehouse() async throws {
        let h = try await GatewayHarness(routes: Self.routes) { yaml in
            yaml.replacingOccurrences(of: "trusted_proxies: [\"10.9.9.9\"]", with: "trusted_proxies: [\"127.0.0.1\"]")
        }
        func check(_ method: String) throws -> RawClient.Response? {
            try h.client().request("GET", "/_gatehouse/auth", headers: [("X-Forwarded-Method", method), ("X-Forwarded-Uri", "/public/items")])
        }
        let lower = try check("post")
        #expect(lower?.status == 400)
        #expect(lower?.text.contains("method names are case-sensitive: 'post' is not POST") == true)
        #expect(try check("Get")?.status == 400)
        #expect(try check("POST")?.status == 401)
        // An extension method is not refused, and still meets the rule written in upper case.
        #expect(try check("purge")?.status == 401)
        #expect(try check("GET")?.status == 200)
        await h.stop()
    }
}
