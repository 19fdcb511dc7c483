import GatehouseCore

/// Clerk's request states (`AuthStatus`).
public enum AuthStatus: String, Sendable, Equatable {
    case signedIn = "signed-in"
    case signedOut = "signed-out"
    /// Clerk would send a browser through a handshake round trip. Until Gatehouse implements the handshake it
    /// is decided exactly like signed-out.
    case handshake
}

public enum TokenCarrier: String, Sendable, Equatable {
    case header, cookie
}

/// Who the caller is, and why Gatehouse thinks so.
public struct AuthResult: Sendable {
    public var status: AuthStatus
    /// Clerk's reason string (nil when signed in).
    public var reason: String?
    public var message: String?
    public var carrier: TokenCarrier?
    /// The verified session (only when signed in).
    public var session: SessionAuth?
    /// The verified token, so it can be forwarded when the operator asks for it.
    public var verifiedToken: String?
    /// A token was present but did not verify.
    public var invalidTokenPresented: Bool
    /// No signing key could be obtained: the request cannot be judged (503).
    public var keysUnavailable: Bool
    /// The token's key was not among the keys used (unknown `kid`, or no keys): a JWKS re-fetch may help.
    public var needsKeyRefresh = false

    static func signedIn(_ session: SessionAuth, token: String, carrier: TokenCarrier) -> AuthResult {
        AuthResult(status: .signedIn, reason: nil, message: nil, carrier: carrier, session: session, verifiedToken: token,
                   invalidTokenPresented: false, keysUnavailable: false)
    }

    static func signedOut(_ reason: String, _ message: String? = nil, carrier: TokenCarrier? = nil, invalidToken: Bool = false) -> AuthResult {
        AuthResult(status: .signedOut, reason: reason, message: message, carrier: carrier, session: nil, verifiedToken: nil,
                   invalidTokenPresented: invalidToken, keysUnavailable: false)
    }

    /// Signed in with a session that may act (not pending).
    public var activeSession: SessionAuth? {
        guard status == .signedIn, let session, !session.isPending else { return nil }
        return session
    }
}

/// Clerk's `authenticateRequest` for session tokens: the header path (an `Authorization` token, cookies
/// ignored) or the cookie path (`__session` / `__client_uat`, suffixed names per `usesSuffixedCookies`).
/// Pure apart from the key store's unknown-`kid` refresh.
public struct SessionAuthenticator: Sendable {
    public let instance: ClerkInstance?
    public let policy: VerificationPolicy
    public let keyStore: KeyStore
    public let cache: TokenCache

    public init(instance: ClerkInstance?, policy: VerificationPolicy, keyStore: KeyStore, cache: TokenCache = TokenCache()) {
        self.instance = instance
        self.policy = policy
        self.keyStore = keyStore
        self.cache = cache
    }

    private func decode(_ token: String) throws(TokenVerificationError) -> DecodedToken {
        if let cached = cache.decoded(token) { return cached }
        return try DecodedToken(token)
    }

    static let sessionCategories: Set<String> = ["cl_B7d4PD111AAA", "cl_I7d4PD111III"]

    /// Authenticates with the keys in force, and when the token names a `kid` they lack (or no key is
    /// loaded), once more after the key store's rate-limited re-fetch.
    public func authenticate(_ request: CanonicalRequest, now: Double) async -> AuthResult {
        if let result = authenticateWithoutFetching(request, now: now) { return result }
        let keys = await keyStore.keysAfterUnknownKid()
        return authenticate(request, keys: keys, now: now)
    }

    /// The same decision without waiting for the network: nil when an unknown `kid` (or no key at all)
    /// calls for a JWKS re-fetch first. Lets the server decide on its event loop in the common case.
    public func authenticateWithoutFetching(_ request: CanonicalRequest, now: Double) -> AuthResult? {
        let result = authenticate(request, keys: keyStore.keys, now: now)
        if result.needsKeyRefresh && keyStore.isRemote { return nil }
        return result
    }

    func authenticate(_ request: CanonicalRequest, keys: KeySet, now: Double) -> AuthResult {
        if let headerToken = SessionAuthenticator.headerToken(request.headers.first("authorization")) {
            return authenticateHeader(headerToken, request: request, keys: keys, now: now)
        }
        return authenticateCookies(request, keys: keys, now: now)
    }

    /// `Bearer <token>` (scheme case-insensitive) or a single bare word, as Clerk reads it. Other schemes
    /// (Basic, …) carry no session token and leave the cookie path in charge.
    static func headerToken(_ value: String?) -> String? {
        guard let value else { return nil }
        let trimmed = value.trimmingASCIIWhitespace()
        guard !trimmed.isEmpty else { return nil }
        guard let space = trimmed.firstIndex(of: " ") else { return trimmed }
        let scheme = trimmed[..<space]
        guard asciiCaseInsensitiveEquals(String(scheme), "bearer") else { return nil }
        // Anything after the token (a second word) makes it invalid rather than ignored.
        return trimmed[trimmed.index(after: space)...].trimmingASCIIWhitespace()
    }

