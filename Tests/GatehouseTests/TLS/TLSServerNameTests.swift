import COpenSSL
@testable import GatehouseTLS
import Testing

@Suite("GatehouseTLS: SNI picks the certificate")
struct TLSServerNameTests {
    let pki: TLSTestPKI
    let clientContext: TLSClientContext
    /// Sees whatever certificate is served (to check which one), without verifying it.
    let lookingClient: TLSClientContext

    init() throws {
        pki = try TLSTestPKI.get()
        clientContext = try TLSClientContext(trustRootsPEMPath: pki.caFile)
        lookingClient = try TLSClientContext(trustRootsPEMPath: pki.caFile, clientCertificate: nil) { context in
            SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
        }
    }

    /// The subject the client saw after a handshake that asked for `name`.
    func servedSubject(_ server: TLSServerContext, for name: String, client: TLSClientContext? = nil) throws -> (subject: String?, names: [String], sni: String?) {
        let pair = try TLSPair(server: server, client: client ?? clientContext, serverName: name)
        let states = pair.handshake()
        #expect(states.client == .complete, "\(name): \(states.client)")
        return (pair.client.peerCertificateSubject, pair.client.peerCertificateDNSNames, pair.server.requestedServerName)
    }

    @Test func eachNameGetsItsCertificate() throws {
        let server = try TLSServerContext(certificates: [pki.app, pki.other])
        #expect(server.certificateDNSNames == [["app.example.test", "*.example.test"], ["other.test"]])
        let app = try servedSubject(server, for: "app.example.test")
        #expect(app.subject == "/CN=app.example.test" && app.names == ["app.example.test", "*.example.test"] && app.sni == "app.example.test")
        let other = try servedSubject(server, for: "other.test")
        #expect(other.subject == "/CN=other.test" && other.names == ["other.test"])
        let wildcard = try servedSubject(server, for: "api.example.test")
        #expect(wildcard.subject == "/CN=app.example.test")
        let upperCase = try servedSubject(server, for: "OTHER.Test")
        #expect(upperCase.subject == "/CN=other.test" && upperCase.sni == "OTHER.Test")
    }

    @Test func noSNIOrNoMatchGetsTheFirstCertificate() throws {
        for order in [[pki.other, pki.app], [pki.app, pki.other]] {
            let server = try TLSServerContext(certificates: order)
            let firstSubject = order[0] == pki.app ? "/CN=app.example.test" : "/CN=other.test"
            // An IP literal sends no SNI.
            let noSNI = try servedSubject(server, for: "127.0.0.1", client: lookingClient)
            #expect(noSNI.sni == nil && noSNI.subject == firstSubject)
            let unknown = try servedSubject(server, for: "unknown.test", client: lookingClient)
            #expect(unknown.sni == "unknown.test" && unknown.subject == firstSubject)
            // One label only: the wildcard does not cover two.
            let deep = try servedSubject(server, for: "a.b.example.test", client: lookingClient)
            #expect(deep.subject == firstSubject)
        }
    }

    @Test func matcherPrefersExactNamesThenWildcardsInOrder() {
        let matcher = ServerNameMatcher(namesByCertificate: [["*.example.test"], ["app.example.test"], ["*.example.test", "x.test"]])
        #expect(matcher.certificateIndex(for: "app.example.test") == 1)
        #expect(matcher.certificateIndex(for: "APP.EXAMPLE.TEST") == 1)
        #expect(matcher.certificateIndex(for: "api.example.test") == 0)
        #expect(matcher.certificateIndex(for: "x.test") == 2)
        #expect(matcher.certificateIndex(for: "example.test") == nil)
        #expect(matcher.certificateIndex(for: "a.b.example.test") == nil)
        #expect(matcher.certificateIndex(for: ".example.test") == nil)
        #expect(matcher.certificateIndex(for: "*.example.test") == nil)
        #expect(matcher.certificateIndex(for: "app.example.test.") == nil)
        #expect(matcher.certificateIndex(for: "") == nil)
        #expect(matcher.certificateIndex(for: "app example.test") == nil)
    }

    @Test func wildcardCoversExactlyOneLeftmostLabel() {
        #expect(ServerNameMatcher.wildcard("*.example.test", covers: "a.example.test"))
        #expect(!ServerNameMatcher.wildcard("*.example.test", covers: "example.test"))
        #expect(!ServerNameMatcher.wildcard("*.example.test", covers: "a.b.example.test"))
        #expect(!ServerNameMatcher.wildcard("*.example.test", covers: "aexample.test"))
        #expect(!ServerNameMatcher.wildcard("a*.example.test", covers: "ab.example.test"))
        #expect(!ServerNameMatcher.wildcard("*.", covers: "a."))
    }
}
