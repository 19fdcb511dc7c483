import Foundation
import GatehouseCore
import GatehouseConfig
import GatehouseServer
import GatehouseTLS
import Testing

/// TLS terminated by the data plane (`tls:`), against Python's ssl module (OpenSSL) as a real client: SNI
/// picks among several certificates, ALPN, TLS 1.3, the scheme the app and redirects see, old protocol
/// versions refused, plain HTTP on the TLS port, and new certificates on reload without dropping a
/// connection that is open.
@Suite(.serialized, .stopsServers) struct ListenerTLSTests {
    static let client = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/tls-test-client.py").path

    static func tlsBlock(_ files: [(String, String)]) -> String {
        "tls:\n  certificates:\n" + files.map { "    - { certificate: \"\($0.0)\", key: \"\($0.1)\" }" }.joined(separator: "\n")
    }

    struct Step: Encodable {
        var name: String
        var path: String
        var conn: String?
        var headers: [String: String]?
        var wait_for: String?
        var signal: String?
    }

    static func run(_ port: Int, _ ca: String, _ steps: [Step], maximumVersion: String? = nil) async throws -> [JSONObject] {
        let json = String(decoding: try JSONEncoder().encode(steps), as: UTF8.self)
        let arguments = [client, String(port), ca, json] + (maximumVersion.map { [$0] } ?? [])
        let outcome = try await OffPoolProcess.run("/usr/bin/python3", arguments, timeout: 30)
        let lines = String(decoding: outcome.stdout, as: UTF8.self).split(separator: "\n")
        return lines.compactMap { try? JSONParser.parse(Array($0.utf8)).objectValue }
    }

    @Test func sniAlpnAndTheSchemeOverRealTLS() async throws {
        let pki = try TLSTestPKI.get()
        let h = try await GatewayHarness(extra: Self.tlsBlock([
            (pki.app.certificateChainPath, pki.app.privateKeyPath), (pki.other.certificateChainPath, pki.other.privateKeyPath),
        ]))
        defer { Task { await h.stop() } }
        let token = ServerIntegrationTests.fresh("user_member")
        let results = try await Self.run(h.port, pki.caFile, [
            Step(name: "app.example.test", path: "/public/x"),
            Step(name: "other.test", path: "/public/y"),
            Step(name: "app.example.test", path: "/echo/z", conn: "echo", headers: ["Authorization": "Bearer " + token]),
            Step(name: "app.example.test", path: "/dashboard", conn: "page", headers: ["Accept": "text/html"]),
        ])
        try #require(results.count == 4, "\(results)")
        // The client verified each certificate for the name it asked: SNI chose the second for other.test.
        #expect(results[0]["status"]?.doubleValue == 200, "\(results[0])")
        #expect(results[0]["names"]?.arrayValue?.compactMap(\.stringValue).contains("app.example.test") == true)
        #expect(results[0]["version"]?.stringValue == "TLSv1.3")
        #expect(results[0]["alpn"]?.stringValue == "http/1.1")
        #expect(results[1]["status"]?.doubleValue == 200, "\(results[1])")
        #expect(results[1]["names"]?.arrayValue?.compactMap(\.stringValue) == ["other.test"])
        // The app is told the client came over https, and a redirect to sign in comes back to https.
        let echoed = try #require(results[2]["body"]?.stringValue.flatMap { try? JSONParser.parse(Array($0.utf8)).objectValue })
        #expect(echoed["headers"]?.objectValue?["x-forwarded-proto"] == ["https"])
        #expect(results[3]["status"]?.doubleValue == 307)
        #expect(results[3]["location"]?.stringValue?.contains("redirect_url=https%3A%2F%2Fapp.example.test") == true, "\(results[3])")
    }

    /// A response far larger than the socket buffers, over TLS, keep-alive: all of it arrives and the
    /// connection serves the next request (a write that left plaintext behind only because OpenSSL's backlog was
    /// full once waited for a writable edge that never came).
    @Test func aLargeDownloadOverTLSArrivesWhole() async throws {
        let pki = try TLSTestPKI.get()
        let h = try await GatewayHarness(extra: Self.tlsBlock([(pki.app.certificateChainPath, pki.app.privateKeyPath)]))
        defer { Task { await h.stop() } }
        let results = try await Self.run(h.port, pki.caFile, [
            Step(name: "app.example.test", path: "/download?bytes=8000000", conn: "big"),
            Step(name: "app.example.test", path: "/public/after", conn: "big"),
        ])
        try #require(results.count == 2, "\(results)")
        #expect(results[0]["status"]?.doubleValue == 200, "\(results[0]["error"] ?? "")")
        #expect(results[0]["body"]?.stringValue?.utf8.count == 8_000_000)
        #expect(results[1]["status"]?.doubleValue == 200)
    }

