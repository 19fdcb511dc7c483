import Foundation
@testable import GatehouseAuth
import GatehouseConfig
@testable import GatehouseCore
import GatehouseDevIssuer
import GatehouseEngine
import Synchronization
import Testing

/// A Backend API stand-in for the nonce exchange: counts calls, can hold them until released, and knows
/// which nonces are good. It never parses anything with Gatehouse's code.
final class CountingPayloadSource: HandshakePayloadSource {
    private let state = Mutex<(calls: [String], held: Bool)>(([], false))
    let directives: [String]

    init(directives: [String], held: Bool = false) {
        self.directives = directives
        state.withLock { $0.held = held }
    }

    var calls: [String] { state.withLock { $0.calls } }
    func release() { state.withLock { $0.held = false } }

    struct UnknownNonce: Error {}

    func directives(nonce: String) async throws -> [String] {
        state.withLock { $0.calls.append(nonce) }
        while state.withLock({ $0.held }) { try await Task.sleep(for: .milliseconds(2)) }
        guard nonce.hasPrefix("good") else { throw UnknownNonce() }
        return directives
    }
}

@Suite struct HandshakeNonceLimitTests {
    static let livePK = "pk_live_Y2xlcmsuZXhhbXBsZS5jb20k"
    static let page = [("Sec-Fetch-Dest", "document"), ("Accept", "text/html")]

    static func gatekeeper(_ source: CountingPayloadSource, clock: ManualClock, limits: HandshakeNonceExchange.Limits = .init()) throws -> Gatekeeper {
        let settings = try Fixtures.settings("""
            clerk: { publishable_key: \(livePK), jwks_file: jwks.json }
            sign_in_url: /sign-in
            routes:
              - { name: home, match: ["/"], access: public }
            """)
        let store = Gatekeeper.makeKeyStore(for: settings) { _, _ in fatalError("no network") }
        let exchange = HandshakeNonceExchange(source: source, limits: limits, clock: { clock.now })
        return Gatekeeper(settings: settings, keyStore: store, nonceExchange: exchange)
    }

    static func request(nonce: String, path: String = "/dashboard", method: String = "GET", headers: [(String, String)] = page,
                        peer: String = "192.0.2.1") -> RawRequest {
        RawRequest(method: method, target: path, headers: HeaderList([("Host", "app.example.com"), ("Cookie", "__clerk_handshake_nonce=\(nonce)")] + headers),
                   scheme: "https", peer: peer)
    }

    static var session: [String] { ["__session=\(Fixtures.token("user_1")); Path=/", "__client_uat=\(Int(Fixtures.now)); Path=/"] }

    @Test func concurrentRequestsWithOneNonceMakeOneCall() async throws {
        let source = CountingPayloadSource(directives: Self.session, held: true)
        let clock = ManualClock()
        let g = try Self.gatekeeper(source, clock: clock)
        let request = Self.request(nonce: "good-1")
        let results = await withTaskGroup(of: Evaluation.self) { group in
            for _ in 0..<100 { group.addTask { await g.evaluate(request, now: Fixtures.now) } }
            // Every request is waiting on the one held call before it is let go.
            while source.calls.isEmpty { try? await Task.sleep(for: .milliseconds(2)) }
            try? await Task.sleep(for: .milliseconds(50))
            source.release()
            var all: [Evaluation] = []
            for await e in group { all.append(e) }
            return all
        }
        #expect(source.calls == ["good-1"])
        #expect(results.count == 100)
        #expect(results.allSatisfy { $0.auth?.status == .signedIn && $0.auth?.session?.userId == "user_1" })
        #expect(results.allSatisfy { $0.decision.responseHeaders.values("set-cookie").count == 2 })
    }

    @Test func failuresAreCachedBrieflyAndDecidedWithoutWaiting() async throws {
        let source = CountingPayloadSource(directives: Self.session)
        let clock = ManualClock()
        let g = try Self.gatekeeper(source, clock: clock)
        // A failed exchange is remembered: a bad nonce repeated costs one call, decided on the spot.
        #expect(g.evaluateWithoutFetching(Self.request(nonce: "bad-1"), now: Fixtures.now) == nil)  // must wait: no call yet
        #expect(source.calls.isEmpty)
        let first = await g.evaluate(Self.request(nonce: "bad-1"), now: Fixtures.now)
        #expect(first.auth?.status == .signedOut)
        clock.advance(9)
        let badAgain = g.evaluateWithoutFetching(Self.request(nonce: "bad-1"), now: Fixtures.now)
        #expect(badAgain?.auth?.status == .signedOut)
        #expect(source.calls == ["bad-1"])
        // After the cache time the nonce is exchanged again.
        clock.advance(2)
        _ = await g.evaluate(Self.request(nonce: "bad-1"), now: Fixtures.now)
        #expect(source.calls == ["bad-1", "bad-1"])
    }

