import GatehouseCore

/// Clerk's request states (`AuthStatus`).
public enum AuthStatus: String, Sendable, Equatable {
    case signedIn = "signed-in"
    case signedOut = "signed-out"
    /// The browser is sent on a round trip (Frontend API handshake, dev-browser or satellite sync); `location`
    /// says where.
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
    /// Where Clerk's state sends the browser (a handshake, the cleaned URL after a development handshake, a
    /// satellite sync): answered with a 307 whatever the route.
    public var location: String?
    /// Headers for the response this request gets, whatever it is (handshake `Set-Cookie` directives, the
    /// redirect-loop counter, `Cache-Control`).
    public var responseHeaders = HeaderList()
    /// A development handshake whose session does not verify: Clerk treats it as a fatal error (500).
    public var fatal = false
    /// The browser brought back a handshake nonce: no decision until its directives are fetched.
    var awaitsHandshakePayload = false
    /// The nonce exchange was refused over its global rate: nobody can be signed in by it now (503).
    public var handshakeUnavailable = false
    /// The presented token's type (Clerk's `tokenType`), when a token was presented.
    public var tokenType: TokenType? = nil
    /// Set when the route's `accepts:` took the machine path (Gatekeeper+Machine).
    public var machine: MachineAuthState? = nil
    /// Why a machine token was refused, in full (the claim and value a requirement wants, a malformed token's
    /// fault): for `explain` and logs only, never sent to the caller (who gets `machine`'s generic message).
    public var detail: String? = nil

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
/// ignored) or the cookie path (clerk-protocol.md §3.4, in its order: handshake return, satellite and
/// dev-browser syncs, `__client_uat` vs `__session`, token checks, cross-origin sync).
/// Pure apart from the key store's unknown-`kid` refresh and the handshake-nonce fetch.
public struct SessionAuthenticator: Sendable {
    public let instance: ClerkInstance?
    public let policy: VerificationPolicy
    public let keyStore: KeyStore
    public let cache: TokenCache
    public let browser: BrowserSessionOptions
    /// Nil without a secret key: a nonce then brings no directives.
    public let nonceExchange: HandshakeNonceExchange?

    public init(instance: ClerkInstance?, policy: VerificationPolicy, keyStore: KeyStore, cache: TokenCache = TokenCache(),
                browser: BrowserSessionOptions = BrowserSessionOptions(handshake: false), payloadSource: (any HandshakePayloadSource)? = nil,
                nonceExchange: HandshakeNonceExchange? = nil) {
        self.instance = instance
        self.policy = policy
        self.keyStore = keyStore
        self.cache = cache
        self.browser = browser
        self.nonceExchange = nonceExchange ?? payloadSource.map { HandshakeNonceExchange(source: $0) }
    }

    private var handshakes: Bool { browser.handshake && instance != nil }
    private var development: Bool { instance?.kind == .development }

    /// The token decoded, from the cache when it is there; the cache entry comes along so `verify` need not
    /// hash the token and take the lock a second time.
    private func decode(_ token: String) throws(TokenVerificationError) -> (DecodedToken, TokenCache.Entry?) {
        if let entry = cache.entry(token) { return (entry.decoded, entry) }
        return (try DecodedToken(token), nil)
    }

    static let sessionCategories: Set<String> = ["cl_B7d4PD111AAA", "cl_I7d4PD111III"]

    /// Authenticates with the keys in force, and when the token names a `kid` they lack (or no key is
    /// loaded), once more after the key store's rate-limited re-fetch. When the cookie path meets a handshake
    /// nonce, its cookie directives are fetched and the request is decided again with them.
    public func authenticate(_ request: CanonicalRequest, now: Double) async -> AuthResult {
        var nonceDirectives: [String]? = nil
        var result = authenticate(request, keys: keyStore.keys, now: now)
        if result.awaitsHandshakePayload, let nonce = handshakeCarrier(request, ClerkNames.handshakeNonce) {
            switch nonceExchange?.lookup(nonce, client: request.clientAddress) ?? .ready([]) {
            case .ready(let directives): nonceDirectives = directives
            case .refused: return SessionAuthenticator.nonceRefused
            case .pending(let task): nonceDirectives = await task.value
            }
            result = authenticate(request, keys: keyStore.keys, now: now, nonceDirectives: nonceDirectives)
        }
        guard result.needsKeyRefresh && keyStore.isRemote else { return result }
        let keys = await keyStore.keysAfterUnknownKid()
        return authenticate(request, keys: keys, now: now, nonceDirectives: nonceDirectives)
    }

