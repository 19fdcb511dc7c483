import NIOCore

/// A deadline that moves on every request but schedules at most one timer at a time: setting or clearing
/// it touches no timer heap; a pending timer re-checks the deadline when it fires. Loop-bound.
final class LazyTimer {
    private let eventLoop: any EventLoop
    private var deadline: NIODeadline?
    private var pendingFireTime: NIODeadline?
    private let action: () -> Void

    init(eventLoop: any EventLoop, action: @escaping () -> Void) {
        self.eventLoop = eventLoop
        self.action = action
    }

    func set(in seconds: Double) {
        let deadline = NIODeadline.now() + .milliseconds(Int64(seconds * 1000))
        self.deadline = deadline
        if let pending = pendingFireTime, pending <= deadline { return }
        schedule(at: deadline)
    }

    func cancel() { deadline = nil }

    private func schedule(at time: NIODeadline) {
        pendingFireTime = time
        eventLoop.assumeIsolated().scheduleTask(deadline: time) { [weak self] in self?.fired(at: time) }
    }

    private func fired(at time: NIODeadline) {
        if pendingFireTime == time { pendingFireTime = nil }
        guard let deadline else { return }
        if deadline > .now() {
            if pendingFireTime == nil || pendingFireTime! > deadline { schedule(at: deadline) }
        } else {
            self.deadline = nil
            action()
        }
    }
}
