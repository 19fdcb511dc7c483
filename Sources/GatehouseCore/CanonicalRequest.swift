/// A request as it arrived: method, request-target and header fields, before any interpretation.
public struct RawRequest: Sendable {
    public var method: String
    public var target: String
    public var headers: HeaderList
    /// The scheme the client used to reach Gatehouse ("http" until TLS lands).
    public var scheme: String
    /// True when the peer is a configured trusted proxy, whose `X-Forwarded-*` values may be used.
    public var fromTrustedProxy: Bool
    /// The connection's peer address ("" when unknown, e.g. in unit tests).
    public var peer: String
    /// `trusted_proxies`, to find the client in `X-Forwarded-For` behind several of them.
    public var trustedProxies: [CIDR]
    /// The field names and values were read by a parser that refuses what `CanonicalRequest` refuses in them
    /// (GatehouseHTTP1: names are tokens, values have no control character), so they are not checked twice.
    /// Only the data plane sets it (RequestPolicy.prepare); `ParserFieldRulesTests` holds the parser to it.
    public var fieldsChecked = false

    public init(method: String, target: String, headers: HeaderList, scheme: String = "http", fromTrustedProxy: Bool = false, peer: String = "",
                trustedProxies: [CIDR] = []) {
        self.method = method
        self.target = target
        self.headers = headers
        self.scheme = scheme
        self.fromTrustedProxy = fromTrustedProxy
        self.peer = peer
        self.trustedProxies = trustedProxies
    }
}

/// Knobs of canonicalisation that the operator may set.
public struct CanonicalizationOptions: Sendable {
    public var allowPathSemicolons: Bool
    /// Accept `%3B` in paths (off: 400), for upstreams that never read path parameters.
    public var allowPathEncodedSemicolons: Bool
    /// Accept `%25` in paths (off: 400), for upstreams that decode exactly once.
    public var allowPathEncodedPercent: Bool

    public init(allowPathSemicolons: Bool = false, allowPathEncodedSemicolons: Bool = false, allowPathEncodedPercent: Bool = false) {
        self.allowPathSemicolons = allowPathSemicolons
        self.allowPathEncodedSemicolons = allowPathEncodedSemicolons
        self.allowPathEncodedPercent = allowPathEncodedPercent
    }
}

/// The single interpretation of a request used for matching, deciding and proxying.
/// A class, not a struct: immutable, and passed and copied through the whole decision (copies of the struct cost
/// ~15 retains each, perf).
public final class CanonicalRequest: Sendable {
    public let method: String
    public let path: CanonicalPath
    /// The raw query after `?` (validated, never used for matching), or nil when there was no `?`.
    public let query: String?
    /// Lower-case host without a trailing dot, with the port when one was given; nil when the client sent none.
    public let host: String?
    public let scheme: String
    public let headers: HeaderList
    public let cookies: CookieJar
    /// Who is asking, for per-client limits: the peer, or behind trusted proxies the first address in
    /// `X-Forwarded-For`, from the right, that is not a trusted proxy (see `ClientAddress`).
    /// Worked out when asked: only the opaque-token and handshake-nonce limits read it, and parsing and
    /// normalising the peer on every request cost ~1 µs (perf, data plane).
    public var clientAddress: String {
        fromTrustedProxy
            ? ClientAddress.key(peer: peer, forwardedFor: headers.values("x-forwarded-for"), trustedProxies: trustedProxies)
            : ClientAddress.normalized(peer)
    }
    private let peer: String
    private let fromTrustedProxy: Bool
    private let trustedProxies: [CIDR]

    /// The path plus `?query`, as it is forwarded upstream.
    public var pathAndQuery: String {
        if let query { return path.value + "?" + query }
        return path.value
    }

    /// The URL the client asked for, rebuilt from canonical parts (used for `redirect_url`).
    public var originalURL: String? {
        guard let host else { return nil }
        return scheme + "://" + host + pathAndQuery
    }

