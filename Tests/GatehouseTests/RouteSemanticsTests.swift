import Foundation
import Synchronization
@testable import GatehouseCore
import GatehouseConfig
import GatehouseEngine
import Testing

/// The classes of disagreement with Clerk's `createRouteMatcher` that the issue lists, one test each
/// (expected answers checked against Clerk's vendored path-to-regexp under node), plus the fast paths,
/// fail-closed matching and the `%3B`/`%25` refusals.
@Suite struct RouteSemanticsTests {
    func matches(_ pattern: String, _ target: String) throws -> Bool {
        let table = RouteTable(rules: [RouteRule(name: "r", patterns: [try RoutePattern(pattern)])], fallback: RouteRule(name: "default", patterns: []))
        return try table.route(for: RouteMatchingDifferentialTests.request(target)).matched
    }

    @Test(arguments: [
        // A parameter after another may not contain the text between them.
        ("/:id(\\d+).:format", "/1.json", true), ("/:id(\\d+).:format", "/1.tar.gz", false),
        ("/:id(\\d+)-:slug", "/1-a", true), ("/:id(\\d+)-:slug", "/1-a-b", false),
        ("/:name.:ext", "/a.b.c", true), ("/:org-:repo", "/acme-web-app", true),
    ])
    func parameterAfterTextExcludesThatText(pattern: String, path: String, expected: Bool) throws {
        #expect(try matches(pattern, path) == expected)
    }

    @Test(arguments: [
        // decodeURI: encoded characters match their literal, reserved ones stay encoded.
        ("/\\(admin\\)(.*)", "/%28admin%29/x", true), ("/\\(admin\\)(.*)", "/(admin)/x", true),
        ("/a\\:b", "/a:b", true), ("/a\\:b", "/a%3Ab", false),
        ("/caf\u{e9}", "/CAF%C3%89", true),
    ])
    func matchingIsOnTheDecodeURIForm(pattern: String, path: String, expected: Bool) throws {
        #expect(try matches(pattern, path) == expected)
    }

    @Test func anEncodedProtectedLiteralCannotBeSteppedAround() throws {
        let table = RouteTable(
            rules: [
                RouteRule(name: "admin", patterns: [try RoutePattern("/\\(admin\\)(.*)")]),
                RouteRule(name: "public", patterns: [try RoutePattern("/(.*)")], access: .public),
            ],
            fallback: RouteRule(name: "default", patterns: []))
        for path in ["/(admin)/x", "/%28admin%29/x", "/%28ADMIN%29", "/%28%61dmin%29"] {
            #expect(try table.route(for: RouteMatchingDifferentialTests.request(path)).rule.name == "admin", "\(path)")
        }
    }

    @Test(arguments: [
        // JavaScript's `i` without `u`: non-ASCII letters fold, but never onto ASCII, and ß/ẞ stay apart.
        ("/caf\u{e9}", "/CAF%C3%89", true), ("/\u{3c3}igma", "/%CF%82IGMA", true),
        ("/\u{17f}ecret", "/secret", false), ("/secret", "/%C5%BFecret", false),
        ("/\u{212a}ey", "/key", false), ("/key", "/%E2%84%AAey", false),
        ("/stra\u{df}e", "/STRA%E1%BA%9EE", false), ("/x/:p([a-z]+)", "/x/ABC", true),
    ])
    func caseInsensitivityIsJavaScripts(pattern: String, path: String, expected: Bool) throws {
        #expect(try matches(pattern, path) == expected)
    }

    @Test(arguments: [
        ("/(api|trpc)(.*)", "/api/x", true), ("/(api|trpc)(.*)", "/TRPC", true), ("/(api|trpc)(.*)", "/apix", true),
        ("/(api|trpc)(.*)", "/x/api", false),
        ("/:id(\\d{4})", "/1234", true), ("/:id(\\d{4})", "/12345", false),
        ("/((?!_next|api).*)", "/_next/static/a.js", false), ("/((?!_next|api).*)", "/dashboard", true),
        ("/((?!_next|api).*)", "/API/x", false),
        ("{/login}?", "/login", true), ("{/login}?", "/", true), ("{/login}?", "/x", false),
        (":test?", "/", true), (":test?", "/x", false),
        ("/x/:p(\\s+)", "/x/%C2%A0", true), ("/x/:p(\\w+)", "/x/%C3%A9", false),
        ("/x/:p(\\q)", "/x/q", true), ("/x/:p(\\x41)", "/x/a", true),
    ])
    func fullPathToRegexpSyntax(pattern: String, path: String, expected: Bool) throws {
        #expect(try matches(pattern, path) == expected)
    }

