/// Accepts connections on one listener for one loop.
///
/// Edge-triggered: a readable edge means "drain until EAGAIN". At most `acceptsPerWake` per turn so one busy
/// listener does not starve the loop's other connections; the rest is picked up by a zero deadline (the next
/// wake-up) since no new edge would come. Out of descriptors (EMFILE…) the pending connection stays queued and
/// would make every wake-up fail again: accepting pauses for `backoffNanoseconds`, then retries.
public final class Acceptor: LoopHandler {
    public typealias AcceptFunction = (Int32) -> AcceptResult

    private enum State {
        case accepting
        /// Paused until the deadline: out of descriptors or another accept failure (never spin on an error).
        case backingOff
        case closed
    }

    public static let acceptsPerWake = 64
    public static let backoffNanoseconds: UInt64 = 100_000_000

    public let fd: Int32
    private let loop: EventLoop
    private let acceptOne: AcceptFunction
    private let onAccept: (Int32, SocketEndpoint) -> Void
    private let onAcceptError: (Int32) -> Void
    private var registration: Registration?
    private var state = State.accepting

    /// Registers the listener on `loop` (call on the loop's thread, or before it runs).
    public convenience init(
        fd: Int32, loop: EventLoop, onAccept: @escaping (Int32, SocketEndpoint) -> Void,
        onAcceptError: @escaping (Int32) -> Void
    ) throws {
        try self.init(fd: fd, loop: loop, accept: Socket.accept, onAccept: onAccept, onAcceptError: onAcceptError)
    }

    /// `accept` is injectable so tests can play EMFILE without exhausting real descriptors.
    init(
        fd: Int32, loop: EventLoop, accept: @escaping AcceptFunction,
        onAccept: @escaping (Int32, SocketEndpoint) -> Void, onAcceptError: @escaping (Int32) -> Void
    ) throws {
        self.fd = fd
        self.loop = loop
        self.acceptOne = accept
        self.onAccept = onAccept
        self.onAcceptError = onAcceptError
        registration = try loop.register(fd: fd, handler: self, readable: true, writable: false)
    }

    public func ready(_ events: ReadyEvents) {
        guard case .accepting = state else { return }  // the backoff deadline drains what arrived meanwhile
        drain()
    }

    public func deadlinePassed() {
        guard case .closed = state else {
            state = .accepting
            drain()
            return
        }
    }

    /// Deregisters and closes the listener. Idempotent.
    public func close() {
        guard let registration else { return }
        loop.deregister(registration)
        self.registration = nil
        state = .closed
        Socket.close(fd)
    }

    private func drain() {
        for _ in 0..<Self.acceptsPerWake {
            switch acceptOne(fd) {
            case .accepted(let connection, let peer):
                onAccept(connection, peer)
                // onAccept may have closed us.
                guard case .accepting = state else { return }
            case .wouldBlock:
                return
            case .outOfDescriptors(let failure), .failed(let failure):
                onAcceptError(failure)
                pause(for: Self.backoffNanoseconds)
                return
            }
        }
        pause(for: 0)
    }

    private func pause(for nanoseconds: UInt64) {
        guard let registration else { return }
        state = nanoseconds == 0 ? .accepting : .backingOff
        loop.setDeadline(registration, at: loop.now &+ nanoseconds)
    }
}
