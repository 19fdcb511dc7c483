/// A hashed timing wheel: at most one deadline per key (a connection slot), O(1) set and cancel.
///
/// Sans-IO: time only comes in through `set`/`expire`, so tests drive it with a mock clock. Each key lives in the
/// bucket of its deadline's tick (modulo `slots`) on an intrusive doubly linked list; deadlines more than one
/// revolution away simply stay in their bucket until a pass finds them due. Expiry compares the exact deadline,
/// so a key never fires early, whatever the tick size.
public struct TimerWheel {
    private struct Node {
        var deadline: UInt64 = 0
        var bucket: Int32 = -1  // -1: no deadline
        var previous: Int32 = -1
        var next: Int32 = -1
    }

    public let tickNanoseconds: UInt64
    public let slots: Int
    private var nodes: [Node] = []
    private var heads: [Int32]
    /// Each bucket's earliest deadline (UInt64.max: empty), exact unless `minimumStale` says its owner left;
    /// lets `nextDeadline` look at buckets, not at every key.
    private var bucketMinimum: [UInt64]
    private var minimumStale: [Bool]
    /// The tick the last `expire` reached; buckets before it hold nothing due.
    private var currentTick: UInt64
    public private(set) var count = 0
    /// A lower bound of the earliest deadline (nil: unknown, recompute). Cancels leave it as is: still a lower bound.
    private var cachedNext: UInt64?

    public init(start now: UInt64, tickNanoseconds: UInt64 = 10_000_000, slots: Int = 512) {
        precondition(tickNanoseconds > 0 && slots > 0)
        self.tickNanoseconds = tickNanoseconds
        self.slots = slots
        self.heads = Array(repeating: -1, count: slots)
        self.bucketMinimum = Array(repeating: .max, count: slots)
        self.minimumStale = Array(repeating: false, count: slots)
        self.currentTick = now / tickNanoseconds
    }

    /// The key's deadline, if it has one.
    public func deadline(of key: Int) -> UInt64? {
        guard key >= 0, key < nodes.count, nodes[key].bucket >= 0 else { return nil }
        return nodes[key].deadline
    }

    /// Sets, replaces or (nil) cancels the key's deadline.
    public mutating func set(key: Int, deadline: UInt64?) {
        precondition(key >= 0 && key < Int(Int32.max))
        if key >= nodes.count {
            guard deadline != nil else { return }
            nodes.append(contentsOf: repeatElement(Node(), count: Swift.max(key + 1 - nodes.count, nodes.count)))
        }
        if nodes[key].bucket >= 0 { unlink(key) }
        guard let deadline else { return }
        // A deadline already past goes in the current bucket, which the next expire visits first.
        let tick = Swift.max(deadline / tickNanoseconds, currentTick)
        let bucket = Int(tick % UInt64(slots))
        nodes[key].deadline = deadline
        link(key, bucket: bucket)
        if let next = cachedNext, deadline < next { cachedNext = deadline }
    }

    /// Appends every key whose deadline is <= now (each once; it is then forgotten).
    public mutating func expire(now: UInt64, into expired: inout [Int]) {
        let nowTick = now / tickNanoseconds
        guard count > 0 else {
            currentTick = Swift.max(currentTick, nowTick)
            return
        }
        let countBefore = count
        let first = currentTick
        let last = Swift.max(nowTick, currentTick)
        // More than a revolution behind: every bucket once is enough.
        let span = Swift.min(last - first, UInt64(slots - 1))
        for step in 0...span {
            let bucket = Int((first + step) % UInt64(slots))
            var key = heads[bucket]
            var minimum = UInt64.max
            while key >= 0 {
                let next = nodes[Int(key)].next
                let deadline = nodes[Int(key)].deadline
                if deadline <= now {
                    unlink(Int(key))
                    expired.append(Int(key))
                } else {
                    minimum = Swift.min(minimum, deadline)
                }
                key = next
            }
            // The walk saw every key left in the bucket: its minimum is exact again.
            bucketMinimum[bucket] = minimum
            minimumStale[bucket] = false
        }
        currentTick = last
        // Nothing left, or a bound now in the past (a cancelled key): recompute, else the loop would spin.
        if count != countBefore || (cachedNext ?? 0) <= now { cachedNext = nil }
    }

    /// Never later than the earliest deadline. Exact, except that a cancel or a later re-set may leave an earlier
    /// bound, recomputed once an expire passes it (one spare wake-up, never a spin).
    public var nextDeadline: UInt64? {
        mutating get {
            guard count > 0 else { return nil }
            if let cachedNext { return cachedNext }
            let found = scanEarliest()
            cachedNext = found
            return found
        }
    }

    /// The first tick from the current one whose bucket's earliest deadline falls in that tick (or before: a
    /// past deadline). Later revolutions' keys in the same bucket have larger deadlines, so the minimum decides.
    private mutating func scanEarliest() -> UInt64 {
        for step in 0..<UInt64(slots) {
            let tick = currentTick + step
            let bucket = Int(tick % UInt64(slots))
            if minimumStale[bucket] { refreshMinimum(bucket) }
            let minimum = bucketMinimum[bucket]
            if minimum != .max && minimum / tickNanoseconds <= tick { return minimum }
        }
        // Everything is at least a revolution away.
        return (currentTick + UInt64(slots)) * tickNanoseconds
    }

    private mutating func refreshMinimum(_ bucket: Int) {
        var minimum = UInt64.max
        var key = heads[bucket]
        while key >= 0 {
            minimum = Swift.min(minimum, nodes[Int(key)].deadline)
            key = nodes[Int(key)].next
        }
        bucketMinimum[bucket] = minimum
        minimumStale[bucket] = false
    }

    private mutating func link(_ key: Int, bucket: Int) {
        let head = heads[bucket]
        nodes[key].bucket = Int32(bucket)
        nodes[key].previous = -1
        nodes[key].next = head
        if head >= 0 { nodes[Int(head)].previous = Int32(key) }
        heads[bucket] = Int32(key)
        bucketMinimum[bucket] = Swift.min(bucketMinimum[bucket], nodes[key].deadline)  // stale stays stale
        count += 1
    }

    private mutating func unlink(_ key: Int) {
        let node = nodes[key]
        if node.previous >= 0 {
            nodes[Int(node.previous)].next = node.next
        } else {
            heads[Int(node.bucket)] = node.next
        }
        if node.next >= 0 { nodes[Int(node.next)].previous = node.previous }
        let bucket = Int(node.bucket)
        if heads[bucket] < 0 {
            bucketMinimum[bucket] = .max
            minimumStale[bucket] = false
        } else if node.deadline == bucketMinimum[bucket] {
            minimumStale[bucket] = true  // the earliest left; find the next one only when asked
        }
        nodes[key].bucket = -1
        count -= 1
    }
}
