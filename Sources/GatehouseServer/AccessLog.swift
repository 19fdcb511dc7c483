import Foundation
import GatehouseCore
import Synchronization

/// One JSON line per request on standard output. Never a token, cookie or query value: the path logged is
/// the canonical path without its query.
///
/// Cheap on the request path (the old one built a JSON tree and wrote it under a lock with a blocking
/// write per request: ~50 µs): a line is rendered straight into bytes in one of a few shard buffers chosen
/// by thread (so loops do not contend), and a writer thread drains the shards to the file descriptor. A
/// loop never waits for the descriptor: when a shard is full (the reader of stdout is slower than the
/// traffic), the line is dropped and counted (`droppedLines`, metric `gatehouse_access_log_dropped_total`).
public final class AccessLog: Sendable {
    public struct Entry: Sendable {
        public var requestID: String
        public var method: String
        public var path: String?
        public var route: String?
        public var decision: String
        public var status: Int
        public var userID: String?
        /// A machine caller's subject (`mch_…`, an API key's `user_…`/`org_…`, an OAuth token's user).
        public var machineSubject: String? = nil
        /// The credential's type when one was judged (`session_token`, `api_key`, …).
        public var tokenType: String? = nil
        public var authReason: String?
        public var upstreamMilliseconds: Double?
        public var durationMilliseconds: Double
        public var bytesSent: Int
        /// The connection's peer address (a trusted proxy's, behind one; as nginx's `$remote_addr`).
        public var clientAddress: String?
        public var host: String?
        public var userAgent: String?
        /// `HTTP/1.1`, `HTTP/1.0`.
        public var protocolVersion: String

        public init(requestID: String, method: String, path: String?, route: String?, decision: String, status: Int,
                    userID: String?, authReason: String?, upstreamMilliseconds: Double?, durationMilliseconds: Double,
                    bytesSent: Int, clientAddress: String?, host: String?, userAgent: String?, protocolVersion: String,
                    tokenType: String? = nil, machineSubject: String? = nil) {
            (self.requestID, self.method, self.path, self.route, self.decision, self.status) = (requestID, method, path, route, decision, status)
            (self.userID, self.authReason, self.upstreamMilliseconds) = (userID, authReason, upstreamMilliseconds)
            (self.durationMilliseconds, self.bytesSent, self.clientAddress) = (durationMilliseconds, bytesSent, clientAddress)
            (self.host, self.userAgent, self.protocolVersion) = (host, userAgent, protocolVersion)
            (self.tokenType, self.machineSubject) = (tokenType, machineSubject)
        }
    }

    /// Bytes one shard holds before lines are dropped; the writer is woken at a quarter of it.
    public static let defaultShardCapacity = 1024 * 1024
    /// How often the writer drains the shards when no shard asks for it sooner.
    static let drainInterval: DispatchTimeInterval = .milliseconds(20)

    private struct ShardState {
        var bytes: [UInt8] = []
        var clock = AccessLogLine.SecondClock()
        /// Where a line is rendered before it is appended (`AccessLogLine.render`); allocated by the first line.
        var scratch: [UInt8] = []
    }

    private final class Shard: Sendable {
        let state = Mutex(ShardState())
    }

    private let flag: Atomic<Bool>
    private let shards: [Shard]
    private let capacity: Int
    private let fd: Int32
    private let dropped = Atomic<Int>(0)
    private let wake = DispatchSemaphore(value: 0)
    /// One drain at a time (the writer thread, `flush`), in shard order, so lines of a thread stay in order.
    private let draining = Mutex<[UInt8]>([])
    private let writerStarted = Atomic<Bool>(false)

    /// - Parameters:
    ///   - fd: where lines go (standard output by default; tests pass a pipe).
    ///   - shards: buffers to spread threads over (a few per event loop keeps collisions rare).
    public init(enabled: Bool, fd: Int32 = STDOUT_FILENO, shards: Int = 16, shardCapacity: Int = AccessLog.defaultShardCapacity) {
        self.flag = Atomic(enabled)
        self.fd = fd
        self.capacity = shardCapacity
        self.shards = (0..<max(1, shards)).map { _ in Shard() }
    }

    /// `access_log` is applied by a reload.
    public var enabled: Bool { flag.load(ordering: .relaxed) }
    func setEnabled(_ on: Bool) { flag.store(on, ordering: .relaxed) }

    /// Lines dropped because the output could not keep up.
    public var droppedLines: Int { dropped.load(ordering: .relaxed) }

    private enum Buffered {
        case buffered, wakeWriter, dropped
    }

    /// Borrowed: taken by value, the entry was copied into the lock's closure (perf).
    public func write(_ entry: borrowing Entry) {
        guard enabled else { return }
        startWriterIfNeeded()
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        // Multiplicative hashing of the thread's id spreads threads over the shards.
        let index = Int(((UInt(pthread_self()) &* 0x9E37_79B9_7F4A_7C15) >> 32) % UInt(shards.count))
        let outcome = shards[index].state.withLock { state -> Buffered in
            let before = state.bytes.count
            // A line is a few hundred bytes at most (every field is bounded); past the capacity, drop.
            guard before < capacity else { return .dropped }
            AccessLogLine.render(entry, now: now, into: &state.bytes, scratch: &state.scratch, clock: &state.clock)
            return before < capacity / 4 && state.bytes.count >= capacity / 4 ? .wakeWriter : .buffered
        }
        switch outcome {
        case .buffered: break
        case .wakeWriter: wake.signal()
        case .dropped: dropped.add(1, ordering: .relaxed)
        }
    }

    /// Now as the access log writes it (`2026-12-01T14:00:00.123Z`), for the operational log's lines.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var clock = AccessLogLine.SecondClock()
        var out = clock.text(for: Int(now.tv_sec))
        out.append(UInt8(ascii: "."))
        AccessLogLine.digits(Int(now.tv_nsec / 1_000_000), 3, &out)
        out.append(UInt8(ascii: "Z"))
        return String(decoding: out, as: UTF8.self)
    }

    /// Writes out everything buffered so far (at shutdown; the writer thread does it every few ms).
    public func flush() { drain() }

    private func startWriterIfNeeded() {
        guard !writerStarted.load(ordering: .relaxed),
            writerStarted.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
        else { return }
        // Holds the log only while draining, so a log no longer used (tests make many) ends its thread.
        let wake = self.wake
        let thread = Thread { [weak self] in
            while true {
                _ = wake.wait(timeout: .now() + AccessLog.drainInterval)
                guard let log = self else { return }
                log.drain()
            }
        }
        thread.name = "gatehouse-access-log"
        thread.start()
    }

    /// Moves each shard's bytes out under its lock (a swap, no copy) and writes them without any lock held
    /// but the drain's own.
    func drain() {
        draining.withLock { spare in
            for shard in shards {
                spare.removeAll(keepingCapacity: true)
                shard.state.withLock { swap(&spare, &$0.bytes) }
                if !spare.isEmpty { writeAll(spare) }
            }
        }
    }

    private func writeAll(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n > 0 { offset += n; continue }
                if n < 0 && errno == EINTR { continue }
                if n < 0 && errno == EAGAIN {
                    var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&pfd, 1, 1000)
                    continue
                }
                // The output is gone (EPIPE, a closed descriptor): count what is lost, never retry forever.
                let lost = raw[offset...].reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
                dropped.add(lost, ordering: .relaxed)
                return
            }
        }
    }
}
