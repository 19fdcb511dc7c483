import Foundation
@testable import GatehouseAuth
import GatehouseFetch
import NIOCore
import Synchronization
import GatehouseConfig
import GatehouseDevIssuer
@testable import GatehouseCore
@testable import GatehouseEngine
import Testing

/// Tests for the fixes of the machine-auth review (ReviewMachineAuthTests holds the review's own tests).
@Suite struct MachineReviewFixTests {
    @Test func aRouteMayNotBeNamedLikeTheFallback() {
        for name in ["default", "Default", "DEFAULT"] {
            let yaml = """
                clerk:
                  publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k
                  jwks_file: jwks.json
                sign_in_url: /sign-in
                routes:
                  - name: \(name)
                    match: ["/legacy(.*)"]
                default: protected
                """
            let issues = Fixtures.configIssues(yaml)
            #expect(issues.contains { $0.keyPath == "routes[0].name" && $0.message.contains("reserved for the fallback") }, "\(name): \(issues)")
        }
    }

    static let mcpYAML = """
        clerk:
          publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k
          secret_key: sk_live_machinetests
          jwks_file: jwks.json
        sign_in_url: /sign-in
        routes:
          - name: mcp
            match: ["/mcp(.*)"]
            accepts: [session_token, oauth_token]
          - name: app
            match: ["/app(.*)"]
            accepts: [session_token, api_key]
        default: protected
        """

    /// Was review/machine-auth-explain.sh check 3: an MCP client's discovery request (no token) on a route
    /// that takes sessions and OAuth tokens is answered on the session path, and its 401 must still point at
    /// the resource metadata; so must the 401 for a bad session token there. Not on routes without OAuth.
    @Test func sessionPath401OnARouteTakingOAuthCarriesTheResourceMetadata() async throws {
        let metadata = "https://clerk.example.com/.well-known/oauth-protected-resource"
        let g = try MachineFixtures.gatekeeper(Self.mcpYAML, source: FakeMachineSource())
        let discovery = await g.evaluate("/mcp", headers: [("Accept", "application/json")])
        #expect(discovery.decision.status == 401)
        #expect(discovery.decision.responseHeaders.first("www-authenticate") == "Bearer resource_metadata=\"\(metadata)\"")
        let badSession = await g.evaluate("/mcp", headers: [("Accept", "application/json"), ("Authorization", "Bearer e30.e30.e30")])
        #expect(badSession.decision.status == 401)
        #expect(badSession.decision.responseHeaders.first("www-authenticate")?.hasPrefix("Bearer resource_metadata=\"\(metadata)\"") == true)
        let app = await g.evaluate("/app", headers: [("Accept", "application/json")])
        #expect(app.decision.responseHeaders.first("www-authenticate") == #"Bearer realm="gatehouse""#)
    }

    /// Runs `work` and says whether it ended within `limit` seconds (a hang is reported, not waited for:
    /// `stop` then ends what the work waits on, so the test itself never hangs).
    func endsWithin(_ limit: Double, stop: @escaping @Sendable () async -> Void, _ work: @escaping @Sendable () async -> Void) async throws -> Bool {
        let finished = Mutex(false)
        let call = Task {
            await work()
            finished.withLock { $0 = true }
        }
        let start = Date()
        while !finished.withLock({ $0 }), Date().timeIntervalSince(start) < limit {
            try await Task.sleep(for: .milliseconds(50))
        }
        let ended = finished.withLock { $0 }
        await stop()
        _ = await call.result
        return ended
    }

