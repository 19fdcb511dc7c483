import GatehouseLoop
import Glibc
import Synchronization
import Testing

@Suite("Loop: event loop over socketpairs")
struct LoopEventLoopTests {
    @Test func readableEventArrives() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let loop = running.loop
        let (a, b) = try makeSocketPair()
        defer { close(a); close(b) }
        let handler = RecordingHandler()
        _ = try onLoop(loop) { try loop.register(fd: a, handler: handler) }
        #expect(!handler.sawReadable, "nothing to read yet")
        writeByte(b)
        #expect(waitUntil { handler.sawReadable })
        #expect(!handler.sawWritable, "writable was not asked for")
    }

    @Test func writableOnlyWhenArmed() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let loop = running.loop
        let (a, b) = try makeSocketPair()
        defer { close(a); close(b) }
        let handler = RecordingHandler()
        let registration = try onLoop(loop) { try loop.register(fd: a, handler: handler, readable: true) }
        writeByte(b)
        #expect(waitUntil { handler.sawReadable })
        #expect(!handler.sawWritable)
        #expect(try onLoop(loop) { loop.update(registration, readable: true, writable: true) })
        #expect(waitUntil { handler.sawWritable }, "an idle socket is writable once armed")
    }

    @Test func peerShutdownIsReportedAsReadHangup() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let loop = running.loop
        let (a, b) = try makeSocketPair()
        defer { close(a); close(b) }
        let handler = RecordingHandler()
        _ = try onLoop(loop) { try loop.register(fd: a, handler: handler) }
        shutdown(b, Int32(SHUT_WR))
        #expect(waitUntil { handler.events.contains { $0.contains(.readHangup) } })
    }

    @Test func deregisteredHandlerGetsNothing() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let loop = running.loop
        let (a, b) = try makeSocketPair()
        defer { close(a); close(b) }
        let handler = RecordingHandler()
        let registration = try onLoop(loop) { try loop.register(fd: a, handler: handler) }
        try onLoop(loop) { loop.deregister(registration) }
        writeByte(b)
        usleep(50_000)
        #expect(handler.events.isEmpty)
        #expect(try onLoop(loop) { loop.registrationCount } == 0)
    }

    @Test func deregisterAndCloseClosesAfterRemoving() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let loop = running.loop
        let (a, b) = try makeSocketPair()
        defer { close(b) }
        let handler = RecordingHandler()
        let registration = try onLoop(loop) { try loop.register(fd: a, handler: handler) }
        try onLoop(loop) { loop.deregisterAndClose(registration) }
        var byte: UInt8 = 0
        let written = withUnsafeBytes(of: &byte) { Socket.write(b, $0) }  // MSG_NOSIGNAL: SIGPIPE is not ignored here
        #expect(written == .failed(errno: EPIPE), "the peer sees the close")
        #expect(handler.events.isEmpty)
        #expect(try onLoop(loop) { loop.registrationCount } == 0)
    }

    /// Both fds are ready in the same epoll_wait batch; whichever runs first deregisters the other, whose event
    /// from that same batch must then be dropped.
    @Test func deregisteringMidBatchDropsTheRestOfTheBatch() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let loop = running.loop
        let (a1, b1) = try makeSocketPair()
        let (a2, b2) = try makeSocketPair()
        defer { for fd in [a1, b1, a2, b2] { close(fd) } }
        let first = RecordingHandler()
        let second = RecordingHandler()
        let registrations = Mutex<[Registration]>([])
        first.onReady = { _ in registrations.withLock { loop.deregister($0[1]) } }
        second.onReady = { _ in registrations.withLock { loop.deregister($0[0]) } }
        // Both become readable before the loop next waits: written inside the same loop turn.
        try onLoop(loop) {
            let one = try loop.register(fd: a1, handler: first)
            let two = try loop.register(fd: a2, handler: second)
            registrations.withLock { $0 = [one, two] }
            writeByte(b1)
            writeByte(b2)
        }
        #expect(waitUntil { first.events.count + second.events.count >= 1 })
        usleep(50_000)
        #expect(first.events.count + second.events.count == 1, "the deregistered one got its batched event")
    }

    /// Whichever of two batched handlers runs first deregisters the other and hands its slot to a third one on
    /// an idle fd: the batched event of the old owner must not reach the new one (the generation check).
    @Test func aBatchedEventForAReusedSlotGoesNowhere() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let loop = running.loop
        let (a1, b1) = try makeSocketPair()
        let (a2, b2) = try makeSocketPair()
        let (idle, idlePeer) = try makeSocketPair()
        defer { for fd in [a1, b1, a2, b2, idle, idlePeer] { close(fd) } }
        let first = RecordingHandler()
        let second = RecordingHandler()
        let newcomer = RecordingHandler()
        let state = Mutex<(registrations: [Registration], reused: Registration?)>(([], nil))
        func takeOver(_ victim: Int) {
            state.withLock { state in
                guard state.reused == nil else { return }
                loop.deregister(state.registrations[victim])
                state.reused = try? loop.register(fd: idle, handler: newcomer)
            }
        }
        first.onReady = { _ in takeOver(1) }
        second.onReady = { _ in takeOver(0) }
        try onLoop(loop) {
            let one = try loop.register(fd: a1, handler: first)
            let two = try loop.register(fd: a2, handler: second)
            state.withLock { $0.registrations = [one, two] }
            writeByte(b1)
            writeByte(b2)
        }
        #expect(waitUntil { state.withLock { $0.reused } != nil })
        usleep(50_000)
        let (registrations, reused) = state.withLock { ($0.registrations, $0.reused!) }
        #expect(registrations.map(\.slot).contains(reused.slot), "the victim's slot was reused")
        #expect(newcomer.events.isEmpty, "the old owner's batched event reached the new one: \(newcomer.events)")
        #expect(first.events.count + second.events.count == 1)
    }

    @Test func staleRegistrationIsIgnoredAfterSlotReuse() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let loop = running.loop
        let (a, b) = try makeSocketPair()
        let (c, d) = try makeSocketPair()
        defer { for fd in [a, b, c, d] { close(fd) } }
        let old = RecordingHandler()
        let new = RecordingHandler(loop: loop)
        let (stale, fresh) = try onLoop(loop) {
            let stale = try loop.register(fd: a, handler: old)
            loop.deregister(stale)
            let fresh = try loop.register(fd: c, handler: new)
            return (stale, fresh)
        }
        #expect(stale.slot == fresh.slot, "the slot is reused")
        #expect(stale.generation != fresh.generation)
        try onLoop(loop) {
            // None of these may touch the new owner of the slot.
            loop.deregister(stale)
            loop.setDeadline(stale, at: loop.now)
            _ = loop.update(stale, readable: false, writable: false)
        }
        #expect(try onLoop(loop) { !loop.isRegistered(stale) && loop.isRegistered(fresh) })
        writeByte(d)
        writeByte(b)
        #expect(waitUntil { new.sawReadable }, "still registered and readable")
        usleep(30_000)
        #expect(new.deadlines.isEmpty, "the stale setDeadline did not reach it")
        #expect(old.events.isEmpty)
    }

    @Test func executeFromAnotherThreadWakesABlockedLoop() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let loop = running.loop
        _ = try onLoop(loop) { 0 }
        usleep(100_000)  // the loop is now in epoll_wait with its 1 s timeout
        let ranAt = Atomic<UInt64>(0)
        let sentAt = MonotonicClock.nanoseconds()
        loop.execute { ranAt.store(MonotonicClock.nanoseconds(), ordering: .relaxed) }
        #expect(waitUntil(5) { ranAt.load(ordering: .relaxed) != 0 })
        let latency = ranAt.load(ordering: .relaxed) &- sentAt
        // Far below the 1 s epoll timeout; generous for a loaded 2-core machine.
        #expect(latency < 500_000_000, "woke after \(latency / 1000) µs")
    }

    @Test func executeRunsEveryItemInOrder() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let loop = running.loop
        let seen = Mutex<[Int]>([])
        for value in 0..<1000 { loop.execute { seen.withLock { $0.append(value) } } }
        #expect(waitUntil { seen.withLock { $0.count } == 1000 })
        #expect(seen.withLock { $0 } == Array(0..<1000))
    }

    @Test func deadlinesFireAndCancelledOnesDoNot() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let loop = running.loop
        let (a, b) = try makeSocketPair()
        let (c, d) = try makeSocketPair()
        defer { for fd in [a, b, c, d] { close(fd) } }
        let due = RecordingHandler(loop: loop)
        let cancelled = RecordingHandler(loop: loop)
        let deadline = try onLoop(loop) {
            let one = try loop.register(fd: a, handler: due)
            let two = try loop.register(fd: c, handler: cancelled)
            let deadline = MonotonicClock.nanoseconds() + 30_000_000
            loop.setDeadline(one, at: deadline)
            loop.setDeadline(two, at: deadline)
            loop.setDeadline(two, at: nil)
            return deadline
        }
        #expect(waitUntil(5) { !due.deadlines.isEmpty })
        usleep(60_000)
        #expect(due.deadlines.count == 1, "once")
        #expect(due.deadlines.allSatisfy { $0 >= deadline }, "not early")
        #expect(cancelled.deadlines.isEmpty)
    }

    @Test func stopReturnsAndJoinsIdempotently() throws {
        let group = try LoopGroup(threads: 2)
        group.start()
        let threadNames = Mutex<[String]>([])
        for index in 0..<2 {
            _ = try onLoop(group.loops[index]) {
                let name = LoopGroup.currentThreadName()
                threadNames.withLock { $0.append(name) }
                return 0
            }
        }
        #expect(Set(threadNames.withLock { $0 }) == ["gatehouse-lp-0", "gatehouse-lp-1"])
        let started = MonotonicClock.nanoseconds()
        group.stop()
        #expect(MonotonicClock.nanoseconds() - started < 900_000_000, "stop wakes the loops, not their timeout")
        group.stop()
        // Joined: the loops are no longer running anything queued.
        let ran = Atomic<Bool>(false)
        group.loops[0].execute { ran.store(true, ordering: .relaxed) }
        usleep(20_000)
        let ranAfterStop = ran.load(ordering: .relaxed)
        #expect(!ranAfterStop)
    }
}
