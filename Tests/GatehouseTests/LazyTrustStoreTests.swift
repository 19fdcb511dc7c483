import Foundation
import GatehouseConfig
@testable import GatehouseServer
import Synchronization
import Testing

/// The upstream trust store is built on first use (loading the system roots is most of a plain gateway's
/// start-up), once, and only ahead of time when the config names an `https://` upstream.
@Suite struct LazyTrustStoreTests {
    final class Counter: Sendable {
        let builds = Atomic<Int>(0)
    }

    static func cache(_ counter: Counter, delay: UInt32 = 0) -> TrustStoreCache<String> {
        TrustStoreCache<String> { caFile, _ in
            if delay > 0 { usleep(delay) }
            counter.builds.add(1, ordering: .relaxed)
            return "context for \(caFile ?? "the system roots")"
        }
    }

    @Test func loadingBuildsNothingAndTheFirstUseBuildsOnce() throws {
        let counter = Counter()
        let store = Self.cache(counter).load(caFile: nil)
        #expect(counter.builds.load(ordering: .relaxed) == 0)
        #expect(try store.context.get() == "context for the system roots")
        #expect(try store.context.get() == "context for the system roots")
        #expect(counter.builds.load(ordering: .relaxed) == 1)
    }

    @Test func concurrentFirstUsesShareOneBuild() async throws {
        let counter = Counter()
        let store = Self.cache(counter, delay: 20_000).load(caFile: nil)
        let contexts = await withTaskGroup(of: String?.self) { group in
            for _ in 0..<8 { group.addTask { try? store.context.get() } }
            return await group.reduce(into: [String?]()) { $0.append($1) }
        }
        #expect(contexts == Array(repeating: "context for the system roots", count: 8))
        #expect(counter.builds.load(ordering: .relaxed) == 1)
    }

    @Test func warmBuildsInTheBackground() async throws {
        let counter = Counter()
        let store = Self.cache(counter).load(caFile: nil)
        store.warm()
        for _ in 0..<250 where counter.builds.load(ordering: .relaxed) == 0 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(counter.builds.load(ordering: .relaxed) == 1)
        _ = store.context
        #expect(counter.builds.load(ordering: .relaxed) == 1)
    }

    @Test func anUnreadableCAFileFailsClosedWhenUsed() {
        let counter = Counter()
        let store = Self.cache(counter).load(caFile: "/nonexistent/ca.pem")
        guard case .failure(let error) = store.context else {
            Issue.record("an unreadable CA file built a context")
            return
        }
        #expect(error.message.contains("/nonexistent/ca.pem"))
        #expect(counter.builds.load(ordering: .relaxed) == 0)
    }

    @Test func theDataPlaneStoreBuildsTheSystemRootsOnFirstUse() throws {
        // The data plane's store for the system roots, built on this first use.
        let store = DataPlaneTrust.load(caFile: nil)
        _ = try store.context.get()
    }

    @Test(arguments: [
        ("upstream: \"http://127.0.0.1:3000\"", false),
        ("upstream: \"https://app.internal\"", true),
        ("upstream: \"http://127.0.0.1:3000\"\nroutes: [ { name: api, match: [\"/api(.*)\"], upstream: \"https://api.internal:8443\" } ]", true),
        ("upstream: \"http://127.0.0.1:3000\"\nroutes: [ { name: api, match: [\"/api(.*)\"], upstream: \"http://127.0.0.1:4000\" } ]", false),
    ])
    func httpsUpstreamsAreNamed(yaml: String, names: Bool) throws {
        let settings = try Fixtures.settings("clerk: { jwks_file: jwks.json }\nsign_in_url: /s\n" + yaml)
        #expect(settings.namesTLSUpstream == names)
    }

    @Test func theFrontendAPIProxyNamesAnHTTPSUpstream() throws {
        let pk = "publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k"
        let settings = try Fixtures.settings("clerk: { \(pk), jwks_file: jwks.json, frontend_api_proxy: /__clerk, secret_key: sk_live_x }\nsign_in_url: /s")
        #expect(settings.frontendAPIProxy != nil)
        #expect(settings.namesTLSUpstream)
    }
}
