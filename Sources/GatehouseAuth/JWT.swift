#if canImport(Glibc)
import Glibc
#endif
import GatehouseCore

// JWT parsing and verification, written on swift-crypto rather than jwt-kit: jwt-kit caches the first `alg`
// seen per key, falls back to a default key for unknown `kid`s, fails a whole JWKS on one odd key, and its
// RS256 verify measured ~3x slower than the raw CryptoExtras call (shared/docs/swift-architecture.md §4).
// The JOSE subset Clerk needs is small enough to own.

/// Clerk's `TokenVerificationErrorReason` strings, so operators can compare with Clerk's own logs.
public enum TokenFailure: String, Sendable, Equatable {
    case expired = "token-expired"
    case invalid = "token-invalid"
    case invalidAlgorithm = "token-invalid-algorithm"
    case invalidAuthorizedParties = "token-invalid-authorized-parties"
    case invalidSignature = "token-invalid-signature"
    case notActiveYet = "token-not-active-yet"
    case issuedInTheFuture = "token-iat-in-the-future"
    case verificationFailed = "token-verification-failed"
    case kidMismatch = "jwk-kid-mismatch"
    /// No usable key at all: the gateway cannot judge the token (answered with 503, not 401).
    case keysUnavailable = "jwk-failed-to-resolve"
}

public struct TokenVerificationError: Error, Equatable, Sendable, CustomStringConvertible {
    public let reason: TokenFailure
    public let message: String
    /// What only `explain` and logs may see (e.g. the claim a route requires); nil when `message` says all.
    public let detail: String?

    public init(_ reason: TokenFailure, _ message: String, detail: String? = nil) {
        self.reason = reason
        self.message = message
        self.detail = detail
    }

    public var description: String { "\(message) (reason=\(reason.rawValue))" }
}

/// A JWT split and decoded but not yet trusted.
public struct DecodedToken: Sendable {
    public let header: JSONObject
    public let payload: JSONObject
    let signingInput: [UInt8]
    let signature: [UInt8]

    public static let maxBytes = 16 * 1024

    public var algorithm: String? { header["alg"]?.stringValue }
    public var kid: String? { header["kid"]?.stringValue }
    /// Clerk token category (`cat` header), e.g. `cl_B7d4PD111AAA` for session tokens.
    public var category: String? { header["cat"]?.stringValue }

    public init(_ token: String) throws(TokenVerificationError) {
        let bytes = Array(token.utf8)
        guard bytes.count <= DecodedToken.maxBytes else {
            throw TokenVerificationError(.invalid, "Token is larger than \(DecodedToken.maxBytes) bytes.")
        }
        // The two dots found with memchr (a generic `split` walked the ~800 bytes through a closure, ~5,000
        // instructions per token, callgrind); exactly two, parts may be empty (then refused below).
        guard let (firstDot, secondDot) = DecodedToken.twoDots(bytes) else {
            throw TokenVerificationError(.invalid, "Invalid JWT form. A JWT consists of three parts separated by dots.")
        }
        guard let headerBytes = Base64URL.decode(bytes[..<firstDot]), let payloadBytes = Base64URL.decode(bytes[(firstDot + 1)..<secondDot]),
            let signature = Base64URL.decode(bytes[(secondDot + 1)...])
        else {
            throw TokenVerificationError(.invalid, "Invalid JWT form. The token parts could not be decoded.")
        }
        guard !signature.isEmpty else {
            throw TokenVerificationError(.invalid, "Invalid JWT form. The signature is missing.")
        }
        guard case .object(let header)? = try? JSONParser.parse(headerBytes),
            case .object(let payload)? = try? JSONParser.parse(payloadBytes)
        else {
            throw TokenVerificationError(.invalid, "Invalid JWT form. The header and payload must be JSON objects (without duplicate members).")
        }
        self.header = header
        self.payload = payload
        self.signature = signature
        self.signingInput = Array(bytes[..<secondDot])
    }

    /// The offsets of the only two `.` in `bytes`; nil when there are fewer or more.
    static func twoDots(_ bytes: [UInt8]) -> (Int, Int)? {
        bytes.withUnsafeBufferPointer { b -> (Int, Int)? in
            guard let base = b.baseAddress else { return nil }
            func dot(from start: Int) -> Int? {
                guard start < b.count, let hit = memchr(base + start, Int32(UInt8(ascii: ".")), b.count - start) else { return nil }
                return UnsafeRawPointer(hit) - UnsafeRawPointer(base)
            }
            guard let first = dot(from: 0), let second = dot(from: first + 1), dot(from: second + 1) == nil else { return nil }
            return (first, second)
        }
    }
}

