import Foundation
import GatehouseConfig
import GatehouseCore
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// What an upstream connection reports to the request that is using it. Called on the connection's loop.
protocol UpstreamDelegate: AnyObject {
    func upstreamReceived(_ part: HTTPClientResponsePart)
    func upstreamWritabilityChanged(isWritable: Bool)
    /// The end of a read burst from the upstream: time to flush what was relayed.
    func upstreamReadComplete()
    func upstreamFailed(_ error: any Error)
}

/// One HTTP/1.1 connection to an upstream, owned by one event loop (the same loop as the client connection
/// that uses it, so relaying never crosses threads).
final class UpstreamConnection {
    let channel: any Channel
    let target: UpstreamTarget
    fileprivate let handler: UpstreamHandler
    /// False once the upstream said `Connection: close`, a response was cut short, or anything failed.
    var reusable = true
    /// When it went back to the pool (for the idle sweep).
    fileprivate var idleSince = NIODeadline.now()
    /// Has this connection carried a request before (a stale keep-alive connection may fail on reuse)?
    var reused = false
    /// Reading paused because the client could not take more. Always undone before the connection goes back
    /// to the pool: a pooled connection left unread would never see its next response.
    private(set) var readingPaused = false

    /// The trust store a TLS connection was verified with (`UpstreamTrust.generation`; 0 for plain HTTP).
    let trustGeneration: Int

    fileprivate init(channel: any Channel, target: UpstreamTarget, handler: UpstreamHandler, trustGeneration: Int) {
        self.channel = channel
        self.target = target
        self.handler = handler
        self.trustGeneration = trustGeneration
    }

    var delegate: (any UpstreamDelegate)? {
        get { handler.delegate }
        set { handler.delegate = newValue }
    }

    /// Backpressure from the client side: stop or resume reading the upstream.
    func pauseReading(_ paused: Bool) {
        guard paused != readingPaused else { return }
        readingPaused = paused
        _ = channel.setOption(ChannelOptions.autoRead, value: !paused)
    }

    func close() {
        reusable = false
        delegate = nil
        channel.close(promise: nil)
    }
}

final class UpstreamHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    weak var delegate: (any UpstreamDelegate)?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        delegate?.upstreamReceived(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        delegate?.upstreamReadComplete()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        delegate?.upstreamWritabilityChanged(isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        delegate?.upstreamFailed(ChannelError.eof)
        delegate = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        delegate?.upstreamFailed(error)
        delegate = nil
        context.close(promise: nil)
    }
}

enum UpstreamPipeline {
    static let encoder = "gatehouse.upstream-encoder"
    static let decoder = "gatehouse.upstream-decoder"
    static let handler = "gatehouse.upstream"
    static let tunnel = "gatehouse.upstream-tunnel"
}

/// Keep-alive connections to upstreams, one pool per event loop (never shared across threads, so no locks).
final class UpstreamPool {
    let eventLoop: any EventLoop
    private var idle: [UpstreamTarget: [UpstreamConnection]] = [:]
    private var settings: ProxySettings
    /// Set at shutdown: nothing is kept (or timed) any more.
    private var closing = false

    init(eventLoop: any EventLoop, settings: ProxySettings, trust: UpstreamTrust) {
        self.eventLoop = eventLoop
        self.settings = settings
        self.trust = trust
    }

    private var trust: UpstreamTrust

    func update(settings: ProxySettings, trust: UpstreamTrust) {
        self.settings = settings
        guard trust.generation != self.trust.generation else { return }
        self.trust = trust
        // Pooled TLS connections verified against the old trust store are not reused.
        for (target, list) in idle where target.tls {
            var kept: [UpstreamConnection] = []
            for connection in list {
                if connection.trustGeneration == trust.generation { kept.append(connection) } else { connection.close() }
            }
            idle[target] = kept.isEmpty ? nil : kept
        }
    }

