import Foundation
@testable import GatehouseServer
import Testing

/// A gateway (over real sockets) in front of a `ScriptedUpstream`.
func scriptedGateway(_ upstream: ScriptedUpstream, extra: String = "") async throws -> GatewayHarness {
    try await GatewayHarness(extra: extra) { yaml in
        yaml.replacingOccurrences(of: #"upstream: "http://127.0.0.1:\d+""#, with: "upstream: \"http://127.0.0.1:\(upstream.port)\"",
                                  options: .regularExpression)
    }
}

/// Review of issue 11: an upstream connection goes back to the pool only when nothing more of it is unread.
@Suite(.serialized, .stopsServers) struct PoolHygieneTests {
    /// The upstream sends more than its response in one write, and the response fills the loop's 8 KiB read
    /// buffer exactly: the surplus is still in the kernel when the response completes. Pooled like that, the
    /// next request on that connection — another client's — got the surplus as its response (a response
    /// desync: one user's bytes served to another).
    @Test func surplusBytesStillInTheSocketKeepAConnectionOutOfThePool() async throws {
        let smuggled = Array("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSMUGGLED".utf8)
        let upstream = try ScriptedUpstream { connection, request, _ in
            connection == 1 && request == 1
                ? ScriptedUpstream.response(totalBytes: 8192) + smuggled
                : Array("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal".utf8)
        }
        defer { upstream.stop() }
        let h = try await scriptedGateway(upstream)
        defer { Task { await h.stop() } }
        let first = try h.client()
        #expect(first.request("GET", "/public/first")?.status == 200)
        try await Task.sleep(for: .milliseconds(100))
        let second = try h.client()
        let answer = second.request("GET", "/public/second")
        #expect(answer?.text == "real", "got \(answer?.text.prefix(20) ?? "nothing") for another client's request")
    }

    /// The upstream answers and closes at once, without `Connection: close` (its keep-alive timeout, a server
    /// that closes after every response): the FIN comes with the response's last bytes, in the same readiness
    /// event. The response ended with a short read, so the FIN was never read and a dead connection went to the
    /// pool; the next request on it — a POST, another client's — could not be retried and got a 502.
    @Test func anUpstreamThatClosedWithItsResponseIsNotPooled() async throws {
        let upstream = try ScriptedUpstream(closeAfter: { _, _ in true }) { _, _, _ in
            Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".utf8)
        }
        defer { upstream.stop() }
        let h = try await scriptedGateway(upstream)
        defer { Task { await h.stop() } }
        #expect(try h.client().request("GET", "/public/first")?.status == 200)
        try await Task.sleep(for: .milliseconds(100))
        let post = try h.client().request("POST", "/upload", body: "payload")
        #expect(post?.status == 200, "\(post?.status ?? 0) \(post?.text ?? "")")
        #expect(upstream.received.count == 2)
    }

    /// A close-delimited response whose last bytes come with the upstream's FIN: the end was not read after the
    /// short read, so the client waited for proxy.read_timeout for the end of a response that was complete.
    @Test func aCloseDelimitedResponseEndsWhenTheUpstreamCloses() async throws {
        let upstream = try ScriptedUpstream(closeAfter: { _, _ in true }) { _, _, _ in
            Array("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil-close".utf8)
        }
        defer { upstream.stop() }
        let h = try await scriptedGateway(upstream)
        defer { Task { await h.stop() } }
        let c = try RawClient(port: h.port, timeout: 5)
        c.send("GET /public/x HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
        let started = Date()
        let answer = c.readResponse()?.0
        #expect(answer?.status == 200)
        #expect(c.isClosedByPeer())
        #expect(c.unread.hasSuffix("until-close"), "\(c.unread)")
        // Without the fix the end comes at proxy.read_timeout (60 s), after this client's own 5 s timeout.
        #expect(Date().timeIntervalSince(started) < 4, "the end came only at a timeout")
    }
}
