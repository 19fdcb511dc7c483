import Foundation
import GatehouseTLS

/// Certificates for the GatehouseTLS tests, made by the `openssl` command in a temp dir (nothing private is
/// committed): a CA, leaves it signs, and a second CA no test client trusts. All keys are ECDSA P-256.
struct TLSTestPKI: Sendable {
    let directory: String
    var caFile: String { directory + "/ca.pem" }

    /// `app.example.test` and `*.example.test`.
    var app: TLSCertificateFiles { files("app") }
    /// `other.test`.
    var other: TLSCertificateFiles { files("other") }
    /// `expired.test`, whose validity ended a day before it began.
    var expired: TLSCertificateFiles { files("expired") }
    /// `app.example.test` signed by the rogue CA.
    var untrusted: TLSCertificateFiles { files("untrusted") }
    /// IP address 127.0.0.1 only.
    var loopbackIP: TLSCertificateFiles { files("loopback-ip") }
    /// app's certificate with other's key.
    var wrongKey: TLSCertificateFiles { TLSCertificateFiles(certificateChainPath: app.certificateChainPath, privateKeyPath: other.privateKeyPath) }

    func files(_ name: String) -> TLSCertificateFiles {
        TLSCertificateFiles(certificateChainPath: "\(directory)/\(name).pem", privateKeyPath: "\(directory)/\(name).key")
    }

    /// Made once per test run.
    static let shared: Result<TLSTestPKI, TLSTestPKIFailure> = {
        do throws(TLSTestPKIFailure) { return .success(try make()) } catch { return .failure(error) }
    }()
    static func get() throws -> TLSTestPKI { try shared.get() }

    private static func make() throws(TLSTestPKIFailure) -> TLSTestPKI {
        let directory = NSTemporaryDirectory() + "gatehouse-tls-\(UInt64.random(in: 0...UInt64.max))"
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw TLSTestPKIFailure(description: "cannot create \(directory): \(error)")
        }
        let pki = TLSTestPKI(directory: directory)
        try makeCA(in: directory, name: "ca", subject: "/CN=Gatehouse TLS Test CA")
        try makeCA(in: directory, name: "rogue-ca", subject: "/CN=Rogue Test CA")
        try issue(in: directory, name: "app", subject: "/CN=app.example.test", altNames: "DNS:app.example.test,DNS:*.example.test")
        try issue(in: directory, name: "other", subject: "/CN=other.test", altNames: "DNS:other.test")
        try issue(in: directory, name: "expired", subject: "/CN=expired.test", altNames: "DNS:expired.test", days: -1)
        try issue(in: directory, name: "untrusted", subject: "/CN=app.example.test", altNames: "DNS:app.example.test", ca: "rogue-ca")
        try issue(in: directory, name: "loopback-ip", subject: "/CN=loopback", altNames: "IP:127.0.0.1")
        return pki
    }

    static func makeCA(in directory: String, name: String, subject: String) throws(TLSTestPKIFailure) {
        try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-keyout", "\(directory)/\(name).key", "-out", "\(directory)/\(name).pem", "-days", "2", "-subj", subject,
                     "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    }

    /// A leaf `name.pem`/`name.key` in `directory`, signed by `ca` in the shared PKI's directory. A random serial
    /// rather than `-CAcreateserial`: tests issuing from the same CA in parallel raced on its `.srl` file (seen in
    /// CI: "Unable to load number from ca.srl").
    static func issue(in directory: String, name: String, subject: String, altNames: String, days: Int = 2,
                      ca: String = "ca", caDirectory: String? = nil) throws(TLSTestPKIFailure) {
        let caDirectory = caDirectory ?? directory
        let ext = "\(directory)/\(name).ext"
        do {
            try "subjectAltName=\(altNames)\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n"
                .write(toFile: ext, atomically: true, encoding: .utf8)
        } catch { throw TLSTestPKIFailure(description: "cannot write \(ext)") }
        try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-keyout", "\(directory)/\(name).key", "-out", "\(directory)/\(name).csr", "-subj", subject])
        try openssl(["x509", "-req", "-in", "\(directory)/\(name).csr", "-CA", "\(caDirectory)/\(ca).pem",
                     "-CAkey", "\(caDirectory)/\(ca).key", "-set_serial", String(UInt64.random(in: 1...UInt64(Int64.max))),
                     "-out", "\(directory)/\(name).pem",
                     "-days", String(days), "-extfile", ext])
    }

    static func openssl(_ arguments: [String]) throws(TLSTestPKIFailure) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        do { try process.run() } catch { throw TLSTestPKIFailure(description: "cannot run /usr/bin/openssl: \(error)") }
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TLSTestPKIFailure(description: "openssl \(arguments.joined(separator: " ")): \(String(decoding: message, as: UTF8.self))")
        }
    }
}

struct TLSTestPKIFailure: Error, CustomStringConvertible {
    let description: String
}
