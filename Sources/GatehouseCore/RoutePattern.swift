/// A route pattern with the semantics of Clerk's `createRouteMatcher` (path-to-regexp 6 with its defaults:
/// case-insensitive, one optional trailing `/`, anchored at both ends).
///
/// Supported syntax: literal text, `\` escapes, `:name` with the modifiers `?` `*` `+`, and the unnamed or
/// custom groups `(.*)`, `(.+)` and `(\d+)`. Like path-to-regexp, a `:name` or group right after `/` or `.`
/// absorbs that character as its prefix: `/org/:slug` matches `/org/acme`, `/org/:slug?` also `/org`.
/// Note `/admin(.*)` matches `/administrator` too — that is Clerk's behaviour. Use `/admin/:rest*` to match
/// `/admin` and everything below it, but not `/administrator`.
///
/// Patterns are compiled to a token list and matched by a small position-set automaton: linear in the path
/// length per token, no regex engine and no backtracking blow-up.
public final class RoutePattern: Sendable, Equatable, CustomStringConvertible {
    public let source: String
    let tokens: [Token]
    /// Lower-cased literal bytes every match starts with (fast reject).
    let leadingLiteral: [UInt8]
    let shape: Shape

    public var description: String { source }

    enum Inner: Sendable, Equatable {
        case segment  // [^/#?]+?
        case any  // .*
        case anyNonEmpty  // .+
        case digits  // \d+
    }

    enum Modifier: Sendable, Equatable {
        case one, optional, zeroOrMore, oneOrMore
    }

    enum Token: Sendable, Equatable {
        case literal([UInt8])  // lower-cased
        case parameter(prefix: UInt8?, inner: Inner, modifier: Modifier)
    }

    public struct SyntaxError: Error, Equatable, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    /// A class: rules hold arrays of patterns that are walked on every request, and copying a struct out of
    /// the array retained its three fields each time (seen in the route-matching micro-benchmark).
    public static func == (lhs: RoutePattern, rhs: RoutePattern) -> Bool {
        lhs === rhs || (lhs.source == rhs.source && lhs.tokens == rhs.tokens)
    }

    public init(_ source: String) throws(SyntaxError) {
        self.source = source
        self.tokens = try RoutePattern.parse(source)
        if case .literal(let bytes)? = tokens.first { leadingLiteral = bytes } else { leadingLiteral = [] }
        switch tokens.count {
        case 1 where !leadingLiteral.isEmpty: shape = .literal
        case 2 where !leadingLiteral.isEmpty && tokens[1] == .parameter(prefix: nil, inner: .any, modifier: .one): shape = .literalThenAnything
        default: shape = .general
        }
    }

    /// Shapes matched without the automaton (most route patterns are one of them).
    enum Shape: Sendable, Equatable {
        case literal, literalThenAnything, general
    }

    // MARK: Parsing

