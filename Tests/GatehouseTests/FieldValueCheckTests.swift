@testable import GatehouseCore
import Testing

/// `HTTPSyntax.isValidFieldValue` judges eight bytes at a time; the byte rule (tab, or 0x20 and above but not
/// DEL) is the oracle, at every length and every position of every byte value.
@Suite struct FieldValueCheckTests {
    static func byBytes(_ bytes: [UInt8]) -> Bool { bytes.allSatisfy { $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) } }

    static func check(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(HTTPSyntax.isValidFieldValue(text) == byBytes(Array(text.utf8)), "\(Array(text.utf8))")
    }

    @Test func everyByteAtEveryPositionOfSeveralLengths() {
        for length in [1, 7, 8, 9, 15, 16, 17, 24, 33] {
            for position in 0..<length {
                for byte in UInt8(0)...UInt8(0x7F) {
                    var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                    bytes[position] = byte
                    Self.check(bytes)
                }
            }
        }
    }

    @Test func nonASCIINextToControlsAndTheBoundaries() {
        let pieces: [[UInt8]] = [[0xC3, 0xA9], [0xE2, 0x80, 0xA8], [0xF0, 0x9F, 0x98, 0x80], [0x7F], [0x00], [0x1F], [0x20], [0x09], [0x7E], [0x21]]
        for a in pieces {
            for b in pieces {
                for pad in 0..<9 {
                    Self.check([UInt8](repeating: 0x41, count: pad) + a + b + [UInt8](repeating: 0x42, count: 9 - pad))
                }
            }
        }
        var random = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let length = Int.random(in: 0...100, using: &random)
            Self.check((0..<length).map { _ in Bool.random(using: &random) ? UInt8.random(in: 0x20...0x7E, using: &random) : UInt8.random(in: 0...255, using: &random) })
        }
        #expect(HTTPSyntax.isValidFieldValue("Bearer eyJhbGciOi.eyJzdWIi.sig-_~") && !HTTPSyntax.isValidFieldValue("abcdefgh\u{7F}") && !HTTPSyntax.isValidFieldValue("abcdefghij\r\n"))
    }
}
