import Foundation
import GatehouseLoop

/// The public listener on Gatehouse's own data plane: one loop thread per core (`server.threads`), each
/// with its own `SO_REUSEPORT` listener, connections and upstream pool, so a request never crosses threads.
final class DataPlaneServer: Sendable {
    private let group: LoopGroup
    private let planes: [LoopPlane]
    private let shared: DataPlaneShared
    let address: SocketEndpoint

    init(shared: DataPlaneShared, threads: Int, host: String, port: Int) throws {
        EventLoop.ignoreSIGPIPE()
        self.shared = shared
        group = try LoopGroup(threads: max(1, threads))
        planes = group.loops.map { LoopPlane(loop: $0, shared: shared) }
        var boundPort = port
        var bound: SocketEndpoint?
        var opened: [Int32] = []
        do {
            for plane in planes {
                // Port 0 picks a free port with the first listener; the others share it.
                let fd = try Socket.listen(host: host, port: boundPort, reusePort: true)
                opened.append(fd)
                if bound == nil {
                    bound = Socket.localAddress(fd)
                    boundPort = bound?.port ?? port
                }
                plane.acceptor = try Acceptor(
                    fd: fd, loop: plane.loop,
                    onAccept: { [plane] fd, peer in plane.accepted(fd: fd, peer: peer) },
                    onAcceptError: { [shared] failure in
                        shared.listenerHealth.recordFailure(SystemError("accept", errno: failure))
                        shared.state.metrics.connectionSetupFailed()
                    })
            }
        } catch {
            for fd in opened { Socket.close(fd) }
            throw error
        }
        address = bound ?? SocketEndpoint(ip: host, port: port)
        group.start()
    }

    /// A reload: the upstream trust store read again (see `DataPlaneShared.updateTrust`).
    func updateTrust(caFile: String?, namesTLSUpstream: Bool) -> String? {
        shared.updateTrust(caFile: caFile, namesTLSUpstream: namesTLSUpstream)
    }

    /// Stops accepting, lets in-flight requests finish (idle keep-alive connections close at once), closes
    /// whatever is left after `gracePeriod` seconds, then stops the loops.
    func shutdown(gracePeriod: Double) async {
        for plane in planes { plane.loop.execute { plane.quiesce() } }
        let deadline = Date().addingTimeInterval(gracePeriod)
        while Date() < deadline, await openConnections() > 0 {
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        await onEveryLoop { $0.closeAll() }
        group.stop()
    }

    /// Every loop ran a task (for the systemd watchdog).
    func everyLoopAnswers() async -> Bool {
        await onEveryLoop { _ in }
        return true
    }

    private func openConnections() async -> Int {
        var total = 0
        for plane in planes {
            total += await withCheckedContinuation { continuation in
                plane.loop.execute { continuation.resume(returning: plane.openConnections) }
            }
        }
        return total
    }

    private func onEveryLoop(_ work: @escaping @Sendable (LoopPlane) -> Void) async {
        for plane in planes {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                plane.loop.execute {
                    work(plane)
                    continuation.resume()
                }
            }
        }
    }
}
