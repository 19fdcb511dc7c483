import Foundation
@testable import GatehouseAuth
@testable import GatehouseCore
import GatehouseDevIssuer
import GatehouseEngine
import Testing

@Suite struct TokenCacheTests {
    func bearer(_ token: String, _ path: String = "/x") throws -> CanonicalRequest {
        try Fixtures.request(path, headers: [("Authorization", "Bearer " + token)])
    }

    @Test func repeatedTokensAreServedFromTheCache() async throws {
        let auth = SessionAuthenticator(instance: nil, policy: VerificationPolicy(), keyStore: KeyStore(staticKeys: Fixtures.keySet, description: "t"))
        let token = Fixtures.token()
        #expect(await auth.authenticate(try bearer(token), now: Fixtures.now).status == .signedIn)
        #expect(await auth.authenticate(try bearer(token), now: Fixtures.now + 1).status == .signedIn)
        #expect(auth.cache.hits == 1)
        #expect(auth.cache.count == 1)
    }

    @Test func aCachedTokenStillExpires() async throws {
        let auth = SessionAuthenticator(instance: nil, policy: VerificationPolicy(), keyStore: KeyStore(staticKeys: Fixtures.keySet, description: "t"))
        let token = Fixtures.token(lifetime: 60)
        #expect(await auth.authenticate(try bearer(token), now: Fixtures.now).status == .signedIn)
        let later = await auth.authenticate(try bearer(token), now: Fixtures.now + 66)
        #expect(later.status == .signedOut)
        #expect(later.reason == "session-token-expired-refresh-non-eligible-no-refresh-cookie")
        #expect(auth.cache.hits == 1)  // it was a hit, and the expiry was still enforced
    }

    @Test func aCacheHitStillMeetsEachRoutesRequirements() async throws {
        let g = try Fixtures.gatekeeper()
        let member = Fixtures.token("user_member", org: ("org_1", "acme", "org:member", []))
        #expect(await g.evaluate("/dashboard", headers: [("Authorization", "Bearer " + member)]).decision.action == .proxy)
        let admin = await g.evaluate("/admin", headers: [("Authorization", "Bearer " + member)])
        #expect(admin.decision.status == 403)
        let orgAdmin = await g.evaluate("/orgs/acme/settings", headers: [("Authorization", "Bearer " + member)])
        #expect(orgAdmin.decision.status == 403)
        #expect(g.authenticator.cache.hits == 2)
    }

    @Test func changedKeysInvalidateCachedVerifications() async throws {
        let source = FakeJWKSSource(Fixtures.issuer.jwks)
        let store = KeyStore(remote: source, settings: .init(unknownKidCooldown: 0.001))
        await store.refresh()
        let auth = SessionAuthenticator(instance: nil, policy: VerificationPolicy(), keyStore: store)
        let token = Fixtures.token(azp: nil)
        #expect(await auth.authenticate(try bearer(token), now: Fixtures.now).status == .signedIn)
        // The issuer drops that key.
        source.serve(Fixtures.rotatedIssuer.jwks)
        await store.refresh()
        let after = await auth.authenticate(try bearer(token), now: Fixtures.now)
        #expect(after.status == .signedOut)
        #expect(after.reason == "jwk-kid-mismatch")
    }

    @Test func onlyVerifiedTokensAreStoredAndTheCacheIsBounded() async throws {
        let auth = SessionAuthenticator(instance: nil, policy: VerificationPolicy(), keyStore: KeyStore(staticKeys: Fixtures.keySet, description: "t"),
                                        cache: TokenCache(capacity: 3))
        let forged = Fixtures.token(issuer: Fixtures.otherIssuer)
        #expect(await auth.authenticate(try bearer(forged), now: Fixtures.now).status == .signedOut)
        #expect(await auth.authenticate(try bearer(forged), now: Fixtures.now).status == .signedOut)
        #expect(auth.cache.count == 0)
        for i in 0..<10 {
            _ = await auth.authenticate(try bearer(Fixtures.token("user_\(i)")), now: Fixtures.now)
            #expect(auth.cache.count <= 3)
        }
    }
}
