import Foundation
import Synchronization
import Testing

/// `https://` upstreams against a real TLS server: a verified exchange completes, and a certificate that is
/// untrusted or names another host is a 502 before a single request byte (or the secret key) is sent.
@Suite(.serialized, .stopsServers) struct TLSUpstreamTests {
    static let secretKey = "sk_test_tls_secret_\(UInt64.random(in: 1...UInt64.max))"

    /// A gateway whose `/tls…` rule and Frontend API both point at `upstream` by the name `localhost`.
    static func gateway(_ upstream: TLSTestUpstream, caFile: String?) async throws -> GatewayHarness {
        try await GatewayHarness(routes: """
              - { name: tls, match: ["/tls(.*)"], access: public, upstream: "https://localhost:\(upstream.port)" }
              - { name: public, match: ["/public(.*)"], access: public }
            """) { yaml in
            var yaml = yaml.replacingOccurrences(of: "  jwks_file: jwks.json", with: """
                  jwks_file: jwks.json
                  frontend_api_url: "https://localhost:\(upstream.port)"
                  frontend_api_proxy: /__clerk
                  secret_key: \(Self.secretKey)
                """)
            if let caFile {
                yaml = yaml.replacingOccurrences(of: "connect_timeout: 1s }", with: "connect_timeout: 1s, tls_ca_file: \"\(caFile)\" }")
            }
            return yaml
        }
    }

    static func certificates() throws -> TestCertificates { try TestCertificates.shared.get() }

    @Test func aCertificateFromTheConfiguredCACompletesARealExchange() async throws {
        let certs = try Self.certificates()
        let upstream = try await TLSTestUpstream(certificate: certs.certificate(.trustedLocalhost), key: certs.key(.trustedLocalhost))
        let gateway = try await Self.gateway(upstream, caFile: certs.caFile)
        defer { Task { await gateway.stop(); await upstream.stop() } }
        let c = try gateway.client()
        let response = try #require(c.request("GET", "/tls/x?y=1"))
        #expect(response.status == 200)
        #expect(response.text == "tls ok /tls/x?y=1")
        // The Frontend API gets its secret key only over this verified connection.
        let frontend = try #require(c.request("GET", "/__clerk/v1/environment"))
        #expect(frontend.status == 200)
        #expect(frontend.text == "tls ok /v1/environment")
        #expect(upstream.receivedText.contains("Clerk-Secret-Key: \(Self.secretKey)\r\n"))
    }

    @Test(arguments: [TestCertificates.Leaf.selfSignedLocalhost, .trustedWrongName])
    func anUntrustedOrMisnamedCertificateIs502BeforeAnyRequestByte(leaf: TestCertificates.Leaf) async throws {
        let certs = try Self.certificates()
        let upstream = try await TLSTestUpstream(certificate: certs.certificate(leaf), key: certs.key(leaf))
        let gateway = try await Self.gateway(upstream, caFile: certs.caFile)
        defer { Task { await gateway.stop(); await upstream.stop() } }
        let c = try gateway.client()
        let response = try #require(c.request("GET", "/tls/x"))
        #expect(response.status == 502)
        #expect(response.text.contains("upstream_unavailable"))
        #expect(response.text.contains("TLS certificate"))
        let frontend = try #require(try gateway.client().request("GET", "/__clerk/v1/environment"))
        #expect(frontend.status == 502)
        // The gateway did connect (so the refusal was the certificate's), and nothing was sent in the clear.
        #expect(upstream.connections.load(ordering: .relaxed) >= 2)
        #expect(upstream.received.withLock { $0.isEmpty }, "the upstream received: \(upstream.receivedText)")
        #expect(try gateway.client().request("GET", "/public/x")?.status == 200)
        let metrics = try RawClient(port: gateway.adminPort).request("GET", "/metrics")?.text ?? ""
        #expect(metrics.contains("gatehouse_upstream_errors_total{kind=\"tls_failed\"} 2"), "\(metrics)")
    }

    @Test func withoutTlsCaFileOnlyTheSystemRootsAreTrusted() async throws {
        let certs = try Self.certificates()
        let upstream = try await TLSTestUpstream(certificate: certs.certificate(.trustedLocalhost), key: certs.key(.trustedLocalhost))
        let gateway = try await Self.gateway(upstream, caFile: nil)
        defer { Task { await gateway.stop(); await upstream.stop() } }
        #expect(try gateway.client().request("GET", "/tls/x")?.status == 502)
        #expect(upstream.connections.load(ordering: .relaxed) >= 1)
        #expect(upstream.received.withLock { $0.isEmpty })
    }

    @Test func aMissingCAFileIsAConfigError() throws {
        let yaml = GatewayHarness.config(upstreamPort: 1).replacingOccurrences(of: "connect_timeout: 1s }",
                                                                              with: "connect_timeout: 1s, tls_ca_file: /nonexistent/ca.pem }")
        #expect {
            _ = try Fixtures.settings(yaml)
        } throws: { error in
            String(describing: error).contains("proxy.tls_ca_file")
        }
    }
}
