/// Incremental parser of an upstream's response head, as the relay needs it: the status line, the fields
/// as byte ranges, and the body's framing (RFC 9112 §6.3). Same calling convention as `RequestHeadParser`.
/// A refusal means the upstream's answer cannot be relayed safely: 502, and the connection is not reused.
public struct ResponseHeadParser: Sendable {
    public let limits: HTTP1Limits
    /// The request was HEAD: the response has no body whatever its fields say.
    public var requestWasHead: Bool
    private var state = State.statusLine
    private var lineStart = 0
    /// The status line, once `state` is past it.
    private var version = HTTPVersion.http11
    private var status = 0
    private var reason = 0..<0
    private var fields: [FieldRange] = []
    private var facts = FieldFacts()

    /// Small on purpose, as `RequestHeadParser.State`: with the finished head as a payload, every switch on it
    /// (one per line) copied the whole head.
    private enum State {
        case statusLine
        case fields
        /// The head is complete; asked again, the same head is given.
        case complete(length: Int, body: ResponseBodyFraming)
        case refused(HTTP1Refusal)
    }

    public init(limits: HTTP1Limits = HTTP1Limits(), requestWasHead: Bool = false) {
        self.limits = limits
        self.requestWasHead = requestWasHead
        fields.reserveCapacity(16)
    }

    /// Ready for the next head, e.g. the final response after a 100 or 103.
    public mutating func reset(requestWasHead: Bool) {
        self.requestWasHead = requestWasHead
        state = .statusLine
        lineStart = 0
        (version, status, reason) = (.http11, 0, 0..<0)
        fields.removeAll(keepingCapacity: true)
        facts = FieldFacts()
    }

    public mutating func parse(_ bytes: [UInt8]) -> HeadParse<ResponseHead> {
        bytes.withUnsafeBytes { parse($0) }
    }

    public mutating func parse(_ b: UnsafeRawBufferPointer) -> HeadParse<ResponseHead> {
        let windowEnd = min(b.count, limits.maxHeadSize)
        while true {
            let scan: LineScan
            switch state {
            case .complete(let length, let body): return .complete(head(length: length, body: body))
            case .refused(let refusal): return .refused(refusal)
            case .statusLine, .fields: scan = FieldLines.scanLine(b, from: lineStart, windowEnd: windowEnd)
            }
            switch scan {
            case .incomplete:
                return b.count >= limits.maxHeadSize ? refuse(.headTooLarge) : .needMore
            case .refused(let refusal):
                return refuse(refusal)
            case .line(let end, let next):
                do throws(HTTP1Refusal) {
                    switch state {
                    case .complete(let length, let body): return .complete(head(length: length, body: body))
                    case .refused(let refusal): return .refused(refusal)
                    case .statusLine:
                        (version, status, reason) = try Self.statusLine(b, end)
                        state = .fields
                    case .fields:
                        if end == lineStart {
                            let body = try framing(b, version: version, status: status)
                            state = .complete(length: next, body: body)
                            return .complete(head(length: next, body: body))
                        }
                        if fields.count == limits.maxFieldCount { throw .tooManyFields }
                        let field = try FieldLines.parseField(b, lineStart, end, next: next)
                        try facts.take(b, field, index: fields.count, isRequest: false)
                        fields.append(field)
                    }
                    lineStart = next
                } catch {
                    return refuse(error)
                }
            }
        }
    }

    private func head(length: Int, body: ResponseBodyFraming) -> ResponseHead {
        ResponseHead(version: version, status: status, reason: reason, fields: fields, length: length, body: body,
                     connection: facts.connection)
    }

    /// Refused: asked again, the same refusal is given.
    private mutating func refuse(_ refusal: HTTP1Refusal) -> HeadParse<ResponseHead> {
        state = .refused(refusal)
        return .refused(refusal)
    }

    /// RFC 9112 §6.3, in its order; Content-Length next to Transfer-Encoding is refused rather than ignored.
    private func framing(_ b: UnsafeRawBufferPointer, version: HTTPVersion, status: Int) throws(HTTP1Refusal)
        -> ResponseBodyFraming
    {
        if status == 101 { return .switchingProtocols }
        if status < 200 { return .interim }
        if facts.transferEncoding != nil && facts.contentLength != nil { throw .contentLengthWithTransferEncoding }
        if requestWasHead || status == 204 || status == 304 { return .none }
        if let coding = facts.transferEncoding {
            if version == .http10 { throw .transferEncodingInHTTP10 }
            return FieldFacts.endsWithChunked(b, coding) ? .chunked : .untilClose
        }
        if let length = facts.contentLength { return .contentLength(length) }
        return .untilClose
    }

    /// HTTP-version SP 3DIGIT [SP reason-phrase]; the SP before an empty reason may be missing.
    static func statusLine(_ b: UnsafeRawBufferPointer, _ end: Int) throws(HTTP1Refusal)
        -> (HTTPVersion, Int, Range<Int>)
    {
        guard end >= 12, b[8] == 0x20 else { throw .invalidStatusLine(at: min(8, end)) }
        let version = try RequestHeadParser.version(b, 0..<8)
        var status = 0
        for p in 9..<12 {
            guard ByteClass.isDigit(b[p]) else { throw .invalidStatusLine(at: p) }
            status = status * 10 + Int(b[p] &- 0x30)
        }
        guard status >= 100 && status <= 599 else { throw .invalidStatusLine(at: 9) }
        if end == 12 { return (version, status, 12..<12) }
        guard b[12] == 0x20 else { throw .invalidStatusLine(at: 12) }
        for p in 13..<end where !ByteClass.isFieldValueChar(b[p]) {
            throw b[p] == 0x0D ? .bareCarriageReturn(at: p) : .invalidStatusLine(at: p)
        }
        return (version, status, 13..<end)
    }
}
