import Foundation
import Synchronization
@testable import GatehouseCore
import GatehouseAuth
import GatehouseEngine
import Testing

/// A production satellite (`clerk.satellite: true`, `clerk.domain`) over real sockets: the gateway, an upstream
/// and the Frontend API stand-in (Support/FrontendAPIStandIn.swift), with the mini browser following redirects.
///
/// Clerk's order for a satellite page load (clerk-protocol.md §3.4 rule 2, `satelliteAutoSync` off by default):
/// a first visit with no cookies is signed out and sent to the primary's sign-in with `__clerk_synced=false` in
/// `redirect_url`; coming back with `__clerk_synced=false` it syncs through the handshake
/// (`satellite-needs-syncing`); `__clerk_synced=true` never syncs.
@Suite(.serialized, .stopsServers) struct SatelliteFlowTests {
    static let primarySignIn = "https://primary.example.org/sign-in"
    static let page: [(String, String)] = [("Sec-Fetch-Dest", "document"), ("Accept", "text/html")]

    /// A satellite gateway; `frontendAPI` points its handshakes at the stand-in (nil: Clerk's `clerk.<domain>`).
    static func satellite(frontendAPI: String? = nil, extra: String = "") async throws -> GatewayHarness {
        try await GatewayHarness(extra: extra) { yaml in
            var clerk = """
                  publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k
                  satellite: true
                  domain: satellite.example.net

                """
            if let frontendAPI {
                clerk += """
                      frontend_api_url: "\(frontendAPI)"
                      api_url: "\(frontendAPI)"
                      secret_key: \(FrontendAPIStandIn.secretKey)

                    """
            }
            return yaml
                .replacingOccurrences(of: "  publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k\n", with: clerk)
                .replacingOccurrences(of: "sign_in_url: /sign-in\n", with: "sign_in_url: \(primarySignIn)\n")
        }
    }

    /// Query items as Foundation reads them (never Gatehouse's own FormQuery).
    static func parts(_ url: String?) throws -> (scheme: String?, host: String?, path: String, query: [String: String], names: [String]) {
        let components = try #require(url.flatMap(URLComponents.init(string:)))
        let items = components.queryItems ?? []
        var query: [String: String] = [:]
        for item in items { query[item.name] = item.value ?? "" }
        return (components.scheme, components.host, components.path, query, items.map(\.name))
    }

    func userId(_ response: RawClient.Response) -> String? {
        guard case .array(let values)? = response.json?.objectValue?["headers"]?.objectValue?["x-gatehouse-user-id"] else { return nil }
        return values.first?.stringValue
    }

    // MARK: 1. The sync redirect, to Clerk's own Frontend API for the satellite

