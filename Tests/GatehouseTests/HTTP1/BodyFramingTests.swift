import Foundation
import GatehouseHTTP1
import Testing

private func post(_ chunkedBody: String, extra: String = "") -> [UInt8] {
    bytes("POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\(extra)\r\n" + chunkedBody)
}

@Suite("HTTP1 body framing")
struct BodyFramingTests {
    @Test func chunkedBodyWithExtensionsAndTrailers() {
        let raw = post("5;a=b;c=\"q\\\"x\";d\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Sum: 1\r\nY: 2\r\n\r\nNEXT")
        let outcome = gatehouseParse(raw)
        #expect(outcome.request?.body == bytes("hello0123456789"))
        #expect(outcome.request?.consumed == raw.count - 4)
        #expect(expectSplitInvariant(raw).isEmpty)
    }

    @Test(arguments: [
        ("size with a space", "5 \r\nhello\r\n0\r\n\r\n", HTTP1Refusal.invalidChunkSize(at: 1)),
        ("no size", "\r\nhello\r\n0\r\n\r\n", .invalidChunkSize(at: 0)),
        ("negative size", "-5\r\nhello\r\n0\r\n\r\n", .invalidChunkSize(at: 0)),
        ("0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", .invalidChunkSize(at: 1)),
        ("bare LF after size", "5\nhello\r\n0\r\n\r\n", .invalidChunkSize(at: 1)),
        ("bare CR after size", "5\rhello\r\n0\r\n\r\n", .bareCarriageReturn(at: 1)),
        ("data longer than size", "5\r\nhello!\r\n0\r\n\r\n", .invalidChunkEnd(at: 8)),
        ("LF only after data", "5\r\nhello\n0\r\n\r\n", .invalidChunkEnd(at: 8)),
        ("whitespace before extension", "5 ;a\r\nhello\r\n0\r\n\r\n", .invalidChunkSize(at: 1)),
        ("empty extension name", "5;\r\nhello\r\n0\r\n\r\n", .invalidChunkExtension(at: 2)),
        ("control in quoted extension", "5;a=\"\u{1}\"\r\nhello\r\n0\r\n\r\n", .invalidChunkExtension(at: 5)),
        ("size overflow (17 hex digits)", "10000000000000000\r\n", .chunkTooLarge),
        ("trailer Content-Length", "0\r\nContent-Length: 5\r\n\r\n", .forbiddenTrailerField),
        ("trailer Transfer_Encoding", "0\r\nTransfer_Encoding: chunked\r\n\r\n", .forbiddenTrailerField),
        ("trailer obs-fold", "0\r\nA: b\r\n c\r\n\r\n", .obsoleteLineFolding(at: 9)),
        ("trailer space before colon", "0\r\nA : b\r\n\r\n", .whitespaceBeforeColon(at: 4)),
        ("trailer NUL", "0\r\nA: \u{0}\r\n\r\n", .invalidFieldValue(at: 6)),
        ("trailer bare LF", "0\r\nA: b\n\r\n", .bareLineFeed(at: 7)),
        ("final bare LF", "0\r\n\n", .bareLineFeed(at: 3)),
    ])
    func chunkedRefusals(name: String, body: String, refusal: HTTP1Refusal) {
        // Offsets in a body refusal count from the body's first byte, whatever the pieces were.
        let raw = post(body)
        #expect(gatehouseParse(raw) == .refused(refusal), "\(name)")
        #expect(expectSplitInvariant(raw).isEmpty, "\(name)")
    }

    /// Every guarded name, in any case and with `_` or `.` for `-`, is refused in a trailer; the same names
    /// with a byte more or less, and long names that start with one, pass.
    @Test func trailerNamesAreComparedWhole() {
        let guarded = ["host", "content-length", "transfer-encoding", "connection", "upgrade", "expect", "te", "trailer",
                       "keep-alive", "proxy-connection"]
        for name in guarded {
            for spelling in [name, name.uppercased(), name.replacingOccurrences(of: "-", with: "_"),
                             name.replacingOccurrences(of: "-", with: ".")] {
                #expect(gatehouseParse(post("0\r\n\(spelling): x\r\n\r\n")) == .refused(.forbiddenTrailerField), "\(spelling)")
            }
            for other in [name + "x", String(name.dropLast()), name + String(repeating: "-", count: 30)] where !guarded.contains(other) {
                #expect(gatehouseParse(post("0\r\n\(other): x\r\n\r\n")).request != nil, "\(other)")
            }
        }
        // Up to the inline capacity (24) and past it.
        for length in [23, 24, 25, 40] {
            #expect(gatehouseParse(post("0\r\n\(String(repeating: "a", count: length)): x\r\n\r\n")).request != nil, "\(length)")
        }
    }

    /// The body decoder holds no reference (no array in its state): copies of it in every exchange's state are
    /// plain byte copies, not value-witness calls that retain and release.
    @Test func bodyDecoderIsPlainData() {
        #expect(_isPOD(BodyDecoder.self))
        #expect(_isPOD(ChunkedBodyDecoder.self))
    }

    @Test func chunkLimits() {
        let limits = HTTP1Limits(maxChunkSize: 16, maxChunkLineLength: 8, maxTrailerSize: 10)
        #expect(gatehouseParse(post("10\r\n0123456789abcdef\r\n0\r\n\r\n"), limits: limits).request?.body.count == 16)
        #expect(gatehouseParse(post("11\r\n"), limits: limits) == .refused(.chunkTooLarge))
        #expect(gatehouseParse(post("1;abcdefgh\r\n"), limits: limits) == .refused(.chunkLineTooLong))
        #expect(gatehouseParse(post("000000001\r\nx\r\n0\r\n\r\n"), limits: limits) == .refused(.chunkLineTooLong))
        #expect(gatehouseParse(post("0\r\nA: 0123456789\r\n\r\n"), limits: limits) == .refused(.trailerTooLarge))
    }

