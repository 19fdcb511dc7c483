import Foundation
import GatehouseConfig
import GatehouseCore
import GatehouseDevIssuer
import GatehouseFetch
import NIOCore
import Synchronization
@testable import GatehouseServer
import Testing

/// `/readyz` says not ready when the public listener accepts connections but cannot set them up (each one is
/// reset), as when an unprivileged process could not set a socket option. The failure is injected as a real
/// socket option the kernel refuses on every accepted connection; detection runs NIO's accept path.
@Suite(.serialized) struct ReadinessTests {
    /// A socket option no kernel knows: setsockopt fails with ENOPROTOOPT on every accepted connection.
    static let refusedOption = ChannelOptions.Types.SocketOption(
        level: NIOBSDSocket.OptionLevel(rawValue: SOL_SOCKET), name: NIOBSDSocket.Option(rawValue: 0x7FFF))

    static func start(extraChildOption: ChannelOptions.Types.SocketOption?) async throws -> (GatewayServer, TestUpstream) {
        let upstream = try await TestUpstream()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-ready-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data(Fixtures.issuer.jwks.serialized().utf8).write(to: directory.appendingPathComponent("jwks.json"))
        let configPath = directory.appendingPathComponent("gatehouse.yaml").path
        try GatewayHarness.config(upstreamPort: upstream.port).write(toFile: configPath, atomically: true, encoding: .utf8)
        let settings = try ConfigLoader.load(path: configPath, environment: [:])
        let state = await GatewayState(configPath: configPath, settings: settings, makeSource: { url, bearer in HTTPJWKSSource(url: url, bearer: bearer) })
        let server = GatewayServer(state: state, extraChildOption: extraChildOption)
        try await server.start()
        return (server, upstream)
    }

    /// /readyz, asked again (up to 10 s) while the self-probe is undecided: on a loaded machine the data plane
    /// may not accept the probe within its half second, which says nothing about what these tests check.
    static func readyz(_ server: GatewayServer) throws -> RawClient.Response? {
        try readyz(port: server.adminAddress!.port!)
    }

    static func readyz(port: Int) throws -> RawClient.Response? {
        let deadline = Date().addingTimeInterval(10)
        while true {
            let answer = try RawClient(port: port).request("GET", "/readyz")
            guard answer?.text.contains("set up no connection within half a second") == true, Date() < deadline else { return answer }
        }
    }

    @Test func readyWhenThePublicListenerServes() async throws {
        let (server, upstream) = try await Self.start(extraChildOption: nil)
        // Before any traffic the listener is probed.
        let first = try Self.readyz(server)
        #expect(first?.status == 200, "\(first?.text ?? "no answer")")
        #expect(first?.text.hasPrefix("ready: ") == true)
        #expect(try RawClient(port: server.publicAddress!.port!).request("GET", "/public/x")?.status == 200)
        #expect(server.listenerHealth.outcome == .serving)
        #expect(try Self.readyz(server)?.status == 200)
        // HEAD answers alike, without a body.
        let c = try RawClient(port: server.adminAddress!.port!)
        c.send("HEAD /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(c.readResponse(method: "HEAD")?.0.status == 200)
        await server.shutdown(gracePeriod: 1)
        await upstream.stop()
    }

    @Test func notReadyWhileAcceptedConnectionsCannotBeSetUp() async throws {
        let (server, upstream) = try await Self.start(extraChildOption: Self.refusedOption)
        // Nobody connected yet: the self-probe finds out.
        let probed = try #require(try Self.readyz(server))
        #expect(probed.status == 503)
        #expect(probed.text.contains("not ready: the public listener resets connections"), "\(probed.text)")
        // Real clients are cut off without an answer…
        let client = try RawClient(port: server.publicAddress!.port!, timeout: 2)
        #expect(client.request("GET", "/public/x") == nil)
        #expect(upstream.connections.load(ordering: .relaxed) == 0)
        // …and readiness says so, with the reason.
        let answer = try #require(try Self.readyz(server))
        #expect(answer.status == 503)
        #expect(answer.text.contains("could not be set up"), "\(answer.text)")
        #expect(answer.header("cache-control") == "no-store")
        if case .failing(let consecutive, _) = server.listenerHealth.outcome { #expect(consecutive >= 2) } else {
            Issue.record("listener health is \(server.listenerHealth.outcome)")
        }
        let metrics = try #require(try RawClient(port: server.adminAddress!.port!).request("GET", "/metrics")).text
        let failures = metrics.split(separator: "\n").first { $0.hasPrefix("gatehouse_connection_setup_failures_total ") }
        #expect(failures.flatMap { Int($0.split(separator: " ")[1]) }.map { $0 >= 2 } == true, "\(failures ?? "no metric")")
        // Liveness is a different question: the process is alive.
        #expect(try RawClient(port: server.adminAddress!.port!).request("GET", "/healthz")?.status == 200)
        await server.shutdown(gracePeriod: 1)
        await upstream.stop()
    }

    @Test func aTransientSetupFailureClearsOnTheNextProbe() async throws {
        let (server, upstream) = try await Self.start(extraChildOption: nil)
        server.listenerHealth.recordFailure(ChannelError.ioOnClosedChannel)
        // The probe's own connection is set up, so readiness recovers without outside traffic.
        #expect(try Self.readyz(server)?.status == 200)
        #expect(server.listenerHealth.outcome == .serving)
        await server.shutdown(gracePeriod: 1)
        await upstream.stop()
    }
}
