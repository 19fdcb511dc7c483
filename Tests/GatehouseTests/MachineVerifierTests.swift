import Foundation
@testable import GatehouseAuth
import GatehouseConfig
@testable import GatehouseCore
@testable import GatehouseEngine
import Synchronization
import Testing

/// A clock the test moves by hand: monotonic and wall time move together.
final class MachineTestClock: Sendable {
    let seconds: Mutex<Double>
    let wallOffset: Double
    init(wall: Double) { seconds = Mutex(1000); wallOffset = wall - 1000 }
    func advance(_ by: Double) { seconds.withLock { $0 += by } }
    var monotonic: @Sendable () -> Double { { [self] in seconds.withLock { $0 } } }
    var wall: @Sendable () -> Double { { [self] in seconds.withLock { $0 } + wallOffset } }
    var now: Double { wall() }
}

@Suite struct MachineResponseTests {
    let now = 1_753_743_316.0

    func interpret(_ body: String, status: Int = 200, _ type: TokenType = .apiKey) -> MachineAuthState {
        MachineTokenResponse.interpret(BackendAPIAnswer(status: status, body: Array(body.utf8)), type: type, now: now)
    }

    @Test func clerkShapesVerify() throws {
        guard case .verified(let key) = interpret(MachineFixtures.apiKeyJSON()) else { Issue.record("api key"); return }
        #expect(key.id == "ak_xxxxx" && key.name == "Test API Key" && key.subject == "user_xxxxx" && key.userId == "user_xxxxx" && key.orgId == nil)
        #expect(key.scopes == ["scope1", "scope2"] && key.claims == JSONObject([("foo", "bar")]))
        guard case .verified(let m2m) = interpret(MachineFixtures.m2mJSON, .m2mToken) else { Issue.record("m2m"); return }
        #expect(m2m.machineId == "mch_1xxxxxxxxxxxxx" && m2m.expiresAt == 1_753_746_916.590)
        guard case .verified(let oauth) = interpret(MachineFixtures.oauthJSON, .oauthToken) else { Issue.record("oauth"); return }
        #expect(oauth.clientId == "client_2xhFjEI5X2qWRvtV13BzSj8H6Dk" && oauth.userId == "user_2xhFjEI5X2qWRvtV13BzSj8H6Dk" && oauth.scopes == ["read", "write"])
        let orgKey = MachineFixtures.apiKeyJSON(subject: "org_xxxxx")
        guard case .verified(let org) = interpret(orgKey) else { Issue.record("org key"); return }
        #expect(org.orgId == "org_xxxxx" && org.userId == nil)
    }

