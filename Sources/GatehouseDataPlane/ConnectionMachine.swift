import GatehouseCore
import GatehouseHTTP1

/// What the loop driving a connection must do after an event. Only the loop touches sockets; the machine
/// never does.
public enum ConnectionAction: Sendable, Equatable {
    /// Decide the head in `headToDecide` (its bytes are the first `head.length` of `clientIn`), then call
    /// `decided`. The head stays in the machine: carried in the action it was copied into the action list and
    /// out again (its field lists retained and released, the action enum twice the size; callgrind).
    case decide
    /// Get a connection to this upstream (a pooled one unless `fresh`), then call `upstreamAttached` or
    /// `upstreamUnavailable`.
    case acquireUpstream(UpstreamTarget, fresh: Bool)
    /// The exchange is over and the upstream connection can carry another request: back to the pool.
    case releaseUpstream
    /// Drop the upstream connection (or the attempt to get one); write what `upstreamOut` still holds first
    /// if it can be done without waiting.
    case closeUpstream
    /// An upstream failure to count (`gatehouse_upstream_errors_total{kind}`).
    case upstreamError(String)
    case finished(ExchangeRecord)
    /// Everything for the client is written: shut our sending side (the client's bytes are still read).
    case shutdownClientWrite
    case closeClient
}

/// The sans-IO state machine of one client connection of the data plane (issue 11): HTTP/1.1 requests parsed
/// from `clientIn`, decided by the caller, answered locally or relayed to one upstream connection at a time,
/// responses relayed back into `clientOut`, keep-alive, pipelining (responses leave in order because they are
/// written to one queue in order), upgrades to a tunnel, and a deadline for every phase. Each event method
/// takes the time (`now`, monotonic ns) and appends actions; it never blocks and never fails.
public struct ConnectionMachine {
    /// Bytes read from the client, not yet parsed or relayed. The loop fills it, then calls `clientReceived`.
    public var clientIn = ByteQueue()
    /// Bytes for the client. The loop writes from it, consumes what was written, then calls `clientWrote`.
    public var clientOut = ByteQueue()
    public var upstreamIn = ByteQueue()
    public var upstreamOut = ByteQueue()
    /// The limits for the next request (the loop sets it from the current config snapshot).
    public var settings: ConnectionSettings
    public internal(set) var actions: [ConnectionAction] = []

    var phase: Phase
    var parser: RequestHeadParser
    /// The upstream's response heads, one after the other (reset per response, so its field storage stays).
    var responseParser: ResponseHeadParser
    /// The last exchange's objects, for the next one.
    var spare = ExchangeObjects()
    var clientEnded = false
    var quiescing = false
    /// When the client's socket stopped taking bytes (reset by each write that empties `clientOut`).
    var sendStalledSince: UInt64?
    /// The loop's transport still holds bytes taken from `clientOut` (TLS ciphertext the socket did not take
    /// yet): the client's output is not all written, so a close must wait (else the answer's tail is lost).
    public var transportHoldsOutput = false
    var outputPending: Bool { !clientOut.isEmpty || transportHoldsOutput }

    /// Bytes queued for one side before the other side is no longer read (backpressure both ways).
    static let highWater = 256 * 1024
    /// Bytes of request body held while a decision or an upstream connection is awaited.
    static let holdLimit = 64 * 1024

    public init(settings: ConnectionSettings, now: UInt64) {
        self.settings = settings
        self.parser = RequestHeadParser(limits: settings.http1Limits)
        self.responseParser = ResponseHeadParser(limits: settings.http1Limits)
        self.phase = .awaitingHead(HeadWait(since: now, firstByte: nil, fresh: true))
        actions.reserveCapacity(4)
    }

    /// Hands the pending actions to the loop (and forgets them).
    public mutating func takeActions() -> [ConnectionAction] {
        guard !actions.isEmpty else { return [] }
        var taken: [ConnectionAction] = []
        taken.reserveCapacity(4)
        swap(&taken, &actions)
        return taken
    }

