/// An ordered list of request or response header fields, names kept as sent.
public struct HeaderList: Sendable, Equatable, Sequence {
    public private(set) var fields: [(name: String, value: String)]

    public init(_ fields: [(name: String, value: String)] = []) {
        self.fields = fields
    }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { fields.makeIterator() }

    public var count: Int { fields.count }
    public var isEmpty: Bool { fields.isEmpty }

    /// All values of a field, compared case-insensitively by name.
    public func values(_ name: String) -> [String] {
        var found: [String] = []
        for i in fields.indices where asciiCaseInsensitiveEquals(fields[i].name, name) { found.append(fields[i].value) }
        return found
    }

    /// By index, not `for field in fields`: each element taken out was a copy of its two strings (retained and
    /// released), four to eight times per request.
    public func first(_ name: String) -> String? {
        for i in fields.indices where asciiCaseInsensitiveEquals(fields[i].name, name) { return fields[i].value }
        return nil
    }

    public func contains(_ name: String) -> Bool { first(name) != nil }

    /// How many fields have this name (compared case-insensitively), without collecting their values.
    public func count(of name: String) -> Int {
        var n = 0
        for field in fields where asciiCaseInsensitiveEquals(field.name, name) { n += 1 }
        return n
    }

    public mutating func reserveCapacity(_ capacity: Int) { fields.reserveCapacity(capacity) }

    /// Is there a field whose name satisfies `predicate`?
    public func contains(where predicate: (String) -> Bool) -> Bool { fields.contains { predicate($0.name) } }

    public mutating func append(_ name: String, _ value: String) { fields.append((name, value)) }

    public mutating func removeAll(where shouldRemove: (String) -> Bool) {
        fields.removeAll { shouldRemove($0.name) }
    }

    public static func == (lhs: HeaderList, rhs: HeaderList) -> Bool {
        lhs.fields.count == rhs.fields.count
            && zip(lhs.fields, rhs.fields).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }
}

@inline(__always)
func lowerASCII(_ b: UInt8) -> UInt8 {
    (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z")) ? b | 0x20 : b
}

/// Runs `body` on a string's UTF-8 bytes in place (small strings are copied to the stack, never the heap).
/// Byte loops over a buffer are several times faster than over `String.UTF8View` (seen in perf: the view's
/// iterator was among the top symbols of the proxy path).
@inline(__always)
func withUTF8Bytes<R>(_ s: String, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
    if let result = s.utf8.withContiguousStorageIfAvailable(body) { return result }
    var copy = s
    return copy.withUTF8(body)
}

/// Compares two strings byte by byte after mapping each byte with `fold`.
@inline(__always)
func bytesEqual(_ a: String, _ b: String, prefixOnly: Bool = false, fold: (UInt8) -> UInt8) -> Bool {
    let countA = a.utf8.count, countB = b.utf8.count
    guard prefixOnly ? countA >= countB : countA == countB else { return false }
    return withUTF8Bytes(a) { x in
        withUTF8Bytes(b) { y in
            for i in 0..<y.count where fold(x[i]) != fold(y[i]) { return false }
            return true
        }
    }
}

public func asciiCaseInsensitiveEquals(_ a: String, _ b: String) -> Bool {
    let countA = a.utf8.count
    guard countA == b.utf8.count else { return false }
    return withUTF8Bytes(a) { x in
        withUTF8Bytes(b) { y in asciiCaseInsensitiveEquals(UnsafeRawBufferPointer(x), UnsafeRawBufferPointer(y)) }
    }
}

/// Two equally long byte runs, equal once ASCII upper case is folded to lower case (other bytes as they are).
/// Eight bytes at a time: byte by byte it cost ~18 instructions per byte, ~350 for `authorization` (callgrind).
@inline(__always)
package func asciiCaseInsensitiveEquals(_ x: UnsafeRawBufferPointer, _ y: UnsafeRawBufferPointer) -> Bool {
    let count = x.count
    guard count == y.count else { return false }
    guard count >= 8, let p = x.baseAddress, let q = y.baseAddress else {
        for i in 0..<count where lowerASCII(x[i]) != lowerASCII(y[i]) { return false }
        return true
    }
    var offset = 0
    while offset + 8 <= count {
        if lowerASCII8(p.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            != lowerASCII8(q.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) { return false }
        offset += 8
    }
    // The last (overlapping) eight bytes cover the rest.
    if offset < count {
        return lowerASCII8(p.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self))
            == lowerASCII8(q.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self))
    }
    return true
}