/// Claim checks applied after the signature, configured by the operator.
public struct VerificationPolicy: Sendable {
    public var allowedAlgorithms: [SigningAlgorithm]
    /// Seconds of tolerance for `exp`, `nbf` and `iat`.
    public var clockSkew: Double
    /// `azp` allow-list; empty means no check (Clerk's default).
    public var authorizedParties: [String]
    /// When non-empty, a token `aud` must intersect it.
    public var audiences: [String]
    /// When set, `iss` must equal it exactly.
    public var issuer: String?

    public init(
        allowedAlgorithms: [SigningAlgorithm] = SigningAlgorithm.defaultAllowed, clockSkew: Double = 5,
        authorizedParties: [String] = [], audiences: [String] = [], issuer: String? = nil
    ) {
        self.allowedAlgorithms = allowedAlgorithms
        self.clockSkew = clockSkew
        self.authorizedParties = authorizedParties
        self.audiences = audiences
        self.issuer = issuer
    }
}

public enum TokenVerifier {
    /// Latest accepted `exp`: the year 9999. Anything later is a forged or broken token.
    static let maxTimestamp = 253_402_300_799.0

    /// Header checks, key choice, signature, then claims — in that order, so nothing about the claims of an
    /// unsigned token influences the answer.
    public static func verify(
        _ token: DecodedToken, keys: KeySet, policy: VerificationPolicy, now: Double
    ) throws(TokenVerificationError) -> JSONObject {
        try verifySignature(token, keys: keys, policy: policy)
        try checkClaims(token.payload, policy: policy, now: now)
        return token.payload
    }

    /// The header rules and the signature, without any claim check (handshake tokens stop here).
    /// `types`: the header `typ` values allowed when present (OAuth access tokens use `at+jwt`).
    /// A session token's allowed `typ`, built once: as a default argument's literal the set was built on every
    /// verification (~650 instructions, callgrind).
    static let jwtTypes: Set<String> = ["JWT"]

