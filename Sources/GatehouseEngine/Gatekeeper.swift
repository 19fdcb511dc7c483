import GatehouseAuth
import GatehouseConfig
import GatehouseCore

/// Everything Gatehouse concluded about one request, in flow order.
///
/// A class: the server keeps it for the whole exchange and reads its parts several times, and copying the
/// struct (a canonical request, an auth result and a decision, each full of strings) showed up in perf.
public final class Evaluation: Sendable {
    /// Nil when the request was refused before routing (400/414).
    public let request: CanonicalRequest?
    public let route: RouteRule?
    /// False when the fallback (`default:`) applied.
    public let routeMatched: Bool
    public let auth: AuthResult?
    public let decision: Decision

    public init(request: CanonicalRequest?, route: RouteRule?, routeMatched: Bool, auth: AuthResult?, decision: Decision) {
        self.request = request
        self.route = route
        self.routeMatched = routeMatched
        self.auth = auth
        self.decision = decision
    }

    /// What the access log records of `auth`, read where it is stored: through `auth` from another module the
    /// getter hands out a copy of the whole result (perf).
    public var authLogFacts: AuthLogFacts? { auth?.logFacts }
}

/// The decision path shared by `explain` and the daemon:
/// raw request → canonical request → route → identity → decision.
public final class Gatekeeper: Sendable {
    public let settings: GatehouseSettings
    public let authenticator: SessionAuthenticator
    /// Opaque machine tokens at the Backend API (cached, single-flight, limited); nil without a source.
    public let machineVerifier: MachineTokenVerifier?

    /// - Parameter payloadSource: exchanges handshake nonces for cookie directives (needs the secret key);
    ///   without it a nonce handshake signs nobody in.
    /// - Parameter nonceExchange: overrides the exchange built from `payloadSource` (tests set its clock and limits).
    /// - Parameter cache: a token cache to keep (across reloads); by default a new one of the configured size.
    public init(settings: GatehouseSettings, keyStore: KeyStore, payloadSource: (any HandshakePayloadSource)? = nil,
                nonceExchange: HandshakeNonceExchange? = nil, cache: TokenCache? = nil,
                machineSource: (any MachineTokenSource)? = nil, machineVerifier: MachineTokenVerifier? = nil) {
        self.settings = settings
        self.machineVerifier = machineVerifier ?? machineSource.map { MachineTokenVerifier(source: $0, limits: settings.machine.limits) }
        self.authenticator = SessionAuthenticator(instance: settings.instance, policy: settings.policy, keyStore: keyStore,
                                                  cache: cache ?? TokenCache(capacity: settings.tokenCacheSize),
                                                  browser: settings.browser, payloadSource: payloadSource, nonceExchange: nonceExchange)
    }

    /// A key store for the configured source; `remote` builds the HTTP fetcher for URL sources.
    public static func makeKeyStore(for settings: GatehouseSettings, remote: (_ url: String, _ bearer: String?) -> any JWKSSource) -> KeyStore {
        switch settings.keySource {
        case .pem(let key):
            return KeyStore(staticKeys: KeySet(keys: [], anyKidKey: key), description: settings.keySource.description)
        case .jwksFile(_, let keys, _):
            return KeyStore(staticKeys: KeySet(keys: keys), description: settings.keySource.description)
        case .remote(let url, let bearer, _):
            return KeyStore(remote: remote(url, bearer), settings: settings.keySettings)
        }
    }

    /// `makeKeyStore`, with a remote JWKS fetched once before returning (the result shows in `status`).
    public static func loadKeyStore(for settings: GatehouseSettings, remote: (_ url: String, _ bearer: String?) -> any JWKSSource) async -> KeyStore {
        let store = makeKeyStore(for: settings, remote: remote)
        if store.isRemote { await store.refresh() }
        return store
    }

    /// `now` is Unix time in seconds (injected so `explain --at` and tests need no tricks).
    public func evaluate(_ raw: RawRequest, now: Double) async -> Evaluation {
        switch route(raw) {
        case .refused(let evaluation):
            return evaluation
        case .routed(let request, let route, let matched):
            let auth: AuthResult
            if let machine = await machineAuthentication(request, route: route, now: now) { auth = machine } else {
                auth = withSessionTokenType(await authenticator.authenticate(request, now: now), request)
            }
            let decision = signed(decide(request: request, route: route, auth: auth), request: request, route: route, auth: auth, now: now)
            // Moved in, not copied (a copy retained and released the result's dozen references).
            return Evaluation(request: request, route: route, routeMatched: matched, auth: consume auth, decision: decision)
        }
    }

