import Foundation
@testable import GatehouseAuth
import GatehouseConfig
@testable import GatehouseCore
@testable import GatehouseEngine
import GatehouseDevIssuer
import GatehouseFetch
import NIOCore
import NIOPosix
import Synchronization
import Testing

// Security review of machine authentication (issue 12). Each test states what should hold; a failing test is
// a finding (see the review report). Production code is not changed here.

/// TEST DOUBLE: a "Backend API" on 127.0.0.1 that answers every connection with a 200 head promising a
/// 64-byte JSON body, sends one byte of it and then goes silent (a stalled TCP stream after the head).
/// Raw bytes, no HTTP code of Gatehouse's.
final class StallingBackendAPI: Sendable {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let channel: any Channel
    let children = Mutex<[any Channel]>([])
    var origin: String { "http://127.0.0.1:\(channel.localAddress!.port!)" }

    init() async throws {
        let box = StallBox()
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                box.owner?.children.withLock { $0.append(child) }
                return child.eventLoop.makeCompletedFuture { try child.pipeline.syncOperations.addHandler(StallHandler()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        box.owner = self
    }

    func stop() async {
        for child in children.withLock({ $0 }) { try? await child.close() }
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}

final class StallBox: @unchecked Sendable { weak var owner: StallingBackendAPI? }

final class StallHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var answered = false
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        answered = true
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n{"
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: head)), promise: nil)
    }
}

@Suite struct ReviewMachineAuthTests {
    func bearer(_ token: String) -> [(String, String)] { [("Authorization", "Bearer " + token)] }

    func raw(_ path: String, _ token: String) -> RawRequest {
        RawRequest(method: "GET", target: path, headers: HeaderList([("Host", "app.example.com"), ("Authorization", "Bearer " + token)]), scheme: "https")
    }

    /// `machine_auth.timeout` must bound the whole verify call. AsyncHTTPClient's `execute(_:timeout:)` deadline
    /// ends when the response head arrives, and the body is then collected with no time limit: a Backend API
    /// (or a network path) that stalls after the head keeps the single-flight call — and every request waiting
    /// on that token — hanging forever, instead of the documented 503 after the timeout.
    @Test func verifyCallIsBoundedByTheTimeoutEvenWhenTheBodyStalls() async throws {
        let server = try await StallingBackendAPI()
        let source = HTTPMachineTokenSource(apiURL: server.origin, secretKey: "sk_live_review", machineSecretKey: nil, timeout: 0.5)
        let finished = Mutex<Bool?>(nil)
        let call = Task {
            do { _ = try await source.verify(.apiKey, token: "ak_review") } catch {}
            finished.withLock { $0 = true }
        }
        let start = Date()
        // 20 s of margin for a loaded machine (the whole suite in parallel has held this test back past 4 s).
        while finished.withLock({ $0 }) == nil, Date().timeIntervalSince(start) < 20 {
            try await Task.sleep(for: .milliseconds(50))
        }
        let ended = finished.withLock { $0 } == true
        await server.stop()  // closes the stalled connection so the leaked call (if any) ends too
        _ = await call.result
        #expect(ended, "the verify call was still waiting for the body 20 s after a 0.5 s timeout")
    }

    /// One request must cost at most one Backend API call. The synchronous decision starts the call and the
    /// async decision looks the token up again; when the result is not cached (revocation_window: 0, or
    /// negative_cache: 0 for a refused token) and the call has already finished, the async path starts a
    /// second call for the same request.
    @Test func oneRequestCostsOneCallWhenResultsAreNotCached() async throws {
        let source = FakeMachineSource()
        source.answer(MachineFixtures.apiKey, MachineFixtures.apiKeyJSON())
        let verifier = MachineTokenVerifier(source: source, limits: .init(revocationWindow: 0, negativeSeconds: 0))
        let g = try MachineFixtures.gatekeeper(verifier: verifier)
        #expect(g.evaluateWithoutFetching(raw("/api/keys", MachineFixtures.apiKey), now: Fixtures.now) == nil)
        // The event loop hands the request to a task; the fast call may finish before that task looks.
        try await Task.sleep(for: .milliseconds(100))
        let e = await g.evaluate(raw("/api/keys", MachineFixtures.apiKey), now: Fixtures.now)
        #expect(e.decision.action == .proxy)
        #expect(source.calls == 1, "one request made \(source.calls) Backend API calls")
    }

