/// Which headers carry the caller's identity upstream, and which client headers are therefore removed.
///
/// Every client header whose normalised name (lower case, `_` and `.` folded to `-`) is one Gatehouse sets,
/// starts with `x-gatehouse-` or `x-clerk-`, is one other auth proxies set (`foreignNames`, `foreignPrefixes`),
/// or is listed in `strip`, is removed from every proxied request, whether or not Gatehouse sets a value this
/// time. Only then are Gatehouse's own values added.
public struct IdentityHeaderPolicy: Sendable, Equatable {
    public static let userId = "X-Gatehouse-User-Id"
    public static let sessionId = "X-Gatehouse-Session-Id"
    public static let orgId = "X-Gatehouse-Org-Id"
    public static let orgRole = "X-Gatehouse-Org-Role"
    public static let orgSlug = "X-Gatehouse-Org-Slug"
    public static let orgPermissions = "X-Gatehouse-Org-Permissions"
    public static let actor = "X-Gatehouse-Actor-Id"
    public static let route = "X-Gatehouse-Route"
    public static let token = "X-Gatehouse-Token"
    // Machine callers (IdentityHeaders+Machine.swift); user and org ids go in User-Id / Org-Id as Clerk's auth objects do.
    public static let tokenType = "X-Gatehouse-Token-Type"
    public static let subject = "X-Gatehouse-Subject"
    public static let machineId = "X-Gatehouse-Machine-Id"
    public static let clientId = "X-Gatehouse-Client-Id"
    public static let scopes = "X-Gatehouse-Scopes"
    public static let keyName = "X-Gatehouse-Key-Name"
    /// The signed identity assertion (`identity_assertion:`), a JWT an app verifies with Gatehouse's JWKS.
    public static let assertion = "X-Gatehouse-Assertion"

    static let reservedPrefixes = ["x-gatehouse-", "x-clerk-"]
    /// Identity headers other auth proxies (Authelia, oauth2-proxy, Pomerium, Traefik/Caddy setups) set, which
    /// an app moving to Gatehouse may still trust: a client must never be able to send them (normalised names).
    public static let foreignNames = [
        "remote-user", "remote-groups", "remote-email", "remote-name",
        "x-forwarded-user", "x-forwarded-email", "x-forwarded-groups", "x-forwarded-preferred-username",
    ]
    public static let foreignPrefixes = ["x-auth-request-", "x-pomerium-"]

    /// Every identity header name Gatehouse can set, fixed ones first, then the configured claim headers.
    /// Forward-auth answers carry each of them (empty when there is no value), so a proxy copying them replaces
    /// whatever the client sent under those names.
    public var identityHeaderNames: [String] {
        [IdentityHeaderPolicy.route, IdentityHeaderPolicy.userId, IdentityHeaderPolicy.sessionId, IdentityHeaderPolicy.orgId,
         IdentityHeaderPolicy.orgRole, IdentityHeaderPolicy.orgSlug, IdentityHeaderPolicy.orgPermissions,
         IdentityHeaderPolicy.actor, IdentityHeaderPolicy.token, IdentityHeaderPolicy.assertion] + IdentityHeaderPolicy.machineNames + claimHeaders.map(\.header)
    }

    /// True for a header another auth proxy sets as identity (compared by normalised name, without allocating).
    public static func isForeignIdentity(_ name: String) -> Bool {
        // Every such name starts with `r` or `x`: most fields are rejected on their first byte.
        guard let first = name.utf8.first, first | 0x20 == UInt8(ascii: "r") || first | 0x20 == UInt8(ascii: "x") else { return false }
        if foreignPrefixes.contains(where: { headerName(name, hasNormalizedPrefix: $0) }) { return true }
        return foreignNames.contains { headerNamesEquivalent(name, $0) }
    }

    /// Forward the verified session token in `X-Gatehouse-Token`.
    public var forwardToken: Bool { didSet { renewTag() } }
    /// Extra headers filled from claims: header name → dotted claim path.
    public var claimHeaders: [(header: String, claimPath: [String])] { didSet { renewTag() } }
    /// Further client headers to always remove (normalised names), e.g. `remote-user`.
    public var strip: Set<String> { didSet { renewTag() } }
    /// New with every change above: identity blocks built under other contents are not reused. It also holds
    /// the names `isReserved` compares with, so a decision keeps one reference instead of the policy.
    private(set) var tag: IdentityPolicyTag

    public init(forwardToken: Bool = false, claimHeaders: [(header: String, claimPath: [String])] = [], strip: [String] = []) {
        self.forwardToken = forwardToken
        self.claimHeaders = claimHeaders
        let strip = Set(strip.map(normalizedHeaderName))
        self.strip = strip
        self.tag = IdentityPolicyTag(strip: strip, claimHeaderNames: claimHeaders.map(\.header))
    }

