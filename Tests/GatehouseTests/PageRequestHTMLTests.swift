@testable import GatehouseEngine
@testable import GatehouseCore
import Testing

/// `Gatekeeper.mentionsHTML` searches `Accept` for `text/html` on bytes; the character search it replaced is
/// the oracle, over case variants, near misses and the neighbourhoods where grapheme rules join characters.
@Suite struct PageRequestHTMLTests {
    static let pieces = ["text/html", "TEXT/HTML", "Text/Html", "text/htm", "ext/html", "text/xhtml", "text/html;q=0.9", ",", " ", "*/*",
                         "\u{301}", "\u{600}", "\u{200D}", "é", "\u{1F600}", "application/json", ""]

    @Test func bytesAndCharactersAgree() {
        var found = 0
        for a in Self.pieces {
            for b in Self.pieces {
                for c in Self.pieces {
                    let value = a + b + c
                    let expected = value.asciiLowercased.contains("text/html")
                    #expect(Gatekeeper.mentionsHTML(value) == expected, "\(Array(value.unicodeScalars))")
                    if expected { found += 1 }
                }
            }
        }
        #expect(found > 1000)
    }

    /// The JSON writer's whole-string path against the scalar loop's escapes.
    @Test func jsonStringsWriteAsBefore() {
        for text in ["plain", "with \"quote\"", "back\\slash", "tab\there", "line\nbreak", "\u{7F}", "\u{2028}", "é", "", "Not found."] {
            var out = ""
            JSONValue.writeString(text, to: &out)
            #expect((try? JSONParser.parse(Array(out.utf8))) == .string(text), "\(out)")
        }
        var plain = ""
        JSONValue.writeString("You do not have access to this resource.", to: &plain)
        #expect(plain == "\"You do not have access to this resource.\"")
    }
}