    /// The daemon asks `evaluateWithoutFetching` first and `evaluate` when it must wait. A call started by the
    /// first and finished before the second looked was once sent again (successes are not kept): on a fast
    /// Backend API the used nonce came back 404 and the browser looped through handshakes (seen in CI).
    @Test func theNonWaitingPathNeverStartsACallItWouldLeaveBehind() async throws {
        let source = CountingPayloadSource(directives: Self.session)
        let g = try Self.gatekeeper(source, clock: ManualClock())
        let request = Self.request(nonce: "good-3")
        #expect(g.evaluateWithoutFetching(request, now: Fixtures.now) == nil)
        try await Task.sleep(for: .milliseconds(50))  // time enough for a call left behind to finish
        let decided = await g.evaluate(request, now: Fixtures.now)
        #expect(decided.auth?.status == .signedIn)
        #expect(source.calls == ["good-3"])
    }

    @Test func aSuccessIsNeverReusedByALaterRequest() async throws {
        let source = CountingPayloadSource(directives: Self.session)
        let clock = ManualClock()
        let g = try Self.gatekeeper(source, clock: clock)
        let first = await g.evaluate(Self.request(nonce: "good-2"), now: Fixtures.now)
        #expect(first.auth?.status == .signedIn)
        // The same nonce later is not answered from memory: it goes to the Backend API again, which alone
        // knows whether the nonce is still good (Clerk's nonces are single-use).
        clock.advance(1)
        #expect(g.evaluateWithoutFetching(Self.request(nonce: "good-2", peer: "198.51.100.7"), now: Fixtures.now) == nil)
        _ = await g.evaluate(Self.request(nonce: "good-2", peer: "198.51.100.7"), now: Fixtures.now)
        #expect(source.calls == ["good-2", "good-2"])
    }

    @Test func oneClientFloodingCannotRefuseAnother() async throws {
        let source = CountingPayloadSource(directives: Self.session)
        let clock = ManualClock()
        let g = try Self.gatekeeper(source, clock: clock)  // defaults: 20 shared, 3 per client
        let flooder = "203.0.113.66"
        var refused = 0
        for i in 0..<100 {
            let e = await g.evaluate(Self.request(nonce: "bad-flood-\(i)", peer: flooder), now: Fixtures.now)
            if e.decision.status == 503 { refused += 1 }
        }
        #expect(source.calls.count == 3)  // the flooder's own burst, nothing more
        #expect(refused == 97)
        // Another client's real nonce is exchanged at once.
        let other = await g.evaluate(Self.request(nonce: "good-user", peer: "198.51.100.7"), now: Fixtures.now)
        #expect(other.auth?.status == .signedIn)
        #expect(source.calls.last == "good-user")
        // Many flooders together still meet the shared bucket (20), whatever their own buckets hold.
        for i in 0..<40 { _ = await g.evaluate(Self.request(nonce: "bad-many-\(i)", peer: "203.0.113.\(i)"), now: Fixtures.now) }
        #expect(source.calls.count == 20)
    }

    @Test func behindATrustedProxyTheForwardedClientHasTheBucket() throws {
        // The proxy's own address would put every user in one bucket: the address it appended is used.
        let viaProxy = RawRequest(method: "GET", target: "/", headers: HeaderList([("Host", "a"), ("X-Forwarded-For", "1.1.1.1, 203.0.113.9 ")]),
                                  fromTrustedProxy: true, peer: "10.0.0.2")
        #expect(try CanonicalRequest(viaProxy).clientAddress == "203.0.113.9")
        var untrusted = viaProxy
        untrusted.fromTrustedProxy = false
        #expect(try CanonicalRequest(untrusted).clientAddress == "10.0.0.2")
        let noHeader = RawRequest(method: "GET", target: "/", headers: HeaderList([("Host", "a")]), fromTrustedProxy: true, peer: "10.0.0.2")
        #expect(try CanonicalRequest(noHeader).clientAddress == "10.0.0.2")
    }

    @Test func distinctNoncesBeyondTheGlobalRateAreRefusedWithoutACall() async throws {
        let source = CountingPayloadSource(directives: Self.session)
        let clock = ManualClock()
        let g = try Self.gatekeeper(source, clock: clock, limits: .init(burst: 3, perSecond: 1, clientBurst: 100, clientPerSecond: 100))
        for i in 0..<3 { _ = await g.evaluate(Self.request(nonce: "good-r\(i)"), now: Fixtures.now) }
        #expect(source.calls.count == 3)
        // The fourth distinct nonce: no call, decided at once, 503 with Retry-After (fail closed).
        let refused = g.evaluateWithoutFetching(Self.request(nonce: "good-r3"), now: Fixtures.now)
        #expect(refused?.decision.status == 503)
        #expect(refused?.decision.responseHeaders.first("retry-after") == "1")
        #expect(refused?.auth?.reason == "handshake-nonce-rate-limited")
        #expect(refused?.auth?.session == nil)
        let viaAsync = await g.evaluate(Self.request(nonce: "good-r4"), now: Fixtures.now)
        #expect(viaAsync.decision.status == 503)
        // A public page is still served, signed out: no identity is granted either way.
        let publicPage = await g.evaluate(Self.request(nonce: "good-r5", path: "/"), now: Fixtures.now)
        #expect(publicPage.decision.action == .proxy)
        #expect(publicPage.decision.upstreamHeaders?.first("x-gatehouse-user-id") == nil)
        #expect(source.calls.count == 3)
        // A nonce that succeeded is not kept, so it needs a call like any new one: refused while the bucket is empty.
        #expect(g.evaluateWithoutFetching(Self.request(nonce: "good-r0"), now: Fixtures.now)?.decision.status == 503)
        // The bucket refills with time.
        clock.advance(1)
        let later = await g.evaluate(Self.request(nonce: "good-r3"), now: Fixtures.now)
        #expect(later.auth?.status == .signedIn)
        #expect(source.calls.count == 4)
    }

