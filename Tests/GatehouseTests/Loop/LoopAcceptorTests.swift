@testable import GatehouseLoop
import Glibc
import Synchronization
import Testing

/// An accept stand-in that plays a script of results and counts its calls (no real listener needed).
final class ScriptedAccept: @unchecked Sendable {
    private let state: Mutex<(script: [AcceptResult], calls: [UInt64])>
    let fallback: AcceptResult

    init(_ script: [AcceptResult], then fallback: AcceptResult) {
        state = Mutex((script, []))
        self.fallback = fallback
    }

    func accept(_ fd: Int32) -> AcceptResult {
        state.withLock { state in
            state.calls.append(MonotonicClock.nanoseconds())
            return state.script.isEmpty ? fallback : state.script.removeFirst()
        }
    }

    var callTimes: [UInt64] { state.withLock { $0.calls } }
    var remaining: Int { state.withLock { $0.script.count } }
}

private let fakePeer = SocketEndpoint(ip: "192.0.2.1", port: 1234)

@Suite("Loop: acceptor")
struct LoopAcceptorTests {
    /// A readable fd stands in for the listener: one edge, as a listener with a queued connection gives.
    private func start(_ scripted: ScriptedAccept, on loop: EventLoop, fd: Int32) throws -> AcceptLog {
        let log = AcceptLog()
        _ = try onLoop(loop) {
            let acceptor = try Acceptor(
                fd: fd, loop: loop, accept: scripted.accept,
                onAccept: { fd, _ in log.accepted.withLock { $0.append(fd) } },
                onAcceptError: { failure in log.errors.withLock { $0.append(failure) } })
            _ = acceptor  // the loop holds it while registered
            return 0
        }
        return log
    }

    @Test func outOfDescriptorsBacksOffInsteadOfSpinning() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let (a, b) = try makeSocketPair()
        defer { close(a); close(b) }
        // EMFILE forever, then (once the test lets it) connections again.
        let scripted = ScriptedAccept([], then: .outOfDescriptors(errno: EMFILE))
        writeByte(b)
        let log = try start(scripted, on: running.loop, fd: a)
        usleep(450_000)
        running.stop()  // joins the loop: the calls and errors read below are one moment's
        let calls = scripted.callTimes
        // One try at the edge, then one per 100 ms: ~5 in 450 ms. A spin would be thousands. The upper bound
        // comes from the span the calls really took (a loaded machine may sleep longer than asked).
        let span = (calls.last ?? 0) - (calls.first ?? 0)
        #expect(calls.count >= 2 && calls.count <= Int(span / 95_000_000) + 2, "\(calls.count) accept calls in \(span / 1_000_000) ms")
        let shortestGap = zip(calls, calls.dropFirst()).map { $1 - $0 }.min() ?? .max
        #expect(shortestGap >= 95_000_000, "retried after \(shortestGap / 1_000) µs")
        #expect(log.errors.withLock { $0 }.allSatisfy { $0 == EMFILE })
        #expect(log.errors.withLock { $0.count } == calls.count)
    }

    @Test func afterTheBackoffItAcceptsWhatWaitedWithoutANewEdge() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let (a, b) = try makeSocketPair()
        defer { close(a); close(b) }
        let script: [AcceptResult] =
            [.outOfDescriptors(errno: ENFILE)] + (0..<3).map { .accepted(fd: 100 + $0, peer: fakePeer) }
        let scripted = ScriptedAccept(script, then: .wouldBlock)
        writeByte(b)
        let log = try start(scripted, on: running.loop, fd: a)
        #expect(waitUntil(5) { log.accepted.withLock { $0.count } == 3 && scripted.callTimes.count == 5 })
        #expect(log.accepted.withLock { $0 } == [100, 101, 102])
        #expect(log.errors.withLock { $0 } == [ENFILE])
        let calls = scripted.callTimes
        #expect(calls.count == 5, "EMFILE, three connections, EAGAIN")
        #expect(calls[1] - calls[0] >= 95_000_000, "the retry waited for the backoff")
    }

    @Test func aBusyListenerIsDrainedInTurnsWithoutANewEdge() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let (a, b) = try makeSocketPair()
        defer { close(a); close(b) }
        let backlog = 3 * Acceptor.acceptsPerWake + 5
        let scripted = ScriptedAccept(
            (0..<backlog).map { .accepted(fd: Int32(1000 + $0), peer: fakePeer) }, then: .wouldBlock)
        writeByte(b)  // a single edge for the whole backlog
        let log = try start(scripted, on: running.loop, fd: a)
        #expect(waitUntil(5) { log.accepted.withLock { $0.count } == backlog && scripted.callTimes.count > backlog })
        usleep(20_000)  // room for a wrong extra call to show
        #expect(log.accepted.withLock { $0 } == (0..<backlog).map { Int32(1000 + $0) })
        #expect(scripted.callTimes.count == backlog + 1, "each connection once, then one EAGAIN")
        #expect(log.errors.withLock { $0 }.isEmpty)
    }

    @Test func acceptsRealConnectionsAndCloses() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let loop = running.loop
        let listener = try Socket.listen(host: "127.0.0.1", port: 0, reusePort: false)
        let port = Socket.localAddress(listener)!.port
        let peers = Mutex<[SocketEndpoint]>([])
        let acceptor = try onLoop(loop) {
            UncheckedBox(
                try Acceptor(
                    fd: listener, loop: loop,
                    onAccept: { fd, peer in
                        peers.withLock { $0.append(peer) }
                        Socket.close(fd)
                    }, onAcceptError: { _ in }))
        }
        let address = Socket.resolve(host: "127.0.0.1", port: port)[0]
        var clients: [Int32] = []
        for _ in 0..<5 {
            switch Socket.connect(address) {
            case .inProgress(let fd), .connected(let fd): clients.append(fd)
            case .failed(let failure): Issue.record("connect: errno \(failure)")
            }
        }
        defer { clients.forEach(Socket.close) }
        #expect(waitUntil(5) { peers.withLock { $0.count } == clients.count })
        #expect(peers.withLock { $0 }.allSatisfy { $0.ip == "127.0.0.1" })
        try onLoop(loop) { acceptor.value.close(); acceptor.value.close() }
        #expect(try onLoop(loop) { loop.registrationCount } == 0)
        // Closed: the port refuses now (the fd number itself may already be reused by a parallel test).
        switch Socket.connect(address) {
        case .failed(let failure):
            #expect(failure == ECONNREFUSED)
        case .inProgress(let fd), .connected(let fd):
            var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            _ = poll(&entry, 1, 2000)
            #expect(Socket.connectOutcome(fd) == ECONNREFUSED, "the listener is closed")
            Socket.close(fd)
        }
    }
}

final class AcceptLog: Sendable {
    let accepted = Mutex<[Int32]>([])
    let errors = Mutex<[Int32]>([])
}

/// Carries a loop-confined object back to the test thread (used there only through onLoop).
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
