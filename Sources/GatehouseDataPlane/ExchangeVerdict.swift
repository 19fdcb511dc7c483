import GatehouseCore

/// What the decision layer tells a connection to do with one request: the only input from policy the
/// connection machine acts on. Everything policy decides (routes, tokens, forward-auth answers, the
/// cross-site WebSocket check, `Expect`, the retry choice) is already folded into it.
public enum ExchangeVerdict: Sendable {
    /// Answer here. `closeConnection`: the head was refused before routing, so nothing after it is read.
    case answer(Decision, label: String, closeConnection: Bool)
    case forward(ForwardPlan)
}

/// A request to relay to an upstream.
public struct ForwardPlan: Sendable {
    public var upstream: UpstreamTarget
    /// The request head to send, rendered once (request line, fields, blank line).
    public var head: RenderedHead
    /// The request body is re-framed as chunked (the client's was chunked).
    public var chunkedBody: Bool
    /// A bodiless idempotent request: after a pooled connection fails before answering, send it once more on
    /// a fresh connection (nothing of it can have been processed twice).
    public var retryable: Bool
    /// Tell the client `100 Continue` now: it waits for a go-ahead before sending its body.
    public var sendContinue: Bool
    /// A WebSocket upgrade: after the upstream's 101 the connection becomes a tunnel for at most this long.
    public var tunnelLifetime: Double?
    /// The `Sec-WebSocket-Accept` the upstream's 101 must carry (RFC 6455 §4.2.2): proof it really switched to
    /// WebSocket, so a 101 from an endpoint that did not (a steerable status, a buggy handler) opens no tunnel
    /// that would carry raw HTTP past routing and authentication. nil: not checked.
    public var webSocketAccept: [UInt8]?
    /// What changes in the upstream's response head on the way back.
    public var response: ResponseRewrite
    public var label: String
    /// For Gatehouse's own answers to this request (502, 504, 408...).
    public var requestID: String?

    // The memberwise initializer is the compiler's (see `Decision`: a hand-written one assigned each optional
    // field over its implicit nil and copied the plan out); the public ones are in the extension below.
}

extension ForwardPlan {
    public init(upstream: UpstreamTarget, head: RenderedHead, chunkedBody: Bool, retryable: Bool, sendContinue: Bool,
                tunnelLifetime: Double?, response: ResponseRewrite, label: String = "proxy", requestID: String? = nil,
                webSocketAccept: [UInt8]? = nil) {
        self.init(upstream: upstream, head: head, chunkedBody: chunkedBody, retryable: retryable, sendContinue: sendContinue,
                  tunnelLifetime: tunnelLifetime, webSocketAccept: webSocketAccept, response: response, label: label, requestID: requestID)
    }

    /// A plan whose head is a copy of `head` (tests, the micro-benchmarks).
    public init(upstream: UpstreamTarget, head: [UInt8], chunkedBody: Bool, retryable: Bool, sendContinue: Bool,
                tunnelLifetime: Double?, response: ResponseRewrite, label: String = "proxy", requestID: String? = nil,
                webSocketAccept: [UInt8]? = nil) {
        self.init(upstream: upstream, head: RenderedHead(head), chunkedBody: chunkedBody, retryable: retryable, sendContinue: sendContinue,
                  tunnelLifetime: tunnelLifetime, webSocketAccept: webSocketAccept, response: response, label: label, requestID: requestID)
    }
}

/// The decision's own response fields (handshake cookies) and the Frontend API proxy's `Location` rewrite.
public struct ResponseRewrite: Sendable {
    /// Field lines added to the response, rendered (`Name: value\r\n` each).
    public var extraFields: [UInt8]
    /// A `Location` equal to `from` or under `from/` is rewritten to start with `to` instead.
    public var location: (from: [UInt8], to: [UInt8])?

    public init(extraFields: [UInt8] = [], location: (from: [UInt8], to: [UInt8])? = nil) {
        self.extraFields = extraFields
        self.location = location
    }
}

/// The limits and deadlines one connection works with, taken from the config snapshot current when its
/// request arrived (a reload applies to the next request).
public struct ConnectionSettings: Sendable, Equatable {
    public var headerTimeout: Double = 10
    public var idleTimeout: Double = 60
    public var bodyTimeout: Double = 30
    public var sendTimeout: Double = 60
    public var connectTimeout: Double = 5
    public var responseTimeout: Double = 60
    public var readTimeout: Double = 60
    /// 0: no limit.
    public var maxBodyBytes: Int = 0
    public var limits = HTTP1LimitsSettings()
    /// Request body bytes read and dropped after a local answer before the connection is given up instead.
    public var discardBudget = 64 * 1024
    /// After the last response with `Connection: close`, what the client still sends is read and dropped for
    /// this long (RFC 9112 §9.6), so it reads the answer instead of a reset.
    public var lingerSeconds: Double = 2

    public init() {}
}

/// The parser limits that come from the config (`server.max_header_bytes`, `server.max_header_count`).
public struct HTTP1LimitsSettings: Sendable, Equatable {
    public var maxHeadSize = 16 * 1024
    public var maxFieldCount = 100
    public init() {}
}

/// How an upstream connection could not be had.
public enum UpstreamUnavailable: Sendable, Equatable {
    case refused
    case timedOut
    /// The TLS handshake failed (an untrusted certificate, a name mismatch): said as such to operators.
    case tls(String)
}

/// One exchange as it ended, for the access log and metrics.
public struct ExchangeRecord: Sendable, Equatable {
    public var status: Int
    public var label: String
    public var bodyBytesSent: Int
    public var upstreamNanoseconds: UInt64?
    /// The metric that says why an upstream exchange failed (`connect_failed`, `timeout`, ...), if it did.
    public var upstreamError: String?
    /// Refused before the decision (unparseable, limits): no evaluation belongs to it.
    public var refusedBeforeDecision: Bool

    public init(status: Int, label: String, bodyBytesSent: Int, upstreamNanoseconds: UInt64?, upstreamError: String?,
                refusedBeforeDecision: Bool) {
        self.status = status
        self.label = label
        self.bodyBytesSent = bodyBytesSent
        self.upstreamNanoseconds = upstreamNanoseconds
        self.upstreamError = upstreamError
        self.refusedBeforeDecision = refusedBeforeDecision
    }
}
