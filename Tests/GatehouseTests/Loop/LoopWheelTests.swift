import GatehouseLoop
import Testing

/// A deterministic generator so a failing differential run can be replayed from its seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The obviously correct model the wheel is compared with: a dictionary, scanned in full.
struct NaiveTimers {
    var deadlines: [Int: UInt64] = [:]
    mutating func set(key: Int, deadline: UInt64?) { deadlines[key] = deadline }
    mutating func expire(now: UInt64) -> [Int] {
        let due = deadlines.filter { $0.value <= now }.map(\.key)
        for key in due { deadlines[key] = nil }
        return due.sorted()
    }
    var earliest: UInt64? { deadlines.values.min() }
}

private let ms: UInt64 = 1_000_000
private let tick: UInt64 = 10 * ms

private func expire(_ wheel: inout TimerWheel, at now: UInt64) -> [Int] {
    var keys: [Int] = []
    wheel.expire(now: now, into: &keys)
    return keys.sorted()
}

@Suite("Loop: timer wheel (mock clock)")
struct LoopWheelTests {
    let start: UInt64 = 1_000_000 * ms  // not zero: the wheel must not assume time starts at 0

    @Test func firesAtItsDeadlineNotBeforeAndOnlyOnce() {
        var wheel = TimerWheel(start: start)
        wheel.set(key: 3, deadline: start + 25 * ms)
        #expect(expire(&wheel, at: start + 24 * ms).isEmpty)
        #expect(expire(&wheel, at: start + 25 * ms - 1).isEmpty)  // same tick, a nanosecond early
        #expect(expire(&wheel, at: start + 25 * ms) == [3])
        #expect(expire(&wheel, at: start + 90 * ms).isEmpty)
        #expect(wheel.count == 0)
        #expect(wheel.nextDeadline == nil)
    }

    @Test func manyKeysFireInTheirOwnTicks() {
        var wheel = TimerWheel(start: start)
        for key in 0..<1000 { wheel.set(key: key, deadline: start + UInt64(key) * ms) }
        #expect(wheel.count == 1000)
        var fired: [Int] = []
        for step in stride(from: UInt64(0), through: 1000, by: 7) {
            let keys = expire(&wheel, at: start + step * ms)
            #expect(keys.allSatisfy { UInt64($0) <= step }, "nothing fires early")
            fired += keys
        }
        fired += expire(&wheel, at: start + 1000 * ms)
        #expect(fired.count == 1000)
        #expect(fired.sorted() == Array(0..<1000))
    }

    @Test func cancelledKeysNeverFire() {
        var wheel = TimerWheel(start: start)
        for key in 0..<10 { wheel.set(key: key, deadline: start + 50 * ms) }
        for key in stride(from: 0, to: 10, by: 2) { wheel.set(key: key, deadline: nil) }
        wheel.set(key: 99, deadline: nil)  // cancelling a key never set is harmless
        #expect(wheel.count == 5)
        #expect(expire(&wheel, at: start + 60 * ms) == [1, 3, 5, 7, 9])
    }

    @Test func resettingReplacesTheDeadlineEarlierOrLater() {
        var wheel = TimerWheel(start: start)
        wheel.set(key: 1, deadline: start + 500 * ms)
        wheel.set(key: 1, deadline: start + 20 * ms)  // earlier
        wheel.set(key: 2, deadline: start + 20 * ms)
        wheel.set(key: 2, deadline: start + 800 * ms)  // later
        #expect(wheel.count == 2)
        #expect(wheel.deadline(of: 1) == start + 20 * ms)
        #expect(expire(&wheel, at: start + 30 * ms) == [1])
        #expect(expire(&wheel, at: start + 600 * ms).isEmpty, "the replaced 500 ms deadline of key 1 is gone")
        #expect(expire(&wheel, at: start + 800 * ms) == [2])
    }

