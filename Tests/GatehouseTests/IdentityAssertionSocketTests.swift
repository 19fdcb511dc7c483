import Foundation
@testable import GatehouseAuth
import GatehouseConfig
@testable import GatehouseCore
@testable import GatehouseServer
import Testing

/// Signed identity assertions over real sockets, verified by PyJWT (an independent implementation) fetching
/// Gatehouse's JWKS over HTTP from the admin listener, as an app would.
@Suite(.serialized, .stopsServers) struct IdentityAssertionSocketTests {
    /// PyJWT from PyPI in a venv when scripts/test.sh made one (GATEHOUSE_PYJWT_PYTHON), else Debian's python3-jwt.
    static var python: String { ProcessInfo.processInfo.environment["GATEHOUSE_PYJWT_PYTHON"] ?? "/usr/bin/python3" }
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    struct Verified {
        let pyjwt: String
        let results: [JSONValue]
    }

    static func verify(jwksURL: String, _ checks: [(token: String, audience: String)]) async throws -> Verified {
        let request: [String: Any] = ["jwks_url": jwksURL, "issuer": "gatehouse-test",
                                      "checks": checks.map { ["token": $0.token, "audience": $0.audience] }]
        let outcome = try await OffPoolProcess.run(python, [root.appendingPathComponent("scripts/verify-assertions.py").path],
                                                   stdin: try JSONSerialization.data(withJSONObject: request))
        let data = outcome.stdout
        let errorText = String(decoding: outcome.stderr, as: UTF8.self)
        guard outcome.status == 0, let parsed = try? JSONSerialization.jsonObject(with: data), let json = JSONValue(foundation: parsed),
            let results = json.value(atPath: ["results"])?.arrayValue, let version = json.value(atPath: ["pyjwt"])?.stringValue
        else { throw StartFailure(description: "scripts/verify-assertions.py failed: \(errorText)") }
        return Verified(pyjwt: version, results: results)
    }

    static func extra(keyFile: String, previous: String? = nil) -> String {
        """
        identity_assertion:
          key_file: \(keyFile)
        \(previous.map { "  previous_keys: [\($0)]\n" } ?? "")  issuer: gatehouse-test
          lifetime: 40s
          reuse: 15s  # (at most half the lifetime) the reuse check below runs after PyJWT and a JWKS fetch: a loaded machine took over 2 s
          jwks_path: /.well-known/gatehouse-jwks.json
        """
    }

