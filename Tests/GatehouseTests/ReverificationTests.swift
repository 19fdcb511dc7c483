import Foundation
import GatehouseConfig
@testable import GatehouseCore
@testable import GatehouseEngine
import Testing

@Suite struct ReverificationTests {
    func rule(_ preset: String) -> ReverificationRule { ReverificationRule(preset: preset)! }
    func fva(_ values: JSONValue...) -> JSONValue { .array(values) }

    @Test func clerkVectors() {
        // The design notes' cases from authorization.spec.ts.
        #expect(rule("strict_mfa").isSatisfied(fva: fva(0, -1)))
        #expect(!rule("strict_mfa").isSatisfied(fva: fva(-1, -1)))
        #expect(!rule("strict").isSatisfied(fva: fva("0", "0")))
        #expect(ReverificationRule(level: .multiFactor, afterMinutes: 0) == nil)
        // Freshness is strict: age 10 is not fresh for 10 minutes.
        #expect(rule("strict").isSatisfied(fva: fva(0, 9)))
        #expect(!rule("strict").isSatisfied(fva: fva(0, 10)))
        // second_factor falls back to the first factor when the second is not enabled, and vice versa.
        #expect(rule("moderate").isSatisfied(fva: fva(59, -1)))
        #expect(rule("moderate").isSatisfied(fva: fva(-1, 59)))
        #expect(!rule("moderate").isSatisfied(fva: fva(0, 61)))
        // multi_factor: both fresh; the first factor missing fails.
        #expect(rule("strict_mfa").isSatisfied(fva: fva(5, 5)))
        #expect(!rule("strict_mfa").isSatisfied(fva: fva(5, 11)))
        #expect(!rule("strict_mfa").isSatisfied(fva: fva(-1, 5)))
        #expect(ReverificationRule(level: .firstFactor, afterMinutes: 30)!.isSatisfied(fva: fva(29, -1)))
        #expect(!ReverificationRule(level: .firstFactor, afterMinutes: 30)!.isSatisfied(fva: fva(-1, 1)))
        #expect(rule("lax").isSatisfied(fva: fva(0, 1439)))
        // Malformed claims fail.
        for bad: JSONValue? in [nil, .null, fva(0), fva(0, 0, 0), fva(-2, 0), fva(0, "x"), .string("0,0")] {
            #expect(!rule("lax").isSatisfied(fva: bad))
        }
    }

    @Test func errorBodyIsClerks() throws {
        #expect(rule("strict").errorBody == #"{"clerk_error":{"type":"forbidden","reason":"reverification-error","metadata":{"reverification":"strict"}}}"#)
        let custom = try #require(ReverificationRule(level: .secondFactor, afterMinutes: 30))
        #expect(custom.errorBody == #"{"clerk_error":{"type":"forbidden","reason":"reverification-error","metadata":{"reverification":{"level":"second_factor","afterMinutes":30}}}}"#)
    }

    static let yaml = """
        clerk:
          publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k
          jwks_file: jwks.json
        sign_in_url: /sign-in
        routes:
          - name: danger
            match: ["/api/danger"]
            require: { reverification: strict }
          - name: custom
            match: ["/api/custom"]
            require: { reverification: { level: first_factor, after_minutes: 5 } }
        """

    @Test func routesAnswer403WithTheBody() async throws {
        let g = try Fixtures.gatekeeper(Self.yaml)
        let stale = await g.evaluate("/api/danger", headers: [("Authorization", "Bearer " + Fixtures.token(extra: ["fva": [30, 30]]))])
        #expect(stale.decision.status == 403)
        #expect(stale.decision.responseHeaders.first("content-type") == "application/json")
        let body = try #require(try JSONSerialization.jsonObject(with: Data((stale.decision.body ?? "").utf8)) as? [String: Any])
        let error = try #require(body["clerk_error"] as? [String: Any])
        #expect(error["type"] as? String == "forbidden" && error["reason"] as? String == "reverification-error")
        #expect((error["metadata"] as? [String: Any])?["reverification"] as? String == "strict")
        let fresh = await g.evaluate("/api/danger", headers: [("Authorization", "Bearer " + Fixtures.token(extra: ["fva": [1, 2]]))])
        #expect(fresh.decision.action == .proxy)
        let none = await g.evaluate("/api/danger", headers: [("Authorization", "Bearer " + Fixtures.token())])
        #expect(none.decision.status == 403)
        #expect(await g.evaluate("/api/custom", headers: [("Authorization", "Bearer " + Fixtures.token(extra: ["fva": [4, -1]]))]).decision.action == .proxy)
        #expect(await g.evaluate("/api/custom", headers: [("Authorization", "Bearer " + Fixtures.token(extra: ["fva": [6, -1]]))]).decision.status == 403)
        // Signed out: the usual 401, not the reverification answer.
        #expect(await g.evaluate("/api/danger").decision.status == 401)
    }

    @Test func configErrors() {
        func issues(_ value: String, accepts: String? = nil) -> [String] {
            Fixtures.configIssues("""
                clerk: { publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k, jwks_file: jwks.json, secret_key: sk_live_x }
                sign_in_url: /sign-in
                routes:
                  - name: r
                    match: ["/r"]
                \(accepts.map { "    accepts: \($0)" } ?? "")
                    require: { reverification: \(value) }
                """).map { "\($0.keyPath): \($0.message)" }
        }
        #expect(issues("strict") == [])
        #expect(issues("strictest") == ["routes[0] (r).require.reverification: expected one of lax, moderate, strict, strict_mfa, or {level, after_minutes}"])
        #expect(issues("{ level: third_factor, after_minutes: 5 }") == ["routes[0] (r).require.reverification.level: expected one of first_factor, second_factor, multi_factor"])
        #expect(issues("{ level: multi_factor, after_minutes: 0 }").first?.hasPrefix("routes[0] (r).require.reverification.after_minutes: expected a whole number in 1...525600") == true)
        #expect(issues("strict", accepts: "[session_token, api_key]") == ["routes[0] (r).require.reverification: cannot apply to api_key tokens: reverification reads a session's fva claim; give machine callers a route of their own"])
    }
}
