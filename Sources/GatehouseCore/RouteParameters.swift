import CPCRE2

/// An identity value a route parameter can be required to equal (`require: { params: { userId: user_id } }`).
public enum IdentityField: Sendable, Equatable, CustomStringConvertible {
    /// `sub`
    case userId
    /// `sid`
    case sessionId
    /// The active organization's id (`org_id` / `o.id`).
    case orgId
    /// The active organization's slug (`org_slug` / `o.slg`).
    case orgSlug
    /// A string claim by dotted path (`claims.metadata.tenant`).
    case claim([String])

    /// `user_id`, `session_id`, `org_id`, `org_slug` or `claims.<dotted path>`.
    public init?(configName: String) {
        switch configName {
        case "user_id": self = .userId
        case "session_id": self = .sessionId
        case "org_id": self = .orgId
        case "org_slug": self = .orgSlug
        default:
            guard configName.hasPrefix("claims.") else { return nil }
            let path = configName.dropFirst("claims.".count).split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard !path.contains(where: \.isEmpty) else { return nil }
            self = .claim(path)
        }
    }

    public var description: String {
        switch self {
        case .userId: return "user_id"
        case .sessionId: return "session_id"
        case .orgId: return "org_id"
        case .orgSlug: return "org_slug"
        case .claim(let path): return "claims." + path.joined(separator: ".")
        }
    }

    /// The value, or nil when the session has none (no active organization, claim absent or not a string).
    /// Organization fields exist only with an active organization.
    public func value(in auth: SessionAuth) -> String? {
        switch self {
        case .userId: return auth.userId
        case .sessionId: return auth.sessionId
        case .orgId: return auth.orgId
        case .orgSlug: return auth.orgId == nil ? nil : auth.orgSlug
        case .claim(let path): return JSONValue.object(auth.claims).value(atPath: path)?.stringValue
        }
    }
}

/// `params.<parameter>` must equal an identity value.
public struct ParameterRequirement: Sendable, Equatable {
    public let parameter: String
    public let field: IdentityField

    public init(parameter: String, field: IdentityField) {
        self.parameter = parameter
        self.field = field
    }
}

/// One comparison as `explain` shows it.
public struct ParameterComparison: Sendable, Equatable {
    public let parameter: String
    /// What route matching captured (nil: the group did not take part in the match).
    public let value: String?
    public let field: IdentityField
    public let expected: String?
    /// Exact equality, code unit for code unit; a missing or empty side never holds.
    public var holds: Bool {
        guard let value, let expected, !value.isEmpty else { return false }
        return value == expected
    }
}

/// The result of checking a rule's ownership requirements against one request.
public enum OwnershipOutcome: Sendable, Equatable {
    /// `pattern` is the source of the pattern whose match gave the values.
    case compared(pattern: String, [ParameterComparison])
    /// The parameters could not be read (no pattern matched again, a PCRE2 limit, a parameter that is not
    /// well-formed UTF-16): the request is refused.
    case failed(String)

    /// `; params.userId 'user_1' = user_id` for explanations of allowed requests.
    public var summary: String {
        guard case .compared(_, let comparisons) = self else { return "" }
        return comparisons.map { "; params.\($0.parameter) '\(($0.value ?? "").prefix(100))' = \($0.field)" }.joined()
    }

    /// Nil when every comparison holds; else a sentence naming the first that failed.
    public var firstFailure: String? {
        switch self {
        case .failed(let reason): return "route parameters could not be read (\(reason))"
        case .compared(let pattern, let comparisons):
            guard let bad = comparisons.first(where: { !$0.holds }) else { return nil }
            let shown = bad.value.map { "'\($0.prefix(100))'" } ?? "absent"
            let expected = bad.expected.map { "'\($0.prefix(100))'" } ?? "absent"
            return "params.\(bad.parameter) (\(shown), from \(pattern)) must equal \(bad.field) (\(expected))"
        }
    }
}

/// Ownership rules: route parameters, read from the pattern that matched, must equal identity values.
///
/// The values are exactly what route matching sees: the same regular expression (path-to-regexp's, with
/// JavaScript's `i` flag) run by PCRE2 on the same UTF-16 form of the `decodeURI`'d path, capture groups
/// numbered as path-to-regexp numbers its keys. Matching is case-insensitive, the comparison is not: a
/// case variant (`/users/USER_ABC`) or a value still holding an escape `decodeURI` keeps (`%2F`, `%3A`…)
/// is compared as it stands and denied, so an app that folds case or decodes again can never be handed
/// another user's id that Gatehouse took for the caller's own.
public final class OwnershipRequirements: Sendable, Equatable {
    public let requirements: [ParameterRequirement]
    let patterns: [RoutePattern]
    /// One capturing regex per pattern, in the same order.
    private let regexes: [PCRE2Regex]
    /// For each pattern, each requirement's capture group number.
    private let groups: [[Int]]

