import Foundation
import GatehouseCore
import GatehouseDevIssuer
import GatehouseServer
import Synchronization
import Testing

/// An upstream that answers every request with "real", and can push bytes nobody asked for on its first
/// connection while that connection idles in Gatehouse's pool.
private final class PushingUpstream: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let first = Mutex<Int32?>(nil)
    private let stopped = Atomic<Bool>(false)

    init() throws {
        (listener, port) = try LoopbackListener.open()
        Thread.detachNewThread { [self] in
            while !stopped.load(ordering: .acquiring) {
                let fd = accept(listener, nil, nil)
                guard fd >= 0 else { return }
                first.withLock { if $0 == nil { $0 = fd } }
                Thread.detachNewThread { Self.serve(fd) }
            }
        }
    }

    private static func serve(_ fd: Int32) {
        var buffer: [UInt8] = []
        while true {
            var chunk = [UInt8](repeating: 0, count: 65_536)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { return }
            buffer += chunk[0..<n]
            while let end = ScriptedUpstream.find(Array("\r\n\r\n".utf8), in: buffer) {
                buffer.removeFirst(end + 4)
                let answer = Array("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal".utf8)
                _ = answer.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            }
        }
    }

    /// Writes `bytes` on the first connection (which Gatehouse holds idle after its first response).
    func push(_ bytes: [UInt8]) {
        guard let fd = first.withLock({ $0 }) else { return }
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// The gateway's end of the first connection: its local port (the upstream's peer).
    func gatewayPort() -> Int? {
        guard let fd = first.withLock({ $0 }) else { return nil }
        return LoopbackSocketTable.port(of: fd, peer: true)
    }

    func stop() {
        stopped.store(true, ordering: .releasing)
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }
}

/// An idle pooled upstream connection that received bytes nobody asked for must not carry the next request,
/// even when the next client's request is handled in the same loop pass as those bytes' arrival, before the
/// link's own event (which would close it) comes up. The gateway is stopped (SIGSTOP) while the client's
/// request and then the upstream's unsolicited response arrive, so one epoll wake-up reports both, the
/// client's first. Without the check when a link is taken from the pool, the client got "SMUGGLED": a response
/// it never asked for (from a misbehaving upstream, or meant for someone else).
///
/// The test waits, rather than sleeps, for the two facts it rests on: the gateway is stopped before the client
/// writes, and the pushed bytes are in the gateway's socket before it resumes. Bytes that arrive after the
/// gateway has sent the next request are indistinguishable from its response, to any proxy (a failure seen once
/// with both cores busy, when loopback delivery was deferred past a fixed 50 ms sleep).
@Suite(.serialized, .stopsServers) struct UnsolicitedIdleBytesTests {
    @Test func bytesAnIdleLinkReceivedInTheSamePassAreNeverSomeonesResponse() async throws {
        let upstream = try PushingUpstream()
        defer { upstream.stop() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-unsolicited-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data(Fixtures.issuer.jwks.serialized().utf8).write(to: directory.appendingPathComponent("jwks.json"))
        // One loop thread (the harness's config), so the client and the pooled link share one epoll set. The
        // client's idle and header deadlines are raised: on a loaded machine the waits below can hold the gateway
        // stopped for longer than the harness's 5 s and 1 s, and it would then rightly close the client first.
        let harness = DaemonProcessTests.yaml(upstream.port, routes: GatewayHarness.defaultRoutes)
        let deadlines = "header_timeout: 1s, idle_timeout: 5s"
        try #require(harness.contains(deadlines))
        let yaml = harness.replacingOccurrences(of: deadlines, with: "header_timeout: 60s, idle_timeout: 60s")
        let gateway = try GatewayProcess(yaml: yaml, directory: directory)
        defer { gateway.stop() }

        let client = try RawClient(port: gateway.port)
        #expect(client.request("GET", "/public/first")?.text == "real")  // the upstream connection now idles in the pool
        let linkPort = try #require(upstream.gatewayPort())
        let clientPort = try #require(LoopbackSocketTable.port(of: client.fd, peer: false))
        usleep(100_000)
        gateway.send(SIGSTOP)
        #expect(await eventually(within: 10) { Self.isStopped(gateway.pid) }, "the gateway did not stop")
        let second = "GET /public/second HTTP/1.1\r\nHost: app.example.com\r\n\r\n"
        client.send(second)
        let requestArrived = await eventually(within: 10) {
            (LoopbackSocketTable.unread(local: gateway.port, remote: clientPort) ?? 0) >= second.utf8.count
        }
        #expect(requestArrived, "the client's request never reached the gateway's socket")
        let unsolicited = Array("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSMUGGLED".utf8)
        upstream.push(unsolicited)
        let pushArrived = await eventually(within: 10) {
            (LoopbackSocketTable.unread(local: linkPort, remote: upstream.port) ?? 0) >= unsolicited.count
        }
        #expect(pushArrived, "the pushed bytes never reached the gateway's socket")
        gateway.send(SIGCONT)
        let answer = client.readResponse()?.0
        #expect(answer?.text == "real", "got \(answer?.text ?? "nothing") for a request the upstream had not answered yet")
    }

    /// Whether every thread of the process is stopped ("T" in /proc/<pid>/task/*/stat): `kill` returns before
    /// they are, and each thread stops on its own.
    static func isStopped(_ pid: Int32) -> Bool {
        guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task"), !tasks.isEmpty else { return false }
        return tasks.allSatisfy { task in
            guard let stat = ProcFile.read("/proc/\(pid)/task/\(task)/stat"),
                let afterName = stat.range(of: ") ", options: .backwards)
            else { return false }
            return stat[afterName.upperBound...].first == "T"
        }
    }
}
