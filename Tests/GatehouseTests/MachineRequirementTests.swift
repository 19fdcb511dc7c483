import Foundation
@testable import GatehouseAuth
import GatehouseConfig
@testable import GatehouseCore
@testable import GatehouseEngine
import Testing

@Suite struct MachineRequirementTests {
    let source = FakeMachineSource()

    static let yaml = """
        clerk:
          publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k
          secret_key: sk_live_machinetests
          jwks_file: jwks.json
        sign_in_url: /sign-in
        routes:
          - name: read
            match: ["/api/read"]
            accepts: [api_key, oauth_token]
            require: { scopes: [read:foo, write:bar] }
          - name: any
            match: ["/api/any-scope"]
            accepts: api_key
            require: { any_scope: [admin, scope2] }
          - name: machines
            match: ["/api/machines"]
            accepts: m2m_token
            require: { machine_ids: [mch_2vYVtestTESTtestTESTtestTESTtest] }
          - name: clients
            match: ["/api/clients"]
            accepts: oauth_token
            require: { client_ids: [client_other] }
            on_forbidden: 404
          - name: org-keys
            match: ["/api/org-keys"]
            accepts: api_key
            require: { api_key_subject: org }
          - name: claims
            match: ["/api/claims"]
            accepts: api_key
            require: { claims: { foo: bar }, subjects: [user_xxxxx] }
        """

    func gatekeeper() throws -> Gatekeeper { try MachineFixtures.gatekeeper(Self.yaml, source: source) }
    func bearer(_ token: String) -> [(String, String)] { [("Authorization", "Bearer " + token)] }

    @Test func scopesAllOfAndAnyOf() async throws {
        source.answer("ak_scoped", MachineFixtures.apiKeyJSON().replacingOccurrences(of: #"["scope1","scope2"]"#, with: #"["read:foo","write:bar"]"#))
        source.answer("ak_plain", MachineFixtures.apiKeyJSON())
        let g = try gatekeeper()
        #expect(await g.evaluate("/api/read", headers: bearer("ak_scoped")).decision.action == .proxy)
        #expect(await g.evaluate("/api/read", headers: bearer(MachineFixtures.oauthJWT())).decision.action == .proxy)
        let missing = await g.evaluate("/api/read", headers: bearer("ak_plain"))
        #expect(missing.decision.status == 403)
        #expect(missing.decision.explanation.contains("scope read:foo is required"))
        #expect(await g.evaluate("/api/any-scope", headers: bearer("ak_plain")).decision.action == .proxy)
        #expect(await g.evaluate("/api/any-scope", headers: bearer("ak_scoped")).decision.status == 403)
    }

    @Test func subjectsMachinesClientsAndKeyOwners() async throws {
        source.answer("ak_user", MachineFixtures.apiKeyJSON())
        source.answer("ak_org", MachineFixtures.apiKeyJSON(subject: "org_acme"))
        let g = try gatekeeper()
        #expect(await g.evaluate("/api/machines", headers: bearer(MachineFixtures.m2mJWT())).decision.action == .proxy)
        #expect(await g.evaluate("/api/clients", headers: bearer(MachineFixtures.oauthJWT())).decision.status == 404)
        #expect(await g.evaluate("/api/org-keys", headers: bearer("ak_org")).decision.action == .proxy)
        #expect(await g.evaluate("/api/org-keys", headers: bearer("ak_user")).decision.status == 403)
        #expect(await g.evaluate("/api/claims", headers: bearer("ak_user")).decision.action == .proxy)
        source.answer("ak_other", MachineFixtures.apiKeyJSON().replacingOccurrences(of: #""foo":"bar""#, with: #""foo":"baz""#))
        #expect(await g.evaluate("/api/claims", headers: bearer("ak_other")).decision.status == 403)
    }

    @Test func requirementsThatCannotApply() {
        func issues(_ accepts: String, _ require: String) -> [String] {
            Fixtures.configIssues("""
                clerk:
                  publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k
                  secret_key: sk_live_x
                  jwks_file: jwks.json
                sign_in_url: /sign-in
                routes:
                  - name: r
                    match: ["/r"]
                    accepts: \(accepts)
                    require: \(require)
                """).map { "\($0.keyPath): \($0.message)" }
        }
        #expect(issues("[api_key, m2m_token]", "{ machine_ids: [mch_1] }") == [
            "routes[0] (r).require.machine_ids: cannot apply to api_key tokens (it applies to m2m_token only); give those callers a route of their own",
        ])
        #expect(issues("[session_token, api_key]", "{ scopes: [x] }") == [
            "routes[0] (r).require.scopes: cannot apply to session_token tokens (it applies to api_key, m2m_token, oauth_token only); give those callers a route of their own",
        ])
        #expect(issues("api_key", "{ client_ids: [c] }").count == 1)
        #expect(issues("api_key", "{ api_key_subject: team }") == ["routes[0] (r).require.api_key_subject: expected user or org"])
        #expect(issues("api_key", "{ scopes: [] }") == ["routes[0] (r).require.scopes: expected one or more values"])
        // Without accepts: the route takes session tokens only.
        let plain = Fixtures.configIssues("""
            clerk: { publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k, jwks_file: jwks.json }
            sign_in_url: /sign-in
            routes:
              - { name: r, match: ["/r"], require: { scopes: [x] } }
            """).map(\.message)
        #expect(plain == ["cannot apply to session_token tokens (the route accepts only those): add accepts: with the machine token types it is for"])
    }

