import GatehouseAuth
import GatehouseConfig
import GatehouseCore

/// The machine path of the decision (Clerk's `acceptsToken`): which token a route takes, its verification
/// (JWTs locally, opaque tokens through the `MachineTokenVerifier`), and the answer for machine callers.
/// Machine tokens are only ever read from `Authorization`, never from cookies.
extension Gatekeeper {
    /// Where the request goes after the route's `accepts:` has looked at its `Authorization` token.
    enum MachinePath {
        /// The session path decides (the route takes session tokens and one was, or may be, presented).
        case session
        case decided(AuthResult)
        case jwt(String, TokenType)
        case opaque(String, TokenType)
    }

    /// What the synchronous decision can say.
    enum MachineOutcome {
        case session
        case decided(AuthResult)
        /// A key re-fetch or a Backend API call must be waited for.
        case wait
    }

    /// Built once: an array literal here was allocated on every request.
    static let opaquePrefixes: [(String, TokenType)] = [
        (TokenClassifier.m2mPrefix, .m2mToken), (TokenClassifier.oauthPrefix, .oauthToken), (TokenClassifier.apiKeyPrefix, .apiKey),
    ]

    /// `token`: the request's `Authorization` token as `SessionAuthenticator.headerToken` reads it.
    func machinePath(_ request: CanonicalRequest, accepts: TokenAcceptance, token: String?) -> MachinePath {
        if accepts.isSessionOnly {
            // The session path already refuses machine JWTs (`sub mch_`, `typ at+jwt`, foreign `cat`) with
            // token-type-mismatch; only the opaque prefixes need a look here (no decoding on the hot path).
            guard let token else { return .session }
            // The prefixes are ASCII, so a character prefix is also a byte prefix: the byte tests (cheap) first,
            // the first byte before all (a JWT starts with `e`; each prefix with `m`, `o` or `a`).
            guard let first = token.utf8.first, first == UInt8(ascii: "m") || first == UInt8(ascii: "o") || first == UInt8(ascii: "a") else {
                return .session
            }
            for (prefix, type) in Gatekeeper.opaquePrefixes where token.utf8.starts(with: prefix.utf8) && token.hasPrefix(prefix) {
                return .decided(.sessionTypeMismatch(type))
            }
            return .session
        }
        guard let token else {
            if accepts.acceptsSession { return .session }
            // Clerk: a single machine type says "No token in header"; a list counts no token as a session token,
            // which it does not take.
            let reason = accepts.shape == .single ? "No token in header" : "token-type-mismatch"
            return .decided(.machine(.rejected(reason: reason, message: ""), tokenType: nil))
        }
        let classification = TokenClassifier.classify(token)
        let type = classification.type
        if accepts.types.contains(type) {
            switch type {
            case .sessionToken: return .session
            case .template: return .jwt(token, .template)
            default: return classification.form == .jwt ? .jwt(token, type) : .opaque(token, type)
            }
        }
        if type == .sessionToken || type == .template, accepts.acceptsSession { return .session }
        return .decided(.machine(.rejected(reason: "token-type-mismatch", message: ""), tokenType: type))
    }

    /// The machine decision without waiting; `.wait` when a call is under way or would be made (the async
    /// `machineAuthentication` starts or joins it).
    func machineAuthenticationWithoutFetching(_ request: CanonicalRequest, route: RouteRule, now: Double, token: String?) -> MachineOutcome {
        switch machinePath(request, accepts: settings.machine.acceptance(for: route), token: token) {
        case .session: return .session
        case .decided(let auth): return .decided(auth)
        case .jwt(let token, let type):
            let (auth, needsKeys) = verifyMachineJWT(token, type: type, route: route, keys: authenticator.keyStore.keys, now: now)
            if needsKeys, authenticator.keyStore.isRemote, authenticator.keyStore.unknownKidWouldFetch { return .wait }
            return .decided(auth)
        case .opaque(let token, let type):
            // Peek only: a call is started by the waiting path alone, so one request costs at most one call.
            switch lookupOpaque(token, type: type, client: request.clientAddress, now: now, startingCall: false) {
            case .left(let auth): return .decided(auth)
            case .right: return .wait
            }
        }
    }

