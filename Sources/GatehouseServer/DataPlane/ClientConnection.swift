import Foundation
import GatehouseAuth
import GatehouseConfig
import GatehouseCore
import GatehouseDataPlane
import GatehouseEngine
import GatehouseHTTP1
import GatehouseLoop
import GatehouseTLS

/// A client connection of the data plane: the thin loop around a `ConnectionMachine`. It is the only code
/// that touches this connection's sockets; every choice is the machine's (framing, deadlines, relaying) or
/// the policy's (the verdict).
final class ClientConnection: LoopHandler, LoopPassObserver, @unchecked Sendable {
    private let fd: Int32
    private var registration: Registration?
    /// Strong, though the plane holds this connection too: each use of an `unowned` reference retained and
    /// released it (swift_unownedRetainStrong, ~0.5% of the CPU per request in perf, from a dozen uses per
    /// request). The cycle ends when the connection closes (`plane.closed` lets it go); planes live as long as
    /// their server.
    private let plane: LoopPlane
    private var machine: ConnectionMachine
    private let peer: String
    /// Plain, or TLS terminated here.
    private let transport: SocketTransport
    private var upstream: UpstreamLink?
    /// Edge-triggered readiness not yet used up.
    private var readable = false
    private var writable = true
    /// The client shut its side: read to the end even after a short read (the FIN may have come with data).
    private var peerClosing = false
    private var closed = false
    private var pumping = false
    private var pumpAgain = false
    /// Sockets are written at the end of the loop's pass, after every ready connection has been read and
    /// decided, so the sends of a pass leave in a burst: a peer on another core woken by the first one is still
    /// awake for the rest (one send at a time, each found it asleep again, and waking a sleeping core cost more
    /// in the kernel than the gateway's own work per request).
    private var writesNow = false
    private var flushQueued = false
    /// What the loop's timer wheel holds for this connection (see `armDeadline`).
    private var armedDeadline: UInt64?
    /// The actions being carried out; its storage and the machine's trade places (see `takeActions(into:)`).
    private var actionBatch: [ConnectionAction] = []
    /// The request being decided or relayed, for the access log.
    private var exchange: ExchangeLog?
    /// Bumped when an asynchronous decision or address lookup is no longer wanted.
    private var ticket: UInt64 = 0
    /// Request ids: a random 64-bit prefix per connection and a counter (no syscall per request).
    private let idPrefix = UInt64.random(in: 0...UInt64.max)
    private var idCounter: UInt64 = 0

    init(fd: Int32, plane: LoopPlane, peer: String, transport: SocketTransport, settings: ConnectionSettings, now: UInt64) throws {
        self.fd = fd
        self.plane = plane
        self.peer = peer
        self.transport = transport
        self.machine = ConnectionMachine(settings: settings, now: now)
        registration = try plane.loop.register(fd: fd, handler: self, readable: true, writable: true)
        armDeadline()
    }

    // MARK: Loop events

    func ready(_ events: ReadyEvents) {
        if !events.isDisjoint(with: [.readable, .readHangup, .hangup, .error]) { readable = true }
        if !events.isDisjoint(with: [.readHangup, .hangup, .error]) { peerClosing = true }
        if events.contains(.writable) { writable = true }
        pump()
    }

    func deadlinePassed() {
        armedDeadline = nil  // the loop forgets a deadline once it fired
        machine.deadlinePassed(now: plane.loop.now)
        pump()
    }

    func quiesce() {
        machine.quiesce(now: plane.loop.now)
        pump()
    }

    func forceClose() {
        if exchange != nil {
            finished(ExchangeRecord(status: 499, label: "shutdown", bodyBytesSent: 0, upstreamNanoseconds: nil, upstreamError: nil,
                                    refusedBeforeDecision: false))
        }
        closeClient()
    }

    /// Moves bytes and carries out actions until nothing more can happen without a new event.
    func pump() {
        if pumping {
            pumpAgain = true
            return
        }
        pumping = true
        lendBuffers()
        repeat {
            pumpAgain = false
            var progress = true
            while progress && !closed {
                progress = false
                runActions()
                if closed { break }
                if flushUpstream() { progress = true }
                if flushClient() { progress = true }
                if readClient() { progress = true }
                runActions()
                if closed { break }
                if readUpstream() { progress = true }
            }
        } while pumpAgain && !closed
        pumping = false
        guard !closed else { return }
        armDeadline()
        if machine.isIdle && upstream == nil { takeBuffersBack() }
    }

    /// Arms the machine's next deadline in the loop's timer wheel, lazily: one already armed earlier stays (when
    /// it fires, the machine acts only on what is due and the real one is armed then), so a deadline is never
    /// late, and keep-alive traffic, whose deadlines only move later, no longer re-arms the wheel every event.
    private func armDeadline() {
        guard let registration, let wanted = machine.nextDeadline() else { return }
        if let armed = armedDeadline, armed <= wanted { return }
        armedDeadline = wanted
        plane.loop.setDeadline(registration, at: wanted)
    }

