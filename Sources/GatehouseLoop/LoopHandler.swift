import CGatehouseSys

/// What epoll reported for one registration in one wake-up.
public struct ReadyEvents: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let readable = ReadyEvents(rawValue: 1 << 0)
    public static let writable = ReadyEvents(rawValue: 1 << 1)
    /// EPOLLRDHUP: the peer shut down its writing side (reads will reach end of file after the buffered bytes).
    public static let readHangup = ReadyEvents(rawValue: 1 << 2)
    /// EPOLLHUP: both directions are gone.
    public static let hangup = ReadyEvents(rawValue: 1 << 3)
    /// EPOLLERR: a pending socket error (read it with `Socket.connectOutcome` / SO_ERROR).
    public static let error = ReadyEvents(rawValue: 1 << 4)

    init(epoll mask: UInt32) {
        var events: ReadyEvents = []
        if mask & EPOLLIN.rawValue != 0 { events.insert(.readable) }
        if mask & EPOLLOUT.rawValue != 0 { events.insert(.writable) }
        if mask & EPOLLRDHUP.rawValue != 0 { events.insert(.readHangup) }
        if mask & EPOLLHUP.rawValue != 0 { events.insert(.hangup) }
        if mask & EPOLLERR.rawValue != 0 { events.insert(.error) }
        self = events
    }
}

/// Whatever owns a registered descriptor. Called only on the loop's thread. The loop keeps a strong reference
/// from `register` until `deregister`.
public protocol LoopHandler: AnyObject {
    func ready(_ events: ReadyEvents)
    func deadlinePassed()
}

/// Something that asked to be called once the loop's current pass (its events, deadlines and queued work) is done.
public protocol LoopPassObserver: AnyObject {
    func passEnded()
}

/// A registration: a slot in the loop's table plus that slot's generation, so anything carrying an old
/// registration (a queued epoll event, a stored handle) is ignored once the slot is reused.
public struct Registration: Hashable, Sendable {
    public let slot: Int
    public let generation: UInt32

    /// What travels in epoll_data.u64.
    var packed: UInt64 { UInt64(UInt32(truncatingIfNeeded: slot)) | UInt64(generation) << 32 }

    init(slot: Int, generation: UInt32) {
        self.slot = slot
        self.generation = generation
    }

    init(packed: UInt64) {
        self.slot = Int(UInt32(truncatingIfNeeded: packed))
        self.generation = UInt32(truncatingIfNeeded: packed >> 32)
    }
}
