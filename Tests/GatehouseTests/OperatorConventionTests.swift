import Foundation
import GatehouseConfig
import GatehouseCore
import GatehouseDevIssuer
import GatehouseServer
import Testing

/// What operators expect of a daemon (issue 14): `--version`, a usage error without a subcommand, the
/// standard `process_*` metrics and `gatehouse_build_info`, and operational messages as JSON lines with a level.
@Suite(.serialized) struct OperatorConventionTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Runs the binary to completion: (status, stdout, stderr).
    static func run(_ arguments: [String]) throws -> (Int32, String, String) {
        let process = Process()
        process.executableURL = GatewayProcess.binary
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, stdout, stderr)
    }

    /// HEAD as git itself says it, or nil where git cannot see the repository.
    static func gitHead() -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/git")
        process.arguments = ["-C", packageRoot.path, "rev-parse", "HEAD"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        process.waitUntilExit()
        return process.terminationStatus == 0 && !text.isEmpty ? text : nil
    }

    @Test func versionNamesTheVersionFileAndTheCommitBuilt() throws {
        let (status, stdout, _) = try Self.run(["--version"])
        #expect(status == 0)
        let version = try String(contentsOf: Self.packageRoot.appendingPathComponent("VERSION"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        // The test binary is built from the tree it runs in, so its commit is git's HEAD (where git can see the
        // repository; a tree without one, as inside the helpers' build namespace, stamps "unknown").
        #expect(stdout.hasPrefix("gatehouse \(version) (commit "), "\(stdout)")
        if let head = Self.gitHead() {
            #expect(stdout.hasPrefix("gatehouse \(version) (commit \(head), Swift "), "\(stdout)")
        } else if FileManager.default.isExecutableFile(atPath: "/usr/bin/git") {
            #expect(stdout.hasPrefix("gatehouse \(version) (commit unknown, Swift "), "\(stdout)")
        }
    }

    @Test func noSubcommandIsAUsageError() throws {
        let (status, stdout, stderr) = try Self.run([])
        #expect(status == 2)
        #expect(stdout.isEmpty)
        #expect(stderr.contains("a subcommand is required"), "\(stderr)")
        #expect(stderr.contains("USAGE"), "\(stderr)")
    }

    @Test func statLineParsesWithParenthesesAndSpacesInTheCommandName() throws {
        // Field 2 may hold ") (" itself; the numbers are counted from the last ')'.
        let rest = (3...52).map { String($0) }
        var fields = rest
        fields[0] = "S"
        fields[14 - 3] = "250"   // utime ticks
        fields[15 - 3] = "150"   // stime ticks
        fields[20 - 3] = "7"     // threads
        fields[22 - 3] = "1000"  // starttime ticks after boot
        fields[23 - 3] = "123456789"  // vsize bytes
        fields[24 - 3] = "300"   // rss pages
        let line = "4242 (gate) (house x) " + fields.joined(separator: " ") + "\n"
        let stats = try #require(ProcessStats.parse(stat: line, bootTime: 1_700_000_000, ticksPerSecond: 100, pageSize: 4096))
        #expect(stats.cpuSeconds == 4.0)
        #expect(stats.threads == 7)
        #expect(stats.startTimeSeconds == 1_700_000_010)
        #expect(stats.virtualBytes == 123_456_789)
        #expect(stats.residentBytes == 300 * 4096)
        #expect(ProcessStats.parse(stat: "4242 (truncated) S 1 2", bootTime: 0, ticksPerSecond: 100, pageSize: 4096) == nil)
        #expect(ProcessStats.parse(stat: "no parenthesis", bootTime: 0, ticksPerSecond: 100, pageSize: 4096) == nil)
        #expect(ProcessStats.bootTime(procStat: "cpu 1 2 3\nbtime 1700000000\nprocesses 9\n") == 1_700_000_000)
    }

    static let secretKey = "sk_live_OperatorConventionSecret0123456789"

    static func start(_ upstream: TestUpstream, extra: String) throws -> (GatewayProcess, URL) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-operator-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data(Fixtures.issuer.jwks.serialized().utf8).write(to: directory.appendingPathComponent("jwks.json"))
        let yaml = DaemonProcessTests.yaml(upstream.port, routes: GatewayHarness.defaultRoutes)
            .replacingOccurrences(of: "  jwks_file: jwks.json\n", with: "  jwks_file: jwks.json\n  secret_key: \(secretKey)\n") + "\n" + extra
        return (try GatewayProcess(yaml: yaml, directory: directory), directory)
    }

    /// The value of an unlabelled sample in a Prometheus exposition.
    static func sample(_ name: String, in text: String) -> Double? {
        text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ")[1]) }
    }

    @Test func processMetricsMatchWhatProcSaysOfTheDaemon() async throws {
        let upstream = try await TestUpstream()
        defer { Task { await upstream.stop() } }
        let launched = Date().timeIntervalSince1970
        let (gateway, directory) = try Self.start(upstream, extra: "log_level: debug\n")
        defer { gateway.stop(); try? FileManager.default.removeItem(at: directory) }
        // Once ready the daemon releases its start-up pages in the background (tens of MiB) and the pages it
        // serves with fault back in: measured during that, the figures move both ways. So after it, and read from
        // outside the daemon, with nothing of the code under test, before and after the scrape: what it reports
        // must lie between the two readings.
        #expect(gateway.awaitStandardError("\"msg\":\"released start-up pages\"", count: 1, within: 20))
        func residentBytes() throws -> Double {
            let bytes = gateway.residentBytes()
            try #require(bytes > 0, "/proc/\(gateway.pid)/status has no VmRSS")
            return Double(bytes)
        }
        func descriptors() throws -> Double { Double(try FileManager.default.contentsOfDirectory(atPath: "/proc/\(gateway.pid)/fd").count) }
        let (rssBefore, fdsBefore) = (try residentBytes(), try descriptors())
        let metrics = try #require(try RawClient(port: gateway.adminPort).request("GET", "/metrics")?.text)
        let (rssAfter, fdsAfter) = (try residentBytes(), try descriptors())
        let limits = try String(contentsOfFile: "/proc/\(gateway.pid)/limits", encoding: .utf8)
        let maxFiles = try #require(limits.split(separator: "\n").first { $0.hasPrefix("Max open files") }
            .flatMap { Double($0.split(separator: " ", omittingEmptySubsequences: true)[3]) })

        let rss = try #require(Self.sample("process_resident_memory_bytes", in: metrics), "\(metrics)")
        let rssSlack = 2_000_000.0
        #expect(rss >= min(rssBefore, rssAfter) - rssSlack && rss <= max(rssBefore, rssAfter) + rssSlack,
            "RSS \(rss) vs VmRSS \(rssBefore) before and \(rssAfter) after")
        let open = try #require(Self.sample("process_open_fds", in: metrics))
        #expect(open >= min(fdsBefore, fdsAfter) - 3 && open <= max(fdsBefore, fdsAfter) + 3,
            "open fds \(open) vs \(fdsBefore) before and \(fdsAfter) after in /proc")
        #expect(Self.sample("process_max_fds", in: metrics) == maxFiles)
        let start = try #require(Self.sample("process_start_time_seconds", in: metrics))
        #expect(abs(start - launched) < 3, "start time \(start) vs launched at \(launched)")
        let cpu = try #require(Self.sample("process_cpu_seconds_total", in: metrics))
        #expect(cpu > 0 && cpu < (Date().timeIntervalSince1970 - launched) * Double(ProcessInfo.processInfo.activeProcessorCount) + 0.1)
        #expect((Self.sample("process_threads", in: metrics) ?? 0) >= 2)
        #expect(metrics.contains("# TYPE process_cpu_seconds_total counter\n"))
        #expect(metrics.contains("gatehouse_build_info{version=\"\(BuildInfo.version)\",commit=\"\(BuildInfo.commit)\",swift=\"\(BuildInfo.swiftVersion)\"} 1\n"))
    }

    /// Each stderr line as a JSON object (a line that is not one fails the test).
    static func logLines(_ stderr: String) -> [[String: Any]] {
        stderr.split(separator: "\n").compactMap { line in
            let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
            if object == nil { Issue.record("not a JSON log line: \(line)") }
            return object
        }
    }

    @Test func operationalMessagesAreJSONLinesWithLevelsAndNoSecrets() async throws {
        let upstream = try await TestUpstream()
        defer { Task { await upstream.stop() } }
        let (gateway, directory) = try Self.start(upstream, extra: "log_level: warning\n")
        defer { gateway.stop(); try? FileManager.default.removeItem(at: directory) }
        let good = try String(contentsOfFile: gateway.configPath, encoding: .utf8)
        let token = ServerIntegrationTests.fresh("user_member")
        #expect(try RawClient(port: gateway.port).request("GET", "/echo/x", headers: [bearer(token)])?.status == 200)

        // A broken config: an error whatever the level; then the good one at info, which the reload applies.
        try "routes: [ { name: broken, match: \"/x*\" } ]\n".write(toFile: gateway.configPath, atomically: true, encoding: .utf8)
        gateway.send(SIGHUP)
        #expect(try await DaemonProcessTests.reloads(gateway, "failure", reach: 1))
        try good.replacingOccurrences(of: "log_level: warning", with: "log_level: info").write(toFile: gateway.configPath, atomically: true, encoding: .utf8)
        gateway.send(SIGHUP)
        #expect(try await DaemonProcessTests.reloads(gateway, "success", reach: 1))
        gateway.send(SIGTERM)
        #expect(gateway.waitForExit(timeout: 10) == 0)
        let (stdout, stderr) = gateway.stopAndCollectOutput()

        let lines = Self.logLines(stderr)
        for line in lines {
            #expect(line["time"] is String && line["level"] is String && line["msg"] is String, "\(line)")
            #expect((line["time"] as? String)?.hasSuffix("Z") == true)
        }
        let messages = lines.map { "\($0["level"] ?? "")/\($0["msg"] ?? "")" }
        // At warning, start-up's info lines are not written; the failed reload is an error line naming the problem.
        #expect(!messages.contains("info/listening"), "\(messages)")
        let failure = lines.first { $0["msg"] as? String == "reload failed, still serving the previous configuration" }
        #expect(failure?["level"] as? String == "error")
        #expect((failure?["problems"] as? String)?.contains("/x*") == true)
        // After the reload to info: the reload and the stop are info lines.
        #expect(messages.contains("info/reloaded"), "\(messages)")
        #expect(messages.last == "info/stopped", "\(messages)")
        #expect(!(stdout + stderr).contains(Self.secretKey), "the secret key reached the output")
        #expect(!(stdout + stderr).contains(String(token.split(separator: ".")[2])), "a token reached the output")
    }

    @Test func startUpSaysWhereItListensAsAnInfoLine() async throws {
        let upstream = try await TestUpstream()
        defer { Task { await upstream.stop() } }
        let (gateway, directory) = try Self.start(upstream, extra: "")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (_, stderr) = gateway.stopAndCollectOutput()
        let listening = try #require(Self.logLines(stderr).first { $0["msg"] as? String == "listening" }, "\(stderr)")
        #expect(listening["level"] as? String == "info")
        #expect(listening["listen"] as? String == "http://127.0.0.1:\(gateway.port)")
        #expect(listening["version"] as? String == BuildInfo.version)
        #expect(listening["signing_keys"] as? String == "1")
        #expect(!stderr.contains(Self.secretKey))
    }

    @Test func anUnknownLogLevelIsAConfigError() {
        let issues = Fixtures.configIssues("clerk: { publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k, jwks_file: jwks.json }\nlog_level: verbose\n")
        #expect(issues.contains { $0.keyPath == "log_level" && $0.message.contains("expected one of debug, info, warning, error") }, "\(issues)")
    }
}
