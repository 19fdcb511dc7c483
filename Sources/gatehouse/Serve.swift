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
        // Signals are caught from here on, buffered until the loop in runUntilStopped reads them: a SIGTERM as
        // soon as the port is bound, or a reload systemd sends right after READY=1, must not meet the default
        // action (the process ending without its graceful stop).
        let signals = SignalWatcher()
        let log = OperationalLog(level: settings.logLevel)
        for warning in settings.warnings { log.warning(warning, [("config", options.path)]) }
        let state = await GatewayState(configPath: options.path, settings: settings)
        let snapshot = state.snapshot
        if snapshot.keyStore.keys.isEmpty {
            log.warning("no usable signing key yet; protected routes answer 503 until keys load",
                        [("error", snapshot.keyStore.status.lastError ?? "none loaded")])
        }
        let server = GatewayServer(state: state)
        do {
            try await server.start()
        } catch {
            log.error("cannot start the listeners", [("error", "\(error)")])
            throw ExitCode(1)
        }
        log.info("listening", [
            ("listen", server.publicURL ?? settings.listen), ("upstream", "\(settings.upstream)"), ("admin", server.adminURL ?? "off"),
            ("keys", settings.keySource.description), ("signing_keys", String(snapshot.keyStore.keys.count)),
            ("version", BuildInfo.version), ("commit", BuildInfo.commit),
        ])
        // Listeners are bound and the first key load is done: systemd's start (Type=notify) completes here.
        let notifier = SystemdNotifier()
        let keys = snapshot.keyStore.keys.count
        notifier.ready(status: "serving on \(server.publicURL ?? settings.listen); " + (keys > 0 ? "\(keys) signing key\(keys == 1 ? "" : "s")" : "no signing key yet (protected routes answer 503)"))
        let watchdog = SystemdNotifier.watchdogInterval().map { interval in
            Task {
                while !Task.isCancelled {
                    if await server.eventLoopsRespond(within: interval) { notifier.watchdog() }
                    try? await Task.sleep(for: interval)
                }
            }
        }
        defer { watchdog?.cancel() }
        releaseStartupPages(log: log)

        await runUntilStopped(server: server, state: state, configPath: options.path, log: log, notifier: notifier, signals: signals)
    }
}

/// Serves until SIGTERM/SIGINT (graceful stop); SIGHUP reloads the config file.
func runUntilStopped(server: GatewayServer, state: GatewayState, configPath: String, log: OperationalLog,
                     notifier: SystemdNotifier = SystemdNotifier(environment: [:]), signals: SignalWatcher = SignalWatcher()) async {
    for await signal in signals.events {
        switch signal {
        case SIGHUP:
            log.info("reloading", [("config", configPath)])
            notifier.reloading()
            let outcome = await server.reload()
            log.level = state.snapshot.settings.logLevel
            outcome.log(to: log, configPath: configPath)
            notifier.ready(status: outcome.statusLine)
            releaseStartupPages(log: log)
        default:
            let grace = state.snapshot.settings.server.gracePeriod
            log.info("stopping: finishing in-flight requests", [("grace_period_seconds", String(grace))])
            notifier.stopping(status: "stopping: finishing in-flight requests (up to \(grace)s)")
            await server.shutdown(gracePeriod: grace)
            log.info("stopped")
            return
        }
    }
}

/// Unmaps the file pages that start-up or a reload touched (see `StartupPages`), off the event loops: the serving
/// path's pages come back as minor faults on first use.
func releaseStartupPages(log: OperationalLog) {
    Task.detached(priority: .utility) {
        if let kilobytes = StartupPages.release() {
            log.debug("released start-up pages", [("resident_kib", String(kilobytes))])
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
