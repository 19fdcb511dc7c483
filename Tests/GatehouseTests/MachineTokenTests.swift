import Foundation
@testable import GatehouseAuth
import GatehouseConfig
@testable import GatehouseCore
import GatehouseDevIssuer
@testable import GatehouseEngine
import Testing

@Suite struct MachineTokenClassificationTests {
    typealias C = TokenClassifier.Classification

    @Test func clerkMockTokensByPrefix() {
        #expect(TokenClassifier.classify(MachineFixtures.apiKey) == C(.apiKey, .opaque))
        #expect(TokenClassifier.classify(MachineFixtures.oauthToken) == C(.oauthToken, .opaque))
        #expect(TokenClassifier.classify(MachineFixtures.m2mToken) == C(.m2mToken, .opaque))
    }

    @Test func prefixesAreCaseSensitive() {
        // machine.test.ts: 'M2M_token_value' is no machine token.
        #expect(TokenClassifier.classify("M2M_token_value").type == .sessionToken)
        #expect(TokenClassifier.classify("AK_abc").type == .sessionToken)
        #expect(TokenClassifier.classify("Oat_abc").type == .sessionToken)
    }

    @Test func jwtForms() {
        #expect(TokenClassifier.classify(MachineFixtures.m2mJWT()) == C(.m2mToken, .jwt))
        #expect(TokenClassifier.classify(MachineFixtures.oauthJWT()) == C(.oauthToken, .jwt))
        #expect(TokenClassifier.classify(MachineFixtures.oauthJWT(typ: "application/at+jwt")) == C(.oauthToken, .jwt))
        #expect(TokenClassifier.classify(Fixtures.token()) == C(.sessionToken, .jwt))
        #expect(TokenClassifier.classify(MachineFixtures.templateJWT()) == C(.template, .jwt))
        // at+jwt with a non-string sub is still an OAuth token (verify.test.ts).
        let oddSub = Fixtures.issuer.sign(MachineFixtures.oauthPayload(sub: .number(JSONNumber(42))), header: JSONObject([("typ", "at+jwt")]))
        #expect(TokenClassifier.classify(oddSub) == C(.oauthToken, .jwt))
        // M2M before OAuth: a `mch_` subject wins over `typ at+jwt`.
        let both = Fixtures.issuer.sign(MachineFixtures.m2mPayload(), header: JSONObject([("typ", "at+jwt")]))
        #expect(TokenClassifier.classify(both) == C(.m2mToken, .jwt))
        // Clerk's JWT regex: no padding, no '+' or '/'.
        #expect(TokenClassifier.jwtParts("a.b=.c") == nil)
    }

    @Test func apiKeysAreNeverJWTShaped() {
        #expect(TokenClassifier.jwtParts(MachineFixtures.apiKey) == nil)
    }
}

@Suite struct MachineAcceptsConfigTests {
    func issues(_ accepts: String, extra: String = "", secret: Bool = true) -> [String] {
        let yaml = """
            clerk:
              publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k
            \(secret ? "  secret_key: sk_live_x" : "")
              jwks_file: jwks.json
            sign_in_url: /sign-in
            routes:
              - name: r
                match: ["/r"]
                accepts: \(accepts)
            \(extra)
            """
        return Fixtures.configIssues(yaml).map { "\($0.keyPath): \($0.message)" }
    }

    @Test func validForms() throws {
        #expect(issues("api_key") == [])
        #expect(issues("[session_token, api_key, m2m_token]") == [])
        #expect(issues("any") == [])
        #expect(issues(#"{template: {iss: "https://clerk.example.com", aud: [a, b]}}"#) == [])
        #expect(issues(#"[session_token, {template: {iss: "https://i", aud: a}}]"#) == [])
        let settings = try Fixtures.settings(MachineFixtures.yaml)
        let keys = try #require(settings.routes.rules.first { $0.name == "keys" })
        #expect(settings.machine.acceptance(for: keys) == TokenAcceptance(types: [.apiKey], shape: .single))
        let app = try #require(settings.routes.rules.first { $0.name == "app" })
        #expect(settings.machine.acceptance(for: app) == .sessionOnly)
        #expect(settings.machine.acceptance(for: settings.routes.fallback) == .sessionOnly)
        let external = try #require(settings.routes.rules.first { $0.name == "external" })
        #expect(settings.machine.acceptance(for: external).template?.audiences == ["external-api"])
    }