    // Borrowed: only its fields are read, and an owned parameter made the caller copy the whole request.
    public init(_ raw: borrowing RawRequest, options: CanonicalizationOptions = CanonicalizationOptions()) throws(RequestRejection) {
        guard HTTPSyntax.isToken(raw.method) else { throw RequestRejection("invalid method") }
        // Without a lower-case letter the method is its own upper-case spelling, so it cannot differ from a
        // standard one: the upper-casing (an array and a set lookup per request) is only for methods with one.
        // (On the bytes in place: the UTF-8 view's generic contains cost ~140 instructions for `GET`.)
        if withUTF8Bytes(raw.method, { $0.contains { $0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z") } }),
            let standard = MethodName.standardSpelling(of: raw.method), standard != raw.method
        {
            // Methods are case-sensitive (RFC 9110 §9.1), yet some upstreams treat `get` as GET: refuse rather
            // than let a rule for one spelling be skipped by the other.
            throw RequestRejection("method names are case-sensitive: '\(raw.method.prefix(16))' is not \(standard)")
        }
        guard raw.method != "CONNECT" else { throw RequestRejection("CONNECT is not supported") }
        self.method = raw.method

        // By index, not `for field in raw.headers`: each element taken out was a copy of its two strings
        // (retained and released), and the walk ran even when `fieldsChecked` skipped every check in it.
        if !raw.fieldsChecked {
            let fields = raw.headers.fields
            for i in fields.indices {
                guard HTTPSyntax.isToken(fields[i].name) else { throw RequestRejection("invalid header name") }
                guard HTTPSyntax.isValidFieldValue(fields[i].value) else {
                    throw RequestRejection("control character in header \(fields[i].name.asciiLowercased)")
                }
            }
        }
        let (hosts, authorizations) = CanonicalRequest.hostAndAuthorizationCounts(raw.headers.fields)
        guard hosts <= 1 else { throw RequestRejection("more than one Host header") }
        guard authorizations <= 1 else {
            throw RequestRejection("more than one Authorization header")
        }

        let target = raw.target
        guard !target.isEmpty else { throw RequestRejection("empty request-target") }
        if target.utf8.count > CanonicalPath.maxLength {
            throw RequestRejection("request-target too long", status: 414)
        }
        var scheme = raw.scheme
        var authority: String? = nil
        let pathAndQuery: Substring
        if ASCIISearch.startsWith(UInt8(ascii: "/"), target) {
            pathAndQuery = target[...]
        } else if let parsed = CanonicalRequest.splitAbsoluteForm(target) {
            scheme = parsed.scheme
            authority = parsed.authority
            pathAndQuery = parsed.rest.isEmpty ? "/" : parsed.rest
        } else {
            throw RequestRejection("request-target must be origin-form (/path) or absolute-form (http://host/path)")
        }

        let pathPart: Substring
        if let q = ASCIISearch.firstIndex(of: UInt8(ascii: "?"), in: pathAndQuery) {
            pathPart = pathAndQuery[..<q]
            let query = pathAndQuery[pathAndQuery.index(after: q)...]
            for b in query.utf8 {
                if b == UInt8(ascii: "#") { throw RequestRejection("fragment (#) in request-target") }
                if b < 0x21 || b >= 0x7F { throw RequestRejection("control character, space or non-ASCII byte in query") }
            }
            self.query = String(query)
        } else {
            pathPart = pathAndQuery
            self.query = nil
        }
        self.path = try CanonicalPath(
            parsing: pathPart, allowSemicolons: options.allowPathSemicolons,
            allowEncodedSemicolons: options.allowPathEncodedSemicolons, allowEncodedPercent: options.allowPathEncodedPercent)

        var host: String? = nil
        if let hostField = raw.headers.first("host") {
            host = try CanonicalRequest.normalizeHost(hostField)
        }
        if let authority {
            let fromTarget = try CanonicalRequest.normalizeHost(authority)
            if let host, host != fromTarget {
                throw RequestRejection("Host header does not match the absolute-form request-target")
            }
            host = fromTarget
        }
        if raw.fromTrustedProxy {
            if let forwardedHost = raw.headers.first("x-forwarded-host") {
                host = try CanonicalRequest.normalizeHost(CanonicalRequest.firstListElement(forwardedHost))
            }
            if let forwardedProto = raw.headers.first("x-forwarded-proto") {
                let proto = CanonicalRequest.firstListElement(forwardedProto).asciiLowercased
                guard proto == "http" || proto == "https" else { throw RequestRejection("invalid X-Forwarded-Proto") }
                scheme = proto
            }
        }
        self.host = host.map { CanonicalRequest.dropDefaultPort($0, scheme: scheme) }
        self.scheme = scheme
        self.headers = raw.headers
        self.cookies = CookieJar(headerValues: raw.headers.values("cookie"))
        self.peer = raw.peer
        self.fromTrustedProxy = raw.fromTrustedProxy
        self.trustedProxies = raw.trustedProxies
    }

    /// Both counted in one walk (names of other lengths cannot match), over the list borrowed (walked through a
    /// local copy, the array was retained and released; scripts/refcounts).
    static func hostAndAuthorizationCounts(_ fields: borrowing [(name: String, value: String)]) -> (hosts: Int, authorizations: Int) {
        var hosts = 0, authorizations = 0
        for i in fields.indices {
            switch fields[i].name.utf8.count {
            case 4 where asciiCaseInsensitiveEquals(fields[i].name, "host"): hosts += 1
            case 13 where asciiCaseInsensitiveEquals(fields[i].name, "authorization"): authorizations += 1
            default: break
            }
        }
        return (hosts, authorizations)
    }

    static func firstListElement(_ value: String) -> String {
        let first = value.split(separator: ",", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return first.trimmingASCIIWhitespace()
    }

    /// The path and query of a request-target as routing reads them: origin-form as it is, absolute-form
    /// (`http://host/path?q`) without scheme and authority; nil for any other form (which routing refuses).
    public static func pathAndQuery(ofTarget target: String) -> Substring? {
        if ASCIISearch.startsWith(UInt8(ascii: "/"), target) { return target[...] }
        guard let parsed = splitAbsoluteForm(target) else { return nil }
        return parsed.rest.isEmpty ? "/" : parsed.rest
    }

    private static func splitAbsoluteForm(_ target: String) -> (scheme: String, authority: String, rest: Substring)? {
        guard let colon = target.firstIndex(of: ":") else { return nil }
        let scheme = String(target[..<colon]).asciiLowercased
        guard scheme == "http" || scheme == "https" else { return nil }
        let afterColon = target[target.index(after: colon)...]
        guard afterColon.hasPrefix("//") else { return nil }  // `http:host/admin` is not absolute-form
        let authorityStart = afterColon.index(afterColon.startIndex, offsetBy: 2)
        let remainder = afterColon[authorityStart...]
        let end = remainder.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? remainder.endIndex
        let authority = String(remainder[..<end])
        var rest = remainder[end...]
        if rest.first == "?" { rest = ("/" + rest)[...] }
        return (scheme, authority, rest)
    }

    /// Validates and normalises a host[:port]: lower case, no trailing dot, no userinfo.
    public static func normalizeHost(_ value: String) throws(RequestRejection) -> String {
        if isAlreadyNormalHost(value) { return value }
        return try normalizeHostFully(value)
    }

    static func normalizeHostFully(_ value: String) throws(RequestRejection) -> String {
        var text = value.asciiLowercased
        guard !text.isEmpty else { throw RequestRejection("empty Host") }
        var port: Substring? = nil
        var hostPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw RequestRejection("invalid Host") }
            hostPart = text[...close]
            let after = text[text.index(after: close)...]
            if !after.isEmpty {
                guard after.first == ":" else { throw RequestRejection("invalid Host") }
                port = after.dropFirst()
            }
            let inner = hostPart.dropFirst().dropLast()
            guard !inner.isEmpty, inner.utf8.allSatisfy({ hexValue($0) != nil || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") })
            else { throw RequestRejection("invalid Host") }
        } else {
            if let colon = text.firstIndex(of: ":") {
                hostPart = text[..<colon]
                port = text[text.index(after: colon)...]
            } else {
                hostPart = text[...]
            }
            if hostPart.hasSuffix(".") { hostPart = hostPart.dropLast() }
            // One trailing dot is the root label; a second one (`a.example.com..`) is an empty label, refused
            // like `..` inside the name, or it would survive as `a.example.com.` and miss every host rule.
            guard !hostPart.isEmpty, !hostPart.hasPrefix("."), !hostPart.hasSuffix("."), !hostPart.contains(".."),
                hostPart.utf8.allSatisfy({ b in
                    (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9"))
                        || b == UInt8(ascii: "-") || b == UInt8(ascii: ".") || b == UInt8(ascii: "_")
                })
            else { throw RequestRejection("invalid Host") }
        }
        if let port {
            guard !port.isEmpty, port.count <= 5, port.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                let number = Int(port), number > 0, number <= 65535
            else { throw RequestRejection("invalid port in Host") }
            text = String(hostPart) + ":" + String(number)
        } else {
            text = String(hostPart)
        }
        return text
    }

    /// The common case, checked without allocating: lower-case name characters, no empty label, no trailing
    /// dot, and an optional port of 1–5 digits without a leading zero within 1...65535.
    static func isAlreadyNormalHost(_ value: String) -> Bool {
        // Over the bytes in place: iterating a small string's UTF-8 view unpacked it byte by byte (~45
        // instructions per byte, callgrind).
        withUTF8Bytes(value, isAlreadyNormalHost)
    }

    static func isAlreadyNormalHost(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var previous: UInt8 = UInt8(ascii: ".")
        var portDigits = 0
        var port = 0
        var inPort = false
        for b in bytes {
            if inPort {
                guard b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9"), !(portDigits == 0 && b == UInt8(ascii: "0")), portDigits < 5 else { return false }
                port = port * 10 + Int(b - UInt8(ascii: "0"))
                portDigits += 1
                continue
            }
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
                break
            case UInt8(ascii: "."):
                if previous == UInt8(ascii: ".") { return false }
            case UInt8(ascii: ":"):
                if previous == UInt8(ascii: ".") { return false }
                inPort = true
            default:
                return false
            }
            previous = b
        }
        if inPort { return portDigits > 0 && port <= 65535 }
        return previous != UInt8(ascii: ".")
    }

    private static func dropDefaultPort(_ host: String, scheme: String) -> String {
        // The byte suffix tested in place first (the UTF-8 view's suffix and elementsEqual cost ~500
        // instructions, callgrind); the character suffix only when it is there.
        let portLength: Int
        switch scheme {
        case "http": portLength = 3
        case "https": portLength = 4
        default: return host
        }
        let isDefault = withUTF8Bytes(host) { bytes -> Bool in
            let n = bytes.count
            guard n >= portLength else { return false }
            return portLength == 3
                ? bytes[n - 3] == UInt8(ascii: ":") && bytes[n - 2] == UInt8(ascii: "8") && bytes[n - 1] == UInt8(ascii: "0")
                : bytes[n - 4] == UInt8(ascii: ":") && bytes[n - 3] == UInt8(ascii: "4") && bytes[n - 2] == UInt8(ascii: "4")
                    && bytes[n - 1] == UInt8(ascii: "3")
        }
        guard isDefault, host.hasSuffix(portLength == 3 ? ":80" : ":443") else { return host }
        return String(host.dropLast(portLength))
    }
}

extension StringProtocol {
    /// Trims spaces and tabs (HTTP optional whitespace) from both ends, on UTF-8 bytes (no grapheme work).
    public func trimmingASCIIWhitespace() -> String {
        let whole = Substring(self)
        let bytes = whole.utf8
        var start = bytes.startIndex
        var end = bytes.endIndex
        while start < end, bytes[start] == 0x20 || bytes[start] == 0x09 { start = bytes.index(after: start) }
        while start < end {
            let last = bytes.index(before: end)
            guard bytes[last] == 0x20 || bytes[last] == 0x09 else { break }
            end = last
        }
        if start == bytes.startIndex && end == bytes.endIndex { return String(whole) }
        return String(whole[start..<end])
    }
}
