import Foundation
import Synchronization
import GatehouseConfig
@testable import GatehouseCore
import Testing

/// Config input that nests deeply must be a config error, not a stack overflow: a reload (SIGHUP) or
/// `check-config` with such a pattern used to kill the process.
@Suite struct NestingLimitTests {
    static func nested(_ levels: Int) -> String {
        "/(" + String(repeating: "(?:", count: levels) + "a" + String(repeating: ")", count: levels) + ")"
    }

    func configIssues(_ yaml: String, environment: [String: String] = [:]) -> [ConfigIssue] {
        Fixtures.configIssues(yaml, environment: environment)
    }

    @Test(arguments: [3000, 20_000, 63])
    func deeplyNestedGroupsAreASyntaxError(levels: Int) {
        do {
            _ = try RoutePattern(Self.nested(levels))
            Issue.record("accepted \(levels) levels")
        } catch {
            #expect(error.message.contains("groups nested more than 64 deep"), "\(error.message.prefix(300))")
            #expect(error.message.count < 400)
        }
    }

    /// Up to the limit (path-to-regexp adds two levels around the group) patterns translate, compile and
    /// match, also on a thread with a 512 KiB stack in a debug build.
    @Test func nestingUpToTheLimitCompilesOnASmallStack() throws {
        let result = Mutex<Result<MatchOutcome, RoutePattern.SyntaxError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            let outcome = Result { () throws(RoutePattern.SyntaxError) in
                try RoutePattern(Self.nested(62)).outcome(for: try! CanonicalPath(parsing: "/a"))
            }
            result.withLock { $0 = outcome }
            done.signal()
        }
        thread.stackSize = 512 << 10
        thread.start()
        done.wait()
        #expect(try result.withLock { $0 }?.get() == .match)
    }

    @Test(arguments: [3000, 20_000])
    func deeplyNestedRoutePatternIsAConfigError(levels: Int) {
        let found = configIssues("clerk: { jwks_file: jwks.json }\nsign_in_url: /s\nroutes: [{ name: deep, match: \"\(Self.nested(levels))\" }]\n")
        #expect(found.count == 1)
        #expect(found.first?.message.contains("groups nested more than 64 deep") == true, "\(found.first?.message.prefix(300) ?? "")")
        #expect((found.first?.message.count ?? 0) < 600)
    }

    static func nestedDefaults(_ levels: Int) -> String {
        String(repeating: "${UNSET_A:-", count: levels) + "/s" + String(repeating: "}", count: levels)
    }

    @Test func deeplyNestedVariableDefaultsAreAConfigError() {
        for levels in [9, 10_000] {
            let found = configIssues("clerk: { jwks_file: jwks.json }\nsign_in_url: \"\(Self.nestedDefaults(levels))\"\n")
            #expect(found.map(\.message) == ["variable references nested more than 8 deep in defaults (${A:-${B:-…}})"], "\(levels)")
            #expect(found.first?.keyPath == "sign_in_url")
        }
    }

    @Test func eightNestedDefaultsStillExpand() throws {
        let s = try Fixtures.settings("clerk: { jwks_file: jwks.json }\nsign_in_url: \"\(Self.nestedDefaults(8))\"\n")
        #expect(s.signInURL == "/s")
        // A set variable ends the walk before the limit: its default is never expanded.
        let set = try Fixtures.settings("clerk: { jwks_file: jwks.json }\nsign_in_url: \"${SIGN_IN:-\(Self.nestedDefaults(20))}\"\n",
                                        environment: ["SIGN_IN": "/login"])
        #expect(set.signInURL == "/login")
    }
}
