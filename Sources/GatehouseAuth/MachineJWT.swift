import GatehouseCore

/// Machine JWTs verified locally with the instance keys (`jwt/verifyMachineJwt.ts`, `jwt/verifyJwt.ts`):
/// M2M (`sub mch_…`, header `typ` `JWT` or absent, `cat` absent or `cl_B7d4PD333AAA`), OAuth access tokens
/// (`typ at+jwt`/`application/at+jwt`, no `cat` rule) and JWT-template tokens (`cat cl_B7d4PD222AAA`, with the
/// template's exact `iss` and `aud`). Then the algorithm allow-list, the signature, a string `sub` and
/// `exp`/`nbf`/`iat` with the clock skew. Unlike Clerk, the session settings `authorized_parties`/`audience`
/// do not apply (Clerk applies them by accident and M2M JWTs carry no `azp`).
public enum MachineJWT {
    /// Payload members that are not custom claims (`M2M_RESERVED_JWT_CLAIMS`).
    static let reservedClaims: Set<String> = ["iss", "sub", "exp", "nbf", "iat", "jti"]
    /// What the caller is told when a template claim requirement fails: which claim and value the route wants
    /// is in the error's `detail` (explain, logs), never in the answer.
    public static let templateClaimMessage = "The token does not meet the route's requirements."

    public static func verify(
        _ token: String, type: TokenType, keys: KeySet, policy: VerificationPolicy, template: TemplateRule? = nil, now: Double
    ) throws(TokenVerificationError) -> MachineIdentity {
        let decoded = try DecodedToken(token)
        var claimPolicy = VerificationPolicy(allowedAlgorithms: policy.allowedAlgorithms, clockSkew: policy.clockSkew)
        let types: Set<String>
        switch type {
        case .m2mToken:
            // Checked before any key is looked at, as Clerk does (no JWKS fetch for a wrong category).
            if let cat = decoded.header["cat"], cat.stringValue != TokenClassifier.Category.m2m {
                throw TokenVerificationError(.invalid, "Invalid M2M JWT category.")
            }
            types = ["JWT"]
        case .oauthToken:
            guard let typ = decoded.header["typ"]?.stringValue, TokenClassifier.oauthJWTTypes.contains(typ) else {
                throw TokenVerificationError(.verificationFailed, "Invalid JWT type. Expected one of: at+jwt, application/at+jwt.")
            }
            types = TokenClassifier.oauthJWTTypes
        case .template:
            guard decoded.header["cat"]?.stringValue == TokenClassifier.Category.template, let template else {
                throw TokenVerificationError(.invalid, "Not a JWT-template token.")
            }
            claimPolicy.issuer = template.issuer
            claimPolicy.audiences = template.audiences
            types = ["JWT"]
        case .sessionToken, .apiKey:
            throw TokenVerificationError(.invalid, "\(type.rawValue) tokens are not machine JWTs.")
        }
        try TokenVerifier.verifySignature(decoded, keys: keys, policy: policy, types: types)
        let payload = decoded.payload
        try TokenVerifier.checkClaims(payload, policy: claimPolicy, now: now)
        if let template {
            // Template audiences are compared exactly: `aud` must be present (checkClaims demands it) and match.
            for claim in template.claims where !claim.holds(in: payload) {
                throw TokenVerificationError(.verificationFailed, templateClaimMessage, detail: "claim \(claim.displayPath) \(claim.matcher.explanation)")
            }
        }
        return identity(from: payload, type: type)
    }

    /// Clerk's `M2MToken.fromJwtPayload` / `IdPOAuthAccessToken.fromJwtPayload`.
    static func identity(from payload: JSONObject, type: TokenType) -> MachineIdentity {
        var custom = JSONObject()
        for (key, value) in payload.members where !reservedClaims.contains(key) { custom.set(key, value) }
        let subject = payload["sub"]?.stringValue ?? ""
        let id = payload["jti"]?.stringValue ?? ""
        let exp = payload["exp"]?.doubleValue
        switch type {
        case .m2mToken:
            let scopes = payload["scopes"]?.stringValue.map(splitScopes) ?? audience(payload["aud"])
            return MachineIdentity(tokenType: type, form: .jwt, id: id, subject: subject, scopes: scopes,
                                   claims: custom.members.isEmpty ? nil : custom, expiresAt: exp)
        case .oauthToken:
            let scopes = payload["scp"]?.arrayValue?.compactMap(\.stringValue) ?? payload["scope"]?.stringValue.map(splitScopes) ?? []
            return MachineIdentity(tokenType: type, form: .jwt, id: id, subject: subject, scopes: scopes,
                                   claims: custom.members.isEmpty ? nil : custom, clientId: payload["client_id"]?.stringValue, expiresAt: exp)
        default:
            return MachineIdentity(tokenType: type, form: .jwt, id: id, subject: subject, scopes: [],
                                   claims: custom.members.isEmpty ? nil : custom, expiresAt: exp)
        }
    }

    static func splitScopes(_ text: String) -> [String] {
        text.split(separator: " ").map(String.init)
    }

    static func audience(_ value: JSONValue?) -> [String] {
        switch value {
        case .string(let s)?: return [s]
        case .array(let a)?: return a.compactMap(\.stringValue)
        default: return []
        }
    }
}

/// The outcome of the machine path for one request.
public enum MachineAuthState: Sendable, Equatable {
    case verified(MachineIdentity)
    /// The token was refused (wrong type, missing, invalid, revoked…): 401. `reason`/`message` are Clerk's.
    case rejected(reason: String, message: String)
    /// The Backend API could not answer and nothing was cached, or its limits shed the call: 503.
    case unavailable(reason: String, message: String)
}

extension AuthResult {
    /// A request decided on the machine path (a machine token on a route that accepts one, or a route that
    /// accepts only machine tokens).
    public static func machine(_ state: MachineAuthState, tokenType: TokenType?, detail: String? = nil) -> AuthResult {
        var result: AuthResult
        switch state {
        case .verified:
            result = AuthResult(status: .signedIn, reason: nil, message: nil, carrier: .header, session: nil, verifiedToken: nil,
                                invalidTokenPresented: false, keysUnavailable: false)
        case .rejected(let reason, let message):
            result = .signedOut(reason, message, carrier: .header, invalidToken: tokenType != nil)
        case .unavailable(let reason, let message):
            result = .signedOut(reason, message, carrier: .header)
        }
        result.machine = state
        result.tokenType = tokenType
        result.detail = detail
        return result
    }

    /// A token of a type the route does not take, on a route that takes session tokens: answered like a
    /// signed-out session (page → sign-in, API → 401), as Clerk's `auth.protect()` does.
    public static func sessionTypeMismatch(_ tokenType: TokenType) -> AuthResult {
        var result = AuthResult.signedOut("token-type-mismatch", "", carrier: .header, invalidToken: true)
        result.tokenType = tokenType
        return result
    }

    /// The machine identity, when verified.
    public var machineIdentity: MachineIdentity? {
        if case .verified(let identity)? = machine { return identity }
        return nil
    }
}
