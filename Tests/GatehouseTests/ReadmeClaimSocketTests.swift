import Foundation
import GatehouseCore
import GatehouseDevIssuer
import Synchronization
import Testing

/// README claims the audit found untested, over real sockets.
@Suite(.serialized, .stopsServers) struct ReadmeClaimSocketTests {
    @Test func expectIsAnsweredByGatehouseAndNeverReachesTheUpstream() async throws {
        let h = try await GatewayHarness()
        defer { Task { await h.stop() } }
        let c = try h.client()
        let token = ServerIntegrationTests.fresh("user_member")
        c.send("POST /echo/e HTTP/1.1\r\nHost: app.example.com\r\nAuthorization: Bearer \(token)\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        #expect(c.readResponse(method: "POST")?.0.status == 100)
        c.send("body")
        let response = try #require(c.readResponse(method: "POST")?.0)
        #expect(response.status == 200)
        let headers = try #require(response.foundationJSON?["headers"] as? [String: [String]])
        #expect(headers["expect"] == nil)
        #expect(response.foundationJSON?["bodyBytes"] as? Int == 4)
    }

    @Test func denialsCarryClerksAuthStatusAndReason() async throws {
        let h = try await GatewayHarness()
        defer { Task { await h.stop() } }
        let expired = Fixtures.token("user_member", iat: Date().timeIntervalSince1970 - 3600)
        let unauthenticated = try #require(try h.client().request("GET", "/dashboard", headers: [bearer(expired), ("Accept", "application/json")]))
        #expect(unauthenticated.status == 401)
        #expect(unauthenticated.header("x-clerk-auth-status") == "signed-out")
        #expect(unauthenticated.header("x-clerk-auth-reason") == "session-token-expired-refresh-non-eligible-no-refresh-cookie")
        #expect(unauthenticated.header("www-authenticate")?.contains("error=\"invalid_token\"") == true)
        let anonymous = try #require(try h.client().request("GET", "/dashboard", headers: [("Accept", "application/json")]))
        #expect(anonymous.header("x-clerk-auth-reason") == "session-token-and-uat-missing")
        #expect(anonymous.header("www-authenticate") == "Bearer realm=\"gatehouse\"")
        let member = ServerIntegrationTests.fresh("user_member")
        let forbidden = try #require(try h.client().request("GET", "/admin", headers: [bearer(member)]))
        #expect(forbidden.status == 403)
        // A signed-in caller failing a requirement has no auth failure to report (and the body never says which
        // requirement failed).
        #expect(forbidden.header("x-clerk-auth-reason") == nil)
        #expect(!forbidden.text.contains("metadata"))
    }

    @Test func duplicateAuthorizationIs400AndEndsTheConnection() async throws {
        let h = try await GatewayHarness()
        defer { Task { await h.stop() } }
        let c = try h.client()
        let token = ServerIntegrationTests.fresh("user_member")
        let response = try #require(c.request("GET", "/echo", headers: [bearer(token), ("authorization", "Bearer other")]))
        #expect(response.status == 400)
        #expect(c.isClosedByPeer())
        #expect(h.upstream.targets.withLock { $0 }.isEmpty)
        let metrics = try RawClient(port: h.adminPort).request("GET", "/metrics")?.text ?? ""
        #expect(metrics.contains("gatehouse_rejected_requests_total{status=\"400\"} 1"), "\(metrics)")
    }

    @Test func theDocumentedMetricSeriesAreExposed() async throws {
        let h = try await GatewayHarness()
        defer { Task { await h.stop() } }
        let c = try h.client()
        #expect(c.request("GET", "/public/x")?.status == 200)
        let metrics = try #require(try RawClient(port: h.adminPort).request("GET", "/metrics")?.text)
        for series in ["gatehouse_requests_total{", "gatehouse_request_duration_seconds_bucket{", "gatehouse_request_duration_seconds_count{",
                       "gatehouse_jwks_fetches_total", "gatehouse_jwks_fetch_failures_total", "gatehouse_signing_keys 1",
                       "gatehouse_open_connections", "gatehouse_refused_connections_total 0"] {
            #expect(metrics.contains(series), "missing \(series)")
        }
        // The client connection is still open (keep-alive), and the admin one is not counted on the public side.
        #expect(metrics.contains("gatehouse_open_connections 1"), "\(metrics)")
        #expect(metrics.contains("gatehouse_request_duration_seconds_count{route=\"public\"} 1"), "\(metrics)")
    }
}

/// SIGTERM details the README promises: idle keep-alive connections close at once, and what is still running
/// after `server.grace_period` is closed.
@Suite(.serialized, .stopsServers) struct ShutdownDetailTests {
    func start(_ upstream: TestUpstream, grace: String) throws -> GatewayProcess {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-stop-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data(Fixtures.issuer.jwks.serialized().utf8).write(to: directory.appendingPathComponent("jwks.json"))
        let yaml = DaemonProcessTests.yaml(upstream.port, routes: GatewayHarness.defaultRoutes)
            .replacingOccurrences(of: "idle_timeout: 5s }", with: "idle_timeout: 30s, grace_period: \(grace) }")
            .replacingOccurrences(of: "response_timeout: 1s", with: "response_timeout: 30s")
        return try GatewayProcess(yaml: yaml, directory: directory)
    }

