import Foundation
import Synchronization
@testable import GatehouseAuth
import GatehouseConfig
@testable import GatehouseCore
import GatehouseDevIssuer
@testable import GatehouseEngine
import Testing

/// Clerk's cookie decision tree (clerk-protocol.md §3.4), row by row, through the whole decision path.
@Suite struct BrowserSessionTests {
    static let livePK = "pk_live_Y2xlcmsuZXhhbXBsZS5jb20k"  // clerk.example.com, production
    static let testPK = "pk_test_Y2xlcmsuZXhhbXBsZS5jb20k"  // clerk.example.com, development
    static let page: [(String, String)] = [("Sec-Fetch-Dest", "document"), ("Accept", "text/html")]
    let uat = "__client_uat=\(Int(Fixtures.now) - 100)"
    /// A client last updated before `expired` was issued.
    let oldUat = "__client_uat=\(Int(Fixtures.now) - 7200)"
    let fresh = Fixtures.token("user_1")
    let expired = Fixtures.token("user_1", iat: Fixtures.now - 3600)

    static func gatekeeper(pk: String = livePK, clerk: String = "", top: String = "") throws -> Gatekeeper {
        try Fixtures.gatekeeper("""
            clerk:
              publishable_key: \(pk)
              jwks_file: jwks.json
              authorized_parties: ["https://app.example.com", "https://satellite.example.net"]
            \(clerk.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
            sign_in_url: /sign-in
            \(top)
            routes:
              - { name: public, match: ["/", "/public(.*)"], access: public }
              - { name: open-form, match: ["/webhook(.*)"], csrf: false }
              - { name: app, match: ["/dashboard(.*)", "/api(.*)"] }
            """)
    }

    func cookies(_ value: String, _ extra: [(String, String)] = BrowserSessionTests.page) -> [(String, String)] {
        [("Cookie", value)] + extra
    }

    // MARK: The handshake redirect

