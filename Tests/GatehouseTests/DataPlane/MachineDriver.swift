import Foundation
import GatehouseCore
import GatehouseDataPlane
import GatehouseHTTP1

/// Plays the event loop around one `ConnectionMachine`, without sockets: peers are byte strings, the clock is a
/// number. After every event it carries out the actions (as a loop would), then "writes" whatever the machine
/// queued for a side that is reading (taking it from the queue and reporting the write), unless told not to.
/// It also checks the loop's side of the contract: every upstream release/close matches an upstream held or
/// asked for, nothing is queued for the client once it is closed or shut for writing.
struct MachineDriver {
    var machine: ConnectionMachine
    /// Monotonic ns.
    var now: UInt64 = 5_000_000_000

    /// Every action, in order.
    var log: [ConnectionAction] = []
    /// Heads asked about and not yet decided, with their request targets (read from `clientIn` as the loop would).
    var pendingDecisions: [RequestHead] = []
    var decidedTargets: [String] = []
    var acquires: [(target: UpstreamTarget, fresh: Bool)] = []

    enum UpstreamState: Equatable { case none, acquiring, attached, pooled }
    var upstream = UpstreamState.none

    /// Bytes the client's socket was given, not yet looked at by the test.
    var clientGot: [UInt8] = []
    /// Bytes the upstream connection was given (all attachments), not yet looked at.
    var upstreamGot: [UInt8] = []
    /// Bytes still queued for the client when it was closed (lost).
    var lostAtClose: [UInt8] = []
    var clientClosed = false
    var clientWriteShut = false
    /// The client's socket takes bytes (false: every write attempt is blocked).
    var clientReading = true
    /// The upstream's socket takes bytes.
    var upstreamReading = true
    /// The loop writes after each event (false: it has not got to it yet).
    var autoWrite = true
    /// Contract breaches seen (a test expects this empty).
    var problems: [String] = []

    init(settings: ConnectionSettings = ConnectionSettings()) {
        machine = ConnectionMachine(settings: settings, now: now)
    }

    // MARK: Events

    mutating func client(_ text: String) { client(Array(text.utf8)) }

    mutating func client(_ data: [UInt8]) {
        if clientClosed { return }
        machine.clientIn.append(data)
        step { $0.clientReceived(now: $1) }
    }

    mutating func clientEOF() { step { $0.clientEndedInput(now: $1) } }

    /// The last bytes and the end of input read together, reported as one end (the machine reads what is there).
    mutating func clientSendsThenEOF(_ text: String) {
        machine.clientIn.append(text)
        step { $0.clientEndedInput(now: $1) }
    }
    mutating func clientReset() { step { $0.clientFailed(now: $1) } }

    mutating func upstreamSends(_ text: String) { upstreamSends(Array(text.utf8)) }

    mutating func upstreamSends(_ data: [UInt8]) {
        guard upstream == .attached else {
            problems.append("upstream bytes with no upstream attached")
            return
        }
        machine.upstreamIn.append(data)
        step { $0.upstreamReceived(now: $1) }
    }

    mutating func upstreamEOF() { step { $0.upstreamEndedInput(now: $1) } }

    /// The upstream's last bytes and its end read together, reported as one end.
    mutating func upstreamSendsThenEOF(_ text: String) {
        machine.upstreamIn.append(text)
        step { $0.upstreamEndedInput(now: $1) }
    }
    mutating func upstreamReset() { step { $0.upstreamFailed(now: $1) } }

    /// Answers the oldest pending `.decide`.
    mutating func decide(_ verdict: ExchangeVerdict) {
        guard !pendingDecisions.isEmpty else {
            problems.append("decide with nothing asked")
            return
        }
        pendingDecisions.removeFirst()
        step { $0.decided(verdict, now: $1) }
    }

    /// The asked-for upstream connection is there.
    mutating func attach(reused: Bool = false) {
        if upstream != .acquiring { problems.append("attach while \(upstream)") }
        upstream = .attached
        step { $0.upstreamAttached(reused: reused, now: $1) }
    }

    mutating func unavailable(_ reason: UpstreamUnavailable) {
        if upstream != .acquiring { problems.append("unavailable while \(upstream)") }
        upstream = .none
        step { $0.upstreamUnavailable(reason, now: $1) }
    }

    mutating func quiesce() { step { $0.quiesce(now: $1) } }

    /// The clock moves on; every deadline passed on the way is acted on, at its time.
    mutating func elapse(_ seconds: Double) {
        let end = now + UInt64(seconds * 1e9)
        var fired = 0
        while let deadline = machine.deadline, deadline <= end, !clientClosed, fired < 100 {
            now = max(now, deadline)
            fired += 1
            step { $0.deadlinePassed(now: $1) }
        }
        now = end
    }

    /// The client's socket takes `n` bytes of what is queued (it reads slowly).
    mutating func clientReads(_ n: Int) {
        let n = min(n, machine.clientOut.count)
        guard n > 0, !clientClosed else { return }
        clientGot += machine.clientOut.withReadable { Array($0[0..<n]) }
        machine.clientOut.consume(n)
        step { $0.clientWrote(now: $1) }
    }

    /// The client's socket takes bytes again: writes what is queued.
    mutating func clientResumesReading() {
        clientReading = true
        writeQueued()
    }

    mutating func upstreamResumesReading() {
        upstreamReading = true
        writeQueued()
    }

    // MARK: What the peers got

    mutating func takeClient() -> String {
        defer { clientGot = [] }
        return String(decoding: clientGot, as: UTF8.self)
    }

    mutating func takeUpstream() -> String {
        defer { upstreamGot = [] }
        return String(decoding: upstreamGot, as: UTF8.self)
    }

