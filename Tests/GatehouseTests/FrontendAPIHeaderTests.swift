import Foundation
import GatehouseCore
import Testing

/// The Frontend API proxy strips what proxy mode strips, by the same rule: claim headers, every reserved
/// prefix (`X-Gatehouse-`, `X-Clerk-`), `strip` names; Clerk's own `Clerk-*` proxy headers are Gatehouse's.
@Suite(.serialized) struct FrontendAPIHeaderTests {
    @Test func claimHeadersAndReservedPrefixesNeverReachTheFrontendAPI() async throws {
        let standIn = try await FrontendAPIStandIn(development: false)
        let gateway = try await HandshakeFlowTests.harness(standIn, development: false, extraClerk: "  frontend_api_proxy: /__clerk")
        defer { Task { await gateway.stop(); await standIn.stop() } }
        let spoofed = [("X-User-Email", "spoof@example.com"), ("x_user_email", "spoof@example.com"), ("X-Clerk-Auth-Status", "signed-in"),
                       ("X-Clerk-Auth-Reason", "spoof"), ("X-Gatehouse-User-Id", "user_spoof"), ("Remote-User", "spoof"),
                       ("Clerk-Secret-Key", "sk_spoof"), ("Clerk-Proxy-Url", "https://evil.example"), ("X-App-Own", "kept")]
        let response = try #require(try gateway.client().request("GET", "/__clerk/v1/environment", headers: spoofed,
                                                                   host: "127.0.0.1:\(gateway.port)"))
        #expect(response.status == 200)
        let seen = try #require(response.json?.objectValue?["headers"]?.objectValue)
        let names = seen.members.map { $0.key.lowercased() }
        for gone in ["x-user-email", "x_user_email", "x-clerk-auth-status", "x-clerk-auth-reason", "x-gatehouse-user-id", "remote-user"] {
            #expect(!names.contains(gone), "\(gone) reached the Frontend API")
        }
        #expect(names.contains("x-app-own"))
        let values = { (name: String) in seen[name]?.arrayValue?.compactMap(\.stringValue) ?? [] }
        #expect(values("clerk-secret-key") == [FrontendAPIStandIn.secretKey])
        #expect(values("clerk-proxy-url") == ["http://127.0.0.1:\(gateway.port)/__clerk"])
    }
}