    private mutating func renewTag() {
        tag = IdentityPolicyTag(strip: strip, claimHeaderNames: claimHeaders.map(\.header))
    }

    public static func == (lhs: IdentityHeaderPolicy, rhs: IdentityHeaderPolicy) -> Bool {
        lhs.forwardToken == rhs.forwardToken && lhs.strip == rhs.strip
            && lhs.claimHeaders.map(\.header) == rhs.claimHeaders.map(\.header)
            && lhs.claimHeaders.map(\.claimPath) == rhs.claimHeaders.map(\.claimPath)
    }

    /// True for a client header that must never reach the upstream as sent.
    public func isReserved(_ name: String) -> Bool { tag.isReserved(name) }

    /// Headers the upstream receives: the client's, minus hop-by-hop and reserved names, plus identity.
    public func upstreamHeaders(from client: HeaderList, session: SessionAuth?, token: String?, routeName: String, machine: MachineIdentity? = nil) -> HeaderList {
        upstreamFields(from: client, session: session, token: token, routeName: routeName, machine: machine).headers
    }

    /// `upstreamHeaders` as its parts, without building the list: the identity fields come from the session's
    /// block for this route (built on its first request there), or the route's signed-out block.
    public func upstreamFields(from client: HeaderList, session: SessionAuth?, token: String?, routeName: String, machine: MachineIdentity? = nil) -> UpstreamFields {
        let block: IdentityBlock
        switch (session, machine) {
        case (let session?, nil):
            let token = forwardToken ? token : nil
            if let cached = session.identityBlocks.cached(policy: tag, routeName: routeName, token: token) {
                block = cached
            } else {
                block = identityBlock(session: session, token: token, routeName: routeName, machine: nil)
                session.identityBlocks.keep(block)
            }
        case (nil, nil):
            block = tag.signedOutBlock(routeName: routeName) { identityBlock(session: nil, token: nil, routeName: routeName, machine: nil) }
        default:
            block = identityBlock(session: session, token: token, routeName: routeName, machine: machine)
        }
        return UpstreamFields(client: client, reserved: tag, identity: block)
    }

    /// The identity fields with a value, in `forEachIdentityValue`'s order.
    func identityBlock(session: SessionAuth?, token: String?, routeName: String, machine: MachineIdentity?) -> IdentityBlock {
        var fields: [(name: String, value: String)] = []
        forEachIdentityValue(session: session, token: token, routeName: routeName, machine: machine) { name, value in
            if let value { fields.append((name, value)) }
        }
        return IdentityBlock(fields: fields, policy: tag, routeName: routeName, token: forwardToken ? token : nil)
    }

    /// Calls `body` once for every name of `identityHeaderNames`, in that order, with Gatehouse's value or nil
    /// when it has none (signed out, no organization, a claim absent or unsafe). The one place that decides the
    /// values, for proxy mode and forward-auth alike; a closure, not an array, as proxy mode runs it per request.
    /// `assertion` is the signed assertion, when there is one (proxy mode appends it itself, after signing).
    public func forEachIdentityValue(session: SessionAuth?, token: String?, routeName: String, machine: MachineIdentity? = nil,
                                     assertion: String? = nil,
                                     _ body: (String, String?) -> Void) {
        body(IdentityHeaderPolicy.route, HeaderValue.isSafe(routeName) ? routeName : nil)
        let safe = HeaderValue.safe
        if let session {
            // Worked out when the session was built (once per verified token); a session's own org id wins
            // over a machine identity's, as `session?.orgId ?? machine?.orgId` did.
            let values = session.identityValues
            body(IdentityHeaderPolicy.userId, values.userId)
            body(IdentityHeaderPolicy.sessionId, values.sessionId)
            body(IdentityHeaderPolicy.orgId, session.orgId != nil ? values.orgId : safe(machine?.orgId))
            body(IdentityHeaderPolicy.orgRole, values.orgRole)
            body(IdentityHeaderPolicy.orgSlug, values.orgSlug)
            body(IdentityHeaderPolicy.orgPermissions, values.orgPermissions)
            body(IdentityHeaderPolicy.actor, values.actor)
        } else {
            body(IdentityHeaderPolicy.userId, safe(machine?.userId))
            body(IdentityHeaderPolicy.sessionId, nil)
            body(IdentityHeaderPolicy.orgId, safe(machine?.orgId))
            body(IdentityHeaderPolicy.orgRole, nil)
            body(IdentityHeaderPolicy.orgSlug, nil)
            body(IdentityHeaderPolicy.orgPermissions, nil)
            body(IdentityHeaderPolicy.actor, nil)
        }
        body(IdentityHeaderPolicy.token, session != nil && forwardToken ? safe(token) : nil)
        body(IdentityHeaderPolicy.assertion, safe(assertion))
        forEachMachineValue(session == nil ? machine : nil, safe: safe, body)
        for (header, path) in claimHeaders {
            guard let session, let value = JSONValue.object(session.claims).value(atPath: path) else {
                body(header, nil)
                continue
            }
            switch value {
            case .string(let s): body(header, safe(s))
            case .null: body(header, nil)
            default: body(header, safe(value.serialized()))
            }
        }
    }
}

