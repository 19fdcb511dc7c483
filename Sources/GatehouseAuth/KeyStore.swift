import Synchronization

/// Where a remote JWKS comes from. The daemon and CLI use an HTTP implementation; tests use fakes.
public protocol JWKSSource: Sendable {
    /// Human-readable origin without secrets, e.g. "https://api.clerk.com/v1/jwks (secret key)".
    var description: String { get }
    func fetchJWKS() async throws -> [UInt8]
}

/// Owns the signing keys: static keys (PEM, JWKS file) or a remote JWKS that is cached, refreshed in the
/// background, re-fetched (single-flight, with a cool-down) when a token names an unknown `kid`, and kept at
/// its last good value while the source is failing.
public final class KeyStore: Sendable {
    public struct Settings: Sendable {
        public var allowedAlgorithms: [SigningAlgorithm]
        public var rsaDefault: SigningAlgorithm
        /// Background refresh period.
        public var refreshInterval: Double
        /// Minimum time between two fetches triggered by unknown `kid`s.
        public var unknownKidCooldown: Double

        public init(
            allowedAlgorithms: [SigningAlgorithm] = SigningAlgorithm.defaultAllowed, rsaDefault: SigningAlgorithm = .rs256,
            refreshInterval: Double = 300, unknownKidCooldown: Double = 10
        ) {
            self.allowedAlgorithms = allowedAlgorithms
            self.rsaDefault = rsaDefault
            self.refreshInterval = refreshInterval
            self.unknownKidCooldown = unknownKidCooldown
        }
    }

    public struct Status: Sendable, Equatable {
        public var keyCount: Int
        public var fetches: Int
        public var failures: Int
        public var lastError: String?
        /// Keys skipped in the last JWKS read, with the reason (no key material).
        public var skipped: [String]
    }

    private struct State: Sendable {
        var keys: KeySet
        var inFlight: Task<KeySet, Never>?
        var lastUnknownKidFetch: Double?
        var lastSuccessfulFetch: Double?
        var fetches = 0
        var failures = 0
        var lastError: String?
        var skipped: [String] = []
    }

    public let sourceDescription: String
    private let remote: (any JWKSSource)?
    private let settings: Settings
    private let clock: @Sendable () -> Double
    private let state: Mutex<State>

    /// Keys known up front (PEM or a JWKS file); never fetched.
    public init(staticKeys: KeySet, description: String) {
        self.sourceDescription = description
        self.remote = nil
        self.settings = Settings()
        self.clock = KeyStore.monotonicSeconds
        self.state = Mutex(State(keys: staticKeys))
    }

    /// Keys fetched from `source`; empty until the first successful fetch.
    public init(remote source: any JWKSSource, settings: Settings, clock: @escaping @Sendable () -> Double = KeyStore.monotonicSeconds) {
        self.sourceDescription = source.description
        self.remote = source
        self.settings = settings
        self.clock = clock
        self.state = Mutex(State(keys: .empty))
    }

    public static let monotonicSeconds: @Sendable () -> Double = {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    public var isRemote: Bool { remote != nil }

    public var keys: KeySet { state.withLock { $0.keys } }

    public var status: Status {
        state.withLock { Status(keyCount: $0.keys.count, fetches: $0.fetches, failures: $0.failures, lastError: $0.lastError, skipped: $0.skipped) }
    }

    /// Fetches now (joining a fetch already under way) and returns the keys in force afterwards.
    @discardableResult
    public func refresh() async -> KeySet {
        guard let remote else { return keys }
        let task: Task<KeySet, Never> = state.withLock { state in
            if let inFlight = state.inFlight { return inFlight }
            let settings = self.settings
            let task = Task { [self] in
                let outcome: Result<JWKSParser.Result, any Error>
                do {
                    let bytes = try await remote.fetchJWKS()
                    outcome = .success(try JWKSParser.parse(bytes, allowed: settings.allowedAlgorithms, rsaDefault: settings.rsaDefault))
                } catch {
                    outcome = .failure(error)
                }
                return self.finishFetch(outcome)
            }
            state.inFlight = task
            state.fetches += 1
            return task
        }
        return await task.value
    }

    private func finishFetch(_ outcome: Result<JWKSParser.Result, any Error>) -> KeySet {
        state.withLock { state in
            state.inFlight = nil
            switch outcome {
            case .success(let parsed) where !parsed.keys.isEmpty:
                state.keys = KeySet(keys: parsed.keys)
                state.skipped = parsed.skipped
                state.lastError = nil
                state.lastSuccessfulFetch = clock()
            case .success(let parsed):
                // A JWKS with no usable key is treated as a failure: the last good keys stay.
                state.failures += 1
                state.skipped = parsed.skipped
                state.lastError = "JWKS has no usable signing key"
            case .failure(let error):
                state.failures += 1
                state.lastError = "\(error)"
            }
            return state.keys
        }
    }

    /// Called when a token names a `kid` that is not in the current set. Fetches at most once per cool-down
    /// (a flood of random `kid`s costs one fetch), joining any fetch already under way.
    public func keysAfterUnknownKid() async -> KeySet {
        guard remote != nil else { return keys }
        let shouldFetch: Bool = state.withLock { state in
            if state.inFlight != nil { return true }
            let now = clock()
            if let last = state.lastUnknownKidFetch, now - last < settings.unknownKidCooldown { return false }
            state.lastUnknownKidFetch = now
            return true
        }
        return shouldFetch ? await refresh() : keys
    }

    /// Would `keysAfterUnknownKid` fetch (or join a fetch) now? False inside the cool-down, when it returns
    /// the keys in force at once: the caller can then decide without waiting.
    public var unknownKidWouldFetch: Bool {
        guard remote != nil else { return false }
        return state.withLock { state in
            if state.inFlight != nil { return true }
            guard let last = state.lastUnknownKidFetch else { return true }
            return clock() - last >= settings.unknownKidCooldown
        }
    }

    /// Background refresh until the task is cancelled: every `refreshInterval`, sooner (every few seconds,
    /// with backoff) while no key has ever loaded.
    public func runRefreshLoop() async {
        guard remote != nil else { return }
        var retryDelay = 1.0
        var first = true
        while !Task.isCancelled {
            // Keys loaded at start-up are fresh: the first round only sleeps.
            let loaded = first && !keys.isEmpty ? keys : await refresh()
            first = false
            let delay: Double
            if loaded.isEmpty {
                delay = retryDelay
                retryDelay = min(retryDelay * 2, 30)
            } else {
                delay = settings.refreshInterval
                retryDelay = 1
            }
            try? await Task.sleep(for: .milliseconds(Int(delay * 1000)))
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
