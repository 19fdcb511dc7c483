import CGatehouseSys
import Glibc
import Synchronization

/// One EventLoop per thread. `start` spawns the threads; `stop` stops every loop and joins its thread.
public final class LoopGroup: Sendable {
    private enum State {
        case idle
        case running([pthread_t])
        case stopped
    }

    public let loops: [EventLoop]
    private let state = Mutex<State>(.idle)

    public init(threads: Int) throws {
        precondition(threads > 0, "a loop group needs at least one thread")
        loops = try (0..<threads).map { _ in try EventLoop() }
    }

    /// One thread per loop, named gatehouse-loop-N in `/proc` terms as far as the kernel's 15 bytes allow
    /// ("gatehouse-lp-N"). A second call does nothing.
    public func start() {
        state.withLock { state in
            guard case .idle = state else { return }
            var threads: [pthread_t] = []
            for (index, loop) in loops.enumerated() {
                let context = Unmanaged.passRetained(ThreadContext(loop: loop, name: "gatehouse-lp-\(index)"))
                var thread = pthread_t()
                let created = pthread_create(&thread, nil, { raw in
                    let context = Unmanaged<ThreadContext>.fromOpaque(raw!).takeRetainedValue()
                    _ = ghsys_set_thread_name(context.name)
                    context.loop.run()
                    return nil
                }, context.toOpaque())
                precondition(created == 0, "pthread_create failed: \(created)")
                threads.append(thread)
            }
            state = .running(threads)
        }
    }

    /// Stops every loop and joins its thread. Idempotent. Not from a loop thread of this group (it cannot join
    /// itself; that thread is skipped).
    public func stop() {
        let threads: [pthread_t] = state.withLock { state in
            defer { state = .stopped }
            if case .running(let threads) = state { return threads }
            return []
        }
        for loop in loops { loop.stop() }
        let me = pthread_self()
        for thread in threads where pthread_equal(thread, me) == 0 {
            pthread_join(thread, nil)
        }
    }

    /// The calling thread's name as the kernel keeps it (for logs and tests).
    public static func currentThreadName() -> String {
        var name = [CChar](repeating: 0, count: 32)
        guard ghsys_get_thread_name(&name, name.count) == 0 else { return "" }
        return String(cString: name)
    }

    /// Queues work on loop `index` (any thread).
    public func run(on index: Int, _ work: @escaping @Sendable () -> Void) {
        loops[index].execute(work)
    }
}

private final class ThreadContext {
    let loop: EventLoop
    let name: String
    init(loop: EventLoop, name: String) {
        self.loop = loop
        self.name = name
    }
}