    /// `evaluate` without waiting: nil when the key store must re-fetch first (then call `evaluate`).
    /// Borrowed, so the data plane's prepared request can lend its own without a copy (its six references
    /// retained and released; `RequestPolicy.Prepared.evaluateWithoutFetching`).
    public func evaluateWithoutFetching(_ raw: borrowing RawRequest, now: Double) -> Evaluation? {
        switch route(raw) {
        case .refused(let evaluation):
            return evaluation
        case .routed(let request, let route, let matched):
            let auth: AuthResult
            // Read once for both paths (a copy of a ~800-byte token each time).
            let token = authenticator.readHeaderToken(request.headers.first("authorization"))
            switch machineAuthenticationWithoutFetching(request, route: route, now: now, token: token?.text) {
            case .decided(let machine): auth = machine
            case .wait: return nil
            case .session:
                guard var session = authenticator.authenticateWithoutFetching(request, now: now, headerToken: token) else { return nil }
                setSessionTokenType(&session, request)
                auth = consume session
            }
            let decision = signed(decide(request: request, route: route, auth: auth), request: request, route: route, auth: auth, now: now)
            // Moved in, not copied (a copy retained and released the result's dozen references).
            return Evaluation(request: request, route: route, routeMatched: matched, auth: consume auth, decision: decision)
        }
    }

    private enum Routing {
        case refused(Evaluation)
        case routed(CanonicalRequest, RouteRule, matched: Bool)
    }

    /// The first two steps: the canonical request (or a 400/414 refusal) and its route. Requests for the
    /// Frontend API proxy are answered here: they carry no session of their own.
    private func route(_ raw: borrowing RawRequest) -> Routing {
        do {
            let request = try CanonicalRequest(raw, options: settings.canonicalization)
            if let jwks = assertionJWKSResponse(request) { return .refused(Evaluation(request: request, route: nil, routeMatched: false, auth: nil, decision: jwks)) }
            if let proxy = settings.frontendAPIProxy, let evaluation = FrontendAPIProxy.evaluate(request, proxy: proxy, settings: settings) {
                return .refused(evaluation)
            }
            if let evaluation = protectedResourceMetadata(request) { return .refused(evaluation) }
            let (rule, matched) = try settings.routes.route(for: request)
            return .routed(request, rule, matched: matched)
        } catch {
            return .refused(Evaluation(request: nil, route: nil, routeMatched: false, auth: nil, decision: .reject(error)))
        }
    }

    func decide(request: CanonicalRequest, route: RouteRule, auth: AuthResult) -> Decision {
        decideIgnoringAuthHeaders(request: request, route: route, auth: auth).adding(responseHeaders: auth.responseHeaders)
    }

    private func decideIgnoringAuthHeaders(request: CanonicalRequest, route: RouteRule, auth: AuthResult) -> Decision {
        if let machine = auth.machine { return decideMachine(request: request, route: route, auth: auth, state: machine) }
        if auth.fatal {
            return .deny(status: 500, error: "handshake_failed", message: "The Clerk handshake could not be verified.",
                         extraHeaders: debugHeaders(auth), explanation: "development handshake failed: \(auth.message ?? auth.reason ?? "")")
        }
        // Clerk's middleware answers any state that carries a Location with a 307 before routes are looked at:
        // handshakes, the cleaned URL after a development handshake, satellite syncs.
        if let location = auth.location {
            let what = auth.status == .handshake ? "handshake (\(auth.reason ?? ""))" : "handshake resolved (\(auth.status.rawValue)); back to the cleaned URL"
            return .redirect(to: location, extraHeaders: auth.status == .signedIn ? [] : debugHeaders(auth), explanation: what)
        }
        let session = auth.activeSession
        if session != nil, route.csrf, let refusal = csrfRefusal(request: request, auth: auth) {
            return refusal
        }
        if route.access == .public {
            let headers = settings.identity.upstreamFields(from: request.headers, session: session, token: auth.verifiedToken, routeName: route.name)
            return .proxy(upstream: headers, why: .publicRoute(route: route.name, userId: session?.userId))
        }
        guard let session else {
            if auth.handshakeUnavailable {
                return .deny(status: 503, error: "handshake_unavailable", message: "Signing in cannot be completed right now; try again in a moment.",
                             extraHeaders: [("Retry-After", "1")] + debugHeaders(auth),
                             explanation: "the handshake nonce was not exchanged: the Backend API exchange is over its rate limit")
            }
            if auth.keysUnavailable {
                return .deny(status: 503, error: "keys_unavailable", message: "Signing keys are unavailable; try again shortly.",
                             extraHeaders: [("Retry-After", "5")], explanation: "no signing key could be loaded, so no token can be judged")
            }
            return unauthenticated(request: request, route: route, auth: auth)
        }
        let ownership = route.requirements.ownership?.check(path: request.path, auth: session)
        if let failure = route.requirements.firstFailure(for: session) ?? ownership?.firstFailure {
            let status = route.forbiddenStatus
            return .deny(status: status, error: status == 404 ? "not_found" : "forbidden",
                         message: status == 404 ? "Not found." : "You do not have access to this resource.",
                         explanation: "signed in as \(session.userId), but \(failure) (route '\(route.name)')")
        }
        if let refusal = reverificationRefusal(route: route, session: session) { return refusal }
        let headers = settings.identity.upstreamFields(from: request.headers, session: session, token: auth.verifiedToken, routeName: route.name)
        return .proxy(upstream: headers, why: .requirementsMet(userId: session.userId, route: route.name, ownership: ownership?.summary))
    }

