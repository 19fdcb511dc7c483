import Foundation
@testable import GatehouseAuth
import GatehouseCore
import Testing

/// The token cache is process-wide and outlives reloads: a narrower verification policy after a reload must
/// apply to tokens verified before it.
@Suite struct TokenCachePolicyTests {
    @Test func aCachedTokenIsRefusedOnceItsAlgorithmIsNoLongerAllowed() async throws {
        let shared = TokenCache()
        let keys = KeyStore(staticKeys: Fixtures.keySet, description: "t")
        let request = try Fixtures.request("/x", headers: [("Authorization", "Bearer " + Fixtures.token())])
        let before = SessionAuthenticator(instance: nil, policy: VerificationPolicy(), keyStore: keys, cache: shared)
        #expect(await before.authenticate(request, now: Fixtures.now).status == .signedIn)
        #expect(shared.count == 1)
        // What a reload to `algorithms: [ES256]` builds: a new authenticator over the same cache.
        let after = SessionAuthenticator(instance: nil, policy: VerificationPolicy(allowedAlgorithms: [.es256]), keyStore: keys, cache: shared)
        let refused = await after.authenticate(request, now: Fixtures.now + 1)
        #expect(refused.status == .signedOut)
        #expect(shared.hits == 0)
        // The wider policy still hits the entry it stored.
        #expect(await before.authenticate(request, now: Fixtures.now + 2).status == .signedIn)
        #expect(shared.hits == 1)
    }
}