    /// The same decision without waiting for the network: nil only when a call must be waited for — a JWKS
    /// re-fetch for an unknown `kid` (or no key at all) outside the re-fetch cool-down, or a Backend API
    /// nonce exchange to start or under way. A cached or refused nonce, and an unknown `kid` inside the cool-down (which
    /// would be judged with the same keys anyway), are decided here, on the event loop.
    public func authenticateWithoutFetching(_ request: CanonicalRequest, now: Double) -> AuthResult? {
        authenticateWithoutFetching(request, now: now, headerToken: SessionAuthenticator.headerToken(request.headers.first("authorization")))
    }

    /// `authenticateWithoutFetching` for a caller that has already read the request's bearer token:
    /// `headerToken` must be `SessionAuthenticator.headerToken(request.headers.first("authorization"))`
    /// (the Gatekeeper reads it once for the machine path and the session path).
    public func authenticateWithoutFetching(_ request: CanonicalRequest, now: Double, headerToken: String?) -> AuthResult? {
        authenticateWithoutFetching(request, now: now, headerToken: headerToken.map { HeaderToken(text: $0, cached: nil) })
    }

    /// The same with the token as `readHeaderToken` read it (its cache entry, when it has one, is not looked up again).
    public func authenticateWithoutFetching(_ request: CanonicalRequest, now: Double, headerToken: HeaderToken?) -> AuthResult? {
        var nonceDirectives: [String]? = nil
        var result = authenticate(request, keys: keyStore.keys, now: now, nonceDirectives: nil, headerToken: headerToken)
        if result.awaitsHandshakePayload, let nonce = handshakeCarrier(request, ClerkNames.handshakeNonce) {
            switch nonceExchange.map({ $0.peek(nonce, client: request.clientAddress) }) ?? .ready([]) {
            case .ready(let directives)?: nonceDirectives = directives
            case .refused?: return SessionAuthenticator.nonceRefused
            case .pending?, nil: return nil  // `authenticate` starts or joins the call and waits for it
            }
            result = authenticate(request, keys: keyStore.keys, now: now, nonceDirectives: nonceDirectives, headerToken: headerToken)
        }
        if result.needsKeyRefresh && keyStore.isRemote && keyStore.unknownKidWouldFetch { return nil }
        return result
    }

    /// Over the exchange's rate the browser keeps its nonce cookie and retries: 503 with `Retry-After`, never
    /// a sign-in (there is no session to grant) and never a new handshake (it would bring another nonce).
    static var nonceRefused: AuthResult {
        var result = AuthResult.signedOut("handshake-nonce-rate-limited", "Too many handshake nonces to exchange right now.", carrier: .cookie)
        result.handshakeUnavailable = true
        return result
    }

    func authenticate(_ request: CanonicalRequest, keys: KeySet, now: Double, nonceDirectives: [String]? = nil) -> AuthResult {
        authenticate(request, keys: keys, now: now, nonceDirectives: nonceDirectives,
                     headerToken: SessionAuthenticator.headerToken(request.headers.first("authorization")))
    }

    private func authenticate(_ request: CanonicalRequest, keys: KeySet, now: Double, nonceDirectives: [String]?, headerToken: String?) -> AuthResult {
        authenticate(request, keys: keys, now: now, nonceDirectives: nonceDirectives, headerToken: headerToken.map { HeaderToken(text: $0, cached: nil) })
    }

    private func authenticate(_ request: CanonicalRequest, keys: KeySet, now: Double, nonceDirectives: [String]?, headerToken: HeaderToken?) -> AuthResult {
        if let headerToken {
            return authenticateHeader(headerToken, request: request, keys: keys, now: now)
        }
        return authenticateCookies(request, keys: keys, now: now, nonceDirectives: nonceDirectives)
    }

