/// path-to-regexp 6.3.0's parser and `tokensToRegexp`, with the options Clerk's `createRouteMatcher` uses
/// (`prefixes: "./"`, `delimiter: "/#?"`, `strict: false`, `start: true`, `end: true`): a pattern becomes the
/// very JavaScript regular-expression source path-to-regexp builds, which `JSRegex` then translates for PCRE2.
///
/// Works on UTF-16 code units, as JavaScript does, so error offsets and character handling are the same.
enum PathToRegexp {
    struct Failure: Error, Equatable {
        let message: String
    }

    struct Key: Equatable {
        var name: String
        var prefix: [UInt16]
        var suffix: [UInt16]
        var pattern: [UInt16]
        var modifier: UInt16?
    }

    enum Token: Equatable {
        case text([UInt16])
        case key(Key)
    }

    private enum LexKind: String {
        case open = "OPEN", close = "CLOSE", pattern = "PATTERN", name = "NAME", char = "CHAR"
        case escapedChar = "ESCAPED_CHAR", modifier = "MODIFIER", end = "END"
    }

    private struct LexToken {
        let kind: LexKind
        let index: Int
        /// nil for an `ESCAPED_CHAR` at the very end (JavaScript's `undefined`), which the parser skips.
        let value: [UInt16]?
    }

    private static func unit(_ c: Character) -> UInt16 { UInt16(c.asciiValue!) }

    private static func lex(_ s: [UInt16]) throws(Failure) -> [LexToken] {
        var tokens: [LexToken] = []
        var i = 0
        while i < s.count {
            let c = s[i]
            switch c {
            case unit("*"), unit("+"), unit("?"):
                tokens.append(LexToken(kind: .modifier, index: i, value: [c]))
                i += 1
            case unit("\\"):
                tokens.append(LexToken(kind: .escapedChar, index: i, value: i + 1 < s.count ? [s[i + 1]] : nil))
                i += 2
            case unit("{"):
                tokens.append(LexToken(kind: .open, index: i, value: [c]))
                i += 1
            case unit("}"):
                tokens.append(LexToken(kind: .close, index: i, value: [c]))
                i += 1
            case unit(":"):
                var j = i + 1
                while j < s.count, isNameUnit(s[j]) { j += 1 }
                guard j > i + 1 else { throw Failure(message: "Missing parameter name at \(i)") }
                tokens.append(LexToken(kind: .name, index: i, value: Array(s[(i + 1)..<j])))
                i = j
            case unit("("):
                var count = 1
                var pattern: [UInt16] = []
                var j = i + 1
                if j < s.count, s[j] == unit("?") { throw Failure(message: "Pattern cannot start with \"?\" at \(j)") }
                while j < s.count {
                    if s[j] == unit("\\") {
                        pattern.append(s[j])
                        if j + 1 < s.count { pattern.append(s[j + 1]) }
                        j += 2
                        continue
                    }
                    if s[j] == unit(")") {
                        count -= 1
                        if count == 0 {
                            j += 1
                            break
                        }
                    } else if s[j] == unit("(") {
                        count += 1
                        if !(j + 1 < s.count && s[j + 1] == unit("?")) {
                            throw Failure(message: "Capturing groups are not allowed at \(j)")
                        }
                    }
                    pattern.append(s[j])
                    j += 1
                }
                if count != 0 { throw Failure(message: "Unbalanced pattern at \(i)") }
                if pattern.isEmpty { throw Failure(message: "Missing pattern at \(i)") }
                tokens.append(LexToken(kind: .pattern, index: i, value: pattern))
                i = j
            default:
                tokens.append(LexToken(kind: .char, index: i, value: [c]))
                i += 1
            }
        }
        tokens.append(LexToken(kind: .end, index: i, value: []))
        return tokens
    }

    private static func isNameUnit(_ u: UInt16) -> Bool {
        (u >= 48 && u <= 57) || (u >= 65 && u <= 90) || (u >= 97 && u <= 122) || u == 95
    }

    static let delimiter: [UInt16] = Array("/#?".utf16)
    static let prefixes: [UInt16] = Array("./".utf16)

