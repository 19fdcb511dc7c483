#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where the next line of a head ends, searched only inside the head-size window so the answer depends on
/// the bytes, never on how they were split.
enum LineScan {
    /// Content is [start, contentEnd); the next line starts at `next` (after CRLF).
    case line(contentEnd: Int, next: Int)
    case incomplete
    case refused(HTTP1Refusal)
}

enum FieldLines {
    @inline(__always) static func scanLine(_ b: UnsafeRawBufferPointer, from start: Int, windowEnd: Int) -> LineScan {
        guard start < windowEnd, let base = b.baseAddress else { return .incomplete }
        guard let hit = memchr(base + start, 0x0A, windowEnd - start) else { return .incomplete }
        let lf = UnsafeRawPointer(hit) - base
        if lf == start || b[lf - 1] != 0x0D { return .refused(.bareLineFeed(at: lf)) }
        return .line(contentEnd: lf - 1, next: lf + 1)
    }

    /// Splits and checks a field line [start, end) (no CRLF): a token name, ':' with no whitespace before it,
    /// and a value of field-vchars with the surrounding whitespace trimmed.
    @inline(__always) static func parseField(_ b: UnsafeRawBufferPointer, _ start: Int, _ end: Int, next: Int)
        throws(HTTP1Refusal) -> FieldRange
    {
        var i = start
        if ByteClass.isOWS(b[i]) { throw .obsoleteLineFolding(at: i) }
        while i < end, ByteClass.isTokenChar(b[i]) { i += 1 }
        guard i < end else { throw .missingColon(at: end) }
        let c = b[i]
        if c != UInt8(ascii: ":") {
            if ByteClass.isOWS(c) { throw .whitespaceBeforeColon(at: i) }
            if c == 0x0D { throw .bareCarriageReturn(at: i) }
            throw .invalidFieldName(at: i)
        }
        if i == start { throw .invalidFieldName(at: i) }
        let nameEnd = i
        i += 1
        while i < end, ByteClass.isOWS(b[i]) { i += 1 }
        let valueStart = i
        // Every byte is a field-vchar, obs-text, SP or HTAB; the first that is not is the refusal.
        i = b.firstNotFieldValue(from: i, end: end)
        if i < end {
            let v = b[i]
            throw v == 0x0D ? .bareCarriageReturn(at: i) : .invalidFieldValue(at: i)
        }
        // The value ends after its last visible byte (all others are SP or HTAB now).
        var valueEnd = end
        while valueEnd > valueStart, ByteClass.isOWS(b[valueEnd - 1]) { valueEnd -= 1 }
        return FieldRange(name: start..<nameEnd, value: valueStart..<valueEnd, line: start..<next)
    }
}

/// The fields whose meaning the parser needs (framing, connection handling) or that must not be smuggled.
enum FieldKind {
    case other, host, contentLength, transferEncoding, connection, expect, upgrade

    @inline(__always) static func of(_ b: UnsafeRawBufferPointer, _ name: Range<Int>) throws(HTTP1Refusal) -> FieldKind {
        switch name.count {
        case 4: if b.equalsIgnoringCase(name, "host") { return .host }
        case 6: if b.equalsIgnoringCase(name, "expect") { return .expect }
        case 7: if b.equalsIgnoringCase(name, "upgrade") { return .upgrade }
        case 10: if b.equalsIgnoringCase(name, "connection") { return .connection }
        case 14: if b.equalsIgnoringCase(name, "content-length") { return .contentLength }
        case 17: if b.equalsIgnoringCase(name, "transfer-encoding") { return .transferEncoding }
        default: break
        }
        if isLookAlike(b, name) { throw .lookAlikeFieldName(at: name.lowerBound) }
        return .other
    }

    /// Names that fold (`_`, `.` → `-`, any case) onto a field that frames, routes or shapes the connection.
    static let guarded: [StaticString] = [
        "host", "content-length", "transfer-encoding", "connection", "upgrade", "expect", "te", "trailer",
        "keep-alive", "proxy-connection",
    ]

    @inline(__always) static func isLookAlike(_ b: UnsafeRawBufferPointer, _ name: Range<Int>) -> Bool {
        guard hasFoldingByte(b, name) else { return false }
        for literal in guarded where literal.utf8CodeUnitCount == name.count {
            var i = 0
            var same = true
            for p in name {
                if ByteClass.lookAlikeFold(b[p]) != literal.utf8Start[i] { same = false; break }
                i += 1
            }
            if same { return true }
        }
        return false
    }

    /// Whether the name holds a `_` or a `.` (almost no name does, so this runs for every field): eight bytes
    /// at a time, the last word overlapping the one before it, so no byte-by-byte tail.
    @inline(__always) static func hasFoldingByte(_ b: UnsafeRawBufferPointer, _ name: Range<Int>) -> Bool {
        let n = name.count
        guard n >= 8 else {
            for p in name where b[p] == UInt8(ascii: "_") || b[p] == UInt8(ascii: ".") { return true }
            return false
        }
        var i = name.lowerBound
        while true {
            if i > name.upperBound - 8 { i = name.upperBound - 8 }
            if wordHasFoldingByte(b.loadUnaligned(fromByteOffset: i, as: UInt64.self)) { return true }
            i += 8
            if i >= name.upperBound { return false }
        }
    }

    /// Some byte of `x` is `_` (0x5F) or `.` (0x2E): the exact "has a zero byte" test on `x` xor each.
    @inline(__always) static func wordHasFoldingByte(_ x: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let u = x ^ (ones &* 0x5F)
        let d = x ^ (ones &* 0x2E)
        return ((u &- ones) & ~u | (d &- ones) & ~d) & highs != 0
    }
}
