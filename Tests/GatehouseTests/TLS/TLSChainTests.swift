import Foundation
import GatehouseTLS
import Testing

@Suite("GatehouseTLS: intermediates from the chain file are sent")
struct TLSChainTests {
    @Test func leafSignedByAnIntermediateVerifiesAgainstTheRootOnly() throws {
        let pki = try TLSTestPKI.get()
        let directory = pki.directory + "/chain-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // An intermediate CA signed by the root, and a leaf signed by the intermediate.
        try "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n"
            .write(toFile: directory + "/intermediate.ext", atomically: true, encoding: .utf8)
        try TLSTestPKI.openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                                "-keyout", directory + "/intermediate.key", "-out", directory + "/intermediate.csr",
                                "-subj", "/CN=Gatehouse TLS Test Intermediate"])
        try TLSTestPKI.openssl(["x509", "-req", "-in", directory + "/intermediate.csr", "-CA", pki.caFile,
                                "-CAkey", pki.directory + "/ca.key", "-set_serial", String(UInt64.random(in: 1...UInt64(Int64.max))), "-out", directory + "/intermediate.pem",
                                "-days", "2", "-extfile", directory + "/intermediate.ext"])
        try TLSTestPKI.issue(in: directory, name: "leaf", subject: "/CN=chained.test", altNames: "DNS:chained.test", ca: "intermediate")
        let leafOnly = TLSCertificateFiles(certificateChainPath: directory + "/leaf.pem", privateKeyPath: directory + "/leaf.key")
        let chain = try String(contentsOfFile: directory + "/leaf.pem", encoding: .utf8)
            + String(contentsOfFile: directory + "/intermediate.pem", encoding: .utf8)
        try chain.write(toFile: directory + "/fullchain.pem", atomically: true, encoding: .utf8)
        let fullChain = TLSCertificateFiles(certificateChainPath: directory + "/fullchain.pem", privateKeyPath: leafOnly.privateKeyPath)

        let client = try TLSClientContext(trustRootsPEMPath: pki.caFile)
        let good = try TLSPair(server: try TLSServerContext(certificates: [fullChain]), client: client, serverName: "chained.test")
        #expect(good.handshake() == (.complete, .complete))
        #expect(good.client.peerCertificateSubject == "/CN=chained.test")
        // Without the intermediate in the file, nothing adds it: the client cannot build the path.
        let missing = try TLSPair(server: try TLSServerContext(certificates: [leafOnly]), client: client, serverName: "chained.test")
        #expect(missing.handshake().client.failureReason == "certificate verify failed: unable to get local issuer certificate")
    }
}
