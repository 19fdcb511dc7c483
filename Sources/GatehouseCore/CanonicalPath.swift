#if canImport(Glibc)
import Glibc
#endif

/// Why a request was refused before any route was looked at. Always answered with `status` (400 or 414).
public struct RequestRejection: Error, Equatable, Sendable, CustomStringConvertible {
    public let status: Int
    public let message: String

    public init(_ message: String, status: Int = 400) {
        self.status = status
        self.message = message
    }

    public var description: String { message }
}

/// The one form of a request path that Gatehouse matches, decides on and forwards.
///
/// Built once per request from the raw path of the request-target:
/// - `%XX` escapes of unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded, every other escape is kept
///   with upper-case hex (so `%2561` stays `%2561`: nothing is ever decoded twice);
/// - encoded `/` or `\`, encoded or raw control characters and NUL, encoded U+2028 / U+2029 (line terminators
///   to JavaScript, whose `.` skips them), a raw `\`, raw non-ASCII bytes, malformed escapes and escapes that
///   are not valid, shortest-form UTF-8 (`%C0%AF`) are rejected;
/// - repeated slashes are merged and `.` / `..` segments removed (never above the root);
/// - a raw `;` is rejected unless allowed, because servers such as Tomcat read `/public/..;/admin` as
///   `/admin` while a matcher reads it as a path under `/public`;
/// - an encoded `;` (`%3B`) is rejected unless allowed: Tomcat/Jetty-style upstreams decode it and then take
///   what follows as path parameters (as Spring Security's StrictHttpFirewall and Traefik refuse it);
/// - an encoded `%` (`%25`) is rejected unless allowed: an upstream that decodes twice turns
///   `%252e%252e%252f` into `../`;
/// - a `..` segment after an empty one (`/a//../b`) is rejected: servers that merge slashes first read
///   `/b`, WHATWG URL parsing (Next.js, Clerk) reads `/a/b`.
public struct CanonicalPath: Sendable, Equatable, CustomStringConvertible {
    /// Always starts with `/`; ASCII only.
    public let value: String

    public var description: String { value }

    public static let maxLength = 8192

    public init(
        parsing raw: Substring, allowSemicolons: Bool = false, allowEncodedSemicolons: Bool = false, allowEncodedPercent: Bool = false
    ) throws(RequestRejection) {
        if raw.utf8.count <= CanonicalPath.maxLength, CanonicalPath.isAlreadyCanonical(raw.utf8, allowSemicolons: allowSemicolons) {
            // Most paths need no change: keep the text (no byte arrays, usually no copy).
            self.value = String(raw)
        } else {
            self.value = try CanonicalPath.canonicalize(
                Array(raw.utf8), allowSemicolons: allowSemicolons, allowEncodedSemicolons: allowEncodedSemicolons,
                allowEncodedPercent: allowEncodedPercent)
        }
    }

    /// True when `canonicalize` would return the bytes unchanged: only plain visible ASCII (no `%`, `\`, `#`,
    /// and no `;` unless allowed), no empty segment except a trailing one, no `.` or `..` segment.
    /// Property-tested against `canonicalize`.
    public static func isAlreadyCanonical(_ bytes: Substring.UTF8View, allowSemicolons: Bool) -> Bool {
        // On the contiguous bytes when there are (always, for native strings): walking the view cost ~0.2 µs.
        if let answer = bytes.withContiguousStorageIfAvailable({ isAlreadyCanonical($0, allowSemicolons: allowSemicolons) }) {
            return answer
        }
        return isAlreadyCanonical(Array(bytes), allowSemicolons: allowSemicolons)
    }

    /// `isAlreadyCanonical` on bytes already in hand (the data plane's request-target).
    public static func isAlreadyCanonicalBytes(_ bytes: UnsafeBufferPointer<UInt8>, allowSemicolons: Bool) -> Bool {
        isAlreadyCanonical(bytes, allowSemicolons: allowSemicolons)
    }

    static func isAlreadyCanonical<Bytes: Collection<UInt8>>(_ bytes: Bytes, allowSemicolons: Bool) -> Bool {
        guard bytes.first == UInt8(ascii: "/") else { return false }
        var segmentLength = 0
        var segmentDots = 0
        for b in bytes.dropFirst() {
            switch b {
            case UInt8(ascii: "/"):
                if segmentLength == 0 || segmentLength == segmentDots && segmentDots <= 2 { return false }
                segmentLength = 0
                segmentDots = 0
                continue
            case UInt8(ascii: "%"), UInt8(ascii: "\\"), UInt8(ascii: "#"):
                return false
            case UInt8(ascii: ";"):
                if !allowSemicolons { return false }
            case UInt8(ascii: "."):
                segmentDots += 1
            case 0x21...0x7E:
                break
            default:
                return false
            }
            segmentLength += 1
        }
        return !(segmentLength > 0 && segmentLength == segmentDots && segmentDots <= 2)
    }

