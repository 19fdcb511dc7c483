import Crypto
import CryptoExtras
import GatehouseCore

/// Reads a JWKS document into pinned keys. A key that Gatehouse cannot or must not use is skipped with a
/// note, never fatal: one odd key (an encryption key, an unknown curve) must not take down the others.
public enum JWKSParser {
    public struct Result: Sendable {
        public let keys: [VerificationKey]
        /// Why each skipped key was skipped (for logs and `check-config`; no key material).
        public let skipped: [String]
    }

    public static let maxDocumentBytes = 256 * 1024

    /// - Parameters:
    ///   - allowed: the algorithm allow-list; keys pinned to anything else are skipped.
    ///   - rsaDefault: the algorithm an RSA key without `alg` is pinned to.
    public static func parse(_ bytes: [UInt8], allowed: [SigningAlgorithm], rsaDefault: SigningAlgorithm = .rs256) throws -> Result {
        guard bytes.count <= maxDocumentBytes else { throw KeyError("JWKS document larger than \(maxDocumentBytes) bytes") }
        let document: JSONValue
        do {
            document = try JSONParser.parse(bytes)
        } catch {
            throw KeyError("JWKS is not valid JSON: \(error)")
        }
        guard let keys = document.objectValue?["keys"]?.arrayValue else {
            throw KeyError("JWKS has no \"keys\" array")
        }
        var usable: [VerificationKey] = []
        var skipped: [String] = []
        var seen = Set<String>()
        for (index, entry) in keys.enumerated() {
            let label = "key \(index)" + (entry.objectValue?["kid"]?.stringValue.map { " (kid \($0))" } ?? "")
            guard let jwk = entry.objectValue else { skipped.append("\(label): not an object"); continue }
            do {
                let key = try parseKey(jwk, allowed: allowed, rsaDefault: rsaDefault)
                guard let kid = key.kid else { skipped.append("\(label): no kid"); continue }
                guard seen.insert(kid).inserted else { skipped.append("\(label): repeated kid"); continue }
                usable.append(key)
            } catch {
                skipped.append("\(label): \(error)")
            }
        }
        return Result(keys: usable, skipped: skipped)
    }

    static func parseKey(_ jwk: JSONObject, allowed: [SigningAlgorithm], rsaDefault: SigningAlgorithm) throws -> VerificationKey {
        if let use = jwk["use"] {
            guard use.stringValue == "sig" else { throw KeyError("use is not \"sig\"") }
        }
        if let ops = jwk["key_ops"]?.arrayValue, !ops.contains("verify") {
            throw KeyError("key_ops does not include \"verify\"")
        }
        guard let kty = jwk["kty"]?.stringValue else { throw KeyError("no kty") }
        let kid = jwk["kid"]?.stringValue
        let declared: SigningAlgorithm?
        if let alg = jwk["alg"] {
            guard let name = alg.stringValue, let parsed = SigningAlgorithm(rawValue: name) else {
                throw KeyError("unsupported alg \(alg.serialized())")
            }
            declared = parsed
        } else {
            declared = nil
        }
        func pin(_ derived: SigningAlgorithm, fits: (SigningAlgorithm) -> Bool) throws -> SigningAlgorithm {
            let algorithm = declared ?? derived
            guard fits(algorithm) else { throw KeyError("alg \(algorithm.rawValue) does not fit kty \(kty)") }
            guard allowed.contains(algorithm) else { throw KeyError("alg \(algorithm.rawValue) is not in the allow-list") }
            return algorithm
        }
        func bytes(_ member: String) throws -> [UInt8] {
            guard let text = jwk[member]?.stringValue, let value = Base64URL.decode(text), !value.isEmpty else {
                throw KeyError("missing or invalid \(member)")
            }
            return value
        }
        switch kty {
        case "RSA":
            let algorithm = try pin(rsaDefault) { $0.isRSA }
            do {
                let key = try _RSA.Signing.PublicKey(n: try bytes("n"), e: try bytes("e"))
                return VerificationKey(kid: kid, algorithm: algorithm, material: .rsa(key))
            } catch let error as KeyError {
                throw error
            } catch {
                throw KeyError("RSA key unusable (under 2048 bits or malformed)")
            }
        case "EC":
            let crv = jwk["crv"]?.stringValue
            // RFC 7518 §6.2.1.2 wants each coordinate at the curve's full length, but some issuers (PyJWT before
            // 2.8, for one) drop leading zero bytes, about one key in 128: the same integer, so left-padded here.
            func coordinate(_ member: String, length: Int) throws -> [UInt8] {
                let value = try bytes(member)
                guard value.count <= length else { throw KeyError("invalid \(member): longer than the curve allows") }
                return [UInt8](repeating: 0, count: length - value.count) + value
            }
            let size = crv == "P-384" ? 48 : 32
            let x = try coordinate("x", length: size), y = try coordinate("y", length: size)
            switch crv {
            case "P-256":
                let algorithm = try pin(.es256) { $0 == .es256 }
                guard let key = try? P256.Signing.PublicKey(rawRepresentation: x + y) else { throw KeyError("invalid P-256 point") }
                return VerificationKey(kid: kid, algorithm: algorithm, material: .p256(key))
            case "P-384":
                let algorithm = try pin(.es384) { $0 == .es384 }
                guard let key = try? P384.Signing.PublicKey(rawRepresentation: x + y) else { throw KeyError("invalid P-384 point") }
                return VerificationKey(kid: kid, algorithm: algorithm, material: .p384(key))
            default:
                throw KeyError("unsupported EC curve \(crv ?? "none")")
            }
        case "OKP":
            guard jwk["crv"]?.stringValue == "Ed25519" else { throw KeyError("unsupported OKP curve") }
            let algorithm = try pin(.edDSA) { $0 == .edDSA }
            guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: try bytes("x")) else {
                throw KeyError("invalid Ed25519 key")
            }
            return VerificationKey(kid: kid, algorithm: algorithm, material: .ed25519(key))
        default:
            throw KeyError("unsupported kty \(kty)")
        }
    }
}
