import Foundation
@testable import GatehouseAuth
import GatehouseConfig
@testable import GatehouseCore
import GatehouseDevIssuer
import GatehouseEngine
import Testing

/// The `jwt_key` key source (the instance's PEM public key, networkless) and the precedence warning when several
/// key sources are configured: README "Config reference", `clerk.jwt_key`.
@Suite struct KeySourceConfigTests {
    static let base = """
        clerk:
          authorized_parties: ["https://app.example.com"]
        %KEYS%
        sign_in_url: /sign-in
        routes:
          - { name: app, match: ["/dashboard(.*)"] }
        default: protected
        """

    static func yaml(_ keys: String) -> String {
        base.replacingOccurrences(of: "%KEYS%", with: keys)
    }

    /// The PEM as a YAML block scalar under `clerk:`.
    static var pemBlock: String {
        "  jwt_key: |\n" + Fixtures.issuer.publicKeyPEM.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n")
    }

    func decide(_ settings: GatehouseSettings, token: String) async -> Decision {
        let store = Gatekeeper.makeKeyStore(for: settings) { _, _ in fatalError("jwt_key needs no network") }
        let gatekeeper = Gatekeeper(settings: settings, keyStore: store)
        return await gatekeeper.evaluate("/dashboard", headers: [("Authorization", "Bearer \(token)")]).decision
    }

    @Test func aPEMInTheConfigVerifiesTheInstancesTokensAndNoOthers() async throws {
        let settings = try Fixtures.settings(Self.yaml(Self.pemBlock))
        guard case .pem = settings.keySource else {
            Issue.record("key source is \(settings.keySource.description), not jwt_key"); return
        }
        #expect(settings.warnings.allSatisfy { !$0.contains("several key sources") })
        let ours = await decide(settings, token: Fixtures.token())
        #expect(ours.action == .proxy)
        #expect(ours.status == 200)
        // Same kid, another key: the PEM accepts any kid, but the signature must still be the instance's.
        let foreign = await decide(settings, token: Fixtures.token(issuer: Fixtures.otherIssuer))
        #expect(foreign.action != .proxy)
        #expect(foreign.status == 401)
    }

    @Test func clerkJWTKeyFromTheEnvironmentTakesEscapedNewlines() async throws {
        let escaped = Fixtures.issuer.publicKeyPEM.replacingOccurrences(of: "\n", with: "\\n")
        #expect(!escaped.contains("\n"))
        let settings = try Fixtures.settings(Self.yaml(""), environment: ["CLERK_JWT_KEY": escaped])
        guard case .pem = settings.keySource else {
            Issue.record("key source is \(settings.keySource.description), not jwt_key"); return
        }
        #expect(await decide(settings, token: Fixtures.token()).action == .proxy)
        #expect(await decide(settings, token: Fixtures.token(issuer: Fixtures.rotatedIssuer)).status == 401)
    }

    @Test func aJWTKeyThatIsNotAnRSAPublicKeyIsAnErrorOnThatKey() {
        for bad in ["  jwt_key: not-a-pem", "  jwt_key: \"-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----\""] {
            do {
                _ = try Fixtures.settings(Self.yaml(bad))
                Issue.record("accepted \(bad)")
            } catch let error as ConfigError {
                #expect(error.issues.map(\.keyPath) == ["clerk.jwt_key"], "\(error.issues)")
            } catch {
                Issue.record("unexpected \(error)")
            }
        }
    }

    @Test func severalKeySourcesWarnAndTheFirstByPrecedenceIsUsed() throws {
        let all = try Fixtures.settings(Self.yaml(Self.pemBlock + "\n  jwks_file: jwks.json\n  secret_key: sk_test_x"))
        #expect(all.warnings.contains("several key sources are configured (jwt_key, jwks_file, secret_key); only jwt_key is used"),
                "\(all.warnings)")
        guard case .pem = all.keySource else { Issue.record("\(all.keySource.description)"); return }

        let two = try Fixtures.settings(Self.yaml("  jwks_file: jwks.json\n  secret_key: sk_test_x"))
        #expect(two.warnings.contains("several key sources are configured (jwks_file, secret_key); only jwks_file is used"),
                "\(two.warnings)")
        guard case .jwksFile = two.keySource else { Issue.record("\(two.keySource.description)"); return }

        let one = try Fixtures.settings(Self.yaml("  secret_key: sk_test_x"))
        #expect(one.warnings.allSatisfy { !$0.contains("several key sources") }, "\(one.warnings)")
        guard case .remote(let url, let bearer, _) = one.keySource else { Issue.record("\(one.keySource.description)"); return }
        #expect(url == "https://api.clerk.com/v1/jwks")
        #expect(bearer == "sk_test_x")
    }
}
