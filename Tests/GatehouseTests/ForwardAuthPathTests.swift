import Foundation
@testable import GatehouseConfig
import GatehouseCore
import Testing

/// The forward-auth path is Gatehouse's: a spelling that misses both endpoints must never reach the app, or
/// an app answering 2xx to the auth subrequest would make the proxy allow everything.
@Suite(.serialized) struct ForwardAuthPathTests {
    @Test func aTrailingSlashOrTheRootIsRefused() {
        for (path, words) in [("/fa/", "trailing slash"), ("/", "cannot be /"), ("/a/b/", "trailing slash")] {
            let issues = ConfigBoundsTests.issues("clerk: { jwks_file: jwks.json }\nsign_in_url: /s\nforward_auth: { path: \"\(path)\" }")
            #expect(issues.contains { $0.keyPath == "forward_auth.path" && $0.message.contains(words) }, "\(path): \(issues)")
        }
        for path in ["/fa", "/_gatehouse/auth", "off"] {
            let issues = ConfigBoundsTests.issues("clerk: { jwks_file: jwks.json }\nsign_in_url: /s\nforward_auth: { path: \"\(path)\" }")
            #expect(issues.isEmpty, "\(path): \(issues)")
        }
    }

    @Test func pathParametersUnderTheEndpointAreAnsweredLocallyToo() async throws {
        // With path semicolons allowed, `/fa/x;y` is routed (and would be proxied) as a path under /fa.
        let routes = "  - { name: open, match: [\"/(.*)\"], access: public }"
        let h = try await GatewayHarness(extra: "forward_auth: { path: /fa }\nallow_path_semicolons: true", routes: routes)
        defer { Task { await h.stop() } }
        for target in ["/fa/x;y", "/fa/nginx;v=1"] {
            let response = try #require(try h.client().request("GET", target))
            #expect(response.status == 404, "\(target) answered \(response.status)")
            #expect(response.json?.objectValue?["uri"] == nil, "\(target) reached the app")
        }
        #expect(try h.client().request("GET", "/fax;y")?.status == 200)
    }

    @Test func pathsUnderTheEndpointAreAnsweredLocallyNeverProxied() async throws {
        // Everything is public and the app answers 200 to any path: only Gatehouse itself can refuse.
        let routes = "  - { name: open, match: [\"/(.*)\"], access: public }"
        let h = try await GatewayHarness(extra: "forward_auth: { path: /fa }", routes: routes) {
            $0.replacingOccurrences(of: "trusted_proxies: [\"10.9.9.9\"]", with: "trusted_proxies: [\"127.0.0.1\"]")
        }
        defer { Task { await h.stop() } }
        let ask = [("X-Original-URI", "/x"), ("X-Original-Method", "POST"), ("X-Forwarded-Uri", "/x"), ("X-Forwarded-Method", "POST")]
        for target in ["/fa/x//nginx", "/fa/", "/fa/nginx/", "/fa/caddy", "/fa/./x/../other", "/fa/%6eginx/x"] {
            let response = try #require(try h.client().request("GET", target, headers: ask))
            #expect(response.status == 404, "\(target) answered \(response.status)")
            #expect(response.json?.objectValue?["uri"] == nil, "\(target) reached the app")
        }
        // The endpoints still answer, and paths beside the forward-auth path still reach the app.
        let nginx = try #require(try h.client().request("GET", "/fa/nginx", headers: [("X-Original-URI", "/x"), ("X-Original-Method", "GET")]))
        #expect(nginx.status == 200 && nginx.header("x-gatehouse-route") == "open")
        // A doubled slash canonicalises to the endpoint: answered as forward-auth, not by the app.
        let doubled = try #require(try h.client().request("GET", "/fa//nginx", headers: [("X-Original-URI", "/x"), ("X-Original-Method", "GET")]))
        #expect(doubled.status == 200 && doubled.header("x-gatehouse-route") == "open" && doubled.json?.objectValue?["uri"] == nil)
        let beside = try #require(try h.client().request("GET", "/fax"))
        #expect(beside.status == 200 && beside.json?.objectValue?["uri"] != nil)
    }

    @Test func absoluteFormAndOtherCaseCannotStepAroundTheForwardAuthPath() async throws {
        // Routing reads absolute-form targets by their path and compares without case; so must the reserved check.
        let routes = "  - { name: open, match: [\"/(.*)\"], access: public }"
        let h = try await GatewayHarness(extra: "forward_auth: { path: /fa }\nallow_path_semicolons: true", routes: routes) {
            $0.replacingOccurrences(of: "trusted_proxies: [\"10.9.9.9\"]", with: "trusted_proxies: [\"127.0.0.1\"]")
        }
        defer { Task { await h.stop() } }
        let origin = "http://127.0.0.1:\(h.port)"
        // The Host agrees with an absolute-form authority, so nothing but the path can decide.
        func get(_ target: String, _ headers: [(String, String)] = []) throws -> RawClient.Response? {
            try h.client().request("GET", target, headers: headers, host: target.hasPrefix("http") ? "127.0.0.1:\(h.port)" : "app.example.com")
        }
        for target in ["\(origin)/fa/caddy", "\(origin)/fa/x?y=1", "/FA/caddy", "/Fa/", "/fa;x", "\(origin)/FA;x/y"] {
            let response = try #require(try get(target))
            #expect(response.status == 404, "\(target) answered \(response.status)")
            #expect(response.json?.objectValue?["uri"] == nil, "\(target) reached the app")
        }
        // An absolute-form request for the endpoint itself is a forward-auth question, never the app's.
        let asked = try #require(try get("\(origin)/fa", [("X-Forwarded-Uri", "/x"), ("X-Forwarded-Method", "GET")]))
        #expect(asked.status == 200 && asked.header("x-gatehouse-route") == "open" && asked.json?.objectValue?["uri"] == nil)
        #expect(try get("\(origin)/fax")?.json?.objectValue?["uri"] != nil)
    }
}
