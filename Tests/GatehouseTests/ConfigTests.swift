import Foundation
@testable import GatehouseAuth
import GatehouseConfig
@testable import GatehouseCore
import GatehouseDevIssuer
import GatehouseEngine
import Testing

@Suite struct ConfigTests {
    func issues(_ yaml: String, environment: [String: String] = [:]) -> [ConfigIssue] {
        Fixtures.configIssues(yaml, environment: environment)
    }

    @Test func browserSessionSettingsAreValidated() throws {
        let pk = "publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k"
        func keys(_ found: [ConfigIssue]) -> [String] { found.map(\.keyPath) }
        #expect(keys(issues("clerk: { \(pk), jwks_file: jwks.json, proxy_url: \"//evil\" }\nsign_in_url: /s")) == ["clerk.proxy_url"])
        #expect(keys(issues("clerk: { \(pk), jwks_file: jwks.json, frontend_api_url: \"https://x.example/path\" }\nsign_in_url: /s")) == ["clerk.frontend_api_url"])
        #expect(keys(issues("clerk: { \(pk), jwks_file: jwks.json, satellite: true }\nsign_in_url: /s")) == ["clerk.satellite"])
        #expect(keys(issues("clerk: { jwks_file: jwks.json, frontend_api_proxy: /__clerk }\nsign_in_url: /s")) == ["clerk.frontend_api_proxy"])
        #expect(keys(issues("clerk: { \(pk), jwks_file: jwks.json, frontend_api_proxy: __clerk }\nsign_in_url: /s")) == ["clerk.frontend_api_proxy"])
        #expect(keys(issues("clerk: { jwks_file: jwks.json, handshake: true }\nsign_in_url: /s")) == ["clerk.handshake"])
        #expect(keys(issues("clerk: { jwks_file: jwks.json }\nsign_in_url: /s\nroutes: [{ name: a, match: [\"/a\"], csrf: maybe }]")) == ["routes[0] (a).csrf"])
        #expect(keys(issues("clerk: { publishable_key: pk_test_Y2xlcmsuZXhhbXBsZS5jb20k, jwks_file: jwks.json, satellite: true, domain: sat.example }\nsign_in_url: /s")) == ["sign_in_url"])

        let s = try Fixtures.settings("clerk: { \(pk), jwks_file: jwks.json, frontend_api_proxy: /__clerk, secret_key: sk_live_x }\nsign_in_url: /s")
        #expect(s.browser.handshake)
        #expect(s.browser.frontendAPI == "/__clerk")
        // Clerk's proxy contract: the environment's shared Frontend API, which finds the instance by secret key.
        #expect(s.frontendAPIProxy?.target.description == "https://frontend-api.clerk.dev")
        #expect(s.frontendAPIProxy?.host == "frontend-api.clerk.dev")
        let staging = try ClerkInstance(publishableKey: "pk_test_" + Data("happy-cat-1.clerk.accountsstage.dev$".utf8).base64EncodedString())
        #expect(staging.frontendAPIProxyTarget == "https://frontend-api.clerkstage.dev")
        // Without a publishable key there is no Frontend API: no handshakes.
        #expect(try Fixtures.settings("clerk: { jwks_file: jwks.json }\nsign_in_url: /s").browser.handshake == false)
    }

