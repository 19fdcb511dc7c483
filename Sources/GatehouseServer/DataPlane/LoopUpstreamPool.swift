import Foundation
import GatehouseCore
import GatehouseLoop

/// A loop's idle keep-alive upstream connections (LIFO per upstream, so the warmest is reused), and the
/// upstreams' resolved addresses. Owned by one loop: no locks.
final class LoopUpstreamPool {
    private var idle: [UpstreamTarget: [UpstreamLink]] = [:]
    /// Where the last upstream used has its list: nearly every request goes to the same one, so it is found by
    /// comparing targets, not by hashing one twice per request (take and release, ~0.3% of the CPU). Lists
    /// are only ever added (here) or all dropped (`closeAll`): an index stays valid until then.
    private var lastPlace: (target: UpstreamTarget, index: Dictionary<UpstreamTarget, [UpstreamLink]>.Index)?

    /// The place of `target`'s list, adding an empty one if it has none.
    private func place(_ target: UpstreamTarget) -> Dictionary<UpstreamTarget, [UpstreamLink]>.Index {
        if let last = lastPlace, last.target == target { return last.index }
        // (A list added may move the others: the one remembered is replaced right here.)
        if idle[target] == nil { idle[target] = [] }
        let index = idle.index(forKey: target)!
        lastPlace = (target, index)
        return index
    }
    private var addresses: [UpstreamTarget: (addresses: [ResolvedAddress], until: UInt64)] = [:]
    /// Requests waiting for a name being looked up: one lookup per name at a time, however many ask.
    private var lookups: [UpstreamTarget: [([ResolvedAddress]) -> Void]] = [:]
    /// How long a resolved address is used before it is looked up again.
    static let addressLifetime: UInt64 = 30_000_000_000
    /// How long a name that did not resolve is answered 502 without asking again (a flood against a broken
    /// DNS would otherwise start a lookup per request).
    static let failureLifetime: UInt64 = 1_000_000_000

    /// The warmest idle connection to `target`; TLS ones verified against an older trust store are closed.
    func takeIdle(_ target: UpstreamTarget, trustGeneration: Int) -> UpstreamLink? {
        // Popped in place (one hash, no copy): taken out of the dictionary first, the array was shared, so
        // popLast copied all of it, and putting it back hashed the target again.
        let at = place(target)
        while let link = idle.values[at].popLast() {
            if target.tls && link.trustGeneration != trustGeneration {
                link.close()
                continue
            }
            // Bytes (or a close) that came while it idled, whose event this pass has not reached yet: sent to
            // nobody, they would be read as this request's response (UnsolicitedIdleBytesTests). One peek per
            // reuse (~0.2 µs).
            if link.receivedWhileIdle {
                link.close()
                continue
            }
            link.setIdleDeadline(nil)
            return link
        }
        return nil
    }

    /// Keeps `link` for the next request to `target` unless the pool for it is full.
    func release(_ link: UpstreamLink, maxIdle: Int, idleTimeout: Double, now: UInt64) {
        link.owner = nil
        guard case .open = link.state, maxIdle > 0 else {
            link.close()
            return
        }
        // One lookup for the check and the append.
        let kept = appendIfRoom(link, maxIdle: maxIdle, to: &idle.values[place(link.target)])
        guard kept else {
            link.close()
            return
        }
        link.state = .idle
        link.readable = false
        link.setIdleDeadline(now + UInt64(max(idleTimeout, 0.001) * 1e9))
    }

    private func appendIfRoom(_ link: UpstreamLink, maxIdle: Int, to links: inout [UpstreamLink]) -> Bool {
        guard links.count < maxIdle else { return false }
        links.append(link)
        return true
    }

    func remove(_ link: UpstreamLink) {
        guard let index = idle[link.target]?.firstIndex(where: { $0 === link }) else { return }
        idle[link.target]?.remove(at: index)
    }

    func closeAll() {
        for links in idle.values { for link in links { link.close() } }
        idle = [:]
        lastPlace = nil
    }

    /// The addresses known for `target` (empty: it did not resolve a moment ago), or nil to look it up.
    func cachedAddresses(_ target: UpstreamTarget, now: UInt64) -> [ResolvedAddress]? {
        guard let entry = addresses[target], entry.until > now else { return nil }
        return entry.addresses
    }

    func remember(_ resolved: [ResolvedAddress], for target: UpstreamTarget, now: UInt64) {
        addresses[target] = (resolved, now + (resolved.isEmpty ? Self.failureLifetime : Self.addressLifetime))
    }

    /// Looks `target`'s name up on a thread of its own (getaddrinfo may block on DNS; GCD's shared pool can be
    /// left without a thread by blocking work elsewhere), then calls every waiter on the loop.
    func lookUp(_ target: UpstreamTarget, loop: EventLoop, then waiter: @escaping ([ResolvedAddress]) -> Void) {
        if lookups[target] != nil {
            lookups[target]!.append(waiter)
            return
        }
        lookups[target] = [waiter]
        let box = LookupBox(pool: self)
        Thread.detachNewThread {
            let resolved = Socket.resolve(host: target.host, port: target.port)
            loop.execute {
                guard let pool = box.pool else { return }
                pool.remember(resolved, for: target, now: loop.now)
                let waiters = pool.lookups.removeValue(forKey: target) ?? []
                for waiter in waiters { waiter(resolved) }
            }
        }
    }
}

/// Carries the pool to the lookup thread and back (the pool is only touched on its loop).
private final class LookupBox: @unchecked Sendable {
    weak var pool: LoopUpstreamPool?
    init(pool: LoopUpstreamPool) { self.pool = pool }
}
