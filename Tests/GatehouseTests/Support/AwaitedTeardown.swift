import NIOCore
import Synchronization
import Testing

/// Test servers stopped and awaited when each test ends, pass or fail: `defer { Task { await x.stop() } }`
/// cannot await, so servers and their threads used to outlive the test and overlap the next one.
/// A suite opts in with `.stopsServers`; servers register themselves while a test of such a suite runs.
final class ServerRegistry: Sendable {
    @TaskLocal static var current: ServerRegistry?

    private let stops = Mutex<[@Sendable () async -> Void]>([])

    static func register(_ stop: @escaping @Sendable () async -> Void) {
        current?.stops.withLock { $0.append(stop) }
    }

    /// Newest first: a gateway goes down before the upstream it uses.
    func stopAll() async {
        let all = stops.withLock { list in
            defer { list = [] }
            return list
        }
        for stop in all.reversed() { await stop() }
    }
}

struct StopsServersTrait: SuiteTrait, TestTrait, TestScoping {
    var isRecursive: Bool { true }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        guard !test.isSuite else { return try await function() }
        let registry = ServerRegistry()
        try await ServerRegistry.$current.withValue(registry) {
            do {
                try await function()
            } catch {
                await registry.stopAll()
                throw error
            }
            await registry.stopAll()
        }
    }
}

extension Trait where Self == StopsServersTrait {
    static var stopsServers: StopsServersTrait { StopsServersTrait() }
}

/// Runs a stop once; every caller (the registry, a leftover `defer { Task { … } }`) awaits the same run.
final class StopOnce: Sendable {
    private let task = Mutex<Task<Void, Never>?>(nil)

    func run(_ work: @escaping @Sendable () async -> Void) async {
        let running = task.withLock { current in
            if current == nil { current = Task { await work() } }
            return current!
        }
        await running.value
    }
}

@Suite struct AwaitedTeardownTests {
    @Test func registeredServersAreStoppedWhenTheScopeEnds() async throws {
        let registry = ServerRegistry()
        let upstream = try await ServerRegistry.$current.withValue(registry) {
            let upstream = try await TestUpstream()
            #expect((try? RawClient(port: upstream.port)) != nil)
            return upstream
        }
        #expect(upstream.channel.isActive)
        await registry.stopAll()
        // The listener itself, not a connect to its port: once closed, that port is free for another test running
        // in parallel to bind again, and a connect would then reach that test's server.
        #expect(!upstream.channel.isActive, "the upstream's listener is still open after stopAll")
    }
}
