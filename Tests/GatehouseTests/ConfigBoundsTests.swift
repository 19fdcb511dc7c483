import Foundation
@testable import GatehouseAuth
@testable import GatehouseConfig
import GatehouseCore
import Testing

/// Every numeric config key has a range; values outside it, and values that are not numbers at all, are
/// precise errors (never a trap when a duration later becomes a timer).
@Suite struct ConfigBoundsTests {
    static func yaml(setting key: String, to value: String) -> String {
        let parts = key.split(separator: ".", maxSplits: 1).map(String.init)
        let entry = "\(parts[1]): \"\(value)\""
        if parts[0] == "clerk" { return "clerk: { jwks_file: jwks.json, \(entry) }\nsign_in_url: /s" }
        return "clerk: { jwks_file: jwks.json }\nsign_in_url: /s\n\(parts[0]): { \(entry) }"
    }

    static func issues(_ yaml: String, environment: [String: String] = [:]) -> [ConfigIssue] {
        Fixtures.configIssues(yaml, environment: environment)
    }

    @Test(arguments: ConfigLoader.durationBounds.keys.sorted())
    func durationsOutsideTheirRangeAreRefused(key: String) throws {
        let range = ConfigLoader.durationBounds[key]!
        var bad = ["-1s", "1e30s", "1e3", "0x10", "nan", "inf", "5 s", "5sec", "abc", ".5s", "5.s", "99999999999999999999h",
                   "\(Int(range.upperBound) + 1)s", "\(Int(range.upperBound / 3600) + 1000)h"]
        if range.lowerBound > 0 { bad += ["0", "0s", "\(Int(range.lowerBound * 1000) - 1)ms"] }
        for value in bad {
            let found = Self.issues(Self.yaml(setting: key, to: value))
            #expect(found.map(\.keyPath) == [key], "\(key): \(value)")
            #expect(found.first?.message.hasPrefix("expected a duration in ") == true, "\(key): \(value): \(found)")
            #expect(found.first?.message.contains("got '\(value)'") == true, "\(key): \(value)")
        }
        for value in ["\(Int((range.lowerBound * 1000).rounded()))ms", "\(Int(range.upperBound))s", "\(Int(range.upperBound / 60))m"] {
            #expect(Self.issues(Self.yaml(setting: key, to: value)).isEmpty, "\(key): \(value) is in range")
        }
    }

    @Test func zeroIsAcceptedOnlyWhereItMeansSomething() throws {
        let zeroAllowed = ConfigLoader.durationBounds.filter { $0.value.lowerBound == 0 }.keys.sorted()
        #expect(zeroAllowed == ["clerk.clock_skew", "server.grace_period"])
        let s = try Fixtures.settings("clerk: { jwks_file: jwks.json, clock_skew: 0s }\nsign_in_url: /s\nserver: { grace_period: 0 }")
        #expect(s.policy.clockSkew == 0)
        #expect(s.server.gracePeriod == 0)
        let proxy = try Fixtures.settings("clerk: { jwks_file: jwks.json }\nsign_in_url: /s\nproxy: { websocket_max_lifetime: 30d, connect_timeout: 10ms }")
        #expect(proxy.proxy.websocketMaxLifetime == 2_592_000)
        #expect(proxy.proxy.connectTimeout == 0.01)
    }

    @Test(arguments: ConfigLoader.integerBounds.keys.sorted())
    func countsOutsideTheirRangeAreRefused(key: String) throws {
        let range = ConfigLoader.integerBounds[key]!
        for value in ["-1", "\(range.lowerBound - 1)", "\(range.upperBound + 1)", "1.5", "1e3", "abc", "99999999999999999999999"] {
            let found = Self.issues(Self.yaml(setting: key, to: value))
            #expect(found.map(\.keyPath) == [key], "\(key): \(value)")
            #expect(found.first?.message.hasPrefix("expected a whole number in \(range.lowerBound)...\(range.upperBound)") == true, "\(key): \(value)")
        }
        for value in [range.lowerBound, range.upperBound] {
            #expect(Self.issues(Self.yaml(setting: key, to: String(value))).isEmpty, "\(key): \(value) is in range")
        }
    }

    @Test func theErrorNamesTheRangeInReadableUnits() {
        let found = Self.issues(Self.yaml(setting: "proxy.websocket_max_lifetime", to: "0"))
        #expect(found.first?.message == "expected a duration in 100ms...30d, got '0'")
        let skew = Self.issues(Self.yaml(setting: "clerk.clock_skew", to: "10m"))
        #expect(skew.first?.message == "expected a duration in 0s...5m, got '10m' (more than 5m defeats expiry checks)")
        let header = Self.issues(Self.yaml(setting: "server.header_timeout", to: "1e30s"))
        #expect(header.first?.message == "expected a duration in 100ms...1h such as 500ms, 5s, 2m or 1h, got '1e30s'")
    }

