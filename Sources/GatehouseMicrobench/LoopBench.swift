import Foundation
import GatehouseLoop

/// GatehouseLoop's per-request costs: re-setting a connection's deadline, one readiness hop through epoll
/// (event + read + write), and a cross-thread `execute` round trip. `gatehouse-microbench loop` runs only these.
func benchLoop() {
    var wheel = TimerWheel(start: MonotonicClock.nanoseconds())
    let base = MonotonicClock.nanoseconds()
    for key in 0..<10_000 { wheel.set(key: key, deadline: base + 30_000_000_000 + UInt64(key) * 1_000_000) }
    var key = 0
    var shift: UInt64 = 0
    measure("timer wheel: re-set one of 10,000 deadlines", iterations: 1_000_000) {
        key = (key &+ 7919) % 10_000
        shift &+= 1
        wheel.set(key: key, deadline: base + 30_000_000_000 + shift)
    }
    var expired: [Int] = []
    measure("timer wheel: expire + nextDeadline, nothing due", iterations: 1_000_000) {
        wheel.expire(now: base + 1_000, into: &expired)
        blackHole(wheel.nextDeadline)
    }
    benchPingPong()
    benchExecuteRoundTrip()
}

/// Two handlers on the ends of a socketpair bounce one byte on one loop: each hop is one epoll event, a read
/// and a write.
private func benchPingPong() {
    final class Bouncer: LoopHandler {
        let fd: Int32
        let loop: EventLoop
        let counter: Counter
        init(fd: Int32, loop: EventLoop, counter: Counter) {
            self.fd = fd
            self.loop = loop
            self.counter = counter
        }
        func ready(_ events: ReadyEvents) {
            var byte: UInt8 = 0
            guard case .bytes(1) = withUnsafeMutableBytes(of: &byte, { Socket.read(fd, into: $0) }) else { return }
            counter.hops += 1
            if counter.hops >= counter.target { return loop.stop() }
            _ = withUnsafeBytes(of: &byte) { Socket.write(fd, $0) }
        }
        func deadlinePassed() {}
    }
    final class Counter {
        var hops = 0
        let target: Int
        init(target: Int) { self.target = target }
    }
    var samples: [Double] = []
    for _ in 0..<5 {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0, let loop = try? EventLoop() else {
            return print("loop ping-pong: setup failed")
        }
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        let counter = Counter(target: 100_000)
        let bouncers = fds.map { Bouncer(fd: $0, loop: loop, counter: counter) }
        let registrations = bouncers.map { try! loop.register(fd: $0.fd, handler: $0) }
        var byte: UInt8 = 1
        _ = withUnsafeBytes(of: &byte) { Socket.write(fds[0], $0) }
        let start = MonotonicClock.nanoseconds()
        loop.run()
        samples.append(Double(MonotonicClock.nanoseconds() - start) / Double(counter.hops))
        registrations.forEach(loop.deregister)
        fds.forEach(Socket.close)
    }
    samples.sort()
    print(String(format: "%-58@ %10.0f ns/op", "event loop: one hop (epoll event + read + write)" as NSString, samples[2]))
}

/// From this thread to a loop thread and back: execute, eventfd wake-up, epoll_wait return, the work.
private func benchExecuteRoundTrip() {
    guard let group = try? LoopGroup(threads: 1) else { return print("execute round trip: setup failed") }
    group.start()
    defer { group.stop() }
    let done = Done()
    measure("event loop: execute from another thread, round trip", iterations: 20_000) {
        done.flag.store(false, ordering: .relaxed)
        group.run(on: 0) { done.flag.store(true, ordering: .releasing) }
        while !done.flag.load(ordering: .acquiring) {}
    }
}

import Synchronization

private final class Done: Sendable {
    let flag = Atomic<Bool>(false)
}