    @Test func preciseErrors() {
        #expect(issues("api_keys") == ["routes[0] (r).accepts: unknown token type 'api_keys': expected session_token, api_key, m2m_token, oauth_token, {template: {iss, aud}} or any"])
        #expect(issues("[any]") == ["routes[0] (r).accepts[0]: 'any' stands alone (accepts: any), not in a list"])
        #expect(issues("[]").first?.contains("an empty list accepts nothing") == true)
        #expect(issues("template") == ["routes[0] (r).accepts: a template needs its issuer and audience: {template: {iss: https://…, aud: …}}"])
        #expect(issues("{template: {iss: x}}") == ["routes[0] (r).accepts.template.aud: required: the audience the template sets (compared exactly)"])
        #expect(issues("{template: {aud: x, typo: 1}}").sorted() == [
            "routes[0] (r).accepts.template.iss: required: the issuer the template's tokens carry (compared exactly)",
            "routes[0] (r).accepts.template.typo: unknown key",
        ])
        #expect(issues("api_key", secret: false) == ["routes[0] (r).accepts: api_key tokens are verified at the Backend API: set clerk.secret_key (CLERK_SECRET_KEY)"])
        #expect(issues("m2m_token", secret: false) == ["routes[0] (r).accepts: opaque m2m_token tokens are verified at the Backend API: set clerk.machine_secret_key (CLERK_MACHINE_SECRET_KEY) or clerk.secret_key"])
    }

    @Test func machineSecretKeyAloneIsEnoughForM2M() throws {
        let yaml = """
            clerk:
              publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k
              jwks_file: jwks.json
            sign_in_url: /sign-in
            routes:
              - name: r
                match: ["/r"]
                accepts: m2m_token
            """
        #expect(Fixtures.configIssues(yaml, environment: ["CLERK_MACHINE_SECRET_KEY": "ak_machine"]) == [])
        #expect(try Fixtures.settings(yaml, environment: ["CLERK_MACHINE_SECRET_KEY": "ak_machine"]).machine.machineSecretKey == "ak_machine")
        #expect(Fixtures.configIssues(yaml, environment: ["CLERK_MACHINE_SECRET_KEY": "sk_live_wrong"]).map(\.message)
                    .contains("expected a Clerk machine secret key (ak_…)"))
    }

    @Test func sessionRequirementsCannotApplyToMachineTokens() {
        let found = issues("[session_token, api_key]", extra: "    require: { role: admin }")
        #expect(found == ["routes[0] (r).require.role: cannot apply to api_key tokens: role is read from a session's claims; give machine callers a route of their own"])
        #expect(issues("session_token", extra: "    require: { role: admin }") == [])
    }

    @Test func machineAuthTuning() throws {
        let yaml = MachineFixtures.yaml + "\nmachine_auth: { revocation_window: 10s, negative_cache: 2s, timeout: 1s, burst: 7, per_second: 3, client_burst: 2, client_per_second: 0.5 }\n"
        let m = try Fixtures.settings(yaml).machine
        #expect(m.limits.revocationWindow == 10 && m.limits.negativeSeconds == 2 && m.timeout == 1)
        #expect(m.limits.burst == 7 && m.limits.perSecond == 3 && m.limits.clientBurst == 2 && m.limits.clientPerSecond == 0.5)
        #expect(Fixtures.configIssues(MachineFixtures.yaml + "\nmachine_auth: { revocation_window: 2h }\n").map(\.keyPath) == ["machine_auth.revocation_window"])
    }
}

@Suite struct MachineDecisionTests {
    let source = FakeMachineSource()

