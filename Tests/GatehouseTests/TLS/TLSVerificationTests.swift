import GatehouseTLS
import Testing

@Suite("GatehouseTLS: the client verifies its peer")
struct TLSVerificationTests {
    let pki: TLSTestPKI
    let clientContext: TLSClientContext

    init() throws {
        pki = try TLSTestPKI.get()
        clientContext = try TLSClientContext(trustRootsPEMPath: pki.caFile)
    }

    @Test func hostnameMismatchFailsWithAClearMessage() throws {
        let server = try TLSServerContext(certificates: [pki.app])
        let pair = try TLSPair(server: server, client: clientContext, serverName: "wrong.test")
        let states = pair.handshake()
        #expect(states.client.failureReason == "certificate verify failed: hostname mismatch")
        #expect(states.server.failureReason?.contains("alert") == true)
        #expect(!pair.client.isHandshakeComplete)
        // Sticky: nothing more is read or written once failed.
        var buffer = [UInt8](repeating: 0, count: 8)
        #expect(buffer.withUnsafeMutableBytes { pair.client.readPlaintext(into: $0) }.failureReason == states.client.failureReason)
    }

    @Test func untrustedCAFails() throws {
        let server = try TLSServerContext(certificates: [pki.untrusted])
        let states = try TLSPair(server: server, client: clientContext, serverName: "app.example.test").handshake()
        #expect(states.client.failureReason == "certificate verify failed: unable to get local issuer certificate")
        #expect(states.server.failureReason?.contains("unknown ca") == true)
    }

    @Test func systemRootsDoNotTrustTheTestCA() throws {
        let system = try TLSClientContext(trustRootsPEMPath: nil)
        let server = try TLSServerContext(certificates: [pki.app])
        let states = try TLSPair(server: server, client: system, serverName: "app.example.test").handshake()
        #expect(states.client.failureReason == "certificate verify failed: unable to get local issuer certificate")
    }

    @Test func expiredCertificateIsRefusedByTheClient() throws {
        let server = try TLSServerContext(certificates: [pki.expired])
        let states = try TLSPair(server: server, client: clientContext, serverName: "expired.test").handshake()
        #expect(states.client.failureReason == "certificate verify failed: certificate has expired")
    }

    @Test func ipLiteralsAreVerifiedAgainstIPAddressesWithoutSNI() throws {
        let server = try TLSServerContext(certificates: [pki.loopbackIP])
        let good = try TLSPair(server: server, client: clientContext, serverName: "127.0.0.1")
        #expect(good.handshake() == (.complete, .complete))
        #expect(good.server.requestedServerName == nil)
        let wrong = try TLSPair(server: server, client: clientContext, serverName: "127.0.0.2")
        #expect(wrong.handshake().client.failureReason == "certificate verify failed: IP address mismatch")
        // A DNS name is not matched against an IP SAN.
        let named = try TLSPair(server: server, client: clientContext, serverName: "localhost")
        #expect(named.handshake().client.failureReason == "certificate verify failed: hostname mismatch")
    }

    @Test func emptyServerNameIsRefusedUpFront() throws {
        #expect(throws: TLSConfigError.emptyServerName) { try TLSConnection(client: clientContext, serverName: "") }
    }
}
