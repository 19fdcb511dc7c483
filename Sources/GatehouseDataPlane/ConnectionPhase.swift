import GatehouseCore
import GatehouseHTTP1

/// Where a connection is. Each case carries what only that phase needs.
enum Phase {
    /// Waiting for (the rest of) a request head.
    case awaitingHead(HeadWait)
    /// A head is parsed; its decision is awaited. Body bytes wait in `clientIn`.
    case deciding(Request)
    /// Allowed; an upstream connection is awaited.
    case connecting(Request, Forwarding, Connecting)
    /// The request goes to the upstream and its response comes back.
    case relaying(Request, Forwarding, Response)
    /// Answered (locally, or early by the upstream) while the request body is still coming: it is read and
    /// dropped within `discardBudget`.
    case draining(Request, since: UInt64)
    /// After a 101: bytes both ways until either side closes or the lifetime ends.
    case tunnel(until: UInt64)
    case closing(Closing)
    case closed
}

extension Phase {
    /// `connecting` becomes `relaying` with the same request and plan, in place: a transition made on the
    /// enum itself moves its payload, where one made from outside copied it out and released the old one.
    mutating func startRelaying(_ response: Response) {
        guard case .connecting(let request, let plan, _) = self else { return }
        self = .relaying(request, plan, response)
    }
}

struct HeadWait {
    var since: UInt64
    /// When the head's first byte arrived: from then on the header timeout runs, not the idle timeout.
    var firstByte: UInt64?
    /// A new connection (header timeout) rather than an idle keep-alive one (idle timeout).
    var fresh: Bool
}

struct Connecting {
    var since: UInt64
    /// This is the one retry on a fresh connection after a pooled one failed.
    var retry: Bool
}

enum Closing {
    /// Close (or shut our side and linger) once `clientOut` is written.
    case afterFlush(linger: Bool)
    /// Our side is shut; the client's bytes are read and dropped until it closes or the time is up.
    case lingering(until: UInt64)
}

/// One request, from its head to the end of its answer. A class, though it is state: the phase enum carries
/// it through every event, and as a struct each `case .relaying(var request, …)` and the assignment back
/// copied its ~300 bytes and retained every field in them (seen in perf). One connection owns it.
final class Request {
    var head: RequestHead
    /// Bytes of the head still at the front of `clientIn` (they stay until the decision has read them).
    var unconsumedHead: Int
    var body: BodyDecoder
    var bodyEnded: Bool
    var bodyBytes = 0
    var started: UInt64
    var lastBodyProgress: UInt64
    /// This exchange is the connection's last.
    var closeAfter: Bool
    var requestID: String?
    var status = 0
    var label = "proxy"
    var bodyBytesSent = 0
    var upstreamStarted: UInt64?
    var upstreamNanoseconds: UInt64?
    var upstreamError: String?
    /// Left to drop of the body after an answer.
    var discardLeft = 0
    var refusedBeforeDecision = false

    init(head: RequestHead, unconsumedHead: Int, body: BodyDecoder, bodyEnded: Bool, started: UInt64, lastBodyProgress: UInt64,
         closeAfter: Bool) {
        self.head = head
        self.unconsumedHead = unconsumedHead
        self.body = body
        self.bodyEnded = bodyEnded
        self.started = started
        self.lastBodyProgress = lastBodyProgress
        self.closeAfter = closeAfter
    }

    /// The next request in an object the last one left (`ExchangeObjects`): every field as `init` sets it.
    func restart(head: RequestHead, unconsumedHead: Int, body: BodyDecoder, bodyEnded: Bool, started: UInt64, lastBodyProgress: UInt64,
                 closeAfter: Bool) {
        self.head = head
        self.unconsumedHead = unconsumedHead
        self.body = body
        self.bodyEnded = bodyEnded
        self.bodyBytes = 0
        self.started = started
        self.lastBodyProgress = lastBodyProgress
        self.closeAfter = closeAfter
        self.requestID = nil
        self.status = 0
        self.label = "proxy"
        self.bodyBytesSent = 0
        self.upstreamStarted = nil
        self.upstreamNanoseconds = nil
        self.upstreamError = nil
        self.discardLeft = 0
        self.refusedBeforeDecision = false
    }

    var isHeadMethod: Bool { head.knownMethod == .head }

