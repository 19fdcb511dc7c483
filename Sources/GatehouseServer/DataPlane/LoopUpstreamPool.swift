import Foundation
import GatehouseCore
import GatehouseLoop

/// A loop's idle keep-alive upstream connections (LIFO per upstream, so the warmest is reused), and the
/// upstreams' resolved addresses. Owned by one loop: no locks.
final class LoopUpstreamPool {
    private var idle: [UpstreamTarget: [UpstreamLink]] = [:]
    private var addresses: [UpstreamTarget: (addresses: [ResolvedAddress], until: UInt64)] = [:]
    /// How long a resolved address is used before it is looked up again.
    static let addressLifetime: UInt64 = 30_000_000_000

    /// The warmest idle connection to `target`; TLS ones verified against an older trust store are closed.
    func takeIdle(_ target: UpstreamTarget, trustGeneration: Int) -> UpstreamLink? {
        guard var links = idle[target] else { return nil }
        while let link = links.popLast() {
            if target.tls && link.trustGeneration != trustGeneration {
                link.close()
                continue
            }
            idle[target] = links
            link.setIdleDeadline(nil)
            return link
        }
        idle[target] = nil
        return nil
    }

    /// Keeps `link` for the next request to `target` unless the pool for it is full.
    func release(_ link: UpstreamLink, maxIdle: Int, idleTimeout: Double, now: UInt64) {
        link.owner = nil
        guard case .open = link.state, idle[link.target, default: []].count < maxIdle, maxIdle > 0 else {
            link.close()
            return
        }
        link.state = .idle
        link.readable = false
        link.setIdleDeadline(now + UInt64(max(idleTimeout, 0.001) * 1e9))
        idle[link.target, default: []].append(link)
    }

    func remove(_ link: UpstreamLink) {
        guard var links = idle[link.target], let index = links.firstIndex(where: { $0 === link }) else { return }
        links.remove(at: index)
        idle[link.target] = links
    }

    func closeAll() {
        for links in idle.values { for link in links { link.close() } }
        idle = [:]
    }

    func cachedAddresses(_ target: UpstreamTarget, now: UInt64) -> [ResolvedAddress]? {
        guard let entry = addresses[target], entry.until > now, !entry.addresses.isEmpty else { return nil }
        return entry.addresses
    }

    func remember(_ resolved: [ResolvedAddress], for target: UpstreamTarget, now: UInt64) {
        guard !resolved.isEmpty else { return }
        addresses[target] = (resolved, now + Self.addressLifetime)
    }
}
