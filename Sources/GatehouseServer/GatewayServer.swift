import Foundation
import GatehouseAuth
import GatehouseConfig
import GatehouseCore
import GatehouseEngine
import struct GatehouseLoop.SocketEndpoint
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import Synchronization

/// The daemon: a public listener (proxy and forward-auth) and an admin listener (health, readiness,
/// metrics) sharing one event loop group. Start with `start()`, stop with `shutdown(gracePeriod:)`.
public final class GatewayServer: Sendable {
    public let state: GatewayState
    let group: MultiThreadedEventLoopGroup
    let pools: UpstreamPools
    /// Released before the loops stop: its deinit touches a loop.
    private let quiesceHelper: Mutex<ServerQuiescingHelper?>
    private let channels = Mutex<(public: (any Channel)?, admin: (any Channel)?)>((nil, nil))
    private let counter: ConnectionCounter
    let accessLog: AccessLog
    /// What the listeners, loops and HTTP decoders were built with; a reload cannot change those.
    let startedWith: GatehouseSettings
    let listenerHealth = ListenerHealth()
    /// Tests only: one more socket option on every accepted connection, to make their setup fail for real.
    private let extraChildOption: ChannelOptions.Types.SocketOption?
    /// Set by the first `shutdown`: a second call returns at once (its work would be scheduled on loops that
    /// are gone, and never complete).
    private let shutDown = Atomic<Bool>(false)
    /// Which engine serves the public listener.
    let engine: DataPlaneEngine
    /// The public listener on Gatehouse's own data plane (when `engine` is `.epoll`).
    private let dataPlane = Mutex<DataPlaneServer?>(nil)

    public convenience init(state: GatewayState) {
        self.init(state: state, extraChildOption: nil)
    }