    @Test func failClosedOn200() {
        for body in [MachineFixtures.apiKeyJSON(revoked: true), MachineFixtures.apiKeyJSON(expired: true),
                     MachineFixtures.apiKeyJSON(expiration: "1753743000000"), MachineFixtures.apiKeyJSON(subject: nil),
                     MachineFixtures.apiKeyJSON(subject: ""), MachineFixtures.m2mJSON, #"["not an object"]"#.replacingOccurrences(of: "[", with: "{\"object\":\"api_key\",\"x\":[").replacingOccurrences(of: "]", with: "]}")] {
            guard case .rejected(let reason, _) = interpret(body) else { Issue.record("accepted: \(body)"); continue }
            #expect(reason == "token-invalid")
        }
        guard case .rejected = interpret(#"{"active":false}"#, .oauthToken) else { Issue.record("active false passed"); return }
    }

    @Test func statusMapping() {
        #expect(interpret("{}", status: 404) == .rejected(reason: "token-invalid", message: "API key not found (code=token-invalid, status=404)"))
        #expect(interpret("{}", status: 404, .m2mToken) == .rejected(reason: "token-invalid", message: "Machine token not found (code=token-invalid, status=404)"))
        #expect(interpret("{}", status: 404, .oauthToken) == .rejected(reason: "token-invalid", message: "OAuth token not found (code=token-invalid, status=404)"))
        guard case .unavailable(let r401, _) = interpret(#"{"errors":[{"message":"The provided Machine Secret Key is invalid.","code":"machine_secret_key_invalid"}]}"#, status: 401, .m2mToken),
            case .unavailable(let r429, _) = interpret("{}", status: 429), case .unavailable(let r500, _) = interpret("{}", status: 500),
            case .unavailable = interpret("not json")
        else { Issue.record("a Backend API failure became a verdict on the token"); return }
        #expect(r401 == "secret-key-invalid" && r429 == "unexpected-error" && r500 == "unexpected-error")
    }
}

@Suite struct MachineVerifierTests {
    let source = FakeMachineSource()
    let clock = MachineTestClock(wall: 1_753_743_316)

    func verifier(_ limits: MachineTokenVerifier.Limits = .init()) -> MachineTokenVerifier {
        MachineTokenVerifier(source: source, limits: limits, clock: clock.monotonic, wallClock: clock.wall)
    }

    func resolve(_ v: MachineTokenVerifier, _ token: String, type: TokenType = .apiKey, client: String = "10.0.0.1") async -> MachineAuthState? {
        switch v.lookup(type, token: token, client: client, now: clock.now) {
        case .ready(let state): return state
        case .shed: return nil
        case .pending(let task): return await task.value
        }
    }

    func isVerified(_ state: MachineAuthState?) -> Bool {
        if case .verified? = state { return true }
        return false
    }

    @Test func positiveCacheOneCallForManyRequests() async {
        source.answer("ak_one", MachineFixtures.apiKeyJSON())
        let v = verifier()
        for _ in 0..<20 { #expect(isVerified(await resolve(v, "ak_one"))) }
        #expect(source.calls == 1)
        #expect(v.cacheHits == 19)
        // A different type with the same text is a different entry.
        _ = await resolve(v, "ak_one", type: .oauthToken)
        #expect(source.calls == 2)
    }

    @Test func revocationWindowBoundsThePositiveCache() async {
        source.answer("ak_one", MachineFixtures.apiKeyJSON())
        let v = verifier(.init(revocationWindow: 30))
        _ = await resolve(v, "ak_one")
        clock.advance(29)
        _ = await resolve(v, "ak_one")
        #expect(source.calls == 1)
        clock.advance(2)
        // Revoked meanwhile: the Backend API still answers 200 (revoked: true), and that is a rejection.
        source.answer("ak_one", MachineFixtures.apiKeyJSON(revoked: true))
        guard case .rejected? = await resolve(v, "ak_one") else { Issue.record("revoked key passed"); return }
        #expect(source.calls == 2)
    }

    @Test func expiryBoundsThePositiveCache() async {
        // m2mJSON expires at 1753746916.590; start 20 s before.
        let clock = MachineTestClock(wall: 1_753_746_896.59)
        let v = MachineTokenVerifier(source: source, limits: .init(revocationWindow: 30), clock: clock.monotonic, wallClock: clock.wall)
        source.answer("mt_one", MachineFixtures.m2mJSON)
        func lookup() async -> MachineAuthState? {
            switch v.lookup(.m2mToken, token: "mt_one", client: "c", now: clock.now) {
            case .ready(let s): return s
            case .shed: return nil
            case .pending(let t): return await t.value
            }
        }
        #expect(isVerified(await lookup()))
        clock.advance(19)
        #expect(isVerified(await lookup()))
        #expect(source.calls == 1)
        clock.advance(2)
        // Past its expiry: not served from the cache, and the Backend API's 200 with a past expiration is refused.
        guard case .rejected? = await lookup() else { Issue.record("expired token passed"); return }
        #expect(source.calls == 2)
    }

    @Test func negativeCacheIsShort() async {
        let v = verifier(.init(negativeSeconds: 5))
        _ = await resolve(v, "ak_unknown")
        _ = await resolve(v, "ak_unknown")
        #expect(source.calls == 1)
        clock.advance(6)
        _ = await resolve(v, "ak_unknown")
        #expect(source.calls == 2)
    }

    @Test func singleFlightUnderConcurrency() async {
        source.answer("ak_one", MachineFixtures.apiKeyJSON())
        source.hold()
        let v = verifier()
        let results = await withTaskGroup(of: Bool.self) { group in
            for i in 0..<40 {
                group.addTask { self.isVerified(await self.resolve(v, "ak_one", client: "10.0.0.\(i)")) }
            }
            // Let every lookup join the one call before it completes.
            while source.calls < 1 { await Task.yield() }
            try? await Task.sleep(for: .milliseconds(50))
            source.release()
            var all: [Bool] = []
            for await ok in group { all.append(ok) }
            return all
        }
        #expect(results.count == 40 && results.allSatisfy { $0 })
        #expect(source.calls == 1)
    }

    @Test func outboundLimitsPerClientAndGlobal() async {
        let v = verifier(.init(burst: 3, perSecond: 1, clientBurst: 2, clientPerSecond: 1))
        #expect(await resolve(v, "ak_a1", client: "a") != nil)
        #expect(await resolve(v, "ak_a2", client: "a") != nil)
        #expect(await resolve(v, "ak_a3", client: "a") == nil)  // client bucket empty
        #expect(await resolve(v, "ak_b1", client: "b") != nil)
        #expect(await resolve(v, "ak_b2", client: "b") == nil)  // global bucket empty
        #expect(v.shedCount == 2)
        #expect(source.calls == 3)
        // Cached answers cost nothing, even over the limit.
        #expect(await resolve(v, "ak_a1", client: "a") != nil)
        clock.advance(1)
        #expect(await resolve(v, "ak_b2", client: "b") != nil)
        #expect(source.calls == 4)
    }

    @Test func outageIsUnavailableAndBrieflyRemembered() async {
        source.answer("ak_one", MachineFixtures.apiKeyJSON())
        source.setDown(true)
        let v = verifier(.init(unavailableSeconds: 1))
        guard case .unavailable? = await resolve(v, "ak_one") else { Issue.record("outage was a verdict"); return }
        _ = await resolve(v, "ak_one")
        #expect(source.calls == 1)
        source.setDown(false)
        clock.advance(1.5)
        #expect(isVerified(await resolve(v, "ak_one")))
        #expect(source.calls == 2)
    }
}

@Suite struct MachineOpaqueDecisionTests {
    let source = FakeMachineSource()

    func bearer(_ token: String) -> [(String, String)] { [("Authorization", "Bearer " + token)] }

    func raw(_ path: String, _ token: String) -> RawRequest {
        RawRequest(method: "GET", target: path, headers: HeaderList([("Host", "app.example.com"), ("Authorization", "Bearer " + token)]), scheme: "https")
    }

    @Test func eachOpaqueTypeValidAndInvalid() async throws {
        source.answer(MachineFixtures.apiKey, MachineFixtures.apiKeyJSON())
        source.answer(MachineFixtures.m2mToken, MachineFixtures.m2mJSON.replacingOccurrences(of: "1753746916590", with: "4102444800000"))
        source.answer(MachineFixtures.oauthToken, MachineFixtures.oauthJSON)
        source.answer("ak_revoked", MachineFixtures.apiKeyJSON(revoked: true))
        source.answer("oat_inactive", #"{"active":false}"#)
        let g = try MachineFixtures.gatekeeper(source: source)
        for (path, token) in [("/api/keys", MachineFixtures.apiKey), ("/api/m2m", MachineFixtures.m2mToken), ("/api/mcp", MachineFixtures.oauthToken)] {
            let e = await g.evaluate(path, headers: bearer(token))
            #expect(e.decision.action == .proxy, "\(path): \(e.decision.explanation)")
            #expect(!ExplainReport.json(for: e).serialized().contains(token))
        }
        for (path, token) in [("/api/keys", "ak_unknown"), ("/api/keys", "ak_revoked"), ("/api/mcp", "oat_inactive"), ("/api/m2m", "mt_unknown")] {
            let e = await g.evaluate(path, headers: bearer(token))
            #expect(e.decision.status == 401, "\(path) \(token)")
            #expect(e.auth?.reason == "token-invalid")
        }
    }

    @Test func cachedTokenIsDecidedWithoutWaiting() async throws {
        source.answer(MachineFixtures.apiKey, MachineFixtures.apiKeyJSON())
        let g = try MachineFixtures.gatekeeper(source: source)
        // First: a call must be waited for; the async path joins the call the synchronous one started.
        #expect(g.evaluateWithoutFetching(raw("/api/keys", MachineFixtures.apiKey), now: Fixtures.now) == nil)
        let first = await g.evaluate(raw("/api/keys", MachineFixtures.apiKey), now: Fixtures.now)
        #expect(first.decision.action == .proxy)
        let again = try #require(g.evaluateWithoutFetching(raw("/api/keys", MachineFixtures.apiKey), now: Fixtures.now))
        #expect(again.decision.action == .proxy)
        #expect(source.calls == 1)
    }

    @Test func outageAnswers503NeverAPassOrA401() async throws {
        source.setDown(true)
        let g = try MachineFixtures.gatekeeper(source: source)
        let e = await g.evaluate("/api/keys", headers: bearer(MachineFixtures.apiKey))
        #expect(e.decision.status == 503)
        #expect(e.decision.responseHeaders.first("retry-after") == "1")
        #expect(e.auth?.reason == "backend-api-unreachable")
    }

    @Test func shedAnswers503() async throws {
        let limits = MachineTokenVerifier.Limits(burst: 1, perSecond: 0.001, clientBurst: 5, clientPerSecond: 0.001)
        let settings = try Fixtures.settings(MachineFixtures.yaml)
        let verifier = MachineTokenVerifier(source: source, limits: limits)
        let g = try MachineFixtures.gatekeeper(verifier: verifier)
        _ = settings
        #expect(await g.evaluate("/api/keys", headers: bearer("ak_first")).decision.status == 401)
        let shed = await g.evaluate("/api/keys", headers: bearer("ak_second"))
        #expect(shed.decision.status == 503)
        #expect(shed.auth?.reason == "verification-rate-limited")
        #expect(verifier.shedCount == 1)
    }
}