    @Test func idleKeepAliveConnectionsCloseAtOnceOnSIGTERM() async throws {
        let upstream = try await TestUpstream()
        defer { Task { await upstream.stop() } }
        let gateway = try start(upstream, grace: "10s")
        defer { gateway.stop() }
        let idle = try RawClient(port: gateway.port, timeout: 5)
        #expect(idle.request("GET", "/public/x")?.status == 200)
        let started = Date()
        gateway.send(SIGTERM)
        #expect(idle.isClosedByPeer())
        // Well under the 10 s grace period that a wrongly waiting idle connection would run to.
        #expect(Date().timeIntervalSince(started) < 5, "an idle connection waited \(Date().timeIntervalSince(started))s")
        #expect(gateway.waitForExit(timeout: 5) == 0)
    }

    @Test func requestsStillRunningAfterTheGracePeriodAreCut() async throws {
        let upstream = try await TestUpstream()
        defer { Task { await upstream.stop() } }
        let gateway = try start(upstream, grace: "500ms")
        defer { gateway.stop() }
        let slow = try RawClient(port: gateway.port, timeout: 10)
        slow.send("GET /slow?ms=8000 HTTP/1.1\r\nHost: a\r\n\r\n")
        try #require(await upstream.received("/slow?ms=8000"), "the request never reached the upstream")
        let started = Date()
        gateway.send(SIGTERM)
        #expect(slow.isClosedByPeer())
        let elapsed = Date().timeIntervalSince(started)
        #expect(elapsed >= 0.4 && elapsed < 3, "cut after \(elapsed)s; grace_period is 500ms")
        #expect(gateway.waitForExit(timeout: 5) == 0)
    }
}

/// The unknown-kid flood from many connections at once (the existing e2e flood is sequential on one).
@Suite(.serialized, .stopsServers) struct ConcurrentJWKSFloodTests {
    @Test func aConcurrentUnknownKidFloodCausesOneFetch() async throws {
        let upstream = try await TestUpstream()
        upstream.jwks.withLock { $0 = Fixtures.issuer.jwks.serialized() }
        let h = try await GatewayHarness(upstream: upstream) {
            $0.replacingOccurrences(of: "jwks_file: jwks.json", with: "jwks_url: http://127.0.0.1:\(upstream.port)/jwks\n  jwks_cooldown: 30s")
                .replacingOccurrences(of: "threads: 1", with: "threads: 2")
        }
        defer { Task { await h.stop() } }
        #expect(upstream.jwksFetches.load(ordering: .relaxed) == 1)
        let port = h.port
        let iat = Date().timeIntervalSince1970.rounded(.down)
        let tokens = (0..<24).map { Fixtures.token(iat: iat, header: ["kid": .string("flood-\($0)")]) }
        // Blocking clients on their own threads (not the cooperative pool the gateway's key fetch needs).
        let statuses = await withCheckedContinuation { (done: CheckedContinuation<[Int?], Never>) in
            DispatchQueue.global().async {
                let results = Mutex<[Int?]>(Array(repeating: nil, count: tokens.count))
                DispatchQueue.concurrentPerform(iterations: tokens.count) { i in
                    let status = (try? RawClient(port: port))?.request("GET", "/echo", headers: [bearer(tokens[i]), ("Accept", "application/json")])?.status
                    results.withLock { $0[i] = status }
                }
                done.resume(returning: results.withLock { $0 })
            }
        }
        #expect(statuses.allSatisfy { $0 == 401 }, "\(statuses)")
        #expect(upstream.jwksFetches.load(ordering: .relaxed) == 2, "one re-fetch for the whole burst")
    }
}
