import Foundation
@testable import GatehouseCore
import Testing

/// The README's nginx and Caddy forward-auth snippets carry the signed assertion to the app, and a client's
/// copy never gets through; PyJWT verifies what the app received.
@Suite(.serialized, .stopsServers) struct IdentityAssertionForwardAuthTests {
    @Test(arguments: ForwardAuthProxyTests.Kind.allCases.filter(ForwardAuthProxyTests.available))
    func theAssertionReachesTheAppThroughTheProxy(kind: ForwardAuthProxyTests.Kind) async throws {
        let binary = try #require(kind.binary, "\(kind) binary missing")
        let gateway = try await GatewayHarness(extra: IdentityAssertionSocketTests.extra(keyFile: "assertion.pem"), routes: ForwardAuthProxyTests.routes) {
            $0.replacingOccurrences(of: "trusted_proxies: [\"10.9.9.9\"]", with: "trusted_proxies: [\"127.0.0.1\"]")
        }
        let app = try HeaderEchoServer()
        defer { Task { app.stop(); await gateway.stop() } }
        let proxy = try await ForwardAuthProxyTests.RunningProxy(kind, binary: binary, gateway: gateway, app: app)
        defer { proxy.stop() }
        var assertions: [String] = []
        for spelling in ["X-Gatehouse-Assertion", "x_gatehouse_assertion", "X.Gatehouse.Assertion"] {
            let (response, received) = try ForwardAuthProxyTests.throughProxy(
                proxy, "/echo/ship?x=1", headers: [bearer(ForwardAuthProxyTests.member), (spelling, "spoofed")])
            #expect(response.status == 200)
            let seen = try #require(received).fields.filter { ForwardAuthProxyTests.folded($0.name) == "x-gatehouse-assertion" }.map(\.value)
            #expect(seen.count == 1 && seen.first != "spoofed", "\(kind) \(spelling): \(seen)")
            if let first = seen.first { assertions.append(first) }
        }
        // Signed out on a public route: an assertion without a user.
        let (_, anonymous) = try ForwardAuthProxyTests.throughProxy(proxy, "/public/a", headers: [])
        let anonymousAssertion = try #require(anonymous?.fields.first { ForwardAuthProxyTests.folded($0.name) == "x-gatehouse-assertion" }?.value)
        let audience = "http://127.0.0.1:\(gateway.upstream.port)"
        let verified = try await IdentityAssertionSocketTests.verify(jwksURL: "http://127.0.0.1:\(gateway.adminPort)/.well-known/jwks.json",
                                                             assertions.map { ($0, audience) } + [(anonymousAssertion, audience)])
        for result in verified.results.dropLast() {
            #expect(result.value(atPath: ["claims", "sub"]) == .string("user_member"), "\(kind): \(result)")
            #expect(result.value(atPath: ["claims", "path"]) == .string("/echo/ship"))
            #expect(result.value(atPath: ["claims", "method"]) == .string("GET"))
            #expect(result.value(atPath: ["claims", "act"]) == .object(["sub": "user_support"]))
        }
        #expect(verified.results.last?.value(atPath: ["claims", "route"]) == .string("public"))
        #expect(verified.results.last?.value(atPath: ["claims", "sub"]) == nil)
    }
}