    @Test func expiredCookieOnAPageLoadGoesToTheHandshakeWithClerksExactURL() async throws {
        let g = try Self.gatekeeper()
        let e = await g.evaluate("/dashboard?a=b%20c&__clerk_db_jwt=x", headers: cookies("__session=\(expired); \(oldUat)"))
        #expect(e.auth?.status == .handshake)
        #expect(e.auth?.reason == "session-token-expired-refresh-non-eligible-no-refresh-cookie")
        #expect(e.decision.status == 307)
        #expect(e.decision.location == "https://clerk.example.com/v1/client/handshake?redirect_url=https%3A%2F%2Fapp.example.com%2Fdashboard%3Fa%3Db%2Bc"
            + "&__clerk_api_version=2026-05-12&suffixed_cookies=false&__clerk_hs_reason=session-token-expired-refresh-non-eligible-no-refresh-cookie"
            + "&format=nonce&__session=\(expired)")
        #expect(e.decision.responseHeaders.first("cache-control") == "no-store")
        #expect(e.decision.responseHeaders.values("set-cookie") == ["__clerk_redirect_count=1; SameSite=Lax; HttpOnly; Max-Age=2"])
        #expect(e.decision.responseHeaders.first("x-clerk-auth-status") == "handshake")
    }

    @Test func handshakeHappensOnPublicPagesToo() async throws {
        // Clerk's middleware refreshes the session on every page it runs on, so public pages see the user.
        let e = await (try Self.gatekeeper()).evaluate("/", headers: cookies("__session=\(expired); \(oldUat)"))
        #expect(e.decision.action == .redirect)
        #expect(e.decision.location?.hasPrefix("https://clerk.example.com/v1/client/handshake?") == true)
    }

    @Test func onlyGetPageLoadsAreSentThroughTheHandshake() async throws {
        let g = try Self.gatekeeper()
        let api = await g.evaluate("/api/x", headers: [("Cookie", "__session=\(expired); \(oldUat)"), ("Accept", "application/json")])
        #expect(api.auth?.status == .signedOut)
        #expect(api.decision.status == 401)
        let post = await g.evaluate("/dashboard", method: "POST", headers: cookies("__session=\(expired); \(oldUat)") + [("Origin", "https://app.example.com")])
        #expect(post.auth?.reason == "session-token-expired-refresh-non-eligible-non-get")
        #expect(post.decision.status == 401)
        let bearer = await g.evaluate("/dashboard", headers: [("Authorization", "Bearer " + expired)] + Self.page)
        #expect(bearer.auth?.status == .handshake)  // as in Clerk: an expired header token on a page load
        #expect(bearer.decision.location?.contains("&__session=\(expired)") == true)
    }

    @Test func loopGuardStopsAfterThreeAndSignsOut() async throws {
        let g = try Self.gatekeeper()
        let third = await g.evaluate("/dashboard", headers: cookies("__session=\(expired); \(oldUat); __clerk_redirect_count=2"))
        #expect(third.decision.responseHeaders.values("set-cookie") == ["__clerk_redirect_count=3; SameSite=Lax; HttpOnly; Max-Age=2"])
        let stopped = await g.evaluate("/dashboard", headers: cookies("__session=\(expired); \(oldUat); __clerk_redirect_count=3"))
        #expect(stopped.auth?.status == .signedOut)
        #expect(stopped.decision.location?.hasPrefix("/sign-in?redirect_url=") == true)
    }

    @Test func handshakeCanBeTurnedOff() async throws {
        let g = try Self.gatekeeper(clerk: "handshake: false")
        let e = await g.evaluate("/dashboard", headers: cookies("__session=\(expired); \(oldUat)"))
        #expect(e.auth?.status == .signedOut)
        #expect(e.decision.location?.hasPrefix("/sign-in?") == true)
    }

    @Test func everyRowOfTheCookieTableHasItsReason() async throws {
        let g = try Self.gatekeeper()
        func reason(_ cookie: String, target: String = "/dashboard", headers: [(String, String)] = BrowserSessionTests.page) async -> (AuthStatus?, String?) {
            let e = await g.evaluate(target, headers: [("Cookie", cookie)] + headers)
            return (e.auth?.status, e.auth?.reason)
        }
        #expect(await reason("__client_uat=0") == (.signedOut, "session-token-and-uat-missing"))
        #expect(await reason("__session=\(fresh)") == (.handshake, "session-token-but-no-client-uat"))
        #expect(await reason(uat) == (.handshake, "client-uat-but-no-session-token"))
        #expect(await reason("__session=garbage; \(uat)") == (.signedOut, "token-invalid"))
        #expect(await reason("__session=\(Fixtures.token("mch_1")); \(uat)") == (.signedOut, "token-type-mismatch"))
        #expect(await reason("__session=\(fresh); __client_uat=\(Int(Fixtures.now) + 10)") == (.handshake, "session-token-iat-before-client-uat"))
        let notYet = Fixtures.token("user_1", iat: Fixtures.now + 600)
        #expect(await reason("__session=\(notYet); __client_uat=1").1 == "session-token-nbf")
        let future = Fixtures.token("user_1", iat: Fixtures.now + 600, extra: ["nbf": .number(JSONNumber(Int(Fixtures.now) - 10))])
        #expect(await reason("__session=\(future); __client_uat=1") == (.handshake, "session-token-iat-in-the-future"))
        let refresh = "__refresh_\(try ClerkInstance(publishableKey: Self.livePK).cookieSuffix)=r"
        #expect(await reason("__session=\(expired); \(oldUat); \(refresh)").1 == "session-token-expired-refresh-missing-api-client")
        #expect(await reason("__session=\(fresh); \(uat)") == (.signedIn, nil))
    }

    @Test func crossOriginReferrerOnASignedInPageLoadSyncsFirst() async throws {
        let g = try Self.gatekeeper()
        let signedIn = cookies("__session=\(fresh); \(uat)")
        let fromElsewhere = await g.evaluate("/dashboard", headers: signedIn + [("Referer", "https://satellite.example.net/page")])
        #expect(fromElsewhere.auth?.status == .handshake)
        #expect(fromElsewhere.auth?.reason == "primary-domain-cross-origin-sync")
        // Clerk's own hosts, the app itself, and a second hop of the loop are not synced again.
        for referer in ["https://accounts.example.com/sign-in", "https://clerk.example.com/x", "https://app.example.com/other"] {
            #expect(await g.evaluate("/dashboard", headers: signedIn + [("Referer", referer)]).auth?.status == .signedIn)
        }
        let again = await g.evaluate("/dashboard", headers: cookies("__session=\(fresh); \(uat); __clerk_redirect_count=1") + [("Referer", "https://satellite.example.net/")])
        #expect(again.auth?.status == .signedIn)
    }

    @Test func suffixedCookiesAreChosenAndReportedToTheHandshake() async throws {
        let g = try Self.gatekeeper()
        let sfx = try ClerkInstance(publishableKey: Self.livePK).cookieSuffix
        let other = Fixtures.token("user_other", iat: Fixtures.now - 3600, extra: ["iss": "https://clerk.other.com"])
        let expiredOwn = Fixtures.token("user_1", iat: Fixtures.now - 3600, extra: ["iss": "https://clerk.example.com"])
        let e = await g.evaluate("/dashboard", headers: cookies("__session=\(other); __client_uat=1; __session_\(sfx)=\(expiredOwn); __client_uat_\(sfx)=1"))
        #expect(e.auth?.status == .handshake)
        #expect(e.decision.location?.contains("suffixed_cookies=true") == true)
        #expect(e.decision.location?.contains("__session=\(expiredOwn)") == true)
    }

    // MARK: Development instances

    @Test func developmentInstancesNeedADevBrowser() async throws {
        let g = try Self.gatekeeper(pk: Self.testPK)
        let missing = await g.evaluate("/", headers: Self.page)
        #expect(missing.auth?.reason == "dev-browser-missing")
        #expect(missing.decision.location?.hasPrefix("https://clerk.example.com/v1/client/handshake?redirect_url=https%3A%2F%2Fapp.example.com%2F&") == true)
        let sync = await g.evaluate("/dashboard?__clerk_db_jwt=dvb_1", headers: [("Cookie", "__clerk_db_jwt=dvb_old")] + Self.page)
        #expect(sync.auth?.reason == "dev-browser-sync")
        // The dev browser from the query goes to the handshake, and is removed from the redirect_url.
        #expect(sync.decision.location?.contains("redirect_url=https%3A%2F%2Fapp.example.com%2Fdashboard&") == true)
        #expect(sync.decision.location?.hasSuffix("&__clerk_db_jwt=dvb_1") == true)
        let ok = await g.evaluate("/dashboard", headers: cookies("__clerk_db_jwt=dvb_1; __session=\(fresh); \(uat)"))
        #expect(ok.auth?.status == .signedIn)
        // Production ignores dev browsers altogether.
        #expect(await (try Self.gatekeeper()).evaluate("/", headers: Self.page).auth?.reason == "session-token-and-uat-missing")
    }

    @Test func developmentPrimaryAnswersASatelliteOnlyForTrustedOrigins() async throws {
        let g = try Self.gatekeeper(pk: Self.testPK)
        let target = URLEncoding.formEncode("https://satellite.example.net/page?x=1")
        let e = await g.evaluate("/?__clerk_redirect_url=\(target)", headers: cookies("__clerk_db_jwt=dvb_1"))
        #expect(e.auth?.reason == "primary-responds-to-syncing")
        #expect(e.decision.location == "https://satellite.example.net/page?x=1&__clerk_db_jwt=dvb_1&__clerk_synced=true")
        let evil = URLEncoding.formEncode("https://evil.example/steal")
        let refused = await g.evaluate("/?__clerk_redirect_url=\(evil)", headers: cookies("__clerk_db_jwt=dvb_1"))
        // Refused means: no sync answer at all. The request goes on as an ordinary (public) one, proxied.
        #expect(refused.auth?.reason != "primary-responds-to-syncing")
        #expect(refused.decision.action == .proxy)
        #expect(refused.decision.location == nil)
    }

    // MARK: Satellites

    @Test func productionSatelliteSyncsThroughItsOwnFrontendAPI() async throws {
        let g = try Self.gatekeeper(clerk: "satellite: true\ndomain: satellite.example.net")
        let fresh = await g.evaluate("/dashboard", headers: Self.page)
        #expect(fresh.auth?.reason == "session-token-and-uat-missing")
        let needsSync = await g.evaluate("/dashboard?__clerk_synced=false", headers: Self.page)
        #expect(needsSync.auth?.reason == "satellite-needs-syncing")
        #expect(needsSync.decision.location?.hasPrefix("https://clerk.satellite.example.net/v1/client/handshake?") == true)
        #expect(await g.evaluate("/dashboard?__clerk_synced=true", headers: Self.page).auth?.reason == "session-token-and-uat-missing")
    }

    @Test func developmentSatelliteSyncsThroughThePrimarySignIn() async throws {
        let g = try Fixtures.gatekeeper("""
            clerk: { publishable_key: \(Self.testPK), jwks_file: jwks.json, satellite: true, domain: app.example.com }
            sign_in_url: https://primary.example.org/sign-in
            """)
        let e = await g.evaluate("/dashboard?__clerk_synced=false", headers: cookies("__clerk_db_jwt=dvb_1"))
        #expect(e.auth?.reason == "satellite-needs-syncing")
        #expect(e.decision.location == "https://primary.example.org/sign-in?__clerk_redirect_url=https%3A%2F%2Fapp.example.com%2Fdashboard%3F__clerk_synced%3Dfalse")
        let signedOut = await g.evaluate("/dashboard", headers: cookies("__clerk_db_jwt=dvb_1; __client_uat=0"))
        let location = try #require(signedOut.decision.location)
        // redirect_url marks the sync, and the dev browser travels to the other origin.
        #expect(location == "https://primary.example.org/sign-in?redirect_url=https%3A%2F%2Fapp.example.com%2Fdashboard%3F__clerk_synced%3Dfalse&__clerk_db_jwt=dvb_1")
    }

    // MARK: Handshake return

    func handshakeToken(_ directives: [String], issuer: DevIssuer = Fixtures.issuer, header: JSONObject = JSONObject()) -> String {
        issuer.sign(JSONObject([("handshake", .array(directives.map(JSONValue.string)))]), header: header)
    }

    @Test func productionHandshakeCookieSignsInAndCarriesTheDirectives() async throws {
        let g = try Self.gatekeeper()
        let directives = ["__session=\(fresh); Path=/; HttpOnly", "__client_uat=\(Int(Fixtures.now)); Path=/"]
        let e = await g.evaluate("/dashboard", headers: cookies("__session=\(expired); \(oldUat); __clerk_handshake=\(handshakeToken(directives))"))
        #expect(e.auth?.status == .signedIn)
        #expect(e.decision.action == .proxy)
        #expect(e.decision.responseHeaders.values("set-cookie") == directives)
        #expect(e.decision.upstreamHeaders?.first("x-gatehouse-user-id") == "user_1")
        // Production never takes a handshake from the query (a link could plant someone else's session).
        let fromQuery = await g.evaluate("/dashboard?__clerk_handshake=\(handshakeToken(directives))", headers: Self.page)
        #expect(fromQuery.auth?.status == .signedOut)
    }

    @Test func developmentHandshakeRedirectsToTheCleanedURL() async throws {
        let g = try Self.gatekeeper(pk: Self.testPK)
        let directives = ["__session=\(fresh); Path=/", "__client_uat=\(Int(Fixtures.now)); Path=/", "__clerk_db_jwt=dvb_2; Path=/"]
        let e = await g.evaluate("/dashboard?tab=1&__clerk_handshake=\(handshakeToken(directives))&__clerk_help=1", headers: Self.page)
        #expect(e.auth?.status == .signedIn)
        #expect(e.decision.status == 307)
        #expect(e.decision.location == "https://app.example.com/dashboard?tab=1")
        #expect(e.decision.responseHeaders.values("set-cookie") == directives)
        // A session that expired in transit is accepted with Clerk's 24 h development skew.
        let late = Fixtures.token("user_1", iat: Fixtures.now - 3600)
        let lenient = await g.evaluate("/dashboard?__clerk_handshake=\(handshakeToken(["__session=\(late); Path=/"]))", headers: Self.page)
        #expect(lenient.auth?.status == .signedIn)
    }

    @Test func forgedOrMalformedHandshakesNeverSignAnyoneIn() async throws {
        let prod = try Self.gatekeeper()
        let other = Fixtures.token("user_attacker", issuer: Fixtures.otherIssuer)
        let cases: [String] = [
            handshakeToken(["__session=\(fresh); Path=/"], issuer: Fixtures.otherIssuer),  // wrong key
            handshakeToken(["__session=\(other); Path=/"]),  // right handshake key, foreign session
            handshakeToken(["__session=\(fresh); Path=/"], header: ["cat": "cl_B7d4PD222AAA"]),  // wrong category
            handshakeToken(["__session=\(fresh)\r\nX-Evil: 1"]),  // header injection
            "not.a.token",
        ]
        for token in cases {
            let e = await prod.evaluate("/dashboard", headers: cookies("__clerk_handshake=\(token)", [("Accept", "application/json")]))
            #expect(e.auth?.status != .signedIn)
            #expect(e.decision.status == 401)
            #expect(e.decision.responseHeaders.values("set-cookie").isEmpty)
        }
        // Production then lets the request's own cookies decide, as Clerk does: here a stale session, so the
        // browser is sent through the handshake again (the loop guard bounds it).
        let fallback = await prod.evaluate("/dashboard", headers: cookies("__session=\(expired); \(oldUat); __clerk_handshake=\(cases[1])"))
        #expect(fallback.auth?.status == .handshake)
        #expect(fallback.auth?.reason == "session-token-expired-refresh-non-eligible-no-refresh-cookie")
        let dev = try Self.gatekeeper(pk: Self.testPK)
        let fatal = await dev.evaluate("/dashboard?__clerk_handshake=\(cases[0])", headers: Self.page)
        #expect(fatal.decision.status == 500)
        #expect(fatal.auth?.status != .signedIn)
        let noSession = await dev.evaluate("/dashboard?__clerk_handshake=\(handshakeToken(["__client_uat=0; Path=/"]))", headers: Self.page)
        #expect(noSession.auth?.reason == "session-token-missing")
        #expect(noSession.decision.location == "https://app.example.com/dashboard")
    }

    @Test func nonceIsExchangedThroughThePayloadSource() async throws {
        struct Payload: HandshakePayloadSource {
            let directives: [String]
            func directives(nonce: String) async throws -> [String] {
                guard nonce == "n1" else { throw KeyError("unknown nonce") }
                return directives
            }
        }
        let settings = try Fixtures.settings("""
            clerk: { publishable_key: \(Self.livePK), jwks_file: jwks.json }
            sign_in_url: /sign-in
            """)
        let store = Gatekeeper.makeKeyStore(for: settings) { _, _ in fatalError("no network") }
        let g = Gatekeeper(settings: settings, keyStore: store, payloadSource: Payload(directives: ["__session=\(fresh); Path=/"]))
        let request = RawRequest(method: "GET", target: "/dashboard", headers: HeaderList([("Host", "app.example.com"), ("Cookie", "__clerk_handshake_nonce=n1")] + Self.page), scheme: "https")
        #expect(g.evaluateWithoutFetching(request, now: Fixtures.now) == nil)  // needs the network
        let e = await g.evaluate(request, now: Fixtures.now)
        #expect(e.auth?.status == .signedIn)
        let unknown = RawRequest(method: "GET", target: "/dashboard", headers: HeaderList([("Host", "app.example.com"), ("Cookie", "__clerk_handshake_nonce=n2")] + Self.page), scheme: "https")
        let failed = await g.evaluate(unknown, now: Fixtures.now)
        #expect(failed.auth?.reason == "session-token-missing")
        #expect(failed.decision.action == .redirect)
        #expect(failed.decision.location?.hasPrefix("/sign-in?") == true)
    }

    // MARK: CSRF

    @Test func unsafeCookieRequestsMustComeFromTheAppOrAnAuthorizedParty() async throws {
        let g = try Self.gatekeeper()
        let session = ("Cookie", "__session=\(fresh); \(uat)")
        func status(_ headers: [(String, String)], path: String = "/api/x", method: String = "POST") async -> Int {
            await g.evaluate(path, method: method, headers: headers).decision.status
        }
        #expect(await status([session, ("Origin", "https://app.example.com")]) == 200)
        #expect(await status([session, ("Origin", "https://satellite.example.net")]) == 200)
        #expect(await status([session, ("Origin", "https://evil.example")]) == 403)
        #expect(await status([session, ("Origin", "null")]) == 403)
        #expect(await status([session, ("Sec-Fetch-Site", "same-origin")]) == 200)
        #expect(await status([session, ("Sec-Fetch-Site", "cross-site")]) == 403)
        #expect(await status([session, ("Referer", "https://app.example.com/form")]) == 200)
        #expect(await status([session, ("Referer", "https://evil.example/form")]) == 403)
        #expect(await status([session]) == 403)
        for method in ["PUT", "PATCH", "DELETE"] { #expect(await status([session, ("Origin", "https://evil.example")], method: method) == 403) }
        #expect(await status([session, ("Origin", "https://evil.example")], method: "GET") == 200)
        // Public routes too: the upstream would otherwise receive the cookie's identity.
        #expect(await status([session, ("Origin", "https://evil.example")], path: "/public/comment") == 403)
        // Bearer tokens are not sent by browsers on their own; routes may opt out.
        #expect(await status([("Authorization", "Bearer \(fresh)"), ("Origin", "https://evil.example")]) == 200)
        #expect(await status([session, ("Origin", "https://evil.example")], path: "/webhook") == 200)
        let refused = await g.evaluate("/api/x", method: "POST", headers: [session, ("Origin", "https://evil.example")])
        #expect(refused.decision.body?.contains("csrf_origin_mismatch") == true)
        #expect(refused.decision.explanation.contains("Origin https://evil.example"))
    }

    // MARK: Sign-in redirect

    @Test func signInRedirectSendsOnlyThisAppsURL() async throws {
        let g = try Fixtures.gatekeeper("""
            clerk: { publishable_key: \(Self.livePK), jwks_file: jwks.json, authorized_parties: ["https://app.example.com"] }
            sign_in_url: https://accounts.example.com/sign-in
            """)
        let own = await g.evaluate("/dashboard?x=1", headers: Self.page)
        #expect(own.decision.location == "https://accounts.example.com/sign-in?redirect_url=https%3A%2F%2Fapp.example.com%2Fdashboard%3Fx%3D1")
        var list = HeaderList([("Host", "evil.example")])
        for (n, v) in Self.page { list.append(n, v) }
        let foreign = await g.evaluate(RawRequest(method: "GET", target: "/dashboard", headers: list, scheme: "https"), now: Fixtures.now)
        #expect(foreign.decision.location == "https://accounts.example.com/sign-in?redirect_url=%2Fdashboard")
    }

    @Test func explainShowsTheHandshakeState() async throws {
        let e = await (try Self.gatekeeper()).evaluate("/dashboard", headers: cookies("__session=\(expired); \(oldUat)"))
        let json = ExplainReport.json(for: e).serialized()
        #expect(json.contains("\"status\":\"handshake\""))
        #expect(json.contains("session-token-expired-refresh-non-eligible-no-refresh-cookie"))
        #expect(json.contains("__clerk_redirect_count=[redacted]; SameSite=Lax"))
        #expect(json.contains("&__session=[redacted]"))
        #expect(!json.contains(expired))
    }
}