    // MARK: Header path

    private func authenticateHeader(_ token: String, request: CanonicalRequest, keys: KeySet, now: Double) -> AuthResult {
        let decoded: DecodedToken
        do {
            decoded = try decode(token)
        } catch {
            return .signedOut(error.reason.rawValue, error.message, carrier: .header, invalidToken: true)
        }
        if let mismatch = categoryMismatch(decoded) {
            return .signedOut("token-type-mismatch", mismatch, carrier: .header, invalidToken: true)
        }
        return verify(decoded, token: token, carrier: .header, request: request, keys: keys, now: now)
    }

    // MARK: Cookie path

    private func authenticateCookies(_ request: CanonicalRequest, keys: KeySet, now: Double) -> AuthResult {
        let cookies = request.cookies
        let suffixed = usesSuffixedCookies(cookies, now: now)
        let sessionName = suffixed ? "__session_" + (instance?.cookieSuffix ?? "") : "__session"
        let uatName = suffixed ? "__client_uat_" + (instance?.cookieSuffix ?? "") : "__client_uat"

        let sessionValues = Set(cookies.values(sessionName))
        if sessionValues.count > 1 {
            // Two different session cookies (e.g. one tossed in from a sibling domain): never guess.
            return .signedOut("session-cookie-ambiguous", "More than one \(sessionName) cookie with different values.",
                              carrier: .cookie, invalidToken: true)
        }
        let sessionToken = cookies.value(sessionName).flatMap { $0.isEmpty ? nil : $0 }
        let clientUat = SessionAuthenticator.parseClientUat(cookies.value(uatName))
        let hasActiveClient = clientUat != 0

        switch (hasActiveClient, sessionToken) {
        case (false, nil):
            return .signedOut("session-token-and-uat-missing")
        case (false, .some):
            return maybeHandshake("session-token-but-no-client-uat", request: request)
        case (true, nil):
            return maybeHandshake("client-uat-but-no-session-token", request: request)
        case (true, .some(let token)):
            let decoded: DecodedToken
            do {
                decoded = try decode(token)
            } catch {
                return .signedOut(error.reason.rawValue, error.message, carrier: .cookie, invalidToken: true)
            }
            if let mismatch = categoryMismatch(decoded) {
                return .signedOut("token-type-mismatch", mismatch, carrier: .cookie, invalidToken: true)
            }
            if let iat = decoded.payload["iat"]?.doubleValue, iat < Double(clientUat) {
                return maybeHandshake("session-token-iat-before-client-uat", request: request)
            }
            return verify(decoded, token: token, carrier: .cookie, request: request, keys: keys, now: now)
        }
    }

    /// JS `parseInt(value) || 0`: leading digits count, anything else is 0.
    static func parseClientUat(_ value: String?) -> Int {
        guard let value else { return 0 }
        let trimmed = value.trimmingASCIIWhitespace()
        var digits = Substring(trimmed)
        var negative = false
        if digits.first == "-" || digits.first == "+" {
            negative = digits.first == "-"
            digits = digits.dropFirst()
        }
        let prefix = digits.prefix { $0.isASCII && $0.isNumber }
        guard !prefix.isEmpty, let number = Int(String(prefix.prefix(15))) else { return 0 }
        return negative ? -number : number
    }

    /// Clerk's `usesSuffixedCookies()` (clerk-protocol.md §1.5), in its order.
    func usesSuffixedCookies(_ cookies: CookieJar, now: Double) -> Bool {
        guard let instance else { return false }
        let suffix = instance.cookieSuffix
        let s = cookies.value("__session")
        let sSuffixed = cookies.value("__session_" + suffix)
        let u = cookies.value("__client_uat")
        let uSuffixed = cookies.value("__client_uat_" + suffix)

        if let s, !s.isEmpty {
            let payload = try? DecodedToken(s).payload
            guard let issValue = payload?["iss"] else { return false }
            guard let iss = issValue.stringValue else { return true }
            let host = iss.replacingAll("https://", with: "").replacingAll("http://", with: "")
            if host != instance.frontendAPIHost { return true }
        }
        if uSuffixed == nil && sSuffixed == nil { return false }
        func iat(_ token: String?) -> Double {
            guard let token, let value = try? DecodedToken(token).payload["iat"]?.doubleValue else { return 0 }
            return value
        }
        if uSuffixed != "0" && u != "0" && iat(s) > iat(sSuffixed) { return false }
        if uSuffixed == "0" && u != "0" { return false }
        if instance.kind == .development && uSuffixed != "0" && u == "0" {
            if let exp = sSuffixed.flatMap({ try? DecodedToken($0).payload["exp"]?.doubleValue }), exp <= now.rounded(.down) {
                return false
            }
        }
        if uSuffixed == nil && sSuffixed != nil { return false }
        return true
    }

