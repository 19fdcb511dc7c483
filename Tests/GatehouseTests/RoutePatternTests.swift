import Foundation
@testable import GatehouseAuth
import GatehouseConfig
@testable import GatehouseCore
import GatehouseDevIssuer
import GatehouseEngine
import Testing

@Suite struct RoutePatternTests {
    func matches(_ pattern: String, _ path: String) throws -> Bool {
        try RoutePattern(pattern).matches(CanonicalPath(parsing: path))
    }

    @Test(arguments: [
        ("/dashboard(.*)", "/dashboard", true), ("/dashboard(.*)", "/dashboard/x/y", true),
        ("/dashboard(.*)", "/dashboardxyz", true), ("/dashboard(.*)", "/DASHBOARD", true),
        ("/dashboard(.*)", "/dash", false), ("/dashboard(.*)", "/x/dashboard", false),
        // Clerk's behaviour: a (.*) suffix is not a segment boundary.
        ("/admin(.*)", "/administrator", true), ("/admin(.*)", "/admin-public", true),
        ("/admin/:rest*", "/admin", true), ("/admin/:rest*", "/admin/", true), ("/admin/:rest*", "/admin/a/b", true),
        ("/admin/:rest*", "/administrator", false),
        ("/org/:slug", "/org/acme", true), ("/org/:slug", "/org/acme/", true), ("/org/:slug", "/org/acme/x", false),
        ("/org/:slug", "/org", false), ("/org/:slug?", "/org", true), ("/org/:slug+", "/org/a/b", true),
        ("/org/:slug+", "/org", false),
        ("/foo", "/foo", true), ("/foo", "/foo/", true), ("/foo", "/FOO", true), ("/foo", "/foo/bar", false),
        ("/foo", "/foobar", false),
        ("/", "/", true), ("/", "/x", false),
        ("/(.*)", "/", true), ("/(.*)", "/anything/at/all", true),
        ("/orgs/:slug/settings(.*)", "/orgs/acme/settings", true), ("/orgs/:slug/settings(.*)", "/orgs/acme/settings/members", true),
        ("/orgs/:slug/settings(.*)", "/orgs/settings", false),
        ("/api/items/:id(\\d+)", "/api/items/42", true), ("/api/items/:id(\\d+)", "/api/items/4x", false),
        ("/files/:name.:ext", "/files/report.pdf", true),
        ("/caf\u{e9}", "/CAF%c3%a9", true),
        // Clerk decodes the path, not the pattern: a pattern's `%61` only matches an encoded `%61` (vectors).
        ("/%61pi", "/api", false),
        ("/a(.*)b(.*)c(.*)d", "/a" + String(repeating: "x", count: 3000) + "e", false),
    ])
    func patternsHaveCreateRouteMatcherSemantics(pattern: String, path: String, expected: Bool) throws {
        #expect(try matches(pattern, path) == expected)
    }

    // path-to-regexp 6.3.0 refuses these (route-matching vectors); `admin`, `/a/{b}`, `/x/(a|b)`, `/a//b`,
    // `/a/../b` and `/x)` were refused here before but are valid patterns for Clerk.
    @Test(arguments: ["/foo*", "/x/:", "/x(", "/:x:y", "/foo:x*", "/:foo(\\d+(\\.\\d+)?)", "/x/:p([z-a])", ""])
    func unsupportedOrImpossiblePatternsAreConfigErrors(pattern: String) {
        #expect(throws: RoutePattern.SyntaxError.self) { try RoutePattern(pattern) }
    }

    @Test func firstMatchingRuleWinsAndUnmatchedPathsGetTheFallback() throws {
        let table = RouteTable(
            rules: [
                RouteRule(name: "admin", patterns: [try RoutePattern("/admin/:rest*")]),
                RouteRule(name: "public", patterns: [try RoutePattern("/(.*)")], access: .public),
            ],
            fallback: RouteRule(name: "default", patterns: []))
        func route(_ path: String) throws -> String {
            try table.route(for: Fixtures.request(path)).rule.name
        }
        #expect(try route("/admin/x") == "admin")
        #expect(try route("/Admin") == "admin")
        #expect(try route("/public/../admin") == "admin")
        #expect(try route("/administrator") == "public")
        let empty = RouteTable(rules: [], fallback: RouteRule(name: "default", patterns: []))
        #expect(try empty.route(for: Fixtures.request("/x")).matched == false)
    }

    @Test func methodAndHostConditionsNarrowARule() throws {
        let rule = RouteRule(name: "w", patterns: [try RoutePattern("/x")], methods: ["POST"], hosts: [HostPattern("*.example.com")])
        let table = RouteTable(rules: [rule], fallback: RouteRule(name: "default", patterns: []))
        #expect(try table.route(for: Fixtures.request("/x", method: "POST")).rule.name == "w")
        #expect(try table.route(for: Fixtures.request("/x", method: "GET")).rule.name == "default")
        let otherHost = try CanonicalRequest(RawRequest(method: "POST", target: "/x", headers: HeaderList([("Host", "example.org")])))
        #expect(try table.route(for: otherHost).rule.name == "default")
        #expect(HostPattern("*.example.com").matches("a.example.com:8080"))
        #expect(!HostPattern("*.example.com").matches("example.com"))
        #expect(HostPattern("App.Example.com").matches("app.example.com"))
    }
}
