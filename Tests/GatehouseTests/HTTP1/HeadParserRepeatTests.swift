import GatehouseHTTP1
import Testing

/// A parser asked again after its answer gives the same answer, whatever came after the head (the next
/// request, a body): a complete head is not parsed on into what follows it, a refusal stays the same refusal.
/// The parsers no longer keep the finished head itself, only where it ended, and rebuild it when asked again.
@Suite("HTTP1 heads asked for again")
struct HeadParserRepeatTests {
    static let requests: [String] = [
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /x?y=1 HTTP/1.1\r\nHost: a.example:8080\r\nConnection: keep-alive, X-Hop\r\nUpgrade: websocket\r\nExpect: 100-continue\r\n\r\n",
        "POST http://a.example/p HTTP/1.1\r\nHost: a.example\r\nContent-Length: 12\r\n\r\n",
        "PUT /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
        "OPTIONS * HTTP/1.0\r\n\r\n",
        "HEAD /h HTTP/1.0\r\nConnection: close\r\n\r\n",
        // Refused, at different places.
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n",
        "get / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n Folded: x\r\n\r\n",
        "GET / HTTP/1.1\r\nContent_Length: 5\r\nHost: a\r\n\r\n",
    ]

    static let responses: [(String, Bool)] = [
        ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false),
        ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true),
        ("HTTP/1.1 204 No Content\r\nConnection: close, X-A\r\n\r\n", false),
        ("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", false),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false),
        ("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", false),
        ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", false),
        ("HTTP/1.1 200\r\n\r\n", false),
        // Refused.
        ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", false),
        ("HTTP/1.1 2000 OK\r\n\r\n", false),
        ("HTTP/1.1 200 OK\r\nX : y\r\n\r\n", false),
    ]

    static let after = Array("GET /next HTTP/1.1\r\nHost: b\r\n\r\nbody bytes".utf8)

    @Test(arguments: requests)
    func requestHeadIsTheSameWhenAskedAgain(text: String) {
        let head = Array(text.utf8)
        var parser = RequestHeadParser()
        let first = parser.parse(head)
        #expect(first != .needMore)
        #expect(parser.parse(head) == first)
        #expect(parser.parse(head + Self.after) == first)
        // And split: the answer after the last piece is the one asked again.
        var split = RequestHeadParser()
        for n in stride(from: 1, to: head.count, by: 7) where split.parse(Array(head[0..<n])) != .needMore { break }
        let whole = split.parse(head + Self.after)
        #expect(whole == first)
        #expect(split.parse(head + Self.after) == whole)
        // After a reset it parses what it is given next.
        parser.reset()
        guard case .complete(let next) = parser.parse(Self.after) else {
            Issue.record("the next head after a reset")
            return
        }
        #expect(next.length == 31 && next.fields.count == 1)
    }

    @Test(arguments: responses.indices)
    func responseHeadIsTheSameWhenAskedAgain(index: Int) {
        let (text, wasHead) = Self.responses[index]
        let head = Array(text.utf8)
        var parser = ResponseHeadParser(requestWasHead: wasHead)
        let first = parser.parse(head)
        #expect(first != .needMore)
        #expect(parser.parse(head) == first)
        #expect(parser.parse(head + Self.after) == first)
        var split = ResponseHeadParser(requestWasHead: wasHead)
        for n in stride(from: 1, to: head.count, by: 5) where split.parse(Array(head[0..<n])) != .needMore { break }
        #expect(split.parse(head + Self.after) == first)
        parser.reset(requestWasHead: false)
        let ok = Array("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc".utf8)
        guard case .complete(let next) = parser.parse(ok) else {
            Issue.record("the next head after a reset")
            return
        }
        #expect(next.status == 200 && next.body == .contentLength(3) && next.fields.count == 1 && next.reason.count == 2)
    }
}