    func gatekeeper() throws -> Gatekeeper { try MachineFixtures.gatekeeper(source: source) }

    func bearer(_ token: String) -> [(String, String)] { [("Authorization", "Bearer " + token)] }

    func header(_ e: Evaluation, _ name: String) -> String? { e.decision.responseHeaders.first(name) }

    @Test func noTokenOnSingleMachineRoute() async throws {
        let e = await try gatekeeper().evaluate("/api/keys")
        #expect(e.decision.status == 401)
        #expect(e.auth?.reason == "No token in header")
        #expect(e.auth?.tokenType == nil)
        #expect(header(e, "x-clerk-auth-status") == "signed-out")
        #expect(source.calls == 0)
    }

    @Test func noTokenOnMachineListIsATypeMismatch() async throws {
        let e = await try gatekeeper().evaluate("/api/machines")
        #expect(e.decision.status == 401)
        #expect(e.auth?.reason == "token-type-mismatch")
    }

    @Test func sessionTokenOnMachineRoute() async throws {
        let e = await try gatekeeper().evaluate("/api/keys", headers: bearer(Fixtures.token()))
        #expect(e.decision.status == 401)
        #expect(e.auth?.reason == "token-type-mismatch")
        #expect(e.auth?.tokenType == .sessionToken)
        #expect(header(e, "www-authenticate") == #"Bearer realm="gatehouse", error="invalid_token""#)
    }

    @Test func wrongMachineType() async throws {
        let g = try gatekeeper()
        for (path, token) in [("/api/keys", MachineFixtures.m2mToken), ("/api/m2m", MachineFixtures.apiKey), ("/api/mcp", MachineFixtures.m2mJWT()),
                              ("/api/machines", MachineFixtures.oauthToken), ("/api/mixed", MachineFixtures.m2mToken)] {
            let e = await g.evaluate(path, headers: bearer(token))
            #expect(e.decision.status == 401, "\(path)")
            #expect(e.auth?.reason == "token-type-mismatch", "\(path)")
        }
        #expect(source.calls == 0)
    }

    @Test func machineTokenOnSessionRouteIsASignedOutSession() async throws {
        let g = try gatekeeper()
        for token in [MachineFixtures.apiKey, MachineFixtures.m2mToken, MachineFixtures.oauthToken, MachineFixtures.m2mJWT(), MachineFixtures.oauthJWT(), MachineFixtures.templateJWT()] {
            let api = await g.evaluate("/api/app/x", headers: bearer(token))
            #expect(api.decision.status == 401)
            #expect(api.auth?.reason == "token-type-mismatch")
            #expect(api.auth?.tokenType != .sessionToken && api.auth?.tokenType != nil)
            let page = await g.evaluate("/dashboard", headers: bearer(token) + [("Accept", "text/html"), ("Sec-Fetch-Dest", "document")])
            #expect(page.decision.status == 307)
            #expect(page.decision.location?.hasPrefix("/sign-in?redirect_url=") == true)
        }
        #expect(source.calls == 0)
    }

    @Test func machineTokensAreNeverReadFromCookies() async throws {
        source.answer(MachineFixtures.apiKey, MachineFixtures.apiKeyJSON())
        let e = await try gatekeeper().evaluate("/api/keys", headers: [("Cookie", "__session=\(MachineFixtures.apiKey); __client_uat=1")])
        #expect(e.decision.status == 401)
        #expect(e.auth?.reason == "No token in header")
        #expect(source.calls == 0)
    }

    @Test func mixedRouteTakesSessions() async throws {
        let e = await try gatekeeper().evaluate("/api/mixed", headers: bearer(Fixtures.token()))
        #expect(e.decision.action == .proxy)
        #expect(e.auth?.tokenType == .sessionToken)
        #expect(e.auth?.session?.userId == "user_1")
    }

