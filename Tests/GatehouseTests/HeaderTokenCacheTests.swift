import Foundation
@testable import GatehouseAuth
import GatehouseCore
import Testing

/// `SessionAuthenticator.readHeaderToken` answers from the token cache when the value after `Bearer ` is
/// exactly a cached token's bytes; the static `headerToken` is the oracle: both must give the same bytes for
/// every value, cached or not, and a cached answer carries the entry of exactly that token.
@Suite struct HeaderTokenCacheTests {
    static func bytes(_ s: String?) -> [UInt8]? { s.map { Array($0.utf8) } }

    @Test func cachedAndUncachedReadingsAgree() async throws {
        let cache = TokenCache()
        let keys = KeyStore(staticKeys: Fixtures.keySet, description: "t")
        let authenticator = SessionAuthenticator(instance: nil, policy: VerificationPolicy(), keyStore: keys, cache: cache)
        let cached = (0..<3).map { Fixtures.token("user_\($0)") }
        for token in cached {
            let request = try Fixtures.request("/x", headers: [("Authorization", "Bearer " + token)])
            #expect(await authenticator.authenticate(request, now: Fixtures.now).status == .signedIn)
        }
        #expect(cache.count == 3)
        let uncached = Fixtures.token("user_9")
        var values: [String?] = [nil, "", "Bearer", "Bearer ", "bearer", "Basic abc"]
        for token in cached + [uncached] {
            let kelvin = token.contains("K") ? token.replacingOccurrences(of: "K", with: "\u{212A}") : token + "\u{212A}"
            for scheme in ["Bearer", "bearer", "BEARER", "BeArEr", "Bearer\t", "Bearer:", "Bearerx", "Basic"] {
                for middle in [" ", "  ", "\t", " \t"] {
                    for suffix in ["", " ", "\t", "x", " x", "\u{301}"] {
                        values.append(scheme + middle + token + suffix)
                    }
                    values.append(scheme + middle + String(token.dropLast()))
                    values.append(scheme + middle + kelvin)
                }
            }
            values += [token, " " + token, "Bearer " + token + "\r", " Bearer " + token]
        }
        var hits = 0
        for value in values {
            let read = authenticator.readHeaderToken(value)
            #expect(Self.bytes(read?.text) == Self.bytes(SessionAuthenticator.headerToken(value)), "\(value.map { Array($0.unicodeScalars) } ?? [])")
            if let entry = read?.cached {
                #expect(Self.bytes(entry.token) == Self.bytes(read?.text))
                hits += 1
            }
        }
        // Exactly the `<case of bearer> <token>` spellings of the three cached tokens came from the cache.
        #expect(hits == 3 * 4)
    }

    @Test func aCachedReadDecidesAsTheUncachedOne() async throws {
        let cache = TokenCache()
        let keys = KeyStore(staticKeys: Fixtures.keySet, description: "t")
        let authenticator = SessionAuthenticator(instance: nil, policy: VerificationPolicy(), keyStore: keys, cache: cache)
        let token = Fixtures.token("user_5", lifetime: 60)
        let request = try Fixtures.request("/x", headers: [("Authorization", "Bearer " + token)])
        #expect(authenticator.authenticateWithoutFetching(request, now: Fixtures.now)?.status == .signedIn)
        let read = authenticator.readHeaderToken("Bearer " + token)
        #expect(read?.cached != nil)
        // The claims are still checked against the clock on a cached read: expired is expired.
        for now in [Fixtures.now, Fixtures.now + 30, Fixtures.now + 3600] {
            let viaCache = authenticator.authenticateWithoutFetching(request, now: now, headerToken: read)
            let plain = authenticator.authenticateWithoutFetching(request, now: now, headerToken: token)
            #expect(viaCache?.status == plain?.status)
            #expect(viaCache?.reason == plain?.reason)
            #expect(viaCache?.activeSession?.userId == plain?.activeSession?.userId)
        }
        #expect(authenticator.authenticateWithoutFetching(request, now: Fixtures.now + 3600, headerToken: read)?.status != .signedIn)
    }

    @Test func onlyNonEmptyVisibleASCIITokensAreStored() throws {
        let cache = TokenCache()
        let token = Fixtures.token()
        let decoded = try DecodedToken(token)
        let session = SessionAuth(claims: ["sub": "user_1"])
        func entry(_ text: String) -> TokenCache.Entry {
            TokenCache.Entry(token: text, decoded: decoded, categoryMismatch: nil, session: session, keySetID: 1, algorithm: .rs256, expiresAt: Fixtures.now + 60)
        }
        for bad in [token + " ", token + "\u{212A}", "a\u{0}b", ""] { cache.store(bad, entry(bad), now: Fixtures.now) }
        #expect(cache.count == 0)
        cache.store(token, entry(token), now: Fixtures.now)
        #expect(cache.count == 1)
        var value = "Bearer " + token
        #expect(value.withUTF8 { cache.entry(matching: UnsafeBufferPointer(rebasing: $0[7...])) }.map { Array($0.token.utf8) } == Array(token.utf8))
        #expect(value.withUTF8 { cache.entry(matching: UnsafeBufferPointer(rebasing: $0[8...])) } == nil)
    }
}
