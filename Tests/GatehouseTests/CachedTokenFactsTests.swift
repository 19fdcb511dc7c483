import Foundation
@testable import GatehouseAuth
@testable import GatehouseCore
import Testing

/// Facts worked out once per verified token or request list must be the ones worked out each time: a cache
/// entry's category check (a machine token in the cache is still refused as a bearer session token), and the
/// hop-by-hop predicate of a request's list (the list overload against the generic one).
@Suite struct CachedTokenFactsTests {
    @Test func aCachedEntryStillRefusesAMachineCategory() async throws {
        let keys = KeyStore(staticKeys: Fixtures.keySet, description: "t")
        let cache = TokenCache()
        let authenticator = SessionAuthenticator(instance: nil, policy: VerificationPolicy(), keyStore: keys, cache: cache)
        for header: JSONObject in [["cat": "cl_Other111AAA"], ["typ": "at+jwt"]] {
            let token = Fixtures.token(header: header)
            let decoded = try DecodedToken(token)
            let mismatch = SessionAuthenticator.categoryMismatch(decoded)
            #expect(mismatch != nil)
            // As if another path had verified and stored it.
            cache.store(token, TokenCache.Entry(token: token, decoded: decoded, categoryMismatch: mismatch, session: SessionAuth(claims: decoded.payload),
                                                keySetID: keys.keys.id, algorithm: .rs256, expiresAt: Fixtures.now + 60), now: Fixtures.now)
            let request = try Fixtures.request("/x", headers: [("Authorization", "Bearer " + token)])
            #expect(authenticator.readHeaderToken("Bearer " + token)?.cached != nil)
            let result = authenticator.authenticateWithoutFetching(request, now: Fixtures.now)
            #expect(result?.status == .signedOut)
            #expect(result?.reason == "token-type-mismatch")
        }
        // A session token's entry has no mismatch and signs in from the cache.
        let token = Fixtures.token()
        let request = try Fixtures.request("/x", headers: [("Authorization", "Bearer " + token)])
        #expect(await authenticator.authenticate(request, now: Fixtures.now).status == .signedIn)
        #expect(authenticator.authenticateWithoutFetching(request, now: Fixtures.now)?.status == .signedIn)
    }

    @Test func theListPredicateIsTheGenericOne() {
        let lists: [[(String, String)]] = [
            [], [("Host", "h")], [("Connection", "keep-alive")], [("connection", "close, X-A"), ("X-A", "1"), ("x-b", "2")],
            [("CONNECTION", " x-b ,,Upgrade"), ("Connection", "X-C")], [("Connectio", "x-a"), ("Connections", "x-b")],
            [("Connection", "keep-alive, TE, x-d")],
        ]
        let names = ["Host", "Connection", "connection", "Keep-Alive", "TE", "te", "Trailer", "Upgrade", "Transfer-Encoding", "Proxy-Connection",
                     "Proxy-Authorization", "Proxy-Authenticate", "X-A", "x-a", "X-B", "x-c", "X-D", "X-E", "", "Connectio"]
        for fields in lists {
            let list = HeaderList(fields.map { (name: $0.0, value: $0.1) })
            let generic = HopByHop.predicate(for: list.fields)
            let overload = HopByHop.predicate(for: list)
            for name in names { #expect(generic(name) == overload(name), "\(fields) \(name)") }
        }
    }
}
