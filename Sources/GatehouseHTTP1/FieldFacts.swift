/// What the fields of one head say about framing and the connection, gathered line by line.
struct FieldFacts {
    var host: Int?
    var contentLength: Int?
    var transferEncoding: Range<Int>?
    var connection = ConnectionOptions()
    var upgrade: Int?
    var expectsContinue = false

    /// Takes field number `index`; a refusal names the first thing wrong, in byte order.
    @inline(__always) mutating func take(_ b: UnsafeRawBufferPointer, _ field: FieldRange, index: Int, isRequest: Bool)
        throws(HTTP1Refusal)
    {
        switch try FieldKind.of(b, field.name) {
        case .other: return
        case .host:
            guard isRequest else { return }
            if host != nil { throw .duplicateHost }
            guard !field.value.isEmpty else { throw .invalidHost }
            for p in field.value where !ByteClass.isHostChar(b[p]) { throw .invalidHost }
            host = index
        case .contentLength:
            if contentLength != nil { throw .duplicateContentLength }
            if Self.hasTrailingTab(b, field) { throw .invalidContentLength }
            contentLength = try Self.contentLength(b, field.value)
        case .transferEncoding:
            if transferEncoding != nil { throw .duplicateTransferEncoding }
            if Self.hasTrailingTab(b, field) { throw .unsupportedTransferEncoding }
            transferEncoding = field.value
        case .connection:
            try Self.connectionOptions(b, field.value, into: &connection)
        case .expect:
            guard isRequest else { return }
            if expectsContinue || !b.equalsIgnoringCase(field.value, "100-continue") { throw .unsupportedExpectation }
            expectsContinue = true
        case .upgrade:
            upgrade = index
        }
    }

    /// A tab after a framing value (`chunked\t`): legal OWS, but llhttp refuses it and a parser that trims only
    /// spaces would not see `chunked`, so framing values may be followed by spaces only.
    @inline(__always) static func hasTrailingTab(_ b: UnsafeRawBufferPointer, _ field: FieldRange) -> Bool {
        for p in field.value.upperBound..<(field.line.upperBound - 2) where b[p] == 0x09 { return true }
        return false
    }

    /// 1*DIGIT and nothing else: no sign, no list (`5, 5`), no inner whitespace; at most 18 digits, so it fits.
    @inline(__always) static func contentLength(_ b: UnsafeRawBufferPointer, _ value: Range<Int>) throws(HTTP1Refusal) -> Int {
        guard !value.isEmpty, value.count <= 18 else { throw .invalidContentLength }
        var n = 0
        for p in value {
            let d = b[p] &- 0x30
            guard d < 10 else { throw .invalidContentLength }
            n = n * 10 + Int(d)
        }
        return n
    }

    /// `#token` (RFC 9110 §5.6.1): empty elements are allowed, every other element must be a token.
    static func connectionOptions(_ b: UnsafeRawBufferPointer, _ value: Range<Int>, into options: inout ConnectionOptions)
        throws(HTTP1Refusal)
    {
        var i = value.lowerBound
        while i <= value.upperBound {
            var end = i
            while end < value.upperBound, b[end] != UInt8(ascii: ",") { end += 1 }
            var s = i
            var e = end
            while s < e, ByteClass.isOWS(b[s]) { s += 1 }
            while e > s, ByteClass.isOWS(b[e - 1]) { e -= 1 }
            if s < e {
                for p in s..<e where !ByteClass.isTokenChar(b[p]) { throw .invalidConnection }
                let token = s..<e
                if b.equalsIgnoringCase(token, "close") {
                    options.close = true
                } else if b.equalsIgnoringCase(token, "keep-alive") {
                    options.keepAlive = true
                } else if b.equalsIgnoringCase(token, "upgrade") {
                    options.upgrade = true
                } else {
                    options.otherTokens.append(token)
                }
            }
            i = end + 1
        }
    }

    /// The request rule: exactly `chunked` (RFC 9112 §6.1 lets a server answer 501 to codings it does not
    /// implement; a gateway that forwards `gzip, chunked` would need to agree with the upstream on both).
    static func isExactlyChunked(_ b: UnsafeRawBufferPointer, _ value: Range<Int>) -> Bool {
        b.equalsIgnoringCase(value, "chunked")
    }

    /// The response rule (RFC 9112 §6.3): chunked framing iff chunked is the final coding; any other
    /// Transfer-Encoding means the body runs until close.
    static func endsWithChunked(_ b: UnsafeRawBufferPointer, _ value: Range<Int>) -> Bool {
        var e = value.upperBound
        while e > value.lowerBound, ByteClass.isOWS(b[e - 1]) { e -= 1 }
        guard e - value.lowerBound >= 7 else { return false }
        let last = (e - 7)..<e
        guard b.equalsIgnoringCase(last, "chunked") else { return false }
        var s = last.lowerBound
        while s > value.lowerBound, ByteClass.isOWS(b[s - 1]) { s -= 1 }
        return s == value.lowerBound || b[s - 1] == UInt8(ascii: ",")
    }
}
