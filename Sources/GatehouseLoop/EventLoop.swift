import CGatehouseSys
import Glibc
import Synchronization

/// One edge-triggered epoll loop, run by one thread. Everything except `execute` and `stop` must be called on
/// that thread (or before it runs).
///
/// A wake-up: epoll_wait (timeout from the timer wheel, at most 1 s), the ready handlers, the due deadlines, the
/// work queued by other threads, then the end-of-pass calls (`callAtEndOfPass`: the data plane's socket writes).
/// `now` is read once per wake-up.
public final class EventLoop: @unchecked Sendable {
    private struct Entry {
        var handler: (any LoopHandler)?
        var fd: Int32 = -1
        var generation: UInt32 = 0
        var readable = false
        var writable = false
        /// Mirrors the wheel so a deadline cancelled or moved by an earlier handler of the same pass is not fired.
        var deadline: UInt64?
    }

    /// epoll data of the wake-up eventfd (slot UInt32.max is never handed out).
    private static let wakeToken = UInt64.max
    private static let batchSize: Int32 = 128
    private static let longestWaitMilliseconds: UInt64 = 1000

    private let epollFD: Int32
    private let wakeFD: Int32
    private let events: UnsafeMutablePointer<epoll_event>
    private var entries: [Entry] = []
    private var freeSlots: [Int] = []
    private var wheel: TimerWheel
    private var expiredSlots: [Int] = []
    private var dueWork: [@Sendable () -> Void] = []
    private var passObservers: [any LoopPassObserver] = []
    private var endingPass: [any LoopPassObserver] = []

    private let queue = Mutex<[@Sendable () -> Void]>([])
    private let stopRequested = Atomic<Bool>(false)
    private let runningThread = Atomic<UInt>(0)

    /// The monotonic clock as of this wake-up (nanoseconds).
    public private(set) var now: UInt64

    public init() throws {
        let epollFD = ghsys_epoll_create()
        guard epollFD >= 0 else { throw SystemError("epoll_create1", errno: errno) }
        let wakeFD = ghsys_eventfd()
        guard wakeFD >= 0 else {
            let failure = errno
            Glibc.close(epollFD)
            throw SystemError("eventfd", errno: failure)
        }
        // Level-triggered: it stays ready until read, so a wake-up is never lost.
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u64 = Self.wakeToken
        guard epoll_ctl(epollFD, EPOLL_CTL_ADD, wakeFD, &event) == 0 else {
            let failure = errno
            Glibc.close(wakeFD)
            Glibc.close(epollFD)
            throw SystemError("epoll_ctl(eventfd)", errno: failure)
        }
        self.epollFD = epollFD
        self.wakeFD = wakeFD
        self.events = .allocate(capacity: Int(Self.batchSize))
        self.now = MonotonicClock.nanoseconds()
        self.wheel = TimerWheel(start: now)
    }

    deinit {
        events.deallocate()
        Glibc.close(wakeFD)
        Glibc.close(epollFD)
    }

    /// Ignores SIGPIPE process-wide (writes use MSG_NOSIGNAL too; this covers anything else, e.g. OpenSSL).
    public static func ignoreSIGPIPE() { _ = ignoreSIGPIPEOnce }
    private static let ignoreSIGPIPEOnce: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

    /// True on the thread currently inside `run()`.
    public var inEventLoop: Bool {
        let running = runningThread.load(ordering: .acquiring)
        return running != 0 && pthread_equal(pthread_t(running), pthread_self()) != 0
    }

    /// Number of live registrations.
    public var registrationCount: Int { entries.count - freeSlots.count }

    // MARK: Registrations

