import Foundation
@testable import GatehouseServer
import Testing

/// A connection closed by `server.max_connections` is a refusal by policy: `/readyz`'s record of the listener
/// neither counts it as a connection that was set up nor as one that failed.
@Suite(.serialized) struct RefusedConnectionHealthTests {
    @Test func refusalsByPolicyAreNotRecordedAsServing() async throws {
        let h = try await GatewayHarness { $0.replacingOccurrences(of: "idle_timeout: 5s }", with: "idle_timeout: 5s, max_connections: 1 }") }
        defer { Task { await h.stop() } }
        let a = try h.client()
        #expect(a.request("GET", "/public/a")?.status == 200)
        let health = h.server.listenerHealth
        #expect(health.outcome == .serving)
        let before = health.generation
        for _ in 0..<3 {
            let refused = try h.client()
            refused.send("GET /public/b HTTP/1.1\r\nHost: a\r\n\r\n")
            #expect(refused.isClosedByPeer())
        }
        try await Task.sleep(for: .milliseconds(100))
        #expect(health.generation == before, "refusals were recorded")
        #expect(health.outcome == .serving)
        // Room again: the next connection is recorded as set up.
        a.send("GET /public/c HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        _ = a.readResponse()
        // Closed by the gateway: its slot is given back in the same step on the loop that also accepts b.
        #expect(a.isClosedByPeer())
        let b = try h.client()
        #expect(b.request("GET", "/public/d")?.status == 200)
        #expect(health.generation == before + 1)
    }
}