    @Test func assertionsVerifyWithPyJWTAndBindTheRequest() async throws {
        let other = try await TestUpstream()
        let routes = GatewayHarness.defaultRoutes + "\n  - { name: reports, match: [\"/reports(.*)\"], upstream: \"http://127.0.0.1:\(other.port)\" }"
        let h = try await GatewayHarness(extra: Self.extra(keyFile: "assertion.pem") + "\n  audiences: { \"http://127.0.0.1:\(other.port)\": reports-api }",
                                         routes: routes)
        defer { Task { await h.stop(); await other.stop() } }
        // The key was generated, owner-only.
        let keyPath = h.directory.appendingPathComponent("assertion.pem").path
        let mode = try FileManager.default.attributesOfItem(atPath: keyPath)[.posixPermissions] as? Int
        #expect(mode == 0o600)

        let member = ServerIntegrationTests.fresh("user_member", org: ("org_1", "acme", "org:member", ["org:reports:read"]))
        func assertion(_ method: String, _ target: String, _ headers: [(String, String)], client: RawClient? = nil) throws -> String? {
            let response = try #require((client ?? (try h.client())).request(method, target, headers: headers))
            #expect(response.status == 200, "\(target)")
            let values = response.json?.value(atPath: ["headers", "x-gatehouse-assertion"])?.arrayValue ?? []
            #expect(values.count == 1, "\(target): \(values.count) assertions arrived")
            return values.first?.stringValue
        }
        let spoof = ("X-Gatehouse-Assertion", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1c2VyX2FkbWluIn0.")
        let onApp = try #require(try assertion("GET", "/echo/x?q=1", [bearer(member), spoof]))
        #expect(onApp != spoof.1)
        let onOther = try #require(try assertion("POST", "/reports/2026", [bearer(member)]))
        let signedOut = try #require(try assertion("GET", "/public/x", [spoof]))

        let jwksURL = "http://127.0.0.1:\(h.adminPort)/.well-known/jwks.json"
        let app = "http://127.0.0.1:\(h.upstream.port)"
        let tampered = onApp.split(separator: ".").enumerated().map { $0.offset == 1 ? Base64URL.encode(Array("{\"sub\":\"user_admin\",\"aud\":\"\(app)\",\"iss\":\"gatehouse-test\",\"exp\":9999999999,\"iat\":1}".utf8)) : String($0.element) }.joined(separator: ".")
        let verified = try await Self.verify(jwksURL: jwksURL, [
            (onApp, app), (onOther, "reports-api"), (signedOut, app),
            (onApp, "reports-api"),  // an assertion for one upstream is refused by another
            (onOther, app), (tampered, app),
        ])
        print("verified by PyJWT \(verified.pyjwt)")
        let r = verified.results
        let claims = try #require(r[0].value(atPath: ["claims"]))
        #expect(claims.value(atPath: ["sub"]) == .string("user_member"))
        #expect(claims.value(atPath: ["org_id"]) == .string("org_1"))
        #expect(claims.value(atPath: ["org_slug"]) == .string("acme"))
        #expect(claims.value(atPath: ["org_role"]) == .string("org:member"))
        #expect(claims.value(atPath: ["org_permissions"]) == .array(["org:reports:read"]))
        #expect(claims.value(atPath: ["sid"])?.stringValue?.isEmpty == false)
        #expect(claims.value(atPath: ["route"]) == .string("app"))
        #expect(claims.value(atPath: ["method"]) == .string("GET"))
        #expect(claims.value(atPath: ["host"]) == .string("app.example.com"))
        #expect(claims.value(atPath: ["path"]) == .string("/echo/x"))
        let iat = try #require(claims.value(atPath: ["iat"])?.doubleValue), exp = try #require(claims.value(atPath: ["exp"])?.doubleValue)
        #expect(exp - iat == 40)  // the configured lifetime
        #expect(abs(iat - Date().timeIntervalSince1970) < 10)
        let reports = try #require(r[1].value(atPath: ["claims"]))
        #expect(reports.value(atPath: ["aud"]) == .string("reports-api"))
        #expect(reports.value(atPath: ["route"]) == .string("reports"))
        #expect(reports.value(atPath: ["method"]) == .string("POST"))
        let anonymous = try #require(r[2].value(atPath: ["claims"]))
        #expect(anonymous.value(atPath: ["sub"]) == nil)
        #expect(anonymous.value(atPath: ["route"]) == .string("public"))
        #expect(r[3].value(atPath: ["error"]) == .string("InvalidAudienceError"))
        #expect(r[4].value(atPath: ["error"]) == .string("InvalidAudienceError"))
        #expect(r[5].value(atPath: ["error"]) == .string("InvalidSignatureError"))

        // The same JWKS on the configured public path, and the admin one names the signing key.
        let publicJWKS = try #require(try h.client().request("GET", "/.well-known/gatehouse-jwks.json"))
        let adminJWKS = try #require(try RawClient(port: h.adminPort).request("GET", "/.well-known/jwks.json"))
        #expect(publicJWKS.status == 200 && adminJWKS.status == 200)
        #expect(publicJWKS.json == adminJWKS.json, "\(publicJWKS.text) vs \(adminJWKS.text)")
        #expect(publicJWKS.header("cache-control") == "public, max-age=60")
        #expect(r[0].value(atPath: ["kid"]) == adminJWKS.json?.value(atPath: ["keys"])?.arrayValue?.first?.value(atPath: ["kid"]))

        // Reuse: the same binding within `reuse` gets the same signature; another path a new one.
        let again = try #require(try assertion("GET", "/echo/x?q=2", [bearer(member)]))
        #expect(again == onApp)
        #expect(try assertion("GET", "/echo/y", [bearer(member)]) != onApp)
    }

    @Test func rotationKeepsThePreviousKeyPublished() async throws {
        let h = try await GatewayHarness(extra: Self.extra(keyFile: "old.pem"))
        defer { Task { await h.stop() } }
        let member = ServerIntegrationTests.fresh("user_member")
        let old = try #require(try h.client().request("GET", "/echo/a", headers: [bearer(member)])?.json?.value(atPath: ["headers", "x-gatehouse-assertion"])?.arrayValue?.first?.stringValue)
        // Rotate: a new signing key, the old one still published.
        var yaml = try String(contentsOfFile: h.configPath, encoding: .utf8)
        yaml = yaml.replacingOccurrences(of: Self.extra(keyFile: "old.pem"), with: Self.extra(keyFile: "new.pem", previous: "old.pem"))
        try yaml.write(toFile: h.configPath, atomically: true, encoding: .utf8)
        guard case .success = await h.state.reload() else { Issue.record("reload failed"); return }
        let new = try #require(try h.client().request("GET", "/echo/a", headers: [bearer(member)])?.json?.value(atPath: ["headers", "x-gatehouse-assertion"])?.arrayValue?.first?.stringValue)
        let jwks = try #require(try RawClient(port: h.adminPort).request("GET", "/.well-known/jwks.json")?.json)
        #expect(jwks.value(atPath: ["keys"])?.arrayValue?.count == 2)
        let app = "http://127.0.0.1:\(h.upstream.port)"
        let verified = try await Self.verify(jwksURL: "http://127.0.0.1:\(h.adminPort)/.well-known/jwks.json", [(old, app), (new, app)])
        let oldKid = try #require(verified.results[0].value(atPath: ["kid"])?.stringValue)
        let newKid = try #require(verified.results[1].value(atPath: ["kid"])?.stringValue)
        #expect(oldKid != newKid)
        #expect(jwks.value(atPath: ["keys"])?.arrayValue?.first?.value(atPath: ["kid"]) == .string(newKid))
        #expect(verified.results[0].value(atPath: ["claims", "sub"]) == .string("user_member"))
    }
}