    @Test func m2mJWTVerifiedLocally() async throws {
        let e = await try gatekeeper().evaluate("/api/m2m", headers: bearer(MachineFixtures.m2mJWT()))
        #expect(e.decision.action == .proxy, "\(e.decision.explanation)")
        let id = try #require(e.auth?.machineIdentity)
        // M2MToken.test.ts's expectations.
        #expect(id.id == "mt_2xKa9Bgv7NxMRDFyQw8LpZ3cTmU1vHjE")
        #expect(id.subject == "mch_2vYVtestTESTtestTESTtestTESTtest")
        #expect(id.machineId == id.subject)
        #expect(id.scopes == ["mch_1xxxxx", "mch_2xxxxx"])
        #expect(id.claims == JSONObject([("aud", .array(["mch_1xxxxx", "mch_2xxxxx"])), ("scopes", "mch_1xxxxx mch_2xxxxx")]))
        #expect(source.calls == 0)
        let report = ExplainReport.json(for: e).serialized()
        #expect(report.contains(#""tokenType":"m2m_token""#))
        #expect(!report.contains(MachineFixtures.m2mJWT()))
        // No `cat` still accepted (rollout, USER-5437).
        #expect(await try gatekeeper().evaluate("/api/m2m", headers: bearer(MachineFixtures.m2mJWT(cat: nil))).decision.action == .proxy)
    }

    @Test func m2mJWTRules() async throws {
        let g = try gatekeeper()
        let wrongCat = await g.evaluate("/api/m2m", headers: bearer(MachineFixtures.m2mJWT(cat: "cl_B7d4PD111AAA")))
        #expect(wrongCat.decision.status == 401)
        #expect(wrongCat.auth?.reason == "token-invalid")
        #expect(wrongCat.auth?.message == "Invalid M2M JWT category. (code=token-invalid, status=n/a)")
        let expired = await g.evaluate("/api/m2m", headers: bearer(MachineFixtures.m2mJWT(iat: Fixtures.now - 600)))
        #expect(expired.decision.status == 401)
        #expect(expired.auth?.reason == "token-verification-failed")
        let forged = await g.evaluate("/api/m2m", headers: bearer(MachineFixtures.m2mJWT(issuer: Fixtures.otherIssuer)))
        #expect(forged.decision.status == 401)
        #expect(forged.auth?.reason == "token-verification-failed")
        let typJWTforOAuth = Fixtures.issuer.sign(MachineFixtures.oauthPayload(), header: JSONObject([("typ", "JWT")]))
        // typ JWT with a user subject is a session token, which the OAuth route does not take.
        #expect(await g.evaluate("/api/mcp", headers: bearer(typJWTforOAuth)).auth?.reason == "token-type-mismatch")
        let none = Fixtures.issuer.sign(MachineFixtures.m2mPayload(), header: JSONObject([("alg", "none")]))
        #expect(await g.evaluate("/api/m2m", headers: bearer(none)).decision.status == 401)
    }

    @Test func oauthJWTVerifiedLocally() async throws {
        let g = try gatekeeper()
        for typ in ["at+jwt", "application/at+jwt"] {
            let e = await g.evaluate("/api/mcp", headers: bearer(MachineFixtures.oauthJWT(typ: typ)))
            #expect(e.decision.action == .proxy, "\(e.decision.explanation)")
            let id = try #require(e.auth?.machineIdentity)
            #expect(id.tokenType == .oauthToken)
            #expect(id.userId == "user_2vYVtestTESTtestTESTtestTESTtest")
            #expect(id.clientId == "client_2VTWUzvGC5UhdJCNx6xG1D98edc")
            #expect(id.scopes == ["read:foo", "write:bar"])
        }
        let expired = await g.evaluate("/api/mcp", headers: bearer(MachineFixtures.oauthJWT(iat: Fixtures.now - 400)))
        #expect(expired.decision.status == 401)
        #expect(source.calls == 0)
    }

