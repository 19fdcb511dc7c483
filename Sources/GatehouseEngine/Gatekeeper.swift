import GatehouseAuth
import GatehouseConfig
import GatehouseCore

/// Everything Gatehouse concluded about one request, in flow order.
public struct Evaluation: Sendable {
    /// Nil when the request was refused before routing (400/414).
    public var request: CanonicalRequest?
    public var route: RouteRule?
    /// False when the fallback (`default:`) applied.
    public var routeMatched: Bool
    public var auth: AuthResult?
    public var decision: Decision

    public init(request: CanonicalRequest?, route: RouteRule?, routeMatched: Bool, auth: AuthResult?, decision: Decision) {
        self.request = request
        self.route = route
        self.routeMatched = routeMatched
        self.auth = auth
        self.decision = decision
    }
}

/// The decision path shared by `explain` and the daemon:
/// raw request → canonical request → route → identity → decision.
public struct Gatekeeper: Sendable {
    public let settings: GatehouseSettings
    public let authenticator: SessionAuthenticator

    public init(settings: GatehouseSettings, keyStore: KeyStore) {
        self.settings = settings
        self.authenticator = SessionAuthenticator(instance: settings.instance, policy: settings.policy, keyStore: keyStore,
                                                  cache: TokenCache(capacity: settings.tokenCacheSize))
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
            let auth = await authenticator.authenticate(request, now: now)
            return Evaluation(request: request, route: route, routeMatched: matched, auth: auth, decision: decide(request: request, route: route, auth: auth))
        }
    }

    /// `evaluate` without waiting: nil when the key store must re-fetch first (then call `evaluate`).
    public func evaluateWithoutFetching(_ raw: RawRequest, now: Double) -> Evaluation? {
        switch route(raw) {
        case .refused(let evaluation):
            return evaluation
        case .routed(let request, let route, let matched):
            guard let auth = authenticator.authenticateWithoutFetching(request, now: now) else { return nil }
            return Evaluation(request: request, route: route, routeMatched: matched, auth: auth, decision: decide(request: request, route: route, auth: auth))
        }
    }

    private enum Routing {
        case refused(Evaluation)
        case routed(CanonicalRequest, RouteRule, matched: Bool)
    }

    /// The first two steps: the canonical request (or a 400/414 refusal) and its route.
    private func route(_ raw: RawRequest) -> Routing {
        do {
            let request = try CanonicalRequest(raw, options: settings.canonicalization)
            let (rule, matched) = settings.routes.route(for: request)
            return .routed(request, rule, matched: matched)
        } catch {
            return .refused(Evaluation(request: nil, route: nil, routeMatched: false, auth: nil, decision: .reject(error)))
        }
    }

    func decide(request: CanonicalRequest, route: RouteRule, auth: AuthResult) -> Decision {
        let session = auth.activeSession
        if route.access == .public {
            let headers = settings.identity.upstreamHeaders(from: request.headers, session: session, token: auth.verifiedToken, routeName: route.name)
            return .proxy(upstreamHeaders: headers, explanation: "public route '\(route.name)'" + (session.map { ", signed in as \($0.userId)" } ?? ""))
        }
        guard let session else {
            if auth.keysUnavailable {
                return .deny(status: 503, error: "keys_unavailable", message: "Signing keys are unavailable; try again shortly.",
                             extraHeaders: [("Retry-After", "5")], explanation: "no signing key could be loaded, so no token can be judged")
            }
            return unauthenticated(request: request, route: route, auth: auth)
        }
        if let failure = route.requirements.firstFailure(for: session) {
            let status = route.forbiddenStatus
            return .deny(status: status, error: status == 404 ? "not_found" : "forbidden",
                         message: status == 404 ? "Not found." : "You do not have access to this resource.",
                         explanation: "signed in as \(session.userId), but \(failure) (route '\(route.name)')")
        }
        let headers = settings.identity.upstreamHeaders(from: request.headers, session: session, token: auth.verifiedToken, routeName: route.name)
        return .proxy(upstreamHeaders: headers, explanation: "signed in as \(session.userId); route '\(route.name)' requirements met")
    }

    private func unauthenticated(request: CanonicalRequest, route: RouteRule, auth: AuthResult) -> Decision {
        let pending = auth.status == .signedIn && auth.session?.isPending == true
        let why = pending ? "the session is pending" : "not signed in (\(auth.status.rawValue): \(auth.reason ?? "no reason"))"
        var debug: [(String, String)] = [("X-Clerk-Auth-Status", pending ? "signed-out" : auth.status.rawValue)]
        if let reason = auth.reason { debug.append(("X-Clerk-Auth-Reason", reason)) }

        let response: UnauthenticatedResponse
        switch route.onUnauthenticated {
        case .auto: response = Gatekeeper.isPageRequest(request) ? .redirect : .unauthorized
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
            var challenge = "Bearer realm=\"gatehouse\""
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
        return request.headers.values("accept").contains { $0.asciiLowercased.contains("text/html") }
    }

    /// The configured sign-in URL (never request-controlled) with `redirect_url` set to the original URL.
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
        let original: String
        if let origin = settings.publicOrigin {
            original = origin + request.pathAndQuery
        } else {
            original = request.originalURL ?? request.pathAndQuery
        }
        return URLEncoding.appendingQuery(target, name: "redirect_url", value: original)
    }
}
