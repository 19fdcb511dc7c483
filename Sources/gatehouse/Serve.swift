import ArgumentParser
import Dispatch
import Foundation
import GatehouseAuth
import GatehouseConfig
import GatehouseServer

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the gateway: reverse proxy and forward-auth on `listen`, health and metrics on `admin.listen`.")

    @OptionGroup var options: ConfigOption

    func run() async throws {
        let settings = try options.load()
        for warning in settings.warnings { printError("warning: \(warning)") }
        let state = await GatewayState(configPath: options.path, settings: settings)
        let snapshot = state.snapshot
        if snapshot.keyStore.keys.isEmpty {
            printError("warning: no usable signing key yet (\(snapshot.keyStore.status.lastError ?? "none loaded")); protected routes answer 503 until keys load")
        }
        let server = GatewayServer(state: state)
        try await server.start()
        let publicAddress = server.publicURL ?? settings.listen
        let adminAddress = server.adminURL ?? "off"
        printError("gatehouse listening on \(publicAddress) → upstream \(settings.upstream); admin \(adminAddress); keys: \(settings.keySource.description)")

        await runUntilStopped(server: server, state: state, configPath: options.path, settings: settings)
    }
}

/// Serves until SIGTERM/SIGINT (graceful stop); SIGHUP reloads the config file.
func runUntilStopped(server: GatewayServer, state: GatewayState, configPath: String, settings: GatehouseSettings) async {
    let signals = SignalWatcher()
    for await signal in signals.events {
        switch signal {
        case SIGHUP:
            for line in await server.reload().logLines(configPath: configPath) { printError(line) }
        default:
            let grace = state.snapshot.settings.server.gracePeriod
            printError("stopping: finishing in-flight requests (up to \(grace)s)")
            await server.shutdown(gracePeriod: grace)
            printError("stopped")
            return
        }
    }
}

/// SIGHUP, SIGTERM and SIGINT as an async sequence (their default actions are disabled while it lives).
final class SignalWatcher {
    let events: AsyncStream<Int32>
    private let sources: [any DispatchSourceSignal]

    init() {
        let (stream, continuation) = AsyncStream<Int32>.makeStream()
        var sources: [any DispatchSourceSignal] = []
        for signo in [SIGHUP, SIGTERM, SIGINT] {
            signal(signo, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signo, queue: .global())
            source.setEventHandler { continuation.yield(signo) }
            source.resume()
            sources.append(source)
        }
        self.events = stream
        self.sources = sources
    }
}
