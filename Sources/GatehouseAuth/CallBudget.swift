/// Outbound calls made on behalf of clients, limited twice: a small token bucket per client address first, so
/// one client cannot empty the shared one, then one bucket for the whole process. The handshake-nonce exchange
/// and the machine-token verifier each keep one inside the state their lock guards.
struct CallBudget {
    private struct Bucket {
        var tokens: Double
        var refilledAt: Double

        mutating func refill(now: Double, burst: Int, perSecond: Double) {
            tokens = min(Double(burst), tokens + max(0, now - refilledAt) * perSecond)
            refilledAt = now
        }
    }

    let burst: Int
    let perSecond: Double
    let clientBurst: Int
    let clientPerSecond: Double
    /// Client buckets remembered; past it the full ones (a client idle long enough) are forgotten first.
    let maxClients: Int
    private var shared: Bucket
    private var clients: [String: Bucket] = [:]

    init(burst: Int, perSecond: Double, clientBurst: Int, clientPerSecond: Double, maxClients: Int, now: Double) {
        (self.burst, self.perSecond, self.clientBurst, self.clientPerSecond, self.maxClients) = (burst, perSecond, clientBurst, clientPerSecond, maxClients)
        shared = Bucket(tokens: Double(burst), refilledAt: now)
    }

    /// Would `spend` succeed now? Refills both buckets, spends nothing.
    mutating func allows(_ client: String, now: Double) -> Bool { admitted(client, now: now) != nil }

    /// Spends one call from the client's bucket and one from the shared bucket; false, spending nothing, when
    /// either is empty.
    mutating func spend(_ client: String, now: Double) -> Bool {
        guard var bucket = admitted(client, now: now) else { return false }
        bucket.tokens -= 1
        remember(client, bucket, now: now)
        shared.tokens -= 1
        return true
    }

    /// The client's refilled bucket when it and the shared one both hold a call.
    private mutating func admitted(_ client: String, now: Double) -> Bucket? {
        shared.refill(now: now, burst: burst, perSecond: perSecond)
        var bucket = clients[client] ?? Bucket(tokens: Double(clientBurst), refilledAt: now)
        bucket.refill(now: now, burst: clientBurst, perSecond: clientPerSecond)
        guard bucket.tokens >= 1, shared.tokens >= 1 else { return nil }
        return bucket
    }

    private mutating func remember(_ client: String, _ bucket: Bucket, now: Double) {
        if clients[client] == nil, clients.count >= maxClients {
            // A bucket refilled to its burst is the same as a new one: forgetting it changes nothing.
            clients = clients.filter { _, old in
                old.tokens + max(0, now - old.refilledAt) * clientPerSecond < Double(clientBurst)
            }
            // Still full (a flood from as many addresses): start over; the shared bucket still holds.
            if clients.count >= maxClients { clients.removeAll(keepingCapacity: true) }
        }
        clients[client] = bucket
    }
}
