import Synchronization

/// The handshake-nonce exchange (one Backend API call with the secret key per nonce) behind limits, so
/// anonymous clients cannot spend the instance's Backend API rate limit (architecture-notes S6):
///
/// - a nonce that is not well formed is never sent (the exchange counts as failed: no directives);
/// - one call per nonce at a time (single-flight: concurrent requests with one nonce share it); a failed
///   outcome is kept for `cacheSeconds` so repeats of a bad nonce cost nothing, a successful one is not kept
///   (a nonce is single-use: its session cookies go to the requests that shared the call, never to a later one);
/// - calls for new nonces draw first from a small bucket per client address (`clientBurst`, refilled at
///   `clientPerSecond`), so one client cannot empty the shared bucket, then from one token bucket for the
///   whole process (`burst`, refilled at `perSecond`); when either is empty the request is refused without a
///   call (the caller answers 503).
///
/// Neither `lookup` nor `peek` waits; `peek` lets a cached nonce be decided on the event loop.
public final class HandshakeNonceExchange: Sendable {
    public struct Limits: Sendable {
        public var burst: Int
        public var perSecond: Double
        public var clientBurst: Int
        public var clientPerSecond: Double
        /// Client buckets remembered; past it the full ones (a client idle long enough) are forgotten first.
        public var maxClients: Int
        public var cacheSeconds: Double
        public var maxCached: Int

        /// Clerk's Backend API allows about 100 requests per 10 s per application: the defaults allow at most
        /// 20 + 10 × 5 = 70 calls in any 10 s, below it but sharing it with the application's own calls.
        public init(burst: Int = 20, perSecond: Double = 5, clientBurst: Int = 3, clientPerSecond: Double = 1,
                    maxClients: Int = 10_000, cacheSeconds: Double = 10, maxCached: Int = 1000) {
            self.burst = burst
            self.perSecond = perSecond
            self.clientBurst = clientBurst
            self.clientPerSecond = clientPerSecond
            self.maxClients = maxClients
            self.cacheSeconds = cacheSeconds
            self.maxCached = maxCached
        }
    }

    public enum Lookup: Sendable {
        /// Known without a call: cached, malformed (no directives), or no source configured.
        case ready([String])
        /// Over the global rate: not sent.
        case refused
        /// A call is under way (this lookup may have started it).
        case pending(Task<[String], Never>)
    }

    private struct Cached {
        let directives: [String]
        let expiresAt: Double
    }

    private struct State {
        var cached: [String: Cached] = [:]
        var inFlight: [String: Task<[String], Never>] = [:]
        var budget: CallBudget
        var calls = 0
        var refusals = 0
    }

    private let source: any HandshakePayloadSource
    private let limits: Limits
    private let clock: @Sendable () -> Double
    private let state: Mutex<State>

    public init(source: any HandshakePayloadSource, limits: Limits = Limits(), clock: @escaping @Sendable () -> Double = KeyStore.monotonicSeconds) {
        self.source = source
        self.limits = limits
        self.clock = clock
        self.state = Mutex(State(budget: CallBudget(burst: limits.burst, perSecond: limits.perSecond, clientBurst: limits.clientBurst,
                                                    clientPerSecond: limits.clientPerSecond, maxClients: limits.maxClients, now: clock())))
    }

    /// Backend API calls made.
    public var calls: Int { state.withLock { $0.calls } }
    /// Nonces refused over the rate.
    public var refusals: Int { state.withLock { $0.refusals } }

    /// Clerk's nonces are short URL-safe identifiers; anything else is not worth a call.
    public static func isWellFormed(_ nonce: String) -> Bool {
        let bytes = nonce.utf8
        return (1...128).contains(bytes.count) && bytes.allSatisfy { b in
            (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
                || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "_") || b == UInt8(ascii: "-")
        }
    }

    /// What is known without starting a call: a cached outcome, a malformed nonce, a call under way, or a
    /// refusal over the rate; nil when a call would start, which only `lookup` does. The path that must not
    /// wait uses this, so a call is only ever started by a caller that waits for it: a call started and left
    /// behind could finish before the waiting caller looked, which (successes are not kept) then sent the
    /// used nonce a second time and signed nobody in.
    public func peek(_ nonce: String, client: String) -> Lookup? {
        guard HandshakeNonceExchange.isWellFormed(nonce) else { return .ready([]) }
        return state.withLock { state in
            let now = clock()
            if let hit = state.cached[nonce], hit.expiresAt > now { return .ready(hit.directives) }
            if let task = state.inFlight[nonce] { return .pending(task) }
            if !state.budget.allows(client, now: now) {
                state.refusals += 1
                return .refused
            }
            return nil
        }
    }

    /// - Parameter client: who asks (`CanonicalRequest.clientAddress`); each address has its own small bucket.
    public func lookup(_ nonce: String, client: String) -> Lookup {
        guard HandshakeNonceExchange.isWellFormed(nonce) else { return .ready([]) }
        return state.withLock { state in
            let now = clock()
            if let hit = state.cached[nonce], hit.expiresAt > now { return .ready(hit.directives) }
            if let task = state.inFlight[nonce] { return .pending(task) }
            guard state.budget.spend(client, now: now) else {
                state.refusals += 1
                return .refused
            }
            state.calls += 1
            let source = self.source
            // Created under the lock: its `finish` waits for the lock, so it always finds its entry.
            let task = Task { [self] in
                // Clerk logs a failed exchange and goes on with no directives (which signs nobody in).
                let directives = (try? await source.directives(nonce: nonce)) ?? []
                self.finish(nonce, directives)
                return directives
            }
            state.inFlight[nonce] = task
            return .pending(task)
        }
    }

    private func finish(_ nonce: String, _ directives: [String]) {
        state.withLock { state in
            let now = clock()
            state.inFlight[nonce] = nil
            // Only failures are kept: a success replayed from here would hand a used nonce's session to
            // whoever presents that nonce next.
            guard directives.isEmpty else { return }
            if state.cached.count >= limits.maxCached {
                state.cached = state.cached.filter { $0.value.expiresAt > now }
                if state.cached.count >= limits.maxCached { state.cached.removeAll(keepingCapacity: true) }
            }
            state.cached[nonce] = Cached(directives: directives, expiresAt: now + limits.cacheSeconds)
        }
    }
}
