import Foundation
@testable import GatehouseAuth
import GatehouseConfig
@testable import GatehouseCore
import GatehouseDevIssuer
@testable import GatehouseEngine
import Testing

/// README claims the audit found untested or half-tested, checked through the whole decision path.
@Suite struct ReadmeClaimDecisionTests {
    let fresh = Fixtures.token("user_1")
    let uat = "__client_uat=\(Int(Fixtures.now) - 100)"
    static let page: [(String, String)] = [("Sec-Fetch-Dest", "document"), ("Accept", "text/html")]

    // MARK: CSRF gaps: Sec-Fetch-Site none/same-site, Origin winning, OPTIONS/TRACE, public_origin

    @Test func csrfEvidenceOrderAndSafeMethods() async throws {
        let g = try BrowserSessionTests.gatekeeper()
        let session = ("Cookie", "__session=\(fresh); \(uat)")
        func status(_ headers: [(String, String)], method: String = "POST") async -> Int {
            await g.evaluate("/api/x", method: method, headers: [session] + headers).decision.status
        }
        // `none` is a navigation the user started; `same-site` is another origin of the site: refused.
        #expect(await status([("Sec-Fetch-Site", "none")]) == 200)
        #expect(await status([("Sec-Fetch-Site", "same-site")]) == 403)
        // Origin is the first evidence: a foreign Origin is not rescued by a same-origin Sec-Fetch-Site or Referer.
        #expect(await status([("Origin", "https://evil.example"), ("Sec-Fetch-Site", "same-origin")]) == 403)
        #expect(await status([("Origin", "https://evil.example"), ("Referer", "https://app.example.com/form")]) == 403)
        // And Sec-Fetch-Site comes before Referer.
        #expect(await status([("Sec-Fetch-Site", "cross-site"), ("Referer", "https://app.example.com/form")]) == 403)
        for method in ["OPTIONS", "TRACE", "HEAD"] {
            #expect(await status([("Origin", "https://evil.example")], method: method) == 200, "\(method)")
        }
    }

    @Test func publicOriginIsTheAppsOriginForCSRFAndRedirects() async throws {
        let g = try BrowserSessionTests.gatekeeper(top: "public_origin: \"https://public.example.org\"")
        let session = ("Cookie", "__session=\(fresh); \(uat)")
        let fromPublic = await g.evaluate("/api/x", method: "POST", headers: [session, ("Origin", "https://public.example.org")])
        #expect(fromPublic.decision.status == 200)
        // The Host header's origin is no longer "the app's own" once public_origin says otherwise.
        let fromHost = await g.evaluate("/api/x", method: "POST", headers: [session, ("Origin", "https://unlisted.example.com")])
        #expect(fromHost.decision.status == 403)
        let page = await g.evaluate("/dashboard?a=1", headers: Self.page)
        #expect(page.decision.status == 307)
        #expect(page.decision.location == "/sign-in?redirect_url=https%3A%2F%2Fpublic.example.org%2Fdashboard%3Fa%3D1")
    }

    // MARK: on_unauthenticated

    @Test func onUnauthenticatedChangesTheSignedOutAnswerPerRule() async throws {
        let g = try Fixtures.gatekeeper("""
            clerk: { publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k, jwks_file: jwks.json }
            sign_in_url: /sign-in
            routes:
              - { name: api401, match: ["/always401(.*)"], on_unauthenticated: 401 }
              - { name: hidden, match: ["/hidden(.*)"], on_unauthenticated: 404 }
              - { name: always-redirect, match: ["/go(.*)"], on_unauthenticated: redirect }
              - { name: auto, match: ["/auto(.*)"] }
            """)
        #expect(await g.evaluate("/always401", headers: Self.page).decision.status == 401)
        #expect(await g.evaluate("/hidden", headers: Self.page).decision.status == 404)
        #expect(await g.evaluate("/hidden").decision.status == 404)
        let api = await g.evaluate("/go", headers: [("Accept", "application/json")])
        #expect(api.decision.status == 307)
        #expect(api.decision.location?.hasPrefix("/sign-in?redirect_url=") == true)
        #expect(await g.evaluate("/auto", headers: Self.page).decision.status == 307)
        #expect(await g.evaluate("/auto", headers: [("Accept", "application/json")]).decision.status == 401)
        // A signed-in caller is unaffected by the setting.
        #expect(await g.evaluate("/hidden", headers: [("Authorization", "Bearer \(fresh)")]).decision.action == .proxy)
    }

    // MARK: rule methods:/hosts: from YAML

    @Test func ruleMethodsAndHostsComeFromTheYAML() async throws {
        let g = try Fixtures.gatekeeper("""
            clerk: { publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k, jwks_file: jwks.json }
            routes:
              - { name: read-only, match: ["/docs(.*)"], methods: [GET, HEAD], access: public }
              - { name: other-app, match: ["/(.*)"], hosts: ["*.tools.example.com"], access: public }
            default: protected
            """)
        #expect(await g.evaluate("/docs/a").route?.name == "read-only")
        let post = await g.evaluate("/docs/a", method: "POST", headers: [("Accept", "application/json")])
        #expect(post.route?.name != "read-only")
        #expect(post.decision.status == 401)
        let tool = await g.evaluate(RawRequest(method: "GET", target: "/x", headers: HeaderList([("Host", "a.tools.example.com")]), scheme: "https"), now: Fixtures.now)
        #expect(tool.route?.name == "other-app")
        #expect(tool.decision.action == .proxy)
        let bare = await g.evaluate(RawRequest(method: "GET", target: "/x", headers: HeaderList([("Host", "tools.example.com"), ("Accept", "application/json")]), scheme: "https"), now: Fixtures.now)
        #expect(bare.route?.name != "other-app")
        #expect(bare.decision.status == 401)
    }

    // MARK: pending sessions by cookie

    @Test func aPendingCookieSessionIsSentToTasks() async throws {
        let g = try Fixtures.gatekeeper()
        let pending = Fixtures.token(extra: ["sts": "pending"])
        let e = await g.evaluate("/dashboard", headers: [("Cookie", "__session=\(pending); \(uat)")] + Self.page)
        #expect(e.decision.status == 307)
        #expect(e.decision.location?.hasPrefix("/sign-in/tasks?redirect_url=") == true, "\(e.decision.location ?? "-") \(e.auth?.reason ?? "-") \(e.decision.explanation)")
        #expect(e.auth?.activeSession == nil)
    }

    // MARK: token_cache_size: 0

    @Test func withTheTokenCacheOffEveryRequestIsStillJudged() async throws {
        let g = try Fixtures.gatekeeper(Fixtures.exampleYAML.replacingOccurrences(of: "  clock_skew: 5s", with: "  clock_skew: 5s\n  token_cache_size: 0"))
        let token = Fixtures.token("user_1")
        for _ in 0..<3 {
            #expect(await g.evaluate("/dashboard", headers: [("Authorization", "Bearer \(token)")]).decision.action == .proxy)
        }
        // The same token after it expired: refused, on every request (nothing remembered it as good).
        for _ in 0..<2 {
            let late = await g.evaluate("/dashboard", headers: [("Authorization", "Bearer \(token)"), ("Accept", "application/json")], now: Fixtures.now + 3600)
            #expect(late.decision.status == 401)
        }
    }
}