    /// `Bearer <token>` (scheme case-insensitive) or a single bare word, as Clerk reads it. Other schemes
    /// (Basic, …) carry no session token and leave the cookie path in charge.
    public static func headerToken(_ value: String?) -> String? {
        guard let value else { return nil }
        if let token = plainBearerToken(value) { return token }
        let trimmed = value.trimmingASCIIWhitespace()
        guard !trimmed.isEmpty else { return nil }
        guard let space = firstSpace(trimmed) else { return trimmed }
        let scheme = trimmed[..<space]
        guard asciiCaseInsensitiveEquals(String(scheme), "bearer") else { return nil }
        // Anything after the token (a second word) makes it invalid rather than ignored.
        return trimmed[trimmed.index(after: space)...].trimmingASCIIWhitespace()
    }

    /// The request's bearer token, read once for the machine and the session path: `headerToken(value)`, with
    /// its token-cache entry when the cache holds these exact bytes. Then the token is the cache's copy, found
    /// without copying the bytes: every cached token verified, so it is non-empty visible ASCII (the cache
    /// stores nothing else), and `Bearer ` with such bytes is exactly what `plainBearerToken` reads and returns
    /// as they are (HeaderTokenCacheTests holds both readings equal).
    public func readHeaderToken(_ value: String?) -> HeaderToken? {
        guard var value else { return nil }
        let entry = value.withUTF8 { bytes -> TokenCache.Entry? in
            guard bytes.count > 7, SessionAuthenticator.startsWithBearerSpace(bytes) else { return nil }
            return cache.entry(matching: UnsafeBufferPointer(rebasing: bytes[7...]))
        }
        if let entry { return HeaderToken(text: entry.token, cached: entry) }
        return SessionAuthenticator.headerToken(value).map { HeaderToken(text: $0, cached: nil) }
    }

    /// `bearer ` in any case, then one space: the first seven bytes `plainBearerToken` reads.
    @inline(__always) static func startsWithBearerSpace(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        // Byte by byte, unrolled: an enumerated walk over "bearer ".utf8 cost ~500 instructions (callgrind).
        guard bytes.count >= 7 else { return false }
        return bytes[0] | 0x20 == UInt8(ascii: "b") && bytes[1] | 0x20 == UInt8(ascii: "e") && bytes[2] | 0x20 == UInt8(ascii: "a")
            && bytes[3] | 0x20 == UInt8(ascii: "r") && bytes[4] | 0x20 == UInt8(ascii: "e") && bytes[5] | 0x20 == UInt8(ascii: "r")
            && bytes[6] == 0x20
    }

    /// The common spelling, `Bearer <token>` with one space and a token of visible ASCII, read on bytes with one
    /// copy (the general way above copies an ~800-byte token twice, perf). Nil for anything else, which takes the
    /// general way; both give the same answer where this one answers (HeaderTokenTests).
    static func plainBearerToken(_ value: String) -> String? {
        var value = value
        return value.withUTF8 { bytes -> String? in
            guard bytes.count > 7, startsWithBearerSpace(bytes) else { return nil }
            let token = UnsafeBufferPointer(rebasing: bytes[7...])
            return ASCIISearch.isVisibleASCII(token) ? String(decoding: token, as: UTF8.self) : nil
        }
    }

    /// `firstIndex(of: " ")` (a search by characters, slow over a ~800-byte token) found on bytes where a
    /// byte search gives the same answer (`ASCIISearch`).
    static func firstSpace(_ text: String) -> String.Index? {
        ASCIISearch.firstIndex(of: 0x20, in: text[...])
    }

    // MARK: Header path

    private func authenticateHeader(_ headerToken: HeaderToken, request: CanonicalRequest, keys: KeySet, now: Double) -> AuthResult {
        let token = headerToken.text
        if let cached = headerToken.cached {
            // The entry's decoded token is read in place: bound to a local it was copied (its four parts
            // retained and released, uprobes). The entry worked the category out when it was stored.
            if let mismatch = cached.categoryMismatch {
                return .signedOut("token-type-mismatch", mismatch, carrier: .header, invalidToken: true)
            }
            return verify(cached.decoded, token: token, entry: cached, carrier: .header, request: request, keys: keys, now: now)
        }
        let decoded: DecodedToken, entry: TokenCache.Entry?
        do {
            (decoded, entry) = try decode(token)
        } catch {
            return .signedOut(error.reason.rawValue, error.message, carrier: .header, invalidToken: true)
        }
        // An entry worked the category out when it was stored (it depends on the decoded token alone).
        if let mismatch = entry.map(\.categoryMismatch) ?? SessionAuthenticator.categoryMismatch(decoded) {
            return .signedOut("token-type-mismatch", mismatch, carrier: .header, invalidToken: true)
        }
        return verify(decoded, token: token, entry: entry, carrier: .header, request: request, keys: keys, now: now)
    }