@Suite struct FormQueryTests {
    @Test func parsesAndSerialisesLikeURLSearchParams() {
        let pairs = FormQuery.parse("a=1&b=x+y&c=%2F%zz&&d&=e")
        #expect(pairs.map(\.name) == ["a", "b", "c", "d", ""])
        #expect(pairs.map(\.value) == ["1", "x y", "/%zz", "", "e"])
        #expect(FormQuery.serialize([("redirect_url", "https://a.b/c?d=e f")]) == "redirect_url=https%3A%2F%2Fa.b%2Fc%3Fd%3De+f")
        #expect(FormQuery.removing(["x"], from: "https://a/p?x=1&y=a%20b") == "https://a/p?y=a+b")
        #expect(FormQuery.removing(["x"], from: "https://a/p?x=1") == "https://a/p")
        #expect(FormQuery.setting("s", "true", in: "https://a/p?s=false&t=1&s=2") == "https://a/p?s=true&t=1")
        #expect(FormQuery.appending("s", "v w", to: "https://a/p") == "https://a/p?s=v+w")
    }

    @Test func originsAreNormalised() {
        #expect(URLOrigin.of("HTTPS://App.Example.com:443/x?y") == "https://app.example.com")
        #expect(URLOrigin.of("http://a.example:8080") == "http://a.example:8080")
        #expect(URLOrigin.of("https://user@evil.example/") == nil)
        #expect(URLOrigin.of("javascript:alert(1)") == nil)
        #expect(URLOrigin.hostAndPort(of: "https://a.example/x") == "a.example:443")
    }
}

