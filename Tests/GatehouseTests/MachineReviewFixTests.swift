import Foundation
@testable import GatehouseAuth
import GatehouseConfig
@testable import GatehouseCore
@testable import GatehouseEngine
import Testing

/// Tests for the fixes of the machine-auth review (ReviewMachineAuthTests holds the review's own tests).
@Suite struct MachineReviewFixTests {
    @Test func aRouteMayNotBeNamedLikeTheFallback() {
        for name in ["default", "Default", "DEFAULT"] {
            let yaml = """
                clerk:
                  publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k
                  jwks_file: jwks.json
                sign_in_url: /sign-in
                routes:
                  - name: \(name)
                    match: ["/legacy(.*)"]
                default: protected
                """
            let issues = Fixtures.configIssues(yaml)
            #expect(issues.contains { $0.keyPath == "routes[0].name" && $0.message.contains("reserved for the fallback") }, "\(name): \(issues)")
        }
    }

    static let mcpYAML = """
        clerk:
          publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k
          secret_key: sk_live_machinetests
          jwks_file: jwks.json
        sign_in_url: /sign-in
        routes:
          - name: mcp
            match: ["/mcp(.*)"]
            accepts: [session_token, oauth_token]
          - name: app
            match: ["/app(.*)"]
            accepts: [session_token, api_key]
        default: protected
        """

    /// Was review/machine-auth-explain.sh check 3: an MCP client's discovery request (no token) on a route
    /// that takes sessions and OAuth tokens is answered on the session path, and its 401 must still point at
    /// the resource metadata; so must the 401 for a bad session token there. Not on routes without OAuth.
    @Test func sessionPath401OnARouteTakingOAuthCarriesTheResourceMetadata() async throws {
        let metadata = "https://clerk.example.com/.well-known/oauth-protected-resource"
        let g = try MachineFixtures.gatekeeper(Self.mcpYAML, source: FakeMachineSource())
        let discovery = await g.evaluate("/mcp", headers: [("Accept", "application/json")])
        #expect(discovery.decision.status == 401)
        #expect(discovery.decision.responseHeaders.first("www-authenticate") == "Bearer resource_metadata=\"\(metadata)\"")
        let badSession = await g.evaluate("/mcp", headers: [("Accept", "application/json"), ("Authorization", "Bearer e30.e30.e30")])
        #expect(badSession.decision.status == 401)
        #expect(badSession.decision.responseHeaders.first("www-authenticate")?.hasPrefix("Bearer resource_metadata=\"\(metadata)\"") == true)
        let app = await g.evaluate("/app", headers: [("Accept", "application/json")])
        #expect(app.decision.responseHeaders.first("www-authenticate") == #"Bearer realm="gatehouse""#)
    }
}
