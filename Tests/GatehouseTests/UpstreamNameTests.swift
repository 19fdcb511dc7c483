import Foundation
import Testing

/// Upstreams named by a DNS name rather than an IP literal: looked up off the loop, once per name at a time;
/// a name that does not resolve is a 502, and asked again only after a moment.
@Suite(.serialized, .stopsServers) struct UpstreamNameTests {
    @Test func aNamedUpstreamIsLookedUpAndServes() async throws {
        let h = try await GatewayHarness { $0.replacingOccurrences(of: "upstream: \"http://127.0.0.1:", with: "upstream: \"http://localhost:") }
        defer { Task { await h.stop() } }
        #expect(try String(contentsOfFile: h.configPath, encoding: .utf8).contains("http://localhost:"))
        // Several at once: they wait for one lookup, then all go through.
        let clients = try (0..<4).map { _ in try h.client() }
        for client in clients { client.send("GET /public/x HTTP/1.1\r\nHost: a\r\n\r\n") }
        for client in clients { #expect(client.readResponse()?.0.status == 200) }
    }

    @Test func aNameThatDoesNotResolveIs502() async throws {
        let h = try await GatewayHarness {
            $0.replacing(#/upstream: "http://127\.0\.0\.1:\d+"/#, with: "upstream: \"http://gatehouse-no-such-host.invalid\"")
        }
        defer { Task { await h.stop() } }
        let started = Date()
        for _ in 0..<3 {
            #expect(try h.client().request("GET", "/public/x")?.status == 502)
        }
        #expect(Date().timeIntervalSince(started) < 10)
    }
}