    /// The machine decision, waiting for a key re-fetch or the Backend API when needed; nil: the session path decides.
    func machineAuthentication(_ request: CanonicalRequest, route: RouteRule, now: Double) async -> AuthResult? {
        switch machinePath(request, accepts: settings.machine.acceptance(for: route),
                           token: SessionAuthenticator.headerToken(request.headers.first("authorization"))) {
        case .session: return nil
        case .decided(let auth): return auth
        case .jwt(let token, let type):
            let store = authenticator.keyStore
            let (auth, needsKeys) = verifyMachineJWT(token, type: type, route: route, keys: store.keys, now: now)
            guard needsKeys, store.isRemote else { return auth }
            let keys = await store.keysAfterUnknownKid()
            return verifyMachineJWT(token, type: type, route: route, keys: keys, now: now).auth
        case .opaque(let token, let type):
            switch lookupOpaque(token, type: type, client: request.clientAddress, now: now) {
            case .left(let auth): return auth
            case .right(let task?): return .machine(await task.value, tokenType: type)
            case .right(nil): return .machine(.unavailable(reason: "unexpected-error", message: "No verification was started."), tokenType: type)
            }
        }
    }

    /// The session path's result with the token type for `explain` (decoded again only on the rare mismatch).
    /// Takes the result (a copy retained and released its dozen references: ~1,900 instructions per request).
    func withSessionTokenType(_ auth: consuming AuthResult, _ request: CanonicalRequest) -> AuthResult {
        setSessionTokenType(&auth, request)
        return auth
    }

    /// The same in place (no copy of the result to move it in and out: ~420 instructions per request).
    func setSessionTokenType(_ auth: inout AuthResult, _ request: CanonicalRequest) {
        guard auth.tokenType == nil, let carrier = auth.carrier else { return }
        if carrier == .header, auth.reason == "token-type-mismatch",
            let token = SessionAuthenticator.headerToken(request.headers.first("authorization"))
        {
            auth.tokenType = TokenClassifier.classify(token).type
        } else {
            auth.tokenType = .sessionToken
        }
    }

    enum Either<Left, Right> {
        case left(Left)
        case right(Right)
    }

    /// `.right(nil)`: not decided yet, and `startingCall` was false (nothing was started).
    private func lookupOpaque(_ token: String, type: TokenType, client: String, now: Double,
                              startingCall: Bool = true) -> Either<AuthResult, Task<MachineAuthState, Never>?> {
        if let problem = OpaqueTokenShape.problem(token, type: type) {
            // Refused without a call; the caller sees Clerk's "token-invalid" only, explain the reason.
            return .left(.machine(.rejected(reason: "token-invalid", message: "The token is malformed (code=token-invalid, status=n/a)"), tokenType: type,
                                  detail: "malformed: \(problem); no Backend API call made"))
        }
        guard let verifier = machineVerifier else {
            return .left(.machine(.unavailable(reason: "backend-api-not-configured", message: "No Backend API verifier is configured."), tokenType: type))
        }
        let found = startingCall ? verifier.lookup(type, token: token, client: client, now: now) : verifier.peek(type, token: token, client: client, now: now)
        switch found {
        case nil: return .right(nil)
        case .ready(let state)?: return .left(.machine(state, tokenType: type))
        case .shed?:
            return .left(.machine(.unavailable(reason: "verification-rate-limited", message: "Too many token verifications right now."), tokenType: type))
        case .pending(let task)?: return .right(task)
        }
    }

