import Foundation
import GatehouseConfig
import GatehouseCore
import Synchronization

/// Operational messages (start, reload, stop, warnings) as one JSON line each on standard error, beside the
/// access log on standard output: `{"time":…,"level":…,"msg":…, fields…}`. Callers pass only what is safe to
/// show: never a token, a secret key or a cookie (the key source is described by path or URL, never by content).
public final class OperationalLog: Sendable {
    private let threshold: Mutex<LogLevel>
    private let sink: @Sendable (String) -> Void

    public init(level: LogLevel, sink: @escaping @Sendable (String) -> Void = { line in FileHandle.standardError.write(Data(line.utf8)) }) {
        self.threshold = Mutex(level)
        self.sink = sink
    }

    /// `log_level` is applied by a reload.
    public var level: LogLevel {
        get { threshold.withLock { $0 } }
        set { threshold.withLock { $0 = newValue } }
    }

    public func debug(_ message: String, _ fields: [(String, String)] = []) { write(.debug, message, fields) }
    public func info(_ message: String, _ fields: [(String, String)] = []) { write(.info, message, fields) }
    public func warning(_ message: String, _ fields: [(String, String)] = []) { write(.warning, message, fields) }
    public func error(_ message: String, _ fields: [(String, String)] = []) { write(.error, message, fields) }

    public func write(_ level: LogLevel, _ message: String, _ fields: [(String, String)] = []) {
        guard level >= self.level else { return }
        sink(Self.line(level: level, message: message, fields: fields, time: AccessLog.timestamp()))
    }

    /// One line; `fields` never replace time, level or msg.
    static func line(level: LogLevel, message: String, fields: [(String, String)], time: String) -> String {
        var object = JSONObject([("time", .string(time)), ("level", .string(level.rawValue)), ("msg", .string(message))])
        for (key, value) in fields where !["time", "level", "msg"].contains(key) { object.set(key, .string(value)) }
        return JSONValue.object(object).serialized() + "\n"
    }
}

extension ReloadOutcome {
    /// The reload as operational log lines, and the one-line outcome for systemd's STATUS=.
    public func log(to log: OperationalLog, configPath: String) {
        switch self {
        case .applied(let snapshot, let needsRestart, let problems):
            log.info("reloaded", [("config", configPath), ("generation", String(snapshot.generation)), ("keys", snapshot.settings.keySource.description)])
            for problem in problems { log.error(problem, [("config", configPath)]) }
            if !needsRestart.isEmpty {
                log.warning("not applied by the reload, needs a restart (still running with the old values)",
                            [("settings", needsRestart.joined(separator: ", "))])
            }
        case .failed(let error):
            log.error("reload failed, still serving the previous configuration",
                      [("config", configPath), ("problems", error.issues.map(\.description).joined(separator: "; "))])
        }
    }

    public var succeeded: Bool {
        if case .applied = self { return true }
        return false
    }

    public var statusLine: String {
        switch self {
        case .applied(let snapshot, let needsRestart, let problems):
            var text = "reloaded: generation \(snapshot.generation)"
            if !problems.isEmpty { text += "; \(problems.count) problem\(problems.count == 1 ? "" : "s"): " + problems.joined(separator: "; ") }
            if !needsRestart.isEmpty { text += "; needs a restart for " + needsRestart.joined(separator: ", ") }
            return text
        case .failed(let error):
            return "reload failed, serving the previous configuration: " + (error.issues.first?.description ?? "invalid configuration")
        }
    }
}
