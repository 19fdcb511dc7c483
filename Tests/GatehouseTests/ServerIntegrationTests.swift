import Foundation
@testable import GatehouseAuth
import GatehouseConfig
@testable import GatehouseCore
import GatehouseDevIssuer
import GatehouseFetch
@testable import GatehouseServer
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

/// A gateway and an upstream on 127.0.0.1 (ports picked by the OS), with the config written to a file so
/// reloads can be tested.
final class GatewayHarness: @unchecked Sendable {
    let upstream: TestUpstream
    let state: GatewayState
    let server: GatewayServer
    let directory: URL
    let configPath: String
    private let stopOnce = StopOnce()

    var port: Int { server.publicAddress!.port! }
    var adminPort: Int { server.adminAddress!.port! }

    static func config(upstreamPort: Int, extra: String = "", routes: String = GatewayHarness.defaultRoutes) -> String {
        """
        listen: "127.0.0.1:0"
        upstream: "http://127.0.0.1:\(upstreamPort)"
        admin: { listen: "127.0.0.1:0" }
        access_log: off
        trusted_proxies: ["10.9.9.9"]
        server: { threads: 1, header_timeout: 1s, idle_timeout: 5s }
        proxy: { response_timeout: 1s, connect_timeout: 1s }
        clerk:
          publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k
          jwks_file: jwks.json
        sign_in_url: /sign-in
        identity_headers: { claims: { "X-User-Email": "email" }, strip: ["Remote-User"] }
        \(extra)
        routes:
        \(routes)
        default: protected
        """
    }

    static let defaultRoutes = """
          - { name: public, match: ["/", "/public(.*)", "/slow", "/download", "/upload"], access: public }
          - { name: admin, match: ["/admin(.*)"], require: { claims: { "metadata.role": "admin" } } }
          - { name: org-admin, match: ["/orgs/:slug/settings(.*)"], require: { org_role: "org:admin" } }
          - { name: app, match: ["/dashboard(.*)", "/echo(.*)"] }
        """

    init(extra: String = "", routes: String = GatewayHarness.defaultRoutes, upstream existing: TestUpstream? = nil,
         configure: ((String) -> String)? = nil) async throws {
        let upstream: TestUpstream
        if let existing { upstream = existing } else { upstream = try await TestUpstream() }
        self.upstream = upstream
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-e2e-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data(Fixtures.issuer.jwks.serialized().utf8).write(to: directory.appendingPathComponent("jwks.json"))
        configPath = directory.appendingPathComponent("gatehouse.yaml").path
        var yaml = GatewayHarness.config(upstreamPort: upstream.port, extra: extra, routes: routes)
        if let configure { yaml = configure(yaml) }
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
        let settings = try ConfigLoader.load(path: configPath, environment: [:])
        state = await GatewayState(configPath: configPath, settings: settings, makeSource: { url, bearer in HTTPJWKSSource(url: url, bearer: bearer) })
        server = GatewayServer(state: state)
        try await server.start()
        ServerRegistry.register { [self] in await self.stop() }
    }

    func stop(gracePeriod: Double = 1) async {
        await stopOnce.run { [server, upstream] in
            await server.shutdown(gracePeriod: gracePeriod)
            await upstream.stop()
        }
    }

    func client() throws -> RawClient { try RawClient(port: port) }
}

func bearer(_ token: String) -> (String, String) { ("Authorization", "Bearer " + token) }

@Suite(.serialized, .stopsServers) struct ServerIntegrationTests {
    let member = Fixtures.token("user_member", org: ("org_1", "acme", "org:member", []), extra: ["email": "m@example.com"])
    let orgAdmin = Fixtures.token("user_oa", org: ("org_1", "acme", "org:admin", []))
    let admin = Fixtures.token("user_admin", extra: ["metadata": ["role": "admin"]])

    /// Fixture tokens are issued at a fixed time; the daemon uses the real clock, so mint fresh ones.
    static func fresh(_ userId: String, org: (id: String, slug: String, role: String, permissions: [String])? = nil, extra: JSONObject = [:]) -> String {
        Fixtures.token(userId, iat: Date().timeIntervalSince1970.rounded(.down), org: org, extra: extra)
    }

    @Test func routesDecideOverRealSockets() async throws {
        let h = try await GatewayHarness()
        defer { Task { await h.stop() } }
        let c = try h.client()
        let member = Self.fresh("user_member", org: ("org_1", "acme", "org:member", []), extra: ["email": "m@example.com"])
        let orgAdmin = Self.fresh("user_oa", org: ("org_1", "acme", "org:admin", []))
        let admin = Self.fresh("user_admin", extra: ["metadata": ["role": "admin"]])

        #expect(c.request("GET", "/public/x")?.status == 200)
        #expect(c.request("GET", "/dashboard", headers: [("Accept", "application/json")])?.status == 401)
        let redirect = c.request("GET", "/dashboard?a=1", headers: [("Accept", "text/html")])
        #expect(redirect?.status == 307)
        #expect(redirect?.header("location") == "/sign-in?redirect_url=http%3A%2F%2Fapp.example.com%2Fdashboard%3Fa%3D1")
        #expect(c.request("GET", "/admin", headers: [bearer(member)])?.status == 403)
        #expect(c.request("GET", "/admin/x", headers: [bearer(admin)])?.status == 200)
        #expect(c.request("GET", "/orgs/acme/settings", headers: [bearer(orgAdmin)])?.status == 200)
        #expect(c.request("GET", "/orgs/acme/settings", headers: [bearer(member)])?.status == 403)
        let cookie = c.request("GET", "/echo", headers: [("Cookie", "__session=\(member); __client_uat=1")])
        #expect(cookie?.status == 200)
        // A refused request ends its connection: each on its own.
        #expect(try h.client().request("GET", "/admin%2Fx", headers: [bearer(admin)])?.status == 400)
        #expect(try h.client().request("GET", "/public/..;/admin")?.status == 400)
    }

