/// Incremental, strict parser of one HTTP/1.1 request head (RFC 9112 §2–§7) into byte ranges.
///
/// Sans-IO: the caller keeps the connection's bytes in its own buffer and calls `parse` with the bytes from
/// the head's first byte to everything received so far, again with more bytes appended after `.needMore`.
/// Lines already checked are not looked at again, so a head split into many reads still costs one pass.
/// Nothing is copied: the result holds offsets into the caller's buffer. Call `reset()` before the next head.
///
/// The result is a function of the bytes alone, never of how they were split: a line is judged only once
/// its CRLF has arrived, and the head-size limit only looks at the first `maxHeadSize` bytes.
public struct RequestHeadParser: Sendable {
    public let limits: HTTP1Limits
    private var state = State.requestLine
    private var lineStart = 0
    /// The request line, once `state` is past it.
    private var line = RequestLine.none
    private var fields: [FieldRange] = []
    private var facts = FieldFacts()

    /// Small on purpose: `parse` switches on it once per line, and with the request line and the finished
    /// head as payloads each switch copied ~140 bytes (several memcpy per field line, seen in perf).
    private enum State {
        case requestLine
        case fields
        /// The head is complete (`length` bytes); asked again, the same head is given.
        case complete(length: Int)
        case refused(HTTP1Refusal)
    }

    struct RequestLine {
        var method: Range<Int>
        var knownMethod: HTTPMethod
        var target: Range<Int>
        var form: TargetForm
        var version: HTTPVersion

        static let none = RequestLine(method: 0..<0, knownMethod: .get, target: 0..<0, form: .origin, version: .http11)
    }

    public init(limits: HTTP1Limits = HTTP1Limits()) {
        self.limits = limits
        fields.reserveCapacity(16)
    }

    /// Ready for the next head (keeps the storage it has grown).
    public mutating func reset() {
        state = .requestLine
        lineStart = 0
        line = .none
        fields.removeAll(keepingCapacity: true)
        facts = FieldFacts()
    }

    public mutating func parse(_ bytes: [UInt8]) -> HeadParse<RequestHead> {
        bytes.withUnsafeBytes { parse($0) }
    }

    public mutating func parse(_ b: UnsafeRawBufferPointer) -> HeadParse<RequestHead> {
        let windowEnd = min(b.count, limits.maxHeadSize)
        while true {
            switch state {
            case .complete(let length):
                do throws(HTTP1Refusal) {
                    return .complete(try head(b, line, length: length))
                } catch {
                    return .refused(error)  // (not reached: the same head was complete before)
                }
            case .refused(let refusal):
                return .refused(refusal)
            case .requestLine:
                switch FieldLines.scanLine(b, from: lineStart, windowEnd: windowEnd) {
                case .incomplete:
                    guard b.count >= limits.maxHeadSize else { return .needMore }
                    return refuse(truncatedRequestLine(b, windowEnd))
                case .refused(let refusal):
                    return refuse(refusal)
                case .line(let end, let next):
                    do throws(HTTP1Refusal) {
                        line = try Self.requestLine(b, end, limits: limits)
                        state = .fields
                        lineStart = next
                    } catch {
                        return refuse(error)
                    }
                }
            case .fields:
                switch FieldLines.scanLine(b, from: lineStart, windowEnd: windowEnd) {
                case .incomplete:
                    return b.count >= limits.maxHeadSize ? refuse(.headTooLarge) : .needMore
                case .refused(let refusal):
                    return refuse(refusal)
                case .line(let end, let next):
                    do throws(HTTP1Refusal) {
                        if end == lineStart {
                            let head = try head(b, line, length: next)
                            state = .complete(length: next)
                            return .complete(head)
                        }
                        if fields.count == limits.maxFieldCount { throw .tooManyFields }
                        let field = try FieldLines.parseField(b, lineStart, end, next: next)
                        try facts.take(b, field, index: fields.count, isRequest: true)
                        fields.append(field)
                        lineStart = next
                    } catch {
                        return refuse(error)
                    }
                }
            }
        }
    }

    /// Refused: asked again, the same refusal is given.
    private mutating func refuse(_ refusal: HTTP1Refusal) -> HeadParse<RequestHead> {
        state = .refused(refusal)
        return .refused(refusal)
    }

