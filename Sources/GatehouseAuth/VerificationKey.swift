import Crypto
import CryptoExtras
import Foundation
import GatehouseCore

/// JWS algorithms Gatehouse can verify. Clerk signs session tokens with RS256.
public enum SigningAlgorithm: String, Sendable, CaseIterable, Equatable {
    case rs256 = "RS256", rs384 = "RS384", rs512 = "RS512"
    case es256 = "ES256", es384 = "ES384"
    case edDSA = "EdDSA"

    public static let defaultAllowed: [SigningAlgorithm] = [.rs256, .rs384, .rs512]

    var isRSA: Bool { self == .rs256 || self == .rs384 || self == .rs512 }
}

/// One public key, pinned to exactly one algorithm. A token is only ever checked with the algorithm its key
/// is pinned to, whatever the token's header claims.
public struct VerificationKey: Sendable {
    public let kid: String?
    public let algorithm: SigningAlgorithm
    let material: Material

    enum Material: @unchecked Sendable {
        case rsa(_RSA.Signing.PublicKey)
        case p256(P256.Signing.PublicKey)
        case p384(P384.Signing.PublicKey)
        case ed25519(Curve25519.Signing.PublicKey)
    }

    init(kid: String?, algorithm: SigningAlgorithm, material: Material) {
        self.kid = kid
        self.algorithm = algorithm
        self.material = material
    }

    /// An RSA public key from PEM (SPKI `BEGIN PUBLIC KEY` or PKCS#1 `BEGIN RSA PUBLIC KEY`), or the bare
    /// base64 body of one as Clerk's dashboard shows it. Keys under 2048 bits are refused.
    public static func rsaPEM(_ text: String, kid: String? = nil, algorithm: SigningAlgorithm = .rs256) throws -> VerificationKey {
        guard algorithm.isRSA else { throw KeyError("the algorithm for an RSA key must be RS256, RS384 or RS512") }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let key: _RSA.Signing.PublicKey
        do {
            if trimmed.hasPrefix("-----BEGIN") {
                key = try _RSA.Signing.PublicKey(pemRepresentation: trimmed)
            } else {
                let body = trimmed.filter { !$0.isWhitespace }
                guard let der = Base64URL.decodeStandard(body) else { throw KeyError("not PEM or base64") }
                key = try _RSA.Signing.PublicKey(derRepresentation: der)
            }
        } catch let error as KeyError {
            throw error
        } catch {
            throw KeyError("not a usable RSA public key of at least 2048 bits (\(error))")
        }
        return VerificationKey(kid: kid, algorithm: algorithm, material: .rsa(key))
    }

    /// The algorithm and public key bytes: equal for the same key fetched twice.
    var identity: [UInt8] {
        let bytes: Data
        switch material {
        case .rsa(let key): bytes = key.derRepresentation
        case .p256(let key): bytes = key.derRepresentation
        case .p384(let key): bytes = key.derRepresentation
        case .ed25519(let key): bytes = key.rawRepresentation
        }
        return Array(algorithm.rawValue.utf8) + [0] + Array(bytes)
    }

    func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        switch material {
        case .rsa(let key):
            let sig = _RSA.Signing.RSASignature(rawRepresentation: signature)
            switch algorithm {
            case .rs256: return key.isValidSignature(sig, for: SHA256.hash(data: message), padding: .insecurePKCS1v1_5)
            case .rs384: return key.isValidSignature(sig, for: SHA384.hash(data: message), padding: .insecurePKCS1v1_5)
            case .rs512: return key.isValidSignature(sig, for: SHA512.hash(data: message), padding: .insecurePKCS1v1_5)
            default: return false
            }
        case .p256(let key):
            guard algorithm == .es256, let sig = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return key.isValidSignature(sig, for: SHA256.hash(data: message))
        case .p384(let key):
            guard algorithm == .es384, let sig = try? P384.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return key.isValidSignature(sig, for: SHA384.hash(data: message))
        case .ed25519(let key):
            guard algorithm == .edDSA else { return false }
            return key.isValidSignature(signature, for: message)
        }
    }
}

public struct KeyError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The keys usable right now. Immutable: a refresh builds a new set and swaps it in.
public struct KeySet: Sendable {
    public let keysByID: [String: VerificationKey]
    /// A key that answers for any `kid` (the `jwt_key` PEM, as Clerk's networkless mode does).
    public let anyKidKey: VerificationKey?
    /// Identifies the keys in this set by content (kid, algorithm, key bytes): a token verified with one set
    /// is verified again once the keys change, and only then — a refresh that fetched the same keys keeps
    /// the id, so the token cache survives it.
    public let id: UInt64

    public static let empty = KeySet(keys: [], anyKidKey: nil)

    public init(keys: [VerificationKey], anyKidKey: VerificationKey? = nil) {
        var byID: [String: VerificationKey] = [:]
        for key in keys {
            guard let kid = key.kid else { continue }
            byID[kid] = byID[kid] ?? key  // first wins: a JWKS with a repeated kid cannot swap keys
        }
        self.keysByID = byID
        self.anyKidKey = anyKidKey
        self.id = KeySet.contentID(byID: byID, anyKidKey: anyKidKey)
    }

    /// The first 8 bytes of SHA-256 over every key's identity, in kid order (a set holds a handful of keys).
    static func contentID(byID: [String: VerificationKey], anyKidKey: VerificationKey?) -> UInt64 {
        var hasher = SHA256()
        func add(_ bytes: [UInt8]) {
            var length = UInt32(bytes.count).bigEndian
            withUnsafeBytes(of: &length) { hasher.update(bufferPointer: $0) }
            hasher.update(data: bytes)
        }
        for kid in byID.keys.sorted() {
            add(Array(kid.utf8))
            add(byID[kid]!.identity)
        }
        add(anyKidKey.map { [1] + $0.identity } ?? [0])
        return hasher.finalize().prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    public var isEmpty: Bool { keysByID.isEmpty && anyKidKey == nil }
    public var count: Int { keysByID.count + (anyKidKey == nil ? 0 : 1) }
    public var kids: [String] { keysByID.keys.sorted() }

    public enum Lookup {
        case found(VerificationKey)
        case unknownKid
        case missingKid
        case noKeys
    }

    /// A token without `kid` is only accepted when there is exactly one key: never a silent default.
    public func key(for kid: String?) -> Lookup {
        if isEmpty { return .noKeys }
        if let kid {
            if let key = keysByID[kid] { return .found(key) }
            if let anyKidKey { return .found(anyKidKey) }
            return .unknownKid
        }
        if let anyKidKey { return .found(anyKidKey) }
        if keysByID.count == 1, let only = keysByID.values.first { return .found(only) }
        return .missingKid
    }
}
