/// One step of decoding a body. Ranges are offsets into the buffer passed to `decode`; nothing is copied.
public enum BodyEvent: Sendable, Equatable {
    /// Body bytes (chunk data without its framing); decoding went up to `range.upperBound`.
    case data(Range<Int>)
    /// Every byte given was consumed (framing bytes included); call again with the next bytes.
    case needMore
    /// The body ended; bytes from `at` on belong to the next message.
    case end(at: Int)
    case refused(HTTP1Refusal)
}

/// A body's decoder, chosen from the head's framing.
public enum BodyDecoder: Sendable {
    case none
    case fixed(remaining: Int)
    case chunked(ChunkedBodyDecoder)
    /// Close-delimited (responses only): everything until the connection ends.
    case untilClose
    case finished

    public init(_ framing: RequestBodyFraming, limits: HTTP1Limits = HTTP1Limits()) {
        switch framing {
        case .none, .contentLength(0): self = .none
        case .contentLength(let n): self = .fixed(remaining: n)
        case .chunked: self = .chunked(ChunkedBodyDecoder(limits: limits))
        }
    }

    /// Interim and 101 responses have no body in this sense: the caller parses the next head, or tunnels.
    public init(_ framing: ResponseBodyFraming, limits: HTTP1Limits = HTTP1Limits()) {
        switch framing {
        case .none, .contentLength(0), .interim, .switchingProtocols: self = .none
        case .contentLength(let n): self = .fixed(remaining: n)
        case .chunked: self = .chunked(ChunkedBodyDecoder(limits: limits))
        case .untilClose: self = .untilClose
        }
    }

    public mutating func decode(_ bytes: [UInt8], from start: Int = 0) -> BodyEvent {
        bytes.withUnsafeBytes { decode($0, from: start) }
    }

    /// Decodes from `start` in `b`. Call again with the rest of `b` after `.data`, with new bytes after `.needMore`.
    public mutating func decode(_ b: UnsafeRawBufferPointer, from start: Int) -> BodyEvent {
        switch self {
        case .none, .finished:
            self = .finished
            return .end(at: start)
        case .fixed(let remaining):
            if remaining == 0 {
                self = .finished
                return .end(at: start)
            }
            guard start < b.count else { return .needMore }
            let take = min(remaining, b.count - start)
            self = .fixed(remaining: remaining - take)
            return .data(start..<(start + take))
        case .chunked(var decoder):
            self = .finished
            let event = decoder.decode(b, from: start)
            if case .end = event {} else { self = .chunked(decoder) }
            return event
        case .untilClose:
            return start < b.count ? .data(start..<b.count) : .needMore
        }
    }

    /// The connection ended: fine only for a close-delimited body or one that was already complete.
    public mutating func endOfInput() -> HTTP1Refusal? {
        switch self {
        case .none, .finished, .untilClose, .fixed(remaining: 0):
            self = .finished
            return nil
        case .fixed, .chunked:
            return .truncatedBody
        }
    }
}
