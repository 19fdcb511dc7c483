@testable import GatehouseAuth
import GatehouseCore
import Testing

/// `SessionAuthenticator.headerToken` finds the space after the scheme on bytes where that is safe; Clerk's
/// reading (and Gatehouse's before) searches by characters. Both must split every value alike, including
/// where grapheme rules join a space to its neighbours (combining marks, ZWJ, prepended scalars).
@Suite struct HeaderTokenSpaceTests {
    /// The former implementation, by characters, as the oracle.
    static func byCharacters(_ value: String?) -> String? {
        guard let value else { return nil }
        let trimmed = value.trimmingASCIIWhitespace()
        guard !trimmed.isEmpty else { return nil }
        guard let space = trimmed.firstIndex(of: " ") else { return trimmed }
        let scheme = trimmed[..<space]
        guard asciiCaseInsensitiveEquals(String(scheme), "bearer") else { return nil }
        return trimmed[trimmed.index(after: space)...].trimmingASCIIWhitespace()
    }

    static let pieces = ["Bearer", "bearer", "BEARER", "Basic", " ", "  ", "\t", "eyJ.a.b", "ak_123", "x", "\u{301}", "\u{600}", "\u{200D}",
                         "\u{903}", "é", "e\u{301}", "\u{1F600}", "\u{1F1E6}\u{1F1E8}", ",", ""]

    @Test func bytesAndCharactersSplitAlike() {
        var checked = 0
        for a in Self.pieces {
            for b in Self.pieces {
                for c in Self.pieces {
                    for value in [a + b + c, a + " " + b + c, a + b + " " + c, " " + a + " " + b + " " + c] {
                        #expect(SessionAuthenticator.headerToken(value) == Self.byCharacters(value), "\(Array(value.unicodeScalars))")
                        let fast = SessionAuthenticator.firstSpace(value).map { value.utf8.distance(from: value.startIndex, to: $0) }
                        let slow = value.firstIndex(of: " ").map { value.utf8.distance(from: value.startIndex, to: $0) }
                        #expect(fast == slow, "\(Array(value.unicodeScalars))")
                        checked += 1
                    }
                }
            }
        }
        #expect(checked == Self.pieces.count * Self.pieces.count * Self.pieces.count * 4)
    }

    @Test func aJoinedSpaceIsNotTheSchemesEnd() {
        // U+0600 is a prepended scalar: "\u{600} " is one character, so the value is one word, not a scheme and a token.
        #expect(SessionAuthenticator.headerToken("Bearer\u{600} abc") == "Bearer\u{600} abc")
        #expect(SessionAuthenticator.headerToken("Bearer \u{301}abc") == "Bearer \u{301}abc")
        #expect(SessionAuthenticator.headerToken("Bearer eyJ.a.b") == "eyJ.a.b")
        #expect(SessionAuthenticator.headerToken("Basic eyJ.a.b") == nil)
    }
    /// The word-at-a-time test against the byte rule: every byte value at every position of buffers from 1 to
    /// 24 bytes (whole words, partial words, the tail).
    @Test func visibleASCIIWordTestEqualsTheByteRule() {
        for length in 1...24 {
            for position in 0..<length {
                for value in 0...255 {
                    var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                    bytes[position] = UInt8(value)
                    let expected = bytes.allSatisfy { $0 > 0x20 && $0 < 0x7F }
                    let got = bytes.withUnsafeBufferPointer { ASCIISearch.isVisibleASCII($0) }
                    #expect(got == expected, "length \(length), byte \(value) at \(position)")
                }
            }
        }
    }
}
