import NIOCore
import NIOPosix
import Synchronization

/// Whether the public listener really serves, for `/readyz`: a listener can accept connections and still reset
/// every one, when setting a child's socket options or building its pipeline fails (an unprivileged process
/// setting `SO_DEBUG` did exactly that while health checks said 200). NIO's accept handler passes each accepted
/// connection on once it is set up, or fires the error on the server channel instead; `ListenerHealthHandler`
/// sits after it and records which.
final class ListenerHealth: Sendable {
    enum Outcome: Sendable, Equatable {
        /// No connection accepted yet: readiness probes the listener itself.
        case unverified
        /// The most recent accepted connection was set up.
        case serving
        /// The most recent `consecutive` accepted connections failed setup (or accepting failed).
        case failing(consecutive: Int, error: String)
    }

    private let state = Mutex<(outcome: Outcome, generation: UInt64)>((.unverified, 0))
    /// Where the public listener is bound, for the self-probe.
    private let address = Mutex<SocketAddress?>(nil)

    var outcome: Outcome { state.withLock { $0.outcome } }
    var generation: UInt64 { state.withLock { $0.generation } }

    func listening(at address: SocketAddress?) { self.address.withLock { $0 = address } }

    /// Connections closed at once by `server.max_connections`, until the health handler sees them: a refusal by
    /// policy is neither a working setup nor a failed one. The channel is alive while listed (the accept path
    /// holds it), so its identifier cannot be reused meanwhile; bounded in case one never arrives (shutdown).
    private let refused = Mutex<Set<ObjectIdentifier>>([])

    func refusedByPolicy(_ channel: any Channel) {
        refused.withLock { set in
            if set.count >= 4096 { set.removeAll() }
            set.insert(ObjectIdentifier(channel))
        }
    }

    /// True (once) for a connection `refusedByPolicy` named.
    func takeRefusal(_ channel: any Channel) -> Bool {
        refused.withLock { $0.remove(ObjectIdentifier(channel)) != nil }
    }

    func recordServing() {
        state.withLock { state in
            state.outcome = .serving
            state.generation &+= 1
        }
    }

    func recordFailure(_ error: any Error) {
        state.withLock { state in
            if case .failing(let consecutive, _) = state.outcome {
                state.outcome = .failing(consecutive: consecutive + 1, error: "\(error)")
            } else {
                state.outcome = .failing(consecutive: 1, error: "\(error)")
            }
            state.generation &+= 1
        }
    }

    /// The answer for `/readyz`: nil when the listener serves, else why not. Unless the most recent
    /// connection was set up, one is opened to the listener (and held until its setup is recorded, at most
    /// `timeout`), so a transient failure clears itself and a listener no traffic has reached yet is checked.
    func problem(on eventLoop: any EventLoop, timeout: TimeAmount = .milliseconds(500)) -> EventLoopFuture<String?> {
        if outcome == .serving { return eventLoop.makeSucceededFuture(nil) }
        guard let target = address.withLock({ $0 }).map(ListenerHealth.reachable) else {
            return eventLoop.makeSucceededFuture("the public listener is not bound")
        }
        let before = generation
        let result = eventLoop.makePromise(of: String?.self)
        ClientBootstrap(group: eventLoop).connectTimeout(timeout).connect(to: target).whenComplete { connected in
            guard case .success(let probe) = connected else {
                result.succeed(self.describeProblem(connectError: connected))
                return
            }
            let deadline = NIODeadline.now() + timeout
            @Sendable func check() {
                if self.generation != before || NIODeadline.now() >= deadline {
                    probe.close(promise: nil)
                    result.succeed(self.describeProblem(connectError: nil))
                    return
                }
                eventLoop.scheduleTask(in: .milliseconds(5)) { check() }
            }
            eventLoop.execute { check() }
        }
        return result.futureResult
    }

    private func describeProblem(connectError: Result<any Channel, any Error>?) -> String? {
        if case .failure(let error)? = connectError { return "the public listener refuses connections (\(error))" }
        switch outcome {
        case .serving: return nil
        case .unverified: return "the public listener set up no connection within half a second"
        case .failing(let consecutive, let error):
            return "the public listener resets connections: the last \(consecutive) could not be set up (\(error))"
        }
    }

    /// A wildcard bind is probed on loopback.
    static func reachable(_ address: SocketAddress) -> SocketAddress {
        guard let ip = address.ipAddress, let port = address.port else { return address }
        let loopback = ip == "0.0.0.0" ? "127.0.0.1" : ip == "::" ? "::1" : nil
        return loopback.flatMap { try? SocketAddress(ipAddress: $0, port: port) } ?? address
    }
}

/// The last handler of the public server channel, after NIO's accept handler: a connection read here was set up;
/// an error here is a connection that could not be (or an accept that failed).
final class ListenerHealthHandler: ChannelInboundHandler {
    typealias InboundIn = any Channel
    let health: ListenerHealth
    let metrics: GatewayMetrics

    init(health: ListenerHealth, metrics: GatewayMetrics) {
        self.health = health
        self.metrics = metrics
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !health.takeRefusal(unwrapInboundIn(data)) { health.recordServing() }
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        health.recordFailure(error)
        metrics.connectionSetupFailed()
        context.fireErrorCaught(error)
    }
}