    // MARK: Cookie path

    /// A handshake's token or nonce as the browser brought it back. Development instances receive it in the
    /// query; production only in the cookie Clerk's Frontend API sets — a link carrying someone else's
    /// handshake must not plant their session in this browser (login CSRF), so production ignores the query.
    private func handshakeCarrier(_ request: CanonicalRequest, _ name: String) -> String? {
        guard handshakes else { return nil }
        if development, let value = FormQuery.first(name, in: request.query), !value.isEmpty { return value }
        return request.cookies.value(name).flatMap { $0.isEmpty ? nil : $0 }
    }

    private func authenticateCookies(_ request: CanonicalRequest, keys: KeySet, now: Double, nonceDirectives: [String]?) -> AuthResult {
        let cookies = request.cookies
        let suffixed = usesSuffixedCookies(cookies, now: now)
        let sessionName = suffixed ? "__session_" + (instance?.cookieSuffix ?? "") : "__session"
        let uatName = suffixed ? "__client_uat_" + (instance?.cookieSuffix ?? "") : "__client_uat"

        // 1. The browser is back from a handshake.
        // Only the page load the Frontend API sends the browser back to can use a handshake's result; a nonce
        // on any other request (an API call, a POST, a script) is ignored rather than exchanged.
        if handshakes, SessionAuthenticator.isHandshakeEligible(request) {
            if handshakeCarrier(request, ClerkNames.handshakeNonce) != nil {
                guard let directives = nonceDirectives else {
                    var pending = AuthResult.signedOut("handshake-nonce-pending", carrier: .cookie)
                    pending.awaitsHandshakePayload = true
                    return pending
                }
                if let resolved = resolveHandshake(directives, request: request, keys: keys, now: now) { return resolved }
            } else if let token = handshakeCarrier(request, ClerkNames.handshakeToken) {
                do {
                    let directives = try HandshakeToken.directives(token, keys: keys, policy: policy)
                    if let resolved = resolveHandshake(directives, request: request, keys: keys, now: now) { return resolved }
                } catch {
                    if error.reason == .kidMismatch || error.reason == .keysUnavailable, keyStore.isRemote {
                        var retry = AuthResult.signedOut(error.reason.rawValue, error.message, carrier: .cookie)
                        retry.needsKeyRefresh = true
                        return retry
                    }
                    if development {
                        var fatal = AuthResult.signedOut("handshake-token-invalid", "Clerk: unable to verify handshake token (\(error.reason.rawValue)).", carrier: .cookie, invalidToken: true)
                        fatal.fatal = true
                        return fatal
                    }
                    // Production: a bad handshake is ignored and the cookies decide, as in Clerk.
                }
            }
        }

        let sessionValues = Set(cookies.values(sessionName))
        if sessionValues.count > 1 {
            // Two different session cookies (e.g. one tossed in from a sibling domain): never guess.
            return .signedOut("session-cookie-ambiguous", "More than one \(sessionName) cookie with different values.",
                              carrier: .cookie, invalidToken: true)
        }
        let sessionToken = cookies.value(sessionName).flatMap { $0.isEmpty ? nil : $0 }
        let clientUat = SessionAuthenticator.parseClientUat(cookies.value(uatName))
        let hasActiveClient = clientUat != 0

        if handshakes, let instance {
            // 2. A satellite page load that must sync with the primary domain.
            let dest = request.headers.first("sec-fetch-dest")
            if browser.isSatellite, dest == "document", request.method == "GET",
                FormQuery.first(ClerkNames.synced, in: request.query) != "true"
            {
                let needsSync = FormQuery.first(ClerkNames.synced, in: request.query) == "false"
                let hasCookies = sessionToken != nil || hasActiveClient
                if !hasCookies && !needsSync { return .signedOut("session-token-and-uat-missing") }
                // Cookies present and no sync asked for: the satellite's own cookies decide (Clerk falls through).
                if needsSync, instance.kind == .production {
                    return maybeHandshake("satellite-needs-syncing", request: request, now: now)
                }
                if needsSync, let signIn = browser.signInURL, let clerkURL = browser.clerkURL(for: request) {
                    let location = FormQuery.appending(ClerkNames.redirectURL, clerkURL, to: signIn)
                    return maybeHandshake("satellite-needs-syncing", request: request, now: now, location: location)
                }
            }
            // 3. A development primary answering a satellite's sync: back to the satellite with the dev browser.
            if development, !browser.isSatellite, let target = FormQuery.first(ClerkNames.redirectURL, in: request.query),
                let origin = URLOrigin.of(target), isTrusted(origin: origin, request: request)
            {
                var location = target
                if let devBrowser = devBrowserToken(request, now: now) { location = FormQuery.appending(ClerkNames.devBrowser, devBrowser, to: location) }
                location = FormQuery.setting(ClerkNames.synced, "true", in: location)
                return maybeHandshake("primary-responds-to-syncing", request: request, now: now, location: location)
            }
            // 4–5. Development instances need a dev browser, and adopt one arriving in the query.
            if development {
                if let fromQuery = FormQuery.first(ClerkNames.devBrowser, in: request.query), !fromQuery.isEmpty {
                    return maybeHandshake("dev-browser-sync", request: request, now: now)
                }
                if devBrowserToken(request, now: now) == nil {
                    return maybeHandshake("dev-browser-missing", request: request, now: now)
                }
            }
        }

        switch (hasActiveClient, sessionToken) {
        case (false, nil):
            return .signedOut("session-token-and-uat-missing")
        case (false, .some):
            return maybeHandshake("session-token-but-no-client-uat", request: request, now: now)
        case (true, nil):
            return maybeHandshake("client-uat-but-no-session-token", request: request, now: now)
        case (true, .some(let token)):
            let decoded: DecodedToken, entry: TokenCache.Entry?
            do {
                (decoded, entry) = try decode(token)
            } catch {
                return .signedOut(error.reason.rawValue, error.message, carrier: .cookie, invalidToken: true)
            }
            if let mismatch = SessionAuthenticator.categoryMismatch(decoded) {
                return .signedOut("token-type-mismatch", mismatch, carrier: .cookie, invalidToken: true)
            }
            if let iat = decoded.payload["iat"]?.doubleValue, iat < Double(clientUat) {
                return maybeHandshake("session-token-iat-before-client-uat", request: request, now: now)
            }
            let result = verify(decoded, token: token, entry: entry, carrier: .cookie, request: request, keys: keys, now: now)
            // 13. Arriving signed in from another site: sync first (the other site may be a satellite).
            if result.status == .signedIn, handshakes, !browser.isSatellite, request.method == "GET",
                request.headers.first("sec-fetch-dest") == "document", isCrossOriginReferrer(request), !isKnownClerkReferrer(request),
                redirectCount(request) == 0
            {
                var sync = maybeHandshake("primary-domain-cross-origin-sync", message: "Cross-origin request from satellite domain requires handshake", request: request, now: now)
                if sync.status != .handshake { return result }
                sync.carrier = .cookie
                return sync
            }
            return result
        }
    }