/// The browser flow over real sockets: the gateway, an upstream, and a stand-in for Clerk's Frontend and
/// Backend APIs (Support/FrontendAPIStandIn.swift), with a miniature browser following redirects and cookies.
@Suite(.serialized, .stopsServers) struct HandshakeFlowTests {
    /// The user id the test upstream saw in Gatehouse's identity header.
    func userId(_ response: RawClient.Response) -> String? {
        guard case .array(let values)? = response.json?.objectValue?["headers"]?.objectValue?["x-gatehouse-user-id"] else { return nil }
        return values.first?.stringValue
    }

    static func harness(_ standIn: FrontendAPIStandIn, development: Bool, extraClerk: String = "") async throws -> GatewayHarness {
        try await GatewayHarness { yaml in
            yaml.replacingOccurrences(of: "  publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k\n", with: """
                  publishable_key: \(development ? BrowserSessionTests.testPK : BrowserSessionTests.livePK)
                  frontend_api_url: "\(standIn.origin)"
                  api_url: "\(standIn.origin)"
                  secret_key: \(FrontendAPIStandIn.secretKey)
                \(extraClerk)

                """)
        }
    }

    static func expiredSession(_ browser: MiniBrowser) {
        let now = Date().timeIntervalSince1970.rounded(.down)
        browser.jar = [
            "__session": Fixtures.token("user_returning", iat: now - 600, azp: nil),
            "__client_uat": String(Int(now) - 3600),
        ]
    }