    /// All of a Content-Length body is read: its end is due without another byte (the decoder says `.end` on
    /// empty input), so a body whose last byte ends a read is not left waiting for the next read.
    var bodyComplete: Bool {
        if case .fixed(remaining: 0) = body { return true }
        return false
    }

    var record: ExchangeRecord {
        ExchangeRecord(status: status, label: label, bodyBytesSent: bodyBytesSent, upstreamNanoseconds: upstreamNanoseconds,
                       upstreamError: upstreamError, refusedBeforeDecision: refusedBeforeDecision)
    }

    /// Does the unread rest of the body fit the discard budget? A chunked body's end is unknown.
    var restFits: Bool {
        switch head.body {
        case .none: return true
        case .contentLength(let n): return n - bodyBytes <= discardLeft
        case .chunked: return false
        }
    }
}

/// The verdict's plan for a forwarded request, held by reference for the reason `Request` is a class: as a
/// struct in the phase, each `case .relaying(let request, let plan, let response)` copied its eight counted
/// fields (retained and released; seen in perf under relayResponse and upstreamAttached).
final class Forwarding {
    /// nil only while the object waits in `ExchangeObjects` for the next exchange.
    private var kept: ForwardPlan?
    init(_ plan: consuming ForwardPlan) { self.kept = plan }

    /// The next request's plan in an object the last one left (`ExchangeObjects`).
    func restart(_ plan: consuming ForwardPlan) { kept = plan }

    /// Kept for the next exchange: the plan (its head, its fields) is let go now, not held by an idle connection.
    func clear() { kept = nil }

    var plan: ForwardPlan { kept! }
    var upstream: UpstreamTarget { kept!.upstream }
    var head: RenderedHead { kept!.head }
    var chunkedBody: Bool { kept!.chunkedBody }
    var retryable: Bool { kept!.retryable }
    var tunnelLifetime: Double? { kept!.tunnelLifetime }
    var webSocketAccept: [UInt8]? { kept!.webSocketAccept }
    var response: ResponseRewrite { kept!.response }
}

/// The upstream's side of a relayed exchange.
/// A class for the reason `Request` is one. Its head parser is the machine's (`responseParser`), reset for each
/// response: one per response allocated its field array and freed it again.
final class Response {
    var stage: Stage
    /// The connection came from the pool (it may have been closed by the upstream meanwhile).
    var reused: Bool
    var retried: Bool
    var requestEndedAt: UInt64?
    var lastProgress: UInt64
    var keepAlive = true

    init(reused: Bool, retried: Bool, requestEndedAt: UInt64?, lastProgress: UInt64) {
        self.stage = .head
        self.reused = reused
        self.retried = retried
        self.requestEndedAt = requestEndedAt
        self.lastProgress = lastProgress
    }

    /// The next response in an object the last one left (`ExchangeObjects`): every field as `init` sets it.
    func restart(reused: Bool, retried: Bool, requestEndedAt: UInt64?, lastProgress: UInt64) {
        self.stage = .head
        self.reused = reused
        self.retried = retried
        self.requestEndedAt = requestEndedAt
        self.lastProgress = lastProgress
        self.keepAlive = true
    }

    enum Stage {
        /// Reading the head (with the machine's `responseParser`).
        case head
        /// `copyFraming`: the body is copied with its chunked framing; otherwise only its data is.
        case body(BodyDecoder, copyFraming: Bool)
    }

    var headStarted: Bool {
        if case .body = stage { return true }
        return false
    }
}

/// The objects of a finished exchange, kept to carry the connection's next one: a keep-alive connection
/// allocated and freed a `Request`, a `Forwarding` and a `Response` per request (seen in perf as malloc, free
/// and a deinit per response). One is reused only when nothing else still refers to it (a binding of the
/// last exchange further up the stack), so a reused object can never be seen by code about the old one.
struct ExchangeObjects {
    var request: Request?
    var forwarding: Forwarding?
    var response: Response?

    mutating func takeRequest() -> Request? {
        guard var r = request.take(), isKnownUniquelyReferenced(&r) else { return nil }
        return r
    }

    mutating func takeForwarding() -> Forwarding? {
        guard var f = forwarding.take(), isKnownUniquelyReferenced(&f) else { return nil }
        return f
    }

    mutating func takeResponse() -> Response? {
        guard var r = response.take(), isKnownUniquelyReferenced(&r) else { return nil }
        return r
    }
}
