import Foundation

/// The real `gatehouse` binary (built next to the test bundle) running as a child process, for what can only
/// be checked from outside: resident memory, signals and the exit status.
struct StartFailure: Error, CustomStringConvertible {
    let description: String
}

final class GatewayProcess: @unchecked Sendable {
    let process = Process()
    let port: Int
    let adminPort: Int
    let configPath: String
    private let output = Pipe()
    private let errors = Pipe()

    static var binary: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("gatehouse")
    }

    /// Ports that were free a moment ago, released for a child process to bind. They are drawn at random below
    /// the kernel's ephemeral range (32768–60999 here), which port-0 listeners and outgoing connections use: a
    /// port from that range, once released, could be taken by another test's client or server before the child
    /// binds it (seen as "Address already in use" in full runs).
    static func freePorts(_ count: Int) -> [Int] {
        var fds: [Int32] = []
        defer { fds.forEach { close($0) } }
        var ports: [Int] = []
        while ports.count < count {
            let candidate = Int.random(in: 20_000..<32_000)
            guard !ports.contains(candidate), let fd = bound(port: candidate) else { continue }
            fds.append(fd)
            ports.append(candidate)
        }
        return ports
    }

    /// A socket bound to 127.0.0.1:`port` (kept open until the caller closes it), or nil when the port is taken.
    private static func bound(port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let result = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        if result == 0 { return fd }
        close(fd)
        return nil
    }

    /// `yaml` may use `{PORT}` and `{ADMIN_PORT}`; `directory` holds it and any files it names. `launcher`
    /// (e.g. `setpriv --reuid=…`) runs `executable` instead of it being started directly.
    init(yaml: String, directory: URL, executable: URL = GatewayProcess.binary, launcher: [String] = []) throws {
        let ports = GatewayProcess.freePorts(2)
        port = ports[0]
        adminPort = ports[1]
        configPath = directory.appendingPathComponent("gatehouse-process.yaml").path
        try yaml.replacingOccurrences(of: "{PORT}", with: String(port)).replacingOccurrences(of: "{ADMIN_PORT}", with: String(adminPort))
            .write(toFile: configPath, atomically: true, encoding: .utf8)
        if let first = launcher.first {
            process.executableURL = URL(fileURLWithPath: first)
            process.arguments = Array(launcher.dropFirst()) + [executable.path, "serve", "--config", configPath]
        } else {
            process.executableURL = executable
            process.arguments = ["serve", "--config", configPath]
        }
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        // Up to 10 s: under the full suite's load on 2 cores a debug binary took over 5 s once.
        for _ in 0..<400 where process.isRunning {
            if (try? RawClient(port: port, timeout: 1)) != nil { return }
            usleep(25_000)
        }
        let exited = process.isRunning ? "still running" : "exited with \(process.terminationStatus)"
        process.terminate()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            + String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        throw StartFailure(description: "gatehouse at \(executable.path) did not start listening (\(exited)): \(message)")
    }

    var pid: Int32 { process.processIdentifier }

    /// VmRSS in bytes (0 when /proc cannot be read: callers must check for that).
    func residentBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kb = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
        else { return 0 }
        return kb * 1024
    }

    func send(_ signal: Int32) { kill(pid, signal) }

    /// Waits for exit (up to `timeout` seconds) and returns the status, or nil if it is still running.
    func waitForExit(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        return process.isRunning ? nil : process.terminationStatus
    }

    var standardError: String {
        String(decoding: errors.fileHandleForReading.availableData, as: UTF8.self)
    }

    /// Stderr read by `awaitStandardError` so far; `stopAndCollectOutput` puts it before the rest.
    private var earlyErrors: [UInt8] = []

    /// Reads stderr until `text` has appeared `count` times in it, waiting `seconds` at most (false then, or at
    /// EOF): for a line the daemon writes from a background task, whose moment a test cannot know.
    func awaitStandardError(_ text: String, count: Int, within seconds: Double) -> Bool {
        let fd = errors.fileHandleForReading.fileDescriptor
        let deadline = Date().addingTimeInterval(seconds)
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while String(decoding: earlyErrors, as: UTF8.self).components(separatedBy: text).count - 1 < count {
            let left = deadline.timeIntervalSinceNow
            var readable = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard left > 0, poll(&readable, 1, Int32(left * 1000) + 1) == 1 else { return false }
            let n = read(fd, &buffer, buffer.count)
            guard n > 0 else { return false }
            earlyErrors += buffer[..<n]
        }
        return true
    }

    /// Stops the process and returns everything it wrote to stdout and stderr (read to EOF, so nothing written
    /// before exit is missed).
    func stopAndCollectOutput() -> (stdout: String, stderr: String) {
        stop()
        let out = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let err = String(decoding: earlyErrors + errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (out, err)
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            _ = waitForExit(timeout: 5)
        }
    }
}

import Synchronization

extension Atomic where Value == Int {
    func max(_ value: Int) {
        var current = load(ordering: .relaxed)
        while value > current {
            let (exchanged, original) = compareExchange(expected: current, desired: value, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }
}
