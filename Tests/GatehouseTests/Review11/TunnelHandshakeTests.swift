import Foundation
import GatehouseTLS
import Testing

/// Review of issue 11 (both engines): a tunnel opens only on a real WebSocket handshake answer.
@Suite(.serialized, .stopsServers) struct TunnelHandshakeTests {
    /// WebSocket smuggling: an upgrade on a public route to an upstream endpoint that answers `101` without
    /// switching (a status the attacker can steer, a buggy handler). Gatehouse then relays raw bytes, and the
    /// "tunnel" carries plain HTTP requests straight to the app — past routing and authentication, with
    /// identity headers the client wrote itself. A real WebSocket server proves the handshake with
    /// `Sec-WebSocket-Accept` (RFC 6455 §4.2.2, from the client's `Sec-WebSocket-Key`); without it there must
    /// be no tunnel.
    @Test
    func a101WithoutAProvenHandshakeOpensNoTunnel() async throws {
        let upstream = try ScriptedUpstream { _, request, _ in
            request == 1
                ? Array("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n".utf8)
                : Array("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret".utf8)
        }
        defer { upstream.stop() }
        let h = try await scriptedGateway(upstream)
        defer { Task { await h.stop() } }
        let c = try RawClient(port: h.port, timeout: 3)
        c.send("GET /public/ws HTTP/1.1\r\nHost: app.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
               + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        let answer = c.readResponse()?.0
        #expect(answer?.status == 502, "\(answer?.status ?? 0)")
        c.send("GET /admin/secret HTTP/1.1\r\nHost: app.example.com\r\nX-User-Email: admin@example.com\r\n\r\n")
        try await Task.sleep(for: .milliseconds(300))
        #expect(upstream.received.count == 1, "the app received \(upstream.received.map(\.head))")
    }

    /// The value itself: RFC 6455 §1.3's example key and accept (a vector from the RFC, not from this code).
    @Test func theAcceptIsRFC6455s() {
        #expect(String(decoding: WebSocketAccept.expected(forKey: "dGhlIHNhbXBsZSBub25jZQ=="), as: UTF8.self) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }
}
