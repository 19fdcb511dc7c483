// Byte classes of RFC 9110/9112 as bit masks (constants, so no lazily initialised tables on the hot path).

enum ByteClass {
    /// tchar (RFC 9110 §5.6.2): the characters of a token (method, field name, coding, extension name).
    @inline(__always) static func isTokenChar(_ b: UInt8) -> Bool {
        b < 64 ? (0x03ff_6cfa_0000_0000 as UInt64) >> b & 1 != 0
            : b < 128 ? (0x57ff_ffff_c7ff_fffe as UInt64) >> (b &- 64) & 1 != 0 : false
    }

    /// field-vchar / obs-text and the whitespace allowed inside a field value: HTAB, SP, 0x21–0x7E, 0x80–0xFF.
    @inline(__always) static func isFieldValueChar(_ b: UInt8) -> Bool {
        b == 0x09 || (b >= 0x20 && b != 0x7F)
    }

    /// Bytes of a Host value: reg-name / IP-literal / port characters (unreserved, sub-delims, ':', '[', ']', '%').
    @inline(__always) static func isHostChar(_ b: UInt8) -> Bool {
        b < 64 ? (0x2fff_7ff2_0000_0000 as UInt64) >> b & 1 != 0
            : b < 128 ? (0x47ff_fffe_afff_fffe as UInt64) >> (b &- 64) & 1 != 0 : false
    }

    /// Request-target bytes: visible ASCII except '#' (a fragment is never sent on the wire, RFC 9112 §3.2;
    /// a raw '#' only splits the target differently in different parsers).
    @inline(__always) static func isTargetChar(_ b: UInt8) -> Bool {
        b > 0x20 && b < 0x7F && b != UInt8(ascii: "#")
    }

    @inline(__always) static func isOWS(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 }

    @inline(__always) static func isDigit(_ b: UInt8) -> Bool { b &- 0x30 < 10 }

    @inline(__always) static func hexValue(_ b: UInt8) -> Int? {
        switch b {
        case 0x30...0x39: return Int(b &- 0x30)
        case 0x41...0x46: return Int(b &- 0x41) + 10
        case 0x61...0x66: return Int(b &- 0x61) + 10
        default: return nil
        }
    }

    @inline(__always) static func lower(_ b: UInt8) -> UInt8 { b &- 0x41 < 26 ? b | 0x20 : b }

    /// A name byte as look-alike checks compare it: ASCII lower case, `_` and `.` as `-` (proxies that
    /// normalise names map them so; `FieldKind.isLookAlike`, the chunked decoder's trailer names).
    @inline(__always) static func lookAlikeFold(_ b: UInt8) -> UInt8 {
        let c = lower(b)
        return c == UInt8(ascii: "_") || c == UInt8(ascii: ".") ? UInt8(ascii: "-") : c
    }

    /// `lower` on each of eight bytes at once: 0x20 added to each byte in `A`...`Z`, every other byte kept
    /// (bytes from 0x80 up included: their top bit keeps them out of the range test).
    @inline(__always) static func lower8(_ word: UInt64) -> UInt64 {
        let low7 = word & 0x7F7F_7F7F_7F7F_7F7F
        // Per byte, with no carry between bytes (each sum stays below 0x100): top bit set when >= "A" ...
        let atLeastA = low7 &+ 0x3F3F_3F3F_3F3F_3F3F
        // ... and when > "Z".
        let aboveZ = low7 &+ 0x2525_2525_2525_2525
        let upper = (atLeastA ^ aboveZ) & ~word & 0x8080_8080_8080_8080
        return word | (upper >> 2)
    }
}

extension UnsafeRawBufferPointer {
    /// Index of the first byte in [from, end) that may not stand in a field value (a control other than HTAB,
    /// or DEL), or `end`. Eight bytes at a time while no byte is below 0x20 or DEL, so spaces inside a value
    /// (a user agent has a dozen) no longer drop it to a byte at a time; a word with a tab is looked at bytewise.
    @inline(__always) func firstNotFieldValue(from: Int, end: Int) -> Int {
        var i = from
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        while i + 8 <= end {
            let x = loadUnaligned(fromByteOffset: i, as: UInt64.self)
            let below20 = (x &- ones &* 0x20) & ~x & highs  // some byte < 0x20 (exact for "any")
            let d = x ^ (ones &* 0x7F)
            let isDel = (d &- ones) & ~d & highs  // some byte == 0x7F
            if below20 | isDel != 0 { break }
            i += 8
        }
        while i < end {
            let c = self[i]
            if (c < 0x20 && c != 0x09) || c == 0x7F { return i }
            i += 1
        }
        return end
    }

    /// Does bytes[range] equal `lowercase` ignoring ASCII case? `lowercase` must be lower-case ASCII.
    /// Eight bytes at a time from eight up, the last word overlapping (byte by byte, the names and tokens
    /// the parsers look for cost ~8 instructions a byte, callgrind).
    @inline(__always) func equalsIgnoringCase(_ range: Range<Int>, _ lowercase: StaticString) -> Bool {
        let n = range.count
        guard n == lowercase.utf8CodeUnitCount else { return false }
        let literal = UnsafeRawPointer(lowercase.utf8Start)
        guard n >= 8, let base = baseAddress else {
            var i = 0
            for p in range {
                if ByteClass.lower(self[p]) != literal.load(fromByteOffset: i, as: UInt8.self) { return false }
                i += 1
            }
            return true
        }
        let start = base + range.lowerBound
        var i = 0
        while i + 8 <= n {
            if ByteClass.lower8(start.loadUnaligned(fromByteOffset: i, as: UInt64.self)) != literal.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
                return false
            }
            i += 8
        }
        if i < n {
            return ByteClass.lower8(start.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)) == literal.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
        }
        return true
    }
}