    /// Verifies a machine JWT; `needsKeys` when a key re-fetch could change the answer (unknown `kid`, no keys).
    private func verifyMachineJWT(_ token: String, type: TokenType, route: RouteRule, keys: KeySet, now: Double) -> (auth: AuthResult, needsKeys: Bool) {
        let template = settings.machine.acceptance(for: route).template
        do {
            let identity = try MachineJWT.verify(token, type: type, keys: keys, policy: authenticator.policy, template: template, now: now)
            return (.machine(.verified(identity), tokenType: type), false)
        } catch {
            let needsKeys = error.reason == .kidMismatch || error.reason == .keysUnavailable
            if error.reason == .keysUnavailable {
                return (.machine(.unavailable(reason: error.reason.rawValue, message: error.message), tokenType: type), needsKeys)
            }
            // Clerk's codes: a token that does not decode (or has a wrong category) is token-invalid, every
            // other failure token-verification-failed.
            let code = error.reason == .invalid ? "token-invalid" : "token-verification-failed"
            return (.machine(.rejected(reason: code, message: "\(error.message) (code=\(code), status=n/a)"), tokenType: type, detail: error.detail), needsKeys)
        }
    }

    /// The answer for a request decided on the machine path.
    func decideMachine(request: CanonicalRequest, route: RouteRule, auth: AuthResult, state: MachineAuthState) -> Decision {
        let accepts = settings.machine.acceptance(for: route)
        let typeName = auth.tokenType?.rawValue ?? "no token"
        switch state {
        case .verified(let identity):
            if let failure = settings.machine.grantFailure(identity) {
                // Refused like its opaque form, which the Backend API does not find for this machine's key.
                var refused = auth
                refused.detail = failure
                return decideMachine(request: request, route: route, auth: refused,
                                     state: .rejected(reason: "token-invalid", message: "Machine token not found (code=token-invalid, status=n/a)"))
            }
            // Ownership rules compare a session's identity; config refuses them beside machine types, and a
            // machine caller that reaches one anyway is refused, never waved past the comparison.
            if route.access == .protected, route.requirements.ownership != nil {
                return .deny(status: route.forbiddenStatus, error: route.forbiddenStatus == 404 ? "not_found" : "forbidden",
                             message: route.forbiddenStatus == 404 ? "Not found." : "You do not have access to this resource.",
                             explanation: "\(identity.tokenType.rawValue) for \(identity.subject) verified, but route '\(route.name)' has ownership rules, which only a session can meet")
            }
            if route.access == .protected,
                let failure = settings.machine.requirements(for: route).firstFailure(for: identity, claims: settings.machine.claims(for: route))
            {
                let status = route.forbiddenStatus
                return .deny(status: status, error: status == 404 ? "not_found" : "forbidden",
                             message: status == 404 ? "Not found." : "You do not have access to this resource.",
                             explanation: "\(identity.tokenType.rawValue) for \(identity.subject) verified, but \(failure) (route '\(route.name)')")
            }
            let headers = settings.identity.upstreamFields(from: request.headers, session: nil, token: nil, routeName: route.name, machine: identity)
            return .proxy(upstream: headers,
                          explanation: "\(identity.tokenType.rawValue) (\(identity.form.rawValue)) for \(identity.subject) verified; route '\(route.name)' accepts \(accepts.description)")
        case .unavailable(let reason, let message):
            if route.access == .public {
                let headers = settings.identity.upstreamFields(from: request.headers, session: nil, token: nil, routeName: route.name)
                return .proxy(upstream: headers, explanation: "public route '\(route.name)'; the \(typeName) could not be verified (\(reason))")
            }
            return .deny(status: 503, error: "token_verification_unavailable", message: "The token cannot be verified right now; try again shortly.",
                         extraHeaders: [("Retry-After", "1"), ("X-Clerk-Auth-Status", "signed-out"), ("X-Clerk-Auth-Reason", reason)],
                         explanation: "\(typeName) could not be verified (\(reason): \(message)); never a pass, never a 401")
        case .rejected(let reason, let message):
            if route.access == .public {
                let headers = settings.identity.upstreamFields(from: request.headers, session: nil, token: nil, routeName: route.name)
                return .proxy(upstream: headers, explanation: "public route '\(route.name)'; \(typeName) refused (\(reason))")
            }
            var extra: [(String, String)] = [("X-Clerk-Auth-Status", "signed-out"), ("X-Clerk-Auth-Reason", reason)]
            if !message.isEmpty { extra.append(("X-Clerk-Auth-Message", message)) }
            let said = auth.detail ?? message
            let why = "\(typeName) refused (\(reason)\(said.isEmpty ? "" : ": " + said)); route '\(route.name)' accepts \(accepts.description)"
            if route.onUnauthenticated == .notFound {
                return .deny(status: 404, error: "not_found", message: "Not found.", extraHeaders: extra, explanation: why)
            }
            var challenge = bearerChallenge(route: route, presented: auth.tokenType)
            if auth.tokenType != nil { challenge += ", error=\"invalid_token\"" }
            return .deny(status: 401, error: "unauthenticated", message: "A valid \(accepts.description) token is required.",
                         extraHeaders: [("WWW-Authenticate", challenge)] + extra, explanation: why)
        }
    }
}