    /// Paths with U+2028/U+2029 are refused before matching (`LineSeparatorPathTests`); on the decoded form
    /// itself, `.` still skips line terminators as JavaScript's does, in the regex and on the byte fast path.
    @Test(arguments: [("/x/:p(.)", "/x/\u{2028}"), ("/dashboard(.*)", "/dashboard\u{2028}"), ("/dashboard(.*)", "/dashboard/\u{2029}x")])
    func dotSkipsLineTerminatorsInTheDecodedForm(pattern: String, decoded: String) throws {
        for fastPaths in [true, false] {
            let compiled = try RoutePattern(pattern, fastPaths: fastPaths)
            var bytes = Array(decoded.utf8)
            #expect(bytes.withUnsafeMutableBufferPointer { compiled.outcome(decoded: UnsafeBufferPointer($0)) } == .noMatch)
        }
    }

    @Test(arguments: [
        ("/foo?", "Unexpected MODIFIER at 4, expected END"), ("/:foo()", "Missing pattern at 5"),
        ("/:x:y", "Must have text between two parameters, missing text after \"x\""),
        ("/foo:x*", "Can not repeat \"x\" without a prefix and suffix"), ("/{a{b:foo}}", "Unexpected OPEN at 3, expected CLOSE"),
    ])
    func pathToRegexpErrorsAreConfigErrorsWithItsMessage(pattern: String, message: String) {
        #expect(throws: RoutePattern.SyntaxError(message: message)) { try RoutePattern(pattern) }
    }

    @Test(arguments: ["/x/:p([z-a])", "/x/:p(a{2,1})", "/x/:p(*)", "/x/:p((?<n>a)(?<n>b))", "/x/:p((?i)a)"])
    func invalidRegexGroupsAreConfigErrors(pattern: String) {
        #expect(throws: RoutePattern.SyntaxError.self) { try RoutePattern(pattern) }
    }

    // MARK: Fast paths

    static let fastPatterns = ["/dashboard(.*)", "/api/(.*)", "/(.*)", "(.*)", "/foo", "/", "/x.(.*)", "/a-b", "/test/", "/Sign-In(.*)", "admin"]

    @Test func fastPathsGiveTheRegexAnswers() throws {
        let pieces = ["/", "dashboard", "DashBoard", "api", "API", "x", ".", "-", "foo", "a-b", "test", "sign-in", "admin", "\u{e9}",
                      "\u{2028}", "\u{2029}", "\u{1F600}", "%3A", "\u{17f}", "b", ""]
        var rng = SeededGenerator(state: 2026)
        for source in Self.fastPatterns {
            let fast = try RoutePattern(source)
            let regex = try RoutePattern(source, fastPaths: false)
            if case .regex = fast.shape { Issue.record("\(source) is not on a fast path") }
            guard case .regex(_, let compiled) = regex.shape else { Issue.record("\(source): no regex built"); continue }
            #expect(compiled.jit, "PCRE2 JIT unavailable for \(source)")
            for _ in 0..<4000 {
                var path = Bool.random(using: &rng) ? "/" : ""
                for _ in 0..<Int.random(in: 0...5, using: &rng) { path += pieces.randomElement(using: &rng)! }
                var bytes = Array(path.utf8)
                let a = bytes.withUnsafeMutableBufferPointer { fast.outcome(decoded: UnsafeBufferPointer($0)) }
                let b = bytes.withUnsafeMutableBufferPointer { regex.outcome(decoded: UnsafeBufferPointer($0)) }
                #expect(a == b, "\(source) vs \(path.debugDescription)")
            }
        }
    }

    // MARK: Failing closed

