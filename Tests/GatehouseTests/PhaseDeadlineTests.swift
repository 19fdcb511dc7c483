import Foundation
import Synchronization
import Testing

/// Every phase of an exchange has a deadline, over real sockets: none of these may hold a connection or an
/// upstream connection forever (issue 11 names them; each used to).
@Suite(.stopsServers) struct PhaseDeadlineTests {
    static func harness(sendTimeout: String = "1s") async throws -> GatewayHarness {
        try await GatewayHarness {
            $0.replacingOccurrences(of: "server: { threads: 1, header_timeout: 1s, idle_timeout: 5s }",
                                    with: "server: { threads: 1, header_timeout: 1s, idle_timeout: 5s, send_timeout: \(sendTimeout) }")
                .replacingOccurrences(of: "proxy: { response_timeout: 1s, connect_timeout: 1s }",
                                      with: "proxy: { response_timeout: 1s, connect_timeout: 1s, read_timeout: 1s }")
        }
    }

    /// The upstream sends half its response and stalls: after `proxy.read_timeout` both connections close
    /// (the client sees a short body and the close, never a hang).
    @Test func anUpstreamThatStallsMidBodyIsCutOff() async throws {
        let h = try await Self.harness()
        #expect(try String(contentsOfFile: h.configPath, encoding: .utf8).contains("read_timeout: 1s"))
        defer { Task { await h.stop() } }
        let c = try RawClient(port: h.port, timeout: 8)
        let started = Date()
        c.send("GET /public/stall?bytes=1000 HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(c.isClosedByPeer())
        let elapsed = Date().timeIntervalSince(started)
        #expect(elapsed > 0.8 && elapsed < 4, "closed after \(elapsed) s; read_timeout is 1 s")
        await eventually(within: 10) { h.upstream.openConnections.load(ordering: .relaxed) == 0 }
        #expect(h.upstream.openConnections.load(ordering: .relaxed) == 0, "the stalled upstream connection was kept")
    }

    /// The upstream answers early and the client never finishes its body: the connection is closed after
    /// the header timeout instead of waiting for the rest forever.
    @Test func aBodyThatNeverEndsAfterAnEarlyAnswerIsCutOff() async throws {
        let h = try await Self.harness()
        defer { Task { await h.stop() } }
        let c = try RawClient(port: h.port, timeout: 8)
        c.send("POST /public/early HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\nabc")
        let answer = try #require(c.readResponse(method: "POST")?.0)
        #expect(answer.status == 200)
        let started = Date()
        #expect(c.isClosedByPeer())
        #expect(Date().timeIntervalSince(started) < 4)
    }

    /// A client that stops reading a large response: after `server.send_timeout` without progress the
    /// connection (and the upstream behind it) is let go.
    @Test func aClientThatStopsReadingIsCutOff() async throws {
        let h = try await Self.harness(sendTimeout: "3s")
        defer { Task { await h.stop() } }
        let c = try RawClient(port: h.port, timeout: 8)
        let started = Date()
        c.send("GET /download?bytes=200000000 HTTP/1.1\r\nHost: a\r\n\r\n")
        // Never read: the socket buffers fill, the gateway stops reading the upstream, then gives up. What was
        // held is shown by the count of connections ever opened and the time the close took (a lower bound:
        // a test resumed late only adds to it), not by sampling the open ones inside the 3 s window, which a
        // loaded machine's test thread can sleep through.
        await eventually(within: 15) {
            h.upstream.connections.load(ordering: .relaxed) == 1 && h.upstream.openConnections.load(ordering: .relaxed) == 0
        }
        #expect(h.upstream.connections.load(ordering: .relaxed) == 1, "the download never reached the upstream")
        #expect(h.upstream.openConnections.load(ordering: .relaxed) == 0, "a client that never reads held the upstream")
        #expect(Date().timeIntervalSince(started) > 2.5, "the upstream was let go before send_timeout (3 s)")
    }
}
