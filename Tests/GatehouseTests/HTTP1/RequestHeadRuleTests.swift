import GatehouseHTTP1
import Testing

/// One rule of the strict request parser per row: the bytes, and the refusal they must get (nil: accepted).
struct RuleCase: CustomTestStringConvertible, Sendable {
    let name: String
    let raw: String
    let refusal: HTTP1Refusal?
    var testDescription: String { name }
}

private func rule(_ name: String, _ raw: String, _ refusal: HTTP1Refusal?) -> RuleCase { RuleCase(name: name, raw: raw, refusal: refusal) }

let requestRuleCases: [RuleCase] = [
    rule("plain GET", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", nil),
    rule("HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", nil),
    rule("missing Host in 1.1", "GET / HTTP/1.1\r\nX: y\r\n\r\n", .missingHost),
    rule("duplicate Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", .duplicateHost),
    rule("empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", .invalidHost),
    rule("Host with userinfo", "GET / HTTP/1.1\r\nHost: a@b\r\n\r\n", .invalidHost),
    rule("Host with a space inside", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", .invalidHost),
    rule("bare LF in request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", .bareLineFeed(at: 14)),
    rule("bare LF after a field", "GET / HTTP/1.1\r\nHost: a\n\r\n", .bareLineFeed(at: 23)),
    rule("bare LF as the blank line", "GET / HTTP/1.1\r\nHost: a\r\n\n", .bareLineFeed(at: 25)),
    rule("bare CR in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", .bareCarriageReturn(at: 29)),
    rule("obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", .obsoleteLineFolding(at: 31)),
    rule("whitespace before the first field", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", .obsoleteLineFolding(at: 16)),
    rule("space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", .whitespaceBeforeColon(at: 20)),
    rule("tab before colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", .whitespaceBeforeColon(at: 20)),
    rule("no colon", "GET / HTTP/1.1\r\nHost: a\r\nJunk\r\n\r\n", .missingColon(at: 29)),
    rule("empty name", "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", .invalidFieldName(at: 25)),
    rule("non-token in name", "GET / HTTP/1.1\r\nHost: a\r\nX(y): z\r\n\r\n", .invalidFieldName(at: 26)),
    rule("non-ASCII in name", "GET / HTTP/1.1\r\nHost: a\r\nXé: z\r\n\r\n", .invalidFieldName(at: 26)),
    rule("NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\u{0}b\r\n\r\n", .invalidFieldValue(at: 29)),
    rule("DEL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\u{7F}\r\n\r\n", .invalidFieldValue(at: 29)),
    rule("control in value", "GET / HTTP/1.1\r\nHost: a\r\nX: \u{1B}\r\n\r\n", .invalidFieldValue(at: 28)),
    rule("tab and obs-text in value are fine", "GET / HTTP/1.1\r\nHost: a\r\nX: a\tb ü\r\n\r\n", nil),
    rule("Transfer_Encoding look-alike", "GET / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\n\r\n", .lookAlikeFieldName(at: 25)),
    rule("Content.Length look-alike", "GET / HTTP/1.1\r\nHost: a\r\nContent.Length: 5\r\n\r\n", .lookAlikeFieldName(at: 25)),
    rule("Keep_Alive look-alike", "GET / HTTP/1.1\r\nHost: a\r\nKeep_Alive: b\r\n\r\n", .lookAlikeFieldName(at: 25)),
    rule("other underscore names pass", "GET / HTTP/1.1\r\nHost: a\r\nX_Custom: b\r\n\r\n", nil),
    rule("duplicate Content-Length, same value", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", .duplicateContentLength),
    rule("Content-Length list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\nx", .invalidContentLength),
    rule("signed Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\nx", .invalidContentLength),
    rule("hex Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x1\r\n\r\nx", .invalidContentLength),
    rule("empty Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", .invalidContentLength),
    rule("Content-Length of 19 digits", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9999999999999999999\r\n\r\n", .invalidContentLength),
    rule("TE with CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", .contentLengthWithTransferEncoding),
    rule("TE identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", .unsupportedTransferEncoding),
    rule("TE chunked, identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n", .unsupportedTransferEncoding),
    rule("TE gzip, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", .unsupportedTransferEncoding),
    rule("TE twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", .duplicateTransferEncoding),
    rule("TE chunked with a vertical tab", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \u{0B}chunked\r\n\r\n", .invalidFieldValue(at: 45)),
    rule("TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", .transferEncodingInHTTP10),
    rule("TE chunked, any case", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ChUnKeD\r\n\r\n0\r\n\r\n", nil),
    rule("lower-case method", "get / HTTP/1.1\r\nHost: a\r\n\r\n", .lowercaseMethod),
    rule("mixed-case method", "Purge / HTTP/1.1\r\nHost: a\r\n\r\n", .lowercaseMethod),
    rule("unknown method", "FOO / HTTP/1.1\r\nHost: a\r\n\r\n", .unknownMethod),
    rule("CONNECT", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", .connectNotSupported),
    rule("two spaces after method", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", .invalidRequestLine(at: 4)),
    rule("tab after method", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", .invalidRequestLine(at: 3)),
    rule("trailing space after version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", .invalidVersion(at: 6)),
    rule("no version (HTTP/0.9)", "GET /\r\nHost: a\r\n\r\n", .invalidRequestLine(at: 5)),
    rule("lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", .invalidVersion(at: 6)),
    rule("HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", .unsupportedVersion),
    rule("HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", .unsupportedVersion),
    rule("h2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", .unknownMethod),
    rule("raw # in target", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget(at: 6)),
    rule("NUL in target", "GET /a\u{0}b HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget(at: 6)),
    rule("non-ASCII in target", "GET /ä HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget(at: 5)),
    rule("leading empty line", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", .invalidRequestLine(at: 0)),
    rule("asterisk with GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", .unsupportedTargetForm),
    rule("asterisk with OPTIONS", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", nil),
    rule("rootless target", "GET http:a/admin HTTP/1.1\r\nHost: a\r\n\r\n", .unsupportedTargetForm),
    rule("authority-form with GET", "GET a:80 HTTP/1.1\r\nHost: a\r\n\r\n", .unsupportedTargetForm),
    rule("absolute-form", "GET http://other/admin HTTP/1.1\r\nHost: a\r\n\r\n", nil),
    rule("absolute-form without authority", "GET http:///admin HTTP/1.1\r\nHost: a\r\n\r\n", .unsupportedTargetForm),
    rule("Expect: 100-continue", "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 0\r\n\r\n", nil),
    rule("other Expect", "POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", .unsupportedExpectation),
    rule("Connection with a non-token", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close; x\r\n\r\n", .invalidConnection),
]

@Suite("HTTP1 request head rules")
struct RequestHeadRuleTests {
    @Test(arguments: requestRuleCases)
    func rule(_ c: RuleCase) {
        let outcome = gatehouseParse(bytes(c.raw))
        if let refusal = c.refusal {
            #expect(outcome == .refused(refusal), "\(c.name)")
        } else {
            #expect(outcome.request != nil, "\(c.name): \(outcome)")
        }
        #expect(expectSplitInvariant(bytes(c.raw)).isEmpty, "\(c.name)")
    }

    @Test func rangesPointAtTheBytes() throws {
        let raw = bytes("POST /p?q=1 HTTP/1.1\r\nHost: app.example\r\nX-A:  v  v \t\r\nContent-Length: 3\r\n\r\nabcNEXT")
        var parser = RequestHeadParser()
        guard case .complete(let head) = parser.parse(raw) else { Issue.record("not complete"); return }
        let text = { (r: Range<Int>) in String(decoding: raw[r], as: UTF8.self) }
        #expect(text(head.method) == "POST" && head.knownMethod == .post)
        #expect(text(head.target) == "/p?q=1" && head.targetForm == .origin && head.version == .http11)
        #expect(head.fields.map { text($0.name) } == ["Host", "X-A", "Content-Length"])
        #expect(head.fields.map { text($0.value) } == ["app.example", "v  v", "3"])
        #expect(text(head.fields[1].line) == "X-A:  v  v \t\r\n")
        #expect(head.host == 0 && head.body == .contentLength(3) && head.keepAlive)
        #expect(text(0..<head.length).hasSuffix("\r\n\r\n") && raw[head.length] == UInt8(ascii: "a"))
    }

    @Test func connectionCloseWithTrailingWhitespaceIsHonoured() {
        for value in ["close ", "close\t", " close", "keep-alive, close  ", "CLOSE", ", close,"] {
            var parser = RequestHeadParser()
            guard case .complete(let head) = parser.parse(bytes("GET / HTTP/1.1\r\nHost: a\r\nConnection: \(value)\r\n\r\n")) else {
                Issue.record("refused Connection: \(value.debugDescription)")
                continue
            }
            #expect(head.connection.close && !head.keepAlive, "Connection: \(value.debugDescription)")
        }
        var parser = RequestHeadParser()
        guard case .complete(let old) = parser.parse(bytes("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")) else {
            Issue.record("refused"); return
        }
        #expect(old.keepAlive && old.version == .http10)
        parser.reset()
        guard case .complete(let plain10) = parser.parse(bytes("GET / HTTP/1.0\r\n\r\n")) else { Issue.record("refused"); return }
        #expect(!plain10.keepAlive)
    }

    @Test func upgradeAndExpectAreReported() {
        var parser = RequestHeadParser()
        let raw = "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nExpect: 100-continue\r\n\r\n"
        guard case .complete(let head) = parser.parse(bytes(raw)) else { Issue.record("refused"); return }
        #expect(head.connection.upgrade && head.upgrade == 2 && head.expectsContinue)
    }

    @Test func limits() {
        let small = HTTP1Limits(maxHeadSize: 64, maxFieldCount: 2, maxTargetLength: 10)
        #expect(gatehouseParse(bytes("GET /0123456789 HTTP/1.1\r\nHost: a\r\n\r\n"), limits: small) == .refused(.targetTooLong))
        #expect(gatehouseParse(bytes("GET /012345678 HTTP/1.1\r\nHost: a\r\n\r\n"), limits: small).request != nil)
        // A target past the limit whose line never ends inside the head window: still 414, not 431.
        let longTarget = bytes("GET /" + String(repeating: "a", count: 100))
        #expect(gatehouseParse(longTarget, limits: small) == .refused(.targetTooLong))
        #expect(expectSplitInvariant(longTarget, limits: small).isEmpty)
        #expect(gatehouseParse(bytes("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n"), limits: small) == .refused(.tooManyFields))
        let big = bytes("GET / HTTP/1.1\r\nHost: a\r\nA: " + String(repeating: "x", count: 60) + "\r\n\r\n")
        #expect(gatehouseParse(big, limits: small) == .refused(.headTooLarge))
        #expect(expectSplitInvariant(big, limits: small).isEmpty)
        // Exactly at the limit is fine; one byte more is not.
        let exact = bytes("GET / HTTP/1.1\r\nHost: a\r\nA: " + String(repeating: "x", count: 64 - 32) + "\r\n\r\n")
        #expect(exact.count == 64)
        #expect(gatehouseParse(exact, limits: small).request != nil)
        #expect(gatehouseParse(bytes("GET / HTTP/1.1\r\nHost: a\r\nA: " + String(repeating: "x", count: 33) + "\r\n\r\n"), limits: small) == .refused(.headTooLarge))
        // Incomplete below the limit: wait.
        var parser = RequestHeadParser(limits: small)
        #expect(parser.parse(bytes("GET / HTTP/1.1\r\nHost: a\r\n")) == .needMore)
    }

    @Test func statusForEachRefusal() {
        #expect(HTTP1Refusal.headTooLarge.status == 431 && HTTP1Refusal.targetTooLong.status == 414)
        #expect(HTTP1Refusal.unsupportedTransferEncoding.status == 501 && HTTP1Refusal.unknownMethod.status == 501)
        #expect(HTTP1Refusal.unsupportedVersion.status == 505 && HTTP1Refusal.missingHost.status == 400)
        #expect(HTTP1Refusal.unsupportedExpectation.status == 417 && HTTP1Refusal.obsoleteLineFolding(at: 0).status == 400)
    }

    @Test func pipelinedRequestsParseOneAfterAnother() {
        let raw = bytes("GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
        var parser = RequestHeadParser()
        guard case .complete(let first) = parser.parse(raw) else { Issue.record("first"); return }
        parser.reset()
        let rest = Array(raw[first.length...])
        guard case .complete(let second) = parser.parse(rest) else { Issue.record("second"); return }
        #expect(String(decoding: rest[second.target], as: UTF8.self) == "/2" && second.length == rest.count)
    }
}

@Suite("HTTP1 field values, every byte at every offset")
struct FieldValueByteTests {
    /// Long values take the eight-bytes-at-a-time scan; every byte value at every offset of a 24-byte value
    /// (and at its ends, where whitespace is trimmed) must get the answer the byte-by-byte rule gives.
    @Test func everyByteEverywhereInALongValue() {
        let prefix = bytes("GET / HTTP/1.1\r\nHost: a\r\nX-Long: ")
        let value = bytes("0123456789abcdefghijklmn")
        for position in 0...value.count {
            for byte in 0...255 {
                let b = UInt8(byte)
                var v = value
                v.insert(b, at: position)
                let raw = prefix + v + bytes("\r\n\r\n")
                let at = prefix.count + position
                let expected: RequestOutcome?
                switch b {
                case 0x0D: expected = .refused(.bareCarriageReturn(at: at))
                case 0x0A: expected = .refused(.bareLineFeed(at: at))
                case 0x09, 0x20, 0x21...0x7E, 0x80...0xFF: expected = nil
                default: expected = .refused(.invalidFieldValue(at: at))
                }
                let outcome = gatehouseParse(raw)
                if let expected {
                    #expect(outcome == expected, "byte \(b) at \(position)")
                } else {
                    // Whitespace at either end is not part of the value.
                    var trimmed = v
                    while let f = trimmed.first, f == 0x20 || f == 0x09 { trimmed.removeFirst() }
                    while let l = trimmed.last, l == 0x20 || l == 0x09 { trimmed.removeLast() }
                    #expect(outcome.request?.headers.last?.value == latin1(trimmed), "byte \(b) at \(position)")
                }
            }
        }
    }
}
