import Foundation
@testable import GatehouseAuth
import GatehouseConfig
@testable import GatehouseCore
import GatehouseDevIssuer
import GatehouseEngine
import GatehouseFetch
import NIOCore
import Testing

/// One `Cache-Control` on handshake redirects, and readable, balanced network error messages.
@Suite struct ResponseHygieneTests {
    static let page = [("Sec-Fetch-Dest", "document"), ("Accept", "text/html")]

    @Test func aHandshakeRedirectHasOneCacheControl() async throws {
        let settings = try Fixtures.settings("clerk: { publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k, jwks_file: jwks.json }\nsign_in_url: /sign-in")
        let g = Gatekeeper(settings: settings, keyStore: Gatekeeper.makeKeyStore(for: settings) { _, _ in fatalError("no network") })
        let e = await g.evaluate("/dashboard", headers: Self.page + [("Cookie", "__client_uat=1700000000")])
        #expect(e.decision.status == 307)
        #expect(e.auth?.status == .handshake)
        #expect(e.decision.responseHeaders.values("cache-control") == ["no-store"])
        #expect(e.decision.responseHeaders.count(of: "set-cookie") == 1)
        // A development handshake's return redirect too (Cache-Control from the resolution and the redirect).
        let dev = try Fixtures.settings("clerk: { publishable_key: pk_test_Y2xlcmsuZXhhbXBsZS5jb20k, jwks_file: jwks.json }\nsign_in_url: /sign-in")
        let d = Gatekeeper(settings: dev, keyStore: Gatekeeper.makeKeyStore(for: dev) { _, _ in fatalError("no network") })
        let handshake = Fixtures.issuer.sign(JSONObject([("handshake", .array([.string("__session=\(Fixtures.token()); Path=/")]))]))
        let back = await d.evaluate("/dashboard?__clerk_handshake=\(handshake)", headers: Self.page)
        #expect(back.decision.status == 307)
        #expect(back.decision.responseHeaders.values("cache-control") == ["no-store"])
    }

    @Test func overASocketTheRedirectHasOneCacheControl() async throws {
        let h = try await GatewayHarness()
        let response = try h.client().request("GET", "/dashboard", headers: Self.page + [("Cookie", "__client_uat=1700000000")])
        #expect(response?.status == 307)
        #expect(response?.header("location")?.hasPrefix("https://clerk.example.com/v1/client/handshake?") == true)
        #expect(response?.headers.filter { $0.0.lowercased() == "cache-control" }.map(\.1) == ["no-store"])
        await h.stop()
    }

    static func isBalanced(_ text: String) -> Bool {
        var depth = 0
        for c in text {
            if c == "(" { depth += 1 }
            if c == ")" { depth -= 1; if depth < 0 { return false } }
        }
        return depth == 0
    }

    @Test func aRefusedConnectionIsDescribedInOneBalancedPhrase() async throws {
        // Bound and kept bound without listening, so no other test's server can take the port meanwhile.
        let refusing = UnreachableUpstream(.refusing)
        let port = refusing.port
        defer { withExtendedLifetime(refusing) {} }
        do {
            _ = try await HTTPJWKSSource(url: "http://127.0.0.1:\(port)/jwks", bearer: "sk_test_secret", timeout: .seconds(1)).fetchJWKS()
            Issue.record("fetched from a closed port")
        } catch {
            let text = "\(error)"
            #expect(Self.isBalanced(text), "\(text)")
            #expect(text.hasPrefix("JWKS fetch from http://127.0.0.1:\(port)/jwks failed: "), "\(text)")
            #expect(text.contains("Connection refused (errno 111)"), "\(text)")
            #expect(!text.contains("error set"), "\(text)")
            #expect(!text.contains("sk_test_secret"))
        }
        do {
            _ = try await HTTPHandshakePayloadSource(apiURL: "http://127.0.0.1:\(port)", secretKey: "sk_test_secret", timeout: .seconds(1)).directives(nonce: "n1")
            Issue.record("exchanged at a closed port")
        } catch {
            let text = "\(error)"
            #expect(Self.isBalanced(text), "\(text)")
            #expect(text.contains("Connection refused (errno 111)"), "\(text)")
            #expect(!text.contains("sk_test_secret"))
        }
    }
}
