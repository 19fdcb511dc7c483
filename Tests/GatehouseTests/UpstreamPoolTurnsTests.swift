import Foundation
import Synchronization
import Testing

/// Requests to two upstreams in turn, on one client connection: each upstream gets every request meant for it
/// and none of the other's, over one pooled connection each (the pool remembers where the last upstream's idle
/// connections are; switching upstreams must find the other's, not reuse the wrong one or open new ones).
@Suite(.serialized, .stopsServers) struct UpstreamPoolTurnsTests {
    @Test func twoUpstreamsInTurnEachReuseTheirOwnConnection() async throws {
        let other = try await TestUpstream()
        let h = try await GatewayHarness(routes: """
              - { name: public, match: ["/public(.*)"], access: public }
              - { name: other, match: ["/other(.*)"], access: public, upstream: "http://127.0.0.1:\(other.port)" }
            """)
        defer { Task { await h.stop(); await other.stop() } }
        let c = try h.client()
        var sent: [String] = []
        for i in 0..<12 {
            // Runs of one upstream, then alternation.
            let path = (i < 4 || i % 2 == 0) ? "/public/echo?n=\(i)" : "/other/echo?n=\(i)"
            sent.append(path)
            #expect(c.request("GET", path)?.status == 200, "\(path)")
        }
        #expect(h.upstream.targets.withLock { $0 } == sent.filter { $0.hasPrefix("/public") })
        #expect(other.targets.withLock { $0 } == sent.filter { $0.hasPrefix("/other") })
        #expect(h.upstream.connections.load(ordering: .relaxed) == 1)
        #expect(other.connections.load(ordering: .relaxed) == 1)
    }
}