    init(state: GatewayState, extraChildOption: ChannelOptions.Types.SocketOption?) {
        self.extraChildOption = extraChildOption
        self.state = state
        let settings = state.snapshot.settings
        let threads = settings.server.threads > 0 ? settings.server.threads : System.coreCount
        self.engine = DataPlaneEngine.chosen(for: settings)
        // On the epoll data plane, NIO serves only the admin listener and its probes: one thread is plenty.
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: engine == .epoll ? 1 : threads)
        self.pools = UpstreamPools(group: group, settings: settings.proxy, warmTrust: engine == .nio && settings.namesTLSUpstream)
        self.quiesceHelper = Mutex(ServerQuiescingHelper(group: group))
        self.counter = ConnectionCounter(metrics: state.metrics)
        self.accessLog = AccessLog(enabled: settings.accessLog)
        self.startedWith = settings
    }

    /// Reloads the config (`GatewayState.reload`) and applies it: new requests see the new snapshot, pooled
    /// upstream connections take the new `proxy` settings, the access log is turned on or off. Settings
    /// only a restart can apply are named in the outcome.
    public func reload(environment: [String: String]? = nil) async -> ReloadOutcome {
        switch await state.reload(environment: environment) {
        case .failure(let error):
            return .failed(error)
        case .success(let next):
            // The NIO pools serve only the NIO engine; on the data plane their trust store is never built.
            let namesTLSUpstream = next.settings.namesTLSUpstream
            var trustProblem = pools.update(settings: next.settings.proxy, checkTrust: engine == .nio && namesTLSUpstream)
            if let plane = dataPlane.withLock({ $0 }) {
                trustProblem = plane.updateTrust(caFile: next.settings.proxy.tlsCAFile, namesTLSUpstream: namesTLSUpstream)
            }
            accessLog.setEnabled(next.settings.accessLog)
            return .applied(next, needsRestart: RestartOnlySettings.changed(from: startedWith, to: next.settings),
                            problems: trustProblem.map { [$0] } ?? [])
        }
    }

    /// The data plane, when it serves the public listener.
    var dataPlaneServer: DataPlaneServer? { dataPlane.withLock { $0 } }

    /// Addresses actually bound (port 0 in the config picks a free port).
    public var publicAddress: SocketAddress? {
        if let plane = dataPlane.withLock({ $0 }) { return try? SocketAddress(ipAddress: plane.address.ip, port: plane.address.port) }
        return channels.withLock { $0.public?.localAddress }
    }
    public var adminAddress: SocketAddress? { channels.withLock { $0.admin?.localAddress } }
    public var publicURL: String? { publicAddress.map(GatewayServer.url) }
    public var adminURL: String? { adminAddress.map(GatewayServer.url) }

    static func url(_ address: SocketAddress) -> String {
        guard let ip = address.ipAddress, let port = address.port else { return "\(address)" }
        return ip.contains(":") ? "http://[\(ip)]:\(port)" : "http://\(ip):\(port)"
    }

    public func start() async throws {
        let settings = state.snapshot.settings
        let server = ServerContext(state: state, pools: pools, accessLog: accessLog)
        let (host, port) = try GatewayServer.split(settings.listen)
        let limits = settings.server
        let counter = self.counter
        let state = self.state
        let listenerHealth = self.listenerHealth
        let decoderLimits: NIOHTTPDecoderLimitConfiguration = {
            var l = NIOHTTPDecoderLimitConfiguration()
            l.maxHeaderFieldSize = limits.maxHeaderBytes
            l.maxHeaderListSize = limits.maxHeaderBytes
            l.maxHeaderFieldCount = limits.maxHeaderCount
            return l
        }()
        guard let quiesce = quiesceHelper.withLock({ $0 }) else { throw ChannelError.ioOnClosedChannel }
        if engine == .nio, settings.tls != nil {
            throw ConfigError(issues: [ConfigIssue(file: settings.file, line: nil, column: nil, keyPath: "tls",
                                                   message: "TLS on the listener needs Gatehouse's own data plane (GATEHOUSE_DATA_PLANE=nio is set)")])
        }
        if engine == .epoll {
            let threads = limits.threads > 0 ? limits.threads : System.coreCount
            let shared = DataPlaneShared(state: state, accessLog: accessLog, counter: counter, listenerHealth: listenerHealth,
                                         extraSocketOption: extraChildOption.map { (Int32($0.level), Int32($0.name)) })
            // The admin listener first: once the public one accepts, health and metrics answer too (a client —
            // or a test — that waits for the public port may ask the admin one next).
            try await startAdmin(settings)
            let plane = try DataPlaneServer(shared: shared, threads: threads, host: host, port: port)
            dataPlane.withLock { $0 = plane }
            listenerHealth.listening(at: publicAddress)
            return
        }
        var bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
        if let extraChildOption { bootstrap = bootstrap.childChannelOption(extraChildOption, value: 1) }
        let publicChannel = try await bootstrap
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard counter.admit(limit: state.snapshot.settings.server.maxConnections) else {
                        listenerHealth.refusedByPolicy(channel)
                        channel.close(promise: nil)
                        return
                    }
                    channel.closeFuture.whenComplete { _ in counter.release() }
                    // Named so a WebSocket upgrade can take the HTTP handlers out again; the decoder hands
                    // bytes that follow an upgrade to whatever comes next instead of dropping them.
                    let ops = channel.pipeline.syncOperations
                    try ops.addHandler(HTTPResponseEncoder(), name: ServerPipeline.encoder)
                    try ops.addHandler(ByteToMessageHandler(HTTPRequestDecoder(
                        leftOverBytesStrategy: .forwardBytes, informationalResponseStrategy: .drop, limitConfiguration: decoderLimits)),
                        name: ServerPipeline.decoder)
                    try ops.addHandler(NIOHTTPResponseHeadersValidator(), name: ServerPipeline.validator)
                    try channel.pipeline.syncOperations.addHandler(ClientHandler(server: server), name: ServerPipeline.client)
                }
            }
            .bind(host: host, port: port).get()
        // After NIO's accept handler, which passes on each connection it set up and fires the error of one it
        // could not: what `/readyz` needs to know.
        try await publicChannel.pipeline.addHandler(ListenerHealthHandler(health: listenerHealth, metrics: state.metrics)).get()
        listenerHealth.listening(at: publicChannel.localAddress)
        channels.withLock { $0.public = publicChannel }
        try await startAdmin(settings)
    }

    private func startAdmin(_ settings: GatehouseSettings) async throws {
        let state = self.state
        let listenerHealth = self.listenerHealth
        if let admin = settings.adminListen {
            let (adminHost, adminPort) = try GatewayServer.split(admin)
            let adminChannel = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { [accessLog] channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        try channel.pipeline.syncOperations.addHandler(AdminHandler(state: state, listenerHealth: listenerHealth, accessLog: accessLog))
                    }
                }
                .bind(host: adminHost, port: adminPort).get()
            channels.withLock { $0.admin = adminChannel }
        }
    }

    /// Stops accepting, lets in-flight requests finish (idle keep-alive connections close at once), and
    /// force-closes whatever is left after `gracePeriod` seconds.
    public func shutdown(gracePeriod: Double) async {
        guard !shutDown.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if let plane = dataPlane.withLock({ $0 }) {
            let admin = channels.withLock { $0.admin }
            try? await admin?.close()
            await plane.shutdown(gracePeriod: gracePeriod)
            // No NIO server channel to quiesce: the helper only has to go while the loops still run.
            quiesceHelper.withLock { $0 = nil }
        } else {
            await quiesceConnections(gracePeriod: gracePeriod)
        }
        state.stopBackgroundWork()
        await pools.closeAll()
        // Connections still open after the grace period are closed as the loops stop.
        try? await group.shutdownGracefully()
        accessLog.flush()
    }

    /// Stops accepting and waits for open connections to finish, at most `gracePeriod` seconds. The
    /// quiescing helper is released when this returns, while the loops still run (its deinit uses one).
    private func quiesceConnections(gracePeriod: Double) async {
        let helper = quiesceHelper.withLock { helper -> ServerQuiescingHelper? in
            defer { helper = nil }
            return helper
        }
        guard let helper else { return }
        let quiesced = group.next().makePromise(of: Void.self)
        helper.initiateShutdown(promise: quiesced)
        let admin = channels.withLock { $0.admin }
        try? await admin?.close()
        // Whichever comes first, all connections closed or the grace period over, ends the wait.
        let done = group.next().makePromise(of: Void.self)
        let finished = Atomic<Bool>(false)
        @Sendable func finish() {
            if !finished.exchange(true, ordering: .relaxed) { done.succeed(()) }
        }
        quiesced.futureResult.whenComplete { _ in finish() }
        let deadline = group.next().scheduleTask(in: .milliseconds(Int64(gracePeriod * 1000))) { finish() }
        try? await done.futureResult.get()
        deadline.cancel()
    }

    static func split(_ hostPort: String) throws -> (String, Int) {
        // Validated when the config was loaded; the same parser splits it here.
        guard let (host, port) = ConfigLoader.parseHostPort(hostPort) else {
            throw ConfigError(issues: [ConfigIssue(file: "", line: nil, column: nil, keyPath: "listen", message: "expected host:port")])
        }
        return (host, port)
    }
}

