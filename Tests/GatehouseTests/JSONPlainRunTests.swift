import GatehouseCore
import Testing

/// `JSONParser.endOfPlainRun` skips eight bytes at a time: it must stop exactly where a byte-by-byte walk
/// stops (the first `"`, `\` or control character), wherever that byte sits in a word and whatever follows.
@Suite("JSON string runs")
struct JSONPlainRunTests {
    private func bytewise(_ bytes: [UInt8], from start: Int) -> Int {
        var i = start
        while i < bytes.count, bytes[i] != UInt8(ascii: "\""), bytes[i] != UInt8(ascii: "\\"), bytes[i] >= 0x20 { i += 1 }
        return i
    }

    @Test func stopsWhereAByteByByteWalkStops() {
        // Every special byte, and neighbours that differ from one by a bit or by one, at every position of
        // runs up to three words long, from every start.
        let specials: [UInt8] = [0x22, 0x5C, 0x00, 0x01, 0x1F, 0x0A, 0x09]
        let near: [UInt8] = [0x20, 0x21, 0x23, 0x5B, 0x5D, 0x7F, 0x80, 0xFF, 0xA2, 0xDC, 0x62]
        for length in 0...26 {
            for position in 0...length {
                for special in specials + near {
                    var bytes = (0..<length).map { near[$0 % near.count] }
                    if position < length { bytes[position] = special }
                    for start in 0...length {
                        #expect(JSONParser.endOfPlainRun(bytes, from: start) == bytewise(bytes, from: start),
                                "length \(length), \(special) at \(position), from \(start)")
                    }
                }
            }
        }
    }

    @Test func stringsWithEscapesAndControlsParseAsBefore() throws {
        #expect(try JSONParser.parse(#"["abcdefghijklmnop\"qrstuvwx\\yz", "0123456789abcdef\u00e9"]"#)
                == .array([.string("abcdefghijklmnop\"qrstuvwx\\yz"), .string("0123456789abcdef\u{e9}")]))
        #expect(throws: JSONParseError.self) { try JSONParser.parse(Array("\"0123456789abcdef\u{1}\"".utf8)) }
        #expect(throws: JSONParseError.self) { try JSONParser.parse(Array("\"0123456789abcdefghij".utf8)) }
    }
}