    private func lendBuffers() {
        if machine.clientIn.capacity == 0 { machine.clientIn.adopt(plane.borrowBuffer()) }
        if machine.clientOut.capacity == 0 { machine.clientOut.adopt(plane.borrowBuffer()) }
        if machine.upstreamIn.capacity == 0 { machine.upstreamIn.adopt(plane.borrowBuffer()) }
        if machine.upstreamOut.capacity == 0 { machine.upstreamOut.adopt(plane.borrowBuffer()) }
    }

    private func takeBuffersBack() {
        if let b = machine.clientIn.releaseStorage() { plane.returnBuffer(b) }
        if let b = machine.clientOut.releaseStorage() { plane.returnBuffer(b) }
        if let b = machine.upstreamIn.releaseStorage() { plane.returnBuffer(b) }
        if let b = machine.upstreamOut.releaseStorage() { plane.returnBuffer(b) }
    }

    // MARK: Bytes

    private func readClient() -> Bool {
        guard readable, machine.readsClientNow() else { return false }
        let (result, drained) = transport.read(fd, into: &machine.clientIn)
        let now = plane.loop.now
        switch result {
        case .bytes:
            // A short read drained the socket (the edge-triggered rule nginx uses): no read just to see EAGAIN.
            if drained && !peerClosing { readable = false }
            machine.clientReceived(now: now)
        case .wouldBlock:
            readable = false
            return false
        case .endOfFile:
            readable = false
            machine.clientEndedInput(now: now)
        case .failed:
            readable = false
            machine.clientFailed(now: now)
        }
        return true
    }

    private func queueFlush() {
        guard !flushQueued else { return }
        flushQueued = true
        plane.loop.callAtEndOfPass(self)
    }

    func passEnded() {
        flushQueued = false
        guard !closed else { return }
        writesNow = true
        pump()
        writesNow = false
    }

    private func flushClient() -> Bool {
        guard writable, !closed, !machine.clientOut.isEmpty || transport.needsFlush else { return false }
        guard writesNow else {
            queueFlush()
            return false
        }
        let (result, socketFull) = transport.write(fd, from: &machine.clientOut)
        let now = plane.loop.now
        // Only a socket that refused bytes sends an edge when it drains; waiting for one otherwise would stall.
        if socketFull { writable = false }
        // TLS: what OpenSSL took may still wait as ciphertext; the machine closes only once it is out.
        machine.transportHoldsOutput = transport.needsFlush
        switch result {
        case .bytes:
            machine.clientWrote(now: now)
            return true
        case .wouldBlock, .endOfFile:
            machine.clientWriteBlocked(now: now)
            return false
        case .failed:
            writable = false
            machine.clientFailed(now: now)
            return true
        }
    }

    private func readUpstream() -> Bool {
        guard let link = upstream, case .open = link.state, link.readable, machine.wantsUpstreamRead else { return false }
        let (result, drained) = link.transport.read(link.fd, into: &machine.upstreamIn)
        let now = plane.loop.now
        switch result {
        case .bytes:
            // As for the client: after a close was announced, read on to the end (the FIN came with the data).
            if drained && !link.peerClosed { link.readable = false }
            machine.upstreamReceived(now: now)
        case .wouldBlock:
            link.readable = false
            return false
        case .endOfFile:
            link.readable = false
            machine.upstreamEndedInput(now: now)
        case .failed:
            link.readable = false
            machine.upstreamFailed(now: now)
        }
        return true
    }

    private func flushUpstream() -> Bool {
        guard let link = upstream, case .open = link.state, link.writable, !machine.upstreamOut.isEmpty || link.transport.needsFlush
        else { return false }
        guard writesNow else {
            queueFlush()
            return false
        }
        let (result, socketFull) = link.transport.write(link.fd, from: &machine.upstreamOut)
        if socketFull { link.writable = false }
        switch result {
        case .bytes:
            machine.upstreamWrote(now: plane.loop.now)
            return true
        case .wouldBlock, .endOfFile:
            return false
        case .failed:
            link.writable = false
            // Reading will tell the machine (a reset, or an end); a write error alone says the same.
            machine.upstreamFailed(now: plane.loop.now)
            return true
        }
    }

    // MARK: Actions

    private func runActions() {
        while !closed {
            machine.takeActions(into: &actionBatch)
            if actionBatch.isEmpty { return }
            for action in actionBatch { perform(action) }
        }
    }