    @Test func expiredCookiePageLoadComesBackSignedInAfterOneHandshake() async throws {
        let standIn = try await FrontendAPIStandIn(development: false)
        let gateway = try await Self.harness(standIn, development: false)
        defer { Task { await gateway.stop(); await standIn.stop() } }
        let browser = MiniBrowser()
        Self.expiredSession(browser)
        let expiredToken = browser.jar["__session"]!

        let hops = try await browser.navigate("http://127.0.0.1:\(gateway.port)/dashboard?tab=1")
        #expect(hops.map(\.response.status) == [307, 307, 200])
        #expect(hops.map(\.port) == [gateway.port, standIn.port, gateway.port])
        #expect(hops[0].response.header("cache-control") == "no-store")
        #expect(hops[0].response.header("x-clerk-auth-reason") == "session-token-expired-refresh-non-eligible-no-refresh-cookie")
        let query = try #require(standIn.lastHandshake)
        #expect(query.map(\.name) == ["redirect_url", "__clerk_api_version", "suffixed_cookies", "__clerk_hs_reason", "format", "__session"])
        #expect(query[0].value == "http://127.0.0.1:\(gateway.port)/dashboard?tab=1")
        #expect(query[5].value == expiredToken)
        // Back at the gateway with the handshake cookie: the page is served, signed in, with the fresh cookies.
        let page = hops[2].response
        #expect(userId(page) == "user_returning")
        let setCookies = page.headers.filter { $0.0.lowercased() == "set-cookie" }.map(\.1)
        #expect(setCookies.contains { $0.hasPrefix("__session=ey") })
        #expect(setCookies.contains { $0.hasPrefix("__clerk_handshake=;") })
        #expect(browser.jar["__session"] != expiredToken)
        // The next page load needs no round trip.
        let next = try await browser.navigate("http://127.0.0.1:\(gateway.port)/dashboard")
        #expect(next.map(\.response.status) == [200])
        #expect(standIn.handshakeRequests.withLock { $0.count } == 1)
    }

