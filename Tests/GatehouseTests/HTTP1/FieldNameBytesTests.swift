import GatehouseHTTP1
import Testing

/// Every byte value at every position of a long field name (three words and a tail, for any scan that takes
/// names eight bytes at a time): a tchar passes, `:` ends the name, anything else is refused, in requests and
/// in responses alike. (A word-at-a-time scan of letters, digits and `-` was tried on 2026-12-03 and measured
/// no faster on real names; this holds any such change to the byte rule.)
@Suite("HTTP1 field name bytes")
struct FieldNameBytesTests {
    private static let tchars = Set(Array("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8))

    @Test func everyByteAtEveryPositionOfALongName() {
        let base = Array("X-Abcdefghij-klmnopqrstuVW".utf8)  // 26 bytes: three words and a tail
        for position in 0..<base.count {
            for byte in 0...255 where byte != 0x0D && byte != 0x0A {
                var name = base
                name[position] = UInt8(byte)
                let raw = Array("GET / HTTP/1.1\r\nHost: a\r\n".utf8) + name + Array(": v\r\n\r\n".utf8)
                let outcome = gatehouseParse(raw)
                let header = outcome.request?.headers.last
                if Self.tchars.contains(UInt8(byte)) {
                    #expect(header?.name == latin1(name[...]), "\(byte) at \(position): \(outcome)")
                } else if byte == UInt8(ascii: ":") && position > 0 {
                    #expect(header?.name == latin1(name[..<position]), "':' at \(position): \(outcome)")
                } else {
                    #expect(outcome.refusal != nil, "\(byte) at \(position) accepted: \(outcome)")
                }

                var parser = ResponseHeadParser()
                let response = Array("HTTP/1.1 200 OK\r\n".utf8) + name + Array(": v\r\nContent-Length: 0\r\n\r\n".utf8)
                let parsed = parser.parse(response)
                if Self.tchars.contains(UInt8(byte)) || (byte == UInt8(ascii: ":") && position > 0) {
                    guard case .complete(let head) = parsed else {
                        Issue.record("response: \(byte) at \(position) refused: \(parsed)")
                        continue
                    }
                    let end = Self.tchars.contains(UInt8(byte)) ? name.count : position
                    #expect(head.fields.first?.name.count == end, "response: \(byte) at \(position)")
                } else if case .complete = parsed {
                    Issue.record("response: \(byte) at \(position) accepted")
                }
            }
        }
    }
}
