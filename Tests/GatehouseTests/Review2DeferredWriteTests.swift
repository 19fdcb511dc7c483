import Foundation
import Glibc
import Testing

/// Since 8e1f7de the data plane writes a connection's answer at the end of the loop's pass, not in the pump
/// that made it. An answer given while the request body is still coming (`.draining`) was written before the
/// pump read on; when the client's FIN is read in the same pump (it came with the data), the machine ends the
/// connection as abandoned (`close(now)`), which drops `clientOut`: the deferred answer never leaves.
@Suite(.serialized, .stopsServers) struct Review2DeferredWriteTests {
    static let truncatedPost =
        "POST /dashboard HTTP/1.1\r\nHost: app.example.com\r\nAccept: application/json\r\nContent-Length: 100\r\n\r\nabc"

    /// Data and FIN in one segment (TCP_CORK holds the data until shutdown attaches the FIN to it), so the
    /// gateway sees both in one wake-up whatever the machine's load.
    @Test func aRefusalGivenMidBodyReachesAClientWhoseFINCameWithTheData() async throws {
        let h = try await GatewayHarness()
        defer { Task { await h.stop() } }
        let c = try h.client()
        var one: Int32 = 1
        #expect(setsockopt(c.fd, Int32(IPPROTO_TCP), TCP_CORK, &one, socklen_t(MemoryLayout<Int32>.size)) == 0)
        c.send(Self.truncatedPost)
        #expect(shutdown(c.fd, Int32(SHUT_WR)) == 0)
        let response = c.readResponse(method: "POST")?.0
        #expect(response?.status == 401, "the 401 queued for this request was dropped; received: \(c.unread.debugDescription)")
    }

    /// The same request with the FIN a moment later (another wake-up): the answer is out by then. This one
    /// passes before and after the change; it shows the refusal itself is what the first test expects.
    @Test func aRefusalGivenMidBodyReachesAClientWhoseFINCameLater() async throws {
        let h = try await GatewayHarness()
        defer { Task { await h.stop() } }
        let c = try h.client()
        c.send(Self.truncatedPost)
        try await Task.sleep(for: .milliseconds(200))
        #expect(shutdown(c.fd, Int32(SHUT_WR)) == 0)
        let response = c.readResponse(method: "POST")?.0
        #expect(response?.status == 401)
    }
}