    @Test func nonceHandshakeIsExchangedAtTheBackendAPI() async throws {
        let standIn = try await FrontendAPIStandIn(development: false)
        standIn.update { $0.transport = .nonce }
        let gateway = try await Self.harness(standIn, development: false)
        defer { Task { await gateway.stop(); await standIn.stop() } }
        let browser = MiniBrowser()
        Self.expiredSession(browser)
        let hops = try await browser.navigate("http://127.0.0.1:\(gateway.port)/dashboard")
        #expect(hops.map(\.response.status) == [307, 307, 200])
        #expect(standIn.nonceExchanges.load(ordering: .relaxed) == 1)
        #expect(hops.last.flatMap { userId($0.response) } == "user_returning")
    }

    @Test func developmentInstanceGetsADevBrowserAndACleanURL() async throws {
        let standIn = try await FrontendAPIStandIn(development: true)
        let gateway = try await Self.harness(standIn, development: true)
        defer { Task { await gateway.stop(); await standIn.stop() } }
        let browser = MiniBrowser()
        // A first visit: no cookies at all. Clerk's development flow fetches a dev browser, and the stand-in's
        // client is signed in, so the user arrives signed in.
        let hops = try await browser.navigate("http://127.0.0.1:\(gateway.port)/dashboard?tab=2")
        #expect(hops.map(\.response.status) == [307, 307, 307, 200])
        #expect(hops[0].response.header("x-clerk-auth-reason") == "dev-browser-missing")
        #expect(hops[2].target.contains("__clerk_handshake="))
        #expect(hops[2].response.header("location") == "http://127.0.0.1:\(gateway.port)/dashboard?tab=2")
        #expect(userId(hops[3].response) == "user_returning")
        #expect(browser.jar["__clerk_db_jwt"] == "dvb_standin")
    }