    /// Clerk's `resolveHandshake`: the directives become `Set-Cookie` headers and the session among them is
    /// verified like any other (development allows 24 h of clock skew, as Clerk does). A handshake whose
    /// session does not verify signs nobody in: nil in production (the request's own cookies decide, as in
    /// Clerk), a fatal result in development.
    private func resolveHandshake(_ directives: [String], request: CanonicalRequest, keys: KeySet, now: Double) -> AuthResult? {
        // Clerk also adds `Access-Control-Allow-Origin: null` with credentials here; Gatehouse does not: on a
        // proxied page that would let sandboxed (null-origin) documents read an authenticated response.
        var headers = HeaderList()
        var sessionToken = ""
        for directive in directives {
            // Forwarded verbatim, so it must be a legal header value (no CR/LF smuggled into our response).
            guard HTTPSyntax.isValidFieldValue(directive), !directive.isEmpty else {
                return failedHandshake("A handshake directive is not a valid Set-Cookie value.", request: request)
            }
            headers.append("Set-Cookie", directive)
            if directive.setCookieName.hasPrefix("__session") { sessionToken = directive.setCookieValue }
        }
        var location: String? = nil
        if development {
            location = browser.clerkURL(for: request).map { FormQuery.removing(ClerkNames.handshakeQueryNames, from: $0) }
            headers.append("Cache-Control", "no-store")
        }
        func finish(_ result: AuthResult) -> AuthResult {
            var result = result
            result.responseHeaders = headers
            result.location = location
            return result
        }
        guard !sessionToken.isEmpty else { return finish(.signedOut("session-token-missing", carrier: .cookie)) }
        do throws(TokenVerificationError) {
            let decoded = try DecodedToken(sessionToken)
            if let mismatch = SessionAuthenticator.categoryMismatch(decoded) { throw TokenVerificationError(.invalid, mismatch) }
            var claims: JSONObject
            do throws(TokenVerificationError) {
                claims = try TokenVerifier.verify(decoded, keys: keys, policy: policy, now: now)
            } catch where development && [.expired, .notActiveYet, .issuedInTheFuture].contains(error.reason) {
                var lenient = policy
                lenient.clockSkew = 86_400
                claims = try TokenVerifier.verify(decoded, keys: keys, policy: lenient, now: now)
            }
            return finish(.signedIn(SessionAuth(claims: claims), token: sessionToken, carrier: .cookie))
        } catch {
            return failedHandshake("The handshake's session token does not verify (\(error.reason.rawValue)).", request: request)
        }
    }

