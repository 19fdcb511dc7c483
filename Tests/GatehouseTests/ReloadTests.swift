import Foundation
@testable import GatehouseAuth
import GatehouseConfig
@testable import GatehouseCore
import GatehouseDevIssuer
import GatehouseEngine
@testable import GatehouseServer
import Testing

/// Key sets are identified by content, so the token cache survives refreshes (and reloads) that keep the keys.
@Suite struct KeySetIdentityTests {
    static func parse(_ jwks: JSONValue) throws -> KeySet {
        KeySet(keys: try JWKSParser.parse(Array(jwks.serialized().utf8), allowed: SigningAlgorithm.defaultAllowed).keys)
    }

    @Test func theSameKeysHaveTheSameID() throws {
        #expect(try Self.parse(Fixtures.issuer.jwks).id == Self.parse(Fixtures.issuer.jwks).id)
        // Same kid, different key material: another id.
        #expect(try Self.parse(Fixtures.issuer.jwks).id != Self.parse(Fixtures.otherIssuer.jwks).id)
        #expect(try Self.parse(Fixtures.issuer.jwks).id != Self.parse(Fixtures.rotatedIssuer.jwks).id)
        #expect(KeySet.empty.id != (try Self.parse(Fixtures.issuer.jwks)).id)
    }

    @Test func tokenCacheSurvivesARefreshWithTheSameKeysAndNotAChange() async throws {
        let source = FakeJWKSSource(Fixtures.issuer.jwks)
        let store = KeyStore(remote: source, settings: .init())
        await store.refresh()
        let cache = TokenCache(capacity: 100)
        let auth = SessionAuthenticator(instance: nil, policy: VerificationPolicy(), keyStore: store, cache: cache)
        let request = try Fixtures.request("/x", headers: [("Authorization", "Bearer " + Fixtures.token())])
        #expect(auth.authenticateWithoutFetching(request, now: Fixtures.now)?.status == .signedIn)
        #expect((cache.hits, cache.misses, cache.count) == (0, 1, 1))
        let before = store.keys.id
        await store.refresh()
        #expect(source.fetches == 2)
        #expect(store.keys.id == before)
        #expect(auth.authenticateWithoutFetching(request, now: Fixtures.now)?.status == .signedIn)
        #expect((cache.hits, cache.misses, cache.count) == (1, 1, 1))
        // The keys change (a second key is added): the entry no longer counts and the token is verified again.
        var both = Fixtures.issuer.jwks.objectValue!
        let keys = (Fixtures.issuer.jwks.objectValue?["keys"]?.arrayValue ?? []) + (Fixtures.rotatedIssuer.jwks.objectValue?["keys"]?.arrayValue ?? [])
        both.set("keys", .array(keys))
        source.serve(.object(both))
        await store.refresh()
        #expect(store.keys.id != before)
        #expect(auth.authenticateWithoutFetching(request, now: Fixtures.now)?.status == .signedIn)
        #expect((cache.hits, cache.misses) == (1, 2))
    }

    @Test func resizingKeepsCountersAndDropsEntriesOnlyWhenShrinkingBelowThem() async throws {
        let store = KeyStore(staticKeys: Fixtures.keySet, description: "test")
        let cache = TokenCache(capacity: 10)
        let auth = SessionAuthenticator(instance: nil, policy: VerificationPolicy(), keyStore: store, cache: cache)
        for user in ["a", "b"] {
            _ = auth.authenticateWithoutFetching(try Fixtures.request("/x", headers: [("Authorization", "Bearer " + Fixtures.token(user))]), now: Fixtures.now)
        }
        cache.resize(to: 5)
        #expect((cache.count, cache.misses, cache.capacity) == (2, 2, 5))
        cache.resize(to: 1)
        #expect((cache.count, cache.misses) == (0, 2))
        cache.resize(to: 0)
        _ = auth.authenticateWithoutFetching(try Fixtures.request("/x", headers: [("Authorization", "Bearer " + Fixtures.token("c"))]), now: Fixtures.now)
        #expect((cache.count, cache.misses) == (0, 3))
    }
}