    static func parse(_ source: [UInt16]) throws(Failure) -> [Token] {
        let tokens = try lex(source)
        var result: [Token] = []
        var key = 0
        var i = 0
        var path: [UInt16] = []

        /// JavaScript's `tryConsume`: the value, or nil when the next token is of another kind. An escaped
        /// character at the end is consumed but yields nil, as `undefined` does there.
        func tryConsume(_ kind: LexKind) -> [UInt16]? {
            guard i < tokens.count, tokens[i].kind == kind else { return nil }
            i += 1
            return tokens[i - 1].value
        }
        func mustConsume(_ kind: LexKind) throws(Failure) -> [UInt16] {
            if let value = tryConsume(kind) { return value }
            throw Failure(message: "Unexpected \(tokens[i].kind.rawValue) at \(tokens[i].index), expected \(kind.rawValue)")
        }
        func consumeText() -> [UInt16] {
            var text: [UInt16] = []
            while let value = tryConsume(.char) ?? tryConsume(.escapedChar) { text += value }
            return text
        }
        func safePattern(_ prefix: [UInt16]) throws(Failure) -> [UInt16] {
            let prev = result.last
            var prevText = prefix
            if prevText.isEmpty, case .text(let text)? = prev { prevText = text }
            if let prev, prevText.isEmpty, case .key(let k) = prev {
                throw Failure(message: "Must have text between two parameters, missing text after \"\(k.name)\"")
            }
            let anyDelimiter = Array("[^".utf16) + escape(delimiter) + Array("]".utf16)
            if prevText.isEmpty || prevText.contains(where: delimiter.contains) { return anyDelimiter + Array("+?".utf16) }
            return Array("(?:(?!".utf16) + escape(prevText) + Array(")".utf16) + anyDelimiter + Array(")+?".utf16)
        }

        while i < tokens.count {
            let char = tryConsume(.char)
            let name = tryConsume(.name)
            let pattern = tryConsume(.pattern)
            if name != nil || pattern != nil {
                var prefix = char ?? []
                if !(prefix.isEmpty || prefixes.contains(prefix[0])) {
                    path += prefix
                    prefix = []
                }
                if !path.isEmpty {
                    result.append(.text(path))
                    path = []
                }
                let keyName: String
                if let name { keyName = String(decoding: name, as: UTF16.self) } else { keyName = String(key); key += 1 }
                let body: [UInt16]
                if let pattern { body = pattern } else { body = try safePattern(prefix) }
                result.append(.key(Key(name: keyName, prefix: prefix, suffix: [], pattern: body, modifier: tryConsume(.modifier)?.first)))
                continue
            }
            if let value = char ?? tryConsume(.escapedChar) {
                path += value
                continue
            }
            if !path.isEmpty {
                result.append(.text(path))
                path = []
            }
            if tryConsume(.open) != nil {
                let prefix = consumeText()
                let name = tryConsume(.name) ?? []
                let pattern = tryConsume(.pattern) ?? []
                let suffix = consumeText()
                _ = try mustConsume(.close)
                let keyName: String
                if !name.isEmpty { keyName = String(decoding: name, as: UTF16.self) }
                else if !pattern.isEmpty { keyName = String(key); key += 1 }
                else { keyName = "" }
                var body = pattern
                if !name.isEmpty && pattern.isEmpty { body = try safePattern(prefix) }
                result.append(.key(Key(name: keyName, prefix: prefix, suffix: suffix, pattern: body, modifier: tryConsume(.modifier)?.first)))
                continue
            }
            _ = try mustConsume(.end)
        }
        return result
    }

    /// `escapeString`: a backslash before each of `.+*?=^!:${}()[]|/\`.
    static func escape(_ text: [UInt16]) -> [UInt16] {
        let special = Array(".+*?=^!:${}()[]|/\\".utf16)
        var out: [UInt16] = []
        for u in text {
            if special.contains(u) { out.append(unit("\\")) }
            out.append(u)
        }
        return out
    }

    /// `tokensToRegexp` with `strict: false`, `start: true`, `end: true`: the JavaScript source (flag `i`).
    static func regexSource(_ tokens: [Token]) throws(Failure) -> [UInt16] {
        func u(_ s: String) -> [UInt16] { Array(s.utf16) }
        var route = u("^")
        for token in tokens {
            switch token {
            case .text(let text):
                route += escape(text)
            case .key(let key):
                let prefix = escape(key.prefix)
                let suffix = escape(key.suffix)
                let modifier = key.modifier.map { [$0] } ?? []
                let repeats = key.modifier == unit("+") || key.modifier == unit("*")
                if !key.pattern.isEmpty {
                    if !prefix.isEmpty || !suffix.isEmpty {
                        if repeats {
                            let optional = key.modifier == unit("*") ? u("?") : []
                            route += u("(?:") + prefix + u("((?:") + key.pattern + u(")(?:") + suffix + prefix + u("(?:") + key.pattern
                                + u("))*)") + suffix + u(")") + optional
                        } else {
                            route += u("(?:") + prefix + u("(") + key.pattern + u(")") + suffix + u(")") + modifier
                        }
                    } else {
                        if repeats { throw Failure(message: "Can not repeat \"\(key.name)\" without a prefix and suffix") }
                        route += u("(") + key.pattern + u(")") + modifier
                    }
                } else {
                    route += u("(?:") + prefix + suffix + u(")") + modifier
                }
            }
        }
        route += u("[") + escape(delimiter) + u("]?") + u("$")
        return route
    }
}