    @Test func identityHeadersArriveAndSpoofedOnesDoNot() async throws {
        let h = try await GatewayHarness()
        defer { Task { await h.stop() } }
        let c = try h.client()
        let member = Self.fresh("user_member", org: ("org_1", "acme", "org:member", []), extra: ["email": "m@example.com"])
        let spoofs = [
            ("X-Gatehouse-User-Id", "user_admin"), ("X_Gatehouse_User_Id", "user_admin"), ("x.gatehouse.org.role", "org:admin"),
            ("X-GATEHOUSE-ORG-ID", "org_evil"), ("X-User-Email", "ceo@example.com"), ("x_user_email", "ceo@example.com"),
            ("Remote-User", "admin"), ("X-Clerk-Auth-Status", "signed-in"), ("X-Forwarded-For", "1.2.3.4"),
            ("X-Forwarded-Host", "evil.com"), ("X-Original-URL", "/admin"), ("Connection", "X-Forwarded-For"),
        ]
        let response = try #require(c.request("GET", "/echo/x?q=1", headers: [bearer(member)] + spoofs))
        let headers = try #require(response.json?.objectValue?["headers"]?.objectValue)
        #expect(headers["x-gatehouse-user-id"] == ["user_member"])
        #expect(headers["x-gatehouse-org-role"] == ["org:member"])
        #expect(headers["x-gatehouse-org-id"] == ["org_1"])
        #expect(headers["x-user-email"] == ["m@example.com"])
        #expect(headers["remote-user"] == nil)
        #expect(headers["x-clerk-auth-status"] == nil)
        #expect(headers["x_gatehouse_user_id"] == nil)
        #expect(headers["x.gatehouse.org.role"] == nil)
        #expect(headers["x-original-url"] == nil)
        #expect(headers["x-forwarded-for"] == ["127.0.0.1"])
        #expect(headers["x-forwarded-host"] == ["app.example.com"])
        #expect(headers["via"] == ["1.1 gatehouse"])
        #expect(headers["x-request-id"]?.arrayValue?.count == 1)
        #expect(response.json?.objectValue?["uri"] == "/echo/x?q=1")
        // The look-alike spelled with underscores is gone, not merged into X-User-Email.
        #expect(headers["x_user_email"] == nil)
        #expect(headers.keys.filter { $0.lowercased().replacingOccurrences(of: "_", with: "-") == "x-user-email" } == ["x-user-email"])
        // X-Request-Id on Gatehouse's own responses (and from trusted proxies): TrustedProxyTests.
    }

    @Test func canonicalPathIsWhatTheUpstreamReceives() async throws {
        let h = try await GatewayHarness()
        defer { Task { await h.stop() } }
        let c = try h.client()
        let member = Self.fresh("user_member")
        let response = c.request("GET", "/public/%2e%2e/echo//a/./b/%7Euser?x=%2F", headers: [bearer(member)])
        #expect(response?.json?.objectValue?["uri"] == "/echo/a/b/~user?x=%2F")
    }