    @Test func exampleConfigCompiles() throws {
        let s = try Fixtures.settings()
        #expect(s.routes.rules.map(\.name) == ["public", "admin", "org-admin", "billing", "secret", "app"])
        #expect(s.routes.fallback.access == .protected)
        #expect(s.instance?.frontendAPIHost == "clerk.example.com")
        #expect(s.policy.clockSkew == 5)
        if case .jwksFile(_, let keys, _) = s.keySource { #expect(keys.count == 1) } else { Issue.record("expected a JWKS file source") }
    }

    @Test func errorsNameFileLineAndKey() {
        let found = issues("""
            clerk:
              jwks_file: jwks.json
            sign_in_url: /sign-in
            routes:
              - name: a
                match: ["/ok", "/bad*"]
                acess: public
              - name: b
                match: "/x"
                access: sometimes
                on_forbidden: 402
            """)
        let text = found.map(\.description)
        #expect(text.contains { $0.hasPrefix("test.yaml:7:") && $0.contains("routes[0].acess: unknown key (did you mean 'access'?)") })
        #expect(text.contains { $0.contains("test.yaml:6:") && $0.contains("'/bad*'") })
        #expect(text.contains { $0.contains("test.yaml:10:") && $0.contains("routes[1] (b).access") })
        #expect(text.contains { $0.contains("test.yaml:11:") && $0.contains("on_forbidden") })
        #expect(found.count == 4)
    }

    @Test func yamlSyntaxErrorsAreLocated() {
        let found = issues("routes:\n  - name: [unclosed\n")
        #expect(found.count == 1)
        #expect(found[0].line != nil)
    }

    @Test func duplicateKeysAndNamesAreErrors() {
        #expect(issues("clerk: { jwks_file: jwks.json }\nsign_in_url: /a\nsign_in_url: /b\n").first?.message.contains("duplicate") == true)
        let dupNames = issues("""
            clerk: { jwks_file: jwks.json }
            sign_in_url: /s
            routes:
              - { name: a, match: "/a" }
              - { name: A, match: "/b" }
            """)
        #expect(dupNames.contains { $0.message.contains("duplicate route name") })
    }

    @Test func environmentExpansionAndClerkVariables() throws {
        let pk = "pk_test_Y2xlcmsuZXhhbXBsZS5jb20k"
        let s = try Fixtures.settings("""
            clerk:
              jwks_file: ${JWKS:-jwks.json}
              authorized_parties: ["${APP_ORIGIN}"]
            routes: [{ name: a, match: "/a" }]
            """, environment: ["CLERK_PUBLISHABLE_KEY": pk, "APP_ORIGIN": "https://app.example.com", "NEXT_PUBLIC_CLERK_SIGN_IN_URL": "/login"])
        #expect(s.instance?.kind == .development)
        #expect(s.policy.authorizedParties == ["https://app.example.com"])
        #expect(s.signInURL == "/login")
        let missing = issues("clerk: { jwks_file: jwks.json, issuer: \"${NOPE}\" }\nsign_in_url: /s\n")
        #expect(missing.first?.message.contains("NOPE is not set") == true)
        #expect(missing.first?.line == 1)
    }

    @Test func secretKeySelectsTheBackendAPIAndIsNeverDescribed() throws {
        let s = try Fixtures.settings("clerk: { publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k, secret_key: sk_live_abc123 }")
        #expect(s.keySource.description == "Clerk Backend API (secret_key) https://api.clerk.com/v1/jwks")
        #expect(!s.keySource.description.contains("sk_live"))
        #expect(s.signInURL == "https://accounts.example.com/sign-in")
    }

    @Test func publishableKeyAloneUsesTheFrontendJWKS() throws {
        let s = try Fixtures.settings("clerk: { publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k }")
        #expect(s.keySource.description.hasSuffix("https://clerk.example.com/.well-known/jwks.json"))
    }

    @Test(arguments: ["//evil.com", "/\\evil.com", "https://app@evil.com/x", "javascript:alert(1)", "https:evil.com", " /x", "%09//evil.com"])
    func signInURLMustNotBeAnOpenRedirect(url: String) {
        let found = issues("clerk: { jwks_file: jwks.json }\nsign_in_url: \"\(url)\"\n")
        #expect(found.contains { $0.keyPath == "sign_in_url" })
    }

    @Test func noKeySourceIsAnError() {
        #expect(issues("sign_in_url: /s\nroutes: [{ name: a, match: /a }]").contains { $0.keyPath == "clerk" })
    }

    @Test func contradictionsAreErrors() {
        let found = issues("""
            clerk: { jwks_file: jwks.json, algorithms: [RS256, HS256], clock_skew: 1h }
            sign_in_url: /s
            trusted_proxies: ["10.0.0.0/8", "nonsense"]
            routes:
              - { name: a, match: "/a", access: public, require: { org: true } }
            """)
        #expect(found.contains { $0.keyPath == "clerk.algorithms" })
        #expect(found.contains { $0.keyPath == "clerk.clock_skew" })
        #expect(found.contains { $0.keyPath.hasPrefix("trusted_proxies") })
        #expect(found.contains { $0.keyPath.hasSuffix(".require") })
    }

    @Test func claimMatcherForms() throws {
        let s = try Fixtures.settings("""
            clerk: { jwks_file: jwks.json }
            sign_in_url: /s
            routes:
              - name: a
                match: /a
                require:
                  claims:
                    metadata.role: admin
                    metadata.level: [1, 2]
                    email_verified: { equals: true }
                    metadata.tags: { contains: beta }
                    banned: { exists: false }
            """)
        let claims = s.routes.rules[0].requirements.claims
        #expect(claims.map(\.matcher) == [.equals("admin"), .oneOf([1, 2]), .equals(true), .contains("beta"), .exists(false)])
    }

    @Test func cidrParsing() {
        #expect(CIDR("10.0.0.0/8")?.contains([10, 1, 2, 3]) == true)
        #expect(CIDR("10.0.0.0/8")?.contains([11, 1, 2, 3]) == false)
        #expect(CIDR("::1")?.contains(Array(repeating: 0, count: 15) + [1]) == true)
        #expect(CIDR("fd00::/8")?.contains([0xfd] + Array(repeating: 0, count: 15)) == true)
        #expect(CIDR("300.0.0.1") == nil)
    }
}
