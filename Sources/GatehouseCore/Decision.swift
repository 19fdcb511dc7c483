/// What happens to a request: proxied with identity headers, denied with a status, or redirected.
public struct Decision: Sendable, Equatable {
    public enum Action: String, Sendable {
        case proxy, deny, redirect
    }

    public var action: Action
    public var status: Int
    /// Redirect target.
    public var location: String?
    /// Headers of Gatehouse's own response (deny / redirect).
    public var responseHeaders: HeaderList
    /// Body of Gatehouse's own response (JSON for denials).
    public var body: String?
    /// Headers sent upstream (proxy only), as their parts.
    public var upstream: UpstreamFields?
    /// Headers sent upstream (proxy only), as one list.
    public var upstreamHeaders: HeaderList? {
        get { upstream?.headers }
        set { upstream = newValue.map(UpstreamFields.init) }
    }
    /// Why, in one sentence, for `explain` and forward-auth denials.
    public var explanation: String { why.text }
    /// The same, as its parts: the common proxied cases build the sentence only when it is read (building it
    /// for every request cost ~0.2 µs, perf).
    public var why: Explanation
    /// Where a proxied request goes instead of the route's upstream (the Frontend API proxy).
    public var upstreamOverride: UpstreamOverride?

    // The memberwise initializer (action, status, location, responseHeaders, body, upstream, why,
    // upstreamOverride) is the compiler's: a hand-written one with the same parameters assigned each optional
    // field over its implicit nil and then copied the whole 224-byte decision out and released the original
    // (~700 instructions for every decision, callgrind). The public one taking an explanation is in an extension
    // below so that the memberwise one is still synthesized.

    public static func proxy(upstreamHeaders: HeaderList, explanation: String) -> Decision {
        proxy(upstream: UpstreamFields(upstreamHeaders), explanation: explanation)
    }

    public static func proxy(upstream: consuming UpstreamFields, explanation: String) -> Decision {
        proxy(upstream: upstream, why: .text(explanation))
    }

    public static func proxy(upstream: consuming UpstreamFields, why: consuming Explanation) -> Decision {
        Decision(action: .proxy, status: 200, location: nil, responseHeaders: HeaderList(), body: nil, upstream: upstream, why: why,
                 upstreamOverride: nil)
    }

    /// Adds headers to whatever response the client gets (for a proxied request: to the upstream's response).
    /// A `Cache-Control` among them replaces the response's own, so a handshake redirect carries one, not two.
    /// Consuming: the decision is moved through, not copied (a copy retains each of its strings and lists).
    public consuming func adding(responseHeaders extra: HeaderList) -> Decision {
        guard !extra.isEmpty else { return self }
        var copy = self
        if extra.contains("cache-control") {
            copy.responseHeaders.removeAll { asciiCaseInsensitiveEquals($0, "cache-control") }
        }
        for field in extra { copy.responseHeaders.append(field.name, field.value) }
        return copy
    }

    public static func deny(status: Int, error: String, message: String, extraHeaders: [(String, String)] = [], explanation: String) -> Decision {
        var headers = HeaderList([("Content-Type", "application/json"), ("Cache-Control", "no-store")])
        for (name, value) in extraHeaders { headers.append(name, value) }
        let body = JSONValue.object(JSONObject([("error", .string(error)), ("message", .string(message))])).serialized()
        return Decision(action: .deny, status: status, location: nil, responseHeaders: headers, body: body,
                        upstream: nil, explanation: explanation)
    }

    public static func redirect(to location: String, extraHeaders: [(String, String)] = [], explanation: String) -> Decision {
        var headers = HeaderList([("Location", location), ("Cache-Control", "no-store")])
        for (name, value) in extraHeaders { headers.append(name, value) }
        return Decision(action: .redirect, status: 307, location: location, responseHeaders: headers, body: nil,
                        upstream: nil, explanation: explanation)
    }

    /// A request that could not be understood unambiguously.
    public static func reject(_ rejection: RequestRejection) -> Decision {
        deny(status: rejection.status, error: rejection.status == 414 ? "uri_too_long" : "bad_request",
             message: rejection.message, explanation: "request refused before routing: \(rejection.message)")
    }
}

/// Why a request was decided so. Equal when the sentences are.
public enum Explanation: Sendable, Equatable {
    case text(String)
    /// A public route, with the caller's user id when signed in.
    case publicRoute(route: String, userId: String?)
    /// A signed-in caller met the route's requirements; `ownership`: the ownership check's summary, if any.
    case requirementsMet(userId: String, route: String, ownership: String?)

    public var text: String {
        switch self {
        case .text(let text): return text
        case .publicRoute(let route, let userId): return "public route '\(route)'" + (userId.map { ", signed in as \($0)" } ?? "")
        case .requirementsMet(let userId, let route, let ownership): return "signed in as \(userId); route '\(route)' requirements met" + (ownership ?? "")
        }
    }

    public static func == (lhs: Explanation, rhs: Explanation) -> Bool { lhs.text == rhs.text }
}

/// A proxied request sent somewhere other than its route's upstream, with its own request-target, and
/// `Location` headers on the way back rewritten from `locationPrefix` to `publicPrefix`.
public struct UpstreamOverride: Sendable, Equatable {
    public var target: UpstreamTarget
    public var requestTarget: String
    public var locationPrefix: String
    public var publicPrefix: String

    public init(target: UpstreamTarget, requestTarget: String, locationPrefix: String, publicPrefix: String) {
        self.target = target
        self.requestTarget = requestTarget
        self.locationPrefix = locationPrefix
        self.publicPrefix = publicPrefix
    }
}

/// URL building for redirects.
public enum URLEncoding {
    /// `application/x-www-form-urlencoded` as WHATWG `URLSearchParams` writes it: only `A-Za-z0-9*-._`
    /// literal, space as `+`, everything else `%XX` in upper case.
    public static func formEncode(_ value: String) -> String {
        var out = ""
        let hex = Array("0123456789ABCDEF")
        for b in value.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "*"), UInt8(ascii: "-"), UInt8(ascii: "."),
                UInt8(ascii: "_"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            case UInt8(ascii: " "):
                out += "+"
            default:
                out += "%"
                out.append(hex[Int(b >> 4)])
                out.append(hex[Int(b & 0xF)])
            }
        }
        return out
    }

    /// `base` with `name=value` appended to its query.
    public static func appendingQuery(_ base: String, name: String, value: String) -> String {
        let separator = base.contains("?") ? "&" : "?"
        return base + separator + formEncode(name) + "=" + formEncode(value)
    }
}

extension Decision {
    public init(action: Action, status: Int, location: String?, responseHeaders: HeaderList, body: String?, upstream: UpstreamFields?,
                explanation: String, upstreamOverride: UpstreamOverride? = nil) {
        self.init(action: action, status: status, location: location, responseHeaders: responseHeaders, body: body, upstream: upstream,
                  why: .text(explanation), upstreamOverride: upstreamOverride)
    }
}
