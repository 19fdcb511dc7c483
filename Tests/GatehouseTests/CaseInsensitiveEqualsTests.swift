@testable import GatehouseCore
@testable import GatehouseHTTP1
import Testing

/// `asciiCaseInsensitiveEquals` compares eight bytes at a time (with an overlapping last word); it must answer
/// as folding `A`...`Z` byte by byte does, for every byte value at every position of every length around the
/// word size, and never fold anything else (`@`, `[`, `` ` ``, `{` and bytes from 0x80 sit next to the letters).
@Suite struct CaseInsensitiveEqualsTests {
    static func reference(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        func fold(_ c: UInt8) -> UInt8 { c >= 0x41 && c <= 0x5A ? c + 0x20 : c }
        return a.count == b.count && zip(a, b).allSatisfy { fold($0) == fold($1) }
    }

    static func words(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        a.withUnsafeBytes { x in b.withUnsafeBytes { y in asciiCaseInsensitiveEquals(x, y) } }
    }

    @Test func everyBytePairAtEveryPositionAgreesWithByteByByteFolding() {
        let base = Array("x-forwarded-for-and-more".utf8)
        for length in 0...base.count {
            let a = Array(base.prefix(length))
            #expect(Self.words(a, a))
            for position in 0..<length {
                for c in 0...255 {
                    var changed = a
                    changed[position] = UInt8(c)
                    let want = Self.reference(a, changed)
                    #expect(Self.words(a, changed) == want, "length \(length) position \(position) byte \(c)")
                    #expect(Self.words(changed, a) == want)
                }
            }
        }
    }

    @Test func pairsOfNonLettersAroundTheAlphabetAreNotFolded() {
        // Every pair of byte values, in a word and in the byte-by-byte tail.
        for c in 0...255 {
            for d in 0...255 {
                for length in [1, 8, 11] {
                    var a = Array(repeating: UInt8(ascii: "k"), count: length)
                    var b = a
                    a[length - 1] = UInt8(c)
                    b[length - 1] = UInt8(d)
                    if Self.words(a, b) != Self.reference(a, b) {
                        Issue.record("bytes \(c) and \(d) at length \(length)")
                        return
                    }
                }
            }
        }
    }

    /// The parsers' `equalsIgnoringCase` (bytes against a lower-case literal, eight at a time from eight up):
    /// every byte value at every position of the names and tokens they look for, against byte-by-byte folding.
    @Test func parserLiteralsAgreeWithByteByByteFolding() {
        func check(_ literal: StaticString) {
            let word = Array(UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
            for position in word.indices {
                for c in 0...255 {
                    var bytes = Array(word.map { $0 >= 0x61 && $0 <= 0x7A ? $0 - 0x20 : $0 })  // upper case
                    bytes[position] = UInt8(c)
                    // Inside a larger buffer, so the range does not start at the buffer's start.
                    let buffer = [UInt8(ascii: "x")] + bytes + [UInt8(ascii: "y")]
                    let got = buffer.withUnsafeBytes { $0.equalsIgnoringCase(1..<(1 + bytes.count), literal) }
                    if got != Self.reference(bytes, word) {
                        Issue.record("\(literal) with byte \(c) at \(position)")
                        return
                    }
                }
            }
        }
        for literal: StaticString in ["te", "host", "close", "upgrade", "chunked", "keep-alive", "connection", "content-length",
                                       "transfer-encoding", "proxy-connection", "100-continue"] {
            check(literal)
        }
        #expect([UInt8]("Content-Lengts".utf8).withUnsafeBytes { !$0.equalsIgnoringCase(0..<14, "content-length") })
    }

    @Test func stringsOfDifferentLengthsOrSpellings() {
        #expect(asciiCaseInsensitiveEquals("Authorization", "authorization"))
        #expect(asciiCaseInsensitiveEquals("X-FORWARDED-FOR", "x-forwarded-for"))
        #expect(!asciiCaseInsensitiveEquals("Authorization", "authorizatioN "))
        #expect(!asciiCaseInsensitiveEquals("authorization", "authorizatiom"))
        #expect(!asciiCaseInsensitiveEquals("host", "hos"))
        // Not Unicode case folding: the Kelvin sign is not K, `ſ` is not s.
        #expect(!asciiCaseInsensitiveEquals("\u{212A}eep-alive", "keep-alive"))
        #expect(asciiCaseInsensitiveEquals("", ""))
    }
}
