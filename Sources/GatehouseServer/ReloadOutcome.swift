import GatehouseConfig

/// What a reload did, for `serve`'s log.
public enum ReloadOutcome: Sendable {
    /// The new snapshot is in force; `needsRestart` names changed settings it could not apply; `problems` are
    /// parts that took effect failing closed (e.g. a CA file that does not parse).
    case applied(GatewaySnapshot, needsRestart: [String], problems: [String])
    /// Nothing changed: the previous configuration is still served.
    case failed(ConfigError)

    /// The lines `serve` prints.
    public func logLines(configPath: String) -> [String] {
        switch self {
        case .applied(let snapshot, let needsRestart, let problems):
            var lines = ["reloaded \(configPath) (generation \(snapshot.generation)); keys: \(snapshot.settings.keySource.description)"]
            lines += problems.map { "error: \($0)" }
            if !needsRestart.isEmpty {
                lines.append("warning: not applied by the reload, needs a restart: \(needsRestart.joined(separator: ", ")) (still running with the old values)")
            }
            return lines
        case .failed(let error):
            return ["reload failed, still serving the previous configuration:"] + error.issues.map { "  " + $0.description }
        }
    }
}

/// Settings built into listeners, event loops and HTTP decoders at start; every other setting is applied
/// by a reload (routes, keys, Clerk options, identity headers, timeouts, limits read per request or per
/// connection, `proxy.*` for new upstream connections, `access_log`, `forward_auth`).
public enum RestartOnlySettings {
    public static let all: [(key: String, value: @Sendable (GatehouseSettings) -> String)] = [
        ("listen", { $0.listen }),
        ("admin.listen", { $0.adminListen ?? "off" }),
        ("server.threads", { String($0.server.threads) }),
        ("server.max_header_bytes", { String($0.server.maxHeaderBytes) }),
        ("server.max_header_count", { String($0.server.maxHeaderCount) }),
    ]

    /// The restart-only keys whose value differs, in the order above.
    public static func changed(from running: GatehouseSettings, to next: GatehouseSettings) -> [String] {
        all.filter { $0.value(running) != $0.value(next) }.map(\.key)
    }
}