    @Test func returnFromThePrimaryIsSentToSyncAtClerkDotDomainWithClerksExactParameters() async throws {
        let gateway = try await Self.satellite(extra: "public_origin: https://satellite.example.net")
        defer { Task { await gateway.stop() } }
        let c = try gateway.client()
        let response = try #require(c.request("GET", "/dashboard?tab=2&__clerk_synced=false", headers: Self.page, host: "satellite.example.net"))
        #expect(response.status == 307)
        #expect(response.header("cache-control") == "no-store")
        #expect(response.header("x-clerk-auth-status") == "handshake")  // Clerk's AuthStatus.Handshake
        #expect(response.header("x-clerk-auth-reason") == "satellite-needs-syncing")
        let location = response.header("location")
        #expect(location == "https://clerk.satellite.example.net/v1/client/handshake?redirect_url=https%3A%2F%2Fsatellite.example.net%2Fdashboard%3Ftab%3D2%26__clerk_synced%3Dfalse"
            + "&__clerk_api_version=2026-05-12&suffixed_cookies=false&__clerk_hs_reason=satellite-needs-syncing&format=nonce")
        let url = try Self.parts(location)
        #expect(url.scheme == "https")
        #expect(url.host == "clerk.satellite.example.net")  // not the primary's clerk.example.com from the key
        #expect(url.path == "/v1/client/handshake")
        #expect(url.names == ["redirect_url", "__clerk_api_version", "suffixed_cookies", "__clerk_hs_reason", "format"])
        #expect(url.query["redirect_url"] == "https://satellite.example.net/dashboard?tab=2&__clerk_synced=false")
        #expect(url.query["__clerk_api_version"] == "2026-05-12")
        #expect(url.query["suffixed_cookies"] == "false")
        #expect(url.query["__clerk_hs_reason"] == "satellite-needs-syncing")
        #expect(url.query["format"] == "nonce")
        #expect(response.headers.contains { $0.0.lowercased() == "set-cookie" && $0.1 == "__clerk_redirect_count=1; SameSite=Lax; HttpOnly; Max-Age=2" })
        #expect(gateway.upstream.targets.withLock { $0.isEmpty })
    }

    @Test func anonymousFirstVisitIsSentToThePrimarysSignInWithSyncedFalse() async throws {
        // Clerk (satelliteAutoSync off): no cookies and no __clerk_synced=false → signed out, no sync round trip.
        let gateway = try await Self.satellite(extra: "public_origin: https://satellite.example.net")
        defer { Task { await gateway.stop() } }
        let c = try gateway.client()
        let response = try #require(c.request("GET", "/dashboard?tab=2", headers: Self.page, host: "satellite.example.net"))
        #expect(response.status == 307)
        #expect(response.header("cache-control") == "no-store")
        #expect(response.header("x-clerk-auth-reason") == "session-token-and-uat-missing")
        let location = response.header("location")
        #expect(location == "https://primary.example.org/sign-in?redirect_url=https%3A%2F%2Fsatellite.example.net%2Fdashboard%3Ftab%3D2%26__clerk_synced%3Dfalse")
        let url = try Self.parts(location)
        #expect(url.host == "primary.example.org")
        #expect(url.path == "/sign-in")
        #expect(url.names == ["redirect_url"])
        #expect(url.query["redirect_url"] == "https://satellite.example.net/dashboard?tab=2&__clerk_synced=false")
        // Already synced: no second round trip, the same sign-in (the flag is set to false, not appended).
        let synced = try #require(c.request("GET", "/dashboard?__clerk_synced=true", headers: Self.page, host: "satellite.example.net"))
        #expect(synced.header("location") == "https://primary.example.org/sign-in?redirect_url=https%3A%2F%2Fsatellite.example.net%2Fdashboard%3F__clerk_synced%3Dfalse")
        #expect(synced.header("x-clerk-auth-reason") == "session-token-and-uat-missing")
    }

    // MARK: 2. The round trip through the Frontend API

    @Test func syncWithASignedInClientComesBackSignedIn() async throws {
        let standIn = try await FrontendAPIStandIn(development: false)
        let gateway = try await Self.satellite(frontendAPI: standIn.origin)
        defer { Task { await gateway.stop(); await standIn.stop() } }
        let browser = MiniBrowser()
        let start = "http://127.0.0.1:\(gateway.port)/dashboard?__clerk_synced=false"
        let hops = try await browser.navigate(start)
        #expect(hops.map(\.response.status) == [307, 307, 200])
        #expect(hops.map(\.port) == [gateway.port, standIn.port, gateway.port])
        #expect(hops[0].response.header("x-clerk-auth-reason") == "satellite-needs-syncing")
        let query = try #require(standIn.lastHandshake)
        #expect(query.map(\.name) == ["redirect_url", "__clerk_api_version", "suffixed_cookies", "__clerk_hs_reason", "format"])
        #expect(query.map(\.value) == [start, "2026-05-12", "false", "satellite-needs-syncing", "nonce"])
        // Back with the handshake cookie: served signed in, with the session cookies for the satellite.
        #expect(hops[2].target == "/dashboard?__clerk_synced=false")
        #expect(userId(hops[2].response) == "user_returning")
        #expect(hops[2].response.headers.contains { $0.0.lowercased() == "set-cookie" && $0.1.hasPrefix("__session=ey") })
        // From now on the satellite's own cookies suffice: no round trip.
        let next = try await browser.navigate("http://127.0.0.1:\(gateway.port)/dashboard")
        #expect(next.map(\.response.status) == [200])
        #expect(next.first.flatMap { userId($0.response) } == "user_returning")
        #expect(standIn.handshakeRequests.withLock { $0.count } == 1)
    }

    @Test func syncWithoutASessionEndsAtThePrimarysSignInWithSyncedFalse() async throws {
        let standIn = try await FrontendAPIStandIn(development: false)
        standIn.update { $0.clientUser = nil }  // the primary has nobody signed in
        let gateway = try await Self.satellite(frontendAPI: standIn.origin)
        defer { Task { await gateway.stop(); await standIn.stop() } }
        let hops = try await MiniBrowser().navigate("http://127.0.0.1:\(gateway.port)/dashboard?tab=1&__clerk_synced=false")
        #expect(hops.map(\.response.status) == [307, 307, 307])
        #expect(hops.map(\.port) == [gateway.port, standIn.port, gateway.port])
        let last = hops[2].response
        #expect(last.header("x-clerk-auth-status") == "signed-out")
        #expect(last.header("x-clerk-auth-reason") == "session-token-missing")
        #expect(last.header("cache-control") == "no-store")
        let location = last.header("location")
        #expect(location == "https://primary.example.org/sign-in?redirect_url=http%3A%2F%2F127.0.0.1%3A\(gateway.port)%2Fdashboard%3Ftab%3D1%26__clerk_synced%3Dfalse")
        let url = try Self.parts(location)
        #expect(url.host == "primary.example.org")
        #expect(url.path == "/sign-in")
        #expect(url.names == ["redirect_url"])
        #expect(url.query["redirect_url"] == "http://127.0.0.1:\(gateway.port)/dashboard?tab=1&__clerk_synced=false")
        // The handshake's sign-out directives reach the browser with the redirect.
        #expect(last.headers.contains { $0.0.lowercased() == "set-cookie" && $0.1 == "__session=; Path=/; Max-Age=0" })
        #expect(gateway.upstream.targets.withLock { $0.isEmpty })
        #expect(standIn.handshakeRequests.withLock { $0.count } == 1)
    }

    // MARK: 3. Non-page requests never sync

    @Test func apiCallsOnTheSatelliteAre401NeverASync() async throws {
        let standIn = try await FrontendAPIStandIn(development: false)
        let gateway = try await Self.satellite(frontendAPI: standIn.origin)
        defer { Task { await gateway.stop(); await standIn.stop() } }
        let c = try gateway.client()
        let variants: [[(String, String)]] = [
            [("Accept", "application/json")],
            [("Accept", "application/json"), ("Sec-Fetch-Dest", "empty")],
            // A POST from a page is not a page load either.
            [("Accept", "text/html"), ("Sec-Fetch-Dest", "document"), ("Origin", "http://127.0.0.1:\(gateway.port)")],
        ]
        for (i, headers) in variants.enumerated() {
            let method = i == 2 ? "POST" : "GET"
            let response = try #require(c.request(method, "/echo/data?__clerk_synced=false", headers: headers, body: method == "POST" ? "x=1" : nil,
                                                  host: "127.0.0.1:\(gateway.port)"))
            #expect(response.status == 401, "variant \(i)")
            #expect(response.header("location") == nil, "variant \(i)")
            #expect(response.header("www-authenticate") == "Bearer realm=\"gatehouse\"", "variant \(i)")
            #expect(response.text.contains("\"unauthenticated\""), "variant \(i)")
            #expect(!response.headers.contains { $0.0.lowercased() == "set-cookie" }, "variant \(i)")
        }
        // A page load on the same route does sync: the requests above were refused for what they are.
        let page = try #require(c.request("GET", "/echo/data?__clerk_synced=false", headers: Self.page, host: "127.0.0.1:\(gateway.port)"))
        #expect(page.status == 307)
        #expect(page.header("x-clerk-auth-reason") == "satellite-needs-syncing")
        #expect(standIn.handshakeRequests.withLock { $0.count } == 0)
        #expect(gateway.upstream.targets.withLock { $0.isEmpty })
    }

    // MARK: 4. The loop guard

    @Test func aSyncThatNeverSignsInStopsAfterThreeRoundTrips() async throws {
        let standIn = try await FrontendAPIStandIn(development: false)
        standIn.update { $0.signer = Fixtures.otherIssuer }  // a handshake the satellite cannot verify
        let gateway = try await Self.satellite(frontendAPI: standIn.origin)
        defer { Task { await gateway.stop(); await standIn.stop() } }
        let hops = try await MiniBrowser().navigate("http://127.0.0.1:\(gateway.port)/dashboard?__clerk_synced=false", maxHops: 12)
        #expect(standIn.handshakeRequests.withLock { $0.count } == 3)
        let gatewayHops = hops.filter { $0.port == gateway.port }
        #expect(gatewayHops.count == 4)
        #expect(gatewayHops.prefix(3).map { $0.response.header("x-clerk-auth-reason") } == Array(repeating: "satellite-needs-syncing", count: 3))
        #expect(gatewayHops.prefix(3).map { $0.response.headers.first { $0.0.lowercased() == "set-cookie" && $0.1.hasPrefix("__clerk_redirect_count=") }?.1 }
            == (1...3).map { "__clerk_redirect_count=\($0); SameSite=Lax; HttpOnly; Max-Age=2" })
        let last = try #require(gatewayHops.last)
        #expect(last.response.status == 307)
        #expect(last.response.header("x-clerk-auth-reason") == "satellite-needs-syncing")
        #expect(last.response.header("location") == "https://primary.example.org/sign-in?redirect_url=http%3A%2F%2F127.0.0.1%3A\(gateway.port)%2Fdashboard%3F__clerk_synced%3Dfalse")
        #expect(!hops.contains { $0.response.status == 200 })
        #expect(gateway.upstream.targets.withLock { $0.isEmpty })
    }
}

