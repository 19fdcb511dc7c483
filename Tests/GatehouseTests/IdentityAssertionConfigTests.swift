import Foundation
@testable import GatehouseAuth
import GatehouseConfig
@testable import GatehouseCore
import GatehouseEngine
import Testing

@Suite struct IdentityAssertionConfigTests {
    static let base = """
        clerk: { publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k, jwks_file: jwks.json }
        sign_in_url: /sign-in
        routes:
          - { name: public, match: ["/p(.*)"], access: public }
          - { name: app, match: ["/app(.*)"] }
        """

    static func keyPath(mode: Int = 0o600) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gh-assert-\(UInt64.random(in: 0...UInt64.max)).pem").path
        _ = try IdentityAssertionIssuer(keyFile: path, previousKeyFiles: [], settings: IdentityAssertionSettings())
        chmod(path, mode_t(mode))
        return path
    }

    func messages(_ section: String) -> [String] {
        Fixtures.configIssues(Self.base + "\n" + section).map(\.message)
    }

    @Test func preciseErrors() throws {
        let key = try Self.keyPath()
        #expect(messages("identity_assertion: { lifetime: 10s }") == ["required: the PEM file of Gatehouse's signing key (generated when missing)"])
        #expect(messages("identity_assertion: { key_file: \(key), lifetime: 10s, reuse: 6s }") == ["at most half the lifetime (10s), so a reused assertion always has time left"])
        #expect(messages("identity_assertion: { key_file: \(key), lifetime: 20.5s }") == ["a whole number of seconds (iat and exp are seconds)"])
        #expect(messages("identity_assertion: { key_file: \(key), jwks_path: /a//b }").first?.hasPrefix("expected an absolute path") == true)
        #expect(messages("identity_assertion: { key_file: \(key), audiences: { \"not a url\": x } }") == ["'not a url' is not an upstream origin such as http://127.0.0.1:3000"])
        #expect(messages("identity_assertion: { key_file: \(key), previous_keys: [/nonexistent.pem] }") == ["/nonexistent.pem cannot be read"])
        #expect(messages("identity_assertion: { key_file: \(key), algorithm: EdDSA }") == ["unknown key"])
        let open = try Self.keyPath(mode: 0o644)
        #expect(messages("identity_assertion: { key_file: \(open) }") == ["\(open) is readable by group or others (mode 644); chmod 600 it"])
        let openPrevious = try Self.keyPath(mode: 0o640)
        #expect(messages("identity_assertion: { key_file: \(key), previous_keys: [\(openPrevious)] }").first?.hasPrefix("\(openPrevious) holds a private key and is readable") == true)
        let garbage = FileManager.default.temporaryDirectory.appendingPathComponent("gh-garbage-\(UInt64.random(in: 0...UInt64.max)).pem").path
        FileManager.default.createFile(atPath: garbage, contents: Data("not a key".utf8), attributes: [.posixPermissions: 0o600])
        #expect(messages("identity_assertion: { key_file: \(garbage) }") == ["\(garbage) is not a PEM P-256 private key (PKCS#8 'PRIVATE KEY' or SEC1 'EC PRIVATE KEY')"])
    }

    @Test func aLoadedKeyIsTheSameKeyAgain() throws {
        let key = try Self.keyPath()
        let a = try IdentityAssertionIssuer(keyFile: key, previousKeyFiles: [], settings: IdentityAssertionSettings())
        let b = try IdentityAssertionIssuer(keyFile: key, previousKeyFiles: [key], settings: IdentityAssertionSettings())
        #expect(a.kid == b.kid)
        #expect(a.jwks == b.jwks)  // a previous key equal to the signing key is published once
    }

    @Test func everyProxiedDecisionCarriesOneAndDenialsNone() async throws {
        let key = try Self.keyPath()
        let g = try Fixtures.gatekeeper(Self.base + "\nidentity_assertion: { key_file: \(key), lifetime: 30s, reuse: 0s }")
        let token = Fixtures.token("user_1", lifetime: 20)
        let allowed = await g.evaluate("/app/x", headers: [("Authorization", "Bearer \(token)"), ("X-Gatehouse-Assertion", "spoofed")])
        let values = allowed.decision.upstreamHeaders?.values(IdentityHeaderPolicy.assertion) ?? []
        #expect(values.count == 1 && values.first != "spoofed")
        // Never past the session token's own expiry (20 s here, lifetime 30 s).
        let payload = try #require(values.first?.split(separator: ".").dropFirst().first.flatMap { Base64URL.decode(String($0)) })
        let claims = try JSONParser.parse(String(decoding: payload, as: UTF8.self))
        #expect(claims.value(atPath: ["exp"])?.doubleValue == Fixtures.now + 20)
        #expect(claims.value(atPath: ["iat"])?.doubleValue == Fixtures.now)
        let denied = await g.evaluate("/app/x")
        #expect(denied.decision.upstreamHeaders == nil)
        #expect(await g.evaluate("/p/x").decision.upstreamHeaders?.values(IdentityHeaderPolicy.assertion).count == 1)
        // explain shows it redacted.
        let shown = ExplainReport.json(for: allowed).value(atPath: ["upstream", "headers"])?.arrayValue?
            .first { $0.arrayValue?.first == .string(IdentityHeaderPolicy.assertion) }
        #expect(shown?.arrayValue?.last == .string("[redacted]"))
    }

    @Test func reuseIsPerExactBindingAndExpires() throws {
        let key = try Self.keyPath()
        var settings = IdentityAssertionSettings()
        settings.reuse = 2
        let issuer = try IdentityAssertionIssuer(keyFile: key, previousKeyFiles: [], settings: settings)
        let session = SessionAuth(claims: ["sub": "user_1", "sid": "sess_1", "exp": 1_800_000_100])
        let binding = IdentityAssertionIssuer.Binding(session: session, token: "t1", route: "app", audience: "a", method: "GET", host: "h", path: "/x")
        let first = issuer.assertion(for: binding, now: 1_800_000_000)
        #expect(issuer.assertion(for: binding, now: 1_800_000_001.9) == first)
        #expect(issuer.assertion(for: binding, now: 1_800_000_002) != first)
        var other = binding
        other.method = "POST"
        #expect(issuer.assertion(for: other, now: 1_800_000_000) != first)
        other = binding
        other.audience = "b"
        #expect(issuer.assertion(for: other, now: 1_800_000_000) != first)
    }

    /// A machine caller's assertion names it (`token_type`, its subject and scopes), ends no later than its
    /// token, and is never reused for another machine token on the same binding.
    @Test func machineCallersAreAssertedAsMachines() throws {
        let key = try Self.keyPath()
        var settings = IdentityAssertionSettings()
        settings.reuse = 2
        let issuer = try IdentityAssertionIssuer(keyFile: key, previousKeyFiles: [], settings: settings)
        let now = 1_800_000_000.0
        let keyA = MachineIdentity(tokenType: .apiKey, form: .opaque, id: "ak_id_a", subject: "org_1", scopes: ["read"], claims: nil,
                                   name: "ci key", expiresAt: now + 10)
        let keyB = MachineIdentity(tokenType: .apiKey, form: .opaque, id: "ak_id_b", subject: "org_2", scopes: [], claims: nil)
        let binding = IdentityAssertionIssuer.Binding(session: nil, token: nil, route: "api", audience: "a", method: "GET", host: "h", path: "/x", machine: keyA)
        let jwt = issuer.assertion(for: binding, now: now)
        let payload = try #require(jwt.split(separator: ".").dropFirst().first.flatMap { Base64URL.decode(String($0)) })
        let claims = try JSONParser.parse(String(decoding: payload, as: UTF8.self))
        #expect(claims.value(atPath: ["token_type"]) == .string("api_key"))
        #expect(claims.value(atPath: ["sub"]) == .string("org_1"))
        #expect(claims.value(atPath: ["scopes"]) == .array([.string("read")]))
        #expect(claims.value(atPath: ["key_name"]) == .string("ci key"))
        #expect(claims.value(atPath: ["exp"])?.doubleValue == now + 10)
        var other = binding
        other.machine = keyB
        let second = issuer.assertion(for: other, now: now + 0.5)
        #expect(second != jwt)
        let otherPayload = try #require(second.split(separator: ".").dropFirst().first.flatMap { Base64URL.decode(String($0)) })
        #expect(try JSONParser.parse(String(decoding: otherPayload, as: UTF8.self)).value(atPath: ["sub"]) == .string("org_2"))
    }

    /// `bind: route`: one signature per caller, route and audience for `reuse` seconds, whatever the path;
    /// the request is not in it. `bind: request` (the default) signs every distinct request.
    @Test func routeBindingSignsOncePerCallerRouteAndAudience() throws {
        let key = try Self.keyPath()
        var settings = IdentityAssertionSettings()
        settings.reuse = 2
        settings.binding = .route
        let issuer = try IdentityAssertionIssuer(keyFile: key, previousKeyFiles: [], settings: settings)
        let session = SessionAuth(claims: ["sub": "user_1", "sid": "sess_1", "exp": 1_800_000_100])
        let binding = IdentityAssertionIssuer.Binding(session: session, token: "t1", route: "app", audience: "a", method: "GET", host: "h", path: "/x")
        let first = issuer.assertion(for: binding, now: 1_800_000_000)
        var elsewhere = binding
        elsewhere.path = "/y"
        elsewhere.method = "POST"
        #expect(issuer.assertion(for: elsewhere, now: 1_800_000_001) == first)
        var otherCaller = binding
        otherCaller.token = "t2"
        otherCaller.session = SessionAuth(claims: ["sub": "user_2", "exp": 1_800_000_100])
        #expect(issuer.assertion(for: otherCaller, now: 1_800_000_001) != first)
        var otherAudience = binding
        otherAudience.audience = "b"
        #expect(issuer.assertion(for: otherAudience, now: 1_800_000_001) != first)
        let payload = try #require(first.split(separator: ".").dropFirst().first.flatMap { Base64URL.decode(String($0)) })
        let claims = try JSONParser.parse(String(decoding: payload, as: UTF8.self))
        #expect(claims.value(atPath: ["path"]) == nil && claims.value(atPath: ["method"]) == nil)
        #expect(claims.value(atPath: ["route"]) == .string("app"))
        #expect(messages("identity_assertion: { key_file: \(key), bind: path }").first?.hasPrefix("expected request (") == true)
        #expect(messages("identity_assertion: { key_file: \(key), bind: route }").isEmpty)
    }
}
