import Foundation
import GatehouseConfig
import GatehouseDataPlane
import GatehouseLoop
import GatehouseTLS
import Synchronization

/// What every loop of the data plane shares: the config, the access log, the counters.
final class DataPlaneShared: Sendable {
    let state: GatewayState
    let accessLog: AccessLog
    let counter: ConnectionCounter
    let listenerHealth: ListenerHealth
    /// Tests only: one more socket option on every accepted connection, to make its setup fail for real.
    let extraSocketOption: (level: Int32, name: Int32)?
    private let trustStore: Mutex<DataPlaneTrust>

    /// The trust store for `https://` upstreams in force (replaced on reload).
    var trust: DataPlaneTrust { trustStore.withLock { $0 } }

    /// A reload: `proxy.tls_ca_file` read again. What went wrong, if the new store cannot be built
    /// (`https://` upstreams then fail closed, 502); it is built now only when the config names such an upstream.
    func updateTrust(caFile: String?, namesTLSUpstream: Bool) -> String? {
        let trust = DataPlaneTrust.load(caFile: caFile)
        trustStore.withLock { $0 = trust }
        if namesTLSUpstream, case .failure(let problem) = trust.context {
            return "proxy.tls_ca_file: \(problem.message); https:// upstreams answer 502 until it is fixed"
        }
        return nil
    }

    init(state: GatewayState, accessLog: AccessLog, counter: ConnectionCounter, listenerHealth: ListenerHealth,
         extraSocketOption: (level: Int32, name: Int32)?) {
        self.state = state
        self.accessLog = accessLog
        self.counter = counter
        self.listenerHealth = listenerHealth
        self.extraSocketOption = extraSocketOption
        let settings = state.snapshot.settings
        let trust = DataPlaneTrust.load(caFile: settings.proxy.tlsCAFile)
        if settings.namesTLSUpstream { trust.warm() }
        self.trustStore = Mutex(trust)
    }
}

/// One loop's part of the data plane: its listener, its client connections and its upstream pool. Touched
/// only on its loop's thread (other threads go through `loop.execute`).
final class LoopPlane: @unchecked Sendable {
    let loop: EventLoop
    let shared: DataPlaneShared
    let pool = LoopUpstreamPool()
    private var connections: [ObjectIdentifier: ClientConnection] = [:]
    var acceptor: Acceptor?
    private(set) var quiescing = false
    private var cachedSettings: (generation: Int, settings: ConnectionSettings)?
    private var cachedSnapshot: GatewaySnapshot?

    /// The snapshot in force, from this loop's own reference while the published generation has not moved:
    /// the state's lock, taken by every loop for every request, kept its cache line moving between cores.
    var snapshot: GatewaySnapshot {
        let generation = shared.state.generation
        if let cached = cachedSnapshot, cached.generation == generation { return cached }
        let fresh = shared.state.snapshot
        cachedSnapshot = fresh
        return fresh
    }
    /// Buffers lent to busy connections and given back when they go idle: 1,000 idle keep-alive connections
    /// hold none, and a busy loop allocates none per request. 8 KiB holds a head and a small answer (a queue
    /// grows past it when it must; grown ones are freed); 512 spares (4 MiB) cover 128 busy connections.
    private var spareBuffers: [[UInt8]] = []
    static let bufferSize = 8 * 1024
    static let maxSpareBuffers = 512

    func borrowBuffer() -> [UInt8] {
        spareBuffers.popLast() ?? [UInt8](repeating: 0, count: Self.bufferSize)
    }

    func returnBuffer(_ buffer: [UInt8]) {
        // Grown ones (a large head, a burst of body) are let go rather than kept at their size.
        guard buffer.count == Self.bufferSize, spareBuffers.count < Self.maxSpareBuffers else { return }
        spareBuffers.append(buffer)
    }

    init(loop: EventLoop, shared: DataPlaneShared) {
        self.loop = loop
        self.shared = shared
    }

    var openConnections: Int { connections.count }

    func accepted(fd: Int32, peer: SocketEndpoint) {
        let snapshot = self.snapshot
        guard !quiescing, shared.counter.admit(limit: snapshot.settings.server.maxConnections) else {
            Socket.close(fd)
            return
        }
        if let option = shared.extraSocketOption {
            var one: Int32 = 1
            if setsockopt(fd, option.level, option.name, &one, socklen_t(MemoryLayout<Int32>.size)) != 0 {
                let failure = errno
                shared.listenerHealth.recordFailure(SystemError("setsockopt on an accepted connection", errno: failure))
                shared.state.metrics.connectionSetupFailed()
                shared.counter.release()
                Socket.close(fd)
                return
            }
        }
        Socket.setNoDelay(fd)
        do {
            // TLS from the snapshot in force: a reload's new certificates serve the connections after it.
            let transport = try snapshot.settings.tls.map { SocketTransport(tls: try TLSConnection(server: $0.context)) } ?? SocketTransport()
            let connection = try ClientConnection(fd: fd, plane: self, peer: peer.ip, transport: transport,
                                                  settings: settings(snapshot), now: loop.now)
            connections[ObjectIdentifier(connection)] = connection
            shared.listenerHealth.recordServing()
        } catch {
            shared.listenerHealth.recordFailure(error)
            shared.state.metrics.connectionSetupFailed()
            shared.counter.release()
            Socket.close(fd)
        }
    }

    func closed(_ connection: ClientConnection) {
        if connections.removeValue(forKey: ObjectIdentifier(connection)) != nil { shared.counter.release() }
    }

    /// The limits and deadlines of the snapshot in force, converted once per snapshot.
    func settings(_ snapshot: GatewaySnapshot) -> ConnectionSettings {
        if let cached = cachedSettings, cached.generation == snapshot.generation { return cached.settings }
        let server = snapshot.settings.server, proxy = snapshot.settings.proxy
        var s = ConnectionSettings()
        s.headerTimeout = server.headerTimeout
        s.idleTimeout = server.idleTimeout
        s.bodyTimeout = server.bodyTimeout
        s.sendTimeout = server.sendTimeout
        s.maxBodyBytes = server.maxBodyBytes
        s.connectTimeout = proxy.connectTimeout
        s.responseTimeout = proxy.responseTimeout
        s.readTimeout = proxy.readTimeout
        s.limits.maxHeadSize = server.maxHeaderBytes
        s.limits.maxFieldCount = server.maxHeaderCount
        cachedSettings = (snapshot.generation, s)
        return s
    }

    /// Graceful stop: no more accepting; idle connections close now, busy ones after their response.
    func quiesce() {
        quiescing = true
        acceptor?.close()
        acceptor = nil
        for connection in Array(connections.values) { connection.quiesce() }
    }

    func closeAll() {
        acceptor?.close()
        acceptor = nil
        for connection in Array(connections.values) { connection.forceClose() }
        pool.closeAll()
    }
}
