import Foundation
import GatehouseHTTP1
@testable import GatehouseServer
import Testing

/// A field name or method that matches a common spelling byte for byte becomes that literal; anything else
/// (another case, a prefix, a longer name) is made from its bytes. Either way the string is exactly the bytes sent.
@Suite struct CommonNamesTests {
    static func literal(_ text: String, _ table: [[(bytes: [UInt8], name: String)]]) -> String? {
        Array(text.utf8).withUnsafeBytes { CommonNames.literal($0, in: table) }
    }

    @Test func exactSpellingsOnly() {
        for name in CommonNames.fieldNames {
            #expect(Self.literal(name, CommonNames.fieldNamesByLength).map { Array($0.utf8) } == Array(name.utf8))
            for variant in [name.uppercased(), name.lowercased(), String(name.dropLast()), name + "x", "x" + name.dropFirst()] where variant != name
                && !CommonNames.fieldNames.contains(variant)
            {
                #expect(Self.literal(variant, CommonNames.fieldNamesByLength) == nil, "\(variant)")
            }
        }
        for method in CommonNames.methods {
            #expect(Self.literal(method, CommonNames.methodsByLength) == method)
            #expect(Self.literal(method.lowercased(), CommonNames.methodsByLength) == nil)
        }
        #expect(Self.literal("", CommonNames.fieldNamesByLength) == nil)
        #expect(Self.literal(String(repeating: "A", count: 40), CommonNames.fieldNamesByLength) == nil)
    }

    @Test func preparedNamesAreTheBytesSent() throws {
        let fields = [("Host", "h"), ("HOST-X", "1"), ("user-agent", "curl"), ("User-agent", "x"), ("Accept", "*/*"), ("X-Custom", "v"),
                      ("Sec-Fetch-Site", "none"), ("authorization", "Bearer t")]
        let head = "get /a HTTP/1.1\r\n" + fields.map { "\($0.0): \($0.1)\r\n" }.joined() + "\r\n"
        for method in ["GET", "PURGE", "OPTIONS", "PROPFIND"] {
            let bytes = Array((method + head.dropFirst(3)).utf8)
            var parser = RequestHeadParser()
            guard case .complete(let parsed) = parser.parse(bytes) else {
                Issue.record("head refused: \(method) \(parser.parse(bytes))")
                continue
            }
            let names = parsed.fields.map { field in bytes.withUnsafeBytes { RequestPolicy.name($0, field.name) } }
            #expect(names.map { Array($0.utf8) } == fields.map { Array($0.0.utf8) })
            let m = bytes.withUnsafeBytes { CommonNames.literal(UnsafeRawBufferPointer(rebasing: $0[parsed.method]), in: CommonNames.methodsByLength) }
            #expect(m == (CommonNames.methods.contains(method) ? method : nil))
        }
    }
}
