import Foundation
import GatehouseServer
import Testing

/// `proxy.tls_ca_file` is read again on reload: after the CA file is rotated, the old trust store no longer
/// verifies anything, including connections pooled before the reload.
@Suite(.serialized) struct TLSTrustReloadTests {
    @Test func aRotatedCAFileTakesEffectOnReload() async throws {
        let certs = try TLSUpstreamTests.certificates()
        let upstream = try await TLSTestUpstream(certificate: certs.certificate(.trustedLocalhost), key: certs.key(.trustedLocalhost))
        let caFile = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-ca-\(UInt64.random(in: 0...UInt64.max)).pem").path
        try FileManager.default.copyItem(atPath: certs.caFile, toPath: caFile)
        let gateway = try await TLSUpstreamTests.gateway(upstream, caFile: caFile)
        defer { Task { await gateway.stop(); await upstream.stop() } }
        // CA A trusted, the upstream's certificate is from A; the connection stays pooled (keep-alive).
        let c = try gateway.client()
        #expect(c.request("GET", "/tls/a")?.status == 200)
        // The file now holds another certificate (B), which did not sign the upstream's.
        try Data(contentsOf: URL(fileURLWithPath: certs.certificate(.selfSignedLocalhost))).write(to: URL(fileURLWithPath: caFile))
        _ = await gateway.server.reload()
        let after = try #require(try gateway.client().request("GET", "/tls/b"))
        #expect(after.status == 502, "still trusted after the CA file changed: \(after.status)")
        #expect(try gateway.client().request("GET", "/tls/c")?.status == 502)
        // Back to A: trusted again.
        try FileManager.default.removeItem(atPath: caFile)
        try FileManager.default.copyItem(atPath: certs.caFile, toPath: caFile)
        _ = await gateway.server.reload()
        #expect(try gateway.client().request("GET", "/tls/d")?.status == 200)
    }

    @Test func aCAFileThatDoesNotParseOnReloadIsReportedAndFailsClosed() async throws {
        let certs = try TLSUpstreamTests.certificates()
        let upstream = try await TLSTestUpstream(certificate: certs.certificate(.trustedLocalhost), key: certs.key(.trustedLocalhost))
        let caFile = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-ca-\(UInt64.random(in: 0...UInt64.max)).pem").path
        try FileManager.default.copyItem(atPath: certs.caFile, toPath: caFile)
        let gateway = try await TLSUpstreamTests.gateway(upstream, caFile: caFile)
        defer { Task { await gateway.stop(); await upstream.stop() } }
        #expect(try gateway.client().request("GET", "/tls/a")?.status == 200)
        // Passes the loader's check (a PEM certificate block) but is no certificate.
        try Data("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n".utf8).write(to: URL(fileURLWithPath: caFile))
        let outcome = await gateway.server.reload()
        guard case .applied(_, _, let problems) = outcome else { Issue.record("reload refused: \(outcome)"); return }
        #expect(problems.count == 1 && problems[0].hasPrefix("proxy.tls_ca_file: "), "\(problems)")
        #expect(outcome.logLines(configPath: "g.yaml").contains { $0.hasPrefix("error: proxy.tls_ca_file: ") })
        #expect(try gateway.client().request("GET", "/tls/b")?.status == 502)
    }
}