    /// Hands the pending actions to the loop in `batch`, whose old contents are dropped and whose storage the
    /// machine keeps for the next ones: the loop's two arrays trade places, so no event allocates one (a fresh
    /// array per event cost a malloc and a free).
    public mutating func takeActions(into batch: inout [ConnectionAction]) {
        // (Most calls find nothing to do: removeAll goes through replaceSubrange even on an empty array.)
        if !batch.isEmpty { batch.removeAll(keepingCapacity: true) }
        guard !actions.isEmpty else { return }
        swap(&batch, &actions)
    }

    /// Between requests with nothing queued: its buffers can go back to the loop.
    public var isIdle: Bool {
        guard case .awaitingHead = phase else { return false }
        return clientIn.isEmpty && clientOut.isEmpty
    }

    public var isClosed: Bool {
        if case .closed = phase { return true }
        return false
    }

    // MARK: Client events

    public mutating func clientReceived(now: UInt64) {
        advance(now)
    }

    /// The client closed its sending side (a read of 0). What it sent before still counts: a request that is
    /// complete is answered (half-close), one that is not ends the connection.
    public mutating func clientEndedInput(now: UInt64) {
        clientEnded = true
        advance(now)
        switch phase {
        case .awaitingHead:
            // Answers may still be queued (read together with this end, not yet written): they go out first.
            startClosing(linger: false, now)
        case .deciding(let request), .connecting(let request, _, _), .relaying(let request, _, _):
            // The body may be complete in clientIn, held back by the decision or the upstream: still answered.
            guard !request.bodyEnded, !restOfBodyIsRead(request) else { return }
            // Left mid-request: whatever the upstream holds of it can never be completed.
            abandon(request, status: 499, now)
        case .draining(let request, _):
            guard !request.bodyEnded, !restOfBodyIsRead(request) else { return }
            // Answered already, in full: only the rest of the body is abandoned. The answer may not be written
            // yet (the loop writes at the end of its pass), so it goes out before the close.
            request.status = 499
            actions.append(.finished(request.record))
            startClosing(linger: false, now)
        case .tunnel:
            close(now)
        case .closing(.lingering):
            close(now)
        case .closing(.afterFlush), .closed:
            break
        }
    }

    /// The client's connection failed (a reset, an error): nothing more can be sent to it.
    public mutating func clientFailed(now: UInt64) {
        clientEnded = true
        clientOut.removeAll()
        switch phase {
        case .deciding(let request), .connecting(let request, _, _), .relaying(let request, _, _), .draining(let request, _):
            abandon(request, status: 499, now)
        default:
            close(now)
        }
    }

    /// Some of `clientOut` was written (and consumed by the loop).
    public mutating func clientWrote(now: UInt64) {
        // Progress: if the socket is full again, the client has `send_timeout` from now to take more.
        sendStalledSince = outputPending ? now : nil
        if case .awaitingHead(var wait) = phase, !wait.fresh, wait.firstByte == nil, clientOut.isEmpty {
            // The last answer is out: the keep-alive idle time starts now.
            wait.since = now
            phase = .awaitingHead(wait)
        }
        if case .closing(.afterFlush(let linger)) = phase, !outputPending {
            finishClosing(linger: linger, now)
            return
        }
        relayResponse(now)
        advance(now)
    }

    /// A write to the client took nothing (its socket is full): the send deadline runs from the first time.
    public mutating func clientWriteBlocked(now: UInt64) {
        if sendStalledSince == nil { sendStalledSince = now }
    }

    /// Some of `upstreamOut` was written: more of the request body may be relayed.
    public mutating func upstreamWrote(now: UInt64) {
        Self.bodyProgressed(phase, now: now)
        advance(now)
    }

