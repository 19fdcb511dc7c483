/// A route pattern with exactly the semantics of Clerk's `createRouteMatcher`: path-to-regexp 6.3.0's
/// `pathToRegexp(pattern)` with its defaults (case-insensitive as JavaScript's `i` flag, one optional trailing
/// `/`, `#` or `?`, anchored at both ends), tested against the path as Clerk normalises it (`decodeURI`,
/// repeated slashes merged; see `DecodedPath`).
///
/// All of path-to-regexp 6.3.0's syntax: literal text, `\` escapes, `:name`, custom and unnamed groups
/// (`:id(\d{4})`, `(api|trpc)`, `((?!_next).*)`), `{…}` groups, the modifiers `?` `*` `+`, and patterns that
/// do not start with `/`. A `:name` or group right after `/` or `.` takes that character as its prefix, and a
/// parameter after other text may not contain that text (`/:org-:repo`: the repo has no `-`).
/// Note `/admin(.*)` matches `/administrator` too — that is Clerk's behaviour; `/admin/:rest*` does not.
///
/// Literal patterns and `literal(.*)` are matched by comparing bytes; every other pattern is translated to
/// the regular expression path-to-regexp builds and compiled once with PCRE2 (see `JSRegex`).
public final class RoutePattern: Sendable, Equatable, CustomStringConvertible {
    public let source: String
    /// The JavaScript regular expression path-to-regexp 6.3.0 builds for this pattern (flag `i`).
    public let javaScriptRegex: String
    /// Names of the pattern's capture groups in order (`:name`, or "0", "1"… for unnamed groups), as
    /// path-to-regexp's `keys`: only keys with a pattern capture. Used by ownership requirements.
    public let parameterNames: [String]
    let shape: Shape

    public var description: String { source }

    enum Shape: Sendable {
        /// `^literal[\/#\?]?$` with an ASCII literal (lower-cased).
        case literal([UInt8])
        /// `^literal(.*)[\/#\?]?$` (the prefix `/` or `.` of the group folded into the literal).
        case literalThenAnything([UInt8])
        /// Anything else; `leading` is an ASCII literal every match starts with (lower-cased, may be empty).
        case regex(leading: [UInt8], PCRE2Regex)
    }

    public struct SyntaxError: Error, Equatable, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    public static func == (lhs: RoutePattern, rhs: RoutePattern) -> Bool {
        lhs === rhs || lhs.source == rhs.source
    }

    public convenience init(_ source: String) throws(SyntaxError) {
        try self.init(source, fastPaths: true)
    }

    /// `fastPaths: false` compiles every pattern to PCRE2 (to test the byte comparisons against it).
    init(_ source: String, fastPaths: Bool) throws(SyntaxError) {
        guard !source.isEmpty else {
            throw SyntaxError(message: "an empty pattern matches nothing (createRouteMatcher drops it)")
        }
        self.source = source
        let tokens: [PathToRegexp.Token]
        let js: [UInt16]
        do {
            tokens = try PathToRegexp.parse(Array(source.utf16))
            js = try PathToRegexp.regexSource(tokens)
        } catch {
            throw SyntaxError(message: error.message)
        }
        self.javaScriptRegex = String(decoding: js, as: UTF16.self)
        self.parameterNames = tokens.compactMap { token in
            if case .key(let key) = token, !key.pattern.isEmpty { return key.name }
            return nil
        }
        if fastPaths, let shape = RoutePattern.bytewiseShape(tokens) {
            self.shape = shape
            return
        }
        // A huge pattern is named by its start: the message goes to logs and `check-config` output.
        let shown = javaScriptRegex.count > 200 ? javaScriptRegex.prefix(200) + "…" : javaScriptRegex
        let translated: String
        do {
            translated = try JSRegex.translate(js)
        } catch {
            throw SyntaxError(message: "invalid regular expression /\(shown)/i: \(error.message)")
        }
        let regex: PCRE2Regex
        do {
            regex = try PCRE2Regex(translated)
        } catch {
            throw SyntaxError(message: "regular expression /\(shown)/i is not supported: \(error.message)")
        }
        var leading: [UInt8] = []
        if case .text(let text)? = tokens.first, let ascii = RoutePattern.lowercasedASCII(text) { leading = ascii }
        self.shape = .regex(leading: leading, regex)
    }