    /// Development: a fatal error (500), as in Clerk. Production: nil, so the cookie path goes on (Clerk logs
    /// the failure and does the same).
    private func failedHandshake(_ message: String, request: CanonicalRequest) -> AuthResult? {
        guard development else { return nil }
        var result = AuthResult.signedOut("handshake-invalid", message, carrier: .cookie, invalidToken: true)
        result.fatal = true
        return result
    }

    private func devBrowserToken(_ request: CanonicalRequest, now: Double) -> String? {
        if let fromQuery = FormQuery.first(ClerkNames.devBrowser, in: request.query), !fromQuery.isEmpty { return fromQuery }
        let suffixed = instance.flatMap { request.cookies.value(ClerkNames.devBrowser + "_" + $0.cookieSuffix) }
        let chosen = usesSuffixedCookies(request.cookies, now: now) ? suffixed : request.cookies.value(ClerkNames.devBrowser)
        return chosen.flatMap { $0.isEmpty ? nil : $0 }
    }

    private func redirectCount(_ request: CanonicalRequest) -> Int {
        Int(request.cookies.value(ClerkNames.redirectCount) ?? "") ?? 0
    }

    private func isTrusted(origin: String, request: CanonicalRequest) -> Bool {
        origin == browser.origin(of: request) || browser.trustedOrigins.contains(origin)
    }

    private func isCrossOriginReferrer(_ request: CanonicalRequest) -> Bool {
        guard let referer = request.headers.first("referer"), let origin = URLOrigin.of(referer) else { return false }
        return origin != browser.origin(of: request)
    }

