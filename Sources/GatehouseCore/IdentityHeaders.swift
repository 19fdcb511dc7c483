/// Which headers carry the caller's identity upstream, and which client headers are therefore removed.
///
/// Every client header whose normalised name (lower case, `_` and `.` folded to `-`) is one Gatehouse sets,
/// starts with `x-gatehouse-` or `x-clerk-`, or is listed in `strip`, is removed from every proxied request,
/// whether or not Gatehouse sets a value this time. Only then are Gatehouse's own values added.
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

    static let reservedPrefixes = ["x-gatehouse-", "x-clerk-"]

    /// Forward the verified session token in `X-Gatehouse-Token`.
    public var forwardToken: Bool
    /// Extra headers filled from claims: header name → dotted claim path.
    public var claimHeaders: [(header: String, claimPath: [String])]
    /// Further client headers to always remove (normalised names), e.g. `remote-user`.
    public var strip: Set<String>

    public init(forwardToken: Bool = false, claimHeaders: [(header: String, claimPath: [String])] = [], strip: [String] = []) {
        self.forwardToken = forwardToken
        self.claimHeaders = claimHeaders
        self.strip = Set(strip.map(normalizedHeaderName))
    }

    public static func == (lhs: IdentityHeaderPolicy, rhs: IdentityHeaderPolicy) -> Bool {
        lhs.forwardToken == rhs.forwardToken && lhs.strip == rhs.strip
            && lhs.claimHeaders.map(\.header) == rhs.claimHeaders.map(\.header)
            && lhs.claimHeaders.map(\.claimPath) == rhs.claimHeaders.map(\.claimPath)
    }

    /// True for a client header that must never reach the upstream as sent.
    public func isReserved(_ name: String) -> Bool {
        // Compared without building the normalised name: this runs for every header field of every request.
        if IdentityHeaderPolicy.reservedPrefixes.contains(where: { headerName(name, hasNormalizedPrefix: $0) }) { return true }
        if strip.contains(where: { headerNamesEquivalent(name, $0) }) { return true }
        return claimHeaders.contains { headerNamesEquivalent(name, $0.header) }
    }

    /// Headers the upstream receives: the client's, minus hop-by-hop and reserved names, plus identity.
    public func upstreamHeaders(from client: HeaderList, session: SessionAuth?, token: String?, routeName: String) -> HeaderList {
        // Built once with room for the identity fields: filtering a copy and appending to it cost three
        // allocations per request.
        let isHopByHop = HopByHop.predicate(for: client)
        var headers = HeaderList()
        headers.reserveCapacity(client.count + 8 + claimHeaders.count)
        for field in client where !isHopByHop(field.name) && !isReserved(field.name) { headers.append(field.name, field.value) }
        headers.append(IdentityHeaderPolicy.route, routeName)
        guard let session else { return headers }
        func add(_ name: String, _ value: String?) {
            guard let value, !value.isEmpty, HeaderValue.isSafe(value) else { return }
            headers.append(name, value)
        }
        add(IdentityHeaderPolicy.userId, session.userId)
        add(IdentityHeaderPolicy.sessionId, session.sessionId)
        add(IdentityHeaderPolicy.orgId, session.orgId)
        add(IdentityHeaderPolicy.orgRole, session.orgRole)
        add(IdentityHeaderPolicy.orgSlug, session.orgSlug)
        if session.orgId != nil && !session.orgPermissions.isEmpty {
            add(IdentityHeaderPolicy.orgPermissions, session.orgPermissions.joined(separator: ","))
        }
        if case .object(let actor)? = session.actor { add(IdentityHeaderPolicy.actor, actor["sub"]?.stringValue) }
        if forwardToken { add(IdentityHeaderPolicy.token, token) }
        for (header, path) in claimHeaders {
            guard let value = JSONValue.object(session.claims).value(atPath: path) else { continue }
            switch value {
            case .string(let s): add(header, s)
            case .null: continue
            default: add(header, value.serialized())
            }
        }
        return headers
    }
}

enum HeaderValue {
    /// Claim values go into header values: control characters (CR, LF, NUL…) would split or corrupt the
    /// request, so such a value is left out rather than sent.
    static func isSafe(_ value: String) -> Bool {
        value.utf8.allSatisfy { $0 >= 0x20 && $0 != 0x7F }
    }
}

/// Hop-by-hop fields (RFC 9110 §7.6.1) and any field named in `Connection` belong to one connection only.
public enum HopByHop {
    public static let names: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authenticate", "proxy-authorization",
    ]
    static let nameList = Array(names)

    /// One of the fixed hop-by-hop names, compared without allocating (this runs for every header field).
    public static func isFixed(_ name: String) -> Bool {
        let count = name.utf8.count
        guard count >= 2 && count <= 19 else { return false }
        return nameList.contains { $0.utf8.count == count && asciiCaseInsensitiveEquals($0, name) }
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

    public static func removing(from headers: HeaderList) -> HeaderList {
        let isHopByHop = predicate(for: headers)
        // Nothing to copy unless a hop-by-hop field is actually there.
        guard headers.contains(where: isHopByHop) else { return headers }
        var result = headers
        result.removeAll(where: isHopByHop)
        return result
    }
}
