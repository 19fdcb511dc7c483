@testable import GatehouseCore
import Testing

/// `Base64URL.decode` works four characters at a time into storage sized up front; the former loop, one
/// character and one appended byte at a time, is the oracle. Every length from 0 to 64 over random text drawn
/// from the alphabet with, now and then, a character outside it (`+`, `/`, `=`, space, NUL, high bytes), and every
/// last character of short texts (the trailing-bits rule), strict and lenient.
@Suite struct Base64URLBlockDecodeTests {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    static func oracle(_ text: [UInt8], strict: Bool) -> [UInt8]? {
        if text.count % 4 == 1 { return nil }
        var out: [UInt8] = []
        var accumulator: UInt32 = 0
        var bits = 0
        for c in text {
            guard let v = alphabet.firstIndex(of: c) else { return nil }
            accumulator = accumulator << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
                accumulator &= (1 << UInt32(bits)) - 1
            }
        }
        if strict && accumulator != 0 { return nil }
        return out
    }

    @Test func blocksEqualTheCharacterLoop() {
        var generator = SystemRandomNumberGenerator()
        let outside: [UInt8] = [UInt8(ascii: "+"), UInt8(ascii: "/"), UInt8(ascii: "="), 0x20, 0x00, 0x80, 0xFF, UInt8(ascii: ".")]
        var valid = 0
        for length in 0...64 {
            for _ in 0..<60 {
                var text = (0..<length).map { _ in Self.alphabet.randomElement(using: &generator)! }
                if length > 0, Int.random(in: 0..<4, using: &generator) == 0 {
                    text[Int.random(in: 0..<length, using: &generator)] = outside.randomElement(using: &generator)!
                }
                let strict = Base64URL.decode(text)
                #expect(strict == Self.oracle(text, strict: true), "\(String(decoding: text, as: UTF8.self))")
                if strict != nil { valid += 1 }
            }
        }
        for prefix in ["", "AB", "ABC", "ABCDE", "ABCDEF"] {
            for last in Self.alphabet + outside {
                let text = Array(prefix.utf8) + [last]
                #expect(Base64URL.decode(text) == Self.oracle(text, strict: true), "\(prefix) + \(last)")
            }
        }
        #expect(valid > 500)  // about 1,000: a quarter of the lengths, and most trailing bits, are refused
    }
}
