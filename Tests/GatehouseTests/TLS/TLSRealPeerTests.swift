import Foundation
import GatehouseTLS
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Real peers over real sockets: curl (libcurl on Debian's OpenSSL, its own TLS client code) against a tiny
/// blocking server on TLSConnection, and TLSConnection as a client against `openssl s_server -www`.
@Suite("GatehouseTLS: real peers over sockets", .serialized)
struct TLSRealPeerTests {
    let pki: TLSTestPKI

    init() throws { pki = try TLSTestPKI.get() }

    /// What the server side saw of each connection.
    struct Served: Sendable, Equatable {
        var protocolVersion: String?
        var alpn: String?
        var serverName: String?
        var ending: String
    }

    /// Serves `connections` HTTPS requests one after another on a thread, each answered with a line saying
    /// what was negotiated, then close_notify.
    final class OneByOneServer: Sendable {
        let port: UInt16
        let served = Mutex<[Served]>([])
        let done = DispatchSemaphore(value: 0)

        init(context: TLSServerContext, connections: Int) throws {
            let (listener, port) = try TLSBlockingSocket.listen()
            self.port = port
            Thread.detachNewThread { [self] in
                defer { listener.close(); done.signal() }
                for _ in 0..<connections {
                    guard let socket = try? listener.accept() else { return }
                    defer { socket.close() }
                    let outcome = (try? TLSRealPeerTests.serve(socket, context: context)) ?? Served(ending: "socket error")
                    served.withLock { $0.append(outcome) }
                }
            }
        }
    }

    static func serve(_ socket: TLSBlockingSocket, context: TLSServerContext) throws -> Served {
        let tls = try TLSConnection(server: context)
        let request = try socket.readPlaintext(tls) { $0.count >= 4 && Array($0.suffix(4)) == Array("\r\n\r\n".utf8) }
        var served = Served(protocolVersion: tls.protocolVersion, alpn: tls.negotiatedALPN, serverName: tls.requestedServerName, ending: "\(request.end)")
        guard case .bytes = request.end else { return served }
        let body = "hello over \(tls.protocolVersion ?? "?") alpn=\(tls.negotiatedALPN ?? "none") sni=\(tls.requestedServerName ?? "none")\n"
        let response = Array("HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)".utf8)
        guard case .accepted(response.count) = response.withUnsafeBytes({ tls.writePlaintext($0) }) else {
            served.ending = "write refused"
            return served
        }
        tls.shutdown()
        try socket.flush(tls)
        served.ending = "answered"
        return served
    }

    static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }

    @Test func curlTalksToTheTLSConnectionServer() throws {
        let context = try TLSServerContext(certificates: [pki.other, pki.app])
        let server = try OneByOneServer(context: context, connections: 2)
        let url = "https://app.example.test:\(server.port)/"
        let resolve = "app.example.test:\(server.port):127.0.0.1"
        let tls13 = try Self.run("/usr/bin/curl", ["-sS", "-v", "--max-time", "10", "--cacert", pki.caFile, "--resolve", resolve, url])
        #expect(tls13.status == 0, "\(tls13.stderr)")
        #expect(tls13.stdout == "hello over TLSv1.3 alpn=http/1.1 sni=app.example.test\n")
        #expect(tls13.stderr.contains("SSL connection using TLSv1.3"))
        #expect(tls13.stderr.contains("ALPN: server accepted http/1.1"))
        #expect(tls13.stderr.contains("subject: CN=app.example.test"))  // SNI chose the second certificate
        let tls12 = try Self.run("/usr/bin/curl", ["-sS", "-v", "--max-time", "10", "--tls-max", "1.2", "--cacert", pki.caFile, "--resolve", resolve, url])
        #expect(tls12.status == 0, "\(tls12.stderr)")
        #expect(tls12.stdout == "hello over TLSv1.2 alpn=http/1.1 sni=app.example.test\n")
        #expect(tls12.stderr.contains("SSL connection using TLSv1.2 / ECDHE-ECDSA-"))
        #expect(server.done.wait(timeout: .now() + 10) == .success)
        #expect(server.served.withLock { $0 }.map(\.ending) == ["answered", "answered"])
    }

    @Test func tlsConnectionClientTalksToOpenSSLServer() throws {
        // A free port below the ephemeral range (which other tests' port-0 listeners draw from); s_server takes it.
        let port = UInt16(try #require(GatewayProcess.freePorts(1).first))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = ["s_server", "-accept", "127.0.0.1:\(port)", "-cert", pki.app.certificateChainPath,
                             "-key", pki.app.privateKeyPath, "-www", "-alpn", "http/1.1"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = Pipe()
        try process.run()
        // SIGKILL by its pid: the child inherits this test process's blocked-signal mask, SIGTERM included.
        defer { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        // Listening once a plain TCP connect succeeds (its stdout banner is block-buffered in a pipe).
        var ready = false
        for _ in 0..<200 where !ready && process.isRunning {
            if let probe = try? TLSBlockingSocket.connect(port: port) { probe.close(); ready = true } else { usleep(50_000) }
        }
        try #require(ready, "openssl s_server did not listen on \(port)")

        let socket = try TLSBlockingSocket.connect(port: port)
        defer { socket.close() }
        let tls = try TLSConnection(client: try TLSClientContext(trustRootsPEMPath: pki.caFile), serverName: "app.example.test")
        _ = tls.advanceHandshake()
        try socket.flush(tls)
        while tls.advanceHandshake() == .inProgress {
            try socket.flush(tls)
            guard try socket.receive(into: tls) else { break }
        }
        try #require(tls.isHandshakeComplete, "\(tls.advanceHandshake())")
        #expect(tls.protocolVersion == "TLSv1.3" && tls.negotiatedALPN == "http/1.1")
        #expect(tls.peerCertificateSubject == "/CN=app.example.test")
        let request = Array("GET / HTTP/1.0\r\n\r\n".utf8)
        #expect(request.withUnsafeBytes { tls.writePlaintext($0) } == .accepted(request.count))
        try socket.flush(tls)
        let response = try socket.readPlaintext(tls) { _ in false }
        let text = String(decoding: response.bytes, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.0 200 ok\r\n"))
        #expect(text.contains("Protocol  : TLSv1.3"))
        // s_server -www ends with close_notify.
        #expect(response.end == .closed, "\(response.end)")
    }
}