/// `lowerASCII` on each of eight bytes at once: 0x20 added to each byte in `A`...`Z`, every other byte kept
/// (bytes from 0x80 up included: their top bit keeps them out of the range test). GatehouseHTTP1, which
/// depends on nothing, has the same fold (`ByteClass.lower8`); CaseInsensitiveEqualsTests hold both to it.
@inline(__always)
func lowerASCII8(_ word: UInt64) -> UInt64 {
    let low7 = word & 0x7F7F_7F7F_7F7F_7F7F
    // Per byte, no carry between bytes (each sum stays below 0x100): top bit set when the byte is >= "A" ...
    let atLeastA = low7 &+ 0x3F3F_3F3F_3F3F_3F3F
    // ... and when it is > "Z".
    let aboveZ = low7 &+ 0x2525_2525_2525_2525
    let upper = (atLeastA ^ aboveZ) & ~word & 0x8080_8080_8080_8080
    return word | (upper >> 2)
}

/// Calls `body` with each element of a comma-separated header list, trimmed of spaces and tabs, without
/// building an array of them.
public func forEachListElement(_ value: String, _ body: (String) -> Void) {
    let bytes = value.utf8
    var start = bytes.startIndex
    while true {
        let end = bytes[start...].firstIndex(of: UInt8(ascii: ",")) ?? bytes.endIndex
        body(value[start..<end].trimmingASCIIWhitespace())
        guard end < bytes.endIndex else { return }
        start = bytes.index(after: end)
    }
}

extension String {
    /// ASCII-only lowercasing (HTTP names and hosts); non-ASCII bytes are left alone.
    public var asciiLowercased: String {
        mappingASCII(lowerASCII)
    }

    /// Byte-wise ASCII mapping without an intermediate array: names up to 15 bytes (most header names) stay
    /// in a small string and allocate nothing. Only used with mappings that keep valid UTF-8 valid.
    func mappingASCII(_ transform: (UInt8) -> UInt8) -> String {
        let source = utf8
        return String(unsafeUninitializedCapacity: source.count) { buffer in
            var i = 0
            for b in source {
                buffer[i] = b < 0x80 ? transform(b) : b
                i += 1
            }
            return i
        }
    }
}

/// Header names compared the way Gatehouse strips identity look-alikes: lowercased, `_` and `.` folded to `-`.
/// `X_Gatehouse_User_Id`, `x.gatehouse.user.id` and `X-GATEHOUSE-USER-ID` are all the same name.
public func normalizedHeaderName(_ name: String) -> String {
    name.mappingASCII(foldHeaderNameByte)
}

@inline(__always)
func foldHeaderNameByte(_ b: UInt8) -> UInt8 {
    if b == UInt8(ascii: "_") || b == UInt8(ascii: ".") { return UInt8(ascii: "-") }
    return lowerASCII(b)
}

/// `normalizedHeaderName(a) == normalizedHeaderName(b)`, without building either (this runs for every
/// header field of every request).
public func headerNamesEquivalent(_ a: String, _ b: String) -> Bool {
    bytesEqual(a, b, fold: foldHeaderNameByte)
}

/// `normalizedHeaderName(name).hasPrefix(prefix)` for a normalised `prefix`, without building the name.
public func headerName(_ name: String, hasNormalizedPrefix prefix: String) -> Bool {
    bytesEqual(name, prefix, prefixOnly: true, fold: foldHeaderNameByte)
}

public enum HTTPSyntax {
    /// RFC 9110 `tchar`.
    static func isTokenChar(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
            UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
            UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    static func isToken(_ s: String) -> Bool {
        !s.isEmpty && withUTF8Bytes(s) { $0.allSatisfy(isTokenChar) }
    }

    /// Field values: visible characters, space, tab and obs-text; never CR, LF, NUL or other controls.
    public static func isValidFieldValue(_ s: String) -> Bool {
        withUTF8Bytes(s) { bytes in
            // Eight bytes at a time (a bearer token is ~800): a word whose bytes are all 0x20...0x7E is valid
            // as it is; any other word is judged byte by byte, so the answer is the byte rule's.
            let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
            var i = 0
            if let base = bytes.baseAddress {
                let raw = UnsafeRawPointer(base)
                while i + 8 <= bytes.count {
                    let w = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                    let below20 = (w &- ones &* 0x20) & ~w & highs
                    let del = w ^ (ones &* 0x7F)
                    let is7F = (del &- ones) & ~del & highs
                    if w & highs != 0 || below20 != 0 || is7F != 0 {
                        for j in i..<(i + 8) where !isFieldValueByte(bytes[j]) { return false }
                    }
                    i += 8
                }
            }
            while i < bytes.count {
                if !isFieldValueByte(bytes[i]) { return false }
                i += 1
            }
            return true
        }
    }

    /// The rule `isValidFieldValue` applies to each byte: tab, or visible/space/obs-text but not DEL.
    @inline(__always) static func isFieldValueByte(_ b: UInt8) -> Bool {
        b == 0x09 || (b >= 0x20 && b != 0x7F)
    }
}
