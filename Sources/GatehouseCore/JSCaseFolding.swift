/// JavaScript's case-insensitive comparison for a regular expression with the `i` flag and without `u`
/// (ECMA-262 `Canonicalize`): a UTF-16 code unit stands for its simple upper case when that is one code unit,
/// except that a non-ASCII unit never becomes ASCII (so `ſ` does not match `s`, nor the Kelvin sign `k`).
/// PCRE2's own caseless mode folds by Unicode case sets (`ſ`≡`s`, `ß`≡`ẞ`), so route patterns are compiled
/// case-sensitively with every letter expanded to this table's class instead.
enum JSCaseFolding {
    /// `Canonicalize(u)` for every BMP code unit.
    static let canonical: [UInt16] = (0...0xFFFF).map { canonicalize(UInt16($0)) }

    /// Units sharing a canonical form with at least one other unit, keyed by that form.
    static let classes: [UInt16: [UInt16]] = {
        var members: [UInt16: [UInt16]] = [:]
        for u in 0...0xFFFF { members[canonical[u], default: []].append(UInt16(u)) }
        return members.filter { $0.value.count > 1 }
    }()

    private static func canonicalize(_ u: UInt16) -> UInt16 {
        guard let scalar = Unicode.Scalar(u) else { return u }  // a surrogate: left alone
        if u < 0x80 {
            return (u >= 0x61 && u <= 0x7A) ? u - 0x20 : u
        }
        let upper = Array(scalar.properties.uppercaseMapping.utf16)
        guard upper.count == 1 else { return u }
        if upper[0] < 0x80 { return u }
        return upper[0]
    }

    /// Every unit the `i` flag treats as equal to `u` (at least `u` itself).
    static func equivalents(_ u: UInt16) -> [UInt16] {
        if u < 0x80 {
            if u >= 0x61 && u <= 0x7A { return [u - 0x20, u] }
            if u >= 0x41 && u <= 0x5A { return [u, u + 0x20] }
            return [u]
        }
        return classes[canonical[Int(u)]] ?? [u]
    }
}

/// A set of UTF-16 code units (surrogates included) as sorted, disjoint ranges.
struct CodeUnitSet: Equatable {
    private(set) var ranges: [ClosedRange<UInt32>] = []

    static let maxUnit: UInt32 = 0xFFFF

    init(_ ranges: [ClosedRange<UInt32>] = []) {
        self.ranges = ranges
        normalize()
    }

    mutating func insert(_ r: ClosedRange<UInt32>) { ranges.append(r) }
    mutating func insert(_ u: UInt32) { ranges.append(u...u) }
    mutating func formUnion(_ other: CodeUnitSet) { ranges += other.ranges }

    mutating func normalize() {
        ranges.sort { $0.lowerBound < $1.lowerBound }
        var merged: [ClosedRange<UInt32>] = []
        for r in ranges {
            if let last = merged.last, r.lowerBound <= last.upperBound &+ 1 {
                merged[merged.count - 1] = last.lowerBound...max(last.upperBound, r.upperBound)
            } else {
                merged.append(r)
            }
        }
        ranges = merged
    }

    func complement() -> CodeUnitSet {
        var out: [ClosedRange<UInt32>] = []
        var next: UInt32 = 0
        for r in ranges {
            if r.lowerBound > next { out.append(next...(r.lowerBound - 1)) }
            next = r.upperBound + 1
        }
        if next <= CodeUnitSet.maxUnit { out.append(next...CodeUnitSet.maxUnit) }
        return CodeUnitSet(out)
    }

    /// The set closed under `JSCaseFolding`.
    func caseClosed() -> CodeUnitSet {
        var out = self
        for r in ranges {
            for u in r.lowerBound...r.upperBound {
                let list = JSCaseFolding.equivalents(UInt16(u))
                if list.count > 1 { for e in list { out.insert(UInt32(e)) } }
            }
        }
        out.normalize()
        return out
    }

    /// PCRE2 syntax: a class of `\x{…}` ranges, or a never-matching group for the empty set.
    var pcre2: String {
        if ranges.isEmpty { return "(?!)" }
        var s = "["
        for r in ranges {
            s += "\\x{" + String(r.lowerBound, radix: 16) + "}"
            if r.upperBound != r.lowerBound { s += "-\\x{" + String(r.upperBound, radix: 16) + "}" }
        }
        return s + "]"
    }

    // JavaScript's class escapes (without `u`: ASCII digits and word characters, Unicode white space).
    static let digits = CodeUnitSet([0x30...0x39])
    static let word = CodeUnitSet([0x30...0x39, 0x41...0x5A, 0x5F...0x5F, 0x61...0x7A])
    static let space = CodeUnitSet([
        0x09...0x0D, 0x20...0x20, 0xA0...0xA0, 0x1680...0x1680, 0x2000...0x200A, 0x2028...0x2029, 0x202F...0x202F,
        0x205F...0x205F, 0x3000...0x3000, 0xFEFF...0xFEFF,
    ])
    /// What `.` does not match: JavaScript's line terminators.
    static let lineTerminators = CodeUnitSet([0x0A...0x0A, 0x0D...0x0D, 0x2028...0x2029])
}
