import Foundation
import GatehouseCore
import Testing

/// Identity headers other auth proxies set (Authelia's `Remote-*`, oauth2-proxy's `X-Forwarded-*` and
/// `X-Auth-Request-*`, Pomerium's `X-Pomerium-*`): an app moving to Gatehouse may still trust them, so a client
/// must never get them through, in proxy mode, through the Frontend API proxy, or back from forward-auth.
@Suite(.serialized) struct ForeignIdentityHeaderTests {
    /// Written out here, not taken from the implementation.
    static let names = [
        "Remote-User", "Remote-Groups", "Remote-Email", "Remote-Name", "X-Forwarded-User", "X-Forwarded-Email",
        "X-Forwarded-Groups", "X-Forwarded-Preferred-Username", "X-Auth-Request-User", "X-Auth-Request-Email",
        "X-Auth-Request-Access-Token", "X-Pomerium-Jwt-Assertion", "X-Pomerium-Claim-Email",
    ]

    static func spellings(_ name: String) -> [String] {
        [name, name.lowercased(), name.uppercased(), name.replacingOccurrences(of: "-", with: "_"),
         name.replacingOccurrences(of: "-", with: ".")]
    }

    static var spoofed: [(String, String)] { names.flatMap { spellings($0) }.map { ($0, "spoofed") } }

    static func folded(_ name: String) -> String {
        String(name.lowercased().map { $0 == "_" || $0 == "." ? "-" : $0 })
    }

