/// Translates a JavaScript regular expression (no `u` flag, with `i`, Annex B syntax as V8 accepts it) into an
/// equivalent PCRE2 pattern over UTF-16 code units (16-bit PCRE2 without UTF, see `PCRE2Regex`), compiled
/// case-sensitively. Like JavaScript without `u`, everything counts code units: an astral character in the
/// path or the pattern is two units (a surrogate pair), `.` and `[^/]` match each half, `\ud83d` alone matches
/// a high half, and a quantifier after an astral literal repeats its low half.
/// - every literal character and class member is expanded to its `JSCaseFolding` class (JS's `i`);
/// - `.` is "not a line terminator" (`\n \r U+2028 U+2029`), `\s`/`\S` are JavaScript's Unicode white space;
/// - escapes are resolved here (`\xHH`, `\uHHHH`, `\cX`, legacy octal, identity escapes such as `\q` or `\p`),
///   so PCRE2 sees only `\x{…}`, classes, groups, quantifiers, `^`, `$`, `\b`, `\B` and backreferences;
/// - syntax JavaScript refuses is refused with its reason.
///
/// Not reproduced: backreferences compare with PCRE2's caseless rules (ASCII only without UTF).
struct JSRegex {
    struct Failure: Error, Equatable {
        let message: String
    }

    /// Groups may nest this deep (path-to-regexp's own two levels around a parameter included): deeper
    /// patterns are config errors, not a stack overflow on reload. The descent below recurses once per level
    /// (four frames, several KiB in a debug build); at this depth translating and compiling fit in a 512 KiB
    /// thread stack even unoptimised (NestingLimitTests), and route patterns never need more than a few.
    static let maxGroupNesting = 64

    private let s: [UInt16]
    private var i = 0
    private var nesting = 0
    private var out = ""
    private let captureCount: Int
    private let groupNames: Set<String>

    static func translate(_ source: [UInt16]) throws(Failure) -> String {
        var t = JSRegex(source)
        try t.disjunction()
        if t.i < t.s.count { throw Failure(message: "Unmatched ')'") }
        return t.out
    }

    private init(_ source: [UInt16]) {
        s = source
        // Count capturing groups and collect names first: `\N` is a backreference only up to that count.
        var count = 0
        var names = Set<String>()
        var j = 0
        var inClass = false
        while j < source.count {
            let c = source[j]
            if c == 0x5C { j += 2; continue }
            if inClass {
                if c == 0x5D { inClass = false }
            } else if c == 0x5B {
                inClass = true
            } else if c == 0x28 {
                if j + 1 < source.count, source[j + 1] == 0x3F {
                    if j + 2 < source.count, source[j + 2] == 0x3C, j + 3 < source.count, source[j + 3] != 0x3D, source[j + 3] != 0x21 {
                        count += 1
                        var k = j + 3
                        var name: [UInt16] = []
                        while k < source.count, source[k] != 0x3E { name.append(source[k]); k += 1 }
                        names.insert(String(decoding: name, as: UTF16.self))
                    }
                } else {
                    count += 1
                }
            }
            j += 1
        }
        captureCount = count
        groupNames = names
    }

    private func peek(_ offset: Int = 0) -> UInt16? { i + offset < s.count ? s[i + offset] : nil }

    private static func isDigit(_ u: UInt16?) -> Bool { u.map { $0 >= 0x30 && $0 <= 0x39 } ?? false }
    private static func hexValue(_ u: UInt16?) -> UInt32? {
        guard let u else { return nil }
        switch u {
        case 0x30...0x39: return UInt32(u - 0x30)
        case 0x41...0x46: return UInt32(u - 0x41 + 10)
        case 0x61...0x66: return UInt32(u - 0x61 + 10)
        default: return nil
        }
    }

    private mutating func disjunction() throws(Failure) {
        try alternative()
        while peek() == 0x7C {  // |
            i += 1
            out += "|"
            try alternative()
        }
    }

    private mutating func alternative() throws(Failure) {
        while let c = peek(), c != 0x7C, c != 0x29 { try term() }
    }

    /// A `{n}`, `{n,}` or `{n,m}` quantifier at `i`: its text, bounds and length; nil when `{` is a literal.
    private func bracedQuantifier() -> (text: String, min: Double, max: Double?, length: Int)? {
        guard peek() == 0x7B else { return nil }
        var j = i + 1
        func number() -> Double? {
            var value: Double? = nil
            while j < s.count, JSRegex.isDigit(s[j]) {
                value = (value ?? 0) * 10 + Double(s[j] - 0x30)
                j += 1
            }
            return value
        }
        guard let low = number() else { return nil }
        var high: Double? = low
        if j < s.count, s[j] == 0x2C {
            j += 1
            high = number()
        }
        guard j < s.count, s[j] == 0x7D else { return nil }
        let text = String(decoding: s[i...j], as: UTF16.self)
        return (text, low, high, j + 1 - i)
    }

