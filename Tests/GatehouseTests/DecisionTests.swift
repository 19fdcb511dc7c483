import Foundation
@testable import GatehouseAuth
import GatehouseConfig
@testable import GatehouseCore
import GatehouseDevIssuer
import GatehouseEngine
import Testing

@Suite struct DecisionTests {
    let adminToken = Fixtures.token("user_admin", extra: ["metadata": ["role": "admin"]])
    let memberToken = Fixtures.token("user_member", org: ("org_1", "acme", "org:member", []))
    let orgAdminToken = Fixtures.token("user_oa", org: ("org_1", "acme", "org:admin", ["org:billing:manage"]))

    func bearer(_ t: String) -> [(String, String)] { [("Authorization", "Bearer " + t)] }
    static let browser: [(String, String)] = [("Accept", "text/html,application/xhtml+xml"), ("Sec-Fetch-Dest", "document")]

    @Test func publicRoutesPassWithOrWithoutIdentity() async throws {
        let g = try Fixtures.gatekeeper()
        let anonymous = await g.evaluate("/api/public/x")
        #expect(anonymous.decision.action == .proxy)
        let anonymousHeaders = try #require(anonymous.decision.upstreamHeaders, "a public request is proxied, with headers")
        #expect(anonymousHeaders.first("x-gatehouse-user-id") == nil)
        let signedIn = await g.evaluate("/", headers: bearer(memberToken))
        #expect(signedIn.decision.action == .proxy)
        #expect(signedIn.decision.upstreamHeaders?.first("x-gatehouse-user-id") == "user_member")
    }

    @Test func signedOutBrowserPageIsRedirectedToSignInWithTheOriginalURL() async throws {
        let g = try Fixtures.gatekeeper()
        let e = await g.evaluate("/dashboard/x?tab=1&q=a%20b", headers: Self.browser)
        #expect(e.decision.action == .redirect)
        #expect(e.decision.status == 307)
        #expect(e.decision.location == "/sign-in?redirect_url=https%3A%2F%2Fapp.example.com%2Fdashboard%2Fx%3Ftab%3D1%26q%3Da%2520b")
        #expect(e.decision.responseHeaders.first("cache-control") == "no-store")
    }

    @Test func acceptTextHtmlAloneCountsAsAPage() async throws {
        let g = try Fixtures.gatekeeper()
        #expect(await g.evaluate("/dashboard", headers: [("Accept", "text/html")]).decision.action == .redirect)
        #expect(await g.evaluate("/dashboard", method: "HEAD", headers: [("Sec-Fetch-Dest", "iframe")]).decision.action == .redirect)
    }

    @Test func signedOutApiRequestGets401WithAChallenge() async throws {
        let g = try Fixtures.gatekeeper()
        let e = await g.evaluate("/api/protected/x", headers: [("Accept", "application/json")])
        #expect(e.decision.status == 401)
        #expect(e.decision.responseHeaders.first("www-authenticate") == "Bearer realm=\"gatehouse\"")
        #expect(e.decision.body?.contains("\"error\":\"unauthenticated\"") == true)
        // A POST from a browser form is not a page load: 401, not a redirect.
        let post = await g.evaluate("/dashboard", method: "POST", headers: Self.browser)
        #expect(post.decision.status == 401)
    }

    @Test func invalidTokenGetsInvalidTokenChallenge() async throws {
        let g = try Fixtures.gatekeeper()
        let e = await g.evaluate("/api/protected/x", headers: bearer(Fixtures.token(issuer: Fixtures.otherIssuer)))
        #expect(e.decision.status == 401)
        #expect(e.decision.responseHeaders.first("www-authenticate") == "Bearer realm=\"gatehouse\", error=\"invalid_token\"")
        #expect(e.auth?.reason == "token-invalid-signature")
    }

    @Test func invalidBearerIsNeverReplacedByAValidCookie() async throws {
        let g = try Fixtures.gatekeeper()
        let cookie = ("Cookie", "__session=\(adminToken); __client_uat=\(Int(Fixtures.now) - 100)")
        let e = await g.evaluate("/admin", headers: [("Authorization", "Bearer garbage"), cookie])
        #expect(e.decision.status == 401)
        let cookieOnly = await g.evaluate("/admin", headers: [cookie])
        #expect(cookieOnly.decision.action == .proxy)
    }