/// The decision behind `syncWithASignedInClientComesBackSignedIn`'s second page load, for both instance kinds:
/// a satellite browser with its own cookies and no `__clerk_synced=false` is decided by those cookies
/// (clerk-protocol.md §3.4 rule 2, "cookies present and no needsSync → fall through"), not sent to sync again.
@Suite struct SatelliteCookieDecisionTests {
    let page: [(String, String)] = [("Sec-Fetch-Dest", "document"), ("Accept", "text/html")]
    var cookie: (String, String) { ("Cookie", "__session=\(Fixtures.token("user_1")); __client_uat=\(Int(Fixtures.now) - 100); __clerk_db_jwt=dvb_1") }

    @Test(arguments: [BrowserSessionTests.livePK, BrowserSessionTests.testPK])
    func aSatelliteWithItsOwnSessionIsSignedInWithoutSyncing(pk: String) async throws {
        let g = try Fixtures.gatekeeper("""
            clerk: { publishable_key: \(pk), jwks_file: jwks.json, satellite: true, domain: satellite.example.net }
            sign_in_url: https://primary.example.org/sign-in
            """)
        let signedIn = await g.evaluate("/dashboard", headers: [cookie] + page)
        #expect(signedIn.auth?.status == .signedIn)
        #expect(signedIn.decision.status == 200)
        #expect(signedIn.decision.location == nil)
        // Asked to sync (back from the primary's sign-in), it syncs even with cookies.
        let asked = await g.evaluate("/dashboard?__clerk_synced=false", headers: [cookie] + page)
        #expect(asked.auth?.reason == "satellite-needs-syncing")
        #expect(asked.decision.status == 307)
    }
}
