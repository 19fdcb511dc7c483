import COpenSSL
@testable import GatehouseTLS
import Testing

@Suite("GatehouseTLS: session resumption and client certificates")
struct TLSSessionTests {
    let pki: TLSTestPKI
    let serverContext: TLSServerContext
    let clientContext: TLSClientContext

    init() throws {
        pki = try TLSTestPKI.get()
        serverContext = try TLSServerContext(certificates: [pki.app, pki.other])
        clientContext = try TLSClientContext(trustRootsPEMPath: pki.caFile)
    }

    /// A full handshake, then the client reads the server's ticket; returns the session to resume.
    func firstSession(_ name: String, server: TLSServerContext? = nil) throws -> TLSSession? {
        let pair = try TLSPair(server: server ?? serverContext, client: clientContext, serverName: name)
        #expect(pair.handshake() == (.complete, .complete))
        #expect(!pair.client.isSessionReused)
        #expect(pair.client.resumableSession == nil || pair.client.protocolVersion == "TLSv1.2")  // no ticket read yet
        TLSPair.move(from: pair.server, to: pair.client)
        #expect(TLSPair.readAll(pair.client).last == .needMoreCiphertext)
        return pair.client.resumableSession
    }

    @Test func ticketsResumeSessionsIncludingOnTheSNISelectedCertificate() throws {
        for name in ["app.example.test", "other.test"] {
            let session = try #require(try firstSession(name))
            #expect(session.serverName == name)
            let resumed = try TLSPair(client: try TLSConnection(client: clientContext, serverName: name, resuming: session),
                                      server: try TLSConnection(server: serverContext))
            #expect(resumed.handshake() == (.complete, .complete))
            #expect(resumed.client.isSessionReused && resumed.server.isSessionReused)
            let bytes = Array("resumed".utf8)
            #expect(TLSPair.transfer(bytes, from: resumed.client, to: resumed.server).received == bytes)
        }
    }

    @Test func sessionForAnotherNameIsNotOffered() throws {
        let session = try #require(try firstSession("app.example.test"))
        let pair = try TLSPair(client: try TLSConnection(client: clientContext, serverName: "api.example.test", resuming: session),
                               server: try TLSConnection(server: serverContext))
        #expect(pair.handshake() == (.complete, .complete))
        #expect(!pair.client.isSessionReused)
    }

    @Test func reloadedContextDoesNotResumeTheOldContextsTickets() throws {
        let session = try #require(try firstSession("app.example.test"))
        let reloaded = try TLSServerContext(certificates: [pki.app, pki.other])
        let pair = try TLSPair(client: try TLSConnection(client: clientContext, serverName: "app.example.test", resuming: session),
                               server: try TLSConnection(server: reloaded))
        #expect(pair.handshake() == (.complete, .complete))  // a full handshake instead, not a failure
        #expect(!pair.server.isSessionReused)
    }

    @Test func clientCertificateIsPresentedWhenAsked() throws {
        let server = try TLSServerContext(certificates: [pki.app])
        // The server side of mTLS is not in the API yet: ask for and verify a client certificate by hand.
        SSL_CTX_set_verify(server.contexts[0], SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
        #expect(SSL_CTX_load_verify_locations(server.contexts[0], pki.caFile, nil) == 1)
        let withCertificate = try TLSClientContext(trustRootsPEMPath: pki.caFile, clientCertificate: pki.other)
        let good = try TLSPair(server: server, client: withCertificate, serverName: "app.example.test")
        #expect(good.handshake() == (.complete, .complete))
        TLSPair.move(from: good.client, to: good.server)
        #expect(good.server.peerCertificateSubject == "/CN=other.test")
        let without = try TLSPair(server: server, client: clientContext, serverName: "app.example.test")
        let states = without.handshake()
        // TLS 1.3: the client finishes first and hears the refusal on its next read.
        #expect(states.server.failureReason?.contains("peer did not return a certificate") == true, "\(states)")
    }
}