    @Test func oldProtocolsAndPlainHTTPAreRefused() async throws {
        let pki = try TLSTestPKI.get()
        let h = try await GatewayHarness(extra: Self.tlsBlock([(pki.app.certificateChainPath, pki.app.privateKeyPath)]))
        defer { Task { await h.stop() } }
        let old = try await Self.run(h.port, pki.caFile, [Step(name: "app.example.test", path: "/public/x")], maximumVersion: "1.1")
        #expect(old.first?["error"] != nil, "a TLS 1.1 client was served: \(old)")
        // Plain HTTP to the TLS port: no HTTP answer, the connection ends (it is not a TLS ClientHello).
        let plain = try RawClient(port: h.port, timeout: 3)
        plain.send("GET /public/x HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(plain.readResponse() == nil)
        #expect(plain.isClosedByPeer())
        // And the listener still serves TLS after both.
        let after = try await Self.run(h.port, pki.caFile, [Step(name: "app.example.test", path: "/public/x")])
        #expect(after.first?["status"]?.doubleValue == 200, "\(after)")
    }

    @Test func aReloadServesNewCertificatesWithoutDroppingOpenConnections() async throws {
        let pki = try TLSTestPKI.get()
        let h = try await GatewayHarness(extra: Self.tlsBlock([(pki.app.certificateChainPath, pki.app.privateKeyPath)]))
        defer { Task { await h.stop() } }
        let marks = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-tls-reload-\(UInt64.random(in: 0...UInt64.max))").path
        let ready = marks + ".ready", go = marks + ".go"
        let steps = [
            Step(name: "app.example.test", path: "/public/before", conn: "kept", signal: ready),
            Step(name: "app.example.test", path: "/public/after", conn: "kept", wait_for: go),
            Step(name: "other.test", path: "/public/new", conn: "new"),
        ]
        let port = h.port
        let running = Task { try await Self.run(port, pki.caFile, steps) }
        for _ in 0..<1500 where !FileManager.default.fileExists(atPath: ready) { try await Task.sleep(for: .milliseconds(10)) }
        // Only the other certificate from now on.
        let yaml = try String(contentsOfFile: h.configPath, encoding: .utf8)
            .replacingOccurrences(of: pki.app.certificateChainPath, with: pki.other.certificateChainPath)
            .replacingOccurrences(of: pki.app.privateKeyPath, with: pki.other.privateKeyPath)
        try yaml.write(toFile: h.configPath, atomically: true, encoding: .utf8)
        let outcome = await h.server.reload()
        guard case .applied = outcome else {
            Issue.record("reload failed: \(outcome)")
            return
        }
        FileManager.default.createFile(atPath: go, contents: nil)
        let results = try await running.value
        try #require(results.count == 3, "\(results)")
        #expect(results[0]["status"]?.doubleValue == 200)
        // The connection opened before the reload keeps its certificate and goes on serving.
        #expect(results[1]["status"]?.doubleValue == 200, "\(results[1])")
        #expect(results[1]["names"]?.arrayValue?.compactMap(\.stringValue).contains("app.example.test") == true)
        // A new one gets the new certificate.
        #expect(results[2]["status"]?.doubleValue == 200, "\(results[2])")
        #expect(results[2]["names"]?.arrayValue?.compactMap(\.stringValue) == ["other.test"])
    }

    @Test func aKeyThatDoesNotMatchIsAConfigError() throws {
        let pki = try TLSTestPKI.get()
        let yaml = GatewayHarness.config(upstreamPort: 1, extra: Self.tlsBlock([(pki.app.certificateChainPath, pki.other.privateKeyPath)]))
        #expect(throws: (any Error).self) { try ConfigLoader.load(yaml: yaml, file: "g.yaml", environment: [:]) }
        do {
            _ = try ConfigLoader.load(yaml: yaml, file: "g.yaml", environment: [:])
        } catch {
            #expect("\(error)".contains("tls.certificates"), "\(error)")
        }
    }
}
