/// Base64url (RFC 4648 §5) without padding, as JWTs and JWKs use it.
///
/// Decoding is strict: `+`, `/`, `=`, whitespace and non-zero trailing bits are rejected, so every token has
/// exactly one encoding and a modified token cannot verify as the original.
public enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    private static let decodeTable: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = UInt8(i) }
        return table
    }()

    public static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        let input = Array(bytes)
        var out = [UInt8]()
        out.reserveCapacity((input.count * 4 + 2) / 3)
        var i = 0
        while i + 3 <= input.count {
            let n = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8 | UInt32(input[i + 2])
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
            out.append(alphabet[Int(n >> 6 & 63)])
            out.append(alphabet[Int(n & 63)])
            i += 3
        }
        let rest = input.count - i
        if rest == 1 {
            let n = UInt32(input[i]) << 16
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
        } else if rest == 2 {
            let n = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
            out.append(alphabet[Int(n >> 6 & 63)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Returns nil for anything that is not canonical unpadded base64url.
    public static func decode(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        // Leftover bits must be zero, or two different strings would decode to the same bytes.
        decode(text, requireZeroTrailingBits: true)
    }

    public static func decode(_ text: [UInt8]) -> [UInt8]? { decode(text[...], requireZeroTrailingBits: true) }

    // Concrete (not generic over Collection): called across modules on every token, an unspecialised generic
    // loop measured ~6x slower. Four characters to three bytes at a time into storage sized up front (appending
    // byte by byte was the top symbol of a token's decode, perf).
    private static func decode(_ text: ArraySlice<UInt8>, requireZeroTrailingBits: Bool) -> [UInt8]? {
        let count = text.count
        let rest = count % 4
        if rest == 1 { return nil }
        let outCount = count / 4 * 3 + (rest == 0 ? 0 : rest - 1)
        // Reserved, zero-filled, then written: `[UInt8](unsafeUninitializedCapacity:)` and `(repeating:count:)`
        // allocate through the standard library's never-inlined generic allocator, a runtime metadata lookup per
        // call (~530 instructions, three per token, callgrind); `reserveCapacity` allocates specialised.
        var out = [UInt8]()
        out.reserveCapacity(outCount)
        out.append(contentsOf: repeatElement(0, count: outCount))
        // The table read through a pointer: its 256 entries cover every byte, and the array's bounds check on
        // each of the four lookups per group cost ~1,500 instructions per token (callgrind).
        let valid = decodeTable.withUnsafeBufferPointer { table in
            text.withUnsafeBufferPointer { source in
                out.withUnsafeMutableBufferPointer { out -> Bool in
                    // Every table value is 0...63, or 0xFF for a byte outside the alphabet: OR-ed, a high bit means one was.
                    @inline(__always) func value(_ i: Int) -> UInt32 { UInt32(table[Int(source[i])]) }
                    var i = 0, o = 0
                    while i + 4 <= count {
                        let a = value(i), b = value(i + 1), c = value(i + 2), d = value(i + 3)
                        guard (a | b | c | d) & 0xC0 == 0 else { return false }
                        let word = a << 18 | b << 12 | c << 6 | d
                        out[o] = UInt8(truncatingIfNeeded: word >> 16)
                        out[o + 1] = UInt8(truncatingIfNeeded: word >> 8)
                        out[o + 2] = UInt8(truncatingIfNeeded: word)
                        i += 4
                        o += 3
                    }
                    if rest == 2 {
                        let a = value(i), b = value(i + 1)
                        guard (a | b) & 0xC0 == 0, !requireZeroTrailingBits || b & 0x0F == 0 else { return false }
                        out[o] = UInt8(truncatingIfNeeded: a << 2 | b >> 4)
                    } else if rest == 3 {
                        let a = value(i), b = value(i + 1), c = value(i + 2)
                        guard (a | b | c) & 0xC0 == 0, !requireZeroTrailingBits || c & 0x03 == 0 else { return false }
                        out[o] = UInt8(truncatingIfNeeded: a << 2 | b >> 4)
                        out[o + 1] = UInt8(truncatingIfNeeded: (b & 0x0F) << 4 | c >> 2)
                    }
                    return true
                }
            }
        }
        return valid ? out : nil
    }

    public static func decode(_ text: String) -> [UInt8]? { decode(Array(text.utf8)) }

    /// Standard base64 (with `+/` and optional padding) as found in publishable keys and PEM bodies.
    public static func decodeStandard(_ text: String) -> [UInt8]? {
        var chars = Array(text.utf8)
        while chars.last == UInt8(ascii: "=") { chars.removeLast() }
        for i in chars.indices {
            if chars[i] == UInt8(ascii: "+") { chars[i] = UInt8(ascii: "-") }
            else if chars[i] == UInt8(ascii: "/") { chars[i] = UInt8(ascii: "_") }
            else if chars[i] == UInt8(ascii: "-") || chars[i] == UInt8(ascii: "_") { return nil }
        }
        // Standard base64 in keys is not security-relevant in its trailing bits; tolerate them.
        return decode(chars[...], requireZeroTrailingBits: false)
    }
}
