import GatehouseCore
import GatehouseDataPlane
import GatehouseLoop
import GatehouseTLS

#if canImport(Glibc)
import Glibc
#endif

/// One connection to an upstream on a data-plane loop. It stays registered with the loop for its whole life
/// (no epoll_ctl per request): while a client connection uses it, its events go to that connection; while it
/// idles in the pool, any byte or close from the upstream ends it.
final class UpstreamLink: LoopHandler {
    enum State {
        /// Non-blocking connect under way; the next addresses are tried if this one fails.
        case connecting(remaining: [ResolvedAddress])
        /// `https://`: connected, TLS handshake (with certificate and name verification) under way.
        case handshaking
        case open
        case idle
        case closed
    }

    private(set) var fd: Int32
    private var registration: Registration?
    let target: UpstreamTarget
    unowned let plane: LoopPlane
    /// Plain, or TLS verified against the trust store of `trustGeneration`.
    let transport: SocketTransport
    let trustGeneration: Int
    /// The client connection using it (nil while idle).
    var owner: ClientConnection?
    var state: State
    /// Edge-triggered readiness as last reported and not yet used up.
    var readable = false
    var writable = false
    /// The upstream's close was announced (EPOLLRDHUP/HUP/ERR), maybe with the response's last bytes: a short
    /// read then leaves the end unread, and no later edge repeats it.
    private(set) var peerClosed = false
    private var idleUntil: UInt64?
    /// What the loop's timer wheel holds for this link.
    private var armedDeadline: UInt64?

    /// A link whose connect is under way (`connected()` says when it is up, by the caller or on writable).
    init(fd: Int32, target: UpstreamTarget, plane: LoopPlane, remaining: [ResolvedAddress],
         transport: SocketTransport, trustGeneration: Int) throws {
        self.fd = fd
        self.target = target
        self.plane = plane
        self.transport = transport
        self.trustGeneration = trustGeneration
        self.state = .connecting(remaining: remaining)
        registration = try plane.loop.register(fd: fd, handler: self, readable: true, writable: true)
    }

    /// After the TCP connection is up: open, or the TLS handshake first. False when it failed at once.
    func connected() -> Bool {
        writable = true
        guard transport.isTLS else {
            state = .open
            return true
        }
        state = .handshaking
        if case .failed = transport.advanceHandshake(fd) { return false }
        return true
    }

    func ready(_ events: ReadyEvents) {
        switch state {
        case .connecting(let remaining):
            guard !events.isDisjoint(with: [.writable, .error, .hangup]) else { return }
            let failure = Socket.connectOutcome(fd)
            if failure == 0 {
                readable = events.contains(.readable)
                guard connected() else {
                    failHandshake()
                    return
                }
                if case .open = state { owner?.upstreamConnected(self) }
                return
            }
            retry(remaining)
        case .handshaking:
            if events.contains(.writable) { transport.flush(fd) }
            let (progress, socket) = transport.continueHandshake(fd)
            switch progress {
            case .complete:
                state = .open
                readable = true  // plaintext may have come with the last handshake bytes
                owner?.upstreamConnected(self)
            case .failed:
                failHandshake()
            case .inProgress:
                if case .endOfFile = socket { failHandshake() } else if case .failed = socket { failHandshake() }
            }
        case .open:
            if !events.isDisjoint(with: [.readable, .readHangup, .hangup, .error]) { readable = true }
            if !events.isDisjoint(with: [.readHangup, .hangup, .error]) { peerClosed = true }
            if events.contains(.writable) { writable = true }
            owner?.pump()
        case .idle:
            // Nothing is expected from an idle upstream but TLS session tickets: bytes of a response or a
            // close end it.
            if transport.isTLS {
                var scratch = ByteQueue()
                let (result, _) = transport.read(fd, into: &scratch)
                if case .bytes(0) = result, scratch.isEmpty { return }
                if case .wouldBlock = result, scratch.isEmpty { return }
            }
            plane.pool.remove(self)
            close()
        case .closed:
            break
        }
    }

    private func failHandshake() {
        let reason = transport.failure?.reason ?? "the upstream closed the connection during the TLS handshake"
        let owner = self.owner
        close()
        owner?.upstreamConnectFailed(self, reason: .tls(reason))
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
        owner?.upstreamConnectFailed(self, reason: .refused)
    }

    func deadlinePassed() {
        armedDeadline = nil  // the loop forgets a deadline once it fired
        guard case .idle = state, let until = idleUntil else { return }
        if until <= plane.loop.now {
            plane.pool.remove(self)
            close()
        } else {
            // Armed for an earlier idle spell (see setIdleDeadline): this one ends later.
            setIdleDeadline(until)
        }
    }

    /// Whether the socket may still hold bytes (or an end) not read yet: the last read filled its buffer, so
    /// the edge it came with is used up. Peeked without taking anything.
    var mayHoldUnreadInput: Bool {
        if peerClosed { return true }
        guard readable, fd >= 0 else { return false }
        return socketHoldsInput
    }

    /// Whether an idle link's socket holds anything: bytes, an end or an error. Peeked without taking anything,
    /// whatever the readiness flags say (the event announcing it may still be on its way in this pass).
    var receivedWhileIdle: Bool {
        if peerClosed { return true }
        guard fd >= 0 else { return true }
        return socketHoldsInput
    }

    /// The socket holds bytes, an end or an error (a one-byte peek that takes nothing).
    private var socketHoldsInput: Bool {
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        return n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)
    }

    /// When an idle link is closed (nil: in use). Armed lazily, as a client connection's deadline: a time armed
    /// earlier stays in the wheel (firing early, it only re-arms), so taking a link from the pool and putting it
    /// back no longer cancels and re-arms the wheel on every request.
    func setIdleDeadline(_ at: UInt64?) {
        idleUntil = at
        guard let at, let registration else { return }
        if let armed = armedDeadline, armed <= at { return }
        armedDeadline = at
        plane.loop.setDeadline(registration, at: at)
    }

    func close() {
        if case .closed = state, registration == nil { return }
        switch state {
        case .open, .idle: transport.closeNotify(fd)
        case .connecting, .handshaking, .closed: break
        }
        state = .closed
        owner = nil
        deregisterAndClose()
    }

    private func deregisterAndClose() {
        if let registration {
            plane.loop.deregisterAndClose(registration)
        } else if fd >= 0 {
            Socket.close(fd)
        }
        registration = nil
        armedDeadline = nil
        fd = -1
    }
}