    private func atQuantifier() -> Bool {
        guard let c = peek() else { return false }
        return c == 0x2A || c == 0x2B || c == 0x3F || bracedQuantifier() != nil
    }

    private mutating func quantifier() throws(Failure) {
        guard let c = peek() else { return }
        switch c {
        case 0x2A: out += "*"; i += 1
        case 0x2B: out += "+"; i += 1
        case 0x3F: out += "?"; i += 1
        default:
            guard let q = bracedQuantifier() else { return }
            if let max = q.max, max < q.min { throw Failure(message: "numbers out of order in {} quantifier") }
            out += q.text
            i += q.length
        }
        if peek() == 0x3F {
            out += "?"
            i += 1
        }
        if atQuantifier() { throw Failure(message: "Nothing to repeat") }
    }

    private mutating func term() throws(Failure) {
        let c = s[i]
        switch c {
        case 0x5E, 0x24:  // ^ $
            out += c == 0x5E ? "^" : "$"
            i += 1
            if atQuantifier() { throw Failure(message: "Nothing to repeat") }
            return
        case 0x5C where peek(1) == 0x62 || peek(1) == 0x42:  // \b \B
            out += peek(1) == 0x62 ? "\\b" : "\\B"
            i += 2
            if atQuantifier() { throw Failure(message: "Nothing to repeat") }
            return
        case 0x28:
            try group()
            return
        case 0x2A, 0x2B, 0x3F:
            throw Failure(message: "Nothing to repeat")
        case 0x7B where bracedQuantifier() != nil:
            throw Failure(message: "Nothing to repeat")
        case 0x5B:
            i += 1
            out += try characterClass()
        case 0x2E:
            i += 1
            out += CodeUnitSet.lineTerminators.complement().pcre2
        case 0x5C:
            i += 1
            try atomEscape()
        default:
            i += 1
            try literal(UInt32(c))
        }
        try quantifier()
    }

    private mutating func group() throws(Failure) {
        nesting += 1
        defer { nesting -= 1 }
        if nesting > JSRegex.maxGroupNesting {
            throw Failure(message: "groups nested more than \(JSRegex.maxGroupNesting) deep (at offset \(i))")
        }
        i += 1
        var quantifiable = true
        if peek() == 0x3F {
            switch (peek(1), peek(2)) {
            case (0x3A, _): out += "(?:"; i += 2
            case (0x3D, _): out += "(?="; i += 2
            case (0x21, _): out += "(?!"; i += 2
            case (0x3C, 0x3D): out += "(?<="; i += 3; quantifiable = false
            case (0x3C, 0x21): out += "(?<!"; i += 3; quantifiable = false
            case (0x3C, _):
                i += 2
                var name: [UInt16] = []
                while let u = peek(), u != 0x3E { name.append(u); i += 1 }
                guard peek() == 0x3E, !name.isEmpty else { throw Failure(message: "Invalid capture group name") }
                i += 1
                let text = String(decoding: name, as: UTF16.self)
                guard JSRegex.isPCRE2Name(text) else {
                    throw Failure(message: "unsupported capture group name '\(text)' (use ASCII letters, digits and '_')")
                }
                out += "(?<\(text)>"
            default:
                throw Failure(message: "Invalid group")
            }
        } else {
            out += "("
        }
        try disjunction()
        guard peek() == 0x29 else { throw Failure(message: "Unterminated group") }
        i += 1
        out += ")"
        if quantifiable { try quantifier() } else if atQuantifier() { throw Failure(message: "Invalid quantifier") }
    }

