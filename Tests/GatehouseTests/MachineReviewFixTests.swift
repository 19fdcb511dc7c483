import Foundation
@testable import GatehouseAuth
import GatehouseFetch
import NIOCore
import Synchronization
import GatehouseConfig
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
        let jwks = try await StallingBackendAPI()
        #expect(try await endsWithin(4, stop: { await jwks.stop() }) {
            _ = try? await HTTPJWKSSource(url: jwks.origin + "/.well-known/jwks.json", bearer: nil, timeout: .milliseconds(500)).fetchJWKS()
        }, "the JWKS fetch was still waiting for the body 4 s after a 0.5 s timeout")
        let payload = try await StallingBackendAPI()
        #expect(try await endsWithin(4, stop: { await payload.stop() }) {
            _ = try? await HTTPHandshakePayloadSource(apiURL: payload.origin, secretKey: "sk_live_review", timeout: .milliseconds(500)).directives(nonce: "nonce")
        }, "the handshake payload fetch was still waiting for the body 4 s after a 0.5 s timeout")
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
        // Without the verifier's own deadline this waits until `release()` (after 4 s), and fails.
        #expect(try await endsWithin(4, stop: { source.release() }) {
            let both = [await first.value, await joined.value]
            outcomes.withLock { $0 = both }
        }, "the verifier was still waiting 4 s after a 0.3 s call timeout")
        for outcome in outcomes.withLock({ $0 }) {
            guard case .unavailable = outcome else { Issue.record("\(outcome)"); continue }
        }
        #expect(source.calls == 1)
    }
}