extension Gatekeeper {
    /// The `WWW-Authenticate` of a 401, without `error=`. Clerk points OAuth callers at the resource metadata
    /// (RFC 9728, what MCP clients read) when the token was an OAuth token; Gatehouse does whenever the route
    /// takes OAuth tokens (whatever came, and on the session path too: an MCP client's first, discovery request
    /// carries no token, and on a route that also takes sessions it is answered there).
    func bearerChallenge(route: RouteRule, presented: TokenType?) -> String {
        if let metadata = settings.machine.resourceMetadataURL,
            presented == .oauthToken || settings.machine.acceptance(for: route).types.contains(.oauthToken)
        {
            return "Bearer resource_metadata=\"\(metadata)\""
        }
        return "Bearer realm=\"gatehouse\""
    }
}

/// The machine caller as `explain` shows it (never the token).
enum MachineExplain {
    static func json(_ identity: MachineIdentity?) -> JSONValue {
        guard let identity else { return .null }
        func optional(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
        return .object(JSONObject([
            ("tokenType", .string(identity.tokenType.rawValue)),
            ("form", .string(identity.form.rawValue)),
            ("id", .string(identity.id)),
            ("subject", .string(identity.subject)),
            ("scopes", .array(identity.scopes.map(JSONValue.string))),
            ("userId", optional(identity.userId)),
            ("orgId", optional(identity.orgId)),
            ("machineId", optional(identity.machineId)),
            ("clientId", optional(identity.clientId)),
            ("name", optional(identity.name)),
            ("claims", identity.claims.map(JSONValue.object) ?? .null),
        ]))
    }
}

extension Gatekeeper {
    /// `GET /.well-known/oauth-protected-resource…` answered with the configured metadata, before any route.
    func protectedResourceMetadata(_ request: CanonicalRequest) -> Evaluation? {
        guard let resource = settings.machine.protectedResource, request.path.value == resource.metadataPath else { return nil }
        var decision: Decision
        if request.method == "GET" || request.method == "HEAD" {
            decision = .deny(status: 200, error: "", message: "", explanation: "OAuth protected resource metadata (RFC 9728) for \(resource.resource)")
            decision.body = resource.document.serialized()
            decision.responseHeaders = HeaderList([("Content-Type", "application/json"), ("Cache-Control", "max-age=300"), ("Access-Control-Allow-Origin", "*")])
        } else {
            decision = .deny(status: 405, error: "method_not_allowed", message: "Use GET.", extraHeaders: [("Allow", "GET, HEAD")],
                             explanation: "OAuth protected resource metadata is read with GET")
        }
        return Evaluation(request: request, route: nil, routeMatched: false, auth: nil, decision: decision)
    }
}

extension Gatekeeper {
    /// A session that has not reverified recently enough: 403 with the body Clerk's `useReverification` hook
    /// understands (Clerk's own `auth.protect` answers 404 here and leaves the body to app code).
    func reverificationRefusal(route: RouteRule, session: SessionAuth) -> Decision? {
        guard let rule = settings.machine.reverificationRule(for: route), !rule.isSatisfied(fva: session.claims["fva"]) else { return nil }
        var decision = Decision.deny(status: 403, error: "", message: "",
                                     explanation: "signed in as \(session.userId), but reverification (\(rule.description)) is required (route '\(route.name)')")
        decision.body = rule.errorBody
        return decision
    }
}