    @Test func adminRuleNeedsTheClaim() async throws {
        let g = try Fixtures.gatekeeper()
        #expect(await g.evaluate("/admin/users", headers: bearer(adminToken)).decision.action == .proxy)
        let member = await g.evaluate("/admin/users", headers: bearer(memberToken))
        #expect(member.decision.status == 403)
        #expect(member.decision.explanation.contains("metadata.role"))
        #expect(member.decision.body?.contains("metadata") == false)  // the policy is not disclosed to the caller
        // Clerk's (.*) semantics: /administrator is under the admin rule too.
        #expect(await g.evaluate("/administrator", headers: bearer(memberToken)).route?.name == "admin")
    }

    @Test func orgRolesAndPermissions() async throws {
        let g = try Fixtures.gatekeeper()
        #expect(await g.evaluate("/orgs/acme/settings", headers: bearer(orgAdminToken)).decision.action == .proxy)
        #expect(await g.evaluate("/orgs/acme/settings/members", headers: bearer(memberToken)).decision.status == 403)
        #expect(await g.evaluate("/api/billing/invoices", headers: bearer(orgAdminToken)).decision.action == .proxy)
        #expect(await g.evaluate("/api/billing/invoices", headers: bearer(memberToken)).decision.status == 403)
    }

    @Test func ruleCanHideItselfWith404() async throws {
        let g = try Fixtures.gatekeeper()
        let e = await g.evaluate("/secret/x", headers: bearer(memberToken))
        #expect(e.decision.status == 404)
        #expect(e.decision.body?.contains("not_found") == true)
    }

    @Test func unmatchedPathsAreProtectedByDefault() async throws {
        let g = try Fixtures.gatekeeper()
        let e = await g.evaluate("/something/else", headers: [("Accept", "application/json")])
        #expect(e.route?.name == "default")
        #expect(e.routeMatched == false)
        #expect(e.decision.status == 401)
        #expect(await g.evaluate("/something/else", headers: bearer(memberToken)).decision.action == .proxy)
    }

    @Test func expiredTokenIsRejectedAndExplained() async throws {
        let g = try Fixtures.gatekeeper()
        let e = await g.evaluate("/dashboard", headers: bearer(memberToken), now: Fixtures.now + 3600)
        #expect(e.decision.status == 401)
        #expect(e.auth?.reason == "session-token-expired-refresh-non-eligible-no-refresh-cookie")
    }

    @Test func pendingSessionIsSignedOutAndSentToTasks() async throws {
        let g = try Fixtures.gatekeeper()
        let pending = Fixtures.token(extra: ["sts": "pending"])
        let page = await g.evaluate("/dashboard", headers: bearer(pending) + Self.browser)
        #expect(page.decision.location?.hasPrefix("/sign-in/tasks?redirect_url=") == true)
        let api = await g.evaluate("/dashboard", headers: bearer(pending))
        #expect(api.decision.status == 401)
        // On a public route the pending session is proxied, as signed out (not refused, not signed in).
        let publicPage = await g.evaluate("/", headers: bearer(pending))
        #expect(publicPage.decision.action == .proxy)
        let headers = try #require(publicPage.decision.upstreamHeaders)
        #expect(headers.first("x-gatehouse-user-id") == nil)
    }

    @Test func badRequestsAreRefusedBeforeRouting() async throws {
        let g = try Fixtures.gatekeeper()
        for target in ["/admin%2Fx", "/public/..;/admin", "/x#y", "http:app/admin"] {
            let e = await g.evaluate(target, headers: bearer(adminToken))
            #expect(e.decision.status == 400, "\(target)")
            #expect(e.route == nil)
        }
    }

    @Test func spoofedIdentityHeadersNeverReachTheUpstream() async throws {
        let g = try Fixtures.gatekeeper()
        let spoof = [("X-Gatehouse-User-Id", "user_admin"), ("x_gatehouse_org_role", "org:admin"), ("X.Gatehouse.Org.Id", "org_evil"),
                     ("X-User-Email", "ceo@example.com"), ("Remote-User", "admin")]
        let e = await g.evaluate("/dashboard", headers: bearer(memberToken) + spoof)
        let upstream = try #require(e.decision.upstreamHeaders)
        #expect(upstream.values("x-gatehouse-user-id") == ["user_member"])
        #expect(upstream.values("x-gatehouse-org-role") == ["org:member"])
        #expect(upstream.values("x-gatehouse-org-id") == ["org_1"])
        #expect(!upstream.fields.contains { $0.value == "org:admin" || $0.value == "ceo@example.com" || $0.value == "admin" || $0.value == "org_evil" })
    }

