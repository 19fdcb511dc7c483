/// The form of the path that route patterns are matched against: the canonical path as Clerk's matcher
/// sees it, `decodeURI` applied (every escape decoded except those of `; / ? : @ & = + $ , #`). Repeated
/// slashes are already merged in the canonical path, and decoding cannot create one (`%2F` is refused and
/// would stay encoded). Only matching uses this form; the canonical path is what is forwarded.
enum DecodedPath {
    /// Calls `body` with the decoded bytes (valid UTF-8), or with nil if the path is not canonical (which
    /// `CanonicalPath` rules out; the caller must then refuse). Paths without `%` are passed as they are.
    static func with<R>(_ path: CanonicalPath, _ body: (UnsafeBufferPointer<UInt8>?) -> R) -> R {
        var text = path.value
        return text.withUTF8 { bytes in
            guard bytes.contains(UInt8(ascii: "%")) else { return body(bytes) }
            guard let decoded = decode(bytes) else { return body(nil) }
            return decoded.withUnsafeBufferPointer { body($0) }
        }
    }

    /// `decodeURI` on a canonical path; nil on a malformed escape or invalid UTF-8.
    static func decode(_ bytes: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            guard b == UInt8(ascii: "%") else {
                out.append(b)
                i += 1
                continue
            }
            guard i + 2 < bytes.count, let hi = hexValue(bytes[i + 1]), let lo = hexValue(bytes[i + 2]) else { return nil }
            let value = hi << 4 | lo
            if value < 0x80 && isReservedURI(value) {
                out.append(contentsOf: bytes[i..<(i + 3)])
            } else {
                out.append(value)
            }
            i += 3
        }
        guard String(validating: out, as: UTF8.self) != nil else { return nil }
        return out
    }

    /// ECMA-262's reservedURISet plus `#`, which `decodeURI` leaves encoded.
    static func isReservedURI(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: ";"), UInt8(ascii: "/"), UInt8(ascii: "?"), UInt8(ascii: ":"), UInt8(ascii: "@"), UInt8(ascii: "&"),
            UInt8(ascii: "="), UInt8(ascii: "+"), UInt8(ascii: "$"), UInt8(ascii: ","), UInt8(ascii: "#"):
            return true
        default:
            return false
        }
    }
}
