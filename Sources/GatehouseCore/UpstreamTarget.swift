/// Where a proxied request goes: an `http://` or `https://` origin.
public struct UpstreamTarget: Sendable, Hashable, CustomStringConvertible {
    public let host: String
    public let port: Int
    /// Connect with TLS (`https://`), verifying the certificate for `host`.
    public let tls: Bool

    /// Parses `http(s)://host[:port][/]`; a path, query, userinfo or other scheme is refused.
    public init?(url: String) {
        let tls: Bool
        if url.hasPrefix("http://") { tls = false } else if url.hasPrefix("https://") { tls = true } else { return nil }
        var rest = Substring(url.dropFirst(tls ? "https://".count : "http://".count))
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.isEmpty, !rest.contains("/"), !rest.contains("@"), !rest.contains("?"),
            let normalized = try? CanonicalRequest.normalizeHost(String(rest))
        else { return nil }
        let defaultPort = tls ? 443 : 80
        self.tls = tls
        if normalized.hasPrefix("[") {
            let close = normalized.firstIndex(of: "]")!
            host = String(normalized[normalized.index(after: normalized.startIndex)..<close])
            let after = normalized[normalized.index(after: close)...]
            port = after.hasPrefix(":") ? Int(after.dropFirst()) ?? defaultPort : defaultPort
        } else if let colon = normalized.lastIndex(of: ":") {
            host = String(normalized[..<colon])
            port = Int(normalized[normalized.index(after: colon)...]) ?? defaultPort
        } else {
            host = normalized
            port = defaultPort
        }
    }

    /// The value for a `Host` header naming this upstream.
    public var authority: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return port == (tls ? 443 : 80) ? h : "\(h):\(port)"
    }

    public var description: String { (tls ? "https://" : "http://") + authority }
}