    // MARK: Shared

    private func categoryMismatch(_ token: DecodedToken) -> String? {
        if let cat = token.header["cat"] {
            guard let name = cat.stringValue, SessionAuthenticator.sessionCategories.contains(name) else {
                return "The token's category (cat) is not a session token."
            }
        }
        if let typ = token.header["typ"]?.stringValue, typ == "at+jwt" || typ == "application/at+jwt" {
            return "Machine (OAuth access) tokens are not session tokens."
        }
        if let sub = token.payload["sub"]?.stringValue, sub.hasPrefix("mch_") {
            return "Machine tokens are not session tokens."
        }
        return nil
    }

    private func verify(_ decoded: DecodedToken, token: String, carrier: TokenCarrier, request: CanonicalRequest, keys: KeySet, now: Double) -> AuthResult {
        do {
            if let hit = cache.verified(token, keySetID: keys.id) {
                // Signature already checked with these keys; the claims are checked again against the clock.
                try TokenVerifier.checkClaims(hit.decoded.payload, policy: policy, now: now)
                return .signedIn(hit.session, token: token, carrier: carrier)
            }
            let claims = try TokenVerifier.verify(decoded, keys: keys, policy: policy, now: now)
            let session = SessionAuth(claims: claims)
            let exp = claims["exp"]?.doubleValue ?? now
            cache.store(token, TokenCache.Entry(decoded: decoded, session: session, keySetID: keys.id, expiresAt: exp + policy.clockSkew), now: now)
            return .signedIn(session, token: token, carrier: carrier)
        } catch {
            var result = sessionTokenError(error, carrier: carrier, request: request)
            result.needsKeyRefresh = error.reason == .kidMismatch || error.reason == .keysUnavailable
            return result
        }
    }

    /// Clerk's `handleSessionTokenError`: time-related failures may become a handshake, others sign out.
    private func sessionTokenError(_ error: TokenVerificationError, carrier: TokenCarrier, request: CanonicalRequest) -> AuthResult {
        let fullMessage = "\(error.message) (reason=\(error.reason.rawValue), token-carrier=\(carrier.rawValue))"
        let reason: String
        switch error.reason {
        case .expired:
            let refreshCookie = instance.map { request.cookies.value("__refresh_" + $0.cookieSuffix) } ?? nil
            let refreshError: String
            if request.method != "GET" {
                refreshError = "non-eligible-non-get"
            } else if refreshCookie == nil {
                refreshError = "non-eligible-no-refresh-cookie"
            } else {
                refreshError = "missing-api-client"
            }
            reason = "session-token-expired-refresh-" + refreshError
        case .notActiveYet:
            reason = "session-token-nbf"
        case .issuedInTheFuture:
            reason = "session-token-iat-in-the-future"
        case .keysUnavailable:
            var result = AuthResult.signedOut(error.reason.rawValue, fullMessage, carrier: carrier, invalidToken: false)
            result.keysUnavailable = true
            return result
        default:
            return .signedOut(error.reason.rawValue, fullMessage, carrier: carrier, invalidToken: true)
        }
        var result = maybeHandshake(reason, message: fullMessage, request: request)
        result.carrier = carrier
        result.invalidTokenPresented = true
        return result
    }

    /// Clerk's `handleMaybeHandshakeStatus`: a handshake only for GET page loads, at most 3 in a row.
    private func maybeHandshake(_ reason: String, message: String? = nil, request: CanonicalRequest) -> AuthResult {
        var result = AuthResult.signedOut(reason, message)
        guard SessionAuthenticator.isHandshakeEligible(request) else { return result }
        let redirectCount = Int(request.cookies.value("__clerk_redirect_count") ?? "") ?? 0
        if redirectCount >= 3 { return result }
        result.status = .handshake
        return result
    }

    /// GET with `Sec-Fetch-Dest: document|iframe`, or without Sec-Fetch-Dest and an Accept starting `text/html`.
    public static func isHandshakeEligible(_ request: CanonicalRequest) -> Bool {
        guard request.method == "GET" else { return false }
        if let dest = request.headers.first("sec-fetch-dest") {
            return dest == "document" || dest == "iframe"
        }
        return request.headers.first("accept")?.hasPrefix("text/html") ?? false
    }
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = self[...]
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
