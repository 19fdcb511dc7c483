import Foundation
@testable import GatehouseAuth
import GatehouseCore
import Testing

/// The token cache finds a token by its bytes. Swift's String `==` is Unicode canonical equivalence: a token
/// with U+212A KELVIN SIGN where a verified one has `K` is a different byte string (that no signature covers)
/// yet equal as a String. It must never be taken for the verified one.
@Suite struct TokenCacheKeyTests {
    /// The n-th token (by user number) with a `K` after its header: most have one.
    static func tokenWithK(_ n: Int = 0) -> String {
        var found = 0
        for i in 0..<1000 {
            let token = Fixtures.token("user_\(i)")
            guard token.split(separator: ".").dropFirst().contains(where: { $0.contains("K") }) else { continue }
            if found == n { return token }
            found += 1
        }
        Issue.record("no token with a K")
        return Fixtures.token()
    }

    static func kelvin(_ token: String) -> String {
        // The last K: in the signature when it has one, else in the payload.
        let index = token.lastIndex(of: "K")!
        return String(token[..<index]) + "\u{212A}" + String(token[token.index(after: index)...])
    }

    @Test func keysCompareByBytes() {
        let token = Self.tokenWithK()
        let lookAlike = Self.kelvin(token)
        #expect(token == lookAlike, "the premise: canonically equivalent as Strings")
        #expect(TokenCache.Key(token: token) != TokenCache.Key(token: lookAlike))
        #expect(TokenCache.Key(token: token) == TokenCache.Key(token: String(decoding: Array(token.utf8), as: UTF8.self)))
        #expect(TokenCache.Key(token: "") == TokenCache.Key(token: ""))
    }

    /// End to end: after the real token is verified and cached, its look-alike is refused every time (one
    /// cached entry, so a lookup for the look-alike lands on the real token's bucket often; before the fix it
    /// was taken for it there).
    @Test func aCanonicallyEquivalentTokenIsNotTheCachedOne() async throws {
        let keys = KeyStore(staticKeys: Fixtures.keySet, description: "t")
        for n in 0..<20 {
            let cache = TokenCache()
            let authenticator = SessionAuthenticator(instance: nil, policy: VerificationPolicy(), keyStore: keys, cache: cache)
            let token = Self.tokenWithK(n)
            let real = try Fixtures.request("/x", headers: [("Authorization", "Bearer " + token)])
            #expect(await authenticator.authenticate(real, now: Fixtures.now).status == .signedIn)
            #expect(cache.count == 1)
            let fake = try Fixtures.request("/x", headers: [("Authorization", "Bearer " + Self.kelvin(token))])
            let result = await authenticator.authenticate(fake, now: Fixtures.now)
            #expect(result.status == .signedOut)
            #expect(cache.hits == 0)
        }
    }
}