    private static func lowercasedASCII(_ text: [UInt16]) -> [UInt8]? {
        guard text.allSatisfy({ $0 < 0x80 }) else { return nil }
        return text.map { lowerASCII(UInt8($0)) }
    }

    private static func bytewiseShape(_ tokens: [PathToRegexp.Token]) -> Shape? {
        func isAnything(_ key: PathToRegexp.Key) -> Bool {
            key.pattern == Array(".*".utf16) && key.suffix.isEmpty && key.modifier == nil && key.prefix.count <= 1
        }
        switch tokens.count {
        case 1:
            if case .text(let text) = tokens[0], let ascii = lowercasedASCII(text) { return .literal(ascii) }
            if case .key(let key) = tokens[0], isAnything(key), let ascii = lowercasedASCII(key.prefix) {
                return .literalThenAnything(ascii)
            }
        case 2:
            if case .text(let text) = tokens[0], case .key(let key) = tokens[1], isAnything(key),
                let ascii = lowercasedASCII(text + key.prefix)
            {
                return .literalThenAnything(ascii)
            }
        default:
            break
        }
        return nil
    }

    // MARK: Matching

    /// Matches the canonical path (decoded as Clerk decodes it).
    public func outcome(for path: CanonicalPath) -> MatchOutcome {
        DecodedPath.with(path) { bytes in
            guard let bytes else { return .failed("path is not canonical") }
            return outcome(decoded: bytes)
        }
    }

    /// A match that could not be evaluated (a PCRE2 limit or internal error): neither a match nor a non-match.
    public struct MatchFailure: Error, Equatable, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    /// Whether the path matches; throws when that cannot be decided, so that no caller can take a failed
    /// match for "no match" and fall through to a later rule. Route tables use `outcome`.
    public func matches(_ path: CanonicalPath) throws(MatchFailure) -> Bool {
        switch outcome(for: path) {
        case .match: return true
        case .noMatch: return false
        case .failed(let reason): throw MatchFailure(reason: reason)
        }
    }

    /// `path` is the decoded form from `DecodedPath`.
    func outcome(decoded path: UnsafeBufferPointer<UInt8>) -> MatchOutcome {
        switch shape {
        case .literal(let literal):
            let n = literal.count
            guard RoutePattern.hasPrefix(path, literal) else { return .noMatch }
            return path.count == n || (path.count == n + 1 && path[n] == UInt8(ascii: "/")) ? .match : .noMatch
        case .literalThenAnything(let literal):
            guard RoutePattern.hasPrefix(path, literal) else { return .noMatch }
            // `.*` stops at a line terminator (\n, \r, U+2028, U+2029), and nothing after it may follow one.
            // (`CanonicalPath` refuses all four; kept so direct callers get the regex's answer.) Counting code
            // points or units makes no difference here, so bytes give the 16-bit regex's answer.
            var i = literal.count
            while i < path.count {
                let b = path[i]
                if b == 0x0A || b == 0x0D { return .noMatch }
                if b == 0xE2, i + 2 < path.count, path[i + 1] == 0x80, path[i + 2] == 0xA8 || path[i + 2] == 0xA9 { return .noMatch }
                i += 1
            }
            return .match
        case .regex(let leading, let regex):
            guard RoutePattern.hasPrefix(path, leading) else { return .noMatch }
            return regex.match(path)
        }
    }

    private static func hasPrefix(_ path: UnsafeBufferPointer<UInt8>, _ lowered: [UInt8]) -> Bool {
        guard path.count >= lowered.count else { return false }
        for i in 0..<lowered.count where lowerASCII(path[i]) != lowered[i] { return false }
        return true
    }
}
