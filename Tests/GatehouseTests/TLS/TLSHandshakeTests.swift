import COpenSSL
@testable import GatehouseTLS
import Testing

@Suite("GatehouseTLS: handshake and data in memory")
struct TLSHandshakeTests {
    let pki: TLSTestPKI
    let serverContext: TLSServerContext
    let clientContext: TLSClientContext

    init() throws {
        pki = try TLSTestPKI.get()
        serverContext = try TLSServerContext(certificates: [pki.app, pki.other])
        clientContext = try TLSClientContext(trustRootsPEMPath: pki.caFile)
    }

    @Test func handshakeNegotiatesTLS13AndHTTP11() throws {
        let pair = try TLSPair(server: serverContext, client: clientContext, serverName: "app.example.test")
        #expect(!pair.client.isHandshakeComplete && pair.client.protocolVersion == nil)
        let states = pair.handshake()
        #expect(states.client == .complete && states.server == .complete)
        #expect(pair.client.isHandshakeComplete && pair.server.isHandshakeComplete)
        #expect(pair.client.protocolVersion == "TLSv1.3" && pair.server.protocolVersion == "TLSv1.3")
        #expect(pair.client.negotiatedALPN == "http/1.1" && pair.server.negotiatedALPN == "http/1.1")
        #expect(pair.server.requestedServerName == "app.example.test")
        #expect(pair.client.cipherSuite?.hasPrefix("TLS_") == true)
        #expect(pair.server.peerCertificateSubject == nil)  // no client certificate asked for
    }

    @Test func handshakeOutputComesWithoutAnyPlaintextWrite() throws {
        let pair = try TLSPair(server: serverContext, client: clientContext, serverName: "app.example.test")
        #expect(pair.client.advanceHandshake() == .inProgress)
        #expect(pair.client.pendingCiphertextCount > 0)  // the ClientHello
        var buffer = [UInt8](repeating: 0, count: 16)
        #expect(buffer.withUnsafeMutableBytes { pair.server.readPlaintext(into: $0) } == .needMoreCiphertext)
        #expect([UInt8]("early".utf8).withUnsafeBytes { pair.server.writePlaintext($0) } == .needMoreCiphertext)
    }

    @Test func dataBothWaysIncludingOneMebibyte() throws {
        let pair = try TLSPair(server: serverContext, client: clientContext, serverName: "app.example.test")
        #expect(pair.handshake() == (.complete, .complete))
        let request = Array("GET / HTTP/1.1\r\nHost: app.example.test\r\n\r\n".utf8)
        let up = TLSPair.transfer(request, from: pair.client, to: pair.server)
        #expect(up.received == request)
        var generator = SystemRandomNumberGenerator()
        let body = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let down = TLSPair.transfer(body, from: pair.server, to: pair.client)
        #expect(down.received.count == body.count)
        #expect(down.received == body)
        #expect(down.last == .needMoreCiphertext)
    }

    @Test func largeWriteStopsAtTheCiphertextBacklog() throws {
        let pair = try TLSPair(server: serverContext, client: clientContext, serverName: "app.example.test")
        #expect(pair.handshake() == (.complete, .complete))
        TLSPair.move(from: pair.server, to: pair.client)
        let body = [UInt8](repeating: 7, count: 4 << 20)
        let result = body.withUnsafeBytes { pair.server.writePlaintext($0) }
        guard case .accepted(let accepted) = result else { Issue.record("write: \(result)"); return }
        #expect(accepted > 0 && accepted < body.count)
        #expect(pair.server.pendingCiphertextCount >= TLSConnection.ciphertextBacklogLimit)
        #expect(pair.server.pendingCiphertextCount < TLSConnection.ciphertextBacklogLimit + 17 * 1024)
    }

