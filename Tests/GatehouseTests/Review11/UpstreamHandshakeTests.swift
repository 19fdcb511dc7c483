import Foundation
import Testing

/// Review of issue 11: a TLS upstream whose handshake flight is larger than one socket read (a long chain,
/// a certificate with many names) still completes. Edge-triggered, the loop hears of those bytes once: the
/// handshake read one 16 KiB piece per event and waited for an edge that never came (504 at connect_timeout,
/// every time, for such an upstream).
@Suite(.serialized, .stopsServers) struct UpstreamHandshakeTests {
    /// A leaf for `localhost` from the shared test CA, with enough extra names to make it ~40 KB.
    static func bigCertificate() throws -> (certificate: String, key: String) {
        let certs = try TestCertificates.shared.get()
        let directory = certs.directory.appendingPathComponent("big-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
        let names = ["DNS:localhost"] + (0..<1200).map { "DNS:name-\($0)-padding-padding.example.test" }
        try "subjectAltName=\(names.joined(separator: ","))\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
            .write(toFile: path("leaf.ext"), atomically: true, encoding: .utf8)
        try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", path("leaf.key"),
                     "-out", path("leaf.csr"), "-subj", "/CN=localhost"])
        try openssl(["x509", "-req", "-in", path("leaf.csr"), "-CA", certs.caFile, "-CAkey", certs.path("ca.key"), "-set_serial", String(UInt64.random(in: 1...UInt64(Int64.max))),
                     "-out", path("leaf.pem"), "-days", "2", "-extfile", path("leaf.ext")])
        return (path("leaf.pem"), path("leaf.key"))
    }

    static func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw POSIXError(.EINVAL) }
    }

    @Test func aHandshakeFlightLargerThanOneReadCompletes() async throws {
        let big = try Self.bigCertificate()
        let size = try Data(contentsOf: URL(fileURLWithPath: big.certificate)).count
        try #require(size > 32 * 1024, "the certificate is \(size) bytes")
        let upstream = try await TLSTestUpstream(certificate: big.certificate, key: big.key)
        let gateway = try await TLSUpstreamTests.gateway(upstream, caFile: try TestCertificates.shared.get().caFile)
        defer { Task { await gateway.stop(); await upstream.stop() } }
        let c = try gateway.client()
        let response = c.request("GET", "/tls/x")
        #expect(response?.status == 200, "\(response?.status ?? 0) \(response?.text ?? "")")
    }
}
