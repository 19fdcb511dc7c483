import Foundation
import GatehouseCore
import GatehouseDevIssuer
import GatehouseServer
import Testing

/// A systemd stand-in: an AF_UNIX datagram socket (a path, or an abstract name) that the real `gatehouse
/// serve` is pointed at with NOTIFY_SOCKET, as systemd does for Type=notify units. Messages are read with
/// plain recv and split here, not by the daemon's code.
final class NotifyListener {
    let fd: Int32
    let name: String  // what NOTIFY_SOCKET is set to
    private let directory: String?

    init(abstract: Bool) throws {
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let offset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)!
        let length: Int
        if abstract {
            let label = "gatehouse-notify-test-\(UInt64.random(in: 0...UInt64.max))"
            name = "@" + label
            directory = nil
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                raw[0] = 0
                for (i, byte) in label.utf8.enumerated() { raw[i + 1] = byte }
            }
            length = offset + 1 + label.utf8.count
        } else {
            var template = Array("/tmp/gatehouse-notify-XXXXXX".utf8CString)
            let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
            let dir = String(cString: made!)
            directory = dir
            name = dir + "/notify"
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (i, byte) in name.utf8.enumerated() { raw[i] = byte }
            }
            length = offset + name.utf8.count + 1
        }
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(length)) } }
        guard bound == 0 else { throw StartFailure(description: "cannot bind \(name): errno \(errno)") }
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Every message received within `seconds`, each as its KEY=value pairs.
    func receive(for seconds: Double, until done: ([[String: String]]) -> Bool = { _ in false }) -> [[String: String]] {
        var messages: [[String: String]] = []
        let deadline = Date().addingTimeInterval(seconds)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline, !done(messages) {
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count > 0 else { continue }
            var fields: [String: String] = [:]
            for line in String(decoding: buffer[..<count], as: UTF8.self).split(separator: "\n") {
                let parts = line.split(separator: "=", maxSplits: 1)
                fields[String(parts[0])] = parts.count == 2 ? String(parts[1]) : ""
            }
            messages.append(fields)
        }
        return messages
    }

    /// Throws away what has queued up so far, without waiting.
    func drain() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT)) > 0 {}
    }

    deinit {
        close(fd)
        if let directory {
            unlink(name)
            rmdir(directory)
        }
    }
}