    @Test func tls12IsStillAcceptedWithAnECDHEAEADSuite() throws {
        let client = try TLSClientContext(trustRootsPEMPath: pki.caFile, clientCertificate: nil) { context in
            _ = gh_ssl_ctx_set_max_proto_version(context, TLS1_2_VERSION)
        }
        let pair = try TLSPair(server: serverContext, client: client, serverName: "app.example.test")
        #expect(pair.handshake() == (.complete, .complete))
        #expect(pair.server.protocolVersion == "TLSv1.2")
        #expect(pair.server.cipherSuite == "ECDHE-ECDSA-AES128-GCM-SHA256")
    }

    @Test func tls11OnlyClientIsRefused() throws {
        let client = try TLSClientContext(trustRootsPEMPath: pki.caFile, clientCertificate: nil) { context in
            // Debian's default security level forbids TLS 1.1 even on the client; lower it for this peer only.
            SSL_CTX_set_security_level(context, 0)
            _ = SSL_CTX_set_cipher_list(context, "DEFAULT:@SECLEVEL=0")
            _ = gh_ssl_ctx_set_min_proto_version(context, TLS1_1_VERSION)
            _ = gh_ssl_ctx_set_max_proto_version(context, TLS1_1_VERSION)
        }
        let pair = try TLSPair(server: serverContext, client: client, serverName: "app.example.test")
        let states = pair.handshake()
        #expect(states.server.failureReason == "unsupported protocol")
        #expect(states.client.failureReason?.contains("protocol version") == true)
        #expect(!pair.server.isHandshakeComplete)
    }

    @Test func clientWithoutALPNIsServedWithoutIt() throws {
        let client = try TLSClientContext(trustRootsPEMPath: pki.caFile, clientCertificate: nil) { context in
            _ = SSL_CTX_set_alpn_protos(context, nil, 0)
        }
        let pair = try TLSPair(server: serverContext, client: client, serverName: "app.example.test")
        #expect(pair.handshake() == (.complete, .complete))
        #expect(pair.server.negotiatedALPN == nil)
    }

    @Test func clientOfferingOnlyOtherProtocolsIsRefusedAsNginxDoes() throws {
        let client = try TLSClientContext(trustRootsPEMPath: pki.caFile, clientCertificate: nil) { context in
            let protocols: [UInt8] = [2] + Array("h2".utf8) + [8] + Array("spdy/3.1".utf8)
            _ = SSL_CTX_set_alpn_protos(context, protocols, UInt32(protocols.count))
        }
        let pair = try TLSPair(server: serverContext, client: client, serverName: "app.example.test")
        let states = pair.handshake()
        #expect(states.server.failureReason?.contains("no application protocol") == true)
        #expect(states.client.failureReason?.contains("no application protocol") == true)
    }

    @Test func closeNotifyIsSeenAsClosed() throws {
        let pair = try TLSPair(server: serverContext, client: clientContext, serverName: "app.example.test")
        #expect(pair.handshake() == (.complete, .complete))
        let last = Array("last words".utf8)
        _ = last.withUnsafeBytes { pair.client.writePlaintext($0) }
        pair.client.shutdown()
        pair.client.shutdown()  // once only
        TLSPair.move(from: pair.client, to: pair.server)
        let read = TLSPair.readAll(pair.server)
        #expect(read.received == last)
        #expect(read.last == .closed)
        var buffer = [UInt8](repeating: 0, count: 8)
        #expect(buffer.withUnsafeMutableBytes { pair.server.readPlaintext(into: $0) } == .closed)
        #expect(last.withUnsafeBytes { pair.client.writePlaintext($0) } == .failed(TLSFailure(reason: "write after shutdown")))
    }

    @Test func endOfStreamWithoutCloseNotifyFailsAsTruncated() throws {
        let pair = try TLSPair(server: serverContext, client: clientContext, serverName: "app.example.test")
        #expect(pair.handshake() == (.complete, .complete))
        var buffer = [UInt8](repeating: 0, count: 8)
        #expect(buffer.withUnsafeMutableBytes { pair.server.readPlaintext(into: $0) } == .needMoreCiphertext)
        pair.server.receiveEndOfCiphertext()
        let result = buffer.withUnsafeMutableBytes { pair.server.readPlaintext(into: $0) }
        #expect(result.failureReason == "unexpected eof while reading")
    }
}