enum ServerPipeline {
    static let encoder = "gatehouse.http-encoder"
    static let decoder = "gatehouse.http-decoder"
    static let validator = "gatehouse.http-validator"
    static let client = "gatehouse.client"
    static let tunnel = "gatehouse.tunnel"
}

/// Counts open client connections against `server.max_connections`.
final class ConnectionCounter: Sendable {
    private let count = Atomic<Int>(0)
    private let metrics: GatewayMetrics

    init(metrics: GatewayMetrics) {
        self.metrics = metrics
    }

    func admit(limit: Int) -> Bool {
        let now = count.wrappingAdd(1, ordering: .relaxed).newValue
        if now > limit {
            count.wrappingSubtract(1, ordering: .relaxed)
            metrics.connectionRefused()
            return false
        }
        metrics.connectionOpened()
        return true
    }

    func release() {
        count.wrappingSubtract(1, ordering: .relaxed)
        metrics.connectionClosed()
    }
}

/// `/healthz`, `/readyz`, `/metrics` on the admin listener only. Exact paths; no header changes anything.
final class AdminHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let state: GatewayState
    let listenerHealth: ListenerHealth
    let accessLog: AccessLog

    init(state: GatewayState, listenerHealth: ListenerHealth, accessLog: AccessLog) {
        self.state = state
        self.listenerHealth = listenerHealth
        self.accessLog = accessLog
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        let snapshot = state.snapshot
        if head.uri == "/readyz", head.method == .GET || head.method == .HEAD, !snapshot.keyStore.keys.isEmpty {
            // Keys are there; ready only if the public listener really serves (HTTPServerPipelineHandler holds
            // any pipelined request until this answer is written).
            let keys = snapshot.keyStore.keys.count
            let generation = snapshot.generation
            listenerHealth.problem(on: context.eventLoop).assumeIsolated().whenSuccess { problem in
                if let problem {
                    self.respond(head, status: .serviceUnavailable, contentType: "text/plain", body: "not ready: \(problem)\n", context: context)
                } else {
                    self.respond(head, status: .ok, contentType: "text/plain",
                                 body: "ready: \(keys) signing key\(keys == 1 ? "" : "s"), config generation \(generation)\n", context: context)
                }
            }
            return
        }
        let (status, contentType, body): (HTTPResponseStatus, String, String)
        switch (head.method, head.uri) {
        case (.GET, "/healthz"), (.HEAD, "/healthz"):
            (status, contentType, body) = (.ok, "text/plain", "ok\n")
        case (.GET, "/readyz"), (.HEAD, "/readyz"):
            let keys = snapshot.keyStore.keys.count
            (status, contentType, body) = keys > 0
                ? (.ok, "text/plain", "ready: \(keys) signing key\(keys == 1 ? "" : "s"), config generation \(snapshot.generation)\n")
                : (.serviceUnavailable, "text/plain", "not ready: no usable signing key (\(snapshot.keyStore.status.lastError ?? "not loaded yet"))\n")
        case (.GET, "/.well-known/jwks.json"), (.HEAD, "/.well-known/jwks.json"):
            // The public keys of identity assertions (`identity_assertion:`), for apps to verify with.
            if let issuer = snapshot.settings.identityAssertion {
                (status, contentType, body) = (.ok, "application/json", issuer.jwks)
            } else {
                (status, contentType, body) = (.notFound, "text/plain", "not found: identity_assertion is not configured\n")
            }
        case (.GET, "/metrics"):
            let jwks = state.jwksCounts
            (status, contentType, body) = (.ok, "text/plain; version=0.0.4",
                state.metrics.render(jwksFetches: jwks.fetches, jwksFailures: jwks.failures, signingKeys: snapshot.keyStore.status.keyCount,
                                     tokenCacheHits: state.tokenCache.hits, tokenCacheMisses: state.tokenCache.misses)
                    + MachineMetrics.render(state.machineVerifiers.withLock { $0.totals })
                    + "# HELP gatehouse_access_log_dropped_total Access-log lines dropped because standard output could not keep up.\n"
                    + "# TYPE gatehouse_access_log_dropped_total counter\ngatehouse_access_log_dropped_total \(accessLog.droppedLines)\n")
        default:
            (status, contentType, body) = (.notFound, "text/plain", "not found\n")
        }
        respond(head, status: status, contentType: contentType, body: body, context: context)
    }

    private func respond(_ head: HTTPRequestHead, status: HTTPResponseStatus, contentType: String, body: String, context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        var headers = HTTPHeaders([("Content-Type", contentType), ("Content-Length", String(body.utf8.count)), ("Cache-Control", "no-store")])
        if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD {
            var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
            buffer.writeString(body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        let keepAlive = head.isKeepAlive
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            if !keepAlive { context.close(promise: nil) }
        }
    }
}