    @Test func forgedHandshakeNeverSignsInAndTheLoopStopsAtThree() async throws {
        let standIn = try await FrontendAPIStandIn(development: false)
        standIn.update { $0.signer = Fixtures.otherIssuer }  // not the instance's key
        let gateway = try await Self.harness(standIn, development: false)
        defer { Task { await gateway.stop(); await standIn.stop() } }
        let browser = MiniBrowser()
        Self.expiredSession(browser)
        let hops = try await browser.navigate("http://127.0.0.1:\(gateway.port)/dashboard", maxHops: 12)
        #expect(standIn.handshakeRequests.withLock { $0.count } == 3)
        #expect(!hops.contains { $0.port == gateway.port && $0.response.status == 200 })
        let last = try #require(hops.last { $0.port == gateway.port })
        #expect(last.response.status == 307)
        #expect(last.response.header("location")?.hasPrefix("/sign-in?redirect_url=") == true)
    }

    @Test func forgedDevelopmentHandshakeIsAnError() async throws {
        let standIn = try await FrontendAPIStandIn(development: true)
        standIn.update { $0.signer = Fixtures.otherIssuer }
        let gateway = try await Self.harness(standIn, development: true)
        defer { Task { await gateway.stop(); await standIn.stop() } }
        let hops = try await MiniBrowser().navigate("http://127.0.0.1:\(gateway.port)/dashboard")
        #expect(hops.last?.response.status == 500)
        #expect(hops.last?.response.text.contains("handshake_failed") == true)
    }

