import Foundation
import GatehouseTLS
import Testing

@Suite("GatehouseTLS: certificate and key errors are precise")
struct TLSConfigErrorTests {
    let pki: TLSTestPKI

    init() throws { pki = try TLSTestPKI.get() }

    /// A file in the PKI directory with the given text.
    func file(_ name: String, _ text: String) throws -> String {
        let path = pki.directory + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func missingFileIsNamed() {
        let missing = TLSCertificateFiles(certificateChainPath: pki.directory + "/missing.pem", privateKeyPath: pki.app.privateKeyPath)
        #expect(throws: TLSConfigError.fileNotReadable(path: missing.certificateChainPath, reason: "No such file or directory")) {
            try TLSServerContext(certificates: [pki.app, missing])
        }
        let missingKey = TLSCertificateFiles(certificateChainPath: pki.app.certificateChainPath, privateKeyPath: pki.directory + "/missing.key")
        let error = #expect(throws: TLSConfigError.self) { try TLSServerContext(certificates: [missingKey]) }
        #expect(error?.description == "cannot read \(pki.directory)/missing.key: No such file or directory")
        #expect(throws: TLSConfigError.fileNotReadable(path: pki.directory, reason: "not a regular file")) {
            try TLSServerContext(certificates: [TLSCertificateFiles(certificateChainPath: pki.directory, privateKeyPath: pki.app.privateKeyPath)])
        }
    }

    @Test func keyThatDoesNotMatchIsNamed() {
        let error = #expect(throws: TLSConfigError.keyDoesNotMatchCertificate(certificatePath: pki.app.certificateChainPath,
                                                                             privateKeyPath: pki.other.privateKeyPath)) {
            try TLSServerContext(certificates: [pki.wrongKey])
        }
        #expect(error?.description == "the private key in \(pki.other.privateKeyPath) does not match the certificate in \(pki.app.certificateChainPath)")
    }

    @Test func fileWithoutACertificateOrKeyIsNamed() throws {
        // The key file has no certificate in it, the certificate file no key.
        #expect(throws: TLSConfigError.noCertificateInFile(path: pki.app.privateKeyPath)) {
            try TLSServerContext(certificates: [TLSCertificateFiles(certificateChainPath: pki.app.privateKeyPath, privateKeyPath: pki.app.privateKeyPath)])
        }
        #expect(throws: TLSConfigError.noPrivateKeyInFile(path: pki.app.certificateChainPath)) {
            try TLSServerContext(certificates: [TLSCertificateFiles(certificateChainPath: pki.app.certificateChainPath, privateKeyPath: pki.app.certificateChainPath)])
        }
        let empty = try file("empty.pem", "")
        #expect(throws: TLSConfigError.noCertificateInFile(path: empty)) { try TLSClientContext(trustRootsPEMPath: empty) }
        #expect(throws: TLSConfigError.noCertificates) { try TLSServerContext(certificates: []) }
    }

    @Test func damagedOrEncryptedPEMIsAnError() throws {
        let damaged = try file("damaged.pem", "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n")
        let error = #expect(throws: TLSConfigError.self) {
            try TLSServerContext(certificates: [TLSCertificateFiles(certificateChainPath: damaged, privateKeyPath: pki.app.privateKeyPath)])
        }
        guard case .openSSL(let operation, let reason)? = error else { Issue.record("\(String(describing: error))"); return }
        #expect(operation == "reading the certificates in \(damaged)" && !reason.isEmpty)
        let encrypted = try file("encrypted.key", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n")
        #expect(throws: TLSConfigError.openSSL(operation: "reading the private key in \(encrypted)", reason: "encrypted private keys are not supported")) {
            try TLSServerContext(certificates: [TLSCertificateFiles(certificateChainPath: pki.app.certificateChainPath, privateKeyPath: encrypted)])
        }
    }

    @Test func expiredCertificateIsAWarningNotAnError() throws {
        let server = try TLSServerContext(certificates: [pki.app, pki.expired])
        #expect(server.warnings.count == 1)
        guard case .expired(let path, let notAfter)? = server.warnings.first else { Issue.record("\(server.warnings)"); return }
        #expect(path == pki.expired.certificateChainPath && notAfter.hasSuffix("GMT"))
        #expect(try TLSServerContext(certificates: [pki.app]).warnings.isEmpty)
    }

    @Test func certificateWithoutDNSNamesIsAWarning() throws {
        let server = try TLSServerContext(certificates: [pki.loopbackIP])
        #expect(server.warnings == [.noDNSNames(certificatePath: pki.loopbackIP.certificateChainPath)])
    }

    @Test func clientCertificateErrorsAreTheSame() {
        #expect(throws: TLSConfigError.keyDoesNotMatchCertificate(certificatePath: pki.app.certificateChainPath, privateKeyPath: pki.other.privateKeyPath)) {
            try TLSClientContext(trustRootsPEMPath: pki.caFile, clientCertificate: pki.wrongKey)
        }
        #expect(throws: TLSConfigError.fileNotReadable(path: pki.directory + "/nope.pem", reason: "No such file or directory")) {
            try TLSClientContext(trustRootsPEMPath: pki.directory + "/nope.pem")
        }
    }
}
