import Foundation
import GatehouseCore
import GatehouseDevIssuer
import Testing

/// The real `gatehouse serve` binary as uid/gid 65534 (how the systemd unit's DynamicUser, the Dockerfile's
/// `USER nobody` and the Kubernetes manifest run it), proxying real requests. As a SOL_SOCKET option,
/// TCP_NODELAY was SO_DEBUG, which an unprivileged process may not set: every public connection was reset
/// while `/readyz` said 200. Needs root to drop privileges; required in CI (`CI=true`) and by scripts/test.sh
/// (`GATEHOUSE_REQUIRE_UNPRIVILEGED=1`), skipped with a message elsewhere.
@Suite(.serialized) struct UnprivilegedDaemonTests {
    static let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static var required: Bool {
        let environment = ProcessInfo.processInfo.environment
        return environment["CI"] == "true" || environment["GATEHOUSE_REQUIRE_UNPRIVILEGED"] == "1"
    }

    /// A fresh 0755 directory under /tmp (the build tree may sit where uid 65534 cannot go, e.g. under /root)
    /// holding a copy of the binary, the config and the keys, all readable by that user.
    static func unprivilegedCopy() throws -> URL {
        var template = Array("/tmp/gatehouse-nobody-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        let directory = URL(fileURLWithPath: String(cString: try #require(made)))
        chmod(directory.path, 0o755)
        let binary = directory.appendingPathComponent("gatehouse")
        try FileManager.default.copyItem(at: GatewayProcess.binary, to: binary)
        chmod(binary.path, 0o755)
        let jwks = directory.appendingPathComponent("jwks.json")
        try Data(Fixtures.issuer.jwks.serialized().utf8).write(to: jwks)
        chmod(jwks.path, 0o644)
        return directory
    }

    /// `Uid:` and `Gid:` of a process (real, effective, saved, filesystem).
    static func ids(_ pid: Int32) -> (uid: [String], gid: [String]) {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        func field(_ name: String) -> [String] {
            status.split(separator: "\n").first { $0.hasPrefix(name + ":") }.map { $0.split(separator: "\t").dropFirst().map(String.init) } ?? []
        }
        return (field("Uid"), field("Gid"))
    }

    @Test func servesRealRequestsAsNobody() async throws {
        guard getuid() == 0, let setpriv = Self.setpriv else {
            let why = getuid() != 0 ? "not running as root, so privileges cannot be dropped to 65534" : "setpriv (util-linux) is missing"
            if Self.required { Issue.record("required here (CI / GATEHOUSE_REQUIRE_UNPRIVILEGED=1) but \(why)") } else { print("skipped UnprivilegedDaemonTests: \(why)") }
            return
        }
        let upstream = try await TestUpstream()
        defer { Task { await upstream.stop() } }
        let directory = try Self.unprivilegedCopy()
        defer { try? FileManager.default.removeItem(at: directory) }
        let gateway = try GatewayProcess(
            yaml: DaemonProcessTests.yaml(upstream.port, routes: GatewayHarness.defaultRoutes), directory: directory,
            executable: directory.appendingPathComponent("gatehouse"),
            launcher: [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"])
        defer { gateway.stop() }
        chmod(gateway.configPath, 0o644)
        let (uid, gid) = Self.ids(gateway.pid)
        #expect(uid == ["65534", "65534", "65534", "65534"], "gatehouse runs with uids \(uid)")
        #expect(gid == ["65534", "65534", "65534", "65534"], "gatehouse runs with gids \(gid)")

        // One keep-alive connection for everything, kept open for the socket check below.
        let client = try RawClient(port: gateway.port, timeout: 5)
        let open = client.request("GET", "/public/x")
        #expect(open?.status == 200, "public route through the unprivileged gateway: \(open.map { "\($0.status)" } ?? "connection reset") \(gateway.standardError)")
        #expect(open?.json?.objectValue?["uri"]?.stringValue == "/public/x")
        #expect(client.request("GET", "/dashboard", headers: [("Accept", "application/json")])?.status == 401)
        let member = ServerIntegrationTests.fresh("user_member", org: ("org_1", "acme", "org:member", []))
        let signedIn = client.request("GET", "/echo/x", headers: [bearer(member)])
        #expect(signedIn?.status == 200)
        let headers = signedIn?.json?.objectValue?["headers"]?.objectValue
        #expect(headers?["x-gatehouse-user-id"] == ["user_member"])
        #expect(headers?["x-gatehouse-org-role"] == ["org:member"])

        let ready = try RawClient(port: gateway.adminPort).request("GET", "/readyz")
        #expect(ready?.status == 200, "readyz: \(ready?.text ?? "no answer")")

        // TCP_NODELAY on the server's own sockets: read through a duplicate of each descriptor (pidfd_getfd).
        let nodelay = try Self.noDelay(pid: gateway.pid, publicPort: gateway.port, upstreamPort: upstream.port)
        #expect(!nodelay.accepted.isEmpty && nodelay.accepted.allSatisfy { $0 == 1 }, "TCP_NODELAY + 2 × SO_DEBUG on accepted sockets: \(nodelay.accepted)")
        #expect(!nodelay.upstream.isEmpty && nodelay.upstream.allSatisfy { $0 == 1 }, "TCP_NODELAY + 2 × SO_DEBUG on upstream sockets: \(nodelay.upstream)")
    }

    /// With privileges the old SOL_SOCKET spelling did not fail: it set SO_DEBUG (Nagle was off all the same, as
    /// NIO sets TCP_NODELAY on the listening socket, which accepted sockets inherit, and on client sockets by
    /// default). The same socket check catches it as the build user (the test process is the daemon's parent).
    @Test func noDelayAndNoDebugWithPrivilegesToo() async throws {
        let upstream = try await TestUpstream()
        defer { Task { await upstream.stop() } }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-nodelay-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data(Fixtures.issuer.jwks.serialized().utf8).write(to: directory.appendingPathComponent("jwks.json"))
        let gateway = try GatewayProcess(yaml: DaemonProcessTests.yaml(upstream.port, routes: GatewayHarness.defaultRoutes), directory: directory)
        defer { gateway.stop() }
        let client = try RawClient(port: gateway.port, timeout: 5)
        #expect(client.request("GET", "/public/x")?.status == 200)
        let nodelay = try Self.noDelay(pid: gateway.pid, publicPort: gateway.port, upstreamPort: upstream.port)
        #expect(!nodelay.accepted.isEmpty && nodelay.accepted.allSatisfy { $0 == 1 }, "TCP_NODELAY + 2 × SO_DEBUG on accepted sockets: \(nodelay.accepted)")
        #expect(!nodelay.upstream.isEmpty && nodelay.upstream.allSatisfy { $0 == 1 }, "TCP_NODELAY + 2 × SO_DEBUG on upstream sockets: \(nodelay.upstream)")
    }

    /// Socket options of every established socket of `pid` on the public port (accepted) and to the upstream
    /// port, read from duplicates taken with pidfd_getfd(2): the only way to see another process's socket options
    /// (`ss`, /proc/net/tcp do not show these). Root (CAP_SYS_PTRACE) or the parent may do it. Each value is
    /// TCP_NODELAY (bit 0) + 2 × SO_DEBUG (bit 1): 1 is right.
    static func noDelay(pid: Int32, publicPort: Int, upstreamPort: Int) throws -> (accepted: [Int], upstream: [Int]) {
        let script = #"""
        import ctypes, json, os, socket, sys
        pid, public_port, upstream_port = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
        libc = ctypes.CDLL(None, use_errno=True)
        SYS_pidfd_open, SYS_pidfd_getfd = 434, 438
        conns = {}
        for table in ("tcp", "tcp6"):
            try:
                lines = open(f"/proc/{pid}/net/{table}").read().splitlines()[1:]
            except FileNotFoundError:
                continue
            for line in lines:
                f = line.split()
                if f[3] != "01":
                    continue
                conns[f[9]] = (int(f[1].split(":")[1], 16), int(f[2].split(":")[1], 16))
        pidfd = libc.syscall(SYS_pidfd_open, pid, 0)
        if pidfd < 0:
            sys.exit(f"pidfd_open: errno {ctypes.get_errno()}")
        result = {"accepted": [], "upstream": []}
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if not target.startswith("socket:["):
                continue
            inode = target[8:-1]
            if inode not in conns:
                continue
            local, remote = conns[inode]
            kind = "accepted" if local == public_port else "upstream" if remote == upstream_port else None
            if kind is None:
                continue
            dup = libc.syscall(SYS_pidfd_getfd, pidfd, int(fd), 0)
            if dup < 0:
                sys.exit(f"pidfd_getfd: errno {ctypes.get_errno()}")
            s = socket.socket(fileno=dup)
            nodelay = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            debug = s.getsockopt(socket.SOL_SOCKET, socket.SO_DEBUG)
            result[kind].append(nodelay + 2 * debug)
            s.detach()
            os.close(dup)
        print(json.dumps(result))
        """#
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script, String(pid), String(publicPort), String(upstreamPort)]
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        process.waitUntilExit()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let problem = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 0, "socket option check failed: \(problem)")
        // Read with Foundation's parser: an independent one, not Gatehouse's.
        let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: [Int]]
        return (object?["accepted"] ?? [], object?["upstream"] ?? [])
    }
}
