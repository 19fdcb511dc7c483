import Foundation
@testable import GatehouseAuth
@testable import GatehouseCore
import Testing

/// Deterministic pseudo-random inputs (SplitMix64), so a failure reproduces.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct PropertyTests {
    static let pathAlphabet = Array("/.%2eEfF5cC0a9dmin;#?\\ ~_-AZ:@!$&'()*+,=".utf8) + [0x00, 0x7F, 0xC3, 0xA9]

    func randomPath(_ rng: inout SeededGenerator, maxLength: Int = 24) -> [UInt8] {
        let length = Int.random(in: 0...maxLength, using: &rng)
        return [UInt8(ascii: "/")] + (0..<length).map { _ in Self.pathAlphabet.randomElement(using: &rng)! }
    }

    @Test func hostFastPathAgreesWithFullNormalisation() {
        var rng = SeededGenerator(state: 7)
        let alphabet = Array("aZz09.-_:[]@ \t0".utf8)
        var fast = 0
        for _ in 0..<50_000 {
            let length = Int.random(in: 1...14, using: &rng)
            let host = String(decoding: (0..<length).map { _ in alphabet.randomElement(using: &rng)! }, as: UTF8.self)
            guard CanonicalRequest.isAlreadyNormalHost(host) else { continue }
            fast += 1
            #expect((try? CanonicalRequest.normalizeHostFully(host)) == host, "fast path accepted \(host)")
        }
        for host in ["app.example.com", "127.0.0.1:8080", "a:65535", "x-y_z"] {
            #expect(CanonicalRequest.isAlreadyNormalHost(host))
        }
        for host in ["App.example.com", "a..b", "a.", ".a", "a:0", "a:080", "a:65536", "a:", "[::1]", "a b"] {
            #expect(!CanonicalRequest.isAlreadyNormalHost(host))
        }
        #expect(fast > 1000)
    }

    /// The no-copy fast path must accept only paths that full canonicalisation leaves unchanged.
    @Test func canonicalPathFastPathAgreesWithTheFullPath() {
        var rng = SeededGenerator(state: 11)
        let alphabet = Array("/a.;%2F\\#~Z0 ".utf8) + [0x7F, 0xC3]
        var fast = 0
        for _ in 0..<50_000 {
            let length = Int.random(in: 1...12, using: &rng)
            let raw = [UInt8(ascii: "/")] + (0..<length).map { _ in alphabet.randomElement(using: &rng)! }
            let text = String(decoding: raw, as: UTF8.self)
            for allowSemicolons in [false, true] {
                guard CanonicalPath.isAlreadyCanonical(text[...].utf8, allowSemicolons: allowSemicolons) else { continue }
                fast += 1
                #expect((try? CanonicalPath.canonicalize(Array(text.utf8), allowSemicolons: allowSemicolons)) == text,
                        "fast path accepted \(text)")
            }
        }
        for path in ["/", "/a", "/a/", "/a/b.c/...", "/.well-known/x"] {
            #expect(CanonicalPath.isAlreadyCanonical(path[...].utf8, allowSemicolons: false), "\(path)")
        }
        for path in ["//", "/a//b", "/.", "/..", "/a/./b", "/a/../b", "/a/.", "/%41", "/a;b", "/a b", "/a\\b", "a"] {
            #expect(!CanonicalPath.isAlreadyCanonical(path[...].utf8, allowSemicolons: false), "\(path)")
        }
        #expect(fast > 1000)
    }

    @Test func canonicalPathsAreStableAndClean() {
        var rng = SeededGenerator(state: 42)
        var accepted = 0
        for _ in 0..<20_000 {
            let raw = String(decoding: randomPath(&rng), as: UTF8.self)
            guard let path = try? CanonicalPath(parsing: raw) else { continue }
            accepted += 1
            let value = path.value
            #expect(value.hasPrefix("/"))
            #expect(!value.contains("//"), "\(raw) → \(value)")
            #expect(!value.contains("/./") && !value.contains("/../") && !value.hasSuffix("/.") && !value.hasSuffix("/.."), "\(raw) → \(value)")
            #expect(!value.contains("\\") && !value.contains("#") && !value.contains(";"))
            // Canonicalising twice changes nothing: matching and forwarding see the same bytes.
            #expect((try? CanonicalPath(parsing: value))?.value == value, "\(raw) → \(value)")
        }
        #expect(accepted > 1000)
    }

    /// The compiled regular expressions of Clerk's vendored path-to-regexp for these patterns
    /// (shared/docs/clerk-protocol.md §8) serve as the oracle for the automaton.
    static let oracle: [(String, String)] = [
        ("/dashboard(.*)", #"^\/dashboard(.*)[\/#\?]?$"#),
        ("/dashboard/:path*", #"^\/dashboard(?:\/((?:[^\/#\?]+?)(?:\/(?:[^\/#\?]+?))*))?[\/#\?]?$"#),
        ("/org/:slug", #"^\/org(?:\/([^\/#\?]+?))[\/#\?]?$"#),
        ("/foo", #"^\/foo[\/#\?]?$"#),
        ("/", #"^\/[\/#\?]?$"#),
        ("/(.*)", #"^(?:\/(.*))[\/#\?]?$"#),
    ]

    @Test func automatonAgreesWithPathToRegexp() throws {
        var rng = SeededGenerator(state: 7)
        let words = ["dashboard", "DashBoard", "org", "foo", "x", "acme", "", "a.b", "%2F"]
        for (pattern, regex) in Self.oracle {
            let compiled = try RoutePattern(pattern)
            let expression = try NSRegularExpression(pattern: regex, options: [.caseInsensitive])
            for _ in 0..<3000 {
                let segments = (0..<Int.random(in: 0...4, using: &rng)).map { _ in words.randomElement(using: &rng)! }
                var path = "/" + segments.joined(separator: "/")
                if Bool.random(using: &rng) { path += "/" }
                guard let canonical = try? CanonicalPath(parsing: path) else { continue }
                let value = canonical.value
                let expected = expression.firstMatch(in: value, range: NSRange(value.startIndex..., in: value)) != nil
                #expect(try compiled.matches(canonical) == expected, "\(pattern) vs \(value)")
            }
        }
    }

    @Test func jsonParserNeverCrashesOnMutatedInput() {
        var rng = SeededGenerator(state: 99)
        let seed = Array(#"{"sub":"user_1","exp":1800000000,"o":{"id":"org","per":"a,b","fpm":"3"},"arr":[1,2.5e3,-0,true,null,"\u00e9\ud83d\ude00"]}"#.utf8)
        #expect((try? JSONParser.parse(seed)) != nil)
        for _ in 0..<20_000 {
            var bytes = seed
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: bytes[i] = UInt8.random(in: 0...255, using: &rng)
                case 1: bytes.remove(at: i)
                default: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: i)
                }
                if bytes.isEmpty { break }
            }
            if let value = try? JSONParser.parse(bytes) {
                // Whatever parses must round-trip through our serialiser to the same value.
                #expect((try? JSONParser.parse(value.serialized())) == value)
            }
        }
    }

    @Test func deeplyNestedJSONIsRefusedNotOverflowed() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(deep) }
    }

    @Test func base64urlIsCanonical() {
        var rng = SeededGenerator(state: 3)
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0...40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let encoded = Base64URL.encode(bytes)
            #expect(Base64URL.decode(encoded) == bytes)
        }
        #expect(Base64URL.decode("AB") == nil)  // non-zero trailing bits: "AA" is the canonical form
        #expect(Base64URL.decode("AA") == [0])
        #expect(Base64URL.decode("A") == nil)
    }
}