    /// The request line did not end inside the window: 414 if the target alone is over its limit, else 431;
    /// a bad method still counts first, as it would on a complete line.
    private func truncatedRequestLine(_ b: UnsafeRawBufferPointer, _ windowEnd: Int) -> HTTP1Refusal {
        var i = 0
        while i < windowEnd, ByteClass.isTokenChar(b[i]) { i += 1 }
        guard i < windowEnd else { return .headTooLarge }
        do throws(HTTP1Refusal) {
            _ = try Self.method(b, tokenEnd: i, lineEnd: windowEnd)
        } catch {
            return error
        }
        let targetStart = i + 1
        var j = targetStart
        while j < windowEnd, b[j] != 0x20 { j += 1 }
        return j - targetStart > limits.maxTargetLength ? .targetTooLong : .headTooLarge
    }

    private func head(_ b: UnsafeRawBufferPointer, _ line: RequestLine, length: Int) throws(HTTP1Refusal) -> RequestHead {
        let body: RequestBodyFraming
        if let coding = facts.transferEncoding {
            if line.version == .http10 { throw .transferEncodingInHTTP10 }
            if facts.contentLength != nil { throw .contentLengthWithTransferEncoding }
            guard FieldFacts.isExactlyChunked(b, coding) else { throw .unsupportedTransferEncoding }
            body = .chunked
        } else if let length = facts.contentLength {
            body = .contentLength(length)
        } else {
            body = .none
        }
        if line.version == .http11 && facts.host == nil { throw .missingHost }
        return RequestHead(
            method: line.method, knownMethod: line.knownMethod, target: line.target, targetForm: line.form,
            version: line.version, fields: fields, length: length, host: facts.host, body: body,
            connection: facts.connection, upgrade: facts.upgrade, expectsContinue: facts.expectsContinue)
    }

    // MARK: request line

    /// method SP request-target SP HTTP-version, single spaces, nothing else (RFC 9112 §3).
    static func requestLine(_ b: UnsafeRawBufferPointer, _ end: Int, limits: HTTP1Limits) throws(HTTP1Refusal) -> RequestLine {
        var i = 0
        while i < end, ByteClass.isTokenChar(b[i]) { i += 1 }
        let (methodRange, known) = try method(b, tokenEnd: i, lineEnd: end)
        let targetStart = i + 1
        var j = targetStart
        while j < end, b[j] != 0x20 { j += 1 }
        let target = targetStart..<j
        if target.count > limits.maxTargetLength { throw .targetTooLong }
        guard !target.isEmpty else { throw .invalidRequestLine(at: targetStart) }
        for p in target where !ByteClass.isTargetChar(b[p]) {
            throw b[p] == 0x0D ? .bareCarriageReturn(at: p) : .invalidTarget(at: p)
        }
        guard j < end else { throw .invalidRequestLine(at: j) }
        let version = try self.version(b, (j + 1)..<end)
        return RequestLine(method: methodRange, knownMethod: known, target: target,
                           form: try form(b, target, method: known), version: version)
    }

    /// The method token [0, tokenEnd), which must be followed by a single SP: 400 if it is not a token
    /// followed by SP, 501 if it is a token we do not relay.
    static func method(_ b: UnsafeRawBufferPointer, tokenEnd i: Int, lineEnd end: Int) throws(HTTP1Refusal)
        -> (Range<Int>, HTTPMethod)
    {
        guard i > 0, i < end, b[i] == 0x20 else {
            if i < end, b[i] == 0x0D { throw .bareCarriageReturn(at: i) }
            throw .invalidRequestLine(at: i)
        }
        let range = 0..<i
        guard let known = method(b, range) ?? extensionMethod(b, range) else {
            if b.equalsExactly(range, "CONNECT") { throw .connectNotSupported }
            // `post` is not POST (RFC 9110 §9.1): a malformed request, as llhttp reads it, not an unknown method.
            if range.contains(where: { b[$0] >= UInt8(ascii: "a") && b[$0] <= UInt8(ascii: "z") }) { throw .lowercaseMethod }
            throw .unknownMethod
        }
        return (range, known)
    }