    @Test func deadlinesManyRevolutionsAwayWaitTheirTurn() {
        // 512 slots of 10 ms: one revolution is 5.12 s; this one is ~3.5 revolutions out.
        var wheel = TimerWheel(start: start)
        let far = start + 18_000 * ms + 3
        wheel.set(key: 7, deadline: far)
        wheel.set(key: 8, deadline: start + 5_120 * ms)  // exactly one revolution: same bucket as "now"
        #expect(wheel.nextDeadline! <= start + 5_120 * ms)
        var now = start
        while now < far - 10 * ms {
            now += 13 * ms
            let keys = expire(&wheel, at: min(now, far - 1))
            if !keys.isEmpty { #expect(keys == [8] && now >= start + 5_120 * ms) }
        }
        #expect(wheel.deadline(of: 7) == far)
        #expect(wheel.nextDeadline == far)
        #expect(expire(&wheel, at: far - 1).isEmpty)
        #expect(expire(&wheel, at: far) == [7])
    }

    @Test func aLongSilenceStillFiresEverything() {
        var wheel = TimerWheel(start: start)
        wheel.set(key: 1, deadline: start + 5 * ms)
        wheel.set(key: 2, deadline: start + 70_000 * ms)
        wheel.set(key: 3, deadline: start + 200_000 * ms)
        // One expire an hour later skips straight over many revolutions.
        #expect(expire(&wheel, at: start + 3_600_000 * ms) == [1, 2, 3])
    }

    @Test func pastDeadlinesFireOnTheNextExpire() {
        var wheel = TimerWheel(start: start)
        _ = expire(&wheel, at: start + 1_000 * ms)
        wheel.set(key: 4, deadline: start)  // a second in the past
        wheel.set(key: 5, deadline: 0)
        #expect(wheel.nextDeadline == 0)
        #expect(expire(&wheel, at: start + 1_000 * ms) == [4, 5])
    }

    @Test func exactTickBoundaries() {
        var wheel = TimerWheel(start: 0, tickNanoseconds: tick, slots: 8)
        wheel.set(key: 0, deadline: tick - 1)
        wheel.set(key: 1, deadline: tick)
        wheel.set(key: 2, deadline: tick + 1)
        wheel.set(key: 3, deadline: 8 * tick)  // same bucket as tick 0, one revolution on
        #expect(expire(&wheel, at: tick - 1) == [0])
        #expect(expire(&wheel, at: tick) == [1])
        #expect(expire(&wheel, at: tick) == [])
        #expect(expire(&wheel, at: tick + 1) == [2])
        #expect(expire(&wheel, at: 8 * tick - 1) == [])
        #expect(expire(&wheel, at: 8 * tick) == [3])
    }

    @Test func nextDeadlineIsExactAfterExpireAndNeverLate() {
        var wheel = TimerWheel(start: start)
        #expect(wheel.nextDeadline == nil)
        wheel.set(key: 1, deadline: start + 300 * ms + 7)
        wheel.set(key: 2, deadline: start + 40 * ms + 3)
        #expect(wheel.nextDeadline == start + 40 * ms + 3)
        wheel.set(key: 3, deadline: start + 10 * ms)  // earlier than the cached answer
        #expect(wheel.nextDeadline == start + 10 * ms)
        wheel.set(key: 3, deadline: nil)  // a cancel may leave it early, never late
        #expect(wheel.nextDeadline! <= start + 40 * ms + 3)
        #expect(expire(&wheel, at: start + 50 * ms) == [2])
        #expect(wheel.nextDeadline == start + 300 * ms + 7)
        // Moved a minute out: the old answer (300 ms) may stand as a bound until it has passed…
        wheel.set(key: 1, deadline: start + 60_000 * ms)
        _ = expire(&wheel, at: start + 51 * ms)
        #expect(wheel.nextDeadline! <= start + 60_000 * ms)
        _ = expire(&wheel, at: start + 301 * ms)
        // …then it is recomputed (never left in the past, where the loop would spin): beyond one revolution it is
        // the end of the revolution.
        let bound = wheel.nextDeadline!
        #expect(bound <= start + 60_000 * ms && bound >= start + 5_000 * ms)
    }

    @Test(arguments: [UInt64(1), 42, 0xDEAD_BEEF, 7_777_777])
    func randomOperationsMatchTheNaiveModel(seed: UInt64) {
        var random = SplitMix64(state: seed)
        // Small wheels make wrap-around and multi-revolution deadlines common.
        let slots = [4, 16, 512][Int(seed % 3)]
        var now = start
        var wheel = TimerWheel(start: now, tickNanoseconds: tick, slots: slots)
        var model = NaiveTimers()
        for _ in 0..<20_000 {
            let key = Int.random(in: 0..<200, using: &random)
            switch UInt64.random(in: 0..<100, using: &random) {
            case 0..<45:
                // Mostly near, some far (many revolutions), some in the past, some on a tick boundary.
                let deadline: UInt64
                switch UInt64.random(in: 0..<10, using: &random) {
                case 0: deadline = now - UInt64.random(in: 0...(50 * ms), using: &random)
                case 1: deadline = now + UInt64.random(in: 0...(100_000 * ms), using: &random)
                case 2: deadline = (now / tick + UInt64.random(in: 0...20, using: &random)) * tick
                default: deadline = now + UInt64.random(in: 0...(200 * ms), using: &random)
                }
                wheel.set(key: key, deadline: deadline)
                model.set(key: key, deadline: deadline)
            case 45..<60:
                wheel.set(key: key, deadline: nil)
                model.set(key: key, deadline: nil)
            default:
                now += UInt64.random(in: 0...(30 * ms), using: &random)
                if UInt64.random(in: 0..<200, using: &random) == 0 { now += 20_000 * ms }
                let fired = expire(&wheel, at: now)
                let expected = model.expire(now: now)
                #expect(fired == expected, "seed \(seed) at \(now)")
                if fired != expected { return }
                if let next = wheel.nextDeadline { #expect(next > now, "a bound in the past would spin the loop") }
            }
            #expect(wheel.count == model.deadlines.count)
            let next = wheel.nextDeadline
            #expect((next == nil) == (model.earliest == nil))
            if let next, let earliest = model.earliest { #expect(next <= earliest, "never later than the earliest") }
        }
    }
}