    /// Fail closed on odd 200s: a body without `object`, or whose `expired`/`active` flags are not booleans,
    /// is not Clerk's verified resource and must not verify (only `revoked` is type-checked today).
    @Test func oddTwoHundredsAreRejected() {
        let now = 1_753_743_316.0
        let bodies = [
            #"{"id":"ak_1","subject":"user_1","scopes":[]}"#,  // no object member
            #"{"object":"api_key","id":"ak_1","subject":"user_1","revoked":false,"expired":"true"}"#,
            #"{"object":"api_key","id":"ak_1","subject":"user_1","revoked":false,"expired":1}"#,
            #"{"object":"api_key","id":"ak_1","subject":"user_1","revoked":false,"active":"false"}"#,
        ]
        for body in bodies {
            let state = MachineTokenResponse.interpret(BackendAPIAnswer(status: 200, body: Array(body.utf8)), type: .apiKey, now: now)
            if case .verified = state { Issue.record("verified: \(body)") }
        }
    }

    /// The README: "The body never says which requirement failed; explain does". A template token that fails
    /// the route's template claim gets a 401 whose X-Clerk-Auth-Message names the claim and the value the
    /// route wants (here `role` must equal "admin"), telling a caller exactly what to obtain.
    @Test func templateClaimRequirementIsNotDisclosedToTheCaller() async throws {
        let g = try MachineFixtures.gatekeeper()
        let e = await g.evaluate("/api/external", headers: bearer(MachineFixtures.templateJWT(role: "writer")))
        #expect(e.decision.status == 401)
        let sent = e.decision.responseHeaders.map { "\($0.name): \($0.value)" }.joined(separator: "\n") + (e.decision.body ?? "")
        #expect(!sent.contains("reader"), "the response discloses the required claim value:\n\(sent)")
    }

    /// `Authorization: Bearer ak_x junk` is no API key (Clerk's keys have no spaces), yet the whole text
    /// "ak_x junk" is sent to the Backend API: every such request spends a metered call (and a bucket token).
    /// A shape check before the call (prefix + the token alphabet, a length cap) answers it locally.
    @Test func malformedOpaqueTokensNeverReachTheBackendAPI() async throws {
        let source = FakeMachineSource()
        let g = try MachineFixtures.gatekeeper(source: source)
        for token in ["ak_x junk", "ak_" + String(repeating: "a", count: 20_000), "ak_\u{7F}x", "mt_a\"b", "oat_"] {
            let e = await g.evaluate(token.hasPrefix("ak_") ? "/api/keys" : token.hasPrefix("mt_") ? "/api/m2m" : "/api/mcp", headers: bearer(token))
            #expect(e.decision.action != .proxy, "\(token.prefix(12)): \(e.decision.explanation)")
        }
        #expect(source.calls == 0, "malformed opaque tokens cost \(source.calls) Backend API calls")
    }

    static let scopedYAML = """
        clerk:
          publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k
          secret_key: sk_live_machinetests
          machine_secret_key: ak_this_machines_secret
          jwks_file: jwks.json
        machine_auth:
          # The machine the secret key belongs to: the key is opaque, so the gateway is told its id to check
          # locally verified JWTs the way the Backend API checks opaque tokens (fix of this finding).
          machine_id: mch_this_machine
        sign_in_url: /sign-in
        routes:
          - name: m2m
            match: ["/api/m2m(.*)"]
            accepts: m2m_token
        default: protected
        """

