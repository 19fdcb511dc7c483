import Foundation
import Synchronization
import Testing

/// The data plane arms deadlines lazily: a later deadline leaves an earlier one armed, which then fires early and
/// only re-arms. These check the early firing ends nothing before its time, over real sockets (that nothing is
/// late is what the timeout tests elsewhere check). Sleeps are two thirds of a 2.1 s idle timeout; on a machine
/// so loaded that a sleep overshoots into the timeout itself (then closing is right), the step is not judged.
@Suite(.serialized, .stopsServers) struct LazyDeadlineSocketTests {
    /// Inside the 2.1 s idle timeout, with 0.2 s to send in, counted from before the last request was sent (the
    /// server's timer started later, when it wrote the answer).
    static func withinIdleTimeout(since: Date) -> Bool { Date().timeIntervalSince(since) < 1.9 }

    /// `/a`, 1.4 s idle, `/b`, 1.4 s idle: the caller's next request comes past the first spell's idle deadline
    /// (2.1 s after `/a`) and within the second's. False when a sleep overshot the idle timeout under load (closing
    /// is right then, so the step is not judged).
    static func twoIdleSpells(_ c: RawClient) async throws -> Bool {
        var last = Date()
        #expect(c.request("GET", "/public/a")?.status == 200)
        try await Task.sleep(for: .milliseconds(1400))
        guard withinIdleTimeout(since: last) else { return false }
        last = Date()
        #expect(c.request("GET", "/public/b")?.status == 200)
        try await Task.sleep(for: .milliseconds(1400))
        return withinIdleTimeout(since: last)
    }

    @Test func aKeepAliveConnectionUsedAgainOutlivesTheIdleDeadlineOfItsFirstSpell() async throws {
        let h = try await GatewayHarness { $0.replacingOccurrences(of: "idle_timeout: 5s }", with: "idle_timeout: 2100ms }") }
        defer { Task { await h.stop() } }
        let c = try RawClient(port: h.port, timeout: 5)
        guard try await Self.twoIdleSpells(c) else { return }
        #expect(c.request("GET", "/public/c")?.status == 200, "closed at the deadline of an idle spell that had ended")
        let start = Date()
        #expect(c.isClosedByPeer())
        let elapsed = Date().timeIntervalSince(start)
        #expect(elapsed >= 1.5 && elapsed < 4.5, "closed after \(elapsed)s; idle_timeout is 2.1s")
    }

    @Test func aPooledUpstreamConnectionReusedOutlivesTheIdleDeadlineOfItsFirstSpell() async throws {
        let h = try await GatewayHarness { $0.replacingOccurrences(of: "proxy: { response_timeout: 1s", with: "proxy: { idle_timeout: 2100ms, response_timeout: 1s") }
        defer { Task { await h.stop() } }
        let c = try h.client()
        guard try await Self.twoIdleSpells(c) else { return }
        #expect(c.request("GET", "/public/c")?.status == 200)
        #expect(h.upstream.connections.load(ordering: .relaxed) == 1, "the pooled connection was closed at an old idle deadline")
        await eventually(within: 8) { h.upstream.openConnections.load(ordering: .relaxed) == 0 }
        #expect(c.request("GET", "/public/d")?.status == 200)
        #expect(h.upstream.connections.load(ordering: .relaxed) == 2, "the idle upstream connection outlived proxy.idle_timeout")
    }
}
