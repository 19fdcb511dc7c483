import Foundation
import GatehouseCore
import Synchronization

/// One JSON line per request on standard output. Never a token, cookie or query value: the path logged is
/// the canonical path without its query.
public final class AccessLog: Sendable {
    public struct Entry: Sendable {
        public var requestID: String
        public var method: String
        public var path: String?
        public var route: String?
        public var decision: String
        public var status: Int
        public var userID: String?
        public var authReason: String?
        public var upstreamMilliseconds: Double?
        public var durationMilliseconds: Double
        public var bytesSent: Int
    }

    private let flag: Atomic<Bool>
    private let lock = Mutex(())

    public init(enabled: Bool) { self.flag = Atomic(enabled) }

    /// `access_log` is applied by a reload.
    public var enabled: Bool { flag.load(ordering: .relaxed) }
    func setEnabled(_ on: Bool) { flag.store(on, ordering: .relaxed) }

    public func write(_ entry: Entry) {
        guard enabled else { return }
        var object = JSONObject([
            ("time", .string(Self.timestamp())), ("request_id", .string(entry.requestID)), ("method", .string(entry.method)),
            ("path", entry.path.map(JSONValue.string) ?? .null), ("route", entry.route.map(JSONValue.string) ?? .null),
            ("decision", .string(entry.decision)), ("status", .number(JSONNumber(entry.status))),
            ("user_id", entry.userID.map(JSONValue.string) ?? .null),
        ])
        if let reason = entry.authReason { object.set("auth_reason", .string(reason)) }
        if let ms = entry.upstreamMilliseconds { object.set("upstream_ms", .number(JSONNumber(validatedText: Self.format(ms)))) }
        object.set("duration_ms", .number(JSONNumber(validatedText: Self.format(entry.durationMilliseconds))))
        object.set("bytes", .number(JSONNumber(entry.bytesSent)))
        let line = JSONValue.object(object).serialized() + "\n"
        lock.withLock { _ in FileHandle.standardOutput.write(Data(line.utf8)) }
    }

    static func format(_ value: Double) -> String {
        String(format: "%.3f", value)
    }

    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var tm = tm()
        var seconds = now.tv_sec
        gmtime_r(&seconds, &tm)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(tm.tm_year) + 1900, Int(tm.tm_mon) + 1, Int(tm.tm_mday),
                      Int(tm.tm_hour), Int(tm.tm_min), Int(tm.tm_sec), Int(now.tv_nsec / 1_000_000))
    }
}
