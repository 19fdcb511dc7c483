import GatehouseHTTP1

/// A request as a parser saw it: what the differential tests compare between Gatehouse and its peers.
struct ParsedRequest: Equatable, CustomStringConvertible {
    var method: String
    var target: String
    var headers: [Header]
    var body: [UInt8]
    /// Bytes of the message (head and body framing); only known for Gatehouse.
    var consumed: Int?

    struct Header: Equatable {
        var name: String
        var value: String
    }

    var description: String {
        "\(method) \(target) \(headers.map { "\($0.name): \($0.value)" }) body=\(body.count)B"
    }

    /// The request as NIO's String-based headers can hold it: bytes that are not UTF-8 (obs-text) come back
    /// as U+FFFD there, so they are compared after the same repair.
    var asNIOStrings: ParsedRequest {
        func repair(_ text: String) -> String {
            latin1(String(decoding: text.unicodeScalars.map { UInt8($0.value) }, as: UTF8.self).utf8)
        }
        var copy = self
        copy.method = repair(method)
        copy.target = repair(target)
        copy.headers = headers.map { .init(name: repair($0.name), value: repair($0.value)) }
        return copy
    }

    /// Equal framing, ignoring what only one side knows.
    func sameFraming(as other: ParsedRequest) -> Bool {
        method == other.method && target == other.target && headers == other.headers && body == other.body
    }
}

enum RequestOutcome: Equatable {
    case accepted(ParsedRequest)
    case refused(HTTP1Refusal)
    case incomplete

    var refusal: HTTP1Refusal? {
        if case .refused(let r) = self { return r }
        return nil
    }

    var request: ParsedRequest? {
        if case .accepted(let r) = self { return r }
        return nil
    }
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Bytes as text one byte per character, as h11 reports them, so the peers compare byte for byte.
func latin1(_ bytes: some Sequence<UInt8>) -> String { String(bytes.map { Character(Unicode.Scalar($0)) }) }

/// Runs Gatehouse's head parser and body decoder over `input`, delivered in pieces cut at `splits`:
/// the head parser sees the growing buffer (as a connection buffer would), the body decoder each piece alone.
func gatehouseParse(_ input: [UInt8], splits: [Int] = [], limits: HTTP1Limits = HTTP1Limits()) -> RequestOutcome {
    var cuts = splits.filter { $0 > 0 && $0 < input.count }.sorted()
    cuts.append(input.count)
    var pieces: [(offset: Int, bytes: [UInt8])] = []
    var last = 0
    for cut in cuts where cut > last {
        pieces.append((last, Array(input[last..<cut])))
        last = cut
    }
    var parser = RequestHeadParser(limits: limits)
    var buffer: [UInt8] = []
    var head: RequestHead?
    var rest: [(offset: Int, bytes: [UInt8])] = []
    for (index, piece) in pieces.enumerated() {
        buffer += piece.bytes
        switch parser.parse(buffer) {
        case .needMore: continue
        case .refused(let refusal): return .refused(refusal)
        case .complete(let h):
            head = h
            rest = [(h.length, Array(buffer[h.length...]))] + pieces[(index + 1)...]
        }
        break
    }
    guard let head else { return .incomplete }
    func text(_ r: Range<Int>) -> String { latin1(buffer[r]) }
    var request = ParsedRequest(
        method: text(head.method), target: text(head.target),
        headers: head.fields.map { .init(name: text($0.name), value: text($0.value)) }, body: [])
    var decoder = BodyDecoder(head.body, limits: limits)
    for piece in rest {
        var at = 0
        reading: while true {
            switch decoder.decode(piece.bytes, from: at) {
            case .data(let r):
                request.body += piece.bytes[r]
                at = r.upperBound
            case .needMore:
                break reading
            case .end(let end):
                request.consumed = piece.offset + end
                return .accepted(request)
            case .refused(let refusal):
                return .refused(refusal)
            }
        }
    }
    if case .end(let end) = decoder.decode([], from: 0) {  // a body already complete (or none)
        request.consumed = (rest.last.map { $0.offset + $0.bytes.count } ?? head.length) + end
        return .accepted(request)
    }
    return .incomplete
}

/// Every split into two pieces, and byte-at-a-time, must give the one-piece answer.
func expectSplitInvariant(_ input: [UInt8], limits: HTTP1Limits = HTTP1Limits()) -> [String] {
    let whole = gatehouseParse(input, limits: limits)
    var problems: [String] = []
    for k in 1..<max(input.count, 1) {
        let split = gatehouseParse(input, splits: [k], limits: limits)
        if split != whole { problems.append("split at \(k): \(split) vs \(whole)") }
    }
    let bytewise = gatehouseParse(input, splits: Array(0...input.count), limits: limits)
    if bytewise != whole { problems.append("byte at a time: \(bytewise) vs \(whole)") }
    return problems
}
