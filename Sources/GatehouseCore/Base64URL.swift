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
    // loop measured ~6x slower.
    private static func decode(_ text: ArraySlice<UInt8>, requireZeroTrailingBits: Bool) -> [UInt8]? {
        let count = text.count
        if count % 4 == 1 { return nil }
        var out = [UInt8]()
        out.reserveCapacity(count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        let table = decodeTable
        for c in text {
            let v = table[Int(c)]
            if v == 0xFF { return nil }
            accumulator = accumulator << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
                accumulator &= (1 << UInt32(bits)) - 1
            }
        }
        if requireZeroTrailingBits && accumulator != 0 { return nil }
        return out
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
