import Foundation
import GatehouseAuth
import GatehouseConfig
import GatehouseCore
import GatehouseEngine
import GatehouseFetch
import Synchronization

/// One compiled config with its keys: what a request is decided against. Immutable once built.
public final class GatewaySnapshot: Sendable {
    public let settings: GatehouseSettings
    public let keyStore: KeyStore
    public let gatekeeper: Gatekeeper
    public let generation: Int

    init(settings: GatehouseSettings, keyStore: KeyStore, generation: Int, tokenCache: TokenCache, machineVerifier: MachineTokenVerifier? = nil) {
        self.settings = settings
        self.keyStore = keyStore
        self.gatekeeper = Gatekeeper(settings: settings, keyStore: keyStore, payloadSource: settings.secretKey.map {
            HTTPHandshakePayloadSource(apiURL: settings.apiURL, secretKey: $0)
        }, cache: tokenCache, machineVerifier: machineVerifier)
        self.generation = generation
    }

    /// Is the peer address inside `trusted_proxies`?
    public func isTrusted(peer: String) -> Bool {
        !settings.trustedProxies.isEmpty && ClientAddress.isTrusted(peer, settings.trustedProxies)
    }
}

/// Holds the snapshot in force and swaps it whole on reload: requests in flight keep the snapshot they
/// started with, new requests see the new one, nobody ever sees a mix.
public final class GatewayState: Sendable {
    public let configPath: String
    public let metrics: GatewayMetrics
    private let current: Mutex<GatewaySnapshot>
    /// The generation of `current`, readable without its lock (stored inside it, after each swap).
    private let publishedGeneration = Atomic<Int>(1)
    private let refreshTask: Mutex<Task<Void, Never>?>
    private let makeSource: @Sendable (String, String?) -> any JWKSSource
    /// One cache for the process: its entries count only for the key set they were verified with (by
    /// content), so they survive reloads and refreshes that keep the keys, and its counters never restart.
    public let tokenCache: TokenCache
    /// JWKS fetches and failures of key stores a reload replaced, so the `_total` counters never go back.
    private let retiredKeyCounts = Mutex<(fetches: Int, failures: Int)>((0, 0))
    /// The opaque-token verifier, kept across reloads that leave its Backend API, keys and limits alone (its
    /// cache, single-flight calls and buckets carry on), and the counts of verifiers a reload replaced.
    let machineVerifiers = Mutex<MachineVerifierSlot>(MachineVerifierSlot())

    /// Builds the first snapshot; loads remote keys once before returning (readiness reflects the outcome).
    public init(
        configPath: String, settings: GatehouseSettings, metrics: GatewayMetrics = GatewayMetrics(),
        makeSource: @escaping @Sendable (String, String?) -> any JWKSSource = { HTTPJWKSSource(url: $0, bearer: $1) }
    ) async {
        self.configPath = configPath
        self.metrics = metrics
        self.makeSource = makeSource
        let cache = TokenCache(capacity: settings.tokenCacheSize)
        self.tokenCache = cache
        let store = await Gatekeeper.loadKeyStore(for: settings, remote: makeSource)
        let verifier = machineVerifiers.withLock { $0.verifier(for: settings) }
        self.current = Mutex(GatewaySnapshot(settings: settings, keyStore: store, generation: 1, tokenCache: cache, machineVerifier: verifier))
        self.refreshTask = Mutex(GatewayState.startRefresh(store))
    }

    public var snapshot: GatewaySnapshot { current.withLock { $0 } }

    /// The generation of the snapshot in force, without the lock: a data-plane loop keeps its own reference to
    /// the snapshot and takes the lock only when this moves (LoopPlane.snapshot).
    public var generation: Int { publishedGeneration.load(ordering: .acquiring) }

    /// JWKS fetches and failures since the process started, across reloads.
    public var jwksCounts: (fetches: Int, failures: Int) {
        let status = snapshot.keyStore.status
        let retired = retiredKeyCounts.withLock { $0 }
        return (retired.fetches + status.fetches, retired.failures + status.failures)
    }

    private func retire(_ store: KeyStore) {
        let status = store.status
        retiredKeyCounts.withLock {
            $0.fetches += status.fetches
            $0.failures += status.failures
        }
    }

    private static func startRefresh(_ store: KeyStore) -> Task<Void, Never>? {
        guard store.isRemote else { return nil }
        return Task { await store.runRefreshLoop() }
    }

    /// Reloads config and keys from `configPath`. On any error the old snapshot stays and the error is returned.
    @discardableResult
    public func reload(environment: [String: String]? = nil) async -> Result<GatewaySnapshot, ConfigError> {
        let settings: GatehouseSettings
        do {
            settings = try ConfigLoader.load(path: configPath, environment: environment ?? ProcessInfo.processInfo.environment)
        } catch {
            metrics.recordReload(success: false)
            return .failure(error)
        }
        let store = await Gatekeeper.loadKeyStore(for: settings, remote: makeSource)
        if store.isRemote {
            if store.keys.isEmpty {
                retire(store)
                metrics.recordReload(success: false)
                let detail = store.status.lastError ?? "no usable key"
                return .failure(ConfigError(issues: [ConfigIssue(file: configPath, line: nil, column: nil, keyPath: "clerk",
                                                                 message: "the new key source has no usable key (\(detail)); keeping the old configuration")]))
            }
        }
        tokenCache.resize(to: settings.tokenCacheSize)
        let verifier = machineVerifiers.withLock { $0.verifier(for: settings) }
        let (previous, next) = current.withLock { old -> (GatewaySnapshot, GatewaySnapshot) in
            let snapshot = GatewaySnapshot(settings: settings, keyStore: store, generation: old.generation + 1, tokenCache: tokenCache,
                                           machineVerifier: verifier)
            let previous = old
            old = snapshot
            publishedGeneration.store(snapshot.generation, ordering: .releasing)
            return (previous, snapshot)
        }
        retire(previous.keyStore)
        let newTask = GatewayState.startRefresh(store)
        refreshTask.withLock { task in
            task?.cancel()
            task = newTask
        }
        metrics.recordReload(success: true)
        return .success(next)
    }

    public func stopBackgroundWork() {
        refreshTask.withLock { task in
            task?.cancel()
            task = nil
        }
    }
}
