import Foundation
@testable import GatehouseServer
import Testing

/// A keep-alive connection keeps its four buffers for `ClientConnection.bufferGrace` after a request (its
/// next request borrows none), then gives them back while it stays open: many idle connections hold no
/// buffers. Over a real socket; the loop's spare-buffer count shows where the buffers are.
@Suite(.serialized, .stopsServers) struct IdleBufferTests {
    @Test func anIdleConnectionGivesItsBuffersBackAndCanStillBeUsed() async throws {
        let h = try await GatewayHarness()
        defer { Task { await h.stop() } }
        let plane = try #require(h.server.dataPlaneServer)
        #expect(await plane.spareBuffers() == 0, "a new gateway has lent no buffer yet")
        let client = try RawClient(port: h.port)
        #expect(client.request("GET", "/public/a")?.status == 200)
        // The buffers come back once it has been idle for the grace, with the connection still open: the wait
        // stays under the harness's 5 s idle timeout, whose close would give them back too.
        let deadline = Date().addingTimeInterval(3)
        while Date() < deadline, await plane.spareBuffers() < 4 { try await Task.sleep(for: .milliseconds(20)) }
        let returned = await plane.spareBuffers()
        #expect(returned == 4)
        // The connection is still open: the next request borrows them again and is answered on it.
        #expect(client.request("GET", "/public/b")?.status == 200)
    }
}
