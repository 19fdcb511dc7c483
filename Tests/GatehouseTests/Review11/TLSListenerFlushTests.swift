import Foundation
import GatehouseConfig
import GatehouseCore
import GatehouseDevIssuer
import GatehouseFetch
@testable import GatehouseServer
import NIOCore
import GatehouseTLS
import Testing

/// Review of issue 11: the last response on a TLS connection reaches the client whole. The machine's
/// `clientOut` holds plaintext; once OpenSSL took it, ciphertext may still wait for the socket (a client
/// slower than the loop). Closing when `clientOut` was empty cut that ciphertext off.
@Suite(.serialized, .stopsServers) struct TLSListenerFlushTests {
    /// Python's ssl (OpenSSL, not Gatehouse's code) as the client: it asks for a large download with
    /// `Connection: close`, waits before reading (so the socket fills), then counts what arrives.
    static let slowReader = """
        import socket, ssl, sys, time
        port, ca = int(sys.argv[1]), sys.argv[2]
        context = ssl.create_default_context(cafile=ca)
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
        raw.settimeout(20)
        raw.connect(("127.0.0.1", port))
        s = context.wrap_socket(raw, server_hostname="app.example.test")
        s.sendall(b"GET /download?bytes=1500000 HTTP/1.1\\r\\nHost: app.example.test\\r\\nConnection: close\\r\\n\\r\\n")
        time.sleep(1.5)
        data = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except Exception as e:
            print("error", type(e).__name__)
        head, _, body = data.partition(b"\\r\\n\\r\\n")
        print(len(body))
        """

    /// SO_SNDBUF 1 on every accepted connection (the kernel makes it its minimum, a few KiB): the kernel cannot
    /// absorb what OpenSSL produced, so ciphertext really waits in the transport.
    static let smallSendBuffer = ChannelOptions.Types.SocketOption(
        level: NIOBSDSocket.OptionLevel(rawValue: SOL_SOCKET), name: NIOBSDSocket.Option(rawValue: SO_SNDBUF))

    @Test func aLargeLastResponseOverTLSIsNotCutOffAtTheClose() async throws {
        let pki = try TLSTestPKI.get()
        let upstream = try await TestUpstream()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-review11-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data(Fixtures.issuer.jwks.serialized().utf8).write(to: directory.appendingPathComponent("jwks.json"))
        let configPath = directory.appendingPathComponent("gatehouse.yaml").path
        let yaml = GatewayHarness.config(upstreamPort: upstream.port,
                                         extra: ListenerTLSTests.tlsBlock([(pki.app.certificateChainPath, pki.app.privateKeyPath)]))
            .replacingOccurrences(of: "idle_timeout: 5s }", with: "idle_timeout: 5s, send_timeout: 10s }")
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
        let settings = try ConfigLoader.load(path: configPath, environment: [:])
        let state = await GatewayState(configPath: configPath, settings: settings, makeSource: { url, bearer in HTTPJWKSSource(url: url, bearer: bearer) })
        let server = GatewayServer(state: state, extraChildOption: Self.smallSendBuffer)
        try await server.start()
        defer { Task { await server.shutdown(gracePeriod: 1); await upstream.stop() } }
        let outcome = try await OffPoolProcess.run("/usr/bin/python3", ["-c", Self.slowReader, String(server.publicAddress!.port!), pki.caFile],
                                                   timeout: 40)
        let lines = String(decoding: outcome.stdout, as: UTF8.self).split(separator: "\n")
        #expect(lines.last == "1500000", "received \(lines) of 1500000 body bytes")
    }
}