    @Test func csrfOverSockets() async throws {
        let standIn = try await FrontendAPIStandIn(development: false)
        let gateway = try await Self.harness(standIn, development: false)
        defer { Task { await gateway.stop(); await standIn.stop() } }
        let token = Fixtures.token("user_1", iat: Date().timeIntervalSince1970.rounded(.down), azp: nil)
        let cookie = ("Cookie", "__session=\(token); __client_uat=1")
        let c = try gateway.client()
        let foreign = c.request("POST", "/echo", headers: [cookie, ("Origin", "https://evil.example")], body: "x=1")
        #expect(foreign?.status == 403)
        #expect(foreign?.text.contains("csrf_origin_mismatch") == true)
        #expect(c.request("POST", "/echo", headers: [cookie, ("Origin", "http://app.example.com")], body: "x=1")?.status == 200)
        #expect(c.request("POST", "/echo", headers: [bearer(token), ("Origin", "https://evil.example")], body: "x=1")?.status == 200)
    }

    @Test func frontendAPIProxyForwardsClerkThroughTheAppsOrigin() async throws {
        let standIn = try await FrontendAPIStandIn(development: false)
        let gateway = try await Self.harness(standIn, development: false, extraClerk: "  frontend_api_proxy: /__clerk")
        defer { Task { await gateway.stop(); await standIn.stop() } }
        let c = try gateway.client()
        let env = try #require(c.request("GET", "/__clerk/v1/environment?_clerk_js_version=5", headers: [
            ("Clerk-Secret-Key", "sk_live_spoofed"), ("X-Gatehouse-User-Id", "user_spoof"),
            ("Clerk-Proxy-Url", "https://evil.example/__clerk"), ("clerk-secret-key", "sk_live_spoofed_lowercase"),
        ], host: "127.0.0.1:\(gateway.port)"))
        #expect(env.status == 200)
        let seen = try #require(env.json?.objectValue?["headers"]?.objectValue)
        #expect(env.json?.objectValue?["uri"] == .string("/v1/environment?_clerk_js_version=5"))
        // Each exactly once, Gatehouse's value: the stand-in keeps every copy it receives.
        #expect(seen["host"] == [.string("127.0.0.1:\(standIn.port)")])
        #expect(seen["clerk-proxy-url"] == [.string("http://127.0.0.1:\(gateway.port)/__clerk")])
        #expect(seen["clerk-secret-key"] == [.string(FrontendAPIStandIn.secretKey)])
        #expect(seen["x-gatehouse-user-id"] == nil)
        #expect(!env.text.contains("spoofed") && !env.text.contains("evil.example"))
        #expect(env.headers.filter { $0.0.lowercased() == "set-cookie" }.count == 2)
        let redirect = c.request("GET", "/__clerk/v1/redirect-me", host: "127.0.0.1:\(gateway.port)")
        #expect(redirect?.header("location") == "http://127.0.0.1:\(gateway.port)/__clerk/v1/client/sign_ins")

        // Handshakes now go through the proxy too, and still come back signed in.
        let browser = MiniBrowser()
        Self.expiredSession(browser)
        let hops = try await browser.navigate("http://127.0.0.1:\(gateway.port)/dashboard")
        #expect(hops.first?.response.header("location")?.hasPrefix("http://127.0.0.1:\(gateway.port)/__clerk/v1/client/handshake?") == true)
        #expect(hops.map(\.port) == [gateway.port, gateway.port, gateway.port])
        #expect(hops.last.flatMap { userId($0.response) } == "user_returning")
    }

    @Test func httpsUpstreamsSpeakTLSAndFailClosed() async throws {
        // The Frontend API is https://; a TLS upstream that cannot complete a verified handshake (here a plain
        // HTTP server) is a 502, never a fallback to plain text.
        let upstream = try await TestUpstream()
        let gateway = try await GatewayHarness(routes: """
              - { name: tls, match: ["/tls(.*)"], access: public, upstream: "https://127.0.0.1:\(upstream.port)" }
              - { name: app, match: ["/echo(.*)"], access: public }
            """, upstream: upstream)
        defer { Task { await gateway.stop() } }
        let c = try gateway.client()
        #expect(c.request("GET", "/tls/x")?.status == 502)
        #expect(c.request("GET", "/echo")?.status == 200)
        #expect(upstream.connections.load(ordering: .relaxed) >= 2)  // the TLS attempt reached it, and failed
    }
}