    var decideCount: Int { log.filter { if case .decide = $0 { return true } else { return false } }.count }
    var finished: [ExchangeRecord] { log.compactMap { if case .finished(let r) = $0 { return r } else { return nil } } }
    var upstreamErrors: [String] { log.compactMap { if case .upstreamError(let k) = $0 { return k } else { return nil } } }
    func count(_ action: ConnectionAction) -> Int { log.filter { $0 == action }.count }

    // MARK: The loop

    mutating func step(_ event: (inout ConnectionMachine, UInt64) -> Void) {
        event(&machine, now)
        carryOut()
    }

    private mutating func carryOut() {
        for action in machine.takeActions() {
            log.append(action)
            switch action {
            case .decide:
                guard let head = machine.headToDecide else {
                    problems.append("decide without a head to decide")
                    continue
                }
                pendingDecisions.append(head)
                decidedTargets.append(machine.clientIn.withReadable { String(decoding: $0[head.target], as: UTF8.self) })
            case .acquireUpstream(let target, let fresh):
                if upstream == .attached || upstream == .acquiring { problems.append("acquire while \(upstream)") }
                acquires.append((target, fresh))
                upstream = .acquiring
            case .releaseUpstream:
                if upstream != .attached { problems.append("release while \(upstream)") }
                upstream = .pooled
            case .closeUpstream:
                if upstream != .attached && upstream != .acquiring { problems.append("closeUpstream while \(upstream)") }
                upstreamGot += machine.upstreamOut.bytes
                machine.upstreamOut.removeAll()
                upstream = .none
            case .upstreamError:
                break
            case .finished:
                break
            case .shutdownClientWrite:
                if clientWriteShut || clientClosed { problems.append("shutdownClientWrite twice or after close") }
                if !machine.clientOut.isEmpty { problems.append("shutdownClientWrite with \(machine.clientOut.count) bytes queued") }
                clientWriteShut = true
            case .closeClient:
                if clientClosed { problems.append("closeClient twice") }
                lostAtClose = machine.clientOut.bytes
                // The loop closes without writing: the machine must not leave bytes it means to send.
                if !lostAtClose.isEmpty { problems.append("closeClient with \(lostAtClose.count) bytes queued") }
                clientClosed = true
            }
        }
        if autoWrite { writeQueued() }
    }

    /// Writes what is queued for each side that takes bytes, as the loop does after the actions.
    mutating func writeQueued() {
        if !clientClosed && !machine.clientOut.isEmpty {
            if clientWriteShut {
                problems.append("bytes queued for the client after shutdownClientWrite")
            } else if clientReading {
                clientGot += machine.clientOut.bytes
                machine.clientOut.consume(machine.clientOut.count)
                step { $0.clientWrote(now: $1) }
                return
            } else {
                // Nothing taken; the machine only notes the time (no actions, no writing again).
                machine.clientWriteBlocked(now: now)
                log += machine.takeActions()
            }
        }
        if upstream == .attached && upstreamReading && !machine.upstreamOut.isEmpty {
            upstreamGot += machine.upstreamOut.bytes
            machine.upstreamOut.consume(machine.upstreamOut.count)
            step { $0.upstreamWrote(now: $1) }
        }
    }
}

// MARK: Verdicts and peers

let testUpstream = UpstreamTarget(url: "http://app.internal:8080")!

func forward(_ head: String = "GET / HTTP/1.1\r\nHost: app\r\n\r\n", chunked: Bool = false, retryable: Bool = false,
             sendContinue: Bool = false, tunnel: Double? = nil, rewrite: ResponseRewrite = ResponseRewrite()) -> ExchangeVerdict {
    .forward(ForwardPlan(upstream: testUpstream, head: Array(head.utf8), chunkedBody: chunked, retryable: retryable,
                         sendContinue: sendContinue, tunnelLifetime: tunnel, response: rewrite, label: "proxy"))
}

func deny(_ status: Int = 403, close: Bool = false) -> ExchangeVerdict {
    .answer(.deny(status: status, error: "denied", message: "no", explanation: "test"), label: "deny", closeConnection: close)
}

/// One response as the client reads it, split by hand: the head's lines, and the body by its Content-Length
/// (Gatehouse's own answers always have one) — independent of GatehouseHTTP1.
struct SeenResponse {
    var statusLine: String
    var fields: [String]
    var body: String

    var status: Int { Int(statusLine.split(separator: " ")[1]) ?? 0 }
    func has(_ line: String) -> Bool { fields.contains { $0.lowercased() == line.lowercased() } }
    func value(_ name: String) -> String? {
        fields.first { $0.lowercased().hasPrefix(name.lowercased() + ":") }.map { String($0.dropFirst(name.count + 1).drop { $0 == " " }) }
    }
}

/// Splits what the client got into responses (heads with a Content-Length body, or none for 1xx/204/304); the
/// rest, if any, is one last response whose body runs to the end.
func responses(_ text: String) -> [SeenResponse] {
    var rest = Substring(text)
    var out: [SeenResponse] = []
    while let end = rest.range(of: "\r\n\r\n") {
        let lines = rest[..<end.lowerBound].components(separatedBy: "\r\n")
        var response = SeenResponse(statusLine: lines[0], fields: Array(lines.dropFirst()), body: "")
        rest = rest[end.upperBound...]
        if let length = response.value("content-length").flatMap({ Int($0) }), response.status >= 200, response.status != 204, response.status != 304 {
            let take = min(length, rest.utf8.count)
            let cut = rest.utf8.index(rest.startIndex, offsetBy: take)
            response.body = String(rest[..<cut])
            rest = rest[cut...]
        } else if response.status >= 200, response.status != 204, response.status != 304, response.value("content-length") == nil {
            response.body = String(rest)
            rest = ""
        }
        out.append(response)
    }
    return out
}
