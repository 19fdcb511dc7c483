// Fuzz target: GatehouseDataPlane's ConnectionMachine driven by random events — client and upstream bytes, ends and
// resets, verdicts, upstream connections that come or fail, partial writes, a slow or stopped client, the clock.
// The driver keeps the loop's side of the contract (it reads a side only while the machine wants it, answers only
// what was asked). Invariants: no crash; nothing is queued for the client once it is closed or shut for writing,
// and nothing at all happens after .closeClient but upstream cleanup; one request is open at a time and each
// decided head ends in at most one .finished; upstream connections are acquired, released and closed in order;
// a deadline passed is acted on (no deadline left at or before now); while an upstream is held or awaited there is
// a deadline unless the client itself is what holds the exchange up; and once both peers go silent (the loop still
// writing, deciding and letting time pass) the connection ends within a bounded number of deadlines.
import GatehouseCore
import GatehouseDataPlane
import GatehouseHTTP1

private enum UpstreamState { case none, acquiring, attached }

private struct Loop {
    var machine: ConnectionMachine
    var now: UInt64 = 1_000_000_000
    var upstream = UpstreamState.none
    var pendingDecision = false
    var openExchange = false
    var clientClosed = false
    var clientWriteShut = false

    mutating func check(_ what: String) {
        for action in machine.takeActions() {
            if clientClosed {
                if case .closeUpstream = action {} else { require(false, "\(action) after closeClient (\(what))") }
            }
            switch action {
            case .decide:
                require(!openExchange && !pendingDecision, "a second head decided while one is open (\(what))")
                pendingDecision = true
                openExchange = true
            case .finished(let record):
                if record.refusedBeforeDecision {
                    require(!openExchange, "a refusal finished while an exchange is open (\(what))")
                } else {
                    require(openExchange, "finished twice, or with no head decided (\(what))")
                    openExchange = false
                    pendingDecision = false
                }
            case .acquireUpstream:
                require(upstream == .none, "acquire while \(upstream) (\(what))")
                upstream = .acquiring
            case .releaseUpstream:
                require(upstream == .attached, "release while \(upstream) (\(what))")
                upstream = .none
            case .closeUpstream:
                require(upstream != .none, "closeUpstream with none (\(what))")
                machine.upstreamOut.removeAll()
                upstream = .none
            case .upstreamError:
                break
            case .shutdownClientWrite:
                require(!clientWriteShut && !clientClosed, "shutdownClientWrite twice (\(what))")
                require(machine.clientOut.isEmpty, "shutdownClientWrite with \(machine.clientOut.count) bytes queued (\(what))")
                clientWriteShut = true
            case .closeClient:
                require(!clientClosed, "closeClient twice (\(what))")
                require(machine.clientOut.isEmpty, "closeClient with \(machine.clientOut.count) bytes queued (\(what))")
                clientClosed = true
            }
        }
        if clientClosed || clientWriteShut {
            require(machine.clientOut.isEmpty, "bytes queued for a client that is closed or shut (\(what))")
        }
        if clientClosed { require(machine.isClosed, "closeClient said but the machine is not closed") }
        if !clientClosed, upstream != .none, machine.clientOut.count < 256 * 1024 {
            require(machine.deadline != nil, "an upstream held or awaited with no deadline (\(what))")
        }
    }
}