    private func perform(_ action: ConnectionAction) {
        switch action {
        case .decide:
            // Nil only if the connection moved on in the same event (closing): nothing left to decide.
            if let head = machine.headToDecide { decide(head) }
        case .acquireUpstream(let target, let fresh):
            acquire(target, fresh: fresh)
        case .releaseUpstream:
            guard let link = upstream else { return }
            upstream = nil
            if link.mayHoldUnreadInput || link.transport.needsFlush {
                // (Or TLS still holds ciphertext of this request the socket has not taken: not idle yet.)
                // The response ended exactly where a full read did: what follows it in the socket (bytes the
                // upstream should not have sent, or its close) would be read as the next request's response,
                // maybe another client's. Edge-triggered, an idle link would never hear of it: not pooled.
                link.close()
                return
            }
            let proxy = plane.snapshot.settings.proxy
            plane.pool.release(link, maxIdle: proxy.maxIdleConnections, idleTimeout: proxy.idleTimeout, now: plane.loop.now)
        case .closeUpstream:
            ticket &+= 1
            guard let link = upstream else { return }
            upstream = nil
            if case .open = link.state, !machine.upstreamOut.isEmpty {
                // What the client sent last (a tunnel's closing frame) goes out if the socket takes it now.
                _ = link.transport.write(link.fd, from: &machine.upstreamOut)
            }
            link.close()
        case .upstreamError(let kind):
            plane.shared.state.metrics.recordUpstreamError(kind)
        case .finished(let record):
            finished(record)
        case .shutdownClientWrite:
            // TLS says it is done first (close_notify), so the client can tell the end from a truncation.
            transport.closeNotify(fd)
            _ = Socket.shutdownWrite(fd)
        case .closeClient:
            closeClient()
        }
    }

    private func closeClient() {
        guard !closed else { return }
        closed = true
        ticket &+= 1
        upstream?.close()
        upstream = nil
        if transport.isTLS, transport.tlsConnection?.isHandshakeComplete == true { transport.closeNotify(fd) }
        if let registration { plane.loop.deregister(registration) }
        registration = nil
        Socket.close(fd)
        machine.clientIn.removeAll()
        machine.clientOut.removeAll()
        machine.upstreamIn.removeAll()
        machine.upstreamOut.removeAll()
        takeBuffersBack()
        plane.closed(self)
    }

    // MARK: Deciding

    private func decide(_ head: RequestHead) {
        let snapshot = plane.snapshot
        machine.settings = plane.settings(snapshot)
        let now = plane.loop.now
        let (prepared, step) = machine.clientIn.withReadable { bytes in
            RequestPolicy.prepare(head, bytes, peer: peer, scheme: transport.isTLS ? "https" : "http", snapshot: snapshot, newRequestID: nextRequestID)
        }
        exchange = ExchangeLog(prepared: prepared, started: now, version: head.version)
        switch step {
        case .answered(let verdict):
            machine.decided(verdict, now: now)
        case .evaluate:
            let wall = Date().timeIntervalSince1970
            let gatekeeper = snapshot.gatekeeper
            // The common case decides right here on the loop; only a key fetch or a Backend API call needs a task.
            if let evaluation = prepared.evaluateWithoutFetching(gatekeeper, now: wall) {
                exchange?.evaluation = evaluation
                machine.decided(RequestPolicy.verdict(evaluation, prepared, snapshot: snapshot, peer: peer, now: wall), now: now)
                return
            }
            ticket &+= 1
            let wanted = ticket
            let loop = plane.loop
            let raw = prepared.raw
            let peer = self.peer
            Task {
                let evaluation = await gatekeeper.evaluate(raw, now: wall)
                let verdict = RequestPolicy.verdict(evaluation, prepared, snapshot: snapshot, peer: peer, now: wall)
                loop.execute { [self] in
                    guard !closed, ticket == wanted else { return }
                    exchange?.evaluation = evaluation
                    machine.decided(verdict, now: loop.now)
                    pump()
                }
            }
        }
    }

    private func nextRequestID() -> String {
        idCounter &+= 1
        return RequestID.hex(idPrefix, idCounter)
    }

    // MARK: Upstream connections

    private func acquire(_ target: UpstreamTarget, fresh: Bool) {
        let now = plane.loop.now
        let trust = target.tls ? plane.shared.trust : nil
        if !fresh, let link = plane.pool.takeIdle(target, trustGeneration: trust?.generation ?? 0) {
            link.owner = self
            link.state = .open
            link.writable = true
            upstream = link
            machine.upstreamAttached(reused: true, now: now)
            return
        }
        if let addresses = plane.pool.cachedAddresses(target, now: now) {
            connect(target, addresses)
            return
        }
        if CIDR.parseAddress(target.host) != nil {
            // An IP literal: getaddrinfo only converts it, nothing to wait for.
            let resolved = Socket.resolve(host: target.host, port: target.port)
            plane.pool.remember(resolved, for: target, now: now)
            connect(target, resolved)
            return
        }
        // A name: looked up off the loop, one lookup per name per loop at a time (LoopUpstreamPool.lookUp).
        ticket &+= 1
        let wanted = ticket
        plane.pool.lookUp(target, loop: plane.loop) { [self] resolved in
            guard !closed, ticket == wanted else { return }
            connect(target, resolved)
            pump()
        }
    }