    public init(
        parsing raw: String, allowSemicolons: Bool = false, allowEncodedSemicolons: Bool = false, allowEncodedPercent: Bool = false
    ) throws(RequestRejection) {
        try self.init(
            parsing: raw[...], allowSemicolons: allowSemicolons, allowEncodedSemicolons: allowEncodedSemicolons,
            allowEncodedPercent: allowEncodedPercent)
    }

    static func isUnreserved(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    private static let upperHex = Array("0123456789ABCDEF".utf8)

    /// Decodes and validates escapes, returning the path bytes with only "safe" escapes left.
    static func decodeEscapes(
        _ raw: [UInt8], allowSemicolons: Bool, allowEncodedSemicolons: Bool = false, allowEncodedPercent: Bool = false
    ) throws(RequestRejection) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(raw.count)
        var i = 0
        while i < raw.count {
            let b = raw[i]
            switch b {
            case UInt8(ascii: "%"):
                guard i + 2 < raw.count, let hi = hexValue(raw[i + 1]), let lo = hexValue(raw[i + 2]) else {
                    throw RequestRejection("malformed percent-encoding in path")
                }
                let decoded = hi << 4 | lo
                if decoded >= 0x80 {
                    // Collect the whole run of encoded high bytes and require strict UTF-8 (no overlong forms).
                    var run = [UInt8]()
                    var j = i
                    while j + 2 < raw.count, raw[j] == UInt8(ascii: "%"), let h = hexValue(raw[j + 1]),
                        let l = hexValue(raw[j + 2]), h << 4 | l >= 0x80
                    {
                        run.append(h << 4 | l)
                        j += 3
                    }
                    if j < raw.count, raw[j] == UInt8(ascii: "%"),
                        !(j + 2 < raw.count && hexValue(raw[j + 1]) != nil && hexValue(raw[j + 2]) != nil)
                    {
                        throw RequestRejection("malformed percent-encoding in path")
                    }
                    guard String(validating: run, as: UTF8.self) != nil else {
                        throw RequestRejection("percent-encoded bytes in path are not valid UTF-8 (overlong or invalid sequence)")
                    }
                    if containsUnicodeLineSeparator(run) {
                        throw RequestRejection("encoded line or paragraph separator (%E2%80%A8, %E2%80%A9) in path")
                    }
                    for byte in run {
                        out.append(UInt8(ascii: "%"))
                        out.append(upperHex[Int(byte >> 4)])
                        out.append(upperHex[Int(byte & 0xF)])
                    }
                    i = j
                    continue
                }
                if decoded == UInt8(ascii: "/") { throw RequestRejection("encoded slash (%2F) in path") }
                if decoded == UInt8(ascii: "\\") { throw RequestRejection("encoded backslash (%5C) in path") }
                if decoded < 0x20 || decoded == 0x7F {
                    throw RequestRejection("encoded control character or NUL in path")
                }
                if decoded == UInt8(ascii: ";") && !allowEncodedSemicolons {
                    throw RequestRejection("encoded semicolon (%3B) in path (see allow_path_encoded_semicolons)")
                }
                if decoded == UInt8(ascii: "%") && !allowEncodedPercent {
                    throw RequestRejection("encoded percent sign (%25) in path (see allow_path_encoded_percent)")
                }
                if isUnreserved(decoded) {
                    out.append(decoded)
                } else {
                    out.append(UInt8(ascii: "%"))
                    out.append(upperHex[Int(hi)])
                    out.append(upperHex[Int(lo)])
                }
                i += 3
            case UInt8(ascii: "\\"):
                throw RequestRejection("backslash in path")
            case UInt8(ascii: "#"):
                throw RequestRejection("fragment (#) in request-target")
            case UInt8(ascii: ";") where !allowSemicolons:
                throw RequestRejection("semicolon in path (path parameters are refused; see allow_path_semicolons)")
            case 0x00..<0x21, 0x7F:
                throw RequestRejection("control character, space or NUL in path")
            case 0x80...0xFF:
                throw RequestRejection("raw non-ASCII byte in path")
            default:
                out.append(b)
                i += 1
            }
        }
        return out
    }

    /// U+2028 / U+2029 (`E2 80 A8` / `E2 80 A9` in valid UTF-8): JavaScript's `.` does not match them, so
    /// `/admin(.*)` would miss `/admin/%E2%80%A9/x` in Clerk too and let it fall through to a later rule, while
    /// the upstream's catch-all route serves it. Refused like control characters, so `.` matches every accepted path.
    static func containsUnicodeLineSeparator(_ utf8: [UInt8]) -> Bool {
        var k = 0
        while k + 2 < utf8.count {
            if utf8[k] == 0xE2, utf8[k + 1] == 0x80, utf8[k + 2] == 0xA8 || utf8[k + 2] == 0xA9 { return true }
            k += 1
        }
        return false
    }

