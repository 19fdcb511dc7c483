import Crypto
import GatehouseCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Opaque machine tokens verified at the Backend API without a per-request bill and without amplification
/// (Clerk's middleware calls the Backend API for every request, a metered call each):
///
/// - results are kept under SHA-256(type, token), never the token itself: a verified token until
///   min(its expiry, `revocationWindow`) — how long a revocation may go unnoticed — a rejected one for
///   `negativeSeconds`, an unreachable Backend API for `unavailableSeconds` (so the synchronous and the async
///   decision of one request, and a burst during an outage, cost one call);
/// - one call per token at a time (single-flight);
/// - new calls draw from a bucket per client address, then from a global bucket; when either is empty the
///   call is not made (`shed`, counted) and the request gets 503;
/// - neither `lookup` nor `peek` waits, so cached results are decided on the event loop; `peek` never
///   starts a call (the decision that does not wait uses it).
public final class MachineTokenVerifier: Sendable {
    public struct Limits: Sendable, Equatable {
        public var revocationWindow: Double
        public var negativeSeconds: Double
        public var unavailableSeconds: Double
        public var burst: Int
        public var perSecond: Double
        public var clientBurst: Int
        public var clientPerSecond: Double
        public var maxClients: Int
        public var maxCached: Int
        /// Seconds one Backend API call may take, whatever the source does (`machine_auth.timeout`): past it
        /// the call counts as unreachable (503) and every request waiting on it is answered.
        public var callTimeout: Double = 3

        /// Clerk's production Backend API allows 1000 requests per 10 s per instance (development 100): at most
        /// 50 + 10 × 20 = 250 verify calls in any 10 s, leaving the rest to the application.
        public init(revocationWindow: Double = 30, negativeSeconds: Double = 5, unavailableSeconds: Double = 1, burst: Int = 50,
                    perSecond: Double = 20, clientBurst: Int = 10, clientPerSecond: Double = 2, maxClients: Int = 10_000,
                    maxCached: Int = 10_000) {
            self.revocationWindow = revocationWindow
            self.negativeSeconds = negativeSeconds
            self.unavailableSeconds = unavailableSeconds
            self.burst = burst
            self.perSecond = perSecond
            self.clientBurst = clientBurst
            self.clientPerSecond = clientPerSecond
            self.maxClients = maxClients
            self.maxCached = maxCached
        }
    }

    public enum Lookup: Sendable {
        case ready(MachineAuthState)
        /// Over the outbound limits: no call made.
        case shed
        case pending(Task<MachineAuthState, Never>)
    }

    private struct Cached {
        let state: MachineAuthState
        /// Monotonic seconds.
        let expiresAt: Double
    }

    private struct State {
        var cached: [SHA256Digest: Cached] = [:]
        var inFlight: [SHA256Digest: Task<MachineAuthState, Never>] = [:]
        var budget: CallBudget
        var calls = 0
        var shed = 0
        var hits = 0
    }

    private let source: any MachineTokenSource
    public let limits: Limits
    private let clock: @Sendable () -> Double
    private let wallClock: @Sendable () -> Double
    private let state: Mutex<State>

    /// - Parameter clock: monotonic seconds (cache lifetimes and buckets).
    /// - Parameter wallClock: Unix seconds, to judge a token's expiry when the call comes back.
    public init(source: any MachineTokenSource, limits: Limits = Limits(), clock: @escaping @Sendable () -> Double = KeyStore.monotonicSeconds,
                wallClock: @escaping @Sendable () -> Double = MachineTokenVerifier.unixSeconds) {
        self.source = source
        self.limits = limits
        self.clock = clock
        self.wallClock = wallClock
        self.state = Mutex(State(budget: CallBudget(burst: limits.burst, perSecond: limits.perSecond, clientBurst: limits.clientBurst,
                                                    clientPerSecond: limits.clientPerSecond, maxClients: limits.maxClients, now: clock())))
    }

