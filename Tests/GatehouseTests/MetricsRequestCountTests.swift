import Foundation
import GatehouseServer
import Testing

/// The request counters and latency histograms count every request under its own labels, whatever order
/// the labels come in: runs of one key, keys alternating, new keys added between (the recorder remembers
/// where the last key's entries are; a new key moves entries around).
@Suite("Metrics: requests counted by route, decision and status")
struct MetricsRequestCountTests {
    static func render(_ m: GatewayMetrics) -> [String] {
        m.render(jwksFetches: 0, jwksFailures: 0, signingKeys: 0, tokenCacheHits: 0, tokenCacheMisses: 0)
            .split(separator: "\n").map(String.init)
            .filter { $0.hasPrefix("gatehouse_requests_total{") || $0.hasPrefix("gatehouse_request_duration_seconds_count{")
                || $0.hasPrefix("gatehouse_request_duration_seconds_bucket{route=\"r1\",le=\"0.001\"}") }
    }

    @Test func everyRequestIsCountedUnderItsLabels() {
        let m = GatewayMetrics()
        // A generated sequence: runs, alternations and first appearances, counted independently here.
        var expected: [String: Int] = [:]
        var perRoute: [String: Int] = [:]
        var fastR1 = 0
        var seed: UInt64 = 42
        for i in 0..<2_000 {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            let pick = Int(seed >> 33)
            let route = i < 50 ? "r1" : ["r1", "r2", "r3", "r\(i % 40)"][pick % 4]
            let decision = ["proxy", "deny", "proxy"][pick / 4 % 3]
            let status = decision == "deny" ? 401 : [200, 200, 404][pick / 12 % 3]
            let seconds = Double(pick % 3) * 0.0008
            let run = i % 7 == 0 ? 5 : 1
            for _ in 0..<run {
                m.recordRequest(route: route, decision: decision, status: status, seconds: seconds)
                expected["gatehouse_requests_total{route=\"\(route)\",decision=\"\(decision)\",status=\"\(status)\"}", default: 0] += 1
                perRoute[route, default: 0] += 1
                if route == "r1" && seconds <= 0.001 { fastR1 += 1 }
            }
        }
        var want = expected.map { "\($0.key) \($0.value)" }
        want += perRoute.map { "gatehouse_request_duration_seconds_count{route=\"\($0.key)\"} \($0.value)" }
        want.append("gatehouse_request_duration_seconds_bucket{route=\"r1\",le=\"0.001\"} \(fastR1)")
        #expect(Self.render(m).sorted() == want.sorted())
        #expect(expected.count > 40)
    }
}
