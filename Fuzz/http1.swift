// Fuzz target: GatehouseHTTP1's request and response head parsers and body decoders. Invariants: no crash;
// what is consumed never exceeds the input; every range lies inside the head, in order; what is accepted
// obeys the grammar (checked here byte by byte, without the parser's helpers); and the answer does not
// depend on how the bytes were split (the head parser fed a prefix first, the body decoder two pieces).
import GatehouseHTTP1

private func isTokenByte(_ b: UInt8) -> Bool {
    switch b {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
        return true
    default:
        return "!#$%&'*+-.^_`|~".utf8.contains(b)
    }
}

private func checkFields(_ fields: [FieldRange], _ input: [UInt8], headLength: Int, after firstLineEnd: Int) {
    var previous = firstLineEnd
    for field in fields {
        require(field.line.lowerBound == previous, "field lines not contiguous at \(field.line)")
        require(field.line.upperBound <= headLength, "field line \(field.line) past the head (\(headLength))")
        require(input[field.line.upperBound - 2] == 0x0D && input[field.line.upperBound - 1] == 0x0A, "field line without CRLF")
        require(field.name.lowerBound == field.line.lowerBound && !field.name.isEmpty, "name range \(field.name)")
        require(input[field.name].allSatisfy(isTokenByte), "accepted a non-token field name")
        require(input[field.name.upperBound] == UInt8(ascii: ":"), "name not followed by ':'")
        require(field.value.lowerBound > field.name.upperBound && field.value.upperBound <= field.line.upperBound - 2, "value range \(field.value)")
        for b in input[field.value] {
            require(b == 0x09 || (b >= 0x20 && b != 0x7F), "accepted control byte \(b) in a value")
        }
        if let first = input[field.value].first, let last = input[field.value].last {
            require(first != 0x20 && first != 0x09 && last != 0x20 && last != 0x09, "value not trimmed")
        }
        previous = field.line.upperBound
    }
    require(previous + 2 == headLength, "head does not end with the blank line after the last field")
}

/// The body decoded from `start` in one piece and in two pieces gives the same data and the same ending.
private func checkBody(_ make: () -> BodyDecoder, _ input: [UInt8], from start: Int, split: Int) {
    func run(_ pieces: [[UInt8]]) -> (data: [UInt8], end: String) {
        var decoder = make()
        var data: [UInt8] = []
        var consumed = 0
        for piece in pieces {
            var at = 0
            while true {
                let event = decoder.decode(piece, from: at)
                switch event {
                case .data(let r):
                    require(r.lowerBound >= at && r.upperBound <= piece.count && !r.isEmpty, "data range \(r) outside \(at)..<\(piece.count)")
                    data += piece[r]
                    at = r.upperBound
                    continue
                case .needMore:
                    break
                case .end(let end):
                    require(end >= at && end <= piece.count, "end \(end) outside the piece")
                    return (data, "end at \(consumed + end)")
                case .refused(let refusal):
                    return (data, "refused \(refusal)")
                }
                break
            }
            consumed += piece.count
        }
        return (data, "more")
    }
    let body = Array(input[start...])
    let whole = run([body])
    let cut = body.isEmpty ? 0 : split % (body.count + 1)
    let pieces = run([Array(body[..<cut]), Array(body[cut...])])
    require(whole.data == pieces.data && whole.end == pieces.end,
        "body split at \(cut) gave \(pieces.end) (\(pieces.data.count) B), whole \(whole.end) (\(whole.data.count) B)")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTP1(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var fuzz = FuzzInput(data, size)
    let flags = fuzz.byte()
    let split = Int(fuzz.byte()) << 8 | Int(fuzz.byte())
    let input = fuzz.rest
    let limits = flags & 4 != 0
        ? HTTP1Limits(maxHeadSize: 200, maxFieldCount: 4, maxTargetLength: 32, maxChunkSize: 300, maxChunkLineLength: 24, maxTrailerSize: 40)
        : HTTP1Limits()
    let cut = input.isEmpty ? 0 : split % (input.count + 1)

    if flags & 1 == 0 {
        var parser = RequestHeadParser(limits: limits)
        let whole = parser.parse(input)
        var incremental = RequestHeadParser(limits: limits)
        var piecewise = incremental.parse(Array(input[..<cut]))
        if piecewise == .needMore { piecewise = incremental.parse(input) }
        require(piecewise == whole, "request split at \(cut): \(piecewise) vs \(whole)")
        guard case .complete(let head) = whole else { return 0 }
        require(head.length <= input.count && head.length <= limits.maxHeadSize, "head length \(head.length)")
        require(head.method.lowerBound == 0 && input[head.method].allSatisfy(isTokenByte), "method range")
        require(input[head.method.upperBound] == 0x20 && head.target.lowerBound == head.method.upperBound + 1, "target start")
        require(head.target.count <= limits.maxTargetLength, "target longer than the limit")
        for b in input[head.target] { require(b > 0x20 && b < 0x7F && b != UInt8(ascii: "#"), "target byte \(b)") }
        let lineEnd = head.target.upperBound + 11  // " HTTP/1.x\r\n"
        require(Array(input[head.target.upperBound..<(lineEnd - 3)]) == Array(" HTTP/1.".utf8), "version")
        require(head.fields.count <= limits.maxFieldCount, "too many fields")
        checkFields(head.fields, input, headLength: head.length, after: lineEnd)
        if head.version == .http11 { require(head.host != nil, "HTTP/1.1 without Host accepted") }
        if case .chunked = head.body { require(head.version == .http11, "chunked in HTTP/1.0") }
        checkBody({ BodyDecoder(head.body, limits: limits) }, input, from: head.length, split: split)
    } else {
        let wasHead = flags & 2 != 0
        var parser = ResponseHeadParser(limits: limits, requestWasHead: wasHead)
        let whole = parser.parse(input)
        var incremental = ResponseHeadParser(limits: limits, requestWasHead: wasHead)
        var piecewise = incremental.parse(Array(input[..<cut]))
        if piecewise == .needMore { piecewise = incremental.parse(input) }
        require(piecewise == whole, "response split at \(cut): \(piecewise) vs \(whole)")
        guard case .complete(let head) = whole else { return 0 }
        require(head.length <= input.count && head.length <= limits.maxHeadSize, "head length \(head.length)")
        require((100...599).contains(head.status), "status \(head.status)")
        let lineEnd = head.reason.upperBound + 2
        checkFields(head.fields, input, headLength: head.length, after: lineEnd)
        if wasHead || head.status == 204 || head.status == 304 {
            require(head.body == .none || head.status < 200, "a body for HEAD/204/304")
        }
        checkBody({ BodyDecoder(head.body, limits: limits) }, input, from: head.length, split: split)
    }
    return 0
}