    @Test func templateTokens() async throws {
        let g = try gatekeeper()
        let ok = await g.evaluate("/api/external", headers: bearer(MachineFixtures.templateJWT()))
        #expect(ok.decision.action == .proxy, "\(ok.decision.explanation)")
        #expect(ok.auth?.machineIdentity?.subject == "user_template")
        for bad in [MachineFixtures.templateJWT(aud: "other"), MachineFixtures.templateJWT(iss: "https://evil.example.com"),
                    MachineFixtures.templateJWT(role: "writer"), MachineFixtures.templateJWT(lifetime: -60)] {
            let e = await g.evaluate("/api/external", headers: bearer(bad))
            #expect(e.decision.status == 401)
            #expect(e.auth?.reason == "token-verification-failed")
        }
        // A session token is not a template token.
        #expect(await g.evaluate("/api/external", headers: bearer(Fixtures.token())).auth?.reason == "token-type-mismatch")
    }

    @Test func anyTakesEveryClerkType() async throws {
        source.answer(MachineFixtures.apiKey, MachineFixtures.apiKeyJSON())
        let g = try gatekeeper()
        #expect(await g.evaluate("/api/any", headers: bearer(Fixtures.token())).decision.action == .proxy)
        #expect(await g.evaluate("/api/any", headers: bearer(MachineFixtures.m2mJWT())).decision.action == .proxy)
        #expect(await g.evaluate("/api/any", headers: bearer(MachineFixtures.oauthJWT())).decision.action == .proxy)
        let key = await g.evaluate("/api/any", headers: bearer(MachineFixtures.apiKey))
        #expect(key.decision.action == .proxy)
        #expect(key.auth?.machineIdentity?.name == "Test API Key")
        #expect(key.auth?.machineIdentity?.userId == "user_xxxxx")
        // Without a token, `any` falls back to the session path (cookies): signed out here.
        #expect(await g.evaluate("/api/any").decision.status == 401)
    }

    @Test func publicRouteStillPasses() async throws {
        let g = try gatekeeper()
        let e = await g.evaluate("/api/open", headers: bearer(MachineFixtures.apiKey))
        #expect(e.decision.action == .proxy)
        #expect(e.auth?.machine == .rejected(reason: "token-invalid", message: "API key not found (code=token-invalid, status=404)"))
    }
}

@Suite struct MachineExplainTests {
    @Test func explainShowsTypeAndReasonForEachToken() async throws {
        let source = FakeMachineSource()
        source.answer(MachineFixtures.apiKey, MachineFixtures.apiKeyJSON())
        let g = try MachineFixtures.gatekeeper(source: source)
        let cases: [(String, String?, String, String?)] = [
            ("/api/keys", MachineFixtures.apiKey, "api_key", nil),
            ("/api/keys", "ak_unknown", "api_key", "token-invalid"),
            ("/api/m2m", MachineFixtures.m2mJWT(), "m2m_token", nil),
            ("/api/m2m", MachineFixtures.oauthToken, "oauth_token", "token-type-mismatch"),
            ("/api/mcp", MachineFixtures.oauthJWT(), "oauth_token", nil),
            ("/api/external", MachineFixtures.templateJWT(), "template", nil),
            ("/api/app", MachineFixtures.m2mToken, "m2m_token", "token-type-mismatch"),
            ("/api/app", Fixtures.token(), "session_token", nil),
            ("/api/keys", nil, "", "No token in header"),
        ]
        for (path, token, type, reason) in cases {
            let e = await g.evaluate(path, headers: token.map { [("Authorization", "Bearer " + $0)] } ?? [])
            let report = ExplainReport.json(for: e)
            let auth = try #require(report.objectValue?["auth"]?.objectValue)
            #expect(auth["tokenType"] == (type.isEmpty ? .null : .string(type)), "\(path) \(type)")
            #expect(auth["reason"] == (reason.map(JSONValue.string) ?? .null), "\(path) \(type)")
            if let token { #expect(!report.serialized().contains(token)) }
            if reason == nil && type != "session_token" {
                #expect(auth["machine"]?.objectValue?["tokenType"] == .string(type))
            }
        }
    }
}
