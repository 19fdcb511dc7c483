import Foundation
import NIOCore
import NIOPosix

/// The sd_notify protocol without libsystemd: newline-separated `KEY=value` datagrams sent to the AF_UNIX
/// socket named by `$NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace). Without that variable
/// every send is a no-op, so `serve` behaves the same outside systemd.
public struct SystemdNotifier: Sendable {
    /// Where the datagrams go: the bytes of sun_path (a leading NUL for the abstract namespace).
    public enum Address: Sendable, Equatable {
        case path([UInt8])
        case abstract([UInt8])
    }

    public let address: Address?

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.address = environment["NOTIFY_SOCKET"].flatMap(Self.parse)
    }

    /// `/run/systemd/notify` or `@name`; anything else (vsock:…, relative paths, too long) is not supported.
    public static func parse(_ text: String) -> Address? {
        let bytes = Array(text.utf8)
        let capacity = MemoryLayout.size(ofValue: sockaddr_un().sun_path)
        if bytes.first == UInt8(ascii: "@"), bytes.count > 1, bytes.count <= capacity { return .abstract(Array(bytes.dropFirst())) }
        if bytes.first == UInt8(ascii: "/"), bytes.count < capacity, !bytes.contains(0) { return .path(bytes) }
        return nil
    }

    /// Sends one message; false when there is no socket or the send failed (never fatal: systemd then
    /// times the unit out, which is the right signal).
    @discardableResult
    public func send(_ fields: [(String, String)]) -> Bool {
        guard let address else { return false }
        let message = fields.map { "\($0.0)=\($0.1.replacingOccurrences(of: "\n", with: " "))" }.joined(separator: "\n") + "\n"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var storage = sockaddr_un()
        storage.sun_family = sa_family_t(AF_UNIX)
        let length: Int
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)!
        switch address {
        case .path(let bytes):
            withUnsafeMutableBytes(of: &storage.sun_path) { raw in raw.copyBytes(from: bytes) }
            length = pathOffset + bytes.count + 1
        case .abstract(let name):
            withUnsafeMutableBytes(of: &storage.sun_path) { raw in
                raw[0] = 0
                UnsafeMutableRawBufferPointer(rebasing: raw[1...]).copyBytes(from: name)
            }
            length = pathOffset + 1 + name.count
        }
        let sent = message.utf8CString.withUnsafeBufferPointer { text in
            withUnsafePointer(to: &storage) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, text.baseAddress, text.count - 1, Int32(MSG_NOSIGNAL), $0, socklen_t(length))
                }
            }
        }
        return sent == message.utf8.count
    }

    public func ready(status: String) { send([("READY", "1"), ("STATUS", status), ("MAINPID", String(getpid()))]) }

    /// RELOADING=1 with the CLOCK_MONOTONIC time in µs, which systemd ≥ 253 needs to match the reload.
    public func reloading() { send([("RELOADING", "1"), ("MONOTONIC_USEC", String(Self.monotonicMicroseconds())), ("STATUS", "reloading")]) }
    public func stopping(status: String) { send([("STOPPING", "1"), ("STATUS", status)]) }
    public func watchdog() { send([("WATCHDOG", "1")]) }

    static func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
    }

    /// Half of `WATCHDOG_USEC` (systemd's advice), when it is set for this process (`WATCHDOG_PID` absent or ours).
    public static func watchdogInterval(environment: [String: String] = ProcessInfo.processInfo.environment, pid: Int32 = getpid()) -> Duration? {
        guard let text = environment["WATCHDOG_USEC"], let usec = UInt64(text), usec > 0 else { return nil }
        if let owner = environment["WATCHDOG_PID"], owner != String(pid) { return nil }
        return .microseconds(Int64(min(usec / 2, UInt64(Int64.max))))
    }
}

extension GatewayServer {
    /// True when every event loop ran a no-op within `timeout`: the watchdog is fed only while the data
    /// plane can still schedule work, not merely while this task is alive.
    public func eventLoopsRespond(within timeout: Duration) async -> Bool {
        let loops = Array(group.makeIterator())
        let dataPlane = self.dataPlaneServer
        let expected = loops.count + (dataPlane == nil ? 0 : 1)
        return await withTaskGroup(of: Bool.self) { tasks in
            for loop in loops {
                tasks.addTask { (try? await loop.submit({}).get()) != nil }
            }
            if let dataPlane {
                // The data plane's own loops (a stuck one never runs the task, and the timeout below wins).
                tasks.addTask { await dataPlane.everyLoopAnswers() }
            }
            tasks.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            var answered = 0
            for await result in tasks {
                guard result else { tasks.cancelAll(); return false }
                answered += 1
                if answered == expected { tasks.cancelAll(); return true }
            }
            return false
        }
    }
}
