@testable import GatehouseCore
import GatehouseHTTP1
import Testing

/// The data plane tells `CanonicalRequest` that its fields were checked (`RawRequest.fieldsChecked`): whatever
/// GatehouseHTTP1's parser accepts in a field name or value, read into text as RequestPolicy.prepare reads it,
/// must pass the checks `CanonicalRequest` then skips. Every byte value, and some multi-byte sequences
/// (obs-text that is not UTF-8), at the start, middle and end of a name and of a value.
@Suite struct ParserFieldRulesTests {
    static func accepted(_ name: [UInt8], _ value: [UInt8]) -> (name: String, value: String)? {
        let head = Array("GET / HTTP/1.1\r\nHost: h\r\n".utf8) + name + Array(": ".utf8) + value + Array("\r\n\r\n".utf8)
        var parser = RequestHeadParser()
        guard case .complete(let parsed) = parser.parse(head) else { return nil }
        guard let field = parsed.fields.last, parsed.fields.count == 2 else { return nil }
        return (String(decoding: head[field.name], as: UTF8.self), String(decoding: head[field.value], as: UTF8.self))
    }

    static let pieces: [[UInt8]] = (0...255).map { [UInt8($0)] } + [[0xC3, 0xA9], [0xFF, 0xFE], [0xE2, 0x80], [0xED, 0xA0, 0x80], [0xC0, 0x80]]

    @Test func whatTheParserAcceptsInANameIsAToken() {
        var accepted = 0
        for piece in Self.pieces {
            for name in [piece + Array("x".utf8), Array("x".utf8) + piece + Array("y".utf8), Array("x".utf8) + piece] {
                guard let field = Self.accepted(name, Array("v".utf8)) else { continue }
                accepted += 1
                #expect(HTTPSyntax.isToken(field.name), "\(name)")
            }
        }
        #expect(accepted > 3 * 70)  // the 77 tchar bytes are accepted at every position
    }

    @Test func whatTheParserAcceptsInAValuePassesTheValueRule() {
        var accepted = 0
        for piece in Self.pieces {
            for value in [piece + Array("v".utf8), Array("v".utf8) + piece + Array("w".utf8), Array("v".utf8) + piece, piece] {
                guard let field = Self.accepted(Array("X-Test".utf8), value) else { continue }
                accepted += 1
                #expect(HTTPSyntax.isValidFieldValue(field.value), "\(value)")
                #expect(HTTPSyntax.isToken(field.name))
            }
        }
        #expect(accepted > 4 * 200)  // visible ASCII and obs-text are accepted
    }
}
