import GatehouseCore
import GatehouseLoop

/// One connection to an upstream on a data-plane loop. It stays registered with the loop for its whole life
/// (no epoll_ctl per request): while a client connection uses it, its events go to that connection; while it
/// idles in the pool, any byte or close from the upstream ends it.
final class UpstreamLink: LoopHandler {
    enum State {
        /// Non-blocking connect under way; the next addresses are tried if this one fails.
        case connecting(remaining: [ResolvedAddress])
        case open
        case idle
        case closed
    }

    private(set) var fd: Int32
    private var registration: Registration?
    let target: UpstreamTarget
    unowned let plane: LoopPlane
    /// The client connection using it (nil while idle).
    var owner: ClientConnection?
    var state: State
    /// Edge-triggered readiness as last reported and not yet used up.
    var readable = false
    var writable = false
    /// Has it carried a request before (a pooled connection may have been closed by the upstream meanwhile)?
    var carriedRequest = false

    init(fd: Int32, target: UpstreamTarget, plane: LoopPlane, state: State) throws {
        self.fd = fd
        self.target = target
        self.plane = plane
        self.state = state
        registration = try plane.loop.register(fd: fd, handler: self, readable: true, writable: true)
        if case .open = state { writable = true }
    }

    func ready(_ events: ReadyEvents) {
        switch state {
        case .connecting(let remaining):
            guard !events.isDisjoint(with: [.writable, .error, .hangup]) else { return }
            let failure = Socket.connectOutcome(fd)
            if failure == 0 {
                state = .open
                writable = true
                readable = events.contains(.readable)
                owner?.upstreamConnected(self)
                return
            }
            retry(remaining)
        case .open:
            if !events.isDisjoint(with: [.readable, .readHangup, .hangup, .error]) { readable = true }
            if events.contains(.writable) { writable = true }
            owner?.pump()
        case .idle:
            // Nothing is expected from an idle upstream: bytes or a close both end it.
            plane.pool.remove(self)
            close()
        case .closed:
            break
        }
    }

    /// The next address, or the failure reported to the owner.
    private func retry(_ remaining: [ResolvedAddress]) {
        deregisterAndClose()
        var rest = remaining
        while !rest.isEmpty {
            let next = rest.removeFirst()
            switch Socket.connect(next) {
            case .connected(let newFD), .inProgress(let newFD):
                fd = newFD
                do {
                    registration = try plane.loop.register(fd: newFD, handler: self, readable: true, writable: true)
                    state = .connecting(remaining: rest)
                    return
                } catch {
                    Socket.close(newFD)
                }
            case .failed:
                continue
            }
        }
        state = .closed
        owner?.upstreamConnectFailed(self)
    }

    func deadlinePassed() {
        if case .idle = state {
            plane.pool.remove(self)
            close()
        }
    }

    func setIdleDeadline(_ at: UInt64?) {
        if let registration { plane.loop.setDeadline(registration, at: at) }
    }

    func close() {
        if case .closed = state, registration == nil { return }
        state = .closed
        owner = nil
        deregisterAndClose()
    }

    private func deregisterAndClose() {
        if let registration { plane.loop.deregister(registration) }
        registration = nil
        if fd >= 0 { Socket.close(fd) }
        fd = -1
    }
}
