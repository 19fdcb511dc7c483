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

    /// The hash reads only a few bytes near the end; equality reads them all. Tokens that differ elsewhere (or
    /// only in the unhashed last byte), or are shorter than the hashed window, stay apart in the table.
    @Test func keysThatHashAlikeStayApart() {
        let token = Fixtures.token()
        var middle = Array(token.utf8)
        middle[middle.count / 2] = middle[middle.count / 2] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        var last = Array(token.utf8)
        last[last.count - 1] = last[last.count - 1] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        let variants = [token, String(decoding: middle, as: UTF8.self), String(decoding: last, as: UTF8.self), "short", "shorT", ""]
        var table: [TokenCache.Key: Int] = [:]
        for (n, variant) in variants.enumerated() { table[TokenCache.Key(token: variant)] = n }
        #expect(table.count == variants.count)
        for (n, variant) in variants.enumerated() {
            #expect(table[TokenCache.Key(token: variant)] == n)
            let found = Array(variant.utf8).withUnsafeBufferPointer { table[TokenCache.Key(borrowing: $0)] }
            #expect(found == n, "looked up by its bytes")
        }
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
