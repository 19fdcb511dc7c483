import Foundation
import GatehouseTLS
import Testing

@Suite("GatehouseTLS: reload keeps old connections on the old certificate")
struct TLSReloadTests {
    let pki: TLSTestPKI

    init() throws { pki = try TLSTestPKI.get() }

    /// Writes generation `n` of app.example.test's certificate and key to the same two paths.
    func writeGeneration(_ generation: Int, in directory: String) throws {
        try TLSTestPKI.issue(in: directory, name: "site", subject: "/CN=generation \(generation)",
                             altNames: "DNS:app.example.test", caDirectory: pki.directory)
    }

    @Test func newContextFromChangedFilesServesNewConnectionsOldOnesKeepWorking() throws {
        let directory = pki.directory + "/reload-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let files = TLSCertificateFiles(certificateChainPath: directory + "/site.pem", privateKeyPath: directory + "/site.key")
        let client = try TLSClientContext(trustRootsPEMPath: pki.caFile)

        try writeGeneration(1, in: directory)
        var first: TLSServerContext? = try TLSServerContext(certificates: [files])
        let old = try TLSPair(server: first!, client: client, serverName: "app.example.test")
        #expect(old.handshake() == (.complete, .complete))
        #expect(old.client.peerCertificateSubject == "/CN=generation 1")

        try writeGeneration(2, in: directory)
        let second = try TLSServerContext(certificates: [files])
        weak let firstWeak = first
        first = nil  // the listener swaps contexts; only the old connection still holds the first one
        #expect(firstWeak != nil)

        let new = try TLSPair(server: second, client: client, serverName: "app.example.test")
        #expect(new.handshake() == (.complete, .complete))
        #expect(new.client.peerCertificateSubject == "/CN=generation 2")

        // The old connection still carries data both ways on its old keys.
        let request = Array("GET /still-here HTTP/1.1\r\nHost: app.example.test\r\n\r\n".utf8)
        #expect(TLSPair.transfer(request, from: old.client, to: old.server).received == request)
        let response = [UInt8](repeating: 0x42, count: 200_000)
        #expect(TLSPair.transfer(response, from: old.server, to: old.client).received == response)
        #expect(old.client.peerCertificateSubject == "/CN=generation 1")
    }

    @Test func brokenReloadThrowsAndLeavesTheRunningContextAlone() throws {
        let directory = pki.directory + "/broken-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let files = TLSCertificateFiles(certificateChainPath: directory + "/site.pem", privateKeyPath: directory + "/site.key")
        try writeGeneration(1, in: directory)
        let running = try TLSServerContext(certificates: [files])
        // A half-finished deploy: the new certificate is in place, its key is not.
        let keptKey = try Data(contentsOf: URL(fileURLWithPath: files.privateKeyPath))
        try writeGeneration(2, in: directory)
        try keptKey.write(to: URL(fileURLWithPath: files.privateKeyPath))
        #expect(throws: TLSConfigError.keyDoesNotMatchCertificate(certificatePath: files.certificateChainPath, privateKeyPath: files.privateKeyPath)) {
            try TLSServerContext(certificates: [files])
        }
        let pair = try TLSPair(server: running, client: try TLSClientContext(trustRootsPEMPath: pki.caFile), serverName: "app.example.test")
        #expect(pair.handshake() == (.complete, .complete))
        #expect(pair.client.peerCertificateSubject == "/CN=generation 1")
    }
}