    /// A new connection to `target` (pooled ones come from `takeIdle`).
    func connect(_ target: UpstreamTarget) -> EventLoopFuture<UpstreamConnection> {
        let handler = UpstreamHandler()
        let trust = self.trust
        let generation = target.tls ? trust.generation : 0
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(.milliseconds(Int64(settings.connectTimeout * 1000)))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let ops = channel.pipeline.syncOperations
                    if target.tls {
                        // https:// upstreams (the Frontend API): certificates verified against the system roots or proxy.tls_ca_file.
                        let sni = CIDR.parseAddress(target.host) == nil ? target.host : nil
                        try ops.addHandler(NIOSSLClientHandler(context: trust.context.get(), serverHostname: sni))
                    }
                    try ops.addHandler(HTTPRequestEncoder(), name: UpstreamPipeline.encoder)
                    try ops.addHandler(ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .forwardBytes)), name: UpstreamPipeline.decoder)
                    try ops.addHandler(handler, name: UpstreamPipeline.handler)
                }
            }
            .connect(host: target.host, port: target.port)
            .map { channel in UpstreamConnection(channel: channel, target: target, handler: handler, trustGeneration: generation) }
    }

    /// A pooled live connection, if there is one: the common case, answered without a future. The list is
    /// changed in place (a copy of it cost an allocation per request).
    func takeIdle(_ target: UpstreamTarget) -> UpstreamConnection? {
        eventLoop.assertInEventLoop()
        while let connection = idle[target]?.popLast() {
            if connection.channel.isActive, connection.trustGeneration == (target.tls ? trust.generation : 0) {
                connection.reused = true
                return connection
            }
        }
        return nil
    }

    /// Returns a connection after a complete exchange; it is kept only when reusable and there is room.
    func release(_ connection: UpstreamConnection) {
        eventLoop.assertInEventLoop()
        connection.delegate = nil
        connection.pauseReading(false)
        guard connection.reusable, connection.channel.isActive, !closing,
            connection.trustGeneration == (connection.target.tls ? trust.generation : 0)
        else {
            connection.close()
            return
        }
        guard idle[connection.target, default: []].count < settings.maxIdleConnections else {
            connection.close()
            return
        }
        connection.idleSince = .now()
        idle[connection.target, default: []].append(connection)
        startSweeping()
    }

    private var sweeper: Scheduled<Void>?

    /// Closes connections idle longer than `proxy.idle_timeout`: one timer per loop while anything is pooled,
    /// not one timer per release (releases happen on every request).
    private func startSweeping() {
        guard sweeper == nil, !closing else { return }
        let interval = max(0.05, min(1, settings.idleTimeout / 2))
        sweeper = eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(interval * 1000))) { [weak self] in
            guard let self else { return }
            self.sweeper = nil
            self.sweep()
            if !self.idle.isEmpty { self.startSweeping() }
        }
    }

    private func sweep() {
        let cutoff = NIODeadline.now() - .milliseconds(Int64(settings.idleTimeout * 1000))
        for (target, list) in idle {
            var kept: [UpstreamConnection] = []
            for connection in list {
                if connection.idleSince < cutoff || !connection.channel.isActive { connection.close() } else { kept.append(connection) }
            }
            idle[target] = kept.isEmpty ? nil : kept
        }
    }

    func closeAll() {
        closing = true
        sweeper?.cancel()
        sweeper = nil
        for connection in idle.values.joined() {
            connection.close()
        }
        idle = [:]
    }
}

/// One pool per event loop, created up front so lookups need no lock.
final class UpstreamPools: Sendable {
    private let pools: [ObjectIdentifier: NIOLoopBound<UpstreamPool>]

    init(group: MultiThreadedEventLoopGroup, settings: ProxySettings, warmTrust: Bool) {
        var pools: [ObjectIdentifier: NIOLoopBound<UpstreamPool>] = [:]
        let trust = UpstreamTrust.load(caFile: settings.tlsCAFile)
        if warmTrust { trust.warm() }
        for loop in group.makeIterator() {
            let pool = try! loop.submit { NIOLoopBound(UpstreamPool(eventLoop: loop, settings: settings, trust: trust), eventLoop: loop) }.wait()
            pools[ObjectIdentifier(loop)] = pool
        }
        self.pools = pools
    }

    /// The pool of the calling loop.
    func pool(for loop: any EventLoop) -> UpstreamPool {
        pools[ObjectIdentifier(loop)]!.value
    }

    /// Closes idle connections and stops pooling, on every loop.
    func closeAll() async {
        for pool in pools.values {
            try? await pool.eventLoop.submit { pool.value.closeAll() }.get()
        }
    }

    /// A reload: new settings, and `proxy.tls_ca_file` read again (a rotated CA file takes effect). Returns
    /// what went wrong when the new trust store cannot be built (`https://` upstreams then fail closed, 502);
    /// it is built now only when `checkTrust` says it will be used.
    func update(settings: ProxySettings, checkTrust: Bool) -> String? {
        let trust = UpstreamTrust.load(caFile: settings.tlsCAFile)
        for pool in pools.values {
            pool.eventLoop.execute { pool.value.update(settings: settings, trust: trust) }
        }
        guard checkTrust, case .failure(let error) = trust.context else { return nil }
        return "proxy.tls_ca_file: \(error); https:// upstreams answer 502 until it is fixed"
    }
}

/// The NIO listener's trust store (NIOSSL); the bytes read are the ones the context is built from.
typealias UpstreamTrust = TrustStore<NIOSSLContext>

extension TrustStore where Context == NIOSSLContext {
    static func load(caFile: String?) -> UpstreamTrust { nioTrustStores.load(caFile: caFile) }
}

private let nioTrustStores = TrustStoreCache<NIOSSLContext> { caFile, pem in
    var configuration = TLSConfiguration.makeClientConfiguration()
    if caFile != nil, let pem { configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes([UInt8](pem))) }
    return try NIOSSLContext(configuration: configuration)
}
