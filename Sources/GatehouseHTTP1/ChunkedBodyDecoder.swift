/// Incremental decoder of the chunked transfer coding (RFC 9112 §7.1), strict:
/// - chunk-size is 1*HEXDIG with no whitespace, up to `maxChunkSize`;
/// - extensions are `;token[=token|quoted-string]` with no whitespace (RFC's BWS is refused, as llhttp does);
/// - every line ends in CRLF, chunk data is followed by exactly CRLF;
/// - trailer fields follow the head's field rules; framing and routing fields in trailers are refused.
/// Data is reported as ranges of the caller's buffer; framing bytes are consumed and never reported.
/// Refusal offsets (`at:`) count from the first byte of the body.
public struct ChunkedBodyDecoder: Sendable {
    public let limits: HTTP1Limits
    private var state = State.sizeStart
    private var size = 0
    private var lineLength = 0
    private var trailerBytes = 0
    private var trailerFields = 0
    /// The current trailer name, folded, while it is short enough to be one of the guarded names. Inline,
    /// not an array: an array made the decoder (and `BodyDecoder`, held in every exchange's state) a type
    /// with a reference, so each copy of it went through value witnesses (~800 instructions per proxied
    /// exchange, callgrind).
    private var trailerName = FoldedShortName()
    /// Body bytes (framing included) decoded before the current call: refusal offsets count from the body's
    /// first byte, so they do not depend on how the body was split.
    private var bodyOffset = 0

    private enum State {
        case sizeStart, size, extNameStart, extName, extValueStart, extToken, quoted, quotedEscape, afterQuoted
        case sizeLF
        case data(remaining: Int)
        case dataCR, dataLF
        case trailerLineStart, trailerName, trailerValue, trailerLF, finalLF
        case done
    }

    public init(limits: HTTP1Limits = HTTP1Limits()) {
        self.limits = limits
    }

    public mutating func decode(_ b: UnsafeRawBufferPointer, from start: Int) -> BodyEvent {
        let event = decodeStep(b, from: start)
        switch event {
        case .data(let r): bodyOffset += r.upperBound - start
        case .needMore: bodyOffset += b.count - start
        case .end(let at): bodyOffset += at - start
        case .refused: break
        }
        return event
    }

    private mutating func decodeStep(_ b: UnsafeRawBufferPointer, from start: Int) -> BodyEvent {
        var i = start
        while i < b.count {
            if case .data(let remaining) = state {
                let take = min(remaining, b.count - i)
                state = take == remaining ? .dataCR : .data(remaining: remaining - take)
                return .data(i..<(i + take))
            }
            let c = b[i]
            do throws(HTTP1Refusal) {
                if try step(c, at: bodyOffset + i - start) { return .end(at: i + 1) }
            } catch {
                state = .done
                return .refused(error)
            }
            i += 1
        }
        return .needMore
    }

    /// One framing byte; true when it ended the body.
    @inline(__always) private mutating func step(_ c: UInt8, at i: Int) throws(HTTP1Refusal) -> Bool {
        switch state {
        case .sizeStart, .size, .extNameStart, .extName, .extValueStart, .extToken, .quoted, .quotedEscape, .afterQuoted:
            lineLength += 1
            if lineLength > limits.maxChunkLineLength { throw .chunkLineTooLong }
        default: break
        }
        switch state {
        case .sizeStart:
            guard let d = ByteClass.hexValue(c) else { throw .invalidChunkSize(at: i) }
            size = d
            state = .size
        case .size:
            if let d = ByteClass.hexValue(c) {
                guard size <= (limits.maxChunkSize - d) / 16 else { throw .chunkTooLarge }
                size = size * 16 + d
            } else if c == UInt8(ascii: ";") {
                state = .extNameStart
            } else if c == 0x0D {
                state = .sizeLF
            } else {
                throw .invalidChunkSize(at: i)
            }
        case .extNameStart:
            guard ByteClass.isTokenChar(c) else { throw .invalidChunkExtension(at: i) }
            state = .extName
        case .extName:
            if ByteClass.isTokenChar(c) {
            } else if c == UInt8(ascii: "=") {
                state = .extValueStart
            } else {
                try endOfExtension(c, at: i)
            }
        case .extValueStart:
            if c == UInt8(ascii: "\"") {
                state = .quoted
            } else if ByteClass.isTokenChar(c) {
                state = .extToken
            } else {
                throw .invalidChunkExtension(at: i)
            }
        case .extToken:
            if !ByteClass.isTokenChar(c) { try endOfExtension(c, at: i) }
        case .quoted:
            if c == UInt8(ascii: "\"") {
                state = .afterQuoted
            } else if c == UInt8(ascii: "\\") {
                state = .quotedEscape
            } else if !ByteClass.isFieldValueChar(c) {
                throw .invalidChunkExtension(at: i)
            }
        case .quotedEscape:
            guard ByteClass.isFieldValueChar(c) else { throw .invalidChunkExtension(at: i) }
            state = .quoted
        case .afterQuoted:
            try endOfExtension(c, at: i)
        case .sizeLF:
            guard c == 0x0A else { throw .bareCarriageReturn(at: i - 1) }
            lineLength = 0
            state = size == 0 ? .trailerLineStart : .data(remaining: size)
        case .data:
            preconditionFailure("data is consumed in bulk")
        case .dataCR:
            guard c == 0x0D else { throw .invalidChunkEnd(at: i) }
            state = .dataLF
        case .dataLF:
            guard c == 0x0A else { throw .invalidChunkEnd(at: i) }
            state = .sizeStart
        case .trailerLineStart, .trailerName, .trailerValue, .trailerLF, .finalLF:
            trailerBytes += 1
            if trailerBytes > limits.maxTrailerSize { throw .trailerTooLarge }
            return try trailerStep(c, at: i)
        case .done:
            throw .truncatedBody
        }
        return false
    }

