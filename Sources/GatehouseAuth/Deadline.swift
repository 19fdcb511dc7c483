import Synchronization

/// One deadline around a whole piece of async work (an HTTP call's head *and* body). AsyncHTTPClient's
/// `execute(_:timeout:)` deadline ends when the head arrives, so a peer that stalls mid-body would hold the
/// caller forever. The work runs in a task of its own that is cancelled at the deadline; the caller is
/// answered then even if the work ignores cancellation (it is left to end on its own).
public enum Deadline {
    public struct Exceeded: Error, CustomStringConvertible {
        public let seconds: Double
        public var description: String { "timed out (no complete answer within \(seconds) s)" }
    }

    public static func run<T: Sendable>(seconds: Double, _ work: @escaping @Sendable () async throws -> T) async throws -> T {
        let race = Race<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                race.start(continuation)
                let worker = Task {
                    do { race.finish(.success(try await work())) } catch { race.finish(.failure(error)) }
                }
                let timer = Task {
                    try? await Task.sleep(nanoseconds: UInt64(max(0, seconds) * 1_000_000_000))
                    race.finish(.failure(Exceeded(seconds: seconds)))
                }
                race.track([worker, timer])
            }
        } onCancel: {
            race.finish(.failure(CancellationError()))
        }
    }

    /// The first outcome answers the caller; the tasks still running are then cancelled.
    private final class Race<T: Sendable>: Sendable {
        private struct State {
            var continuation: CheckedContinuation<T, any Error>?
            var tasks: [Task<Void, Never>] = []
            var done = false
        }
        private let state = Mutex(State())

        func start(_ continuation: CheckedContinuation<T, any Error>) {
            state.withLock { $0.continuation = continuation }
        }

        func track(_ tasks: [Task<Void, Never>]) {
            let finished = state.withLock { state -> Bool in
                state.tasks = tasks
                return state.done
            }
            if finished { for task in tasks { task.cancel() } }
        }

        func finish(_ outcome: Result<T, any Error>) {
            let (continuation, tasks) = state.withLock { state -> (CheckedContinuation<T, any Error>?, [Task<Void, Never>]) in
                // Cancellation before the continuation exists is ignored: the work or the deadline answers then.
                guard !state.done, let continuation = state.continuation else { return (nil, []) }
                state.done = true
                state.continuation = nil
                return (continuation, state.tasks)
            }
            guard let continuation else { return }
            for task in tasks { task.cancel() }
            continuation.resume(with: outcome)
        }
    }
}