    /// The Frontend API itself, and (development only) the Account Portal hosts Clerk trusts.
    private func isKnownClerkReferrer(_ request: CanonicalRequest) -> Bool {
        guard let instance, let referer = request.headers.first("referer"), let host = URLOrigin.host(of: referer) else { return false }
        if host == instance.frontendAPIHost { return true }
        if let base = browser.frontendAPI, let fapiHost = URLOrigin.host(of: base.hasPrefix("http") ? base : "https://" + base), host == fapiHost {
            return true
        }
        if instance.kind == .development {
            let legacy = [".lcl.dev", ".lclstage.dev", ".lclclerk.com"]
            if host.hasPrefix("accounts."), legacy.contains(where: host.hasSuffix) { return true }
            for suffix in [".accounts.dev", ".accountsstage.dev", ".accounts.lclclerk.com"] where host.hasSuffix(suffix) {
                if !host.hasSuffix(".clerk" + suffix) { return true }
            }
        }
        return URLOrigin.of(referer) == instance.accountsBaseURL
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

    static func categoryMismatch(_ token: DecodedToken) -> String? {
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

    /// `entry`: what `decode` found in the cache for this token (nil: nothing).
    private func verify(_ decoded: borrowing DecodedToken, token: String, entry: TokenCache.Entry?, carrier: TokenCarrier, request: CanonicalRequest,
                        keys: KeySet, now: Double) -> AuthResult {
        do {
            if let hit = cache.verified(entry, keySetID: keys.id, allowedAlgorithms: policy.allowedAlgorithms) {
                // Signature already checked with these keys; the claims are checked again against the clock.
                try TokenVerifier.checkClaims(hit.decoded.payload, times: hit.times, policy: policy, now: now)
                return .signedIn(hit.session, token: token, carrier: carrier)
            }
            let claims = try TokenVerifier.verify(decoded, keys: keys, policy: policy, now: now)
            let session = SessionAuth(claims: claims)
            let exp = claims["exp"]?.doubleValue ?? now
            // Verified, so its algorithm parsed and was allowed.
            if let algorithm = decoded.algorithm.flatMap(SigningAlgorithm.init(rawValue:)) {
                let entry = TokenCache.Entry(token: token, decoded: copy decoded, categoryMismatch: SessionAuthenticator.categoryMismatch(decoded),
                                             session: session, keySetID: keys.id, algorithm: algorithm, expiresAt: exp + policy.clockSkew)
                cache.store(token, entry, now: now)
            }
            return .signedIn(session, token: token, carrier: carrier)
        } catch {
            var result = sessionTokenError(error, carrier: carrier, request: request, now: now)
            result.needsKeyRefresh = error.reason == .kidMismatch || error.reason == .keysUnavailable
            return result
        }
    }

    /// Clerk's `handleSessionTokenError`: time-related failures may become a handshake, others sign out.
    private func sessionTokenError(_ error: TokenVerificationError, carrier: TokenCarrier, request: CanonicalRequest, now: Double) -> AuthResult {
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
        var result = maybeHandshake(reason, message: fullMessage, request: request, now: now)
        result.carrier = carrier
        result.invalidTokenPresented = true
        return result
    }

    /// Clerk's `handleMaybeHandshakeStatus`: a round trip only for GET page loads, at most 3 in a row (the
    /// `__clerk_redirect_count` cookie); otherwise signed out with the same reason.
    private func maybeHandshake(_ reason: String, message: String? = nil, request: CanonicalRequest, now: Double, location custom: String? = nil) -> AuthResult {
        var result = AuthResult.signedOut(reason, message)
        guard handshakes, SessionAuthenticator.isHandshakeEligible(request) else { return result }
        let count = redirectCount(request)
        if count >= 3 {
            result.message = (message.map { $0 + " " } ?? "") + "Handshake loop stopped after 3 redirects."
            return result
        }
        guard let location = custom ?? handshakeURL(reason: reason, request: request, now: now) else { return result }
        result.status = .handshake
        result.location = location
        result.responseHeaders = HeaderList([
            ("Cache-Control", "no-store"),
            ("Set-Cookie", "\(ClerkNames.redirectCount)=\(count + 1); SameSite=Lax; HttpOnly; Max-Age=2"),
        ])
        return result
    }

    /// Clerk's `buildRedirectToHandshake` (clerk-protocol.md §3.6), byte for byte.
    func handshakeURL(reason: String, request: CanonicalRequest, now: Double) -> String? {
        guard let instance, let clerkURL = browser.clerkURL(for: request), let origin = browser.origin(of: request) else { return nil }
        let redirectURL = FormQuery.removing([ClerkNames.devBrowser, "__dev_session"], from: clerkURL)
        let suffixed = usesSuffixedCookies(request.cookies, now: now)
        var params: FormQuery.Pairs = [
            ("redirect_url", redirectURL),
            ("__clerk_api_version", ClerkNames.apiVersion),
            ("suffixed_cookies", suffixed ? "true" : "false"),
            ("__clerk_hs_reason", reason),
            ("format", "nonce"),
        ]
        let cookieToken = request.cookies.value(suffixed ? "__session_" + instance.cookieSuffix : "__session").flatMap { $0.isEmpty ? nil : $0 }
        if let token = cookieToken ?? SessionAuthenticator.headerToken(request.headers.first("authorization")) {
            params.append(("__session", token))
        }
        if development, let devBrowser = devBrowserToken(request, now: now) { params.append((ClerkNames.devBrowser, devBrowser)) }
        return browser.frontendAPIBase(instance: instance, requestOrigin: origin) + "/v1/client/handshake?" + FormQuery.serialize(params)
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

/// A request's bearer token as `SessionAuthenticator.readHeaderToken` read it: the text, and the token cache's
/// entry for it when there is one (so it is not looked up twice).
public struct HeaderToken: Sendable {
    public let text: String
    let cached: TokenCache.Entry?
}