    @Test func noSigningKeysAnswers503OnProtectedRoutes() async throws {
        let settings = try Fixtures.settings()
        let g = Gatekeeper(settings: settings, keyStore: KeyStore(remote: FakeJWKSSource(nil), settings: .init()))
        let e = await g.evaluate("/dashboard", headers: bearer(memberToken))
        #expect(e.decision.status == 503)
        #expect(e.decision.responseHeaders.first("retry-after") == "5")
        #expect(await g.evaluate("/", headers: bearer(memberToken)).decision.action == .proxy)
    }

    @Test func explainReportRedactsSecrets() async throws {
        let g = try Fixtures.gatekeeper("""
            clerk: { jwks_file: jwks.json }
            sign_in_url: /sign-in
            identity_headers: { forward_token: true }
            """)
        let e = await g.evaluate("/x", headers: bearer(memberToken) + [("Cookie", "__session=\(memberToken)")])
        let json = ExplainReport.json(for: e).serialized()
        #expect(!json.contains(memberToken))
        #expect(json.contains("\"userId\":\"user_member\""))
    }
}

@Suite struct SessionCookieTests {
    let instance = try! ClerkInstance(publishableKey: "pk_live_Y2xlcmsuZXhhbXBsZS5jb20k")
    var authenticator: SessionAuthenticator {
        SessionAuthenticator(instance: instance, policy: VerificationPolicy(), keyStore: KeyStore(staticKeys: Fixtures.keySet, description: "test"),
                             browser: BrowserSessionOptions())
    }
    let uat = "__client_uat=\(Int(Fixtures.now) - 100)"

    func run(_ cookie: String?, method: String = "GET", page: Bool = false) async throws -> AuthResult {
        var headers: [(String, String)] = []
        if let cookie { headers.append(("Cookie", cookie)) }
        if page { headers.append(("Sec-Fetch-Dest", "document")) }
        return await authenticator.authenticate(try Fixtures.request("/x", method: method, headers: headers), now: Fixtures.now)
    }

    @Test func publishableKeyYieldsInstanceFacts() throws {
        #expect(instance.kind == .production)
        #expect(instance.frontendAPIHost == "clerk.example.com")
        #expect(instance.accountsBaseURL == "https://accounts.example.com")
        // Vectors from Clerk's own tests.
        #expect(ClerkInstance.cookieSuffix(for: "pk_live_Y2xlcmsuaW5zcGlyZWQucHVtYS03NC5sY2wuZGV2JA") == "MqCvchyS")
        #expect(ClerkInstance.cookieSuffix(for: "pk_test_Y2xlcmsuaW5zcGlyZWQucHVtYS03NC5sY2wuZGV2JA") == "vWCgMp3A")
        #expect(throws: KeyError.self) { try ClerkInstance(publishableKey: "pk_live_bm9kb2xsYXI=") }
        #expect(throws: KeyError.self) { try ClerkInstance(publishableKey: "sk_live_x") }
    }

    @Test func cookieStates() async throws {
        let token = Fixtures.token(azp: nil)
        #expect(try await run(nil).reason == "session-token-and-uat-missing")
        #expect(try await run("__client_uat=0").reason == "session-token-and-uat-missing")
        let noUat = try await run("__session=\(token)", page: true)
        #expect(noUat.status == .handshake)
        #expect(noUat.reason == "session-token-but-no-client-uat")
        let noSession = try await run(uat, page: false)
        #expect(noSession.status == .signedOut)
        #expect(noSession.reason == "client-uat-but-no-session-token")
        #expect(try await run("__session=\(token); \(uat)").status == .signedIn)
        let stale = try await run("__session=\(token); __client_uat=\(Int(Fixtures.now) + 10)", page: true)
        #expect(stale.reason == "session-token-iat-before-client-uat")
        #expect(try await run("__session=garbage; \(uat)").reason == "token-invalid")
    }

