import Foundation
import Synchronization
import Testing

/// Review of e189c93 (the pool remembers where the last upstream's idle list is): enough upstreams that the
/// pool's dictionary grows (and moves every list) while another upstream's place is remembered, visited in
/// an order that changes upstream on every request, then in runs. Each upstream must get exactly its requests
/// over one pooled connection (a stale place would hand a request to another upstream's connection, or trap).
@Suite(.serialized, .stopsServers) struct Review3UpstreamPoolGrowthTests {
    @Test func manyUpstreamsInTurnEachGetOnlyTheirOwnOverOneConnection() async throws {
        var others: [TestUpstream] = []
        for _ in 0..<7 { others.append(try await TestUpstream()) }
        let routes = others.enumerated().map { i, u in
            "  - { name: u\(i), match: [\"/u\(i)/(.*)\"], access: public, upstream: \"http://127.0.0.1:\(u.port)\" }"
        }.joined(separator: "\n")
        let h = try await GatewayHarness(routes: "  - { name: public, match: [\"/public(.*)\"], access: public }\n" + routes)
        let all = others
        defer { Task { await h.stop(); for u in all { await u.stop() } } }
        let c = try h.client()
        var sent: [[String]] = Array(repeating: [], count: others.count)
        var order: [Int] = []
        for round in 0..<3 { for i in 0..<others.count { order.append(round == 1 ? others.count - 1 - i : i) } }
        for i in 0..<others.count { order += [i, i, i] }
        for (n, i) in order.enumerated() {
            let path = "/u\(i)/echo?n=\(n)"
            sent[i].append(path)
            #expect(c.request("GET", path)?.status == 200, "\(path)")
        }
        for (i, u) in others.enumerated() {
            #expect(u.targets.withLock { $0 } == sent[i], "upstream \(i)")
            #expect(u.connections.load(ordering: .relaxed) == 1, "upstream \(i)")
        }
        #expect(h.upstream.targets.withLock { $0 }.isEmpty)
    }
}