    private func debugHeaders(_ auth: AuthResult) -> [(String, String)] {
        var headers: [(String, String)] = [("X-Clerk-Auth-Status", auth.status.rawValue)]
        if let reason = auth.reason { headers.append(("X-Clerk-Auth-Reason", reason)) }
        return headers
    }

    static let safeMethods: Set<String> = ["GET", "HEAD", "OPTIONS", "TRACE"]

    /// Does `value` (an `Origin`, or a URL such as a `Referer`) come from one of `own` origins or an authorized
    /// party? Compared as normalised origins. The one rule for CSRF and for cookie WebSocket upgrades.
    public func isAllowedOrigin(_ value: String, own: [String?]) -> Bool {
        guard let origin = URLOrigin.of(value) else { return false }
        return own.contains(origin) || settings.policy.authorizedParties.contains(origin)
    }

    /// CSRF defence: a browser attaches cookies to requests any site makes, so a cookie session on an unsafe
    /// method must come from the app's own origin or an authorized party. The evidence, in order: `Origin`,
    /// else `Sec-Fetch-Site`, else `Referer`; with none of them the request is refused (fail closed — every
    /// current browser sends `Origin` on unsafe methods). Bearer tokens are never sent by browsers on their
    /// own, so they are not affected.
    func csrfRefusal(request: CanonicalRequest, auth: AuthResult) -> Decision? {
        guard auth.carrier == .cookie, !Gatekeeper.safeMethods.contains(request.method) else { return nil }
        let own = settings.browser.origin(of: request)
        let evidence: String
        if let origin = request.headers.first("origin") {
            if isAllowedOrigin(origin, own: [own]) { return nil }
            evidence = "Origin \(origin.prefix(100))"
        } else if let site = request.headers.first("sec-fetch-site") {
            if site == "same-origin" || site == "none" { return nil }
            evidence = "Sec-Fetch-Site \(site.prefix(30))"
        } else if let referer = request.headers.first("referer") {
            if isAllowedOrigin(referer, own: [own]) { return nil }
            evidence = "Referer from " + (URLOrigin.of(referer) ?? "an unparsable URL")
        } else {
            evidence = "no Origin, Sec-Fetch-Site or Referer"
        }
        return .deny(status: 403, error: "csrf_origin_mismatch",
                     message: "Cross-site \(request.method) with a session cookie refused: the request must come from this app's origin or an authorized party.",
                     explanation: "CSRF defence: cookie-authenticated \(request.method) with \(evidence), which is not \(own ?? "this app's origin") or an authorized party")
    }

    private func unauthenticated(request: CanonicalRequest, route: RouteRule, auth: AuthResult) -> Decision {
        let pending = auth.status == .signedIn && auth.session?.isPending == true
        let why = pending ? "the session is pending" : "not signed in (\(auth.status.rawValue): \(auth.reason ?? "no reason"))"
        var debug = debugHeaders(auth)
        if pending { debug[0].1 = "signed-out" }

        let response: UnauthenticatedResponse
        switch route.onUnauthenticated {
        case .auto:
            response = Gatekeeper.isPageRequest(request) && !NextServerAction.wantsClerkActionResponse(request) ? .redirect : .unauthorized
        default: response = route.onUnauthenticated
        }
        switch response {
        case .redirect, .auto:
            return .redirect(to: signInLocation(for: request, pending: pending), extraHeaders: debug,
                             explanation: "\(why); page request to protected route '\(route.name)' is sent to sign in")
        case .notFound:
            return .deny(status: 404, error: "not_found", message: "Not found.", extraHeaders: debug,
                         explanation: "\(why); route '\(route.name)' answers 404 to signed-out callers")
        case .unauthorized:
            var challenge = bearerChallenge(route: route, presented: auth.tokenType)
            if auth.invalidTokenPresented { challenge += ", error=\"invalid_token\"" }
            return .deny(status: 401, error: "unauthenticated", message: "A valid session token is required.",
                         extraHeaders: [("WWW-Authenticate", challenge)] + debug,
                         explanation: "\(why); protected route '\(route.name)'")
        }
    }

    /// Browser navigations: GET/HEAD with `Sec-Fetch-Dest: document|iframe`, or an `Accept` that includes
    /// `text/html` (as Clerk's `auth.protect()` detects pages).
    public static func isPageRequest(_ request: CanonicalRequest) -> Bool {
        guard request.method == "GET" || request.method == "HEAD" else { return false }
        if let dest = request.headers.first("sec-fetch-dest")?.asciiLowercased, dest == "document" || dest == "iframe" { return true }
        return request.headers.values("accept").contains { Gatekeeper.mentionsHTML($0) }
    }

    /// `value.asciiLowercased.contains("text/html")`, searched on bytes (the character search cost ~1.7 µs of
    /// a 401, perf): the pattern is ASCII, so a character match is a byte match; a byte match whose neighbours
    /// are ASCII is also a character match (no grapheme rule joins an ASCII letter to an ASCII neighbour), and
    /// any other takes the character search.
    static func mentionsHTML(_ value: String) -> Bool {
        let pattern = Array("text/html".utf8)
        let bytes = Array(value.utf8)
        guard bytes.count >= pattern.count else { return false }
        for start in 0...(bytes.count - pattern.count) {
            var i = 0
            while i < pattern.count, (bytes[start + i] >= 0x41 && bytes[start + i] <= 0x5A ? bytes[start + i] | 0x20 : bytes[start + i]) == pattern[i] { i += 1 }
            guard i == pattern.count else { continue }
            let end = start + pattern.count
            if (start == 0 || bytes[start - 1] < 0x80) && (end == bytes.count || bytes[end] < 0x80) { return true }
            return value.asciiLowercased.contains("text/html")
        }
        return false
    }

    /// The configured sign-in URL (never request-controlled) with `redirect_url` set to the original URL, as
    /// Clerk's `redirectToSignIn` builds it (clerk-protocol.md §7). The URL sent back is always this app's:
    /// the public origin when configured; else the request's own origin, which must be an authorized party when
    /// sign-in is on another origin and authorized parties are configured (otherwise only the path is sent).
    func signInLocation(for request: CanonicalRequest, pending: Bool) -> String {
        var target = settings.signInURL
        if pending {
            // Clerk sends pending sessions to the sign-in tasks page.
            if let q = target.firstIndex(of: "?") {
                target = String(target[..<q]) + "/tasks" + String(target[q...])
            } else {
                target += "/tasks"
            }
        }
        let browser = settings.browser
        let origin = browser.origin(of: request)
        let crossOrigin = target.hasPrefix("http") && URLOrigin.hostAndPort(of: target) != origin.flatMap(URLOrigin.hostAndPort(of:))
        var returnBack: String
        if let origin, browser.publicOrigin != nil || !crossOrigin || settings.policy.authorizedParties.isEmpty
            || settings.policy.authorizedParties.contains(origin)
        {
            returnBack = origin + request.pathAndQuery
        } else {
            returnBack = request.pathAndQuery
        }
        if browser.isSatellite && crossOrigin {
            // Coming back from the primary's sign-in, the satellite must sync its cookies first.
            returnBack = FormQuery.setting("__clerk_synced", "false", in: returnBack)
        }
        var location = URLEncoding.appendingQuery(target, name: "redirect_url", value: returnBack)
        if settings.instance?.kind == .development, crossOrigin, FormQuery.first("__clerk_db_jwt", in: target) == nil,
            let devBrowser = request.cookies.value("__clerk_db_jwt"), !devBrowser.isEmpty
        {
            // A development instance's sign-in on another origin needs the dev browser to recognise the user.
            location = URLEncoding.appendingQuery(location, name: "__clerk_db_jwt", value: devBrowser)
        }
        return location
    }
}
