/// What MachineExchangeReuseTests and Review3ExchangeReuseTests compare: one exchange (`second`) run after
/// another (`first`) on the same connection, against `second` alone on a new one.
enum ExchangeReuseCheck {
    /// What one exchange showed: bytes each way, the actions (records, upstream errors, acquire/release).
    struct Seen: Equatable {
        var client: String
        var upstream: String
        var actions: [String]
    }

    static func observe(_ d: inout MachineDriver, _ scenario: (inout MachineDriver) -> Void) -> Seen {
        _ = d.takeClient()
        _ = d.takeUpstream()
        let before = d.log.count
        scenario(&d)
        return Seen(client: d.takeClient(), upstream: d.takeUpstream(), actions: d.log[before...].map { "\($0)" })
    }

    struct Outcome {
        /// `second` alone on a new connection.
        var alone: Seen
        /// `second` after `first`; nil when `first` closed the connection (or shut its writing side).
        var after: Seen?
        /// What either driver saw go wrong.
        var problems: [String]
    }

    static func run(_ second: (inout MachineDriver) -> Void, after first: (inout MachineDriver) -> Void) -> Outcome {
        var fresh = MachineDriver()
        let alone = observe(&fresh, second)
        var reused = MachineDriver()
        _ = observe(&reused, first)
        guard !reused.clientClosed, !reused.clientWriteShut else { return Outcome(alone: alone, after: nil, problems: fresh.problems) }
        // The pooled upstream (if any) is attached as new for the second exchange, as on a new connection.
        if reused.upstream == .pooled { reused.upstream = .none }
        let after = observe(&reused, second)
        return Outcome(alone: alone, after: after, problems: reused.problems + fresh.problems)
    }
}
