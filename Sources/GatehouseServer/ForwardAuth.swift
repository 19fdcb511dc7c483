import GatehouseAuth
import GatehouseCore
import GatehouseEngine

/// Forward-auth: nginx `auth_request`, Traefik ForwardAuth and Caddy `forward_auth` ask Gatehouse about a
/// request they hold, and copy the identity from the answer. Only ever consulted for trusted proxies.
enum ForwardAuth {
    /// How the asking proxy understands the answer.
    enum Dialect: Equatable {
        /// Traefik, Caddy: a 2xx lets the request through; any other answer goes to the client as it is.
        case passThrough
        /// nginx `auth_request` accepts only 2xx, 401 and 403 (anything else becomes a 500), so every denial is
        /// carried as 401 or 403 with the real status in `X-Gatehouse-Status` (and a redirect's target in
        /// `X-Gatehouse-Location`) for the snippet's `error_page` to answer with.
        case nginx
    }

    static let nginxSuffix = "/nginx"
    static let statusHeader = "X-Gatehouse-Status"
    static let locationHeader = "X-Gatehouse-Location"

    /// The dialect when `path` (canonical) is the forward-auth endpoint `configured`, or its `/nginx` variant.
    /// At the plain path a request carrying `X-Original-URI` (what only the nginx snippet sends) is nginx too,
    /// so configurations written before the `/nginx` path keep working.
    static func dialect(path: String, configured: String, headers: HeaderList) -> Dialect? {
        if path == nginxPath(configured) { return .nginx }
        guard path == configured else { return nil }
        return headers.first("x-original-uri") != nil && headers.first("x-forwarded-uri") == nil ? .nginx : .passThrough
    }

    /// The nginx endpoint under `configured`, joined with exactly one slash (the loader refuses a trailing
    /// slash, but a doubled one would canonicalise to a path neither endpoint matches).
    static func nginxPath(_ configured: String) -> String {
        var base = Substring(configured)
        while base.hasSuffix("/") { base = base.dropLast() }
        return base + nginxSuffix
    }

    /// The forward-auth path and everything under it belong to Gatehouse: a request there that is not one of
    /// the endpoints is answered 404 locally, never proxied. Otherwise a misspelt endpoint in a proxy's
    /// snippet would send the auth subrequest to the app, and an app answering 2xx would allow everything.
    static func isReserved(path: String, configured: String) -> Bool {
        var base = Substring(configured)
        while base.hasSuffix("/") { base = base.dropLast() }
        if base.isEmpty { return true }
        // Compared without case, as routing compares (a case-insensitive upstream would serve `/FA/x` as
        // `/fa/x`), and `;` counts as a boundary too (Tomcat-style upstreams read `/fa;x` as `/fa`).
        let lowered = path.asciiLowercased, prefix = String(base).asciiLowercased
        guard lowered.hasPrefix(prefix) else { return false }
        let rest = lowered.dropFirst(prefix.count)
        return rest.isEmpty || rest.first == "/" || rest.first == ";"
    }

    struct Original {
        let method: String
        let uri: String
    }

    /// The request the proxy asks about, from the pair of headers its dialect's snippet sets (over anything
    /// the client sent): nginx's `X-Original-*`, the others' `X-Forwarded-*`. The other pair is never read, so a
    /// client's own `X-Forwarded-Uri` through nginx cannot name another request. At the plain path both pairs
    /// together are ambiguous (nginx with a client's `X-Forwarded-Uri`, or Caddy/Traefik with a client's
    /// `X-Original-URI`): nil, as for a missing, empty or repeated URI or method.
    static func originalRequest(_ headers: HeaderList, dialect: Dialect) -> Original? {
        let (uriName, methodName) = dialect == .nginx ? ("x-original-uri", "x-original-method") : ("x-forwarded-uri", "x-forwarded-method")
        if dialect == .passThrough, !headers.values("x-original-uri").isEmpty { return nil }
        let uris = headers.values(uriName), methods = headers.values(methodName)
        // The method is required as the URI is: guessing GET would judge a POST by a GET-only rule.
        guard uris.count == 1, methods.count == 1, let uri = uris.first, !uri.isEmpty,
            let method = methods.first, !method.isEmpty
        else { return nil }
        return Original(method: method, uri: uri)
    }

    /// The allowing answer: 200 with **every** identity header name Gatehouse can set, empty when it has no
    /// value, so a proxy that copies them replaces a client's look-alike even when Gatehouse has nothing to say
    /// (and Caddy before 2.9 never forwards a literal `{http.reverse_proxy.header.…}` placeholder for a
    /// missing one). Nothing the client sent is echoed back: the values come from the verified session only.
    static func allowed(_ evaluation: Evaluation, policy: IdentityHeaderPolicy, cookies: [String]) -> Decision {
        var decision = Decision.deny(status: 200, error: "", message: "", explanation: "forward-auth allowed")
        decision.body = nil
        var headers = HeaderList([("Cache-Control", "no-store")])
        headers.reserveCapacity(12 + policy.claimHeaders.count + cookies.count)
        let session = evaluation.auth?.activeSession
        policy.forEachIdentityValue(session: session, token: evaluation.auth?.verifiedToken, routeName: evaluation.route?.name ?? "default",
                                    machine: evaluation.auth?.machineIdentity,
                                    assertion: evaluation.decision.upstreamHeaders?.first(IdentityHeaderPolicy.assertion)) {
            name, value in headers.append(name, value ?? "")
        }
        for cookie in cookies { headers.append("Set-Cookie", cookie) }
        decision.responseHeaders = headers
        return decision
    }

    /// The answer to a request under the forward-auth path that names no endpoint (404: never proxied).
    static func notAnEndpoint(configured path: String) -> Decision {
        .deny(status: 404, error: "not_found", message: "No forward-auth endpoint here: ask at \(path) or \(nginxPath(path)).",
              explanation: "under the forward-auth path, not an endpoint")
    }

    /// The answer to a forward-auth question from an untrusted peer, or without one original request (403, in
    /// the dialect's vocabulary).
    static func withoutOriginalRequest(trusted: Bool, dialect: Dialect) -> Decision {
        let message = trusted
            ? dialect == .nginx ? "Forward-auth for nginx needs one X-Original-URI and one X-Original-Method."
                : "Forward-auth needs one X-Forwarded-Uri, one X-Forwarded-Method and no X-Original-URI (nginx asks at the /nginx path)."
            : "Forward-auth is only answered for trusted proxies."
        return denial(.deny(status: 403, error: "forbidden", message: message, explanation: "forward-auth request without a trusted original request"),
                      dialect: dialect)
    }

    /// A denial (or redirect) in the dialect's vocabulary.
    static func denial(_ decision: Decision, dialect: Dialect) -> Decision {
        guard dialect == .nginx else { return decision }
        // Cookies (a handshake's) and the challenge stay; the body does not reach the client through nginx.
        var carried: [(String, String)] = [(statusHeader, String(decision.status))]
        if decision.action == .redirect { carried.append((locationHeader, decision.location ?? "")) }
        for field in decision.responseHeaders where ["set-cookie", "www-authenticate", "retry-after"].contains(normalizedHeaderName(field.name)) {
            carried.append((field.name, field.value))
        }
        let carrier = decision.status == 401 || decision.action == .redirect ? 401 : 403
        return .deny(status: carrier, error: decision.status == 401 || decision.action == .redirect ? "unauthenticated" : "forbidden",
                     message: "Forward-auth denial (status \(decision.status)).", extraHeaders: carried,
                     explanation: decision.explanation)
    }
}