    static func canonicalize(
        _ raw: [UInt8], allowSemicolons: Bool, allowEncodedSemicolons: Bool = false, allowEncodedPercent: Bool = false
    ) throws(RequestRejection) -> String {
        guard raw.first == UInt8(ascii: "/") else { throw RequestRejection("path must start with '/'") }
        if raw.count > maxLength { throw RequestRejection("request-target too long", status: 414) }
        let decoded = try decodeEscapes(
            raw, allowSemicolons: allowSemicolons, allowEncodedSemicolons: allowEncodedSemicolons, allowEncodedPercent: allowEncodedPercent)

        // Split on '/', merge empty segments, resolve dot segments (RFC 3986 §5.2.4).
        var segments: [ArraySlice<UInt8>] = []
        var trailingSlash = false
        var sawEmptySegment = false
        var start = 1
        var i = 1
        let dot = UInt8(ascii: ".")
        while i <= decoded.count {
            if i == decoded.count || decoded[i] == UInt8(ascii: "/") {
                let segment = decoded[start..<i]
                let isLast = i == decoded.count
                if segment.isEmpty {
                    if isLast { trailingSlash = true } else { sawEmptySegment = true }
                } else if segment.count == 1 && segment.first == dot {
                    trailingSlash = true
                } else if segment.count == 2 && segment.first == dot && segment.last == dot {
                    if sawEmptySegment {
                        throw RequestRejection("'..' after an empty path segment ('//'): servers disagree on what it removes")
                    }
                    if !segments.isEmpty { segments.removeLast() }
                    trailingSlash = true
                } else {
                    segments.append(segment)
                    trailingSlash = false
                }
                start = i + 1
            }
            i += 1
        }
        var out = [UInt8]()
        out.reserveCapacity(decoded.count)
        for segment in segments {
            out.append(UInt8(ascii: "/"))
            out.append(contentsOf: segment)
        }
        if out.isEmpty || trailingSlash { out.append(UInt8(ascii: "/")) }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Searches by bytes that give the answers of the searches by characters (which walk grapheme clusters and
/// cost ~0.5 µs per request on the data plane, perf). An ASCII byte whose neighbours are ASCII is a character
/// of its own (no grapheme rule joins two ASCII scalars but CR LF, and these helpers never look for CR or LF);
/// any other neighbourhood takes the search by characters.
public enum ASCIISearch {
    /// `text.firstIndex(of: Character(ascii))`.
    public static func firstIndex(of ascii: UInt8, in text: Substring) -> Substring.Index? {
        precondition(ascii < 0x80 && ascii != 0x0D && ascii != 0x0A)
        let bytes = text.utf8
        guard let found = firstByte(ascii, in: bytes) else { return nil }
        let after = bytes.index(after: found)
        if (found == bytes.startIndex || bytes[bytes.index(before: found)] < 0x80) && (after == bytes.endIndex || bytes[after] < 0x80) {
            return found
        }
        return text.firstIndex(of: Character(Unicode.Scalar(ascii)))
    }

    /// Every byte is 0x21...0x7E. Eight bytes at a time (a token is ~800): a word has a byte below 0x21 when
    /// `(w - 0x21…) & ~w & 0x80…` is non-zero, one above 0x7E when `((w + 0x01…) | w) & 0x80…` is (exact tests
    /// for "some byte", as their bytes never borrow or carry into a byte that passes).
    public static func isVisibleASCII(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        var i = 0
        if let base = bytes.baseAddress {
            let raw = UnsafeRawPointer(base)
            while i + 8 <= bytes.count {
                let w = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                if (w &- ones &* 0x21) & ~w & highs != 0 || ((w &+ ones) | w) & highs != 0 { return false }
                i += 8
            }
        }
        while i < bytes.count {
            guard bytes[i] > 0x20 && bytes[i] < 0x7F else { return false }
            i += 1
        }
        return true
    }

    /// The first index of a byte, by memchr over the contiguous bytes (native and small strings are); the
    /// generic `firstIndex(of:)` stepped index by index (~500 instructions for a 15-byte path, callgrind).
    @inline(__always) static func firstByte(_ byte: UInt8, in bytes: Substring.UTF8View) -> Substring.UTF8View.Index? {
        let offset = bytes.withContiguousStorageIfAvailable { buffer -> Int? in
            guard let base = buffer.baseAddress, let hit = memchr(base, Int32(byte), buffer.count) else { return nil }
            return UnsafeRawPointer(hit) - UnsafeRawPointer(base)
        }
        switch offset {
        case .some(.some(let offset)): return bytes.index(bytes.startIndex, offsetBy: offset)
        case .some(.none): return nil
        case .none: return bytes.firstIndex(of: byte)
        }
    }

    /// `text.first == Character(ascii)`.
    public static func startsWith(_ ascii: UInt8, _ text: String) -> Bool {
        precondition(ascii < 0x80 && ascii != 0x0D && ascii != 0x0A)
        let bytes = text.utf8
        guard bytes.first == ascii else { return false }
        let second = bytes.index(after: bytes.startIndex)
        if second == bytes.endIndex || bytes[second] < 0x80 { return true }
        return text.first == Character(Unicode.Scalar(ascii))
    }
}