    @Test(arguments: [String(repeating: "a", count: 129), "good.1", "good%201", "good/../x", "good:1"])
    func malformedNoncesAreNeverSent(nonce: String) throws {
        let source = CountingPayloadSource(directives: Self.session)
        let g = try Self.gatekeeper(source, clock: ManualClock())
        let e = g.evaluateWithoutFetching(Self.request(nonce: nonce), now: Fixtures.now)
        #expect(e != nil)
        #expect(e?.auth?.status == .signedOut)
        #expect(source.calls.isEmpty)
    }

    @Test func onlyPageLoadsExchangeANonce() throws {
        let source = CountingPayloadSource(directives: Self.session)
        let g = try Self.gatekeeper(source, clock: ManualClock())
        let requests = [
            Self.request(nonce: "good-api", headers: [("Accept", "application/json")]),
            Self.request(nonce: "good-post", method: "POST", headers: Self.page + [("Origin", "https://app.example.com")]),
            Self.request(nonce: "good-script", headers: [("Sec-Fetch-Dest", "script")]),
        ]
        for request in requests {
            let e = g.evaluateWithoutFetching(request, now: Fixtures.now)
            #expect(e?.auth?.status == .signedOut, "\(request.method) \(request.headers)")
            #expect(e?.decision.status == 401)
        }
        #expect(source.calls.isEmpty)
    }

    @Test func withoutASecretKeyANonceIsDecidedAtOnce() throws {
        let settings = try Fixtures.settings("clerk: { publishable_key: \(Self.livePK), jwks_file: jwks.json }\nsign_in_url: /sign-in")
        let g = Gatekeeper(settings: settings, keyStore: Gatekeeper.makeKeyStore(for: settings) { _, _ in fatalError("no network") })
        let e = g.evaluateWithoutFetching(Self.request(nonce: "good-x"), now: Fixtures.now)
        #expect(e?.auth?.status == .signedOut)
    }
}

@Suite struct UnknownKidCooldownTests {
    @Test func unknownKidsInsideTheCooldownAreDecidedWithoutATask() async throws {
        let source = FakeJWKSSource(Fixtures.issuer.jwks)
        let clock = ManualClock()
        let store = KeyStore(remote: source, settings: .init(unknownKidCooldown: 10), clock: { clock.now })
        await store.refresh()
        let settings = try Fixtures.settings("clerk: { jwks_url: \"https://jwks.example/jwks\" }\nsign_in_url: /sign-in")
        let g = Gatekeeper(settings: settings, keyStore: store)
        func request(_ kid: String) -> RawRequest {
            let token = Fixtures.token(issuer: Fixtures.rotatedIssuer, header: ["kid": .string(kid)])
            return RawRequest(method: "GET", target: "/api/x", headers: HeaderList([("Host", "app.example.com"), ("Authorization", "Bearer " + token)]))
        }
        // Outside the cool-down an unknown kid needs the re-fetch: no decision on the spot.
        #expect(g.evaluateWithoutFetching(request("kid-random-1"), now: Fixtures.now) == nil)
        let first = await g.evaluate(request("kid-random-1"), now: Fixtures.now)
        #expect(first.decision.status == 401)
        #expect(source.fetches == 2)
        // Inside it, more random kids are decided at once with the keys in force, and fetch nothing.
        for i in 2..<50 {
            let e = g.evaluateWithoutFetching(request("kid-random-\(i)"), now: Fixtures.now)
            #expect(e?.decision.status == 401)
            #expect(e?.auth?.reason == "token-invalid-signature" || e?.auth?.invalidTokenPresented == true)
        }
        #expect(source.fetches == 2)
        // A known-good token still verifies on the spot meanwhile.
        let good = RawRequest(method: "GET", target: "/api/x", headers: HeaderList([("Host", "app.example.com"), ("Authorization", "Bearer " + Fixtures.token())]))
        #expect(g.evaluateWithoutFetching(good, now: Fixtures.now)?.decision.action == .proxy)
        // After the cool-down the next unknown kid may fetch again.
        clock.advance(10)
        #expect(g.evaluateWithoutFetching(request("kid-random-99"), now: Fixtures.now) == nil)
    }
}
