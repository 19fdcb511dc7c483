/// What a machine caller must satisfy on a route (`require:` keys for machine tokens). All listed conditions
/// must hold. Clerk's `auth.protect()` checks nothing for machine tokens (`has()` is always false); these are
/// Gatehouse's.
public struct MachineRequirements: Sendable, Equatable {
    /// Every scope must be granted (`scopes:`).
    public var allScopes: [String] = []
    /// At least one must be granted (`any_scope:`).
    public var anyScope: [String] = []
    /// The token's subject must be one of these (`subjects:`).
    public var subjects: [String] = []
    /// An M2M token's machine must be one of these (`machine_ids:`).
    public var machineIds: [String] = []
    /// An OAuth token's client must be one of these (`client_ids:`).
    public var clientIds: [String] = []
    /// An API key must belong to a user or to an organization (`api_key_subject:`).
    public var apiKeySubject: APIKeySubject? = nil

    public enum APIKeySubject: String, Sendable, Equatable {
        case user, org
    }

    public init() {}

    public var isEmpty: Bool {
        allScopes.isEmpty && anyScope.isEmpty && subjects.isEmpty && machineIds.isEmpty && clientIds.isEmpty && apiKeySubject == nil
    }

    /// Nil when all hold; otherwise a sentence naming the first that failed.
    public func firstFailure(for identity: MachineIdentity, claims: [ClaimRequirement]) -> String? {
        for scope in allScopes where !identity.scopes.contains(scope) { return "scope \(scope) is required" }
        if !anyScope.isEmpty, !anyScope.contains(where: identity.scopes.contains) {
            return "one of the scopes \(anyScope.joined(separator: ", ")) is required"
        }
        if !subjects.isEmpty, !subjects.contains(identity.subject) { return "subject \(identity.subject) is not allowed" }
        if !machineIds.isEmpty, !(identity.machineId.map(machineIds.contains) ?? false) { return "the machine is not allowed" }
        if !clientIds.isEmpty, !(identity.clientId.map(clientIds.contains) ?? false) { return "the OAuth client is not allowed" }
        switch apiKeySubject {
        case .user? where identity.userId == nil || identity.tokenType != .apiKey: return "an API key of a user is required"
        case .org? where identity.orgId == nil: return "an API key of an organization is required"
        default: break
        }
        // Opaque OAuth tokens carry no claims: a claim requirement fails for them (fail closed).
        let object = identity.claims ?? JSONObject()
        for claim in claims where !claim.holds(in: object) { return "claim \(claim.displayPath) \(claim.matcher.explanation)" }
        return nil
    }
}