    /// While the upstream held the body up, the client could not send: its body timeout starts again from
    /// here, else a pause of ours longer than it would end the request with a 408 at once. And the upstream is
    /// alive (it took bytes): its own deadline for taking the body restarts. Only the exchange's objects
    /// change, so the phase is borrowed (bound from `self.phase`, its objects were retained and released on
    /// every write; uprobes).
    private static func bodyProgressed(_ phase: borrowing Phase, now: UInt64) {
        switch phase {
        case .relaying(let request, _, let response) where !request.bodyEnded:
            request.lastBodyProgress = now
            response.lastProgress = now
        default:
            break
        }
    }

    /// Graceful stop: an idle connection closes now, a busy one after its response.
    public mutating func quiesce(now: UInt64) {
        quiescing = true
        // Idle: nothing is being read, but an answer may still be queued, so flush first.
        if case .awaitingHead = phase, clientIn.isEmpty { startClosing(linger: false, now) }
    }

    // MARK: What the loop should read

    /// Read the client's socket now (false: backpressure or nothing more to read).
    public var wantsClientRead: Bool {
        switch phase {
        case .awaitingHead: return clientIn.count < settings.limits.maxHeadSize + 4096
        case .deciding, .connecting: return clientIn.count < Self.holdLimit
        case .relaying(let request, _, _):
            return request.bodyEnded ? clientIn.count < Self.holdLimit : upstreamOut.count < Self.highWater && clientIn.count < Self.holdLimit
        case .draining, .closing(.lingering): return true
        case .tunnel: return upstreamOut.count < Self.highWater
        case .closing(.afterFlush), .closed: return false
        }
    }

    /// `wantsClientRead` and `deadline` for a loop that keeps the machine in a class: read through `inout`, as
    /// the getters called there copied the whole machine first (perf: ~1% of the CPU per request).
    public mutating func readsClientNow() -> Bool { wantsClientRead }
    public mutating func nextDeadline() -> UInt64? { deadline }

    /// Read the upstream's socket now.
    public var wantsUpstreamRead: Bool {
        switch phase {
        case .relaying: return clientOut.count < Self.highWater
        case .tunnel: return clientOut.count < Self.highWater
        default: return false
        }
    }

    /// Whether an upstream connection belongs to this connection right now.
    public var hasUpstream: Bool {
        switch phase {
        case .relaying, .tunnel: return true
        default: return false
        }
    }

    // MARK: Closing

    mutating func close(_ now: UInt64) {
        if case .closed = phase { return }
        if hasUpstream { actions.append(.closeUpstream) }
        if case .connecting = phase { actions.append(.closeUpstream) }
        closeClientNow()
    }

    /// Ends the client's connection at once. What is still queued for it is dropped: the loop closes without
    /// writing, so a complete answer must go through `startClosing` instead.
    mutating func closeClientNow() {
        phase = .closed
        clientIn.removeAll()
        clientOut.removeAll()
        actions.append(.closeClient)
    }

    /// Once everything queued for the client is written: close, or shut our side and read until the client
    /// closes too (`linger`, RFC 9112 §9.6: closing with unread bytes makes the kernel send a reset, which
    /// can destroy the response before the client reads it).
    mutating func startClosing(linger: Bool, _ now: UInt64) {
        phase = .closing(.afterFlush(linger: linger && !clientEnded))
        clientIn.removeAll()
        if !outputPending { finishClosing(linger: linger && !clientEnded, now) }
    }

    mutating func finishClosing(linger: Bool, _ now: UInt64) {
        // The client may have ended its side while the flush waited: then there is nothing to linger for.
        if linger && !clientEnded {
            phase = .closing(.lingering(until: now + nanoseconds(settings.lingerSeconds)))
            actions.append(.shutdownClientWrite)
        } else {
            phase = .closed
            actions.append(.closeClient)
        }
    }
}

extension ConnectionSettings {
    var http1Limits: HTTP1Limits {
        HTTP1Limits(maxHeadSize: limits.maxHeadSize, maxFieldCount: limits.maxFieldCount)
    }
}

@inline(__always) func nanoseconds(_ seconds: Double) -> UInt64 {
    seconds <= 0 ? 0 : seconds >= 1e9 ? UInt64(1e18) : UInt64(seconds * 1e9)
}
