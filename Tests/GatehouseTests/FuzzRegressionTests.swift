import GatehouseConfig
import GatehouseCore
import Testing

/// Minimal reproducers of what scripts/fuzz found (Fuzz/*.swift), one test each.
@Suite struct FuzzRegressionTests {
    // canonical_request: `Host: app.example.com..` was accepted as `app.example.com.` (only one trailing dot
    // was dropped), a host that no host rule matches, so a host-scoped rule could be skipped.
    @Test(arguments: ["app.example.com..", "app.example.com..:8080", "app.example.com...", "a.."])
    func hostWithTwoTrailingDotsIsRefused(host: String) {
        #expect(throws: RequestRejection.self) { try CanonicalRequest.normalizeHost(host) }
        let viaHeader = RawRequest(method: "GET", target: "/", headers: HeaderList([("Host", host)]))
        #expect(throws: RequestRejection.self) { try CanonicalRequest(viaHeader) }
        let absolute = RawRequest(method: "GET", target: "http://\(host)/orgs/acme", headers: HeaderList())
        #expect(throws: RequestRejection.self) { try CanonicalRequest(absolute) }
    }

    @Test func oneTrailingDotIsStillTheRootLabel() throws {
        #expect(try CanonicalRequest.normalizeHost("App.Example.com.") == "app.example.com")
        #expect(try CanonicalRequest.normalizeHost("app.example.com.:8080") == "app.example.com:8080")
        let request = try CanonicalRequest(RawRequest(method: "GET", target: "/", headers: HeaderList([("Host", "app.example.com.")])))
        #expect(HostPattern("app.example.com").matches(request.host ?? ""))
    }

    static let clerk = ["CLERK_PUBLISHABLE_KEY": "pk_test_Y2xlcmsuZXhhbXBsZS5jb20k"]

    // config: `listen: "127.0.0.1:+9"` was accepted (the port went through Int(_:), which takes a sign).
    @Test(arguments: ["127.0.0.1:+9", "127.0.0.1:-0", "[::1]:+8080", "127.0.0.1: 80"])
    func listenPortWithASignIsRefused(listen: String) {
        #expect(ConfigLoader.parseHostPort(listen) == nil)
        do {
            _ = try ConfigLoader.load(yaml: "listen: \"\(listen)\"\nupstream: http://127.0.0.1:3000\n", file: "t.yaml", environment: Self.clerk)
            Issue.record("listen \(listen) was accepted")
        } catch {
            #expect(error.issues.contains { $0.keyPath == "listen" })
        }
    }

    @Test func plainListenPortsStillParse() {
        #expect(ConfigLoader.parseHostPort("127.0.0.1:8080")?.port == 8080)
        #expect(ConfigLoader.parseHostPort("[::1]:0")?.host == "::1")
        #expect((try? ConfigLoader.load(yaml: "listen: \"127.0.0.1:9\"\nupstream: http://127.0.0.1:3000\n", file: "t.yaml", environment: Self.clerk))?.listen == "127.0.0.1:9")
    }
}
