/// What a signed-in caller must satisfy to pass a protected route. Every listed requirement must hold (AND),
/// with the semantics of Clerk's `has()`: org role and permission names are normalised (`admin` ≡ `org:admin`),
/// and any org requirement fails when the session has no active organization.
public struct Requirements: Sendable, Equatable {
    /// The active org role must be one of these (a session has exactly one role, so a list means "any of").
    public var orgRoles: [String] = [] { didSet { normalizedOrgRoles = orgRoles.map(Requirements.normalizedOrgKey) } }
    /// Every permission must be held.
    public var permissions: [String] = [] { didSet { normalizedPermissions = permissions.map(Requirements.normalizedOrgKey) } }
    // Normalised once, when the route is configured, not on every request.
    private(set) var normalizedOrgRoles: [String] = []
    private(set) var normalizedPermissions: [String] = []
    /// Every feature must be held (`fea` claim, `scope:key` queries as in `has({feature})`).
    public var features: [String] = []
    /// Every plan must be held (`pla` claim).
    public var plans: [String] = []
    /// An active organization is required.
    public var requireOrganization = false
    /// Claim matchers, all of which must hold.
    public var claims: [ClaimRequirement] = []
    /// Route parameters that must equal identity values (`params:`; see `OwnershipRequirements`), checked
    /// with the request's path after everything above.
    public var ownership: OwnershipRequirements? = nil

    public init() {}

    public var isEmpty: Bool {
        orgRoles.isEmpty && permissions.isEmpty && features.isEmpty && plans.isEmpty && !requireOrganization
            && claims.isEmpty && ownership == nil
    }

    /// Nil when all requirements hold; otherwise a sentence naming the first one that failed.
    public func firstFailure(for auth: SessionAuth) -> String? {
        if requireOrganization && auth.orgId == nil { return "an active organization is required" }
        if !orgRoles.isEmpty {
            guard auth.orgId != nil, let role = auth.orgRole, !role.isEmpty else {
                return "org role \(normalizedOrgRoles.joined(separator: " or ")) is required (no active organization)"
            }
            if !normalizedOrgRoles.contains(auth.normalizedOrgRole ?? Requirements.normalizedOrgKey(role)) {
                return "org role \(normalizedOrgRoles.joined(separator: " or ")) is required"
            }
        }
        for wanted in normalizedPermissions {
            guard auth.orgId != nil, auth.orgPermissions.contains(wanted) else {
                return "permission \(wanted) is required"
            }
        }
        for feature in features where !Requirements.billingClaim(auth.features, grants: feature) {
            return "feature \(feature) is required"
        }
        for plan in plans where !Requirements.billingClaim(auth.plans, grants: plan) {
            return "plan \(plan) is required"
        }
        for claim in claims where !claim.holds(in: auth.claims) {
            return "claim \(claim.displayPath) \(claim.matcher.explanation)"
        }
        return nil
    }

    /// Clerk's `x.replace(/^(org:)*/, 'org:')`.
    public static func normalizedOrgKey(_ key: String) -> String {
        // Bytes answer for characters only when what follows the colon is ASCII (or nothing): a combining mark,
        // ZWJ or other extender there joins the colon into another character, and the loop below says so.
        let afterPrefix = key.utf8.dropFirst(4)
        if key.utf8.starts(with: "org:".utf8), !afterPrefix.starts(with: "org:".utf8), afterPrefix.first.map({ $0 < 0x80 }) ?? true { return key }
        var rest = Substring(key)
        while rest.hasPrefix("org:") { rest = rest.dropFirst(4) }
        return "org:" + rest
    }

    /// `has({feature})` / `has({plan})` against a `scope:key,…` claim.
    static func billingClaim(_ claim: String, grants query: String) -> Bool {
        guard !claim.isEmpty else { return false }
        var orgKeys: [Substring] = []
        var userKeys: [Substring] = []
        for element in claim.split(separator: ",", omittingEmptySubsequences: false) {
            let trimmed = Substring(element.trimmingASCIIWhitespace())
            guard let colon = trimmed.firstIndex(of: ":") else { return false }
            let scope = trimmed[..<colon]
            let key = trimmed[trimmed.index(after: colon)...]
            switch scope {
            case "o": orgKeys.append(key)
            case "u": userKeys.append(key)
            case "ou", "uo": orgKeys.append(key); userKeys.append(key)
            default: break
            }
        }
        let parts = query.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        if parts.count == 1 {
            return orgKeys.contains(parts[0]) || userKeys.contains(parts[0])
        }
        let scope = parts[0]
        let key = parts[1]
        switch scope {
        case "o", "org", "organization": return orgKeys.contains(key)
        case "u", "user": return userKeys.contains(key)
        default: return false
        }
    }
}

/// A condition on one claim, addressed by a dotted path (`metadata.role` → `{"metadata":{"role":…}}`).
public struct ClaimRequirement: Sendable, Equatable {
    public let path: [String]
    public let matcher: ClaimMatcher

    public init(path: String, matcher: ClaimMatcher) {
        self.path = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        self.matcher = matcher
    }

    public var displayPath: String { path.joined(separator: ".") }

    public func holds(in claims: JSONObject) -> Bool {
        let value = JSONValue.object(claims).value(atPath: path)
        switch matcher {
        case .exists(let shouldExist):
            return (value != nil && value != .null) == shouldExist
        case .equals(let expected):
            return value == expected
        case .oneOf(let options):
            guard let value else { return false }
            return options.contains(value)
        case .contains(let element):
            guard case .array(let elements)? = value else { return false }
            return elements.contains(element)
        }
    }
}

public enum ClaimMatcher: Sendable, Equatable {
    case equals(JSONValue)
    case oneOf([JSONValue])
    case exists(Bool)
    /// The claim is an array containing this value.
    case contains(JSONValue)

    public var explanation: String {
        switch self {
        case .equals(let v): return "must equal \(v.serialized())"
        case .oneOf(let vs): return "must be one of \(JSONValue.array(vs).serialized())"
        case .exists(let e): return e ? "must be present" : "must be absent"
        case .contains(let v): return "must be an array containing \(v.serialized())"
        }
    }
}