    static func verifySignature(_ token: DecodedToken, keys: KeySet, policy: VerificationPolicy, types: Set<String> = jwtTypes) throws(TokenVerificationError) {
        let header = token.header
        if let typ = header["typ"], !(typ.stringValue.map(types.contains) ?? false) {
            throw TokenVerificationError(.invalid, "Invalid JWT type \(typ.serialized()). Expected \(types.sorted().map { "\"\($0)\"" }.joined(separator: " or ")).")
        }
        if header["crit"] != nil {
            throw TokenVerificationError(.invalid, "JWT header has critical extensions (crit), which are not supported.")
        }
        guard let algName = token.algorithm, let algorithm = SigningAlgorithm(rawValue: algName),
            policy.allowedAlgorithms.contains(algorithm)
        else {
            throw TokenVerificationError(.invalidAlgorithm, "Invalid JWT algorithm. Supported: \(policy.allowedAlgorithms.map(\.rawValue).joined(separator: ", ")).")
        }
        if let kid = header["kid"], kid.stringValue == nil {
            throw TokenVerificationError(.invalid, "JWT kid must be a string.")
        }
        let key: VerificationKey
        switch keys.key(for: token.kid) {
        case .found(let found): key = found
        case .noKeys: throw TokenVerificationError(.keysUnavailable, "No signing keys are available to verify the token.")
        case .unknownKid: throw TokenVerificationError(.kidMismatch, "Unable to find a signing key that matches the token's kid.")
        case .missingKid: throw TokenVerificationError(.kidMismatch, "The token has no kid and several signing keys are configured.")
        }
        guard key.algorithm == algorithm else {
            throw TokenVerificationError(.invalidAlgorithm, "The token's algorithm does not match the algorithm pinned for its key.")
        }
        guard key.isValidSignature(token.signature, for: token.signingInput) else {
            throw TokenVerificationError(.invalidSignature, "JWT signature is invalid.")
        }
    }

    static func checkClaims(_ claims: JSONObject, policy: VerificationPolicy, now: Double) throws(TokenVerificationError) {
        try checkIdentityClaims(claims, policy: policy)
        guard let exp = try timestamp(claims, "exp") else {
            throw TokenVerificationError(.verificationFailed, "Expiration claim (exp) is required.")
        }
        try checkExpiry(exp, policy: policy, now: now)
        if let nbf = try timestamp(claims, "nbf") { try checkNotBefore(nbf, policy: policy, now: now) }
        if let iat = try timestamp(claims, "iat") { try checkIssuedAt(iat, policy: policy, now: now) }
    }

    /// `checkClaims` for a cached verified token, with its NumericDate claims read when it was stored (the
    /// payload does not change; the policy and the clock may, so every rule is applied again).
    static func checkClaims(_ claims: JSONObject, times: ClaimTimes, policy: VerificationPolicy, now: Double) throws(TokenVerificationError) {
        try checkIdentityClaims(claims, policy: policy)
        func seconds(_ stamp: ClaimTimes.Stamp, _ name: String) throws(TokenVerificationError) -> Double? {
            switch stamp {
            case .absent: return nil
            case .seconds(let value): return value
            case .malformed: return try timestamp(claims, name)
            }
        }
        guard let exp = try seconds(times.expires, "exp") else {
            throw TokenVerificationError(.verificationFailed, "Expiration claim (exp) is required.")
        }
        try checkExpiry(exp, policy: policy, now: now)
        if let nbf = try seconds(times.notBefore, "nbf") { try checkNotBefore(nbf, policy: policy, now: now) }
        if let iat = try seconds(times.issuedAt, "iat") { try checkIssuedAt(iat, policy: policy, now: now) }
    }

    /// sub, aud, iss, azp.
    private static func checkIdentityClaims(_ claims: JSONObject, policy: VerificationPolicy) throws(TokenVerificationError) {
        guard let sub = claims["sub"]?.stringValue, !sub.isEmpty else {
            throw TokenVerificationError(.verificationFailed, "Subject claim (sub) is required and must be a non-empty string.")
        }
        if !policy.audiences.isEmpty, let aud = claims["aud"] {
            let values: [String]
            switch aud {
            case .string(let s): values = [s]
            case .array(let a): values = a.compactMap(\.stringValue)
            default: values = []
            }
            guard values.contains(where: policy.audiences.contains) else {
                throw TokenVerificationError(.verificationFailed, "Invalid JWT audience claim (aud).")
            }
        } else if !policy.audiences.isEmpty {
            throw TokenVerificationError(.verificationFailed, "The audience claim (aud) is required.")
        }
        if let issuer = policy.issuer {
            guard claims["iss"]?.stringValue == issuer else {
                throw TokenVerificationError(.verificationFailed, "Invalid JWT issuer claim (iss).")
            }
        }
        if !policy.authorizedParties.isEmpty {
            guard let azp = claims["azp"]?.stringValue, policy.authorizedParties.contains(azp) else {
                throw TokenVerificationError(.invalidAuthorizedParties, "Invalid JWT Authorized party claim (azp). Expected one of the configured authorized parties.")
            }
        }
    }

    private static func checkExpiry(_ exp: Double, policy: VerificationPolicy, now: Double) throws(TokenVerificationError) {
        if exp <= now - policy.clockSkew {
            throw TokenVerificationError(.expired, "JWT is expired.")
        }
    }

    private static func checkNotBefore(_ nbf: Double, policy: VerificationPolicy, now: Double) throws(TokenVerificationError) {
        if nbf > now + policy.clockSkew {
            throw TokenVerificationError(.notActiveYet, "JWT cannot be used prior to not-before date claim (nbf).")
        }
    }

    private static func checkIssuedAt(_ iat: Double, policy: VerificationPolicy, now: Double) throws(TokenVerificationError) {
        if iat > now + policy.clockSkew {
            throw TokenVerificationError(.issuedInTheFuture, "JWT issued-at date claim (iat) is in the future.")
        }
    }

    /// A NumericDate claim: absent → nil; present but not a finite number in range → error.
    static func timestamp(_ claims: JSONObject, _ name: String) throws(TokenVerificationError) -> Double? {
        guard let value = claims[name] else { return nil }
        guard let number = value.doubleValue, number.isFinite, number >= 0, number <= maxTimestamp else {
            throw TokenVerificationError(.verificationFailed, "Invalid JWT \(name) claim: must be a number of seconds.")
        }
        return number
    }
}

/// A token's NumericDate claims (exp, nbf, iat) as `TokenVerifier.timestamp` reads them, worked out once for a
/// cached token: looking each up in the payload again cost ~400 instructions per request (callgrind). Each
/// keeps its own outcome, so the checks fail in the same order, with the same error, as on the payload.
struct ClaimTimes: Sendable {
    enum Stamp: Sendable {
        case absent
        case seconds(Double)
        /// Not a NumericDate: `TokenVerifier.timestamp` on the payload throws the error again.
        case malformed
    }

    let expires: Stamp
    let notBefore: Stamp
    let issuedAt: Stamp

    init(_ claims: JSONObject) {
        func read(_ name: String) -> Stamp {
            do throws(TokenVerificationError) { return try TokenVerifier.timestamp(claims, name).map(Stamp.seconds) ?? .absent } catch { return .malformed }
        }
        expires = read("exp")
        notBefore = read("nbf")
        issuedAt = read("iat")
    }
}
