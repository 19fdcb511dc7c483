import GatehouseCore

/// What the access log records of an authentication result.
public struct AuthLogFacts: Sendable, Equatable {
    /// The active session's user (as `activeSession?.userId`).
    public var userID: String?
    public var reason: String?
    public var tokenType: String?
    /// A verified machine caller's subject (as `machineIdentity?.subject`).
    public var machineSubject: String?
}

extension AuthResult {
    /// The access log's fields, read in place. `activeSession` and `machineIdentity` return copies (every
    /// reference of a session or identity retained and released), and binding the whole result to a local to read
    /// them once copied all of it: ~0.1 µs per logged request (perf).
    public var logFacts: AuthLogFacts {
        var facts = AuthLogFacts(userID: nil, reason: reason, tokenType: tokenType?.rawValue, machineSubject: nil)
        if status == .signedIn, session?.isPending == false { facts.userID = session?.userId }
        if case .verified(let identity)? = machine { facts.machineSubject = identity.subject }
        return facts
    }
}
