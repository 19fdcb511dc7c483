import GatehouseHTTP1
import Testing

/// Review of 98d815e (field values checked eight bytes at a time, trimmed from the end): random values, mostly
/// spaces, tabs and visible bytes with a control, DEL, NUL or CR now and then, at every alignment (the name's
/// length moves the value), against RFC 9110 §5.5 written out here byte by byte: the first byte that is not
/// HTAB, SP, VCHAR or obs-text refuses at its offset (a CR as a bare CR); otherwise the value is the bytes
/// between the leading and trailing whitespace.
@Suite("Review3: field values against a byte-by-byte reference")
struct Review3FieldValueDifferentialTests {
    struct SplitMix {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    static func randomByte(_ r: inout SplitMix) -> UInt8 {
        switch r.below(100) {
        case 0..<30: return 0x20
        case 30..<40: return 0x09
        case 40..<85: return UInt8(0x21 + r.below(0x7E - 0x21 + 1))
        case 85..<93: return UInt8(0x80 + r.below(0x80))
        case 93..<95: return 0x7F
        case 95..<97: return 0x0D
        case 97..<98: return 0x00
        default: return [0x01, 0x08, 0x0B, 0x0C, 0x1B, 0x1F][r.below(6)]
        }
    }

    /// What RFC 9110 says of `value` placed at `start`: the refusal, or the value's range.
    static func reference(_ value: [UInt8], at start: Int) -> Result<Range<Int>, HTTP1Refusal> {
        var i = 0
        while i < value.count, value[i] == 0x20 || value[i] == 0x09 { i += 1 }
        let first = i
        for (k, c) in value.enumerated() where k >= first {
            let ok = c == 0x09 || c == 0x20 || (c >= 0x21 && c <= 0x7E) || c >= 0x80
            if !ok { return .failure(c == 0x0D ? .bareCarriageReturn(at: start + k) : .invalidFieldValue(at: start + k)) }
        }
        var end = value.count
        while end > first, value[end - 1] == 0x20 || value[end - 1] == 0x09 { end -= 1 }
        return .success((start + first)..<(start + end))
    }

    @Test func randomValuesAtEveryAlignment() {
        var r = SplitMix(state: 0x5EED_0003)
        var mismatches: [String] = []
        for n in 0..<20_000 {
            let nameLength = 1 + n % 16
            let length = r.below(48)
            var value = (0..<length).map { _ in Self.randomByte(&r) }
            // A CR right before the line's own CRLF would read as the line end plus a bare CR: kept inside.
            if value.last == 0x0D { value[value.count - 1] = 0x41 }
            let prefix = Array("GET / HTTP/1.1\r\nHost: a\r\n".utf8) + Array(repeating: UInt8(ascii: "y"), count: nameLength) + [UInt8(ascii: ":")]
            let bytes = prefix + value + Array("\r\n\r\n".utf8)
            var parser = RequestHeadParser()
            let got: Result<Range<Int>, HTTP1Refusal>
            switch parser.parse(bytes) {
            case .complete(let head): got = .success(head.fields[1].value)
            case .refused(let refusal): got = .failure(refusal)
            case .needMore: got = .failure(.headTooLarge)
            }
            let expected = Self.reference(value, at: prefix.count)
            if "\(got)" != "\(expected)" { mismatches.append("\(value): \(got) vs \(expected)") }
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(5))")
    }
}