enum HeaderValue {
    /// Claim values go into header values: control characters (CR, LF, NUL…) would split or corrupt the
    /// request, so such a value is left out rather than sent.
    static func isSafe(_ value: String) -> Bool {
        value.utf8.allSatisfy { $0 >= 0x20 && $0 != 0x7F }
    }

    /// The value when it is non-empty and safe, else nil (no header is sent).
    static func safe(_ value: String?) -> String? {
        guard let value, !value.isEmpty, isSafe(value) else { return nil }
        return value
    }
}

/// Hop-by-hop fields (RFC 9110 §7.6.1) and any field named in `Connection` belong to one connection only.
public enum HopByHop {
    public static let names: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authenticate", "proxy-authorization",
    ]

    /// One of the fixed hop-by-hop names, compared without allocating (this runs for every header field).
    /// Picked by length and first letter, then one comparison: walking the nine names cost ~40 ns per field.
    public static func isFixed(_ name: String) -> Bool {
        let bytes = name.utf8
        guard let first = bytes.first else { return false }
        let candidate: String
        switch (bytes.count, first | 0x20) {
        case (2, UInt8(ascii: "t")): candidate = "te"
        case (7, UInt8(ascii: "t")): candidate = "trailer"
        case (7, UInt8(ascii: "u")): candidate = "upgrade"
        case (10, UInt8(ascii: "c")): candidate = "connection"
        case (10, UInt8(ascii: "k")): candidate = "keep-alive"
        case (16, UInt8(ascii: "p")): candidate = "proxy-connection"
        case (17, UInt8(ascii: "t")): candidate = "transfer-encoding"
        case (18, UInt8(ascii: "p")): candidate = "proxy-authenticate"
        case (19, UInt8(ascii: "p")): candidate = "proxy-authorization"
        default: return false
        }
        return asciiCaseInsensitiveEquals(candidate, name)
    }

    /// Which field names are hop-by-hop for a message with these `Connection` values: the fixed ones, plus
    /// every name `Connection` lists.
    public static func predicate<Values: Sequence<String>>(connection values: Values) -> (String) -> Bool {
        // The common case (no `Connection`, or only `keep-alive`) needs no list: this runs for every request
        // and every response.
        var named: [String] = []
        for value in values {
            if asciiCaseInsensitiveEquals(value, "keep-alive") { continue }  // what nearly every upstream says
            forEachListElement(value) { name in
                if name.isEmpty || isFixed(name) { return }
                named.append(name)
            }
        }
        if named.isEmpty { return isFixed }
        return { name in isFixed(name) || named.contains { asciiCaseInsensitiveEquals($0, name) } }
    }

    /// The predicate for a message's own fields (its `Connection` values read from them). Generic so NIO's
    /// `HTTPHeaders` (responses) and `HeaderList` (requests) share it.
    public static func predicate<Fields: Sequence<(name: String, value: String)>>(for fields: Fields) -> (String) -> Bool {
        predicate(connection: fields.lazy.filter { asciiCaseInsensitiveEquals($0.name, "connection") }.map { $0.value })
    }

    /// `predicate(for:)` on a request's list without the generic lazy filter and map (~800 instructions per
    /// request, callgrind): a field is `Connection` only when its name has ten bytes, and without one the
    /// predicate is `isFixed`.
    public static func predicate(for headers: HeaderList) -> (String) -> Bool {
        var values: [String] = []
        for field in headers.fields where field.name.utf8.count == 10 && asciiCaseInsensitiveEquals(field.name, "connection") {
            values.append(field.value)
        }
        return values.isEmpty ? isFixed : predicate(connection: values)
    }

    public static func removing(from headers: HeaderList) -> HeaderList {
        let isHopByHop = predicate(for: headers)
        // Nothing to copy unless a hop-by-hop field is actually there.
        guard headers.contains(where: isHopByHop) else { return headers }
        var result = headers
        result.removeAll(where: isHopByHop)
        return result
    }
}
