import Foundation
@testable import GatehouseAuth
import GatehouseCore
import Testing

/// Tokens and JWKS made by PyJWT + cryptography (scripts/jwt-vectors.py, run here with Debian's python3), so
/// the verifier is checked against an outside signer and encoder rather than Gatehouse's own DevIssuer: a
/// symmetric Base64URL, JSON or signature-format bug would show. Fresh keys on every run.
@Suite(.serialized) struct JWTVectorTests {
    struct Vectors {
        let keys: KeySet
        let tokens: [String: String]
        let now: Double
    }

    static let algorithms: [SigningAlgorithm] = [.rs256, .es256, .es384, .edDSA]

    static let vectors: Result<Vectors, any Error> = Result {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let now = Date().timeIntervalSince1970.rounded(.down)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [root.appendingPathComponent("scripts/jwt-vectors.py").path, String(Int(now))]
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0,
            let object = try JSONSerialization.jsonObject(with: data) as? [String: Any],
            let jwks = object["jwks"], let tokens = object["tokens"] as? [String: String]
        else {
            throw StartFailure(description: "scripts/jwt-vectors.py failed (needs python3-jwt and python3-cryptography): \(errorText)")
        }
        // The JWKS document goes to Gatehouse's parser as bytes, exactly as PyJWT's to_jwk wrote the keys.
        let parsed = try JWKSParser.parse(Array(try JSONSerialization.data(withJSONObject: jwks)), allowed: algorithms)
        guard parsed.skipped.isEmpty else { throw StartFailure(description: "keys skipped: \(parsed.skipped)") }
        return Vectors(keys: KeySet(keys: parsed.keys), tokens: tokens, now: now)
    }

    enum Outcome: Equatable {
        case verified(JSONObject)
        case refused(TokenFailure)

        var claims: JSONObject? {
            if case .verified(let claims) = self { return claims }
            return nil
        }
    }

    func outcome(_ name: String, algorithms: [SigningAlgorithm] = JWTVectorTests.algorithms) throws -> Outcome {
        let vectors = try Self.vectors.get()
        let token = try #require(vectors.tokens[name], "no vector \(name)")
        let policy = VerificationPolicy(allowedAlgorithms: algorithms, authorizedParties: ["https://app.example.com"])
        do {
            return .verified(try TokenVerifier.verify(try DecodedToken(token), keys: vectors.keys, policy: policy, now: vectors.now + 1))
        } catch {
            return .refused(error.reason)
        }
    }

    @Test func pyJWTsKeysAreAllUsable() throws {
        #expect(try Self.vectors.get().keys.keysByID.keys.sorted() == ["pyjwt-eddsa", "pyjwt-es256", "pyjwt-es384", "pyjwt-rs256"])
    }

    @Test(arguments: ["RS256", "ES256", "ES384", "EdDSA"])
    func aTokenSignedByPyJWTVerifies(alg: String) throws {
        let result = try outcome(alg)
        let claims = try #require(result.claims, "refused: \(result)")
        #expect(claims["sub"] == .string("user_pyjwt"))
        #expect(claims["sid"] == .string("sess_pyjwt"))
    }

    @Test(arguments: ["RS256", "ES256", "ES384", "EdDSA"])
    func tamperedPyJWTTokensAreRefused(alg: String) throws {
        #expect(try outcome(alg + "-payload-swapped") == .refused(.invalidSignature))
        #expect(try outcome(alg + "-signature-flipped") == .refused(.invalidSignature))
        #expect(try outcome(alg + "-expired") == .refused(.expired))
    }

    @Test func anAlgorithmTheKeyIsNotPinnedToIsRefused() throws {
        // An ES256 signature relabelled ES384 under the P-384 key's kid: the header matches the key, the
        // signature (a P-256 one, 64 bytes) does not.
        #expect(try outcome("ES256-as-ES384") == .refused(.invalidSignature))
        #expect(try outcome("ES256-foreign-key") == .refused(.invalidSignature))
    }

    @Test func algorithmsOutsideTheAllowListAreRefusedEvenWithAValidSignature() throws {
        // The default list is RS256/384/512: ES256, ES384 and EdDSA must be asked for.
        for alg in ["ES256", "ES384", "EdDSA"] {
            #expect(try outcome(alg, algorithms: SigningAlgorithm.defaultAllowed) == .refused(.invalidAlgorithm), "\(alg)")
        }
        #expect(try outcome("RS256", algorithms: SigningAlgorithm.defaultAllowed).claims?["sub"] == .string("user_pyjwt"))
    }
}
