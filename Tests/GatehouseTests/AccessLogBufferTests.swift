import Foundation
@testable import GatehouseServer
import Testing

/// The access log's buffers and writer, on a pipe: lines are valid JSON (parsed with Foundation), escaped
/// and bounded, in order per thread, flushed on demand, and a writer that cannot write never blocks a
/// request: lines are dropped and counted instead.
@Suite struct AccessLogBufferTests {
    static func entry(_ i: Int, path: String? = "/p", userAgent: String? = "curl/8") -> AccessLog.Entry {
        AccessLog.Entry(requestID: "req-\(i)", method: "GET", path: path, route: "app", decision: "proxy", status: 200,
                        userID: nil, authReason: nil, upstreamMilliseconds: 1.5, durationMilliseconds: 2.0004, bytesSent: i,
                        clientAddress: "192.0.2.1", host: "app.example.com", userAgent: userAgent, protocolVersion: "HTTP/1.1")
    }

    /// A pipe whose read end is drained into memory on a thread of its own.
    final class Pipe: @unchecked Sendable {
        let read: Int32, write: Int32
        private let lock = NSLock()
        private var bytes: [UInt8] = []
        private var reading = true

        init(reading: Bool = true) {
            var fds: [Int32] = [0, 0]
            precondition(pipe(&fds) == 0)
            (read, write) = (fds[0], fds[1])
            self.reading = reading
            if reading { startReading() }
        }

        func startReading() {
            Thread {
                var buffer = [UInt8](repeating: 0, count: 65536)
                while true {
                    let n = Glibc.read(self.read, &buffer, buffer.count)
                    if n <= 0 { return }
                    self.lock.lock(); self.bytes += buffer[..<n]; self.lock.unlock()
                }
            }.start()
        }

        var lines: [String] {
            lock.lock(); defer { lock.unlock() }
            return String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
        }

        var lineCount: Int {
            lock.lock(); defer { lock.unlock() }
            return bytes.reduce(0) { $0 + ($1 == 10 ? 1 : 0) }
        }

        func close() { Glibc.close(write) }
    }

    static func json(_ line: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line)")
    }

    static func waitFor(_ pipe: Pipe, lines count: Int) async throws {
        let deadline = Date().addingTimeInterval(5)
        while pipe.lineCount < count, Date() < deadline { try await Task.sleep(for: .milliseconds(10)) }
    }

    @Test func linesAreValidJSONWithEveryField() async throws {
        let pipe = Pipe()
        let log = AccessLog(enabled: true, fd: pipe.write)
        log.write(Self.entry(7))
        log.flush()
        try await Self.waitFor(pipe, lines: 1)
        let entry = try Self.json(try #require(pipe.lines.first))
        #expect(entry["request_id"] as? String == "req-7")
        #expect(entry["client_ip"] as? String == "192.0.2.1")
        #expect(entry["host"] as? String == "app.example.com")
        #expect(entry["user_agent"] as? String == "curl/8")
        #expect(entry["protocol"] as? String == "HTTP/1.1")
        #expect(entry["user_id"] is NSNull)
        #expect(entry["token_type"] == nil && entry["machine_subject"] == nil)
        #expect((entry["duration_ms"] as? NSNumber)?.doubleValue == 2.0)
        #expect((entry["upstream_ms"] as? NSNumber)?.doubleValue == 1.5)
        #expect((entry["bytes"] as? NSNumber)?.intValue == 7)
        // The time is RFC 3339 UTC with milliseconds, and now (within a minute: a loaded machine running the
        // whole suite in parallel has held this test back for 8 s between writing and reading).
        let time = try #require(entry["time"] as? String)
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let date = try #require(formatter.date(from: time), "unparsable time \(time)")
        #expect(abs(date.timeIntervalSinceNow) < 60)
        pipe.close()
    }

    @Test func machineCallersAreNamed() async throws {
        let pipe = Pipe()
        let log = AccessLog(enabled: true, fd: pipe.write)
        var entry = Self.entry(3)
        entry.tokenType = "api_key"
        entry.machineSubject = "org_2xyz"
        log.write(entry)
        log.flush()
        try await Self.waitFor(pipe, lines: 1)
        let line = try Self.json(try #require(pipe.lines.first))
        #expect(line["token_type"] as? String == "api_key")
        #expect(line["machine_subject"] as? String == "org_2xyz")
        pipe.close()
    }

    @Test func clientChosenValuesAreEscapedAndBounded() async throws {
        let pipe = Pipe()
        let log = AccessLog(enabled: true, fd: pipe.write)
        let hostile = "a\"b\\c\u{01}\u{1B}[31m\u{7F}é\n{\"forged\":1}"
        log.write(Self.entry(1, path: hostile, userAgent: String(repeating: "é", count: 2000)))
        log.flush()
        try await Self.waitFor(pipe, lines: 1)
        #expect(pipe.lines.count == 1)  // the newline inside a value did not split the line
        let entry = try Self.json(try #require(pipe.lines.first))
        #expect(entry["path"] as? String == hostile)
        #expect(entry["forged"] == nil)
        let agent = try #require(entry["user_agent"] as? String)
        #expect(agent.utf8.count <= AccessLogLine.maxValueBytes + 3)
        #expect(agent.hasSuffix("…") && agent.dropLast().allSatisfy { $0 == "é" })
        pipe.close()
    }

    @Test func linesOfOneThreadStayInOrderAndAllArrive() async throws {
        let pipe = Pipe()
        // Room for all 5,000 lines (~1.5 MB) in one shard: this test is about order and completeness, and the
        // writer thread may not get the CPU before a smaller shard fills (dropping is aStalledOutput…'s test).
        let log = AccessLog(enabled: true, fd: pipe.write, shards: 1, shardCapacity: 8 << 20)
        for i in 0..<5000 { log.write(Self.entry(i)) }
        try await Self.waitFor(pipe, lines: 5000)  // the writer thread drains without a flush
        let ids = try pipe.lines.map { try Self.json($0)["bytes"] as? Int }
        #expect(ids == Array(0..<5000))
        #expect(log.droppedLines == 0)
        pipe.close()
    }

    @Test func aStalledOutputDropsAndCountsInsteadOfBlocking() async throws {
        let pipe = Pipe(reading: false)
        let log = AccessLog(enabled: true, fd: pipe.write, shards: 1, shardCapacity: 16 * 1024)
        let started = Date()
        // Far more than the pipe (64 KiB) and the shard hold together.
        for i in 0..<20_000 { log.write(Self.entry(i)) }
        #expect(Date().timeIntervalSince(started) < 2, "writes waited for the output")
        let dropped = log.droppedLines
        #expect(dropped > 10_000)
        // Once the output moves again, what was kept arrives, whole lines only.
        pipe.startReading()
        log.flush()
        try await Self.waitFor(pipe, lines: 20_000 - dropped)
        #expect(pipe.lines.count == 20_000 - dropped)
        #expect(try pipe.lines.allSatisfy { try Self.json($0)["request_id"] != nil })
        pipe.close()
    }

    @Test func aDisabledLogWritesNothing() async throws {
        let pipe = Pipe()
        let log = AccessLog(enabled: false, fd: pipe.write)
        log.write(Self.entry(1))
        log.flush()
        try await Task.sleep(for: .milliseconds(50))
        #expect(pipe.lines.isEmpty)
        pipe.close()
    }
}
