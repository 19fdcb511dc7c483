@testable import GatehouseCore
import Testing

/// JavaScript without the `u` flag counts UTF-16 code units: an astral character (emoji, U+10000 and above)
/// is two of them. Route regexes must count the same way, or a rule that Clerk applies is skipped (and a
/// protected route proxied under `default: public`). The differential vectors check these against node too.
@Suite struct AstralCharacterRouteTests {
    static let grin = "%F0%9F%98%80"  // U+1F600, "\u{d83d}\u{de00}" in UTF-16

    func outcome(_ pattern: String, _ path: String) throws -> MatchOutcome {
        try RoutePattern(pattern).outcome(for: CanonicalPath(parsing: path))
    }

    /// The reported case: both rules protected, everything else public.
    @Test func twoUnitRulesProtectOneAstralCharacter() throws {
        let table = RouteTable(
            rules: [RouteRule(name: "x", patterns: [try RoutePattern("/x/:id(.{2})")]),
                    RouteRule(name: "y", patterns: [try RoutePattern("/y/:id([^/]{2})")])],
            fallback: RouteRule(name: "default", patterns: [], access: .public))
        for (path, rule) in [("/x/" + Self.grin, "x"), ("/y/" + Self.grin, "y"), ("/x/ab", "x"), ("/y/%C3%A9a", "y")] {
            let routed = try table.route(for: RouteMatchingDifferentialTests.request(path))
            #expect(routed.matched && routed.rule.name == rule, "\(path)")
        }
        for path in ["/x/a", "/x/abc", "/x/" + Self.grin + "a", "/y/" + Self.grin + Self.grin] {
            #expect(try !table.route(for: RouteMatchingDifferentialTests.request(path)).matched, "\(path)")
        }
    }

    @Test(arguments: [
        ("/x/:p(.)", "/x/" + grin, MatchOutcome.noMatch),  // one `.` is half the character
        ("/x/:p(.{4})", "/x/" + grin + grin, .match),
        ("/x/:p(\\S\\S)", "/x/" + grin, .match),
        ("/x/:p(\\W{2})", "/x/" + grin, .match),
        ("/x/:p([^a]{2})", "/x/%F0%90%80%80", .match),  // U+10000
        ("/x/:p(.{2})", "/x/%F4%8F%BF%BF", .match),  // U+10FFFF
        // A lone surrogate in a pattern matches that half; a quantifier after an astral literal repeats its low half.
        ("/x/:p(\\ud83d.)", "/x/" + grin, .match),
        ("/x/:p(\\ud83d)", "/x/" + grin, .noMatch),
        ("/x/:p([\\ud800-\\udbff][\\udc00-\\udfff])", "/x/" + grin, .match),
        ("/x/:p(\u{1F600}+)", "/x/" + grin, .match),
        ("/x/:p(\u{1F600}+)", "/x/" + grin + grin, .noMatch),
        ("/x/:p(\u{1F600}{2})", "/x/" + grin + "%F0%9F%98%80", .noMatch),
        // A class holds the two halves separately.
        ("/x/:p([\u{1F600}])", "/x/" + grin, .noMatch),
        ("/x/:p([\u{1F600}]{2})", "/x/" + grin, .match),
        ("/x/:p([\u{1F600}]{2})", "/x/%F0%9F%98%81", .noMatch),
        // Case folding is per unit: surrogates have no case, BMP letters still fold.
        ("/\u{1F600}/:p(\u{e9}.)", "/" + grin + "/%C3%89a", .match),
        ("/x/:p(\u{10400})", "/x/%F0%90%90%A8", .noMatch),  // Deseret: no folding of astral letters without `u`
    ])
    func regexesCountUTF16CodeUnits(pattern: String, path: String, expected: MatchOutcome) throws {
        #expect(try outcome(pattern, path) == expected)
    }

    /// The byte fast paths (literal, `literal(.*)`) give the same answers as the 16-bit regex on astral paths.
    @Test func fastPathsAgreeOnAstralPaths() throws {
        let paths = ["/\u{1F600}", "/\u{1F600}/", "/a\u{1F600}", "/\u{1F600}x", "/x/\u{10FFFF}", "/\u{10000}\u{1F600}", "/a", "/"]
        for source in ["/\u{1F600}", "/\u{1F600}(.*)", "/a(.*)", "/(.*)", "/a"] {
            let fast = try RoutePattern(source)
            let regex = try RoutePattern(source, fastPaths: false)
            for path in paths {
                var bytes = Array(path.utf8)
                let a = bytes.withUnsafeMutableBufferPointer { fast.outcome(decoded: UnsafeBufferPointer($0)) }
                let b = bytes.withUnsafeMutableBufferPointer { regex.outcome(decoded: UnsafeBufferPointer($0)) }
                #expect(a == b, "\(source) vs \(path.debugDescription)")
            }
        }
    }

    /// The subject transcoder against Swift's own UTF-16 view, and strictness on invalid UTF-8.
    @Test func transcodingMatchesSwiftsUTF16() {
        var rng = SeededGenerator(state: 7)
        let pool: [Unicode.Scalar] = ["a", "/", "\u{7F}", "\u{80}", "\u{7FF}", "\u{800}", "\u{D7FF}", "\u{E000}", "\u{FFFF}",
                                      "\u{10000}", "\u{1F600}", "\u{10FFFF}"]
        for _ in 0..<2000 {
            var text = ""
            for _ in 0..<Int.random(in: 0...12, using: &rng) { text.unicodeScalars.append(pool.randomElement(using: &rng)!) }
            let utf8 = Array(text.utf8)
            var out = [UInt16](repeating: 0, count: utf8.count)
            let n = utf8.withUnsafeBufferPointer { u in out.withUnsafeMutableBufferPointer { PCRE2Regex.utf16(u, into: $0) } }
            #expect(n.map { Array(out[0..<$0]) } == Array(text.utf16))
        }
        for invalid: [UInt8] in [[0x80], [0xC0, 0xAF], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xF0, 0x9F, 0x98],
                                 [0xFF], [0xE2, 0x28, 0xA1]] {
            var out = [UInt16](repeating: 0, count: invalid.count)
            #expect(invalid.withUnsafeBufferPointer { u in out.withUnsafeMutableBufferPointer { PCRE2Regex.utf16(u, into: $0) } } == nil)
        }
    }
}