    private static func parse(_ source: String) throws(SyntaxError) -> [Token] {
        let chars = Array(source.utf8)
        guard chars.first == UInt8(ascii: "/") else {
            throw SyntaxError(message: "pattern must start with '/'")
        }
        var tokens: [Token] = []
        var literal: [UInt8] = []
        var i = 0

        func flushLiteral() throws(SyntaxError) {
            guard !literal.isEmpty else { return }
            tokens.append(.literal(try canonicalLiteral(literal)))
            literal = []
        }

        while i < chars.count {
            let c = chars[i]
            // A parameter or group, possibly with the character before it as prefix.
            if c == UInt8(ascii: ":") || c == UInt8(ascii: "(") {
                var prefix: UInt8? = nil
                if let last = literal.last, last == UInt8(ascii: "/") || last == UInt8(ascii: ".") {
                    prefix = literal.removeLast()
                }
                try flushLiteral()
                var inner = Inner.segment
                if c == UInt8(ascii: ":") {
                    var j = i + 1
                    while j < chars.count, isNameChar(chars[j]) { j += 1 }
                    guard j > i + 1 else { throw SyntaxError(message: "missing parameter name after ':'") }
                    i = j
                    if i < chars.count, chars[i] == UInt8(ascii: "(") {
                        let (group, next) = try readGroup(chars, from: i)
                        inner = group
                        i = next
                    }
                } else {
                    let (group, next) = try readGroup(chars, from: i)
                    inner = group
                    i = next
                }
                var modifier = Modifier.one
                if i < chars.count {
                    switch chars[i] {
                    case UInt8(ascii: "?"): modifier = .optional; i += 1
                    case UInt8(ascii: "*"): modifier = .zeroOrMore; i += 1
                    case UInt8(ascii: "+"): modifier = .oneOrMore; i += 1
                    default: break
                    }
                }
                tokens.append(.parameter(prefix: prefix, inner: inner, modifier: modifier))
                continue
            }
            switch c {
            case UInt8(ascii: "\\"):
                guard i + 1 < chars.count else { throw SyntaxError(message: "pattern ends with a lone '\\'") }
                literal.append(chars[i + 1])
                i += 2
            case UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "?"):
                throw SyntaxError(
                    message: "unexpected '\(Character(Unicode.Scalar(c)))' at offset \(i): modifiers follow a :param or a group; write '(.*)' for a wildcard"
                )
            case UInt8(ascii: "{"), UInt8(ascii: "}"):
                throw SyntaxError(message: "'{…}' groups are not supported; use :param modifiers or (.*)")
            case UInt8(ascii: ")"):
                throw SyntaxError(message: "unbalanced ')' at offset \(i)")
            default:
                literal.append(c)
                i += 1
            }
        }
        try flushLiteral()
        return tokens
    }

    private static func isNameChar(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
            || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "_")
    }

    private static func readGroup(_ chars: [UInt8], from start: Int) throws(SyntaxError) -> (Inner, Int) {
        var depth = 0
        var j = start
        while j < chars.count {
            if chars[j] == UInt8(ascii: "\\") { j += 2; continue }
            if chars[j] == UInt8(ascii: "(") { depth += 1 }
            if chars[j] == UInt8(ascii: ")") {
                depth -= 1
                if depth == 0 { break }
            }
            j += 1
        }
        guard j < chars.count else { throw SyntaxError(message: "unbalanced '(' at offset \(start)") }
        let body = String(decoding: chars[(start + 1)..<j], as: UTF8.self)
        let inner: Inner
        switch body {
        case ".*": inner = .any
        case ".+": inner = .anyNonEmpty
        case "\\d+", "[0-9]+": inner = .digits
        case "[^/]+", "[^\\/]+", "[^\\/#\\?]+?": inner = .segment
        default:
            throw SyntaxError(message: "unsupported group '(\(body))': only (.*), (.+), (\\d+) and ([^/]+) are supported")
        }
        return (inner, j + 1)
    }

    /// Literal text in the same canonical form as request paths: unreserved escapes decoded, other escapes
    /// upper-cased, non-ASCII percent-encoded; then lower-cased for case-insensitive comparison.
    private static func canonicalLiteral(_ bytes: [UInt8]) throws(SyntaxError) -> [UInt8] {
        var encoded = [UInt8]()
        for b in bytes {
            if b >= 0x80 {
                let hex = Array("0123456789ABCDEF".utf8)
                encoded.append(contentsOf: [UInt8(ascii: "%"), hex[Int(b >> 4)], hex[Int(b & 0xF)]])
            } else {
                encoded.append(b)
            }
        }
        let decoded: [UInt8]
        do {
            decoded = try CanonicalPath.decodeEscapes(encoded, allowSemicolons: true)
        } catch {
            throw SyntaxError(message: "pattern text can never match a canonical path: \(error.message)")
        }
        let segments = decoded.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        for (i, segment) in segments.enumerated() {
            if segment.isEmpty && i > 0 && i < segments.count - 1 {
                throw SyntaxError(message: "pattern contains '//', which never occurs in a canonical path")
            }
            let isDotSegment = segment.elementsEqual([UInt8(ascii: ".")]) || segment.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")])
            // A lone "." at either end may belong to a neighbouring parameter (`/:file.:ext`).
            if isDotSegment && i > 0 && i < segments.count - 1 {
                throw SyntaxError(message: "pattern contains a '.' or '..' segment, which never occurs in a canonical path")
            }
        }
        return decoded.map(lowerASCII)
    }

    // MARK: Matching

    /// Whether the canonical path matches. `path` must be a `CanonicalPath` value (ASCII).
    public func matches(_ path: CanonicalPath) -> Bool {
        var text = path.value
        return text.withUTF8 { matches(utf8: $0) }
    }

    func matches(utf8 path: UnsafeBufferPointer<UInt8>) -> Bool {
        let n = path.count
        if !leadingLiteral.isEmpty {
            guard n >= leadingLiteral.count else { return false }
            for i in 0..<leadingLiteral.count where lowerASCII(path[i]) != leadingLiteral[i] { return false }
            switch shape {
            case .literal:
                // Exact, or with one trailing slash.
                return n == leadingLiteral.count || (n == leadingLiteral.count + 1 && path[n - 1] == UInt8(ascii: "/"))
            case .literalThenAnything:
                // `/dashboard(.*)`, the usual Clerk matcher: the prefix decides.
                return true
            case .general:
                break
            }
        }
        var reached = [Bool](repeating: false, count: n + 1)
        reached[0] = true
        for token in tokens {
            reached = step(token, from: reached, path: path)
            if !reached.contains(true) { return false }
        }
        return reached[n] || (n > 0 && path[n - 1] == UInt8(ascii: "/") && reached[n - 1])
    }

    private func step(_ token: Token, from reached: [Bool], path: UnsafeBufferPointer<UInt8>) -> [Bool] {
        let n = path.count
        switch token {
        case .literal(let bytes):
            var next = [Bool](repeating: false, count: n + 1)
            let len = bytes.count
            for p in 0...n where reached[p] && p + len <= n {
                var ok = true
                for k in 0..<len where lowerASCII(path[p + k]) != bytes[k] {
                    ok = false
                    break
                }
                if ok { next[p + len] = true }
            }
            return next
        case .parameter(let prefix, let inner, let modifier):
            switch modifier {
            case .one:
                return sweep(prefix: prefix, inner: inner, start: reached, path: path, repeating: false, keepStart: false)
            case .optional:
                return sweep(prefix: prefix, inner: inner, start: reached, path: path, repeating: false, keepStart: true)
            case .zeroOrMore, .oneOrMore:
                let once = sweep(prefix: prefix, inner: inner, start: reached, path: path, repeating: false, keepStart: false)
                // Repeats after the first: `prefix inner` again, for a prefixed parameter, `inner` for a bare one.
                var closure = sweep(prefix: prefix, inner: inner, start: once, path: path, repeating: true, keepStart: true)
                if modifier == .zeroOrMore {
                    for p in 0...n where reached[p] { closure[p] = true }
                }
                return closure
            }
        }
    }

    /// One application of `prefix inner` from every reached position (or, with `repeating`, its closure:
    /// positions reached along the way are themselves starting points). Ranges are marked with a
    /// difference array so one sweep is O(n).
    private func sweep(prefix: UInt8?, inner: Inner, start: [Bool], path: UnsafeBufferPointer<UInt8>, repeating: Bool, keepStart: Bool) -> [Bool] {
        let n = path.count
        var result = [Bool](repeating: false, count: n + 1)
        var diff = [Int](repeating: 0, count: n + 2)
        var running = 0
        for p in 0...n {
            running += diff[p]
            let covered = running > 0
            if covered { result[p] = true }
            if keepStart && start[p] { result[p] = true }
            let active = start[p] || (repeating && covered)
            guard active else { continue }
            var r = p
            if let prefix {
                guard r < n, path[r] == prefix else { continue }
                r += 1
            }
            let range: (Int, Int)?
            switch inner {
            case .segment:
                var e = r
                while e < n, path[e] != UInt8(ascii: "/") { e += 1 }
                range = e > r ? (r + 1, e) : nil
            case .any:
                range = (r, n)
            case .anyNonEmpty:
                range = r < n ? (r + 1, n) : nil
            case .digits:
                var e = r
                while e < n, path[e] >= UInt8(ascii: "0"), path[e] <= UInt8(ascii: "9") { e += 1 }
                range = e > r ? (r + 1, e) : nil
            }
            guard let (lo, hi) = range else { continue }
            if lo <= p {
                // Only possible for an empty `(.*)` without prefix: p itself is reached.
                result[p] = true
                if hi > p {
                    diff[p + 1] += 1
                    diff[hi + 1] -= 1
                }
            } else {
                diff[lo] += 1
                diff[hi + 1] -= 1
            }
        }
        return result
    }
}
