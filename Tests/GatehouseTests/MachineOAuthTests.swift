import Foundation
@testable import GatehouseAuth
import GatehouseConfig
@testable import GatehouseCore
@testable import GatehouseEngine
import Testing

@Suite struct MachineOAuthChallengeTests {
    let source = FakeMachineSource()
    func bearer(_ token: String) -> [(String, String)] { [("Authorization", "Bearer " + token)] }
    static let clerkMetadata = "https://clerk.example.com/.well-known/oauth-protected-resource"

    @Test func oauthFailuresPointAtTheResourceMetadata() async throws {
        let g = try MachineFixtures.gatekeeper(source: source)
        let invalid = await g.evaluate("/api/mcp", headers: bearer("oat_unknown"))
        #expect(invalid.decision.status == 401)
        #expect(invalid.decision.responseHeaders.first("www-authenticate") == "Bearer resource_metadata=\"\(Self.clerkMetadata)\", error=\"invalid_token\"")
        // An OAuth token on an API-key route: Clerk's raw state is oauth, so the header comes too.
        let wrongRoute = await g.evaluate("/api/keys", headers: bearer(MachineFixtures.oauthJWT()))
        #expect(wrongRoute.decision.responseHeaders.first("www-authenticate")?.hasPrefix("Bearer resource_metadata=\"\(Self.clerkMetadata)\"") == true)
        // An MCP client's first request, without a token.
        let discovery = await g.evaluate("/api/mcp")
        #expect(discovery.decision.responseHeaders.first("www-authenticate") == "Bearer resource_metadata=\"\(Self.clerkMetadata)\"")
        // Not for API keys.
        let key = await g.evaluate("/api/keys", headers: bearer("ak_unknown"))
        #expect(key.decision.responseHeaders.first("www-authenticate") == #"Bearer realm="gatehouse", error="invalid_token""#)
        #expect(await g.evaluate("/api/keys").decision.responseHeaders.first("www-authenticate") == #"Bearer realm="gatehouse""#)
    }

    static let servedYAML = MachineFixtures.yaml + """

        machine_auth:
          protected_resource: { resource: "https://mcp.example.com/mcp", scopes: [read:foo, write:bar] }
        """

    @Test func servedMetadataDocument() async throws {
        let g = try MachineFixtures.gatekeeper(Self.servedYAML, source: source)
        let doc = await g.evaluate("/.well-known/oauth-protected-resource/mcp")
        #expect(doc.decision.status == 200)
        #expect(doc.decision.responseHeaders.first("content-type") == "application/json")
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data((doc.decision.body ?? "").utf8)) as? [String: Any])
        #expect(parsed["resource"] as? String == "https://mcp.example.com/mcp")
        #expect(parsed["authorization_servers"] as? [String] == ["https://clerk.example.com"])
        #expect(parsed["bearer_methods_supported"] as? [String] == ["header"])
        #expect(parsed["scopes_supported"] as? [String] == ["read:foo", "write:bar"])
        #expect(await g.evaluate("/.well-known/oauth-protected-resource/mcp", method: "POST").decision.status == 405)
        let challenge = await g.evaluate("/api/mcp").decision.responseHeaders.first("www-authenticate")
        #expect(challenge == #"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#)
        // Without the setting, the path is an ordinary (protected) path.
        let plain = try MachineFixtures.gatekeeper(source: source)
        #expect(await plain.evaluate("/.well-known/oauth-protected-resource/mcp").decision.status == 401)
    }

    @Test func protectedResourceConfigErrors() {
        func issues(_ value: String) -> [String] {
            Fixtures.configIssues(MachineFixtures.yaml + "\nmachine_auth: { protected_resource: \(value) }\n").map { "\($0.keyPath): \($0.message)" }
        }
        #expect(issues("{ scopes: [a] }") == ["machine_auth.protected_resource.resource: required: the app's resource identifier, e.g. https://mcp.example.com/mcp"])
        #expect(issues(#"{ resource: "mcp.example.com" }"#) == ["machine_auth.protected_resource.resource: expected an absolute https:// URL without query or fragment, e.g. https://mcp.example.com/mcp"])
        #expect(issues(#"{ resource: "https://a.example/x?y" }"#).count == 1)
        #expect(issues(#"{ resource: "https://a.example", authorization_servers: ["https://auth.example"] }"#) == [])
    }
}

@Suite(.serialized, .stopsServers) struct MachineOAuthDaemonTests {
    @Test func metadataAndChallengeOverSockets() async throws {
        let h = try await GatewayHarness(extra: """
            machine_auth:
              protected_resource: { resource: "https://mcp.example.com/mcp" }
            """, routes: "  - { name: mcp, match: [\"/mcp(.*)\"], accepts: oauth_token }") { yaml in
            yaml.replacingOccurrences(of: "  jwks_file: jwks.json\n", with: "  jwks_file: jwks.json\n  secret_key: sk_live_oauthdaemon\n")
        }
        defer { Task { await h.stop() } }
        let doc = try #require(try h.client().request("GET", "/.well-known/oauth-protected-resource/mcp"))
        #expect(doc.status == 200)
        #expect((doc.foundationJSON?["resource"] as? String) == "https://mcp.example.com/mcp")
        let fresh = MachineFixtures.oauthJWT(iat: Date().timeIntervalSince1970.rounded(.down))
        #expect(try h.client().request("GET", "/mcp", headers: [("Authorization", "Bearer " + fresh)])?.status == 200)
        let denied = try #require(try h.client().request("GET", "/mcp"))
        #expect(denied.status == 401)
        #expect(denied.header("www-authenticate") == #"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#)
    }
}