    /// The JWKS and handshake-payload fetches read bodies the way the verify call did: one deadline must
    /// cover head and body there too (the stalling server sends a head and one byte of body, then nothing).
    @Test func jwksAndHandshakeFetchesAreBoundedWhenTheBodyStalls() async throws {
        // 20 s of margin for a loaded machine (the whole suite in parallel has held such a test back past 4 s).
        let jwks = try await StallingBackendAPI()
        #expect(try await endsWithin(20, stop: { await jwks.stop() }) {
            _ = try? await HTTPJWKSSource(url: jwks.origin + "/.well-known/jwks.json", bearer: nil, timeout: .milliseconds(500)).fetchJWKS()
        }, "the JWKS fetch was still waiting for the body 20 s after a 0.5 s timeout")
        let payload = try await StallingBackendAPI()
        #expect(try await endsWithin(20, stop: { await payload.stop() }) {
            _ = try? await HTTPHandshakePayloadSource(apiURL: payload.origin, secretKey: "sk_live_review", timeout: .milliseconds(500)).directives(nonce: "nonce")
        }, "the handshake payload fetch was still waiting for the body 20 s after a 0.5 s timeout")
    }

    /// The verifier bounds a call itself, whatever its source does: a source that never answers gives
    /// `unavailable` (503) after `callTimeout`, to the caller and to every request joined on that call.
    @Test func verifierAnswersWhenItsSourceNeverDoes() async throws {
        let source = FakeMachineSource()
        source.hold()
        var limits = MachineTokenVerifier.Limits()
        limits.callTimeout = 0.3
        let verifier = MachineTokenVerifier(source: source, limits: limits)
        guard case .pending(let first) = verifier.lookup(.apiKey, token: MachineFixtures.apiKey, client: "a", now: Fixtures.now),
            case .pending(let joined) = verifier.lookup(.apiKey, token: MachineFixtures.apiKey, client: "b", now: Fixtures.now)
        else { Issue.record("no call started"); source.release(); return }
        let outcomes = Mutex<[MachineAuthState]>([])
        // Without the verifier's own deadline this waits until `release()` (after 20 s: margin for a loaded
        // machine, which has held this test back past 10 s), and fails.
        #expect(try await endsWithin(20, stop: { source.release() }) {
            let both = [await first.value, await joined.value]
            outcomes.withLock { $0 = both }
        }, "the verifier was still waiting 20 s after a 0.3 s call timeout")
        for outcome in outcomes.withLock({ $0 }) {
            guard case .unavailable = outcome else { Issue.record("\(outcome)"); continue }
        }
        #expect(source.calls == 1)
    }

    static func machineYAML(_ machineAuth: String, require: String = "") -> String {
        """
        clerk:
          publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k
          secret_key: sk_live_machinetests
          jwks_file: jwks.json
        \(machineAuth)
        sign_in_url: /sign-in
        routes:
          - name: m2m
            match: ["/api/m2m(.*)"]
            accepts: m2m_token
            \(require)
        default: protected
        """
    }

    /// `machine_auth.machine_id`: an M2M JWT passes only when granted to this machine (its id in `scopes`,
    /// and in `aud` when there is one); without the setting a route open to any machine's token warns.
    @Test func m2mJWTsMustBeGrantedToThisMachine() async throws {
        let g = try MachineFixtures.gatekeeper(Self.machineYAML("machine_auth: { machine_id: mch_1xxxxx }"), source: FakeMachineSource())
        func jwt(aud: JSONValue?, scopes: String) -> String {
            var payload = MachineFixtures.m2mPayload()
            payload.set("scopes", .string(scopes))
            if let aud { payload.set("aud", aud) } else { payload = JSONObject(payload.members.filter { $0.0 != "aud" }) }
            return Fixtures.issuer.sign(payload, header: JSONObject([("cat", "cl_B7d4PD333AAA")]))
        }
        func bearer(_ token: String) -> [(String, String)] { [("Authorization", "Bearer " + token)] }
        // The fixture's token: aud and scopes [mch_1xxxxx, mch_2xxxxx].
        #expect(await g.evaluate("/api/m2m", headers: bearer(MachineFixtures.m2mJWT())).decision.action == .proxy)
        #expect(await g.evaluate("/api/m2m", headers: bearer(jwt(aud: nil, scopes: "mch_1xxxxx"))).decision.action == .proxy)
        let other = await g.evaluate("/api/m2m", headers: bearer(jwt(aud: .array(["mch_2xxxxx"]), scopes: "mch_2xxxxx")))
        #expect(other.decision.status == 401)
        #expect(other.decision.explanation.contains("not granted to this machine"))
        #expect(!(other.decision.responseHeaders.map(\.value).joined().contains("mch_1xxxxx")))
        let audMismatch = await g.evaluate("/api/m2m", headers: bearer(jwt(aud: .array(["mch_2xxxxx"]), scopes: "mch_1xxxxx")))
        #expect(audMismatch.decision.status == 401)
        // Opaque tokens too (with clerk.secret_key the Backend API verifies any token of the instance).
        let source = FakeMachineSource()
        source.answer("mt_other", MachineFixtures.m2mJSON.replacingOccurrences(of: #""scopes":["mch_1xxxxxxxxxxxxx","mch_2xxxxxxxxxxxxx"]"#, with: #""scopes":["mch_2xxxxx"]"#))
        let g2 = try MachineFixtures.gatekeeper(Self.machineYAML("machine_auth: { machine_id: mch_1xxxxx }"), source: source)
        #expect(await g2.evaluate("/api/m2m", headers: bearer("mt_other"), now: 1_753_743_316).decision.status == 401)
    }

    @Test func machineIdIsValidatedAndItsAbsenceWarns() throws {
        #expect(Fixtures.configIssues(Self.machineYAML("machine_auth: { machine_id: ak_wrong }")).contains { $0.keyPath == "machine_auth.machine_id" })
        let open = try Fixtures.settings(Self.machineYAML(""))
        #expect(open.warnings.contains { $0.contains("route 'm2m'") && $0.contains("machine_auth.machine_id") })
        let restricted = try Fixtures.settings(Self.machineYAML("", require: "require: { machine_ids: [mch_caller] }"))
        #expect(!restricted.warnings.contains { $0.contains("machine_auth.machine_id") })
        let scoped = try Fixtures.settings(Self.machineYAML("machine_auth: { machine_id: mch_1xxxxx }"))
        #expect(!scoped.warnings.contains { $0.contains("machine_auth.machine_id") })
    }
}
