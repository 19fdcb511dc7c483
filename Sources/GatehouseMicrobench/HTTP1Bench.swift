import GatehouseHTTP1

/// GatehouseHTTP1 on a typical browser request head (8 fields, about 400 bytes) and an upstream response head.
func benchHTTP1() {
    let request = Array((
        "GET /dashboard/projects/42?tab=settings HTTP/1.1\r\n" + "Host: app.example.com\r\n"
            + "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
            + "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
            + "Accept-Language: en-US,en;q=0.5\r\n" + "Accept-Encoding: gzip, deflate, br\r\n"
            + "Connection: keep-alive\r\n" + "Cookie: theme=dark; __client_uat=1800000000; __session=eyJhbGciOi.eyJzdWIi.sig\r\n"
            + "Sec-Fetch-Dest: document\r\n\r\n").utf8)
    let response = Array(("HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 1234\r\n"
        + "Cache-Control: no-store\r\nDate: Tue, 01 Dec 2026 13:00:00 GMT\r\nConnection: keep-alive\r\n\r\n").utf8)
    var parser = RequestHeadParser()
    guard case .complete(let head) = parser.parse(request), head.fields.count == 8 else { fatalError("bench request refused") }
    request.withUnsafeBytes { bytes in
        measure("http1 request head, \(request.count) B, 8 fields, one piece", iterations: 500_000) {
            parser.reset()
            blackHole(parser.parse(bytes))
        }
        let half = UnsafeRawBufferPointer(rebasing: bytes[..<(bytes.count / 2)])
        measure("http1 request head, same, in two pieces", iterations: 500_000) {
            parser.reset()
            blackHole(parser.parse(half))
            blackHole(parser.parse(bytes))
        }
    }
    var responseParser = ResponseHeadParser()
    response.withUnsafeBytes { bytes in
        measure("http1 response head, \(response.count) B, 5 fields", iterations: 500_000) {
            responseParser.reset(requestWasHead: false)
            blackHole(responseParser.parse(bytes))
        }
    }
}
