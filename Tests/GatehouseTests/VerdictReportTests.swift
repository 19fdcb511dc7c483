import Foundation
import GatehouseAuth
import GatehouseConfig
import GatehouseCore
import GatehouseDevIssuer
import GatehouseEngine
import GatehouseServer
import Testing

/// `gatehouse explain` shows what the data plane would carry out, from the same parser and RequestPolicy the
/// loop uses: forward (with the upstream head, credentials masked), answer, or refused by the parser.
@Suite struct VerdictReportTests {
    static func settings() throws -> (GatehouseSettings, KeyStore) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-verdict-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data(Fixtures.issuer.jwks.serialized().utf8).write(to: directory.appendingPathComponent("jwks.json"))
        let path = directory.appendingPathComponent("g.yaml").path
        try GatewayHarness.config(upstreamPort: 4567).write(toFile: path, atomically: true, encoding: .utf8)
        let settings = try ConfigLoader.load(path: path, environment: [:])
        return (settings, Gatekeeper.makeKeyStore(for: settings, remote: { _, _ in fatalError("local keys only") }))
    }

    @Test func aSignedInRequestIsForwardedWithItsIdentityAndNoCredentialShown() async throws {
        let (settings, keys) = try Self.settings()
        let token = Fixtures.token("user_member", iat: Fixtures.now)
        let report = await VerdictReport.json(settings: settings, keyStore: keys, method: "GET", target: "/dashboard",
                                              headers: HeaderList([("Host", "app.example.com"), ("Authorization", "Bearer " + token)]),
                                              now: Fixtures.now + 1)
        let object = try #require(report.objectValue)
        #expect(object["verdict"] == "forward")
        #expect(object["upstream"] == "http://127.0.0.1:4567")
        let head = try #require(object["upstream_head"]?.arrayValue)
        let lines = head.compactMap(\.stringValue)
        #expect(lines.first == "GET /dashboard HTTP/1.1")
        #expect(lines.contains("X-Gatehouse-User-Id: user_member"))
        #expect(lines.contains("Authorization: (masked)"))
        #expect(!report.serialized().contains(token))
    }

    @Test func aDenialAndAParserRefusalAreShownAsSuch() async throws {
        let (settings, keys) = try Self.settings()
        let denied = await VerdictReport.json(settings: settings, keyStore: keys, method: "GET", target: "/dashboard",
                                              headers: HeaderList([("Host", "app.example.com"), ("Accept", "application/json")]), now: Fixtures.now)
        #expect(denied.objectValue?["verdict"] == "answer")
        #expect(denied.objectValue?["status"]?.doubleValue == 401)
        let refused = await VerdictReport.json(settings: settings, keyStore: keys, method: "POST", target: "/upload",
                                               headers: HeaderList([("Host", "a"), ("Transfer_Encoding", "chunked")]), now: Fixtures.now)
        #expect(refused.objectValue?["verdict"] == "refused")
        #expect(refused.objectValue?["status"]?.doubleValue == 400)
    }
}