    @Test func handshakeLoopGuardStopsAfterThree() async throws {
        let token = Fixtures.token(azp: nil)
        #expect(try await run("__session=\(token); __clerk_redirect_count=2", page: true).status == .handshake)
        #expect(try await run("__session=\(token); __clerk_redirect_count=3", page: true).status == .signedOut)
    }

    @Test func expiredCookieOnPageLoadIsAHandshakeCandidate() async throws {
        let expired = Fixtures.token(iat: Fixtures.now - 3600, azp: nil)
        let page = try await run("__session=\(expired); __client_uat=\(Int(Fixtures.now) - 7200)", page: true)
        #expect(page.status == .handshake)
        #expect(page.reason == "session-token-expired-refresh-non-eligible-no-refresh-cookie")
        let post = try await run("__session=\(expired); __client_uat=\(Int(Fixtures.now) - 7200)", method: "POST")
        #expect(post.status == .signedOut)
        #expect(post.reason == "session-token-expired-refresh-non-eligible-non-get")
    }

    @Test func suffixedCookiesAreSelectedLikeClerk() async throws {
        let sfx = instance.cookieSuffix
        let good = Fixtures.token("user_suffixed", azp: nil, extra: ["iss": "https://clerk.example.com"])
        let other = Fixtures.token("user_other_instance", azp: nil, extra: ["iss": "https://clerk.other.com"])
        // Un-suffixed __session from another issuer → suffixed cookies are used.
        let r = try await run("__session=\(other); __client_uat=1; __session_\(sfx)=\(good); __client_uat_\(sfx)=\(Int(Fixtures.now) - 100)")
        #expect(r.session?.userId == "user_suffixed")
        // Un-suffixed __session without iss → un-suffixed cookies.
        let noIss = Fixtures.signWithoutIss("user_plain")
        let r2 = try await run("__session=\(noIss); \(uat); __session_\(sfx)=\(good); __client_uat_\(sfx)=1")
        #expect(r2.session?.userId == "user_plain")
        // Only suffixed cookies present → suffixed.
        let r3 = try await run("__session_\(sfx)=\(good); __client_uat_\(sfx)=\(Int(Fixtures.now) - 100)")
        #expect(r3.session?.userId == "user_suffixed")
    }

    @Test func twoDifferentSessionCookiesAreAmbiguous() async throws {
        let a = Fixtures.token("user_a", azp: nil), b = Fixtures.token("user_b", azp: nil)
        let r = try await run("__session=\(a); __session=\(b); \(uat)")
        #expect(r.status == .signedOut)
        #expect(r.reason == "session-cookie-ambiguous")
        #expect(try await run("__session=\(a); __session=\(a); \(uat)").status == .signedIn)
    }

    @Test func nonSessionTokenCategoriesAreRejected() async throws {
        for header: JSONObject in [["cat": "cl_B7d4PD222AAA"], ["cat": "cl_B7d4PD333AAA"], ["cat": "something"]] {
            let t = Fixtures.token(azp: nil, header: header)
            #expect(try await run("__session=\(t); \(uat)").reason == "token-type-mismatch")
            let viaHeader = await authenticator.authenticate(try Fixtures.request("/x", headers: [("Authorization", "Bearer \(t)")]), now: Fixtures.now)
            #expect(viaHeader.reason == "token-type-mismatch")
        }
        let machine = Fixtures.token("mch_123", azp: nil)
        #expect(try await run("__session=\(machine); \(uat)").reason == "token-type-mismatch")
        #expect(try await run("__session=\(Fixtures.token(azp: nil, header: ["cat": "cl_B7d4PD111AAA"])); \(uat)").status == .signedIn)
    }

    @Test func authorizationHeaderForms() {
        #expect(SessionAuthenticator.headerToken("Bearer abc") == "abc")
        #expect(SessionAuthenticator.headerToken("bearer abc") == "abc")
        #expect(SessionAuthenticator.headerToken("abc") == "abc")
        #expect(SessionAuthenticator.headerToken("Basic dXNlcjpwYXNz") == nil)
        #expect(SessionAuthenticator.headerToken("Bearer a b") == "a b")  // fails verification, never ignored
        #expect(SessionAuthenticator.headerToken("") == nil)
    }
}

extension Fixtures {
    static func signWithoutIss(_ userId: String) -> String {
        let claims = JSONObject(DevIssuer.sessionClaims(userId: userId, issuedAt: now).members.filter { $0.key != "iss" })
        return issuer.sign(claims)
    }
}