    private func connect(_ target: UpstreamTarget, _ addresses: [ResolvedAddress]) {
        let now = plane.loop.now
        var transport = SocketTransport()
        var generation = 0
        if target.tls {
            // https:// upstreams (the Frontend API): certificates verified against the system roots or
            // proxy.tls_ca_file, and the name (SNI too, for names) checked.
            let trust = plane.shared.trust
            generation = trust.generation
            switch trust.context {
            case .success(let context):
                guard let tls = try? TLSConnection(client: context, serverName: target.host) else {
                    machine.upstreamUnavailable(.tls("cannot start a TLS connection to \(target.host)"), now: now)
                    return
                }
                transport = SocketTransport(tls: tls)
            case .failure(let problem):
                machine.upstreamUnavailable(.tls(problem.message), now: now)
                return
            }
        }
        var rest = addresses
        while !rest.isEmpty {
            let address = rest.removeFirst()
            let fd: Int32, connected: Bool
            switch Socket.connect(address) {
            case .connected(let newFD): (fd, connected) = (newFD, true)
            case .inProgress(let newFD): (fd, connected) = (newFD, false)
            case .failed: continue
            }
            guard let link = try? UpstreamLink(fd: fd, target: target, plane: plane, remaining: rest,
                                               transport: transport, trustGeneration: generation)
            else {
                Socket.close(fd)
                continue
            }
            link.owner = self
            upstream = link
            if connected {
                guard link.connected() else {
                    upstream = nil
                    let reason = link.transport.failure?.reason ?? "TLS handshake failed"
                    link.close()
                    machine.upstreamUnavailable(.tls(reason), now: now)
                    return
                }
                if case .open = link.state { machine.upstreamAttached(reused: false, now: now) }
            }
            return
        }
        machine.upstreamUnavailable(.refused, now: now)
    }

    func upstreamConnected(_ link: UpstreamLink) {
        guard link === upstream else { return }
        machine.upstreamAttached(reused: false, now: plane.loop.now)
        pump()
    }

    func upstreamConnectFailed(_ link: UpstreamLink, reason: UpstreamUnavailable) {
        guard link === upstream else { return }
        upstream = nil
        machine.upstreamUnavailable(reason, now: plane.loop.now)
        pump()
    }

    // MARK: Access log and metrics

    private func finished(_ record: ExchangeRecord) {
        let shared = plane.shared
        // Taken, not copied then cleared (a copy of the log retained every field of it once more).
        guard let log = exchange.take() else {
            shared.state.metrics.recordRejected(status: record.status)
            return
        }
        let seconds = Double(plane.loop.now - log.started) / 1e9
        let evaluation = log.evaluation
        let route = evaluation?.route?.name
        if evaluation?.request == nil {
            shared.state.metrics.recordRejected(status: record.status)
        } else {
            shared.state.metrics.recordRequest(route: route ?? "none", decision: record.label, status: record.status, seconds: seconds)
        }
        guard shared.accessLog.enabled else { return }
        // Read in place, once (`logFacts`): a copy of the AuthResult or its session retained every reference.
        let facts = evaluation?.authLogFacts
        // A `let`, all fields given: a `var` changed after its init was copied once more to be borrowed (perf).
        let entry = AccessLog.Entry(
            requestID: log.prepared.requestID, method: log.prepared.raw.method, path: evaluation?.request?.path.value,
            route: route, decision: record.label, status: record.status,
            userID: facts?.userID, authReason: facts?.reason,
            upstreamMilliseconds: record.upstreamNanoseconds.map { Double($0) / 1e6 }, durationMilliseconds: seconds * 1000,
            bytesSent: record.bodyBytesSent, clientAddress: peer, host: evaluation?.request?.host ?? log.prepared.host,
            userAgent: log.prepared.userAgent, protocolVersion: log.version == .http11 ? "HTTP/1.1" : "HTTP/1.0",
            tokenType: facts?.tokenType, machineSubject: facts?.machineSubject)
        shared.accessLog.write(entry)
    }
}

/// What the access log needs of the request in flight.
struct ExchangeLog {
    let prepared: RequestPolicy.Prepared
    var started: UInt64
    var version: GatehouseHTTP1.HTTPVersion
    var evaluation: Evaluation?
}
