public enum Access: String, Sendable, Equatable {
    /// Always passes; identity headers are still set when a valid token came along.
    case `public`
    /// Needs a signed-in caller who meets the rule's requirements.
    case protected
}

/// What a signed-out caller on a protected route gets.
public enum UnauthenticatedResponse: String, Sendable, Equatable {
    /// Browser page requests are redirected to sign-in, everything else gets 401.
    case auto
    /// 401 for everyone, browsers included.
    case unauthorized = "401"
    /// 404 for everyone: hide that the route exists.
    case notFound = "404"
    /// Always redirect to sign-in, whatever the request looks like.
    case redirect
}

/// A host condition: an exact name (`app.example.com`) or a wildcard of one or more labels (`*.example.com`).
public struct HostPattern: Sendable, Equatable, CustomStringConvertible {
    public let source: String
    private let suffix: String?
    private let exact: String?

    public init(_ source: String) {
        self.source = source
        let lower = source.asciiLowercased
        if lower.hasPrefix("*.") {
            suffix = String(lower.dropFirst(1))
            exact = nil
        } else {
            exact = lower.hasSuffix(".") ? String(lower.dropLast()) : lower
            suffix = nil
        }
    }

    public var description: String { source }

    /// `host` is a canonical host (lower case); its port is ignored unless the pattern names one.
    public func matches(_ host: String) -> Bool {
        if let exact {
            return host == exact || (!exact.contains(":") && HostPattern.stripPort(host) == exact)
        }
        guard let suffix else { return false }
        let name = HostPattern.stripPort(host)
        return name.count > suffix.count && name.hasSuffix(suffix)
    }

    static func stripPort(_ host: String) -> String {
        if host.hasPrefix("[") {
            if let close = host.firstIndex(of: "]") { return String(host[...close]) }
            return host
        }
        if let colon = host.lastIndex(of: ":") { return String(host[..<colon]) }
        return host
    }
}

/// One compiled rule. A class: the table is walked on every request, and walking an array of large structs
/// copies (and retains the arrays of) every rule it looks at.
public final class RouteRule: Sendable, Equatable {
    public let name: String
    public let patterns: [RoutePattern]
    /// Upper-case methods, matched case-insensitively (see `MethodName`); empty means every method.
    public let methods: [String]
    /// Empty means every host.
    public let hosts: [HostPattern]
    public let access: Access
    public let requirements: Requirements
    /// Status for a signed-in caller who fails a requirement: 403, or 404 to hide the route.
    public let forbiddenStatus: Int
    public let onUnauthenticated: UnauthenticatedResponse
    /// Overrides the global upstream for requests this rule matches.
    public let upstream: UpstreamTarget?
    /// Refuse unsafe methods from foreign origins when the caller is signed in by cookie (CSRF defence).
    public let csrf: Bool
    /// `when:` conditions on headers and server actions; all must hold for the rule to match.
    public let conditions: [RequestCondition]

    public init(
        name: String, patterns: [RoutePattern], methods: [String] = [], hosts: [HostPattern] = [],
        access: Access = .protected, requirements: Requirements = Requirements(), forbiddenStatus: Int = 403,
        onUnauthenticated: UnauthenticatedResponse = .auto, upstream: UpstreamTarget? = nil, csrf: Bool = true,
        conditions: [RequestCondition] = []
    ) {
        self.name = name
        self.patterns = patterns
        self.methods = methods
        self.hosts = hosts
        self.access = access
        self.requirements = requirements
        self.forbiddenStatus = forbiddenStatus
        self.onUnauthenticated = onUnauthenticated
        self.upstream = upstream
        self.csrf = csrf
        self.conditions = conditions
    }

    public static func == (lhs: RouteRule, rhs: RouteRule) -> Bool {
        lhs === rhs
            || (lhs.name == rhs.name && lhs.patterns == rhs.patterns && lhs.methods == rhs.methods && lhs.hosts == rhs.hosts
                && lhs.access == rhs.access && lhs.requirements == rhs.requirements && lhs.forbiddenStatus == rhs.forbiddenStatus
                && lhs.onUnauthenticated == rhs.onUnauthenticated && lhs.upstream == rhs.upstream && lhs.csrf == rhs.csrf && lhs.conditions == rhs.conditions)
    }

    /// Whether the rule applies: method and host first, then the patterns on the decoded path (the first
    /// pattern that matches decides, as `createRouteMatcher`'s `some`). A pattern that fails to match
    /// (`MatchOutcome.failed`) makes the whole answer a failure unless an earlier pattern matched.
    public func outcome(_ request: CanonicalRequest, decodedPath: UnsafeBufferPointer<UInt8>) -> MatchOutcome {
        if !methods.isEmpty && !MethodName.matches(request.method, anyOf: methods) { return .noMatch }
        if !hosts.isEmpty {
            guard let host = request.host, hosts.contains(where: { $0.matches(host) }) else { return .noMatch }
        }
        for condition in conditions where !condition.holds(for: request) { return .noMatch }
        for pattern in patterns {
            let outcome = pattern.outcome(decoded: decodedPath)
            if outcome != .noMatch { return outcome }
        }
        return .noMatch
    }
}

/// The ordered rule list; the first rule that matches wins, and unmatched requests get `fallback`.
public struct RouteTable: Sendable, Equatable {
    public let rules: [RouteRule]
    /// Applies when no rule matches (`default:` in the config); its name is `fallbackName`.
    public let fallback: RouteRule
    /// The fallback's name, reserved: no route of the config may be called so (settings are keyed by name).
    public static let fallbackName = "default"

    public init(rules: [RouteRule], fallback: RouteRule) {
        self.rules = rules
        self.fallback = fallback
    }

    /// The matching rule, and whether it came from the rule list (false: the fallback).
    ///
    /// Fails closed: when a pattern cannot be evaluated (a PCRE2 match or memory limit, which only a custom
    /// regex group on a hostile path can reach), the request is refused with 400 rather than treated as "no
    /// match", which would let it fall through to a later, possibly public, rule or the default.
    public func route(for request: CanonicalRequest) throws(RequestRejection) -> (rule: RouteRule, matched: Bool) {
        let result: Result<(rule: RouteRule, matched: Bool), RequestRejection> = DecodedPath.with(request.path) { bytes in
            guard let bytes else { return .failure(RequestRejection("path could not be decoded for route matching")) }
            for rule in rules {
                switch rule.outcome(request, decodedPath: bytes) {
                case .match: return .success((rule, true))
                case .noMatch: continue
                case .failed(let reason):
                    return .failure(RequestRejection("path could not be matched against route '\(rule.name)' (\(reason))"))
                }
            }
            return .success((fallback, false))
        }
        return try result.get()
    }
}
