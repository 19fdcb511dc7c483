import Foundation
import Testing

/// Forwarding headers in proxy mode, from a peer inside `trusted_proxies` (127.0.0.1, the test client itself)
/// and from one outside it: the peer address is mapped to the CIDR list by the real listener.
@Suite(.serialized, .stopsServers) struct TrustedProxyTests {
    static let forwarded = [
        ("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Host", "public.example"), ("X-Forwarded-Proto", "https"),
        ("X-Request-Id", "trace-abc-123"),
    ]
    /// 128 random bits in hex, as Gatehouse makes them.
    static func isGenerated(_ id: String?) -> Bool {
        guard let id else { return false }
        return id.utf8.count == 32 && id.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    static func headers(_ response: RawClient.Response?) -> [String: [String]] {
        (response?.foundationJSON?["headers"] as? [String: [String]]) ?? [:]
    }

    static func trusted() async throws -> GatewayHarness {
        try await GatewayHarness { $0.replacingOccurrences(of: "trusted_proxies: [\"10.9.9.9\"]", with: "trusted_proxies: [\"127.0.0.1/32\"]") }
    }

    @Test func aTrustedProxysForwardingHeadersAreExtendedAndBelieved() async throws {
        let h = try await Self.trusted()
        defer { Task { await h.stop() } }
        let c = try h.client()
        let token = ServerIntegrationTests.fresh("user_member")
        let proxied = try #require(c.request("GET", "/echo/t", headers: [bearer(token)] + Self.forwarded))
        #expect(proxied.status == 200)
        let seen = Self.headers(proxied)
        #expect(seen["x-forwarded-for"] == ["203.0.113.7, 127.0.0.1"])
        #expect(seen["x-request-id"] == ["trace-abc-123"])
        #expect(seen["x-forwarded-host"] == ["public.example"])
        #expect(seen["x-forwarded-proto"] == ["https"])
        #expect(seen["host"] == ["app.example.com"])

        // Redirects are built from the origin the trusted proxy reports.
        let page = try #require(c.request("GET", "/dashboard?a=1", headers: [("Accept", "text/html")] + Self.forwarded))
        #expect(page.status == 307)
        #expect(page.header("location") == "/sign-in?redirect_url=https%3A%2F%2Fpublic.example%2Fdashboard%3Fa%3D1")
        // Gatehouse's own responses carry the trusted id.
        #expect(page.header("x-request-id") == "trace-abc-123")
        let denied = try #require(c.request("GET", "/dashboard", headers: [("Accept", "application/json")] + Self.forwarded))
        #expect(denied.status == 401)
        #expect(denied.header("x-request-id") == "trace-abc-123")
    }

    @Test func anUntrustedPeersForwardingHeadersAreReplaced() async throws {
        let h = try await GatewayHarness()  // trusted_proxies: 10.9.9.9 only
        defer { Task { await h.stop() } }
        let c = try h.client()
        let token = ServerIntegrationTests.fresh("user_member")
        let spoofs = Self.forwarded + [
            ("Forwarded", "for=1.2.3.4;proto=https"), ("X-Real-IP", "1.2.3.4"), ("X-HTTP-Method-Override", "DELETE"),
            ("X-Forwarded-Uri", "/admin"), ("X-Original-URL", "/admin"),
        ]
        let proxied = try #require(c.request("GET", "/echo/u", headers: [bearer(token)] + spoofs))
        #expect(proxied.status == 200)
        let seen = Self.headers(proxied)
        #expect(seen["x-forwarded-for"] == ["127.0.0.1"])
        #expect(seen["x-forwarded-host"] == ["app.example.com"])
        #expect(seen["x-forwarded-proto"] == ["http"])
        #expect(seen["forwarded"] == ["for=127.0.0.1;proto=http;host=\"app.example.com\""])
        #expect(seen["x-real-ip"] == ["127.0.0.1"])
        #expect(seen["x-http-method-override"] == nil)
        #expect(seen["x-forwarded-uri"] == nil)
        #expect(seen["x-original-url"] == nil)
        #expect(seen["host"] == ["app.example.com"])
        let upstreamID = try #require(seen["x-request-id"]?.first)
        #expect(upstreamID != "trace-abc-123")
        #expect(Self.isGenerated(upstreamID), "\(upstreamID)")

        let page = try #require(c.request("GET", "/dashboard", headers: [("Accept", "text/html")] + Self.forwarded))
        #expect(page.status == 307)
        #expect(page.header("location") == "/sign-in?redirect_url=http%3A%2F%2Fapp.example.com%2Fdashboard")
        let ownID = try #require(page.header("x-request-id"))
        #expect(Self.isGenerated(ownID), "\(ownID)")
        // Ids are per request.
        let again = try #require(c.request("GET", "/dashboard", headers: [("Accept", "application/json")]))
        #expect(again.header("x-request-id") != ownID)
        #expect(Self.isGenerated(again.header("x-request-id")))
    }

    @Test func aTrustedProxysUnusableRequestIdIsReplaced() async throws {
        let h = try await Self.trusted()
        defer { Task { await h.stop() } }
        let long = String(repeating: "a", count: 200)
        let response = try #require(try h.client().request("GET", "/dashboard", headers: [("Accept", "application/json"), ("X-Request-Id", long)]))
        #expect(response.status == 401)
        #expect(Self.isGenerated(response.header("x-request-id")))
    }
}