    public struct ConfigProblem: Error, Equatable, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    public init(requirements: [ParameterRequirement], patterns: [RoutePattern]) throws(ConfigProblem) {
        guard !patterns.isEmpty else { throw ConfigProblem(message: "route parameters need a rule with 'match' patterns") }
        var regexes: [PCRE2Regex] = []
        var groups: [[Int]] = []
        for pattern in patterns {
            for requirement in requirements where !pattern.parameterNames.contains(requirement.parameter) {
                let known = pattern.parameterNames.isEmpty ? "it has none" : "it has " + pattern.parameterNames.map { "'\($0)'" }.joined(separator: ", ")
                throw ConfigProblem(message: "parameter '\(requirement.parameter)' is not in pattern '\(pattern.source)' (\(known)); every pattern of the rule must define it")
            }
            let regex: PCRE2Regex
            do { regex = try PCRE2Regex(try JSRegex.translate(Array(pattern.javaScriptRegex.utf16))) } catch {
                throw ConfigProblem(message: "pattern '\(pattern.source)' cannot be compiled for parameters")
            }
            // A named group inside a custom pattern (`:id((?<x>a)b)`) shifts the numbering: refuse, rather
            // than compare the wrong group.
            guard regex.captureCount == pattern.parameterNames.count else {
                throw ConfigProblem(message: "pattern '\(pattern.source)' has capture groups inside a parameter, so its parameters cannot be located; use (?:…)")
            }
            regexes.append(regex)
            groups.append(requirements.map { requirement in pattern.parameterNames.firstIndex(of: requirement.parameter)! + 1 })
        }
        self.requirements = requirements
        self.patterns = patterns
        self.regexes = regexes
        self.groups = groups
    }

    public static func == (lhs: OwnershipRequirements, rhs: OwnershipRequirements) -> Bool {
        lhs === rhs || (lhs.requirements == rhs.requirements && lhs.patterns == rhs.patterns)
    }

    /// Reads the parameters from the first pattern that matches `path` (as the route table did) and
    /// compares them with `auth`.
    public func check(path: CanonicalPath, auth: SessionAuth?) -> OwnershipOutcome {
        DecodedPath.with(path) { bytes in
            guard let bytes else { return .failed("path could not be decoded") }
            var units = [UInt16](repeating: 0, count: bytes.count)
            let count: Int? = units.withUnsafeMutableBufferPointer { PCRE2Regex.utf16(bytes, into: $0) }
            guard let count else { return .failed("path is not valid UTF-8") }
            units.removeSubrange(count...)
            for (index, regex) in regexes.enumerated() {
                switch regex.captures(units) {
                case .noMatch:
                    continue
                case .failed(let reason):
                    return .failed(reason)
                case .matched(let ranges):
                    var comparisons: [ParameterComparison] = []
                    for (requirement, group) in zip(requirements, groups[index]) {
                        var value: String? = nil
                        if group < ranges.count, let range = ranges[group] {
                            guard let text = String(validating: units[range], as: UTF16.self) else {
                                return .failed("parameter '\(requirement.parameter)' splits a character")
                            }
                            value = text
                        }
                        comparisons.append(ParameterComparison(parameter: requirement.parameter, value: value, field: requirement.field,
                                                               expected: auth.flatMap(requirement.field.value(in:))))
                    }
                    return .compared(pattern: patterns[index].source, comparisons)
                }
            }
            return .failed("no pattern of the rule matched the path again")
        }
    }
}

enum CaptureOutcome {
    case matched([Range<Int>?])
    case noMatch
    case failed(String)
}

extension PCRE2Regex {
    var captureCount: Int {
        var count: UInt32 = 0
        guard pcre2_pattern_info_16(code, UInt32(PCRE2_INFO_CAPTURECOUNT), &count) == 0 else { return -1 }
        return Int(count)
    }

    /// A match that records its groups (ranges of UTF-16 units; nil for a group that did not take part).
    /// Allocates its own match data: only rules with ownership requirements call it.
    func captures(_ units: [UInt16]) -> CaptureOutcome {
        guard let data = pcre2_match_data_create_from_pattern_16(code, nil) else { return .failed("out of memory") }
        defer { pcre2_match_data_free_16(data) }
        var empty: UInt16 = 0
        let rc: Int32 = units.withUnsafeBufferPointer { buffer in
            if let base = buffer.baseAddress { return pcre2_match_16(code, base, buffer.count, 0, 0, data, context) }
            return pcre2_match_16(code, &empty, 0, 0, 0, data, context)
        }
        if rc == PCRE2_ERROR_NOMATCH { return .noMatch }
        guard rc >= 0 else { return .failed(PCRE2Regex.message(for: rc)) }
        let pairs = Int(pcre2_get_ovector_count_16(data))
        guard let vector = pcre2_get_ovector_pointer_16(data) else { return .failed("no match vector") }
        var ranges: [Range<Int>?] = []
        for i in 0..<pairs {
            // PCRE2_UNSET is ~0 as a size_t, which Swift imports as Int (-1): compare as unsigned, and accept
            // only a range inside the subject (a group that took no part is nil, which denies).
            let start = UInt(bitPattern: Int(vector[2 * i])), end = UInt(bitPattern: Int(vector[2 * i + 1]))
            if start > end || end > UInt(units.count) { ranges.append(nil) }
            else { ranges.append(Int(start)..<Int(end)) }
        }
        return .matched(ranges)
    }
}
