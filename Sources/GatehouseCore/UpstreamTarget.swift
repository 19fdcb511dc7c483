/// Where a proxied request goes: an `http://host:port` origin (TLS upstreams come later).
public struct UpstreamTarget: Sendable, Hashable, CustomStringConvertible {
    public let host: String
    public let port: Int

    /// Parses `http://host[:port][/]`; a path, query, userinfo or other scheme is refused.
    public init?(url: String) {
        guard url.hasPrefix("http://") else { return nil }
        var rest = Substring(url.dropFirst("http://".count))
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.isEmpty, !rest.contains("/"), !rest.contains("@"), !rest.contains("?"),
            let normalized = try? CanonicalRequest.normalizeHost(String(rest))
        else { return nil }
        if normalized.hasPrefix("[") {
            let close = normalized.firstIndex(of: "]")!
            host = String(normalized[normalized.index(after: normalized.startIndex)..<close])
            let after = normalized[normalized.index(after: close)...]
            port = after.hasPrefix(":") ? Int(after.dropFirst()) ?? 80 : 80
        } else if let colon = normalized.lastIndex(of: ":") {
            host = String(normalized[..<colon])
            port = Int(normalized[normalized.index(after: colon)...]) ?? 80
        } else {
            host = normalized
            port = 80
        }
    }

    /// The value for a `Host` header naming this upstream.
    public var authority: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return port == 80 ? h : "\(h):\(port)"
    }

    public var description: String { "http://" + authority }
}
