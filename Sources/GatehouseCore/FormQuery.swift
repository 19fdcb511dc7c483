/// Query strings as WHATWG `URLSearchParams` reads and writes them, which is what Clerk's backend uses to
/// read `__clerk_*` parameters and to rebuild URLs (so the bytes of a `redirect_url` match Clerk's).
public enum FormQuery {
    public typealias Pairs = [(name: String, value: String)]

    /// `a=b&c` → [("a","b"), ("c","")]: empty pieces skipped, `+` is a space, `%XX` decoded (a malformed escape
    /// is kept literally), invalid UTF-8 becomes U+FFFD.
    public static func parse(_ query: String?) -> Pairs {
        guard let query, !query.isEmpty else { return [] }
        var pairs: Pairs = []
        for piece in query.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            if let eq = piece.firstIndex(of: UInt8(ascii: "=")) {
                pairs.append((decode(piece[piece.startIndex..<eq]), decode(piece[piece.index(after: eq)...])))
            } else {
                pairs.append((decode(piece[...]), ""))
            }
        }
        return pairs
    }

    public static func first(_ name: String, in query: String?) -> String? {
        guard let query, query.contains(name) else { return nil }  // cheap rejection on the hot path
        return parse(query).first { $0.name == name }?.value
    }

    public static func serialize(_ pairs: Pairs) -> String {
        pairs.map { URLEncoding.formEncode($0.name) + "=" + URLEncoding.formEncode($0.value) }.joined(separator: "&")
    }

    /// `pathAndQuery` with the named parameters removed. Like `URLSearchParams.delete`, the remaining query
    /// is always re-serialised (so `%20` becomes `+`), and an empty query loses its `?`.
    public static func removing(_ names: Set<String>, from pathAndQuery: String) -> String {
        guard let q = pathAndQuery.firstIndex(of: "?") else { return pathAndQuery }
        let path = String(pathAndQuery[..<q])
        let kept = parse(String(pathAndQuery[pathAndQuery.index(after: q)...])).filter { !names.contains($0.name) }
        return kept.isEmpty ? path : path + "?" + serialize(kept)
    }

    /// `URLSearchParams.set`: replaces the first `name` (dropping later ones) or appends it; re-serialises.
    public static func setting(_ name: String, _ value: String, in url: String) -> String {
        let (base, query) = split(url)
        var pairs = parse(query)
        if let i = pairs.firstIndex(where: { $0.name == name }) {
            pairs[i].value = value
            var seen = false
            pairs.removeAll { pair in
                guard pair.name == name else { return false }
                defer { seen = true }
                return seen
            }
        } else {
            pairs.append((name, value))
        }
        return base + "?" + serialize(pairs)
    }

    /// `URLSearchParams.append`: adds `name=value` at the end; re-serialises.
    public static func appending(_ name: String, _ value: String, to url: String) -> String {
        let (base, query) = split(url)
        return base + "?" + serialize(parse(query) + [(name, value)])
    }

    private static func split(_ url: String) -> (String, String?) {
        guard let q = url.firstIndex(of: "?") else { return (url, nil) }
        return (String(url[..<q]), String(url[url.index(after: q)...]))
    }

    private static func decode(_ bytes: Substring.UTF8View.SubSequence) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let b = bytes[i]
            if b == UInt8(ascii: "+") {
                out.append(0x20)
            } else if b == UInt8(ascii: "%"), let h1 = bytes.index(i, offsetBy: 1, limitedBy: bytes.endIndex), h1 < bytes.endIndex,
                let h2 = bytes.index(i, offsetBy: 2, limitedBy: bytes.endIndex), h2 < bytes.endIndex,
                let hi = hexValue(bytes[h1]), let lo = hexValue(bytes[h2])
            {
                out.append(hi << 4 | lo)
                i = bytes.index(after: h2)
                continue
            } else {
                out.append(b)
            }
            i = bytes.index(after: i)
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// The origin (`scheme://host[:port]`, default port dropped, lower case) of an absolute http(s) URL.
public enum URLOrigin {
    public static func of(_ url: String) -> String? {
        guard let colon = url.firstIndex(of: ":") else { return nil }
        let scheme = String(url[..<colon]).asciiLowercased
        guard scheme == "http" || scheme == "https" else { return nil }
        let rest = url[url.index(after: colon)...]
        guard rest.hasPrefix("//") else { return nil }
        let authorityStart = rest.index(rest.startIndex, offsetBy: 2)
        let end = rest[authorityStart...].firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" || $0 == "\\" }) ?? rest.endIndex
        let authority = rest[authorityStart..<end]
        guard !authority.contains("@"), var host = try? CanonicalRequest.normalizeHost(String(authority)) else { return nil }
        if scheme == "http", host.hasSuffix(":80") { host.removeLast(3) }
        if scheme == "https", host.hasSuffix(":443") { host.removeLast(4) }
        return scheme + "://" + host
    }

    /// The host (without port) of an absolute http(s) URL.
    public static func host(of url: String) -> String? {
        guard let origin = of(url) else { return nil }
        let authority = origin[origin.index(origin.firstIndex(of: ":")!, offsetBy: 3)...]
        if authority.hasPrefix("[") { return String(authority[...authority.firstIndex(of: "]")!]) }
        return String(authority.split(separator: ":", maxSplits: 1).first ?? authority)
    }

    /// `host:port` with the scheme's default port filled in (Clerk compares sign-in URLs this way).
    public static func hostAndPort(of url: String) -> String? {
        guard let origin = of(url), let host = host(of: url) else { return nil }
        let afterHost = origin.dropFirst(origin.hasPrefix("https") ? 8 + host.count : 7 + host.count)
        if afterHost.hasPrefix(":") { return host + afterHost }
        return host + (origin.hasPrefix("https") ? ":443" : ":80")
    }
}
