@testable import GatehouseCore
import Testing

/// `RoutePattern.matches` must not turn a match that could not be evaluated into "no match" (fail open for
/// any caller that falls through to a later rule on `false`).
@Suite struct MatchFailureTests {
    @Test func aFailedMatchThrowsInsteadOfAnsweringFalse() throws {
        let evil = try RoutePattern("/:p((?:a|a)+b)")
        let path = try CanonicalPath(parsing: "/" + String(repeating: "a", count: 40) + "b/x")
        guard case .failed(let reason) = evil.outcome(for: path) else {
            Issue.record("expected a PCRE2 limit to stop the match")
            return
        }
        #expect(throws: RoutePattern.MatchFailure(reason: reason)) { _ = try evil.matches(path) }
        #expect(try evil.matches(CanonicalPath(parsing: "/aab")))
        #expect(try !evil.matches(CanonicalPath(parsing: "/aac")))
    }
}