    public static let unixSeconds: @Sendable () -> Double = {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    /// Backend API calls made.
    public var calls: Int { state.withLock { $0.calls } }
    /// Calls not made because a limit was reached.
    public var shedCount: Int { state.withLock { $0.shed } }
    /// Lookups answered from the cache.
    public var cacheHits: Int { state.withLock { $0.hits } }

    static func key(_ type: TokenType, _ token: String) -> SHA256Digest {
        SHA256.hash(data: Array((type.rawValue + "\u{0}" + token).utf8))
    }

    /// `lookup` without starting a call: a cached result, the call under way, `.shed` when a new call would
    /// be over the limits, or nil when a call would be made. The decision that does not wait uses this, so a
    /// call is only ever started by a caller that waits for it: one started and left behind could finish
    /// before the waiting caller looked and (when its result is not cached) make the waiting caller start a
    /// second call for the same request.
    public func peek(_ type: TokenType, token: String, client: String, now: Double) -> Lookup? {
        let key = MachineTokenVerifier.key(type, token)
        return state.withLock { state in
            let tick = clock()
            if let known = cachedOrInFlight(key, in: &state, tick: tick, now: now) { return known }
            guard state.budget.allows(client, now: tick) else {
                state.shed += 1
                return .shed
            }
            return nil
        }
    }

    /// - Parameter now: Unix seconds of the request (a cached identity is never used past its expiry).
    public func lookup(_ type: TokenType, token: String, client: String, now: Double) -> Lookup {
        let key = MachineTokenVerifier.key(type, token)
        return state.withLock { state in
            let tick = clock()
            if let known = cachedOrInFlight(key, in: &state, tick: tick, now: now) { return known }
            guard state.budget.spend(client, now: tick) else {
                state.shed += 1
                return .shed
            }
            state.calls += 1
            let source = self.source
            let wallClock = self.wallClock
            // Created under the lock: its `finish` waits for the lock, so it always finds its entry.
            let task = Task { [self] in
                let outcome: MachineAuthState
                do {
                    let answer = try await Deadline.run(seconds: self.limits.callTimeout) { try await source.verify(type, token: token) }
                    outcome = MachineTokenResponse.interpret(answer, type: type, now: wallClock())
                } catch {
                    // The error text may describe the request; it never contains the token.
                    outcome = .unavailable(reason: "backend-api-unreachable", message: "The Backend API could not be reached to verify the token.")
                }
                self.finish(key, outcome)
                return outcome
            }
            state.inFlight[key] = task
            return .pending(task)
        }
    }

    private func cachedOrInFlight(_ key: SHA256Digest, in state: inout State, tick: Double, now: Double) -> Lookup? {
        if let hit = state.cached[key], hit.expiresAt > tick {
            if case .verified(let identity) = hit.state, let exp = identity.expiresAt, exp <= now {
                state.cached[key] = nil
            } else {
                state.hits += 1
                return .ready(hit.state)
            }
        }
        if let task = state.inFlight[key] { return .pending(task) }
        return nil
    }

    private func finish(_ key: SHA256Digest, _ outcome: MachineAuthState) {
        let wallNow = wallClock()
        state.withLock { state in
            let tick = clock()
            state.inFlight[key] = nil
            let lifetime: Double
            switch outcome {
            case .verified(let identity):
                lifetime = min(limits.revocationWindow, identity.expiresAt.map { $0 - wallNow } ?? .infinity)
            case .rejected:
                lifetime = limits.negativeSeconds
            case .unavailable:
                lifetime = limits.unavailableSeconds
            }
            guard lifetime > 0 else { return }
            if state.cached[key] == nil, state.cached.count >= limits.maxCached {
                state.cached = state.cached.filter { $0.value.expiresAt > tick }
                if state.cached.count >= limits.maxCached { state.cached.removeAll(keepingCapacity: true) }
            }
            state.cached[key] = Cached(state: outcome, expiresAt: tick + lifetime)
        }
    }
}