    /// README: `clerk.machine_secret_key` … "only tokens granted to that machine verify". That holds for opaque
    /// `mt_` tokens (the Backend API refuses, with the machine's key, a token not scoped to it), but an M2M
    /// JWT is verified locally and nothing compares its `aud`/`scopes` with this machine: a token machine A
    /// minted for machine B (`aud: [mch_B]`) passes a route of machine C. The same grant in opaque form is
    /// refused, so which form a caller picks decides whether C's restriction holds.
    @Test func m2mJWTNotScopedToThisMachineIsRefusedLikeItsOpaqueForm() async throws {
        let source = FakeMachineSource()
        // What the Backend API answers, with this machine's secret key, for a token scoped to other machines.
        source.answer("mt_scoped_to_other_machines", status: 404, #"{"errors":[{"message":"not found","code":"resource_not_found"}]}"#)
        let g = try MachineFixtures.gatekeeper(Self.scopedYAML, source: source)
        let opaque = await g.evaluate("/api/m2m", headers: bearer("mt_scoped_to_other_machines"))
        #expect(opaque.decision.status == 401)
        // An M2M JWT whose aud/scopes are mch_1xxxxx and mch_2xxxxx: neither is this machine.
        let jwt = await g.evaluate("/api/m2m", headers: bearer(MachineFixtures.m2mJWT()))
        #expect(jwt.decision.action != .proxy, "M2M JWT for other machines passed: \(jwt.decision.explanation)")
    }

    static let defaultNamedYAML = """
        clerk:
          publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k
          secret_key: sk_live_machinetests
          jwks_file: jwks.json
        sign_in_url: /sign-in
        routes:
          - name: default
            match: ["/legacy(.*)"]
            accepts: api_key
        default: protected
        """

    /// Machine rules are looked up by route name, and the fallback rule is called "default"; a route may be
    /// named "default" too (only duplicates among `routes:` are refused). Its `accepts:` then also applies to
    /// every path no rule matches, so an API key opens paths the config leaves to session tokens.
    @Test func aRouteNamedDefaultDoesNotLendItsAcceptsToTheFallback() async throws {
        let source = FakeMachineSource()
        source.answer(MachineFixtures.apiKey, MachineFixtures.apiKeyJSON())
        let issues = Fixtures.configIssues(Self.defaultNamedYAML)
        if !issues.isEmpty { return }  // refusing the name at load is a fine fix too
        let g = try MachineFixtures.gatekeeper(Self.defaultNamedYAML, source: source)
        let e = await g.evaluate("/unlisted/admin", headers: bearer(MachineFixtures.apiKey))
        #expect(e.route?.name == "default")
        #expect(e.decision.action != .proxy, "an unmatched path took an API key: \(e.decision.explanation)")
    }

    static let mixedClaimsYAML = """
        clerk:
          publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k
          secret_key: sk_live_machinetests
          jwks_file: jwks.json
        sign_in_url: /sign-in
        routes:
          - name: admin-api
            match: ["/api/admin(.*)"]
            accepts: [session_token, m2m_token]
            require: {claims: {"metadata.role": admin}}
        default: protected
        """

    /// One `claims:` rule, two trust levels: for a session, `metadata.role` comes from the app's session-token
    /// template (the user cannot set it); for an M2M token the claims are whatever the minting machine passed
    /// to Clerk's `createToken({ claims })`. On a route that takes both, any machine of the instance grants
    /// itself `metadata.role: admin`. (Clerk signs what the machine asked for; the issuer here plays Clerk.)
    @Test func sessionClaimRuleOnAMixedRouteCannotBeMetBySelfAssertedMachineClaims() async throws {
        let issues = Fixtures.configIssues(Self.mixedClaimsYAML)
        if !issues.isEmpty { return }  // refusing claims: on routes that mix session and machine types is a fine fix
        var payload = MachineFixtures.m2mPayload()
        payload.set("metadata", .object(JSONObject([("role", "admin")])))
        let selfGranted = Fixtures.issuer.sign(payload, header: JSONObject([("cat", "cl_B7d4PD333AAA")]))
        let g = try MachineFixtures.gatekeeper(Self.mixedClaimsYAML)
        let e = await g.evaluate("/api/admin/users", headers: bearer(selfGranted))
        #expect(e.decision.action != .proxy, "a machine's own claims met the session rule: \(e.decision.explanation)")
    }
}