    /// After an extension name or value: another extension, or the end of the size line.
    @inline(__always) private mutating func endOfExtension(_ c: UInt8, at i: Int) throws(HTTP1Refusal) {
        if c == UInt8(ascii: ";") {
            state = .extNameStart
        } else if c == 0x0D {
            state = .sizeLF
        } else {
            throw .invalidChunkExtension(at: i)
        }
    }

    private mutating func trailerStep(_ c: UInt8, at i: Int) throws(HTTP1Refusal) -> Bool {
        switch state {
        case .trailerLineStart:
            if c == 0x0D {
                state = .finalLF
            } else if ByteClass.isTokenChar(c) {
                trailerFields += 1
                if trailerFields > limits.maxFieldCount { throw .tooManyFields }
                trailerName = FoldedShortName()
                trailerName.append(c)
                state = .trailerName
            } else if ByteClass.isOWS(c) {
                throw .obsoleteLineFolding(at: i)
            } else if c == 0x0A {
                throw .bareLineFeed(at: i)
            } else {
                throw .invalidFieldName(at: i)
            }
        case .trailerName:
            if ByteClass.isTokenChar(c) {
                trailerName.append(c)
            } else if c == UInt8(ascii: ":") {
                if Self.isForbiddenTrailer(trailerName) { throw .forbiddenTrailerField }
                state = .trailerValue
            } else if ByteClass.isOWS(c) {
                throw .whitespaceBeforeColon(at: i)
            } else {
                throw .invalidFieldName(at: i)
            }
        case .trailerValue:
            if c == 0x0D {
                state = .trailerLF
            } else if !ByteClass.isFieldValueChar(c) {
                throw c == 0x0A ? .bareLineFeed(at: i) : .invalidFieldValue(at: i)
            }
        case .trailerLF:
            guard c == 0x0A else { throw .bareCarriageReturn(at: i - 1) }
            state = .trailerLineStart
        case .finalLF:
            guard c == 0x0A else { throw .bareCarriageReturn(at: i - 1) }
            state = .done
            return true
        default:
            break
        }
        return false
    }

    /// Fields that must not arrive after the body (RFC 9110 §6.5.1), and their `_`/`.` look-alikes.
    static func isForbiddenTrailer(_ name: FoldedShortName) -> Bool {
        FieldKind.guarded.contains { name.equals($0) }
    }
}

/// A field name as trailer checks compare it: ASCII lower case, `_` and `.` folded to `-`, kept in place up to
/// `capacity` bytes (longer than any guarded name); a longer name is only remembered as too long.
struct FoldedShortName: Sendable {
    static let capacity = 24
    private var words: (UInt64, UInt64, UInt64) = (0, 0, 0)
    /// Bytes appended, up to `capacity + 1` (then: longer than `capacity`).
    private(set) var count = 0

    mutating func append(_ byte: UInt8) {
        guard count < Self.capacity else {
            count = Self.capacity + 1
            return
        }
        let c = ByteClass.lookAlikeFold(byte)
        withUnsafeMutableBytes(of: &words) { $0[count] = c }
        count += 1
    }

    /// Equal to `literal` (lower case, with `-`), byte for byte.
    func equals(_ literal: StaticString) -> Bool {
        let n = literal.utf8CodeUnitCount
        guard n == count, n <= Self.capacity else { return false }
        return withUnsafeBytes(of: words) { stored in
            for i in 0..<n where stored[i] != literal.utf8Start[i] { return false }
            return true
        }
    }
}