    @Test func fixedLengthBodyStopsAtItsLength() {
        let raw = bytes("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n")
        let outcome = gatehouseParse(raw)
        #expect(outcome.request?.body == bytes("hello"))
        #expect(outcome.request?.consumed == raw.count - 16)
        #expect(expectSplitInvariant(raw).isEmpty)
        #expect(gatehouseParse(Array(raw[..<50])) == .incomplete)
    }

    @Test func endOfInputMidBodyIsTruncation() {
        var fixed = BodyDecoder(RequestBodyFraming.contentLength(5))
        #expect(fixed.decode(bytes("abc")) == .data(0..<3))
        #expect(fixed.endOfInput() == .truncatedBody)
        var chunked = BodyDecoder(RequestBodyFraming.chunked)
        #expect(chunked.decode(bytes("5\r\nab")) == .data(3..<5))
        #expect(chunked.endOfInput() == .truncatedBody)
        var close = BodyDecoder(ResponseBodyFraming.untilClose)
        #expect(close.decode(bytes("anything")) == .data(0..<8))
        #expect(close.endOfInput() == nil)
    }
}

@Suite("HTTP1 response framing")
struct ResponseFramingTests {
    private func head(_ raw: String, head requestWasHead: Bool = false) -> HeadParse<ResponseHead> {
        var parser = ResponseHeadParser(requestWasHead: requestWasHead)
        return parser.parse(bytes(raw))
    }

    private func framing(_ raw: String, head requestWasHead: Bool = false) -> ResponseBodyFraming? {
        if case .complete(let h) = head(raw, head: requestWasHead) { return h.body }
        return nil
    }

    @Test func framingFollowsRFC9112Section6_3() {
        #expect(framing("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n") == .contentLength(12))
        #expect(framing("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", head: true) == ResponseBodyFraming.none)
        #expect(framing("HTTP/1.1 204 No Content\r\nContent-Length: 12\r\n\r\n") == ResponseBodyFraming.none)
        #expect(framing("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n") == ResponseBodyFraming.none)
        #expect(framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n") == .chunked)
        #expect(framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n") == .untilClose)
        #expect(framing("HTTP/1.1 200 OK\r\n\r\n") == .untilClose)
        #expect(framing("HTTP/1.1 100 Continue\r\n\r\n") == .interim)
        #expect(framing("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n") == .interim)
        #expect(framing("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n") == .switchingProtocols)
        #expect(framing("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n") == .contentLength(2))
        #expect(framing("HTTP/1.1 200\r\nContent-Length: 2\r\n\r\n") == .contentLength(2))
    }

    @Test func refusals() {
        #expect(head("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n") == .refused(.contentLengthWithTransferEncoding))
        #expect(head("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n") == .refused(.duplicateContentLength))
        #expect(head("HTTP/1.1 200 OK\nContent-Length: 1\r\n\r\n") == .refused(.bareLineFeed(at: 15)))
        #expect(head("HTTP/1.1 20 OK\r\n\r\n") == .refused(.invalidStatusLine(at: 11)))
        #expect(head("HTTP/1.1 099 X\r\n\r\n") == .refused(.invalidStatusLine(at: 9)))
        #expect(head("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n") == .refused(.obsoleteLineFolding(at: 23)))
        #expect(head("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") == .refused(.transferEncodingInHTTP10))
        #expect(head("HTTP/1.1 200 OK\r\nContent_Length: 1\r\n\r\n") == .refused(.lookAlikeFieldName(at: 17)))
        #expect(head("HTTP/1.1 200 OK\r\n") == .needMore)
    }

    @Test func connectionAndKeepAlive() {
        guard case .complete(let closing) = head("HTTP/1.1 200 OK\r\nConnection: close \r\nContent-Length: 0\r\n\r\n"),
              case .complete(let open) = head("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
              case .complete(let untilClose) = head("HTTP/1.1 200 OK\r\n\r\n")
        else { Issue.record("refused"); return }
        #expect(!closing.keepAlive && open.keepAlive && !untilClose.keepAlive)
    }

    @Test func interimThenFinalOnOneBuffer() {
        let raw = bytes("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        var parser = ResponseHeadParser()
        guard case .complete(let interim) = parser.parse(raw), interim.body == .interim else { Issue.record("interim"); return }
        parser.reset(requestWasHead: false)
        let rest = Array(raw[interim.length...])
        guard case .complete(let final) = parser.parse(rest), final.body == .chunked else { Issue.record("final"); return }
        var decoder = BodyDecoder(final.body)
        #expect(decoder.decode(rest, from: final.length) == .data((final.length + 3)..<(final.length + 6)))
        #expect(decoder.decode(rest, from: final.length + 6) == .end(at: rest.count))
    }
}

@Suite("HTTP1 response heads, split everywhere")
struct ResponseSplitTests {
    @Test(arguments: [
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
        "HTTP/1.1 100 Continue\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\nX: y\r\n\r\n",
        "HTTP/1.1 204 No Content\r\n\r\n",
    ])
    func sameAnswerAtEverySplit(_ text: String) {
        let raw = bytes(text)
        var whole = ResponseHeadParser()
        let expected = whole.parse(raw)
        #expect(expected != .needMore)
        for k in 0...raw.count {
            var parser = ResponseHeadParser()
            var answer = parser.parse(Array(raw[..<k]))
            if answer == .needMore { answer = parser.parse(raw) }
            #expect(answer == expected, "split at \(k)")
        }
    }
}