/// Reload over real sockets: what it applies, what it says needs a restart, and counters that never go back.
@Suite(.serialized) struct ReloadTests {
    static func metric(_ name: String, port: Int) throws -> Int? {
        let text = try RawClient(port: port).request("GET", "/metrics")?.text ?? ""
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Int(line.split(separator: " ").last ?? "")
        }
        return nil
    }

    @Test func aLiveSettingTakesEffectAndRestartOnlyOnesAreNamed() async throws {
        let h = try await GatewayHarness()
        #expect(try h.client().request("GET", "/dashboard")?.status == 401)
        // Live: a route made public, and the token cache size.
        let publicDashboard = """
              - { name: open, match: ["/dashboard(.*)"], access: public }
            \(GatewayHarness.defaultRoutes)
            """
        var yaml = GatewayHarness.config(upstreamPort: h.upstream.port, routes: publicDashboard)
        try yaml.write(toFile: h.configPath, atomically: true, encoding: .utf8)
        let live = await h.server.reload(environment: [:])
        guard case .applied(_, let none, _) = live else { Issue.record("reload failed: \(live)"); return }
        #expect(none.isEmpty)
        #expect(live.logLines(configPath: "g.yaml").count == 1)
        #expect(try h.client().request("GET", "/dashboard")?.status == 200)

        // Restart-only: listen and threads change; each is named, and the rest of the file still applies.
        yaml = yaml.replacingOccurrences(of: "listen: \"127.0.0.1:0\"\nupstream", with: "listen: \"127.0.0.1:45999\"\nupstream")
            .replacingOccurrences(of: "threads: 1,", with: "threads: 2,")
            .replacingOccurrences(of: "name: open,", with: "name: open2,")
        try yaml.write(toFile: h.configPath, atomically: true, encoding: .utf8)
        let restart = await h.server.reload(environment: [:])
        guard case .applied(let snapshot, let needs, _) = restart else { Issue.record("reload failed: \(restart)"); return }
        #expect(needs == ["listen", "server.threads"])
        #expect(snapshot.settings.routes.rules.first?.name == "open2")
        let lines = restart.logLines(configPath: "g.yaml")
        #expect(lines.contains("warning: not applied by the reload, needs a restart: listen, server.threads (still running with the old values)"))
        // Still served where it was started.
        #expect(try h.client().request("GET", "/dashboard")?.status == 200)
        await h.stop()
    }

    @Test func tokenCacheCountersAndEntriesSurviveReloads() async throws {
        let h = try await GatewayHarness()
        let token = Fixtures.token("user_r", iat: Date().timeIntervalSince1970 - 5)
        for _ in 0..<3 { #expect(try h.client().request("GET", "/dashboard", headers: [bearer(token)])?.status == 200) }
        let hits = try #require(try Self.metric("gatehouse_token_cache_hits_total", port: h.adminPort))
        let misses = try #require(try Self.metric("gatehouse_token_cache_misses_total", port: h.adminPort))
        #expect(hits == 2)
        #expect(misses == 1)
        let reloadsBefore = h.state.tokenCache.count
        for _ in 0..<2 {
            guard case .applied = await h.server.reload(environment: [:]) else { Issue.record("reload failed"); return }
        }
        #expect(h.state.tokenCache.count == reloadsBefore)
        #expect(try Self.metric("gatehouse_token_cache_hits_total", port: h.adminPort) == hits)
        // Same keys after the reload: the token is still a cache hit, not verified again.
        #expect(try h.client().request("GET", "/dashboard", headers: [bearer(token)])?.status == 200)
        #expect(try Self.metric("gatehouse_token_cache_hits_total", port: h.adminPort) == hits + 1)
        #expect(try Self.metric("gatehouse_token_cache_misses_total", port: h.adminPort) == misses)
        await h.stop()
    }

    @Test func jwksCountersNeverGoBackAcrossReloads() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-reload-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("g.yaml").path
        try """
            listen: "127.0.0.1:0"
            upstream: "http://127.0.0.1:3000"
            admin: { listen: off }
            clerk: { jwks_url: "https://jwks.example/jwks" }
            sign_in_url: /sign-in
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let source = FakeJWKSSource(Fixtures.issuer.jwks)
        let settings = try ConfigLoader.load(path: path, environment: [:])
        let state = await GatewayState(configPath: path, settings: settings, makeSource: { _, _ in source })
        defer { state.stopBackgroundWork() }
        #expect(state.jwksCounts.fetches == 1)
        _ = await state.reload(environment: [:])
        #expect(state.jwksCounts.fetches == 2)
        source.serve(nil)  // the next key source fails: the reload is refused, its fetch still counts
        _ = await state.reload(environment: [:])
        #expect(state.jwksCounts.fetches == 3)
        #expect(state.jwksCounts.failures == 1)
        #expect(state.snapshot.generation == 2)
    }
}

/// The real binary: SIGHUP with a changed `listen` says so on stderr, and the rest of the file applies.
@Suite(.serialized) struct DaemonReloadLogTests {
    @Test func sighupNamesSettingsThatNeedARestart() async throws {
        let upstream = try await TestUpstream()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-reload-log-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data(Fixtures.issuer.jwks.serialized().utf8).write(to: directory.appendingPathComponent("jwks.json"))
        let gateway = try GatewayProcess(yaml: DaemonProcessTests.yaml(upstream.port, routes: GatewayHarness.defaultRoutes), directory: directory)
        defer { gateway.stop() }
        #expect(try RawClient(port: gateway.port).request("GET", "/dashboard")?.status == 401)
        let other = GatewayProcess.freePorts(1)[0]
        let changed = DaemonProcessTests.yaml(upstream.port, routes: "  - { name: open, match: [\"/dashboard(.*)\"], access: public }")
            .replacingOccurrences(of: "{PORT}", with: String(other)).replacingOccurrences(of: "{ADMIN_PORT}", with: String(gateway.adminPort))
        try changed.write(toFile: gateway.configPath, atomically: true, encoding: .utf8)
        gateway.send(SIGHUP)
        var status: Int? = nil
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            status = try RawClient(port: gateway.port).request("GET", "/dashboard")?.status
            if status == 200 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(status == 200)  // the routes applied, on the port it started with
        let warning = "\"msg\":\"not applied by the reload, needs a restart"
        #expect(gateway.awaitStandardError(warning, count: 1, within: 10))
        #expect((try? RawClient(port: other)) == nil)
        let log = gateway.stopAndCollectOutput().stderr
        #expect(log.contains("\"level\":\"warning\",\"msg\":\"not applied by the reload, needs a restart (still running with the old values)\",\"settings\":\"listen\""), "\(log)")
        await upstream.stop()
    }
}
