import GatehouseLoop
import Glibc
import Synchronization
import Testing

/// `callAtEndOfPass`: the data plane writes its sockets there, after a pass's events, so it must be called in the
/// pass that asked (before the loop waits again), once per ask, and again in the same end when asked from it.
@Suite("Loop: end of pass")
struct LoopPassEndTests {
    final class PassRecorder: LoopPassObserver, @unchecked Sendable {
        let loop: EventLoop
        /// The loop's `now` at each call (one value per pass).
        let calls = Mutex<[UInt64]>([])
        var asksAgain: Int
        init(loop: EventLoop, asksAgain: Int) {
            self.loop = loop
            self.asksAgain = asksAgain
        }
        func passEnded() {
            calls.withLock { $0.append(loop.now) }
            if asksAgain > 0 {
                asksAgain -= 1
                loop.callAtEndOfPass(self)
            }
        }
    }

    @Test func anObserverIsCalledInThePassThatAskedAndAgainWhenItAsksFromThere() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let loop = running.loop
        let observer = PassRecorder(loop: loop, asksAgain: 1)
        let asked = try onLoop(loop) { () -> UInt64 in
            loop.callAtEndOfPass(observer)
            #expect(observer.calls.withLock { $0.isEmpty }, "called while the pass was still running")
            return loop.now
        }
        #expect(waitUntil { observer.calls.withLock { $0.count } == 2 })
        // The same `now`: both calls came before the loop woke again.
        #expect(observer.calls.withLock { $0 } == [asked, asked])
        // Nothing more without another ask, however many passes go by.
        for _ in 0..<3 { _ = try onLoop(loop) { loop.now } }
        #expect(observer.calls.withLock { $0.count } == 2)
    }

    @Test func aHandlerThatAsksDuringItsEventIsCalledAfterIt() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let loop = running.loop
        let (a, b) = try makeSocketPair()
        defer { close(a); close(b) }
        final class AskingHandler: LoopHandler, @unchecked Sendable {
            let observer: PassRecorder
            let readyAt = Mutex<[UInt64]>([])
            init(_ observer: PassRecorder) { self.observer = observer }
            func ready(_ events: ReadyEvents) {
                readyAt.withLock { $0.append(observer.loop.now) }
                observer.loop.callAtEndOfPass(observer)
            }
            func deadlinePassed() {}
        }
        let handler = AskingHandler(PassRecorder(loop: loop, asksAgain: 0))
        _ = try onLoop(loop) { try loop.register(fd: a, handler: handler) }
        writeByte(b)
        #expect(waitUntil { handler.observer.calls.withLock { !$0.isEmpty } })
        let ready = handler.readyAt.withLock { $0 }
        #expect(!ready.isEmpty && handler.observer.calls.withLock { $0 }.first == ready.first)
    }
}