    private static func isPCRE2Name(_ name: String) -> Bool {
        guard let first = name.utf8.first, !(first >= 0x30 && first <= 0x39), name.utf8.count <= 32 else { return false }
        return name.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F }
    }

    /// One code unit outside a class, case-expanded (surrogates, like every unit without a case, stand alone).
    private mutating func literal(_ unit: UInt32) throws(Failure) {
        out += CodeUnitSet([unit...unit]).caseClosed().pcre2
    }

    private enum ClassAtom {
        case unit(UInt32)
        case set(CodeUnitSet)
    }

    /// The escapes that mean one character in and out of classes; nil when `\` + `c` is not one of them.
    private mutating func characterEscape(_ c: UInt16, inClass: Bool) -> UInt32? {
        switch c {
        case 0x66: i += 1; return 0x0C  // f
        case 0x6E: i += 1; return 0x0A  // n
        case 0x72: i += 1; return 0x0D  // r
        case 0x74: i += 1; return 0x09  // t
        case 0x76: i += 1; return 0x0B  // v
        case 0x63:  // cX
            if let x = peek(1), (x >= 0x41 && x <= 0x5A) || (x >= 0x61 && x <= 0x7A) || (inClass && (JSRegex.isDigit(x) || x == 0x5F)) {
                i += 2
                return UInt32(x % 32)
            }
            return 0x5C  // a backslash; the `c` is read again as itself
        case 0x78:  // xHH
            if let a = JSRegex.hexValue(peek(1)), let b = JSRegex.hexValue(peek(2)) {
                i += 3
                return a << 4 | b
            }
            i += 1
            return 0x78
        case 0x75:  // uHHHH
            if let a = JSRegex.hexValue(peek(1)), let b = JSRegex.hexValue(peek(2)), let c = JSRegex.hexValue(peek(3)),
                let d = JSRegex.hexValue(peek(4))
            {
                i += 5
                return a << 12 | b << 8 | c << 4 | d
            }
            i += 1
            return 0x75
        case 0x30...0x37:  // legacy octal (and \0)
            var value: UInt32 = 0
            var digits = 0
            let maxDigits = c <= 0x33 ? 3 : 2
            while digits < maxDigits, let d = peek(), d >= 0x30, d <= 0x37 {
                value = value * 8 + UInt32(d - 0x30)
                digits += 1
                i += 1
            }
            return value
        default:
            i += 1
            return UInt32(c)  // identity escape (`\8`, `\q`, `\p`, `\/`, …)
        }
    }

    private mutating func atomEscape() throws(Failure) {
        guard let c = peek() else { throw Failure(message: "\\ at end of pattern") }
        switch c {
        case 0x64: i += 1; out += CodeUnitSet.digits.pcre2
        case 0x44: i += 1; out += CodeUnitSet.digits.complement().pcre2
        case 0x77: i += 1; out += CodeUnitSet.word.pcre2
        case 0x57: i += 1; out += CodeUnitSet.word.complement().pcre2
        case 0x73: i += 1; out += CodeUnitSet.space.pcre2
        case 0x53: i += 1; out += CodeUnitSet.space.complement().pcre2
        case 0x31...0x39:
            // A backreference when that many groups exist, else Annex B's legacy octal or identity escape.
            var j = i
            var n = 0
            while j < s.count, JSRegex.isDigit(s[j]), n <= 100_000 { n = n * 10 + Int(s[j] - 0x30); j += 1 }
            if n <= captureCount {
                i = j
                out += "(?i:\\g{\(n)})"
            } else if c >= 0x38 {
                i += 1
                try literal(UInt32(c))
            } else {
                let unit = characterEscape(c, inClass: false)!
                try literal(unit)
            }
        case 0x6B where !groupNames.isEmpty:  // \k<name>
            guard peek(1) == 0x3C else { throw Failure(message: "Invalid named reference") }
            var j = i + 2
            var name: [UInt16] = []
            while j < s.count, s[j] != 0x3E { name.append(s[j]); j += 1 }
            let text = String(decoding: name, as: UTF16.self)
            guard j < s.count, groupNames.contains(text) else { throw Failure(message: "Invalid named capture referenced") }
            i = j + 1
            out += "(?i:\\k<\(text)>)"
        default:
            // `\c` without a control letter is a backslash; the `c` is read again as itself.
            try literal(characterEscape(c, inClass: false)!)
        }
    }

    private mutating func classAtom() throws(Failure) -> ClassAtom {
        let c = s[i]
        guard c == 0x5C else {
            i += 1
            return .unit(UInt32(c))
        }
        i += 1
        guard let e = peek() else { throw Failure(message: "\\ at end of pattern") }
        switch e {
        case 0x64: i += 1; return .set(CodeUnitSet.digits)
        case 0x44: i += 1; return .set(CodeUnitSet.digits.complement())
        case 0x77: i += 1; return .set(CodeUnitSet.word)
        case 0x57: i += 1; return .set(CodeUnitSet.word.complement())
        case 0x73: i += 1; return .set(CodeUnitSet.space)
        case 0x53: i += 1; return .set(CodeUnitSet.space.complement())
        case 0x62: i += 1; return .unit(0x08)  // \b is backspace in a class
        case 0x2D: i += 1; return .unit(0x2D)
        default: return .unit(characterEscape(e, inClass: true)!)
        }
    }

    /// `[…]` after the `[`: the members (case-closed), as a PCRE2 class.
    private mutating func characterClass() throws(Failure) -> String {
        var negated = false
        if peek() == 0x5E {
            negated = true
            i += 1
        }
        var members = CodeUnitSet()
        var escapes = CodeUnitSet()
        func add(_ atom: ClassAtom) {
            switch atom {
            case .unit(let u): members.insert(u)
            case .set(let set): escapes.formUnion(set)
            }
        }
        while true {
            guard let c = peek() else { throw Failure(message: "Unterminated character class") }
            if c == 0x5D {
                i += 1
                break
            }
            let first = try classAtom()
            if peek() == 0x2D, let next = peek(1), next != 0x5D {
                i += 1
                let second = try classAtom()
                if case .unit(let a) = first, case .unit(let b) = second {
                    if a > b { throw Failure(message: "Range out of order in character class") }
                    members.insert(a...b)
                } else {
                    add(first)
                    members.insert(0x2D)
                    add(second)
                }
            } else {
                add(first)
            }
        }
        members.normalize()
        var set = members.caseClosed()
        set.formUnion(escapes)
        set.normalize()
        if negated { set = set.complement() }
        return set.pcre2
    }
}
