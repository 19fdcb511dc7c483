import Foundation
@testable import GatehouseAuth
import GatehouseConfig
@testable import GatehouseCore
import GatehouseDevIssuer
import GatehouseEngine
import Testing

/// Keys are generated once per test run (RSA key generation is the slow part); nothing is read from disk.
enum Fixtures {
    static let issuer = try! DevIssuer(kid: "kid-main")
    static let otherIssuer = try! DevIssuer(kid: "kid-main")  // same kid, different key: "another instance"
    static let rotatedIssuer = try! DevIssuer(kid: "kid-rotated")
    static let now: Double = 1_800_000_000

    static var keySet: KeySet {
        let parsed = try! JWKSParser.parse(Array(issuer.jwks.serialized().utf8), allowed: SigningAlgorithm.defaultAllowed)
        return KeySet(keys: parsed.keys)
    }

    static func token(
        _ userId: String = "user_1", issuer: DevIssuer = Fixtures.issuer, iat: Double = Fixtures.now, lifetime: Double = 60,
        azp: String? = "https://app.example.com", org: (id: String, slug: String, role: String, permissions: [String])? = nil,
        extra: JSONObject = JSONObject(), header: JSONObject = JSONObject()
    ) -> String {
        issuer.sign(DevIssuer.sessionClaims(userId: userId, issuedAt: iat, lifetime: lifetime, issuer: "https://clerk.example.com", azp: azp, org: org, extra: extra), header: header)
    }

    static func request(_ target: String, method: String = "GET", headers: [(String, String)] = []) throws -> CanonicalRequest {
        var list = HeaderList([("Host", "app.example.com")])
        for (n, v) in headers { list.append(n, v) }
        return try CanonicalRequest(RawRequest(method: method, target: target, headers: list, scheme: "https"))
    }

    static let exampleYAML = """
        listen: "127.0.0.1:8080"
        upstream: "http://127.0.0.1:3000"
        clerk:
          publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k
          jwks_file: jwks.json
          authorized_parties: ["https://app.example.com"]
          clock_skew: 5s
        sign_in_url: /sign-in
        identity_headers:
          strip: ["Remote-User"]
          claims: { "X-User-Email": "email" }
        routes:
          - name: public
            match: ["/", "/sign-in(.*)", "/sign-up(.*)", "/api/public(.*)"]
            access: public
          - name: admin
            match: ["/admin(.*)"]
            require: { claims: { "metadata.role": "admin" } }
          - name: org-admin
            match: ["/orgs/:slug/settings(.*)"]
            require: { org_role: "org:admin" }
          - name: billing
            match: ["/api/billing(.*)"]
            require: { permission: "org:billing:manage" }
          - name: secret
            match: ["/secret/:rest*"]
            require: { org_role: admin }
            on_forbidden: 404
          - name: app
            match: ["/dashboard(.*)", "/settings(.*)", "/api/protected(.*)"]
        default: protected
        """

    /// Loads YAML with the fixture issuer's JWKS in a temporary directory.
    static func settings(_ yaml: String = exampleYAML, environment: [String: String] = [:]) throws -> GatehouseSettings {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-tests-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Data(issuer.jwks.serialized().utf8).write(to: dir.appendingPathComponent("jwks.json"))
        // `upstream` is required; unit tests that do not care about it get the usual local one.
        let hasUpstream = yaml.split(separator: "\n").contains { $0.hasPrefix("upstream:") }
        let complete = hasUpstream ? yaml : yaml + "\nupstream: \"http://127.0.0.1:3000\"\n"  // last, so line numbers stay
        return try ConfigLoader.load(yaml: complete, file: "test.yaml", baseDirectory: dir.path, environment: environment)
    }

    /// The config errors a YAML gives (none when it loads).
    static func configIssues(_ yaml: String, environment: [String: String] = [:]) -> [ConfigIssue] {
        do {
            _ = try Fixtures.settings(yaml, environment: environment)
            return []
        } catch let error as ConfigError {
            return error.issues
        } catch {
            Issue.record("unexpected error \(error)")
            return []
        }
    }

    static func gatekeeper(_ yaml: String = exampleYAML) throws -> Gatekeeper {
        let s = try settings(yaml)
        let store = Gatekeeper.makeKeyStore(for: s) { _, _ in fatalError("no network in unit tests") }
        return Gatekeeper(settings: s, keyStore: store)
    }
}


extension Gatekeeper {
    func evaluate(_ target: String, method: String = "GET", headers: [(String, String)] = [], now: Double = Fixtures.now) async -> Evaluation {
        var list = HeaderList([("Host", "app.example.com")])
        for (n, v) in headers { list.append(n, v) }
        return await evaluate(RawRequest(method: method, target: target, headers: list, scheme: "https"), now: now)
    }
}
