/// Conditions on a request beyond method, host and path (`when:` on a rule). A rule whose conditions do not
/// all hold does not match, and the request goes on to the next rule: put the stricter rule first.
public enum RequestCondition: Sendable, Equatable, CustomStringConvertible {
    /// `headers: { <name>: … }`; `name` is lower case.
    case header(name: String, HeaderCondition)
    /// `server_action: true|false`: whether Next.js would run a server action for this request.
    case serverAction(Bool)

    public func holds(for request: CanonicalRequest) -> Bool {
        switch self {
        case .header(let name, let condition): return condition.holds(request.headers.values(name))
        case .serverAction(let wanted): return NextServerAction.isServerAction(request) == wanted
        }
    }

    public var description: String {
        switch self {
        case .header(let name, let condition): return "header \(name) \(condition)"
        case .serverAction(let wanted): return wanted ? "a Next.js server action" : "not a Next.js server action"
        }
    }
}

public enum HeaderCondition: Sendable, Equatable, CustomStringConvertible {
    /// At least one field of that name, whatever its value (an empty value counts).
    case present
    case absent
    /// Some field's value is exactly one of these (case-sensitive).
    case oneOf([String])
    /// Some field's value contains this text, ASCII case-insensitively (media types in `Accept`).
    case contains(String)

    func holds(_ values: [String]) -> Bool {
        switch self {
        case .present: return !values.isEmpty
        case .absent: return values.isEmpty
        case .oneOf(let options): return values.contains { options.contains($0) }
        case .contains(let text):
            let lowered = text.asciiLowercased
            return values.contains { $0.asciiLowercased.contains(lowered) }
        }
    }

    public var description: String {
        switch self {
        case .present: return "present"
        case .absent: return "absent"
        case .oneOf(let options): return options.count == 1 ? "equals '\(options[0])'" : "one of \(options.map { "'\($0)'" }.joined(separator: ", "))"
        case .contains(let text): return "contains '\(text)'"
        }
    }
}

/// How Next.js and Clerk recognise server actions.
public enum NextServerAction {
    /// Next.js runs an action for a POST with a `Next-Action` header (fetch actions) and for a POST form
    /// (`multipart/form-data` or `application/x-www-form-urlencoded`: progressively enhanced forms carry the
    /// action id in the body, where no gateway rule can see it). Wider than Next's own test on purpose: a rule
    /// meant for actions must not be stepped around by leaving a header out.
    public static func isServerAction(_ request: CanonicalRequest) -> Bool {
        guard request.method == "POST" else { return false }
        if !request.headers.values("next-action").isEmpty { return true }
        return request.headers.values("content-type").contains { value in
            let type = value.asciiLowercased.trimmingASCIIWhitespace()
            return type.hasPrefix("multipart/form-data") || type.hasPrefix("application/x-www-form-urlencoded")
        }
    }

    /// Clerk's `isServerActionRequest` signals, any method, without its `next-url` precondition (fail closed
    /// toward 401): a `Next-Action` header, an `Accept` of `text/x-component` (the RSC action response), or
    /// a multipart body with `Next-Url`. Such a caller is a script, not a page: it gets 401, never a redirect.
    public static func wantsClerkActionResponse(_ request: CanonicalRequest) -> Bool {
        if !request.headers.values("next-action").isEmpty { return true }
        if request.headers.values("accept").contains(where: { $0.asciiLowercased.contains("text/x-component") }) { return true }
        return !request.headers.values("next-url").isEmpty
            && request.headers.values("content-type").contains { $0.asciiLowercased.contains("multipart/form-data") }
    }
}