    @Test func everySpellingIsReservedAndLookAlikesAreNot() {
        let policy = IdentityHeaderPolicy()
        for name in Self.names {
            for spelling in Self.spellings(name) { #expect(policy.isReserved(spelling), "\(spelling)") }
        }
        // Names that merely resemble them stay: they are the app's own, or standard.
        for name in ["Remote-Addr", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Username",
                     "Remote", "X-Auth-Request", "X-Pomerium", "User-Agent", "Xremote-User", "R", "", "X-Forwarded-Users"] {
            #expect(!policy.isReserved(name), "\(name)")
        }
    }

    @Test func proxyModeStripsThemOnPublicAndProtectedRoutes() async throws {
        let h = try await GatewayHarness()
        defer { Task { await h.stop() } }
        let member = ServerIntegrationTests.fresh("user_member")
        for (target, headers) in [("/public/x", Self.spoofed), ("/echo/x", Self.spoofed + [bearer(member)])] {
            let response = try #require(try h.client().request("GET", target, headers: headers))
            #expect(response.status == 200)
            let seen = try #require(response.json?.objectValue?["headers"]?.objectValue)
            let leaked = seen.members.map { $0.key }.filter { key in Self.names.contains { Self.folded($0) == Self.folded(key) } }
            #expect(leaked.isEmpty, "\(target): reached the upstream: \(leaked)")
            #expect(seen["x-forwarded-for"] != nil)  // the standard ones still go
        }
    }

    @Test func theFrontendAPIProxyStripsThem() async throws {
        let standIn = try await FrontendAPIStandIn(development: false)
        let gateway = try await HandshakeFlowTests.harness(standIn, development: false, extraClerk: "  frontend_api_proxy: /__clerk")
        defer { Task { await gateway.stop(); await standIn.stop() } }
        let response = try #require(try gateway.client().request("GET", "/__clerk/v1/environment", headers: Self.spoofed,
                                                                   host: "127.0.0.1:\(gateway.port)"))
        #expect(response.status == 200)
        let seen = try #require(response.json?.objectValue?["headers"]?.objectValue)
        let leaked = seen.members.map { $0.key }.filter { key in Self.names.contains { Self.folded($0) == Self.folded(key) } }
        #expect(leaked.isEmpty, "reached the Frontend API: \(leaked)")
        #expect(seen["clerk-proxy-url"] != nil)
    }

    @Test func forwardAuthNeverPassesThemBackAndNamesEveryIdentityHeader() async throws {
        let h = try await GatewayHarness { $0.replacingOccurrences(of: "trusted_proxies: [\"10.9.9.9\"]", with: "trusted_proxies: [\"127.0.0.1\"]") }
        defer { Task { await h.stop() } }
        let member = ServerIntegrationTests.fresh("user_member")
        let identity = ["X-Gatehouse-Route", "X-Gatehouse-User-Id", "X-Gatehouse-Session-Id", "X-Gatehouse-Org-Id", "X-Gatehouse-Org-Role",
                        "X-Gatehouse-Org-Slug", "X-Gatehouse-Org-Permissions", "X-Gatehouse-Actor-Id", "X-Gatehouse-Token", "X-Gatehouse-Assertion", "X-Gatehouse-Token-Type", "X-Gatehouse-Subject", "X-Gatehouse-Machine-Id", "X-Gatehouse-Client-Id", "X-Gatehouse-Scopes", "X-Gatehouse-Key-Name", "X-User-Email"]
        for (uri, token) in [("/public/x", nil), ("/echo/x", member)] as [(String, String?)] {
            var headers = Self.spoofed + [("X-Forwarded-Method", "GET"), ("X-Forwarded-Uri", uri), ("X-Gatehouse-Org-Id", "org_spoof")]
            if let token { headers.append(bearer(token)) }
            let answer = try #require(try h.client().request("GET", "/_gatehouse/auth", headers: headers))
            #expect(answer.status == 200)
            let passedBack = answer.headers.map(\.0).filter { key in Self.names.contains { Self.folded($0) == Self.folded(key) } }
            #expect(passedBack.isEmpty, "\(uri): forward-auth answered with \(passedBack)")
            // Every identity name once, Gatehouse's value or empty; nothing of the client's.
            for name in identity {
                let values = answer.headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
                #expect(values.count == 1, "\(uri): \(name) answered \(values)")
                #expect(!values.contains("spoofed") && !values.contains("org_spoof"), "\(uri): \(name) answered \(values)")
            }
            #expect(answer.header("x-gatehouse-route") == (token == nil ? "public" : "app"))
            #expect(answer.header("x-gatehouse-user-id") == (token == nil ? "" : "user_member"))
            #expect(answer.header("x-gatehouse-org-id") == "")
            #expect(answer.header("x-user-email") == "")
        }
    }

    @Test func nginxVocabularyCarriesEveryDenial() async throws {
        let routes = GatewayHarness.defaultRoutes + "\n  - { name: hidden, match: [\"/hidden(.*)\"], require: { org_role: \"org:admin\" }, on_forbidden: 404 }"
        let h = try await GatewayHarness(routes: routes) {
            $0.replacingOccurrences(of: "trusted_proxies: [\"10.9.9.9\"]", with: "trusted_proxies: [\"127.0.0.1\"]")
        }
        defer { Task { await h.stop() } }
        let member = ServerIntegrationTests.fresh("user_member", org: ("org_1", "acme", "org:member", []))
        func ask(_ uri: String, _ extra: [(String, String)]) throws -> RawClient.Response? {
            try h.client().request("GET", "/_gatehouse/auth/nginx", headers: [("X-Original-URI", uri), ("X-Original-Method", "GET")] + extra)
        }
        // (what Gatehouse decides) → (status nginx can take, X-Gatehouse-Status, X-Gatehouse-Location)
        let cases: [(String, [(String, String)], Int, String, String?)] = [
            ("/hidden/x", [bearer(member)], 403, "404", nil),
            ("/admin", [bearer(member)], 403, "403", nil),
            ("/dashboard", [("Accept", "application/json")], 401, "401", nil),
            ("/dashboard", [("Accept", "text/html")], 401, "307", "/sign-in?redirect_url=http%3A%2F%2Fapp.example.com%2Fdashboard"),
        ]
        for (uri, extra, carrier, real, location) in cases {
            let answer = try #require(try ask(uri, extra))
            #expect(answer.status == carrier, "\(uri)")
            #expect(answer.header("x-gatehouse-status") == real, "\(uri)")
            #expect(answer.header("x-gatehouse-location") == location, "\(uri)")
        }
        // The client's X-Forwarded-Uri is not read in the nginx dialect.
        let spoof = try #require(try ask("/admin", [("X-Forwarded-Uri", "/public/x"), ("Accept", "application/json")]))
        #expect(spoof.status == 401)
        #expect(try ask("/public/x", [])?.status == 200)
    }
}
