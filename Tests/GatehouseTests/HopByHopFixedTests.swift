import Foundation
import GatehouseCore
import Testing

/// `HopByHop.isFixed` picks a candidate by length and first letter; it must answer as a case-insensitive
/// lookup in `HopByHop.names` does, for every name in every case, near misses (one byte changed, one added or
/// removed, `_` for `-`) and non-ASCII look-alikes.
@Suite struct HopByHopFixedTests {
    static func reference(_ name: String) -> Bool {
        HopByHop.names.contains { $0.utf8.count == name.utf8.count && asciiCaseInsensitiveEquals($0, name) }
    }

    @Test func lookupByLengthAndFirstLetterEqualsTheSet() {
        var names: [String] = ["", "t", "x", "host", "authorization", "Keep-Alive", "TE", "Te", "tE", "ſe", "\u{212A}eep-alive"]
        for name in HopByHop.names {
            names += [name, name.uppercased(), name.prefix(1).uppercased() + name.dropFirst(), name.replacingOccurrences(of: "-", with: "_"),
                      name + "s", String(name.dropLast()), "x" + name, String(name.dropFirst())]
            let bytes = Array(name.utf8)
            for i in bytes.indices {
                var changed = bytes
                changed[i] ^= 0x01
                names.append(String(decoding: changed, as: UTF8.self))
            }
        }
        for name in names {
            #expect(HopByHop.isFixed(name) == Self.reference(name), "\(name)")
        }
        #expect(names.filter(HopByHop.isFixed).count >= 2 * HopByHop.names.count)
    }
}