    @Test func upstreamIdentityForMachineCallers() async throws {
        source.answer(MachineFixtures.apiKey, MachineFixtures.apiKeyJSON(subject: "org_acme"))
        let g = try MachineFixtures.gatekeeper(source: source)
        let spoof: [(String, String)] = [("X-Gatehouse-Token-Type", "session_token"), ("X-Gatehouse-Scopes", "admin"), ("x_gatehouse_subject", "user_evil"),
                                         ("X-Gatehouse-Key-Name", "root")]
        let key = await g.evaluate("/api/keys", headers: bearer(MachineFixtures.apiKey) + spoof)
        let headers = try #require(key.decision.upstreamHeaders)
        #expect(headers.values("x-gatehouse-token-type") == ["api_key"])
        #expect(headers.values("x-gatehouse-subject") == ["org_acme"])
        #expect(headers.values("x-gatehouse-org-id") == ["org_acme"])
        #expect(headers.values("x-gatehouse-user-id") == [])
        #expect(headers.values("x-gatehouse-scopes") == ["scope1 scope2"])
        #expect(headers.values("x-gatehouse-key-name") == ["Test API Key"])
        #expect(headers.values("x_gatehouse_subject") == [])
        let m2m = try #require(await g.evaluate("/api/m2m", headers: bearer(MachineFixtures.m2mJWT())).decision.upstreamHeaders)
        #expect(m2m.values("x-gatehouse-machine-id") == ["mch_2vYVtestTESTtestTESTtestTESTtest"])
        #expect(m2m.values("x-gatehouse-token-type") == ["m2m_token"])
        let oauth = try #require(await g.evaluate("/api/mcp", headers: bearer(MachineFixtures.oauthJWT())).decision.upstreamHeaders)
        #expect(oauth.values("x-gatehouse-client-id") == ["client_2VTWUzvGC5UhdJCNx6xG1D98edc"])
        #expect(oauth.values("x-gatehouse-user-id") == ["user_2vYVtestTESTtestTESTtestTESTtest"])
        // A session caller gets none of the machine headers, and a client's are removed.
        let session = try #require(await g.evaluate("/api/mixed", headers: bearer(Fixtures.token()) + spoof).decision.upstreamHeaders)
        #expect(session.values("x-gatehouse-token-type") == [] && session.values("x-gatehouse-scopes") == [] && session.values("x-gatehouse-key-name") == [])
    }
}
