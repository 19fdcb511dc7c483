import GatehouseLoop
import Glibc
import Synchronization
import Testing

/// Records what the loop delivers, for assertions from the test thread.
final class RecordingHandler: LoopHandler, @unchecked Sendable {
    struct Record: Sendable {
        var events: [ReadyEvents] = []
        var deadlines: [UInt64] = []  // the loop's `now` at each deadlinePassed
    }
    let record = Mutex(Record())
    /// Runs on the loop thread inside `ready` (e.g. to deregister another handler mid-batch).
    var onReady: ((ReadyEvents) -> Void)?
    weak var loop: EventLoop?

    init(loop: EventLoop? = nil) { self.loop = loop }

    func ready(_ events: ReadyEvents) {
        record.withLock { $0.events.append(events) }
        onReady?(events)
    }

    func deadlinePassed() {
        let now = loop?.now ?? 0
        record.withLock { $0.deadlines.append(now) }
    }

    var events: [ReadyEvents] { record.withLock { $0.events } }
    var deadlines: [UInt64] { record.withLock { $0.deadlines } }
    var sawReadable: Bool { events.contains { $0.contains(.readable) } }
    var sawWritable: Bool { events.contains { $0.contains(.writable) } }
}

/// Runs `body` on the loop's thread and waits for its result (the loop must be running).
func onLoop<T: Sendable>(_ loop: EventLoop, _ body: @escaping @Sendable () throws -> T) throws -> T {
    let box = Mutex<Result<T, any Error>?>(nil)
    loop.execute { box.withLock { $0 = Result { try body() } } }
    let deadline = MonotonicClock.nanoseconds() + 5_000_000_000
    while MonotonicClock.nanoseconds() < deadline {
        if let result = box.withLock({ $0 }) { return try result.get() }
        usleep(200)
    }
    throw SystemError("loop did not run the work within 5 s", errno: ETIMEDOUT)
}

/// Polls until `condition` holds or `seconds` pass; returns whether it held.
@discardableResult
func waitUntil(_ seconds: Double = 5, _ condition: () -> Bool) -> Bool {
    let deadline = MonotonicClock.nanoseconds() + UInt64(seconds * 1e9)
    while MonotonicClock.nanoseconds() < deadline {
        if condition() { return true }
        usleep(500)
    }
    return condition()
}

/// A connected pair of non-blocking Unix stream sockets.
func makeSocketPair() throws -> (Int32, Int32) {
    var fds: [Int32] = [-1, -1]
    guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else {
        throw SystemError("socketpair", errno: errno)
    }
    for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
    return (fds[0], fds[1])
}

func writeByte(_ fd: Int32, _ byte: UInt8 = 0x61) {
    var value = byte
    _ = Glibc.write(fd, &value, 1)
}

/// One running loop on its own thread, stopped (and joined) by `stop()`.
final class RunningLoop: @unchecked Sendable {
    let group: LoopGroup
    var loop: EventLoop { group.loops[0] }

    init() throws {
        group = try LoopGroup(threads: 1)
        group.start()
    }

    func stop() { group.stop() }
}
