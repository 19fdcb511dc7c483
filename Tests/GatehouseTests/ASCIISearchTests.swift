import GatehouseCore
import Testing

/// `ASCIISearch` finds `?` and a leading `/` on bytes; the request-target used to be read by characters. Both
/// must agree on every text, including where grapheme rules join an ASCII byte to its neighbours (combining
/// marks after it, prepended scalars and ZWJ before it, CR LF).
@Suite struct ASCIISearchTests {
    static let pieces = ["?", "/", "a", "%3F", "\u{301}", "\u{600}", "\u{200D}", "\u{903}", "é", "e\u{301}", "\u{1F600}", "\r", "\n", "\r\n", ""]

    @Test func bytesAndCharactersAgree() {
        var checked = 0
        for a in Self.pieces {
            for b in Self.pieces {
                for c in Self.pieces {
                    for text in [a + b + c, "/" + a + b + c, a + "?" + b + c, "/" + a + "?" + b + "?" + c] {
                        let whole = text[...]
                        for (name, ascii, character) in [("?", UInt8(ascii: "?"), Character("?")), ("/", UInt8(ascii: "/"), Character("/"))] {
                            let bytes = ASCIISearch.firstIndex(of: ascii, in: whole).map { text.utf8.distance(from: text.startIndex, to: $0) }
                            let characters = whole.firstIndex(of: character).map { text.utf8.distance(from: text.startIndex, to: $0) }
                            #expect(bytes == characters, "\(name) in \(Array(text.unicodeScalars))")
                            #expect(ASCIISearch.startsWith(ascii, text) == (text.first == character), "\(name) starts \(Array(text.unicodeScalars))")
                        }
                        // A slice that does not start at the string's start.
                        if let first = text.indices.first, text.count > 1 {
                            let tail = text[text.index(after: first)...]
                            let bytes = ASCIISearch.firstIndex(of: UInt8(ascii: "?"), in: tail)
                            #expect(bytes == tail.firstIndex(of: "?"), "tail of \(Array(text.unicodeScalars))")
                        }
                        checked += 1
                    }
                }
            }
        }
        #expect(checked == Self.pieces.count * Self.pieces.count * Self.pieces.count * 4)
    }
}