@Suite(.serialized) struct SystemdNotifyTests {
    static func monotonicMicroseconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) * 1e6 + Double(now.tv_nsec) / 1e3
    }

    /// `gatehouse serve` started with `environment` added; it is not waited for (READY=1 is what says it is up).
    static func launch(_ upstream: TestUpstream, environment: [String: String]) throws -> (Process, String, Int, URL) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-notify-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data(Fixtures.issuer.jwks.serialized().utf8).write(to: directory.appendingPathComponent("jwks.json"))
        let ports = GatewayProcess.freePorts(2)
        let config = directory.appendingPathComponent("gatehouse.yaml").path
        try DaemonProcessTests.yaml(upstream.port, routes: GatewayHarness.defaultRoutes)
            .replacingOccurrences(of: "{PORT}", with: String(ports[0])).replacingOccurrences(of: "{ADMIN_PORT}", with: String(ports[1]))
            .write(toFile: config, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = GatewayProcess.binary
        process.arguments = ["serve", "--config", config]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return (process, config, ports[0], directory)
    }

    static func waitForExit(_ process: Process, seconds: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        return process.isRunning ? nil : process.terminationStatus
    }

    @Test func readyReloadWatchdogAndStopOnAPathSocket() async throws {
        let upstream = try await TestUpstream()
        defer { Task { await upstream.stop() } }
        let listener = try NotifyListener(abstract: false)
        let (process, config, port, directory) = try Self.launch(upstream, environment: ["NOTIFY_SOCKET": listener.name, "WATCHDOG_USEC": "300000"])
        defer { if process.isRunning { process.terminate() }; try? FileManager.default.removeItem(at: directory) }

        // READY=1 comes once the listener accepts: a connection made right after it must be served.
        let start = listener.receive(for: 10) { $0.contains { $0["READY"] == "1" } }
        let ready = try #require(start.first { $0["READY"] == "1" }, "no READY=1 in \(start)")
        #expect(ready["MAINPID"] == String(process.processIdentifier))
        #expect(ready["STATUS"] == "serving on http://127.0.0.1:\(port); 1 signing key")
        #expect(try RawClient(port: port).request("GET", "/public/x")?.status == 200)

        // Watchdog pings at half of WATCHDOG_USEC (150 ms): about 13 in two seconds, never none, never a spin.
        // Counted from an empty queue (pings sent during the request above would swell the count), with room for
        // pings skipped while a loaded machine keeps the event loops from answering within 150 ms.
        listener.drain()
        let window = listener.receive(for: 2)
        let pings = window.filter { $0["WATCHDOG"] == "1" }.count
        #expect(pings >= 4 && pings <= 30, "\(pings) watchdog pings in 2 s: \(window)")

        // A good reload: RELOADING=1 with this clock's MONOTONIC_USEC, then READY=1 saying what happened.
        let good = try String(contentsOfFile: config, encoding: .utf8)
        let before = Self.monotonicMicroseconds()
        kill(process.processIdentifier, SIGHUP)
        var messages = listener.receive(for: 10) { $0.contains { $0["READY"] == "1" } }.filter { $0["WATCHDOG"] == nil }
        let reloading = try #require(messages.first, "nothing after SIGHUP")
        #expect(reloading["RELOADING"] == "1")
        let stamp = try #require(reloading["MONOTONIC_USEC"].flatMap(Double.init))
        #expect(stamp >= before && stamp <= Self.monotonicMicroseconds(), "MONOTONIC_USEC \(stamp) not between \(before) and now")
        #expect(messages.last?["READY"] == "1")
        #expect(messages.last?["STATUS"] == "reloaded: generation 2", "\(messages)")

        // A broken file: READY=1 again (the old config serves) with the failure as the status.
        try "routes: [ { name: broken, match: \"/x*\" } ]\n".write(toFile: config, atomically: true, encoding: .utf8)
        kill(process.processIdentifier, SIGHUP)
        messages = listener.receive(for: 10) { $0.contains { $0["READY"] == "1" } }.filter { $0["WATCHDOG"] == nil }
        #expect(messages.first?["RELOADING"] == "1")
        let failed = try #require(messages.last?["STATUS"])
        #expect(failed.hasPrefix("reload failed, serving the previous configuration: "), "\(failed)")
        #expect(try RawClient(port: port).request("GET", "/public/x")?.status == 200)
        try good.write(toFile: config, atomically: true, encoding: .utf8)

        // SIGTERM: STOPPING=1, then exit 0.
        kill(process.processIdentifier, SIGTERM)
        messages = listener.receive(for: 10) { $0.contains { $0["STOPPING"] == "1" } }
        #expect(messages.contains { $0["STOPPING"] == "1" && ($0["STATUS"] ?? "").hasPrefix("stopping") }, "\(messages)")
        #expect(Self.waitForExit(process, seconds: 10) == 0)
    }

    @Test func readyOnAnAbstractSocketAndNoWatchdogForAnotherPID() async throws {
        let upstream = try await TestUpstream()
        defer { Task { await upstream.stop() } }
        let listener = try NotifyListener(abstract: true)
        // WATCHDOG_PID names another process (as when the variables leak to a child): no pings.
        let (process, _, port, directory) = try Self.launch(upstream, environment: ["NOTIFY_SOCKET": listener.name, "WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"])
        defer { if process.isRunning { process.terminate() }; try? FileManager.default.removeItem(at: directory) }
        let start = listener.receive(for: 10) { $0.contains { $0["READY"] == "1" } }
        #expect(start.contains { $0["READY"] == "1" }, "no READY=1 on \(listener.name): \(start)")
        // A reload at once after READY=1 (as `systemctl reload` may send it) is handled, not SIGHUP's default exit.
        kill(process.processIdentifier, SIGHUP)
        let reload = listener.receive(for: 10) { $0.contains { $0["READY"] == "1" } }
        #expect(reload.first?["RELOADING"] == "1", "\(reload)")
        #expect(reload.last?["STATUS"] == "reloaded: generation 2", "\(reload)")
        #expect(process.isRunning)
        #expect(try RawClient(port: port).request("GET", "/public/x")?.status == 200)
        #expect(!listener.receive(for: 0.6).contains { $0["WATCHDOG"] != nil })
        kill(process.processIdentifier, SIGTERM)
        #expect(Self.waitForExit(process, seconds: 10) == 0)
    }

    @Test func addressesAndWatchdogIntervalFromTheEnvironment() {
        #expect(SystemdNotifier.parse("/run/systemd/notify") == .path(Array("/run/systemd/notify".utf8)))
        #expect(SystemdNotifier.parse("@sd-notify") == .abstract(Array("sd-notify".utf8)))
        #expect(SystemdNotifier.parse("relative/path") == nil)
        #expect(SystemdNotifier.parse("vsock:2:1234") == nil)
        #expect(SystemdNotifier.parse("@") == nil)
        #expect(SystemdNotifier.parse("/" + String(repeating: "a", count: 200)) == nil)
        #expect(SystemdNotifier(environment: [:]).address == nil)
        #expect(SystemdNotifier(environment: [:]).send([("READY", "1")]) == false)
        #expect(SystemdNotifier.watchdogInterval(environment: ["WATCHDOG_USEC": "30000000"], pid: 7) == .seconds(15))
        #expect(SystemdNotifier.watchdogInterval(environment: ["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "7"], pid: 7) == .seconds(15))
        #expect(SystemdNotifier.watchdogInterval(environment: ["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "8"], pid: 7) == nil)
        #expect(SystemdNotifier.watchdogInterval(environment: ["WATCHDOG_USEC": "soon"], pid: 7) == nil)
        #expect(SystemdNotifier.watchdogInterval(environment: [:], pid: 7) == nil)
    }
}
