import Foundation
@testable import GatehouseAuth
import GatehouseConfig
@testable import GatehouseCore
import GatehouseDevIssuer
import GatehouseEngine
import Synchronization
import Testing

/// A JWKS endpoint stand-in: serves whatever document it holds, or fails, and counts fetches.
final class FakeJWKSSource: JWKSSource {
    let description = "fake JWKS"
    private let state = Mutex<(document: String?, fetches: Int, delayMs: Int)>((nil, 0, 0))

    init(_ document: JSONValue?) { serve(document) }

    func serve(_ document: JSONValue?) { state.withLock { $0.document = document?.serialized() } }
    func setDelay(ms: Int) { state.withLock { $0.delayMs = ms } }
    var fetches: Int { state.withLock { $0.fetches } }

    struct Down: Error {}

    func fetchJWKS() async throws -> [UInt8] {
        let (document, delay) = state.withLock { s -> (String?, Int) in
            s.fetches += 1
            return (s.document, s.delayMs)
        }
        if delay > 0 { try await Task.sleep(for: .milliseconds(delay)) }
        guard let document else { throw Down() }
        return Array(document.utf8)
    }
}

final class ManualClock: Sendable {
    private let value = Mutex<Double>(1000)
    var now: Double { value.withLock { $0 } }
    func advance(_ seconds: Double) { value.withLock { $0 += seconds } }
}

@Suite struct KeyStoreTests {
    func authenticator(_ store: KeyStore) -> SessionAuthenticator {
        SessionAuthenticator(instance: nil, policy: VerificationPolicy(), keyStore: store)
    }

    func bearer(_ token: String) throws -> CanonicalRequest {
        try Fixtures.request("/x", headers: [("Authorization", "Bearer " + token)])
    }

    @Test func rotatedKeyIsAcceptedAfterOneRefetch() async throws {
        let source = FakeJWKSSource(Fixtures.issuer.jwks)
        let clock = ManualClock()
        let store = KeyStore(remote: source, settings: .init(unknownKidCooldown: 10), clock: { clock.now })
        await store.refresh()
        #expect(source.fetches == 1)
        // The issuer rotates: the JWKS now has only the new key.
        source.serve(Fixtures.rotatedIssuer.jwks)
        let result = await authenticator(store).authenticate(try bearer(Fixtures.token(issuer: Fixtures.rotatedIssuer, azp: nil)), now: Fixtures.now)
        #expect(result.status == .signedIn)
        #expect(source.fetches == 2)
        // The removed key is no longer accepted.
        let old = await authenticator(store).authenticate(try bearer(Fixtures.token(azp: nil)), now: Fixtures.now)
        #expect(old.status == .signedOut)
        #expect(old.reason == "jwk-kid-mismatch")
    }

    @Test func unknownKidFloodCostsOneFetchPerCooldown() async throws {
        let source = FakeJWKSSource(Fixtures.issuer.jwks)
        let clock = ManualClock()
        let store = KeyStore(remote: source, settings: .init(unknownKidCooldown: 10), clock: { clock.now })
        await store.refresh()
        let auth = authenticator(store)
        try await withThrowingTaskGroup(of: AuthResult.self) { group in
            for i in 0..<200 {
                let token = Fixtures.token(header: ["kid": .string("random-\(i)")])
                group.addTask { await auth.authenticate(try bearer(token), now: Fixtures.now) }
            }
            for try await result in group {
                #expect(result.status == .signedOut)
                #expect(result.reason == "jwk-kid-mismatch")
            }
        }
        #expect(source.fetches == 2)  // the initial load plus one for the whole flood
        clock.advance(11)
        _ = await auth.authenticate(try bearer(Fixtures.token(header: ["kid": "another"])), now: Fixtures.now)
        #expect(source.fetches == 3)
    }

    @Test func concurrentRefreshesAreSingleFlight() async {
        let source = FakeJWKSSource(Fixtures.issuer.jwks)
        source.setDelay(ms: 100)
        let store = KeyStore(remote: source, settings: .init())
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<20 { group.addTask { await store.refresh() } }
        }
        #expect(source.fetches == 1)
        #expect(store.keys.count == 1)
    }

    @Test func lastGoodKeysAreKeptWhileTheSourceIsDown() async throws {
        let source = FakeJWKSSource(Fixtures.issuer.jwks)
        let store = KeyStore(remote: source, settings: .init())
        await store.refresh()
        source.serve(nil)
        await store.refresh()
        #expect(store.keys.count == 1)
        #expect(store.status.failures == 1)
        #expect(store.status.lastError != nil)
        // Garbage and key-less documents are failures too, not an empty key set.
        source.serve("garbage")
        await store.refresh()
        source.serve(["keys": []])
        await store.refresh()
        #expect(store.keys.count == 1)
        let result = await authenticator(store).authenticate(try bearer(Fixtures.token(azp: nil)), now: Fixtures.now)
        #expect(result.status == .signedIn)
    }

    @Test func noKeysEverLoadedMeansKeysUnavailableNotUnauthenticated() async throws {
        let source = FakeJWKSSource(nil)
        let store = KeyStore(remote: source, settings: .init())
        let result = await authenticator(store).authenticate(try bearer(Fixtures.token(azp: nil)), now: Fixtures.now)
        #expect(result.keysUnavailable)
        #expect(result.reason == "jwk-failed-to-resolve")
        #expect(result.activeSession == nil)
    }
}

@Suite struct KeyStoreRefreshLoopTests {
    @Test func backgroundRefreshPicksUpNewKeys() async throws {
        let source = FakeJWKSSource(Fixtures.issuer.jwks)
        let store = KeyStore(remote: source, settings: .init(refreshInterval: 0.05))
        let loop = Task { await store.runRefreshLoop() }
        defer { loop.cancel() }
        await eventually(within: 10) { !store.keys.isEmpty }
        #expect(store.keys.kids == ["kid-main"])
        source.serve(Fixtures.rotatedIssuer.jwks)
        await eventually(within: 10) { store.keys.kids == ["kid-rotated"] }
        #expect(store.keys.kids == ["kid-rotated"])
    }
}
