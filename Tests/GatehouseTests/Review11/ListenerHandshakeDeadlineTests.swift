import Foundation
import GatehouseCore
import GatehouseTLS
import Testing

/// Review of issue 11: on a TLS listener, a client that starts a handshake and never finishes it (or never
/// starts one) holds its connection no longer than `server.header_timeout` (1 s here), and the slot is freed.
@Suite(.serialized, .stopsServers) struct ListenerHandshakeDeadlineTests {
    @Test(arguments: [[UInt8](), [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03]])
    func anUnfinishedHandshakeEndsAtTheHeaderTimeout(sent: [UInt8]) async throws {
        let pki = try TLSTestPKI.get()
        let h = try await GatewayHarness(extra: ListenerTLSTests.tlsBlock([(pki.app.certificateChainPath, pki.app.privateKeyPath)])) {
            $0.replacingOccurrences(of: "idle_timeout: 5s }", with: "idle_timeout: 5s, max_connections: 1 }")
        }
        defer { Task { await h.stop() } }
        let c = try RawClient(port: h.port, timeout: 5)
        if !sent.isEmpty { c.send(sent) }
        let started = Date()
        #expect(c.isClosedByPeer())
        let waited = Date().timeIntervalSince(started)
        #expect(waited > 0.5 && waited < 3, "closed after \(waited) s")
        // The one slot (max_connections: 1) is free again: a real TLS client is served.
        let results = try await ListenerTLSTests.run(h.port, pki.caFile, [ListenerTLSTests.Step(name: "app.example.test", path: "/public/x")])
        #expect(results.first?["status"]?.doubleValue == 200, "\(results)")
    }
}
