import Foundation
@testable import GatehouseServer
import Testing

/// Request IDs are written with bit arithmetic rather than a digit table: the same text as printf's `%016llx`
/// for each word, for every nibble value in every position.
@Suite struct RequestIDTests {
    static func printf(_ high: UInt64, _ low: UInt64) -> String { String(format: "%016llx%016llx", high, low) }

    @Test func matchesPrintfForEdgeValues() {
        let words: [UInt64] = [0, 1, 9, 10, 15, 16, 0x5eed, 0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210, 0x9999_9999_9999_9999,
                               0xaaaa_aaaa_aaaa_aaaa, 0xffff_ffff_ffff_ffff, 0x8000_0000_0000_0000, 0x0000_0000_ffff_ffff, 0xffff_ffff_0000_0000]
        for high in words {
            for low in words {
                #expect(RequestID.hex(high, low) == Self.printf(high, low))
            }
        }
    }

    @Test func matchesPrintfForRandomValues() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<10_000 {
            let high = UInt64.random(in: .min ... .max, using: &generator), low = UInt64.random(in: .min ... .max, using: &generator)
            #expect(RequestID.hex(high, low) == Self.printf(high, low))
        }
    }

    @Test func everyNibbleInEveryPosition() {
        for position in 0..<16 {
            for nibble in UInt64(0)...15 {
                let word = nibble << UInt64(4 * position)
                #expect(RequestID.hex(word, ~word) == Self.printf(word, ~word))
            }
        }
    }
}