    static func method(_ b: UnsafeRawBufferPointer, _ r: Range<Int>) -> HTTPMethod? {
        @inline(__always) func eq(_ s: StaticString) -> Bool {
            guard r.count == s.utf8CodeUnitCount else { return false }
            var i = 0
            for p in r {
                if b[p] != s.utf8Start[i] { return false }
                i += 1
            }
            return true
        }
        switch r.count {
        case 3: return eq("GET") ? .get : eq("PUT") ? .put : nil
        case 4: return eq("POST") ? .post : eq("HEAD") ? .head : eq("COPY") ? .copy : eq("MOVE") ? .move : eq("LOCK") ? .lock : nil
        case 5: return eq("PATCH") ? .patch : eq("TRACE") ? .trace : eq("MKCOL") ? .mkcol : nil
        case 6: return eq("DELETE") ? .delete : eq("UNLOCK") ? .unlock : nil
        case 7: return eq("OPTIONS") ? .options : nil
        case 8: return eq("PROPFIND") ? .propfind : nil
        case 9: return eq("PROPPATCH") ? .proppatch : nil
        default: return nil
        }
    }

    /// llhttp's extension methods (all upper case): what an llhttp-based upstream reads as these methods.
    static let extensionMethods: [[UInt8]] = [
        "PURGE", "REPORT", "MKACTIVITY", "CHECKOUT", "MERGE", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE", "SEARCH", "LINK",
        "UNLINK", "BIND", "REBIND", "UNBIND", "ACL", "MKCALENDAR", "M-SEARCH", "SOURCE",
    ].map { Array($0.utf8) }

    static func extensionMethod(_ b: UnsafeRawBufferPointer, _ r: Range<Int>) -> HTTPMethod? {
        extensionMethods.contains { $0.count == r.count && $0.elementsEqual(b[r]) } ? .llhttpExtension : nil
    }

    /// `HTTP/1.1` or `HTTP/1.0`; another `HTTP/d.d` → 505; anything else → 400.
    static func version(_ b: UnsafeRawBufferPointer, _ r: Range<Int>) throws(HTTP1Refusal) -> HTTPVersion {
        let s = r.lowerBound
        guard r.count == 8, b.equalsExactly(s..<(s + 5), "HTTP/"), ByteClass.isDigit(b[s + 5]),
              b[s + 6] == UInt8(ascii: "."), ByteClass.isDigit(b[s + 7])
        else {
            for p in r where b[p] == 0x0D { throw .bareCarriageReturn(at: p) }
            throw .invalidVersion(at: s)
        }
        guard b[s + 5] == UInt8(ascii: "1") else { throw .unsupportedVersion }
        switch b[s + 7] {
        case UInt8(ascii: "1"): return .http11
        case UInt8(ascii: "0"): return .http10
        default: throw .unsupportedVersion
        }
    }

    /// origin-form, absolute-form (`http://` or `https://` with an authority), or `*` for OPTIONS.
    static func form(_ b: UnsafeRawBufferPointer, _ t: Range<Int>, method: HTTPMethod) throws(HTTP1Refusal) -> TargetForm {
        let first = b[t.lowerBound]
        if first == UInt8(ascii: "/") { return .origin }
        if first == UInt8(ascii: "*") {
            guard t.count == 1, method == .options else { throw .unsupportedTargetForm }
            return .asterisk
        }
        let schemeLength: Int
        if t.count > 7, b.equalsIgnoringCase(t.lowerBound..<(t.lowerBound + 7), "http://") {
            schemeLength = 7
        } else if t.count > 8, b.equalsIgnoringCase(t.lowerBound..<(t.lowerBound + 8), "https://") {
            schemeLength = 8
        } else {
            throw .unsupportedTargetForm
        }
        let authorityStart = t.lowerBound + schemeLength
        var e = authorityStart
        while e < t.upperBound, b[e] != UInt8(ascii: "/"), b[e] != UInt8(ascii: "?") { e += 1 }
        guard e > authorityStart else { throw .unsupportedTargetForm }
        for p in authorityStart..<e where !ByteClass.isHostChar(b[p]) { throw .unsupportedTargetForm }
        return .absolute(authority: authorityStart..<e)
    }
}

extension UnsafeRawBufferPointer {
    @inline(__always) func equalsExactly(_ range: Range<Int>, _ literal: StaticString) -> Bool {
        guard range.count == literal.utf8CodeUnitCount else { return false }
        var i = 0
        for p in range {
            if self[p] != literal.utf8Start[i] { return false }
            i += 1
        }
        return true
    }
}