    @Test func aConfigWithoutUpstreamIsAnError() throws {
        do {
            _ = try ConfigLoader.load(yaml: "clerk: { jwks_url: \"https://x.example/jwks\" }\nsign_in_url: /s", file: "t.yaml", environment: [:])
            Issue.record("loaded without an upstream")
        } catch {
            #expect(error.issues.map(\.keyPath) == ["upstream"])
            #expect(error.issues.first?.message.hasPrefix("required:") == true)
        }
        let explicit = try ConfigLoader.load(yaml: "upstream: \"http://127.0.0.1:4123\"\nclerk: { jwks_url: \"https://x.example/jwks\" }\nsign_in_url: /s",
                                             file: "t.yaml", environment: [:])
        #expect(explicit.upstream.port == 4123)
    }

    static func publishableKey(_ host: String, live: Bool) -> String {
        (live ? "pk_live_" : "pk_test_") + Data((host + "$").utf8).base64EncodedString()
    }

    @Test func mismatchedKeyPairsAndThePlaceholderInstanceAreReported() throws {
        func warnings(_ pk: String, _ sk: String?) throws -> [String] {
            try Fixtures.settings("clerk: { publishable_key: \(pk), jwks_file: jwks.json\(sk.map { ", secret_key: \($0)" } ?? "") }\nsign_in_url: /s")
                .warnings.filter { $0.hasPrefix("clerk.") }
        }
        let live = Self.publishableKey("clerk.myapp.dev", live: true)
        let test = Self.publishableKey("clerk.myapp.dev", live: false)
        let mismatch = { (w: [String]) in w.filter { $0.contains("belong to different Clerk instances") } }
        #expect(mismatch(try warnings(live, "sk_test_abc")).count == 1)
        #expect(mismatch(try warnings(live, "sk_test_abc")).first?.contains("production key (pk_live_…) but clerk.secret_key is a development key (sk_test_…)") == true)
        #expect(mismatch(try warnings(test, "sk_live_abc")).first?.contains("development key (pk_test_…) but clerk.secret_key is a production key (sk_live_…)") == true)
        #expect(mismatch(try warnings(live, "sk_live_abc")).isEmpty)
        #expect(mismatch(try warnings(test, "sk_test_abc")).isEmpty)
        #expect(try warnings(live, nil).isEmpty)

        let placeholder = try warnings(ConfigLoader.placeholderPublishableKey, nil)
        #expect(placeholder.count == 1)
        #expect(placeholder.first?.contains("placeholder instance (clerk.example.com)") == true)
        #expect(placeholder.first?.contains("NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY") == true)
    }

    static var exampleConfig: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("config/gatehouse.example.yaml").path
    }

    @Test func theExampleConfigPicksUpANextJSPublishableKey() throws {
        let next = Self.publishableKey("clerk.next-app.dev", live: false)
        let plain = Self.publishableKey("clerk.plain-app.dev", live: true)
        let fromNext = try ConfigLoader.load(path: Self.exampleConfig, environment: ["NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY": next])
        #expect(fromNext.instance?.frontendAPIHost == "clerk.next-app.dev")
        #expect(!fromNext.warnings.contains { $0.contains("placeholder") })
        let both = try ConfigLoader.load(path: Self.exampleConfig, environment: ["NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY": next, "CLERK_PUBLISHABLE_KEY": plain])
        #expect(both.instance?.frontendAPIHost == "clerk.plain-app.dev")
        let fresh = try ConfigLoader.load(path: Self.exampleConfig, environment: [:])
        #expect(fresh.instance?.frontendAPIHost == "clerk.example.com")
        #expect(fresh.warnings.contains { $0.contains("placeholder instance") })
        // The secret key line expands to nothing without CLERK_SECRET_KEY, and picks it up with it.
        #expect(fresh.secretKey == nil)
        let withSecret = try ConfigLoader.load(path: Self.exampleConfig, environment: ["NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY": next, "CLERK_SECRET_KEY": "sk_test_x"])
        #expect(withSecret.secretKey == "sk_test_x")
    }

    @Test func nestedDefaultsExpand() throws {
        func signIn(_ value: String, _ env: [String: String]) throws -> String {
            try Fixtures.settings("clerk: { jwks_file: jwks.json }\nsign_in_url: \"\(value)\"", environment: env).signInURL
        }
        #expect(try signIn("${A:-${B:-/fallback}}", [:]) == "/fallback")
        #expect(try signIn("${A:-${B:-/fallback}}", ["B": "/b"]) == "/b")
        #expect(try signIn("${A:-${B:-/fallback}}", ["A": "/a", "B": "/b"]) == "/a")
        #expect(try signIn("/x${A:-}/y$${B}", [:]) == "/x/y${B}")
        let unclosed = Self.issues("clerk: { jwks_file: jwks.json }\nsign_in_url: \"${A:-${B:-/x}\"")
        #expect(unclosed.map(\.keyPath) == ["sign_in_url"])
        let missing = Self.issues("clerk: { jwks_file: jwks.json }\nsign_in_url: \"${A:-${B}}\"")
        #expect(missing.first?.message.contains("environment variable B is not set") == true)
    }
}
