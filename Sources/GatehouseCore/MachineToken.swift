/// Clerk's token types (`TokenType` in `@clerk/backend`), plus `template`: a JWT-template token
/// (`getToken({ template })`, header `cat: cl_B7d4PD222AAA`), which Gatehouse verifies like a machine JWT
/// against the template's `aud`/`iss` rather than as a session.
public enum TokenType: String, Sendable, Equatable, Hashable, CaseIterable {
    case sessionToken = "session_token"
    case apiKey = "api_key"
    case m2mToken = "m2m_token"
    case oauthToken = "oauth_token"
    case template

    /// The types Clerk calls machine tokens (never read from cookies).
    public var isMachine: Bool { self == .apiKey || self == .m2mToken || self == .oauthToken }
}

/// How a token is checked: opaque tokens at the Backend API, JWTs locally with the instance keys.
public enum TokenForm: String, Sendable, Equatable {
    case opaque, jwt
}

/// What a bearer token is, decided from its text alone (no network, no signature), exactly in the order of
/// Clerk's `getMachineTokenType` (`tokens/machine.ts`): `mt_` or a JWT whose `sub` starts `mch_` → M2M; then
/// `oat_` or a JWT with header `typ` `at+jwt`/`application/at+jwt` → OAuth; then `ak_` → API key; anything
/// else is a session token (a JWT-template token when its `cat` says so). Prefixes are case-sensitive.
public enum TokenClassifier {
    public static let m2mPrefix = "mt_"
    public static let oauthPrefix = "oat_"
    public static let apiKeyPrefix = "ak_"
    public static let m2mSubjectPrefix = "mch_"
    public static let oauthJWTTypes: Set<String> = ["at+jwt", "application/at+jwt"]

    /// Clerk's JWT categories (`tokens/jwtCategories.ts`).
    public enum Category {
        public static let session = "cl_B7d4PD111AAA"
        public static let template = "cl_B7d4PD222AAA"
        public static let m2m = "cl_B7d4PD333AAA"
        public static let ignore = "cl_I7d4PD111III"
    }

    public struct Classification: Sendable, Equatable {
        public let type: TokenType
        public let form: TokenForm
        public init(_ type: TokenType, _ form: TokenForm) {
            self.type = type
            self.form = form
        }
    }

    public static func classify(_ token: String) -> Classification {
        let parts = jwtParts(token)
        if token.hasPrefix(m2mPrefix) { return Classification(.m2mToken, .opaque) }
        if let parts, case .string(let sub)? = parts.payload?["sub"], sub.hasPrefix(m2mSubjectPrefix) {
            return Classification(.m2mToken, .jwt)
        }
        if token.hasPrefix(oauthPrefix) { return Classification(.oauthToken, .opaque) }
        if let parts, case .string(let typ)? = parts.header?["typ"], oauthJWTTypes.contains(typ) {
            return Classification(.oauthToken, .jwt)
        }
        if token.hasPrefix(apiKeyPrefix) { return Classification(.apiKey, .opaque) }
        if let parts, case .string(let cat)? = parts.header?["cat"], cat == Category.template {
            return Classification(.template, .jwt)
        }
        return Classification(.sessionToken, .jwt)
    }

    /// Clerk's `isJwtFormat` (`^[a-zA-Z0-9\-_]+\.[a-zA-Z0-9\-_]+\.[a-zA-Z0-9\-_]+$`) and the decoded header and
    /// payload objects (nil where a part is not a JSON object: such a JWT then has no `sub`/`typ` to go by).
    static func jwtParts(_ token: String) -> (header: JSONObject?, payload: JSONObject?)? {
        let bytes = Array(token.utf8)
        guard bytes.count <= 16 * 1024 else { return nil }
        let parts = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(isBase64URLByte) }) else { return nil }
        func object(_ part: ArraySlice<UInt8>) -> JSONObject? {
            guard let decoded = Base64URL.decode(part), case .object(let object)? = try? JSONParser.parse(decoded) else { return nil }
            return object
        }
        return (object(parts[0]), object(parts[1]))
    }

    static func isBase64URLByte(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
            || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "-") || b == UInt8(ascii: "_")
    }
}

/// A route's `accepts:` rule (Clerk's `acceptsToken`): one type, a list, or `any` (Clerk's four types).
public struct TokenAcceptance: Sendable, Equatable {
    public enum Shape: Sendable, Equatable {
        case single, list, any
    }

    public let types: Set<TokenType>
    public let shape: Shape
    /// The JWT template's checks, when `template` is accepted.
    public let template: TemplateRule?

    /// Only `session_token`: worked out once (hashing the set's member per request cost ~350 instructions).
    public let isSessionOnly: Bool

    public init(types: Set<TokenType>, shape: Shape, template: TemplateRule? = nil) {
        self.types = types
        self.shape = shape
        self.template = template
        self.isSessionOnly = types.count == 1 && types.contains(.sessionToken)
    }

    /// Clerk's default: `session_token` only.
    public static let sessionOnly = TokenAcceptance(types: [.sessionToken], shape: .single)
    public static let any = TokenAcceptance(types: [.sessionToken, .apiKey, .m2mToken, .oauthToken], shape: .any)

    public var acceptsSession: Bool { types.contains(.sessionToken) }
    public var acceptsMachine: Bool { types.contains { $0 != .sessionToken } }

    public var description: String {
        switch shape {
        case .any: return "any"
        case .single: return types.first?.rawValue ?? ""
        case .list: return "[" + TokenType.allCases.filter(types.contains).map(\.rawValue).joined(separator: ", ") + "]"
        }
    }
}

/// A JWT template's required issuer and audience (both checked exactly), and claim conditions.
public struct TemplateRule: Sendable, Equatable {
    public let issuer: String
    public let audiences: [String]
    public let claims: [ClaimRequirement]

    public init(issuer: String, audiences: [String], claims: [ClaimRequirement] = []) {
        self.issuer = issuer
        self.audiences = audiences
        self.claims = claims
    }
}

/// A verified machine caller: Clerk's machine auth objects (`tokens/authObjects.ts`), one shape for all.
public struct MachineIdentity: Sendable, Equatable {
    public let tokenType: TokenType
    public let form: TokenForm
    /// The token's id (`ak_…`, `mt_…`, `oat_…`, or the JWT's `jti`).
    public let id: String
    public let subject: String
    public let scopes: [String]
    /// API-key and M2M claims, or the JWT payload minus the registered claims; nil when there are none.
    public let claims: JSONObject?
    /// API keys only.
    public let name: String?
    /// OAuth tokens only.
    public let clientId: String?
    /// Unix seconds, when known.
    public let expiresAt: Double?

    public init(tokenType: TokenType, form: TokenForm, id: String, subject: String, scopes: [String], claims: JSONObject?,
                name: String? = nil, clientId: String? = nil, expiresAt: Double? = nil) {
        self.tokenType = tokenType
        self.form = form
        self.id = id
        self.subject = subject
        self.scopes = scopes
        self.claims = claims
        self.name = name
        self.clientId = clientId
        self.expiresAt = expiresAt
    }

    /// `userId`: an OAuth token's subject, or an API key's when it is a user (`user_…`).
    public var userId: String? {
        switch tokenType {
        case .oauthToken: return subject
        case .apiKey, .template: return subject.hasPrefix("user_") ? subject : nil
        default: return nil
        }
    }

    /// An API key owned by an organization (`org_…`).
    public var orgId: String? { tokenType == .apiKey && subject.hasPrefix("org_") ? subject : nil }

    /// An M2M token's machine.
    public var machineId: String? { tokenType == .m2mToken ? subject : nil }
}