    /// Adds fd (edge-triggered, EPOLLRDHUP always). The loop holds `handler` until `deregister`.
    public func register(fd: Int32, handler: any LoopHandler, readable: Bool = true, writable: Bool = false) throws
        -> Registration
    {
        let slot: Int
        if let reused = freeSlots.popLast() {
            slot = reused
        } else {
            precondition(entries.count < Int(UInt32.max), "registration slots exhausted")
            slot = entries.count
            entries.append(Entry())
        }
        let registration = Registration(slot: slot, generation: entries[slot].generation)
        var event = epoll_event()
        event.events = Self.mask(readable: readable, writable: writable)
        event.data.u64 = registration.packed
        guard epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event) == 0 else {
            let failure = errno
            freeSlots.append(slot)
            throw SystemError("epoll_ctl(ADD)", errno: failure)
        }
        entries[slot].handler = handler
        entries[slot].fd = fd
        entries[slot].readable = readable
        entries[slot].writable = writable
        entries[slot].deadline = nil
        return registration
    }

    public func isRegistered(_ r: Registration) -> Bool {
        r.slot >= 0 && r.slot < entries.count && entries[r.slot].generation == r.generation
            && entries[r.slot].handler != nil
    }

    /// Changes the interest set; epoll_ctl(MOD) only when it differs. False for a stale registration or a failed MOD.
    @discardableResult
    public func update(_ r: Registration, readable: Bool, writable: Bool) -> Bool {
        guard isRegistered(r) else { return false }
        if entries[r.slot].readable == readable && entries[r.slot].writable == writable { return true }
        return modify(r, readable: readable, writable: writable)
    }

    /// epoll_ctl(MOD) even if nothing changed: with EPOLLET this re-reports a readiness that is still there.
    @discardableResult
    public func rearm(_ r: Registration) -> Bool {
        guard isRegistered(r) else { return false }
        return modify(r, readable: entries[r.slot].readable, writable: entries[r.slot].writable)
    }

    private func modify(_ r: Registration, readable: Bool, writable: Bool) -> Bool {
        var event = epoll_event()
        event.events = Self.mask(readable: readable, writable: writable)
        event.data.u64 = r.packed
        guard epoll_ctl(epollFD, EPOLL_CTL_MOD, entries[r.slot].fd, &event) == 0 else { return false }
        entries[r.slot].readable = readable
        entries[r.slot].writable = writable
        return true
    }

    /// Removes the registration (before its fd is closed: see `deregisterAndClose`). The handler gets nothing more, not even events
    /// already fetched in the current batch: the slot's generation moves on.
    public func deregister(_ r: Registration) {
        guard isRegistered(r) else { return }
        var unused = epoll_event()
        _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, entries[r.slot].fd, &unused)
        wheel.set(key: r.slot, deadline: nil)
        entries[r.slot] = Entry(generation: entries[r.slot].generation &+ 1)
        freeSlots.append(r.slot)
    }

    /// Deregisters, then closes the fd, in the only safe order: a DEL after the close could hit another socket
    /// that has meanwhile been given the same descriptor number.
    public func deregisterAndClose(_ r: Registration) {
        guard isRegistered(r) else { return }
        let fd = entries[r.slot].fd
        deregister(r)
        Glibc.close(fd)
    }

    /// Sets (or with nil cancels) the registration's one deadline; `deadlinePassed()` is called once when due.
    public func setDeadline(_ r: Registration, at deadline: UInt64?) {
        guard isRegistered(r) else { return }
        entries[r.slot].deadline = deadline
        wheel.set(key: r.slot, deadline: deadline)
    }

    // MARK: Cross-thread

    /// Runs `work` on the loop's thread soon. Callable from any thread; the eventfd is written only when the
    /// queue goes from empty to non-empty.
    public func execute(_ work: @escaping @Sendable () -> Void) {
        let wasEmpty = queue.withLock { queued in
            queued.append(work)
            return queued.count == 1
        }
        if wasEmpty { wake() }
    }

    /// Makes `run()` return after the current wake-up. Callable from any thread. Work still queued is not run.
    public func stop() {
        stopRequested.store(true, ordering: .releasing)
        wake()
    }

    private func wake() {
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)  // EAGAIN only when the counter is huge: a wake-up is pending anyway
    }

    // MARK: Running

    /// Runs on the calling thread until `stop()`.
    public func run() {
        runningThread.store(UInt(pthread_self()), ordering: .releasing)
        defer { runningThread.store(0, ordering: .releasing) }
        while !stopRequested.load(ordering: .acquiring) {
            let ready = epoll_wait(epollFD, events, Self.batchSize, waitMilliseconds())
            now = MonotonicClock.nanoseconds()
            if ready > 0 { dispatch(count: Int(ready)) }
            fireDeadlines()
            runQueuedWork()
            endPass()
        }
    }

    /// Calls `observer.passEnded()` once this pass's events, deadlines and queued work are handled (before
    /// the loop waits again). Each call asks for one call.
    public func callAtEndOfPass(_ observer: any LoopPassObserver) {
        passObservers.append(observer)
    }

    private func endPass() {
        // Observers may ask again while being called: those run in the same end, before the loop waits.
        while !passObservers.isEmpty {
            swap(&passObservers, &endingPass)
            for observer in endingPass { observer.passEnded() }
            endingPass.removeAll(keepingCapacity: true)
        }
    }

    private func waitMilliseconds() -> Int32 {
        guard let next = wheel.nextDeadline else { return Int32(Self.longestWaitMilliseconds) }
        let current = MonotonicClock.nanoseconds()
        if next <= current { return 0 }
        // Rounded up: waking before the deadline would only spin.
        let milliseconds = (next - current + 999_999) / 1_000_000
        return Int32(min(milliseconds, Self.longestWaitMilliseconds))
    }

    private func dispatch(count: Int) {
        for index in 0..<count {
            let event = events[index]
            let token = event.data.u64
            if token == Self.wakeToken {
                var counter: UInt64 = 0
                _ = Glibc.read(wakeFD, &counter, 8)
                continue
            }
            let r = Registration(packed: token)
            guard isRegistered(r), let handler = entries[r.slot].handler else { continue }
            handler.ready(ReadyEvents(epoll: event.events))
        }
    }

    private func fireDeadlines() {
        expiredSlots.removeAll(keepingCapacity: true)
        wheel.expire(now: now, into: &expiredSlots)
        for slot in expiredSlots {
            // An earlier handler of this pass may have cancelled, moved or deregistered this one.
            guard let deadline = entries[slot].deadline, deadline <= now, let handler = entries[slot].handler
            else { continue }
            entries[slot].deadline = nil
            wheel.set(key: slot, deadline: nil)  // an earlier handler may have re-set it to a time already past
            handler.deadlinePassed()
        }
    }

    private func runQueuedWork() {
        queue.withLock { queued in swap(&queued, &dueWork) }
        for work in dueWork { work() }
        dueWork.removeAll(keepingCapacity: true)
    }

    private static func mask(readable: Bool, writable: Bool) -> UInt32 {
        var mask = EPOLLET.rawValue | EPOLLRDHUP.rawValue
        if readable { mask |= EPOLLIN.rawValue }
        if writable { mask |= EPOLLOUT.rawValue }
        return mask
    }
}
