import Foundation
import GatehouseHTTP1
import Testing

/// One input, and what Gatehouse / llhttp / h11 do with it: "A" accept, "R" refuse, "I" incomplete.
/// Every row where the letters differ is a disagreement; `why` explains it. The test checks that the peers
/// still behave as recorded, so this table stays true when a peer changes.
struct DifferentialVector: CustomTestStringConvertible, Sendable {
    let name: String
    let raw: [UInt8]
    let verdicts: String
    let why: String
    var testDescription: String { name }
}

private let get = "GET / HTTP/1.1\r\nHost: a\r\n"
private func v(_ name: String, _ raw: String, _ verdicts: String = "AAA", _ why: String = "") -> DifferentialVector {
    DifferentialVector(name: name, raw: bytes(raw), verdicts: verdicts, why: why)
}

let differentialVectors: [DifferentialVector] = [
    // Valid requests: all three must agree on method, target, fields and body.
    v("GET", get + "\r\n"),
    v("browser GET", "GET /dashboard?tab=1 HTTP/1.1\r\nHost: app.example.com\r\nUser-Agent: Mozilla/5.0 (X11)\r\nAccept: text/html,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\nConnection: keep-alive\r\nCookie: theme=dark; __session=abc.def.ghi\r\nSec-Fetch-Dest: document\r\n\r\n"),
    v("POST with Content-Length", "POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world"),
    v("POST chunked", "POST /f HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
    v("chunked with extensions and a trailer", "POST /f HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1;q=\"a b\"\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n"),
    v("chunk size in upper-case hex with leading zeros", "POST /f HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n000A\r\n0123456789\r\n0\r\n\r\n"),
    v("HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n"),
    v("HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
    v("OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"),
    v("absolute-form", "GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n"),
    v("empty field value", get + "X-Empty:\r\n\r\n"),
    v("value with inner whitespace, trimmed ends", get + "X-A: \t a  b \t\r\n\r\n"),
    v("Connection: close then whitespace", get + "Connection: close \r\n\r\n"),
    v("Content-Length with leading zeros", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 005\r\n\r\nhello"),
    v("upper-case field names", "GET / HTTP/1.1\r\nHOST: a\r\nCONTENT-LENGTH: 0\r\n\r\n"),
    v("Expect: 100-continue", "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi"),
    v("WebSocket upgrade", "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"),
    v("underscore in an ordinary name", get + "X_Custom: 1\r\n\r\n"),
    v("obs-text in a value", get + "X-Name: caf\u{E9}\r\n\r\n"),

    // CL/TE smuggling.
    v("CL.TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", "RRA",
      "h11 lets Transfer-Encoding win over Content-Length (RFC 9112 §6.3 allows a server that); the upstream might pick Content-Length, so Gatehouse refuses like llhttp"),
    v("TE.CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n", "RRA",
      "as CL.TE"),
    v("duplicate CL, different", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "RRR"),
    v("duplicate CL, same", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab", "RRA",
      "h11 merges identical values (RFC 9110 §8.6 allows it); any duplicate is refused, as llhttp does"),
    v("CL list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2, 2\r\n\r\nab", "RRA",
      "as duplicate CL, same"),
    v("CL with a plus sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +2\r\n\r\nab", "RRR"),
    v("CL with inner space", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\nab", "RRR"),
    v("CL overflow", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\nab", "RRI",
      "h11 takes the 23-digit length and waits for that much body; llhttp and Gatehouse refuse the overflow"),
    v("CL negative", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\nab", "RRR"),
    v("TE chunked twice in one value", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", "RRR"),
    v("TE in two fields", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "RRR"),
    v("TE chunked, identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", "RRR"),
    v("TE identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\nContent-Length: 2\r\n\r\nab", "RRR"),
    v("TE gzip, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "RAR",
      "llhttp accepts any coding list ending in chunked; Gatehouse relays only exactly `chunked` (501), as h11"),
    v("TE xchunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", "RRR"),
    v("TE chunked with a trailing comma", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n0\r\n\r\n", "RRR"),
    v("TE value with a leading tab", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n"),
    v("TE value with a vertical tab", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \u{0B}chunked\r\n\r\n0\r\n\r\n", "RRR"),
    v("TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "RAA",
      "RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message is faulty framing; both peers accept it"),
    v("Transfer_Encoding next to CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer_Encoding: chunked\r\n\r\n0\r\n\r\n", "RAA",
      "both peers treat the look-alike as an ordinary field (right for them), but upstreams that fold `_` into `-` (CGI/WSGI-style environments) would see a second framing field: issue 11"),
    v("Content_Length", "POST / HTTP/1.1\r\nHost: a\r\nContent_Length: 5\r\n\r\nhello", "RAA",
      "as Transfer_Encoding next to CL"),
    v("space before colon in TE", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", "RRR"),
    v("obs-fold TE", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", "RRA",
      "h11 unfolds obs-fold (RFC 9112 §5.2 allows replacing it with SP); llhttp strict and Gatehouse refuse"),
    v("obs-fold ordinary value", get + "X-A: a\r\n b\r\n\r\n", "RRA",
      "as obs-fold TE"),

    // Line endings and control bytes.
    v("LF-only lines", "GET / HTTP/1.1\nHost: a\n\n", "RRA",
      "h11 accepts bare LF line ends (RFC 9112 §2.2 MAY); Gatehouse requires CRLF like llhttp: a peer that does not would split lines elsewhere"),
    v("LF-only blank line", get + "\n", "RRA",
      "as LF-only lines"),
    v("bare CR in a value", get + "X-A: a\rb\r\n\r\n", "RRR"),
    v("bare CR ending a line", "GET / HTTP/1.1\rHost: a\r\n\r\n", "RRR"),
    v("NUL in a value", get + "X-A: a\u{0}b\r\n\r\n", "RRR"),
    v("NUL in a name", get + "X\u{0}A: b\r\n\r\n", "RRR"),
    v("DEL in a value", get + "X-A: a\u{7F}\r\n\r\n", "RRA",
      "h11 lets DEL through; it is not a field-vchar (RFC 9110 §5.5)"),
    v("ESC in a value", get + "X-A: \u{1B}[31m\r\n\r\n", "RRA",
      "h11 lets control bytes other than NUL, CR and LF through; RFC 9110 §5.5 does not"),
    v("NUL in the target", "GET /a\u{0}b HTTP/1.1\r\nHost: a\r\n\r\n", "RRR"),
    v("leading CRLF before the request line", "\r\n" + get + "\r\n", "RAR",
      "llhttp skips empty lines before a request line (RFC 9112 §2.2 SHOULD); Gatehouse refuses like h11: after a body it is a sign of a framing desync"),

    // Request line.
    v("lower-case method", "get / HTTP/1.1\r\nHost: a\r\n\r\n", "RRA",
      "h11 accepts any token as a method; llhttp has a fixed table; Gatehouse relays only its known list (501)"),
    v("unknown method", "FOO / HTTP/1.1\r\nHost: a\r\n\r\n", "RRA",
      "as lower-case method"),
    v("two spaces after the method", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", "RAR",
      "llhttp accepts repeated spaces in the request line; h11 and Gatehouse refuse (RFC 9112 §3: single SP)"),
    v("tab as separator", "GET\t/\tHTTP/1.1\r\nHost: a\r\n\r\n", "RRR"),
    v("space after the version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", "RRR"),
    v("HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", "RRA",
      "h11 accepts any HTTP/1.x; Gatehouse answers 505 like llhttp refuses"),
    v("HTTP/0.9 line", "GET /\r\n\r\n", "RRR"),
    v("lower-case http", "GET / http/1.1\r\nHost: a\r\n\r\n", "RRR"),
    v("raw # in the target", "GET /public#/../admin HTTP/1.1\r\nHost: a\r\n\r\n", "RAA",
      "both peers accept a fragment on the wire; a client never sends one (RFC 9112 §3.2) and a route matcher and an upstream could split the target differently"),
    v("non-ASCII target", "GET /caf\u{E9} HTTP/1.1\r\nHost: a\r\n\r\n", "RRR"),
    v("asterisk with GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", "RAA",
      "`*` is only for OPTIONS (RFC 9112 §3.2.4); both peers accept it with GET"),
    v("rootless target", "GET http:a/admin HTTP/1.1\r\nHost: a\r\n\r\n", "RRA",
      "h11 accepts any visible target; neither origin- nor absolute-form (RFC 9112 §3.2)"),
    v("CONNECT", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", "RAA",
      "both peers parse CONNECT; Gatehouse does not tunnel and answers 501"),
    v("h2c preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "RRA",
      "h11 takes PRI as a method token; llhttp pauses for the HTTP/2 preface; Gatehouse: unknown method (501)"),

    // Host.
    v("missing Host", "GET / HTTP/1.1\r\nX: y\r\n\r\n", "RAR",
      "llhttp does not check Host; RFC 9112 §3.2 requires exactly one in HTTP/1.1 (400), as h11 does"),
    v("duplicate Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "RAR",
      "as missing Host"),
    v("empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", "RAA",
      "Host must be uri-host [\":\" port] (RFC 9110 §7.2); neither peer checks its value"),
    v("Host with a slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", "RAA",
      "as empty Host"),
    v("Host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "RAA",
      "as empty Host"),

    // Field names.
    v("empty name", get + ": x\r\n\r\n", "RRR"),
    v("name with a slash", get + "X/A: b\r\n\r\n", "RRR"),
    v("name with a space inside", get + "X A: b\r\n\r\n", "RRR"),
    v("no colon", get + "Junk\r\n\r\n", "RRR"),
    v("whitespace before the first field", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", "RRR"),

    // Chunked bodies.
    v("chunk size overflow", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF1\r\nx\r\n0\r\n\r\n", "RRI",
      "h11 has no chunk-size limit and waits for 2^68 bytes; llhttp and Gatehouse refuse"),
    v("chunk size 2^64+1 wrapping to 1", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000001\r\nx\r\n0\r\n\r\n", "RRI",
      "as chunk size overflow (and it does not wrap in either refusing parser)"),
    v("chunk size with 0x", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", "RRR"),
    v("chunk size with a space", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n", "RRA",
      "h11 allows whitespace after the chunk size (RFC 9112's BWS); llhttp strict and Gatehouse do not"),
    v("chunk size with whitespace before ;", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 ;a=b\r\nhello\r\n0\r\n\r\n", "RRR"),
    v("chunk size negative", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", "RRR"),
    v("chunk size line ends in LF", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", "RRR"),
    v("chunk data ends in LF", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n", "RRR"),
    v("chunk data longer than its size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n", "RRR"),
    v("chunk extension with a bare CR", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a\rb\r\nhello\r\n0\r\n\r\n", "RRA",
      "h11 does not look inside chunk extensions"),
    v("chunk extension with a NUL in quotes", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"\u{0}\"\r\nhello\r\n0\r\n\r\n", "RRA",
      "as chunk extension with a bare CR"),
    v("chunk extension without a name", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;=x\r\nhello\r\n0\r\n\r\n", "RAA",
      "neither peer checks extension syntax; RFC 9112 §7.1.1 requires a token name"),
    v("trailer with obs-fold", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: b\r\n c\r\n\r\n", "RRA",
      "h11 unfolds trailers as it does fields; llhttp strict and Gatehouse refuse"),
    v("trailer Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 5\r\n\r\n", "RRA",
      "h11 accepts framing fields in trailers; RFC 9110 §6.5.1 forbids them"),
    v("last chunk without the final CRLF", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", "III"),
]

@Suite("HTTP1 differential (llhttp, h11)")
struct HTTP1DifferentialTests {
    @Test func recordedVectors() throws {
        let h11 = try h11Parse(differentialVectors.map(\.raw))
        var dump = ""
        defer {
            // HTTP1_DIFF_DUMP=file writes every verdict, to review the table when a peer changes.
            if let path = ProcessInfo.processInfo.environment["HTTP1_DIFF_DUMP"] { try? dump.write(toFile: path, atomically: true, encoding: .utf8) }
        }
        for (vector, h11Verdict) in zip(differentialVectors, h11) {
            let gatehouse = PeerVerdict(gatehouseParse(vector.raw))
            let llhttp = llhttpParse(vector.raw)
            let letters = String([gatehouse.letter, llhttp.letter, h11Verdict.letter])
            dump += "\(letters) | \(vector.name) | \(gatehouse) | \(llhttp) | \(h11Verdict)\n"
            #expect(letters == vector.verdicts, "\(vector.name): Gatehouse \(gatehouse) | llhttp \(llhttp) | h11 \(h11Verdict)")
            checkAgreement(vector.name, vector.raw, gatehouse: gatehouse, llhttp: llhttp, h11: h11Verdict)
            #expect(expectSplitInvariant(vector.raw).isEmpty, "\(vector.name)")
        }
    }

    /// 27 × 256 inputs. The invariants must hold for all. The disagreements (run with `HTTP1_DIFF_DUMP=file`
    /// for the per-place list in `file.mutations`; as of llhttp 9.3 / h11 0.14) are all Gatehouse refusing:
    /// - method (`G§ET`, `GET§`): any token byte → R R A: an unknown method; h11 takes any token, llhttp has a table.
    /// - `GET§ /` and `GET / §HTTP` with SP → R A R: llhttp accepts repeated spaces in the request line.
    /// - `/a§b` with `#` → R A A: a raw fragment (see "raw # in the target").
    /// - value places (`X-Ab:§c`, `c§d`, `cd§`, `Host: a§`, `Connection: close§`, trailer `A: b§`) with
    ///   0x01–0x08, 0x0E–0x1F, 0x7F (and LF at the end of a line) → R R A: h11 lets controls and bare LF through.
    /// - `Host: a§` with bytes outside uri-host (`"#/<>?@\^`{|}`, obs-text) → R A A: Host is checked.
    /// - `Connection: close§` with non-token bytes (`"():;<=>?@[\]{}/`, obs-text) → R A A: Connection is a token list.
    /// - `§X-Ab` with SP/HT → R R A (h11 unfolds obs-fold), with LF → R R A (bare LF).
    /// - blank line `§\r\n` with LF → R R A (bare LF).
    /// - `Content§Length` / `Transfer§Encoding` with `_` or `.` → R A A: framing look-alikes.
    /// - `Content-Length: 5§` with HT, LF → R R A; `chunked§` with HT → R R A: h11 trims a tab (llhttp does not).
    /// - `Transfer-Encoding: §chunked` with `,` → R A R: llhttp accepts `,chunked`; only exactly `chunked` is relayed.
    /// - chunk size `5§` with SP, HT, `;`-less junk → R R A: h11 allows BWS there; `5;a§` with `=` → R A A
    ///   (an extension with an empty value), with any non-token → R R A (h11 does not parse extensions).
    @Test func everyByteAtEveryPlace() throws {
        let inputs = mutationTemplates.flatMap(mutations(of:))
        let h11 = try h11Parse(inputs.map(\.raw))
        var summary: [String: [UInt8]] = [:]
        for (index, input) in inputs.enumerated() {
            let template = mutationTemplates[index / 256]
            let name = "\(template.debugDescription) with byte 0x\(String(input.byte, radix: 16))"
            let gatehouse = PeerVerdict(gatehouseParse(input.raw))
            let llhttp = llhttpParse(input.raw)
            checkAgreement(name, input.raw, gatehouse: gatehouse, llhttp: llhttp, h11: h11[index])
            let letters = String([gatehouse.letter, llhttp.letter, h11[index].letter])
            summary["\(template.debugDescription) \(letters)", default: []].append(input.byte)
            for k in [input.at, input.at + 1] {
                #expect(gatehouseParse(input.raw, splits: [k]) == gatehouseParse(input.raw), "\(name) split at \(k)")
            }
        }
        if let path = ProcessInfo.processInfo.environment["HTTP1_DIFF_DUMP"] {
            let text = summary.keys.sorted().map { key in
                "\(key): " + summary[key]!.map { String(format: "%02x", $0) }.joined(separator: " ")
            }.joined(separator: "\n")
            try? text.write(toFile: path + ".mutations", atomically: true, encoding: .utf8)
        }
    }
}

/// Inputs made by inserting each of the 256 byte values at a marked place (§) of a valid request: every
/// place where a parser must decide whether a byte belongs (method, separators, target, version, field
/// name, around the colon, value, line ends, framing values, chunk sizes, chunk data ends, trailers).
let mutationTemplates: [String] = [
    "G§ET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET§ / HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET /a§b HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET / §HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET / HTTP/1.1§\r\nHost: a\r\n\r\n",
    "GET / HTTP/1.1\r§\nHost: a\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\n§X-Ab: c\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\nX-A§b: c\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\nX-Ab§: c\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\nX-Ab:§c\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\nX-Ab: c§d\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\nX-Ab: cd§\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a§\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\n§\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\nConnection: close§\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: §5\r\n\r\nhello",
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5§\r\n\r\nhello",
    "POST / HTTP/1.1\r\nHost: a\r\nContent§Length: 5\r\n\r\nhello",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: §chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked§\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer§Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n§5\r\nhello\r\n0\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5§\r\nhello\r\n0\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a§\r\nhello\r\n0\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello§\r\n0\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nA§: b\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nA: b§\r\n\r\n",
]

func mutations(of template: String) -> [(byte: UInt8, raw: [UInt8], at: Int)] {
    let parts = template.components(separatedBy: "§")
    let head = bytes(parts[0])
    let tail = bytes(parts[1])
    return (0...255).map { (UInt8($0), head + [UInt8($0)] + tail, head.count) }
}

/// The rules that hold for every input: what Gatehouse accepts, both peers accept with the same framing;
/// what llhttp (strict) refuses, Gatehouse refuses. llhttp refuses some heads mid-line (at the first bad byte);
/// Gatehouse judges a line once its CRLF is in (or the head limit is reached) and forwards nothing before a
/// head is complete, so there "refuses" means: still incomplete, and refused once the head is ended.
func checkAgreement(_ name: String, _ raw: [UInt8], gatehouse: PeerVerdict, llhttp: PeerVerdict, h11: PeerVerdict) {
    if let ours = gatehouse.request {
        #expect(llhttp.request.map(ours.asNIOStrings.sameFraming) == true, "\(name): Gatehouse \(ours), llhttp \(llhttp)")
        #expect(h11.request.map(ours.sameFraming) == true, "\(name): Gatehouse \(ours), h11 \(h11)")
    }
    guard case .refuse = llhttp else { return }
    switch gatehouse {
    case .refuse: break
    case .accept: Issue.record("\(name): llhttp refuses (\(llhttp)), Gatehouse \(gatehouse)")
    case .incomplete:
        let ended = gatehouseParse(raw + bytes("\r\n\r\n"))
        #expect(ended.refusal != nil, "\(name): llhttp refuses (\(llhttp)) mid-line, Gatehouse with the head ended: \(ended)")
    }
}