private let verdicts: [ExchangeVerdict] = {
    let head = Array("GET / HTTP/1.1\r\nHost: u\r\n\r\n".utf8)
    let target = UpstreamTarget(url: "http://u:80")!
    func plan(chunked: Bool = false, retryable: Bool = false, sendContinue: Bool = false, tunnel: Double? = nil) -> ExchangeVerdict {
        .forward(ForwardPlan(upstream: target, head: head, chunkedBody: chunked, retryable: retryable, sendContinue: sendContinue,
                             tunnelLifetime: tunnel, response: ResponseRewrite(extraFields: Array("X-E: 1\r\n".utf8),
                                                                              location: (from: Array("http://u".utf8), to: Array("/p".utf8)))))
    }
    let deny = Decision.deny(status: 403, error: "forbidden", message: "no", explanation: "fuzz")
    return [
        plan(), plan(chunked: true), plan(retryable: true), plan(sendContinue: true), plan(tunnel: 30),
        .answer(deny, label: "deny", closeConnection: false), .answer(deny, label: "reject", closeConnection: true),
    ]
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConnection(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var fuzz = FuzzInput(data, size)
    var settings = ConnectionSettings()
    let flags = fuzz.byte()
    if flags & 1 != 0 { settings.maxBodyBytes = 64 }
    if flags & 2 != 0 { settings.discardBudget = 16 }
    if flags & 4 != 0 {
        settings.limits.maxHeadSize = 256
        settings.limits.maxFieldCount = 4
    }
    var loop = Loop(machine: ConnectionMachine(settings: settings, now: 1_000_000_000))
    var steps = 0
    while !fuzz.isAtEnd, steps < 256, !loop.clientClosed {
        steps += 1
        let op = fuzz.byte()
        switch op % 14 {
        case 0, 1:
            // Client bytes: up to the next newline, which becomes CRLF (op 0) or nothing (op 1, a cut line).
            let bytes = fuzz.line() + (op % 14 == 0 ? [0x0D, 0x0A] : [])
            guard loop.machine.wantsClientRead, !bytes.isEmpty else { continue }
            loop.machine.clientIn.append(bytes)
            loop.machine.clientReceived(now: loop.now)
            loop.check("clientReceived")
        case 2, 3:
            let bytes = fuzz.line() + (op % 14 == 2 ? [0x0D, 0x0A] : [])
            guard loop.upstream == .attached, loop.machine.wantsUpstreamRead, !bytes.isEmpty else { continue }
            loop.machine.upstreamIn.append(bytes)
            loop.machine.upstreamReceived(now: loop.now)
            loop.check("upstreamReceived")
        case 4:
            let choice = Int(fuzz.byte()) % verdicts.count
            guard loop.pendingDecision else { continue }
            loop.pendingDecision = false
            loop.machine.decided(verdicts[choice], now: loop.now)
            loop.check("decided")
        case 5:
            let reused = fuzz.byte() & 1 != 0
            guard loop.upstream == .acquiring else { continue }
            loop.upstream = .attached
            loop.machine.upstreamAttached(reused: reused, now: loop.now)
            loop.check("upstreamAttached")
        case 6:
            let why = fuzz.byte() % 3
            guard loop.upstream == .acquiring else { continue }
            loop.upstream = .none
            loop.machine.upstreamUnavailable(why == 0 ? .refused : why == 1 ? .timedOut : .tls("x"), now: loop.now)
            loop.check("upstreamUnavailable")
        case 7:
            // The end of input, read together with some last bytes (possibly none).
            let bytes = fuzz.line()
            guard loop.machine.wantsClientRead else { continue }
            loop.machine.clientIn.append(bytes)
            loop.machine.clientEndedInput(now: loop.now)
            loop.check("clientEndedInput")
        case 8:
            let bytes = fuzz.line()
            guard loop.upstream == .attached, loop.machine.wantsUpstreamRead else { continue }
            loop.machine.upstreamIn.append(bytes)
            loop.machine.upstreamEndedInput(now: loop.now)
            loop.check("upstreamEndedInput")
        case 9:
            if fuzz.byte() & 1 == 0 {
                loop.machine.clientFailed(now: loop.now)
                loop.check("clientFailed")
            } else if loop.upstream == .attached {
                loop.machine.upstreamFailed(now: loop.now)
                loop.check("upstreamFailed")
                require(loop.upstream != .attached, "a failed upstream connection is still held")
            }
        case 10:
            // Time passes: by up to ~2 min, acting on the deadline if it is due.
            loop.now += UInt64(fuzz.byte()) * 500_000_000
            if let deadline = loop.machine.deadline, deadline <= loop.now {
                loop.machine.deadlinePassed(now: loop.now)
                loop.check("deadlinePassed")
                if !loop.machine.isClosed, let next = loop.machine.deadline {
                    require(next > loop.now, "deadline \(next) still due after deadlinePassed(\(loop.now))")
                }
            }
        case 11:
            // The client's socket takes some bytes (0: it is full).
            let fraction = Int(fuzz.byte())
            guard !loop.clientClosed, !loop.clientWriteShut, !loop.machine.clientOut.isEmpty else { continue }
            let n = loop.machine.clientOut.count * fraction / 255
            if n == 0 {
                loop.machine.clientWriteBlocked(now: loop.now)
            } else {
                loop.machine.clientOut.consume(n)
                loop.machine.clientWrote(now: loop.now)
            }
            loop.check("clientWrote")
        case 12:
            let fraction = Int(fuzz.byte())
            guard loop.upstream == .attached, !loop.machine.upstreamOut.isEmpty else { continue }
            let n = max(1, loop.machine.upstreamOut.count * fraction / 255)
            loop.machine.upstreamOut.consume(n)
            loop.machine.upstreamWrote(now: loop.now)
            loop.check("upstreamWrote")
        default:
            loop.machine.quiesce(now: loop.now)
            loop.check("quiesce")
        }
    }
    // Then both peers go silent while the loop does its part (writes everything, decides, lets time pass):
    // every phase has a deadline, so the connection must end — none may be held forever.
    var rounds = 0
    while !loop.clientClosed {
        rounds += 1
        require(rounds <= 64, "connection still open after 64 rounds of silence")
        if !loop.clientWriteShut, !loop.machine.clientOut.isEmpty {
            loop.machine.clientOut.consume(loop.machine.clientOut.count)
            loop.machine.clientWrote(now: loop.now)
            loop.check("drain: clientWrote")
        }
        if loop.upstream == .attached, !loop.machine.upstreamOut.isEmpty {
            loop.machine.upstreamOut.consume(loop.machine.upstreamOut.count)
            loop.machine.upstreamWrote(now: loop.now)
            loop.check("drain: upstreamWrote")
        }
        if loop.pendingDecision {
            loop.pendingDecision = false
            loop.machine.decided(verdicts[5], now: loop.now)
            loop.check("drain: decided")
            continue
        }
        guard let deadline = loop.machine.deadline else {
            require(!loop.machine.clientOut.isEmpty || loop.clientClosed, "no deadline while waiting on silent peers")
            continue
        }
        loop.now = max(loop.now, deadline)
        loop.machine.deadlinePassed(now: loop.now)
        loop.check("drain: deadlinePassed")
    }
    return 0
}