    /// A custom group that backtracks exponentially: PCRE2's match limit stops it, and the request is refused
    /// instead of falling through to the public catch-all.
    @Test func aMatchLimitRefusesTheRequest() throws {
        let evil = try RoutePattern("/:p((?:a|a)+b)")
        let table = RouteTable(
            rules: [RouteRule(name: "evil", patterns: [evil]), RouteRule(name: "public", patterns: [try RoutePattern("/(.*)")], access: .public)],
            fallback: RouteRule(name: "default", patterns: [], access: .public))
        let path = "/" + String(repeating: "a", count: 40) + "b/x"
        let started = ContinuousClock.now
        #expect(throws: RequestRejection.self) { try table.route(for: RouteMatchingDifferentialTests.request(path)) }
        #expect(ContinuousClock.now - started < .seconds(5))
        if case .failed = evil.outcome(for: try CanonicalPath(parsing: path)) {} else { Issue.record("no match failure") }
        // Short inputs still match normally.
        #expect(try table.route(for: RouteMatchingDifferentialTests.request("/aab")).rule.name == "evil")
    }

    @Test func aMatchFailureIsA400FromTheGatekeeper() async throws {
        let yaml = Fixtures.exampleYAML.replacingOccurrences(
            of: "routes:\n", with: "routes:\n  - name: evil\n    match: [\"/:p((?:a|a)+b)\"]\n    access: public\n")
        let g = try Fixtures.gatekeeper(yaml)
        let e = await g.evaluate("/" + String(repeating: "a", count: 40) + "b/x")
        #expect(e.decision.action == .deny)
        #expect(e.decision.status == 400)
        #expect(await g.evaluate("/aab").decision.action == .proxy)
    }

    @Test func regexMatchingIsSafeFromManyThreads() throws {
        let pattern = try RoutePattern("/org/:slug/(api|trpc)(.*)")
        let paths = ["/org/acme/api/x", "/org/acme/web", "/ORG/a%C3%A9/TRPC", "/org//api"]
        let expected = try paths.map { try pattern.matches(CanonicalPath(parsing: $0)) }
        #expect(expected == [true, false, true, false])
        let wrong = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for i in 0..<2000 {
                let k = i % paths.count
                if (try? pattern.matches(CanonicalPath(parsing: paths[k]))) != expected[k] { wrong.withLock { $0 += 1 } }
            }
        }
        #expect(wrong.withLock { $0 } == 0)
    }

    // MARK: %3B and %25

    @Test(arguments: ["/admin%3B/x", "/admin%3b", "/a/%252e%252e%252fadmin", "/100%25"])
    func encodedSemicolonAndPercentAreRefusedByDefault(path: String) {
        #expect(throws: RequestRejection.self) { try CanonicalPath(parsing: path) }
    }

    @Test func optOutsKeepTheEscapeEncodedInTheForwardedPath() throws {
        #expect(try CanonicalPath(parsing: "/admin%3b/", allowEncodedSemicolons: true).value == "/admin%3B/")
        #expect(try CanonicalPath(parsing: "/%2561dmin", allowEncodedPercent: true).value == "/%2561dmin")
        // Semicolon opt-outs are separate: a raw `;` is still refused.
        #expect(throws: RequestRejection.self) { try CanonicalPath(parsing: "/a;b", allowEncodedSemicolons: true) }
        // Matching sees the decodeURI form: `%25` becomes `%`, `%3B` stays encoded (reserved).
        #expect(try RoutePattern("/100%").matches(CanonicalPath(parsing: "/100%25", allowEncodedPercent: true)))
        #expect(try RoutePattern("/a%3Bb").matches(CanonicalPath(parsing: "/a%3bb", allowEncodedSemicolons: true)))
    }

    @Test func optOutsAreConfigKeys() throws {
        let defaults = try Fixtures.settings()
        #expect(!defaults.canonicalization.allowPathEncodedSemicolons && !defaults.canonicalization.allowPathEncodedPercent)
        let s = try Fixtures.settings("allow_path_encoded_semicolons: true\nallow_path_encoded_percent: true\n" + Fixtures.exampleYAML)
        #expect(s.canonicalization.allowPathEncodedSemicolons && s.canonicalization.allowPathEncodedPercent)
        #expect(throws: ConfigError.self) { try Fixtures.settings("allow_path_encoded_percent: maybe\n" + Fixtures.exampleYAML) }
    }

    @Test(arguments: ["/a//../admin", "//../admin", "/a//b/%2e%2e/c"])
    func dotDotAfterAnEmptySegmentIsRefused(path: String) {
        #expect(throws: RequestRejection.self) { try CanonicalPath(parsing: path) }
    }
}