    @Test func keepAliveReusesOneUpstreamConnection() async throws {
        let h = try await GatewayHarness()
        defer { Task { await h.stop() } }
        let c = try h.client()
        for _ in 0..<5 { #expect(c.request("GET", "/public/x")?.status == 200) }
        let c2 = try h.client()
        for _ in 0..<3 { #expect(c2.request("GET", "/public/y")?.status == 200) }
        #expect(h.upstream.connections.load(ordering: .relaxed) == 1)
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        let h = try await GatewayHarness()
        defer { Task { await h.stop() } }
        let c = try h.client()
        c.send("GET /echo/1 HTTP/1.1\r\nHost: a\r\n\r\nGET /public/2 HTTP/1.1\r\nHost: a\r\n\r\nGET /echo/3 HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(c.readResponse()?.0.status == 401)
        #expect(c.readResponse()?.0.status == 200)
        #expect(c.readResponse()?.0.status == 401)
    }

    @Test func pipelinedProxiedRequestsWithBodiesKeepTheirOrderAndAMalformedOneEndsTheConnection() async throws {
        let h = try await GatewayHarness()
        defer { Task { await h.stop() } }
        let c = try h.client()
        // A slow response first, so the others are read while it is still going out.
        c.send("GET /slow?ms=200 HTTP/1.1\r\nHost: a\r\n\r\n"
            + "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
            + "GET /public/third HTTP/1.1\r\nHost: a\r\n\r\n"
            + "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
            + "GET /public/fifth HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(c.readResponse()?.0.text.contains("\"slow\":200") == true)
        #expect(c.readResponse(method: "POST")?.0.text.contains("\"received\":5") == true)
        #expect(c.readResponse()?.0.json?.objectValue?["uri"] == .string("/public/third"))
        #expect(c.readResponse(method: "POST")?.0.text.contains("\"received\":3") == true)
        #expect(c.readResponse()?.0.json?.objectValue?["uri"] == .string("/public/fifth"))
        // Still usable afterwards.
        #expect(c.request("GET", "/public/after")?.status == 200)

        // Garbage behind a valid request: the valid one is answered in full, then 400, then the connection closes.
        let d = try h.client()
        d.send("GET /slow?ms=100 HTTP/1.1\r\nHost: a\r\n\r\nGET /public/x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nGARBAGE\r\n\r\n")
        #expect(d.readResponse()?.0.text.contains("\"slow\":100") == true)
        let second = d.readResponse()?.0
        #expect(second?.status == 400)
        #expect(d.isClosedByPeer())
        // Bytes that are not HTTP at all behind a valid request: same, the parser's error waits its turn.
        let e = try h.client()
        e.send("GET /slow?ms=100 HTTP/1.1\r\nHost: a\r\n\r\n\u{01}\u{02} not http\r\n\r\n")
        #expect(e.readResponse()?.0.text.contains("\"slow\":100") == true)
        #expect(e.readResponse()?.0.status == 400)
        #expect(e.isClosedByPeer())
    }

    @Test func aProxiedBodyThatStopsComingIsCutOffAtTheBodyTimeout() async throws {
        let gateway = try await GatewayHarness { yaml in
            yaml.replacingOccurrences(of: "server: { threads: 1, header_timeout: 1s, idle_timeout: 5s }",
                                      with: "server: { threads: 1, header_timeout: 1s, idle_timeout: 5s, body_timeout: 1s }")
        }
        defer { Task { await gateway.stop() } }
        // A steady sender slower than the timeout in total, but never pausing for that long, gets through.
        let steady = try gateway.client()
        steady.send("POST /upload HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 6\r\n\r\n")
        for _ in 0..<6 {
            // Blocking, like the client itself: an awaited sleep may resume late when other tests hold the
            // (two) cooperative threads in blocking socket reads.
            usleep(250_000)  // 1.5 s in all, never 1 s without data
            steady.send("x")
        }
        let done = try #require(steady.readResponse(method: "POST")?.0)
        #expect(done.status == 200)
        #expect(done.text.contains("\"received\":6"))
        // A sender that stops: 408 and the connection is closed, well before the upstream's response timeout.
        let stalled = try gateway.client()
        let started = Date()
        stalled.send("POST /upload HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 10\r\n\r\nabc")
        let cut = try #require(stalled.readResponse(method: "POST")?.0)
        #expect(cut.status == 408)
        #expect(Date().timeIntervalSince(started) > 0.9)
        #expect(Date().timeIntervalSince(started) < 3)
        #expect(stalled.isClosedByPeer())
    }

    @Test func expectContinueIsAnsweredOnlyForAllowedRequests() async throws {
        let gateway = try await GatewayHarness()
        defer { Task { await gateway.stop() } }
        // Allowed: 100 Continue comes at once, then the body goes through.
        let c = try gateway.client()
        c.send("POST /upload HTTP/1.1\r\nHost: app.example.com\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        let started = Date()
        let interim = try #require(c.readResponse(method: "POST")?.0)
        #expect(interim.status == 100)
        #expect(Date().timeIntervalSince(started) < 3, "100 Continue came only after a wait for the body")
        c.send("hello")
        let final = try #require(c.readResponse(method: "POST")?.0)
        #expect(final.status == 200)
        #expect(final.text.contains("\"received\":5"))
        // Refused: no 100 Continue, the denial straight away (the body is never invited).
        let d = try gateway.client()
        d.send("POST /dashboard HTTP/1.1\r\nHost: app.example.com\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        #expect(d.readResponse(method: "POST")?.0.status == 401)
    }

    @Test(arguments: [
        "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1,1\r\n\r\nx",
        "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
        "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello",
        "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
        "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        "GET /public HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n  continued\r\n\r\n",
        "GET /public HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET /public HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n",
        "GET http:app/admin HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /pub\u{1}lic HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /public HTTP/2.0\r\nHost: a\r\n\r\n",
        "GET /public HTTP/0.9\r\nHost: a\r\n\r\n",
        "GET /public HTTP/3.0\r\nHost: a\r\n\r\n",
        // RFC 9112 §3.2: HTTP/1.1 without Host is a 400 (it used to be forwarded).
        "GET /public HTTP/1.1\r\n\r\n",
        "GET /public HTTP/1.1\r\nX-A: b\r\n\r\n",
        // Framing look-alikes that servers mapping `_` to `-` would obey (they used to travel upstream).
        "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer_Encoding: chunked\r\n\r\nhello",
        "POST /upload HTTP/1.1\r\nHost: a\r\nContent_Length: 5\r\n\r\nhello",
        "GET /public HTTP/1.1\r\nHost: a\r\nProxy_Connection: close\r\n\r\n",
        "GET /public HTTP/1.1\r\nHost: a\r\nKeep_Alive: 5\r\n\r\n",
    ])
    func smugglingAndMalformedRequestsAreRefusedAndClosed(raw: String) async throws {
        let h = try await GatewayHarness()
        defer { Task { await h.stop() } }
        let c = try h.client()
        // Every payload carries a second, valid request behind it: if the gateway kept reading, the upstream
        // would see it and a second response would come back.
        c.send(raw + "GET /public/smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
        let response = try #require(c.readResponse()?.0, "no response at all")
        // A well-formed version other than 1.x is 505 on the new data plane (RFC 9110 §15.6.6), 400 on NIO's.
        // A transfer coding other than exactly `chunked` is 501 there (RFC 9112 §6.1).
        let versionRefused = raw.hasPrefix("GET /public HTTP/") && !raw.hasPrefix("GET /public HTTP/1.")
        let codingRefused = raw.contains("Transfer-Encoding: ") && !raw.contains("Transfer-Encoding: chunked\r\n")
        #expect(response.status == 400 || (versionRefused && response.status == 505) || (codingRefused && response.status == 501))
        #expect(response.header("connection")?.lowercased() == "close")
        #expect(c.isClosedByPeer(), "the connection stayed open after a request that could be read two ways")
        #expect(c.unread.isEmpty, "bytes after the 400: \(c.unread)")
        // Give a late forward a moment to show up before looking.
        try await Task.sleep(for: .milliseconds(50))
        #expect(!h.upstream.targets.withLock { $0 }.contains { $0.contains("smuggled") })
        #expect(h.upstream.targets.withLock { $0 }.isEmpty, "the upstream saw \(h.upstream.targets.withLock { $0 })")
    }

    /// Other names with `_` are passed on (Gatehouse strips look-alikes of its own identity headers
    /// separately); HTTP/1.0 needs no Host. Both are served.
    @Test func underscoreNamesAndHostlessHTTP10AreServed() async throws {
        let h = try await GatewayHarness()
        defer { Task { await h.stop() } }
        let c = try h.client()
        c.send("GET /public/u HTTP/1.1\r\nHost: a\r\nX_Custom_Thing: 1\r\nHOST_: b\r\n\r\n")
        #expect(c.readResponse()?.0.status == 200)
        let old = try h.client()
        old.send("GET /public/old HTTP/1.0\r\n\r\n")
        #expect(old.readResponse()?.0.status == 200)
    }

    /// An upgrade Gatehouse does not carry out (`h2c`, as `curl --http2` asks): answered as HTTP/1.1 with
    /// `Connection: close`, then closed. It used to be answered and then never read again (the client hung).
    @Test func anUpgradeOtherThanWebSocketIsAnsweredAndTheConnectionClosed() async throws {
        let h = try await GatewayHarness()
        defer { Task { await h.stop() } }
        let c = try h.client()
        c.send("GET /public/h2c HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
            + "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\nGET /public/after HTTP/1.1\r\nHost: a\r\n\r\n")
        let response = try #require(c.readResponse()?.0, "no answer to the h2c request")
        #expect(response.status == 200)
        #expect(response.header("connection")?.lowercased() == "close")
        #expect(response.header("upgrade") == nil)
        #expect(c.isClosedByPeer(), "the connection was left open and unread")
        try await Task.sleep(for: .milliseconds(50))
        let targets = h.upstream.targets.withLock { $0 }
        #expect(targets == ["/public/h2c"], "the upstream saw \(targets)")
    }

    @Test func oversizedHeadsGet431() async throws {
        let h = try await GatewayHarness()
        defer { Task { await h.stop() } }
        let c = try h.client()
        c.send("GET /public HTTP/1.1\r\nHost: a\r\nX-Big: \(String(repeating: "a", count: 40_000))\r\n\r\n")
        #expect(c.readResponse()?.0.status == 431)
        #expect(c.isClosedByPeer())
        let many = try h.client()
        many.send("GET /public HTTP/1.1\r\nHost: a\r\n" + (0..<150).map { "X-H\($0): v\r\n" }.joined() + "\r\n")
        #expect(many.readResponse()?.0.status == 431)
    }

    @Test func slowlorisIsCutOffAtTheHeaderTimeout() async throws {
        let h = try await GatewayHarness()
        defer { Task { await h.stop() } }
        let c = try RawClient(port: h.port, timeout: 5)
        let start = Date()
        c.send("GET /public HTTP/1.1\r\nHost: a\r\n")
        #expect(c.isClosedByPeer())
        let elapsed = Date().timeIntervalSince(start)
        #expect(elapsed >= 0.9 && elapsed < 3, "closed after \(elapsed)s; header_timeout is 1s")
    }

    @Test func upstreamDownIs502AndSlowIs504WithoutStallingOthers() async throws {
        let refusing = UnreachableUpstream(.refusing)
        let h = try await GatewayHarness(routes: """
              - { name: public, match: ["/public(.*)", "/slow"], access: public }
              - { name: dead, match: ["/dead(.*)"], access: public, upstream: "http://127.0.0.1:\(refusing.port)" }
            """)
        defer { Task { await h.stop() } }
        let dead = try #require(try h.client().request("GET", "/dead"))
        #expect(dead.status == 502)
        #expect(dead.text.contains("upstream_unavailable"))
        let slowAnswered = Atomic<Bool>(false)
        async let slow: Int? = Task.detached {
            defer { slowAnswered.store(true, ordering: .sequentiallyConsistent) }
            return try? RawClient(port: h.port).request("GET", "/slow?ms=3000")?.status
        }.value
        // The slow request is at the upstream (in flight) before the fast one starts, and the fast one is answered
        // while the slow one still waits for its 504 (order, not a time bound: this machine may be loaded).
        try #require(await h.upstream.received("/slow?ms=3000"), "the slow request never reached the upstream")
        #expect(try h.client().request("GET", "/public/fast")?.status == 200)
        let slowAnsweredFirst = slowAnswered.load(ordering: .sequentiallyConsistent)
        #expect(!slowAnsweredFirst, "the fast request waited for the slow one")
        #expect(await slow == 504)
        #expect(try h.client().request("GET", "/public/after")?.status == 200)
        let metrics = try RawClient(port: h.adminPort).request("GET", "/metrics")?.text ?? ""
        #expect(metrics.contains("gatehouse_upstream_errors_total{kind=\"connect_failed\"} 1"), "\(metrics)")
        #expect(metrics.contains("gatehouse_upstream_errors_total{kind=\"timeout\"} 1"), "\(metrics)")
        withExtendedLifetime(refusing) {}
    }

    @Test func anUpstreamThatCannotBeReachedInTheConnectTimeoutIs504() async throws {
        let hanging = UnreachableUpstream(.hanging)
        let h = try await GatewayHarness(routes: """
              - { name: stuck, match: ["/stuck(.*)"], access: public, upstream: "http://127.0.0.1:\(hanging.port)" }
              - { name: public, match: ["/public(.*)"], access: public }
            """)  // connect_timeout: 1s, response_timeout: 1s
        defer { Task { await h.stop() } }
        let start = Date()
        let stuck = try #require(try h.client().request("GET", "/stuck"))
        let elapsed = Date().timeIntervalSince(start)
        #expect(stuck.status == 504)
        #expect(stuck.text.contains("upstream_timeout"))
        #expect(stuck.text.contains("could not be reached"))
        #expect(elapsed >= 0.9 && elapsed < 3, "answered after \(elapsed)s; connect_timeout is 1s")
        #expect(try h.client().request("GET", "/public/x")?.status == 200)
        let metrics = try RawClient(port: h.adminPort).request("GET", "/metrics")?.text ?? ""
        #expect(metrics.contains("gatehouse_upstream_errors_total{kind=\"connect_timeout\"} 1"), "\(metrics)")
        withExtendedLifetime(hanging) {}
    }

    @Test func largeBodiesStreamBothWaysInBoundedMemory() async throws {
        // The gateway runs as its own process so that its resident memory can be watched alone.
        let upstream = try await TestUpstream()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-mem-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data(Fixtures.issuer.jwks.serialized().utf8).write(to: directory.appendingPathComponent("jwks.json"))
        let yaml = GatewayHarness.config(upstreamPort: upstream.port)
            .replacingOccurrences(of: "admin: { listen: \"127.0.0.1:0\" }", with: "admin: { listen: \"127.0.0.1:{ADMIN_PORT}\" }")
            .replacingOccurrences(of: "listen: \"127.0.0.1:0\"", with: "listen: \"127.0.0.1:{PORT}\"")
            // The in-process upstream answers a 1 GiB upload when it has counted it: on a loaded machine (the
            // suite in parallel) that took longer than the harness's 1 s response timeout (a 504).
            .replacingOccurrences(of: "response_timeout: 1s", with: "response_timeout: 15s")
        let gateway = try GatewayProcess(yaml: yaml, directory: directory)
        defer { gateway.stop() }
        let size = 1024 * 1024 * 1024  // 1 GiB each way
        let baseline = gateway.residentBytes()
        // 0 means /proc could not be read: then every comparison below would pass on nothing.
        try #require(baseline > 1024 * 1024, "no resident-memory reading for the gateway (pid \(gateway.pid))")
        let peak = Atomic<Int>(baseline)
        let sampler = Task.detached {
            while !Task.isCancelled {
                peak.max(gateway.residentBytes())
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        let c = try RawClient(port: gateway.port, timeout: 60)
        c.send("GET /download?bytes=\(size) HTTP/1.1\r\nHost: a\r\n\r\n")
        let (download, received) = try #require(c.readResponse(discardBody: true))
        #expect(download.status == 200)
        #expect(received == size)
        let up = try RawClient(port: gateway.port, timeout: 60)
        up.send("POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
        let chunk = Array("10000\r\n".utf8) + [UInt8](repeating: UInt8(ascii: "y"), count: 65_536) + Array("\r\n".utf8)
        for _ in 0..<(size / 65_536) { up.send(chunk) }
        up.send("0\r\n\r\n")
        let upload = try #require(up.readResponse()?.0)
        #expect(upload.status == 200, "\(upload.text)")
        #expect(upload.json?.objectValue?["received"] == .number(JSONNumber(size)))
        sampler.cancel()
        #expect(peak.load(ordering: .relaxed) >= baseline)
        let grown = peak.load(ordering: .relaxed) - baseline
        #expect(grown < 32 * 1024 * 1024, "gateway resident memory grew by \(grown / 1_048_576) MiB while 2 GiB passed through")
        await upstream.stop()
    }

    /// A client that leaves mid-body (issue 11's soak: anyone could do it on a public route) takes the
    /// upstream connection with it: its half-sent request can never be completed or reused. They used to stay
    /// open for good, one per aborted upload.
    @Test(arguments: ["Content-Length: 100000\r\n\r\n" + String(repeating: "a", count: 1000),
                      "Transfer-Encoding: chunked\r\n\r\n3e8\r\n" + String(repeating: "a", count: 1000) + "\r\n186a0\r\nabc"])
    func aClientLeavingMidBodyClosesTheUpstreamConnection(framing: String) async throws {
        let h = try await GatewayHarness()
        defer { Task { await h.stop() } }
        for i in 0..<5 {
            let c = try h.client()
            c.send("POST /upload HTTP/1.1\r\nHost: a\r\n" + framing)
            // The request reached the upstream before the client left (counted, not sampled: a test thread
            // resumed late could miss a connection that was already gone).
            await eventually(within: 10) { h.upstream.connections.load(ordering: .relaxed) > i }
            #expect(h.upstream.connections.load(ordering: .relaxed) == i + 1)
            c.hangUp()
            #expect(await eventually(within: 10) { h.upstream.openConnections.load(ordering: .relaxed) == 0 },
                    "the upstream connection outlived the client")
        }
        #expect(h.upstream.connections.load(ordering: .relaxed) == 5)
        // The gateway still serves.
        #expect(try h.client().request("GET", "/public/after")?.status == 200)
    }

    @Test func maxBodyBytesIsEnforced() async throws {
        let h = try await GatewayHarness(extra: "") { $0.replacingOccurrences(of: "idle_timeout: 5s }", with: "idle_timeout: 5s, max_body_bytes: 1000 }") }
        defer { Task { await h.stop() } }
        #expect(try h.client().request("POST", "/upload", body: String(repeating: "a", count: 2000))?.status == 413)
        #expect(try h.client().request("POST", "/upload", body: String(repeating: "a", count: 500))?.status == 200)
    }

    @Test func forwardAuthAnswersTrustedProxiesOnly() async throws {
        let h = try await GatewayHarness { $0.replacingOccurrences(of: "trusted_proxies: [\"10.9.9.9\"]", with: "trusted_proxies: [\"127.0.0.1\"]") }
        defer { Task { await h.stop() } }
        let member = Self.fresh("user_member", org: ("org_1", "acme", "org:member", []))
        let c = try h.client()
        let allowed = try #require(c.request("GET", "/_gatehouse/auth", headers: [("X-Forwarded-Method", "GET"), ("X-Forwarded-Uri", "/dashboard"), bearer(member)]))
        #expect(allowed.status == 200)
        #expect(allowed.header("x-gatehouse-user-id") == "user_member")
        let denied = c.request("GET", "/_gatehouse/auth", headers: [("X-Forwarded-Method", "GET"), ("X-Forwarded-Uri", "/admin"), bearer(member)])
        #expect(denied?.status == 403)
        let anonymous = c.request("GET", "/_gatehouse/auth", headers: [("X-Original-URI", "/dashboard"), ("X-Original-Method", "GET"), ("Accept", "application/json")])
        #expect(anonymous?.status == 401)
        let missing = c.request("GET", "/_gatehouse/auth", headers: [bearer(member)])
        #expect(missing?.status == 403)
        #expect(h.upstream.connections.load(ordering: .relaxed) == 0)

        let untrusted = try await GatewayHarness()
        defer { Task { await untrusted.stop() } }
        let u = try untrusted.client().request("GET", "/_gatehouse/auth", headers: [("X-Forwarded-Uri", "/dashboard"), bearer(member)])
        #expect(u?.status == 403)
    }

    @Test func adminEndpointsLiveOnlyOnTheAdminListener() async throws {
        let h = try await GatewayHarness()
        defer { Task { await h.stop() } }
        let admin = try RawClient(port: h.adminPort)
        #expect(admin.request("GET", "/healthz")?.status == 200)
        #expect(try ReadinessTests.readyz(port: h.adminPort)?.text.hasPrefix("ready") == true)
        _ = try h.client().request("GET", "/public/x")
        let metrics = try #require(admin.request("GET", "/metrics"))
        #expect(metrics.text.contains("gatehouse_requests_total{route=\"public\",decision=\"proxy\",status=\"200\"} 1"))
        #expect(metrics.text.contains("gatehouse_signing_keys 1"))
        // On the public listener these are ordinary (protected, unmatched) paths, whatever the headers say.
        for path in ["/healthz", "/metrics", "/readyz"] {
            #expect(try h.client().request("GET", path, headers: [("User-Agent", "kube-probe/1.0"), ("Accept", "application/json")])?.status == 401)
        }
    }

    @Test func reloadSwapsConfigAndKeepsTheOldOneWhenBroken() async throws {
        let h = try await GatewayHarness()
        defer { Task { await h.stop() } }
        #expect(try h.client().request("GET", "/dashboard", headers: [("Accept", "application/json")])?.status == 401)
        let opened = GatewayHarness.config(upstreamPort: h.upstream.port, routes: "  - { name: open, match: [\"/dashboard(.*)\"], access: public }")
        try opened.write(toFile: h.configPath, atomically: true, encoding: .utf8)
        guard case .success(let next) = await h.state.reload(environment: [:]) else { Issue.record("reload failed"); return }
        #expect(next.generation == 2)
        #expect(try h.client().request("GET", "/dashboard")?.status == 200)
        try "routes: [ { name: broken, match: \"/x*\" } ]\n".write(toFile: h.configPath, atomically: true, encoding: .utf8)
        guard case .failure(let error) = await h.state.reload(environment: [:]) else { Issue.record("broken config was accepted"); return }
        #expect(error.issues.contains { $0.message.contains("/x*") })
        #expect(h.state.snapshot.generation == 2)
        #expect(try h.client().request("GET", "/dashboard")?.status == 200)
    }

    @Test func gracefulShutdownFinishesTheRequestInFlight() async throws {
        let h = try await GatewayHarness()
        let port = h.port
        let inFlight = Task.detached { try? RawClient(port: port).request("GET", "/slow?ms=500")?.status }
        try #require(await h.upstream.received("/slow?ms=500"), "the request never reached the upstream")
        let start = Date()
        await h.stop(gracePeriod: 5)
        #expect(await inFlight.value == 200)
        #expect(Date().timeIntervalSince(start) < 3)
        await h.upstream.stop()
    }

    @Test func jwksEndpointRotationOutageAndFlood() async throws {
        let upstream = try await TestUpstream()
        upstream.jwks.withLock { $0 = Fixtures.issuer.jwks.serialized() }
        let h = try await GatewayHarness(upstream: upstream) {
            $0.replacingOccurrences(of: "jwks_file: jwks.json", with: "jwks_url: http://127.0.0.1:\(upstream.port)/jwks\n  jwks_cooldown: 3s")
        }
        defer { Task { await h.stop() } }
        #expect(upstream.jwksFetches.load(ordering: .relaxed) == 1)
        let c = try h.client()
        #expect(c.request("GET", "/echo", headers: [bearer(Self.fresh("user_1"))])?.status == 200)

        // Flood of random kids: one fetch for the whole burst (which must fit in the cool-down on a loaded machine).
        for i in 0..<20 {
            let t = Fixtures.token(iat: Date().timeIntervalSince1970.rounded(.down), header: ["kid": .string("random-\(i)")])
            #expect(c.request("GET", "/echo", headers: [bearer(t), ("Accept", "application/json")])?.status == 401)
        }
        #expect(upstream.jwksFetches.load(ordering: .relaxed) == 2)

        // Rotation: the new key is picked up by the next unknown-kid fetch after the cool-down.
        upstream.jwks.withLock { $0 = Fixtures.rotatedIssuer.jwks.serialized() }
        try await Task.sleep(for: .milliseconds(3100))
        let rotated = Fixtures.token("user_r", issuer: Fixtures.rotatedIssuer, iat: Date().timeIntervalSince1970.rounded(.down))
        #expect(c.request("GET", "/echo", headers: [bearer(rotated)])?.status == 200)
        #expect(upstream.jwksFetches.load(ordering: .relaxed) == 3)

        // Outage: the source answers 503; the last good keys keep working.
        upstream.jwks.withLock { $0 = nil }
        await h.state.snapshot.keyStore.refresh()
        #expect(c.request("GET", "/echo", headers: [bearer(rotated)])?.status == 200)
        #expect(h.state.snapshot.keyStore.status.failures >= 1)
    }

    @Test func noKeysMeans503AndNotReady() async throws {
        let upstream = try await TestUpstream()
        let h = try await GatewayHarness(upstream: upstream) {
            $0.replacingOccurrences(of: "jwks_file: jwks.json", with: "jwks_url: http://127.0.0.1:\(upstream.port)/jwks")
        }
        defer { Task { await h.stop() } }
        let unavailable = try #require(try h.client().request("GET", "/echo", headers: [bearer(Self.fresh("user_1"))]))
        #expect(unavailable.status == 503)
        #expect(unavailable.header("retry-after") == "5")
        #expect(try RawClient(port: h.adminPort).request("GET", "/readyz")?.status == 503)
        #expect(try h.client().request("GET", "/public/x")?.status == 200)
    }
}

/// The real binary, driven by real signals.
@Suite(.serialized, .stopsServers) struct DaemonProcessTests {
    func start(_ upstream: TestUpstream, routes: String = GatewayHarness.defaultRoutes) throws -> (GatewayProcess, URL) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-proc-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data(Fixtures.issuer.jwks.serialized().utf8).write(to: directory.appendingPathComponent("jwks.json"))
        let yaml = Self.yaml(upstream.port, routes: routes)
        return (try GatewayProcess(yaml: yaml, directory: directory), directory)
    }

    static func yaml(_ upstreamPort: Int, routes: String) -> String {
        GatewayHarness.config(upstreamPort: upstreamPort, routes: routes)
            .replacingOccurrences(of: "admin: { listen: \"127.0.0.1:0\" }", with: "admin: { listen: \"127.0.0.1:{ADMIN_PORT}\" }")
            .replacingOccurrences(of: "listen: \"127.0.0.1:0\"", with: "listen: \"127.0.0.1:{PORT}\"")
    }

    @Test func sighupReloadsAGoodConfigAndKeepsTheOldOneOnABrokenOne() async throws {
        let upstream = try await TestUpstream()
        let (gateway, _) = try start(upstream)
        defer { gateway.stop() }
        #expect(try RawClient(port: gateway.port).request("GET", "/dashboard", headers: [("Accept", "application/json")])?.status == 401)

        let opened = Self.yaml(upstream.port, routes: "  - { name: open, match: [\"/dashboard(.*)\"], access: public }")
            .replacingOccurrences(of: "{PORT}", with: String(gateway.port)).replacingOccurrences(of: "{ADMIN_PORT}", with: String(gateway.adminPort))
        try opened.write(toFile: gateway.configPath, atomically: true, encoding: .utf8)
        gateway.send(SIGHUP)
        var status: Int? = nil
        for _ in 0..<100 {
            status = try RawClient(port: gateway.port).request("GET", "/dashboard")?.status
            if status == 200 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(status == 200)

        #expect(try await Self.reloads(gateway, "success", reach: 1))

        // A broken file: counted as a failure, reported on stderr, and the old config keeps serving.
        try "routes: [ { name: broken, match: \"/x*\" } ]\n".write(toFile: gateway.configPath, atomically: true, encoding: .utf8)
        gateway.send(SIGHUP)
        #expect(try await Self.reloads(gateway, "failure", reach: 1), "the broken config's reload was never counted as failed")
        #expect(try RawClient(port: gateway.port).request("GET", "/dashboard")?.status == 200)

        // A valid file whose key source has no usable key (the JWKS URL answers 503): also refused.
        upstream.jwks.withLock { $0 = nil }
        let keyless = opened.replacingOccurrences(of: "jwks_file: jwks.json", with: "jwks_url: http://127.0.0.1:\(upstream.port)/jwks")
        try keyless.write(toFile: gateway.configPath, atomically: true, encoding: .utf8)
        gateway.send(SIGHUP)
        #expect(try await Self.reloads(gateway, "failure", reach: 2), "the keyless config's reload was never counted as failed")
        #expect(upstream.jwksFetches.load(ordering: .relaxed) >= 1)
        #expect(try RawClient(port: gateway.port).request("GET", "/dashboard")?.status == 200)
        #expect(try RawClient(port: gateway.port).request("GET", "/echo", headers: [bearer(ServerIntegrationTests.fresh("user_1"))])?.status == 200)
        #expect(try await Self.reloads(gateway, "success", reach: 1))
        #expect(gateway.process.isRunning)

        let (_, stderr) = gateway.stopAndCollectOutput()
        #expect(stderr.contains("\"msg\":\"reloaded\",\"config\":\"\(gateway.configPath)\",\"generation\":\"2\""), "\(stderr)")
        #expect(stderr.components(separatedBy: "reload failed, still serving the previous configuration").count == 3, "\(stderr)")
        #expect(stderr.contains("/x*"), "\(stderr)")
        #expect(stderr.contains("no usable key"), "\(stderr)")
        await upstream.stop()
    }

    /// Polls the admin metrics (up to 5 s) until `gatehouse_config_reloads_total{result}` equals `count`.
    static func reloads(_ gateway: GatewayProcess, _ result: String, reach count: Int) async throws -> Bool {
        let line = "gatehouse_config_reloads_total{result=\"\(result)\"} \(count)\n"
        for _ in 0..<250 {
            if try RawClient(port: gateway.adminPort).request("GET", "/metrics")?.text.contains(line) == true { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    @Test(arguments: [SIGTERM, SIGINT])
    func stopSignalFinishesInFlightRequestsAndExitsZero(signal: Int32) async throws {
        let upstream = try await TestUpstream()
        let (gateway, _) = try start(upstream)
        defer { gateway.stop() }
        let port = gateway.port
        let inFlight = Task.detached { try? RawClient(port: port).request("GET", "/slow?ms=600")?.status }
        try #require(await upstream.received("/slow?ms=600"), "the request never reached the upstream")
        gateway.send(signal)
        #expect(await inFlight.value == 200)
        #expect(gateway.waitForExit(timeout: 5) == 0)
        await upstream.stop()
    }
}

@Suite(.serialized, .stopsServers) struct WebSocketTests {
    static let upgrade = [("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13"),
                          ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")]

    @Test func authenticatedUpgradeIsTunnelledBothWays() async throws {
        let h = try await GatewayHarness(routes: "  - { name: ws, match: [\"/ws(.*)\"] }")
        defer { Task { await h.stop() } }
        let c = try h.client()
        let token = ServerIntegrationTests.fresh("user_member")
        let response = try #require(c.request("GET", "/ws", headers: Self.upgrade + [bearer(token)]))
        #expect(response.status == 101)
        #expect(response.header("upgrade")?.lowercased() == "websocket")
        #expect(c.webSocketEcho("hello") == "hello")
        #expect(c.webSocketEcho("again") == "again")
    }

    @Test func unauthenticatedUpgradeIsRefusedBeforeTheUpstream() async throws {
        let h = try await GatewayHarness(routes: "  - { name: ws, match: [\"/ws(.*)\"] }")
        defer { Task { await h.stop() } }
        let expired = Fixtures.token("user_member", iat: Date().timeIntervalSince1970 - 3600)
        #expect(try h.client().request("GET", "/ws", headers: Self.upgrade)?.status == 401)
        #expect(try h.client().request("GET", "/ws", headers: Self.upgrade + [bearer(expired)])?.status == 401)
        #expect(h.upstream.connections.load(ordering: .relaxed) == 0)
    }

    @Test func cookieUpgradeFromAForeignOriginIsRefused() async throws {
        let h = try await GatewayHarness(routes: "  - { name: ws, match: [\"/ws(.*)\"] }")
        defer { Task { await h.stop() } }
        let token = ServerIntegrationTests.fresh("user_member")
        let cookie = ("Cookie", "__session=\(token); __client_uat=1")
        let foreign = try h.client().request("GET", "/ws", headers: Self.upgrade + [cookie, ("Origin", "https://evil.example")])
        #expect(foreign?.status == 403)
        let same = try h.client()
        #expect(same.request("GET", "/ws", headers: Self.upgrade + [cookie, ("Origin", "http://app.example.com")])?.status == 101)
        #expect(same.webSocketEcho("ok") == "ok")
        // Bearer tokens are not sent automatically by browsers: no Origin rule applies to them.
        let bearerSocket = try h.client()
        #expect(bearerSocket.request("GET", "/ws", headers: Self.upgrade + [bearer(token), ("Origin", "https://tool.example")])?.status == 101)
    }

    @Test func tunnelClosesAtTheMaximumLifetime() async throws {
        let h = try await GatewayHarness(routes: "  - { name: ws, match: [\"/ws(.*)\"] }") {
            $0.replacingOccurrences(of: "connect_timeout: 1s }", with: "connect_timeout: 1s, websocket_max_lifetime: 800ms }")
        }
        defer { Task { await h.stop() } }
        let c = try RawClient(port: h.port, timeout: 5)
        let start = Date()
        #expect(c.request("GET", "/ws", headers: Self.upgrade + [bearer(ServerIntegrationTests.fresh("user_member"))])?.status == 101)
        #expect(c.webSocketEcho("still open") == "still open")
        #expect(c.isClosedByPeer())
        let elapsed = Date().timeIntervalSince(start)
        #expect(elapsed >= 0.7 && elapsed < 2.5, "closed after \(elapsed)s; websocket_max_lifetime is 800ms")
    }

    /// The control for the two closing tests: with a long lifetime and a token valid for a minute, the tunnel
    /// is still carrying frames after longer than either of them waits.
    @Test func aTunnelWithTimeLeftStaysOpen() async throws {
        let h = try await GatewayHarness(routes: "  - { name: ws, match: [\"/ws(.*)\"] }")
        defer { Task { await h.stop() } }
        let c = try RawClient(port: h.port, timeout: 5)
        #expect(c.request("GET", "/ws", headers: Self.upgrade + [bearer(ServerIntegrationTests.fresh("user_member"))])?.status == 101)
        #expect(c.webSocketEcho("first") == "first")
        try await Task.sleep(for: .milliseconds(2500))
        #expect(c.webSocketEcho("after 2.5 s") == "after 2.5 s")
    }

    /// A token that expires about two seconds from now (exp is whole seconds).
    static func shortLivedToken() -> (token: String, exp: Double) {
        let iat = Date().timeIntervalSince1970.rounded(.down) - 58
        return (Fixtures.token("user_member", iat: iat, lifetime: 60), iat + 60)
    }

    @Test func tunnelClosesWhenTheSessionTokenExpires() async throws {
        let h = try await GatewayHarness(routes: "  - { name: ws, match: [\"/ws(.*)\"] }")
        defer { Task { await h.stop() } }
        let c = try RawClient(port: h.port, timeout: 10)
        let (token, exp) = Self.shortLivedToken()
        #expect(c.request("GET", "/ws", headers: Self.upgrade + [bearer(token)])?.status == 101)
        #expect(c.webSocketEcho("before expiry") == "before expiry")
        #expect(c.isClosedByPeer())
        let closedAt = Date().timeIntervalSince1970
        #expect(closedAt >= exp - 0.2 && closedAt < exp + 2, "closed \(closedAt - exp)s after the token's exp")
    }

    @Test func withCloseAtTokenExpiryOffTheTunnelOutlivesTheToken() async throws {
        let h = try await GatewayHarness(routes: "  - { name: ws, match: [\"/ws(.*)\"] }") {
            $0.replacingOccurrences(of: "connect_timeout: 1s }", with: "connect_timeout: 1s, websocket_close_at_token_expiry: false }")
        }
        defer { Task { await h.stop() } }
        let c = try RawClient(port: h.port, timeout: 5)
        let (token, exp) = Self.shortLivedToken()
        #expect(c.request("GET", "/ws", headers: Self.upgrade + [bearer(token)])?.status == 101)
        let wait = exp + 0.8 - Date().timeIntervalSince1970
        try await Task.sleep(for: .milliseconds(Int(wait * 1000)))
        #expect(Date().timeIntervalSince1970 > exp)
        #expect(c.webSocketEcho("after expiry") == "after expiry")
    }

    @Test func upgradeTheUpstreamRefusesIsAnsweredAndClosed() async throws {
        let h = try await GatewayHarness()
        defer { Task { await h.stop() } }
        let c = try h.client()
        let response = c.request("GET", "/echo/not-a-socket", headers: Self.upgrade + [bearer(ServerIntegrationTests.fresh("user_member"))])
        #expect(response?.status == 200)
        #expect(c.isClosedByPeer())
    }
}

@Suite(.serialized, .stopsServers) struct ProxyFramingTests {
    @Test func headResponsesKeepTheConnectionUsable() async throws {
        let h = try await GatewayHarness()
        defer { Task { await h.stop() } }
        let c = try h.client()
        let head = try #require(c.request("HEAD", "/public/x"))
        #expect(head.status == 200)
        #expect(head.header("content-length") != nil)
        #expect(c.request("GET", "/public/y")?.status == 200)
        #expect(c.request("HEAD", "/public/z")?.status == 200)
        #expect(h.upstream.connections.load(ordering: .relaxed) == 1)
    }

    @Test func connectionCloseAndHTTP10AreHonoured() async throws {
        let h = try await GatewayHarness()
        defer { Task { await h.stop() } }
        let c = try h.client()
        #expect(c.request("GET", "/public/x", headers: [("Connection", "close")])?.status == 200)
        #expect(c.isClosedByPeer())
        let old = try h.client()
        old.send("GET /public/x HTTP/1.0\r\nHost: a\r\n\r\n")
        #expect(old.readResponse()?.0.status == 200)
        #expect(old.isClosedByPeer())
    }

    @Test func requestBodiesReachTheUpstreamWithTheirLength() async throws {
        let h = try await GatewayHarness()
        defer { Task { await h.stop() } }
        let c = try h.client()
        let token = ServerIntegrationTests.fresh("user_member")
        let response = c.request("POST", "/echo/form", headers: [bearer(token), ("Content-Type", "text/plain")], body: "hello body")
        #expect(response?.json?.objectValue?["bodyBytes"] == 10)
        #expect(response?.json?.objectValue?["headers"]?.objectValue?["content-length"] == ["10"])
        // A denied request's small body is read and dropped; the connection stays usable.
        #expect(c.request("POST", "/echo/form", body: "not allowed")?.status == 401)
        #expect(c.request("GET", "/public/after")?.status == 200)
    }
}

extension ProxyFramingTests {
    @Test func staleKeepAliveConnectionIsRetriedOnceForIdempotentRequests() async throws {
        let h = try await GatewayHarness()
        defer { Task { await h.stop() } }
        let c = try h.client()
        #expect(c.request("GET", "/public/close-next")?.status == 200)
        // The pooled connection now closes instead of answering: a GET is retried on a new connection.
        #expect(c.request("GET", "/public/x")?.status == 200)
        #expect(h.upstream.connections.load(ordering: .relaxed) == 2)
        // The new connection is complete and goes back to the pool for the next request.
        #expect(c.request("GET", "/public/y")?.status == 200)
        #expect(h.upstream.connections.load(ordering: .relaxed) == 2)
        // A POST is never replayed.
        #expect(c.request("GET", "/public/close-next")?.status == 200)
        #expect(c.request("POST", "/upload", body: "x")?.status == 502)
    }
}

extension ProxyFramingTests {
    @Test func connectionsOverTheLimitAreClosed() async throws {
        let h = try await GatewayHarness { $0.replacingOccurrences(of: "idle_timeout: 5s }", with: "idle_timeout: 5s, max_connections: 2 }") }
        defer { Task { await h.stop() } }
        let a = try h.client(), b = try h.client()
        #expect(a.request("GET", "/public/a")?.status == 200)
        #expect(b.request("GET", "/public/b")?.status == 200)
        let c = try h.client()
        c.send("GET /public/c HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(c.isClosedByPeer())
        let metrics = try RawClient(port: h.adminPort).request("GET", "/metrics")?.text ?? ""
        #expect(metrics.contains("gatehouse_refused_connections_total 1"))
    }
}

extension ProxyFramingTests {
    @Test func idleUpstreamConnectionsAreClosedAfterTheIdleTimeout() async throws {
        let h = try await GatewayHarness { $0.replacingOccurrences(of: "proxy: { response_timeout: 1s", with: "proxy: { idle_timeout: 1s, response_timeout: 1s") }
        defer { Task { await h.stop() } }
        let c = try h.client()
        #expect(c.request("GET", "/public/a")?.status == 200)
        #expect(c.request("GET", "/public/b")?.status == 200)
        #expect(h.upstream.connections.load(ordering: .relaxed) == 1)
        // The pool closes the idle connection on its own (polled: the timer fires when this machine lets it).
        #expect(await eventually(within: 6) { h.upstream.openConnections.load(ordering: .relaxed) == 0 },
                "the idle upstream connection was never closed")
        #expect(c.request("GET", "/public/c")?.status == 200)
        #expect(h.upstream.connections.load(ordering: .relaxed) == 2)
    }
}

extension ProxyFramingTests {
    @Test func aDeniedRequestWhoseBodyNeverComesIsCutOff() async throws {
        let h = try await GatewayHarness()
        defer { Task { await h.stop() } }
        let c = try RawClient(port: h.port, timeout: 5)
        c.send("POST /echo/x HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\npartial")
        #expect(c.readResponse()?.0.status == 401)
        let start = Date()
        #expect(c.isClosedByPeer())
        #expect(Date().timeIntervalSince(start) < 3, "header_timeout is 1s")
    }
}

extension ProxyFramingTests {
    @Test func idleKeepAliveConnectionsAreClosedAfterTheIdleTimeout() async throws {
        let h = try await GatewayHarness { $0.replacingOccurrences(of: "idle_timeout: 5s }", with: "idle_timeout: 1500ms }") }
        defer { Task { await h.stop() } }
        let c = try RawClient(port: h.port, timeout: 8)
        #expect(c.request("GET", "/public/a")?.status == 200)
        // The gateway's clock starts before this one (it wrote the response first): room below and above.
        let start = Date()
        #expect(c.isClosedByPeer())
        let elapsed = Date().timeIntervalSince(start)
        #expect(elapsed >= 0.9 && elapsed < 5, "closed after \(elapsed)s; idle_timeout is 1.5s")
    }
}

@Suite struct ResponseHeaderTests {
    @Test func upstreamResponseLosesHopByHopFieldsAndGainsVia() {
        var upstream = HTTPHeaders()
        for (n, v) in [("Content-Type", "text/plain"), ("Connection", "close, X-Hop"), ("X-Hop", "1"), ("Keep-Alive", "5"),
                       ("Via", "1.0 a"), ("Via", "1.1 b"), ("Transfer-Encoding", "chunked"), ("Set-Cookie", "a=1")] {
            upstream.add(name: n, value: v)
        }
        let out = UpstreamRequest.responseHeaders(upstream)
        #expect(out.map(\.name) == ["Content-Type", "Set-Cookie", "Via"])
        #expect(out["via"] == ["1.0 a, 1.1 b, 1.1 gatehouse"])
        var plain = HTTPHeaders()
        plain.add(name: "Content-Length", value: "2")
        #expect(UpstreamRequest.responseHeaders(plain).map(\.name) == ["Content-Length", "Via"])
        #expect(UpstreamRequest.responseHeaders(plain)["via"] == ["1.1 gatehouse"])
    }
}
