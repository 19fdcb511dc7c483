import Foundation
import GatehouseAuth
import GatehouseConfig
import GatehouseCore
import GatehouseEngine
import NIOCore
import NIOHTTP1
import NIOSSL

/// Everything the handlers of one listener share.
final class ServerContext: Sendable {
    let state: GatewayState
    let pools: UpstreamPools
    let accessLog: AccessLog
    init(state: GatewayState, pools: UpstreamPools, accessLog: AccessLog) {
        self.state = state
        self.pools = pools
        self.accessLog = accessLog
    }
}

/// One request from head to the end of its response.
final class Exchange {
    let head: HTTPRequestHead
    let requestID: String
    /// The peer is in `trusted_proxies` (decided once per request).
    let trustedPeer: Bool
    let started: UInt64
    var snapshot: GatewaySnapshot
    var evaluation: Evaluation?
    /// Body parts read while the decision was being made (bounded: reads stop while deciding).
    var buffered: [HTTPServerRequestPart] = []
    var requestEnded = false
    var requestBodyBytes = 0
    var responseStarted = false
    var bytesSent = 0
    var status = 0
    var decisionLabel = "proxy"
    var upstream: UpstreamConnection?
    var upstreamStarted: UInt64?
    var upstreamMilliseconds: Double?
    /// A local response was sent before the request body ended: discard up to this many more body bytes.
    var discardBudget = 0
    var closeAfterResponse = false
    /// A forward-auth question, and how the asking proxy wants it answered.
    var forwardAuth: ForwardAuth.Dialect?
    /// Decided to proxy, waiting for an upstream connection: body parts are buffered meanwhile.
    var awaitingUpstream = false
    /// A WebSocket upgrade was asked for (and allowed so far).
    var upgrade = false
    /// What was sent upstream, kept for one retry on a fresh connection (see `upstreamFailed`).
    var upstreamHead: UpstreamRequest.Head?
    var upstreamTarget: UpstreamTarget?
    var retried = false
    /// Set once the response's end has been written.
    var responseDone = false
    /// The decision's own response headers (handshake cookies), added to the upstream's response.
    var extraResponseHeaders = HeaderList()
    /// Frontend API proxy: its `Location`s are rewritten to go back through the proxy.
    var locationRewrite: UpstreamOverride?

    init(head: HTTPRequestHead, requestID: String, trustedPeer: Bool, snapshot: GatewaySnapshot) {
        self.head = head
        self.requestID = requestID
        self.trustedPeer = trustedPeer
        self.snapshot = snapshot
        self.started = DispatchTime.now().uptimeNanoseconds
    }
}

/// The per-connection state machine of the public listener: decide each request with the engine, then
/// answer it locally or relay it to the upstream with backpressure both ways.
final class ClientHandler: ChannelDuplexHandler, RemovableChannelHandler, UpstreamDelegate {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let server: ServerContext
    private var context: ChannelHandlerContext?
    private var exchange: Exchange?
    /// Parts of pipelined requests that arrived while the previous response was still going out, replayed in
    /// order once it is complete. (NIO's HTTPServerPipelineHandler did this, but it also stopped reading during
    /// every response, which cost two `epoll_ctl` calls per request; here reading stops only when a client
    /// actually pipelines.)
    private var pipelined: [HTTPServerRequestPart] = []
    /// A parse error in a pipelined request, answered after the response in flight.
    private var pipelinedParserError: HTTPParserError?
    private var pendingRead = false
    private var readsPaused = false
    /// Closes an idle connection (header timeout, then keep-alive idle timeout).
    private var headTimer: LazyTimer?
    /// 504 when the upstream's response head does not arrive in time.
    private var responseTimer: LazyTimer?
    /// Runs while a proxied request body is being read: the client must keep sending.
    private var bodyTimer: LazyTimer?
    /// Runs while a response is relayed and the upstream is read: it must keep sending (`proxy.read_timeout`).
    private var readTimer: LazyTimer?
    /// Runs while the client's socket is full: it must keep reading (`server.send_timeout`).
    private var sendTimer: LazyTimer?
    /// Request ids: a random 64-bit prefix per connection and a counter (no syscall per request).
    private let idPrefix = UInt64.random(in: 0...UInt64.max)
    private var idCounter: UInt64 = 0
    private var peer = "unknown"
    private var closed = false
    /// The last response is out and our side is shut for writing; what the client still sends is read and
    /// dropped until it closes or `lingerSeconds` pass (RFC 9112 §9.6: closing with unread bytes makes the
    /// kernel send a reset, which can destroy the response before the client reads it).
    private var lingering = false
    static let lingerSeconds = 2.0

    init(server: ServerContext) {
        self.server = server
    }

    // MARK: Connection lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        headTimer = LazyTimer(eventLoop: context.eventLoop) { [weak self] in
            // Idle, or answered locally while the rest of the request body never came: close.
            guard let self, self.exchange == nil || self.exchange?.responseDone == true else { return }
            self.context?.close(promise: nil)
        }
        responseTimer = LazyTimer(eventLoop: context.eventLoop) { [weak self] in
            guard let self, let exchange = self.exchange, exchange.upstream != nil, !exchange.responseStarted else { return }
            self.server.state.metrics.recordUpstreamError("timeout")
            self.abandonUpstream(exchange)
            self.respondLocally(exchange, decision: .deny(status: 504, error: "upstream_timeout",
                message: "The upstream did not answer in time.", explanation: "no response head within proxy.response_timeout"), label: "upstream_timeout")
        }
        readTimer = LazyTimer(eventLoop: context.eventLoop) { [weak self] in
            // The upstream stalled mid-response: the response cannot be finished, so both connections go.
            guard let self, let exchange = self.exchange, exchange.upstream != nil, exchange.responseStarted, !exchange.responseDone else { return }
            self.server.state.metrics.recordUpstreamError("read_timeout")
            self.abandonUpstream(exchange)
            self.context?.close(promise: nil)
        }
        sendTimer = LazyTimer(eventLoop: context.eventLoop) { [weak self] in
            // The client stopped reading: what is queued for it (and the upstream behind it) is let go.
            guard let self, let context = self.context, !context.channel.isWritable else { return }
            context.close(promise: nil)
        }
        bodyTimer = LazyTimer(eventLoop: context.eventLoop) { [weak self] in
            guard let self, let exchange = self.exchange, exchange.upstream != nil, !exchange.requestEnded, !self.readsPaused else { return }
            // The body stopped coming: free the upstream connection and end this one.
            self.abandonUpstream(exchange)
            exchange.closeAfterResponse = true
            if exchange.responseStarted {
                self.context?.close(promise: nil)
            } else {
                self.respondLocally(exchange, decision: .deny(status: 408, error: "request_timeout",
                    message: "The request body stopped arriving.", explanation: "no request body data within server.body_timeout"), label: "reject")
            }
        }
        if let ip = context.channel.remoteAddress?.ipAddress { peer = ip }
        if context.channel.isActive { armHeadTimer(seconds: server.state.snapshot.settings.server.headerTimeout) }
    }

    func channelActive(context: ChannelHandlerContext) {
        if let ip = context.channel.remoteAddress?.ipAddress { peer = ip }
        armHeadTimer(seconds: server.state.snapshot.settings.server.headerTimeout)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        headTimer?.cancel()
        responseTimer?.cancel()
        bodyTimer?.cancel()
        readTimer?.cancel()
        sendTimer?.cancel()
        if let exchange {
            exchange.upstream?.close()
            exchange.upstream = nil
            if exchange.status == 0 { exchange.status = 499 }
            finishLog(exchange)
            self.exchange = nil
        }
        context.fireChannelInactive()
    }

    private func armBodyTimer() {
        guard let exchange, exchange.upstream != nil, !exchange.requestEnded, !readsPaused, !closed else { return }
        bodyTimer?.set(in: exchange.snapshot.settings.server.bodyTimeout)
    }

    /// Waits for the next request head: the header timeout on a new connection, the idle timeout between
    /// keep-alive requests. Either way the connection is closed when it fires.
    private func armHeadTimer(seconds: Double) {
        guard let context, context.channel.isActive, !closed else { return }
        headTimer?.set(in: seconds)
    }

    // MARK: Backpressure on the client side

    func read(context: ChannelHandlerContext) {
        if readsPaused {
            pendingRead = true
        } else {
            context.read()
        }
    }

    private func pauseReads() {
        readsPaused = true
        bodyTimer?.cancel()  // a pause of ours is not the client's delay
    }

    private func resumeReads() {
        readsPaused = false
        armBodyTimer()
        if pendingRead, let context {
            pendingRead = false
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // The client is slow: stop reading the upstream until its socket drains, and give it
        // `server.send_timeout` to do so. The upstream's read deadline waits meanwhile.
        let writable = context.channel.isWritable
        if writable { sendTimer?.cancel() } else { sendTimer?.set(in: server.state.snapshot.settings.server.sendTimeout) }
        if let exchange, let upstream = exchange.upstream {
            upstream.pauseReading(!writable)
            if !writable { readTimer?.cancel() } else if exchange.responseStarted { armReadTimer(exchange) }
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: Requests

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        dispatch(unwrapInboundIn(data), context: context)
    }

    private func dispatch(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        if lingering { return }
        if let exchange, exchange.requestEnded {
            // The next request, while this one's response is still going out: hold it, and read no further.
            pipelined.append(part)
            pauseReads()
            return
        }
        switch part {
        case .head(let head):
            headTimer?.cancel()
            receivedHead(head, context: context)
        case .body(let buffer):
            guard let exchange else { return }
            exchange.requestBodyBytes += buffer.readableBytes
            let limit = exchange.snapshot.settings.server.maxBodyBytes
            if limit > 0, exchange.requestBodyBytes > limit, exchange.upstream != nil || exchange.evaluation == nil {
                bodyTooLarge(exchange)
                return
            }
            forwardBody(part, exchange: exchange)
            armBodyTimer()
        case .end:
            guard let exchange else { return }
            exchange.requestEnded = true
            bodyTimer?.cancel()
            forwardBody(part, exchange: exchange)
        }
    }

    private func forwardBody(_ part: HTTPServerRequestPart, exchange: Exchange) {
        if let upstream = exchange.upstream {
            switch part {
            case .body(let buffer):
                upstream.channel.write(HTTPClientRequestPart.body(.byteBuffer(buffer)), promise: nil)
                if !upstream.channel.isWritable { pauseReads() }
            case .end:
                upstream.channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
                armResponseTimer(exchange)
            case .head:
                break
            }
        } else if exchange.evaluation == nil || exchange.awaitingUpstream {
            exchange.buffered.append(part)
        } else {
            // A local response is under way: discard the rest of the body, within a budget.
            if case .body(let buffer) = part {
                exchange.discardBudget -= buffer.readableBytes
                if exchange.discardBudget < 0 { exchange.closeAfterResponse = true }
            }
            if case .end = part, exchange.responseDone { completeExchange(exchange) }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        exchange?.upstream?.channel.flush()
        context.fireChannelReadComplete()
    }

    private func receivedHead(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let snapshot = server.state.snapshot
        let trusted = snapshot.isTrusted(peer: peer)
        let headers = HeaderList(head.headers)
        let requestID = (trusted ? UpstreamRequest.trustedRequestID(headers) : nil) ?? nextRequestID()
        let exchange = Exchange(head: head, requestID: requestID, trustedPeer: trusted, snapshot: snapshot)
        self.exchange = exchange
        // `Connection: close` from the client, or HTTP/1.0 without keep-alive: this is the last exchange.
        if !head.isKeepAlive { exchange.closeAfterResponse = true }
        // An upgrade Gatehouse does not carry out (h2c, anything but WebSocket): NIO's parser stops reading at
        // it, so this request is answered as HTTP/1.1 and is the connection's last (it used to hang there).
        if !head.headers[canonicalForm: "upgrade"].isEmpty && !WebSocketUpgrade.isRequested(head) { exchange.closeAfterResponse = true }

        if let framingError = ClientHandler.framingProblem(head) {
            exchange.closeAfterResponse = true
            respondLocally(exchange, decision: .reject(RequestRejection(framingError)), label: "reject")
            return
        }
        if let length = head.headers.first(name: "content-length").flatMap(Int.init), snapshot.settings.server.maxBodyBytes > 0,
            length > snapshot.settings.server.maxBodyBytes
        {
            exchange.closeAfterResponse = true
            respondLocally(exchange, decision: ClientHandler.payloadTooLarge, label: "reject")
            return
        }

        var raw = RawRequest(method: head.method.rawValue, target: head.uri, headers: headers, scheme: "http", fromTrustedProxy: trusted, peer: peer,
                             trustedProxies: snapshot.settings.trustedProxies)
        if let path = snapshot.settings.forwardAuthPath,
            let requested = ClientHandler.reservedForwardAuthPath(head.uri, configured: path, options: snapshot.settings.canonicalization)
        {
            guard let strict = requested.strict, let dialect = ForwardAuth.dialect(path: strict, configured: path, headers: headers) else {
                respondLocally(exchange, decision: ForwardAuth.notAnEndpoint(configured: path), label: "deny")
                return
            }
            exchange.forwardAuth = dialect
            guard trusted, let original = ForwardAuth.originalRequest(headers, dialect: dialect) else {
                respondLocally(exchange, decision: ForwardAuth.withoutOriginalRequest(trusted: trusted, dialect: dialect), label: "deny")
                return
            }
            raw = RawRequest(method: original.method, target: original.uri, headers: headers, scheme: raw.scheme, fromTrustedProxy: true, peer: peer,
                             trustedProxies: snapshot.settings.trustedProxies)
        }

        let now = Date().timeIntervalSince1970
        let gatekeeper = snapshot.gatekeeper
        // The common case decides right here on the event loop; only a JWKS re-fetch needs a task.
        if let evaluation = gatekeeper.evaluateWithoutFetching(raw, now: now) {
            decided(exchange, evaluation)
            return
        }
        pauseReads()
        let promise = context.eventLoop.makePromise(of: Evaluation.self)
        promise.completeWithTask { await gatekeeper.evaluate(raw, now: now) }
        promise.futureResult.assumeIsolated().whenSuccess { [weak self] evaluation in
            guard let self, !self.closed, self.exchange === exchange else { return }
            self.decided(exchange, evaluation)
        }
    }

    private func nextRequestID() -> String {
        idCounter &+= 1
        return RequestID.hex(idPrefix, idCounter)
    }

    /// Conflicting or ambiguous framing: never guess where a request ends (request smuggling).
    static func framingProblem(_ head: HTTPRequestHead) -> String? {
        let lengths = head.headers[canonicalForm: "content-length"]
        let encodings = head.headers[canonicalForm: "transfer-encoding"]
        if lengths.count > 1 { return "more than one Content-Length" }
        if let length = lengths.first, !(length.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } && !length.isEmpty) {
            return "invalid Content-Length"
        }
        if !encodings.isEmpty {
            if !lengths.isEmpty { return "both Content-Length and Transfer-Encoding" }
            if encodings.count != 1 || encodings[0].lowercased() != "chunked" { return "unsupported Transfer-Encoding" }
        }
        if head.version.major != 1 { return "unsupported HTTP version" }
        // RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without Host.
        if head.version == .http1_1 && head.headers[canonicalForm: "host"].isEmpty { return "HTTP/1.1 request without a Host header" }
        for (name, _) in head.headers where name.utf8.contains(UInt8(ascii: "_")) {
            // `Transfer_Encoding` means nothing to Gatehouse, but servers behind it that map `_` to `-` (CGI,
            // WSGI, PHP and some frameworks do) would read it as framing: never forward such a name.
            if ClientHandler.framingHeaderNames.contains(name.lowercased().replacingOccurrences(of: "_", with: "-")) {
                return "header name \(name.prefix(40)) is a look-alike of a framing header"
            }
        }
        return nil
    }

    static let framingHeaderNames: Set<String> = ["content-length", "transfer-encoding", "host", "connection", "upgrade", "te",
                                                   "trailer", "expect", "keep-alive", "proxy-connection"]

    /// The request's path when it lies at or under the forward-auth path: as routing would read it (with the
    /// configured canonicalisation, so a path the app would be sent is never missed) and, for choosing an
    /// endpoint, as strictly parsed (nil when that fails: no endpoint, a 404).
    static func reservedForwardAuthPath(_ uri: String, configured: String, options: CanonicalizationOptions) -> (routed: String, strict: String?)? {
        let raw = pathOf(uri)
        let strict = (try? CanonicalPath(parsing: raw, allowSemicolons: false))?.value
        let routed = strict ?? (try? CanonicalPath(parsing: raw, allowSemicolons: options.allowPathSemicolons,
                                                    allowEncodedSemicolons: options.allowPathEncodedSemicolons,
                                                    allowEncodedPercent: options.allowPathEncodedPercent))?.value
        guard let routed, ForwardAuth.isReserved(path: routed, configured: configured) else { return nil }
        return (routed, strict)
    }

    /// The path of a request-target, read as routing reads it: an absolute-form target (`http://h/fa/x`) is
    /// routed by its path, so it must be checked by it too (else it would step around the forward-auth path).
    static func pathOf(_ uri: String) -> String {
        guard let target = CanonicalRequest.pathAndQuery(ofTarget: uri) else { return uri }
        if let q = target.firstIndex(of: "?") { return String(target[..<q]) }
        return String(target)
    }

    // MARK: Decisions

    private func decided(_ exchange: Exchange, _ evaluation: Evaluation) {
        exchange.evaluation = evaluation
        let decision = evaluation.decision
        guard decision.action == .proxy, let request = evaluation.request, let upstreamHeaders = decision.upstreamHeaders else {
            let local = exchange.forwardAuth.map { ForwardAuth.denial(decision, dialect: $0) } ?? decision
            if evaluation.request == nil {
                // Refused before routing (ambiguous or malformed head): whatever the client sends next on this
                // connection is not read, as after a framing error. A peer that disagreed about this head may
                // also disagree about where the next request starts.
                exchange.closeAfterResponse = true
            }
            respondLocally(exchange, decision: local, label: evaluation.request == nil ? "reject" : decision.action.rawValue)
            return
        }
        if exchange.forwardAuth != nil {
            // Cookies from a resolved handshake ride along for the proxy to pass to the client.
            let answer = ForwardAuth.allowed(evaluation, policy: exchange.snapshot.settings.identity,
                                             cookies: decision.responseHeaders.values("set-cookie"))
            respondLocally(exchange, decision: answer, label: "proxy")
            return
        }
        // The snapshot, not a copy of its settings: copying GatehouseSettings retains every field (seen in perf).
        let snapshot = exchange.snapshot
        let target = decision.upstreamOverride?.target ?? evaluation.route?.upstream ?? snapshot.settings.upstream
        let chunked = exchange.head.headers[canonicalForm: "transfer-encoding"].first?.lowercased() == "chunked"
        var upstreamHead = UpstreamRequest.head(
            for: request, headers: upstreamHeaders, peer: peer, trustedPeer: exchange.trustedPeer,
            requestID: exchange.requestID, chunked: chunked)
        if let override = decision.upstreamOverride {
            upstreamHead.target = override.requestTarget
            exchange.locationRewrite = override
        }
        exchange.extraResponseHeaders = decision.responseHeaders
        if WebSocketUpgrade.isRequested(exchange.head) {
            if let refusal = WebSocketUpgrade.crossSiteRefusal(evaluation, request: request, origin: exchange.head.headers.first(name: "origin"),
                                                                snapshot: snapshot) {
                exchange.closeAfterResponse = true
                respondLocally(exchange, decision: refusal, label: "deny")
                return
            }
            exchange.upgrade = true
            upstreamHead.headers.append("Connection", "Upgrade")
            upstreamHead.headers.append("Upgrade", "websocket")
        }
        if !exchange.requestEnded, exchange.head.version == .http1_1,
            exchange.head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }),
            let context
        {
            // The client waits for a go-ahead before sending its body: the request is allowed, so give it now
            // (the upstream never sees the Expect; the body is streamed to it as it comes).
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .continue))), promise: nil)
        }
        exchange.upstreamHead = upstreamHead
        exchange.upstreamTarget = target
        connectUpstream(exchange, target: target, head: upstreamHead, fresh: false)
    }

    private func connectUpstream(_ exchange: Exchange, target: UpstreamTarget, head upstreamHead: UpstreamRequest.Head, fresh: Bool) {
        guard let context else { return }
        let pool = server.pools.pool(for: context.eventLoop)
        if !fresh, let connection = pool.takeIdle(target) {
            // A pooled connection: relay now, without a future and its callbacks.
            startRelay(exchange, connection: connection, head: upstreamHead)
            return
        }
        exchange.awaitingUpstream = true
        pauseReads()
        pool.connect(target).assumeIsolated().whenComplete { [weak self] result in
            guard let self, !self.closed, self.exchange === exchange else {
                if case .success(let connection) = result { pool.release(connection) }
                return
            }
            exchange.awaitingUpstream = false
            switch result {
            case .success(let connection):
                self.startRelay(exchange, connection: connection, head: upstreamHead)
            case .failure(let error):
                self.upstreamUnavailable(exchange, error: error)
            }
        }
    }

    private func startRelay(_ exchange: Exchange, connection: UpstreamConnection, head: UpstreamRequest.Head) {
        exchange.upstream = connection
        connection.delegate = self
        let requestHead = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: head.method), uri: head.target,
                                          headers: HTTPHeaders(head.headers))
        exchange.upstreamStarted = DispatchTime.now().uptimeNanoseconds
        connection.channel.write(HTTPClientRequestPart.head(requestHead), promise: nil)
        var wroteEnd = false
        for part in exchange.buffered {
            switch part {
            case .body(let buffer): connection.channel.write(HTTPClientRequestPart.body(.byteBuffer(buffer)), promise: nil)
            case .end:
                connection.channel.write(HTTPClientRequestPart.end(nil), promise: nil)
                wroteEnd = true
            case .head: break
            }
        }
        // On a retry the request's end went to the failed connection: this one needs its own.
        if exchange.requestEnded && !wroteEnd { connection.channel.write(HTTPClientRequestPart.end(nil), promise: nil) }
        exchange.buffered = []
        connection.channel.flush()
        if exchange.requestEnded {
            armResponseTimer(exchange)
        } else if connection.channel.isWritable {
            resumeReads()
        }
    }

    /// `proxy.response_timeout` counts from the end of the request to the upstream's response head, so a long
    /// upload is not cut short.
    private func armResponseTimer(_ exchange: Exchange) {
        guard !closed, !exchange.responseStarted else { return }
        responseTimer?.set(in: exchange.snapshot.settings.proxy.responseTimeout)
    }

    private func upstreamUnavailable(_ exchange: Exchange, error: any Error) {
        let timedOut: Bool
        if case ChannelError.connectTimeout = error { timedOut = true } else { timedOut = false }
        server.state.metrics.recordUpstreamError(timedOut ? "connect_timeout" : "connect_failed")
        let decision: Decision = timedOut
            ? .deny(status: 504, error: "upstream_timeout", message: "The upstream could not be reached in time.", explanation: "upstream connect timed out")
            : .deny(status: 502, error: "upstream_unavailable", message: "The upstream is not reachable.", explanation: "upstream connect failed")
        respondLocally(exchange, decision: decision, label: "upstream_error")
    }

    private func abandonUpstream(_ exchange: Exchange) {
        responseTimer?.cancel()
        if let upstream = exchange.upstream {
            upstream.close()
            exchange.upstream = nil
        }
    }

    // MARK: Upstream events

    func upstreamReceived(_ part: HTTPClientResponsePart) {
        guard let exchange, let context else { return }
        switch part {
        case .head(let head):
            responseTimer?.cancel()
            exchange.responseStarted = true
            if let started = exchange.upstreamStarted {
                exchange.upstreamMilliseconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6
            }
            if !head.isKeepAlive { exchange.upstream?.reusable = false }
            if exchange.upgrade && head.status == .switchingProtocols {
                switchToTunnel(exchange, upstreamHead: head)
                return
            }
            if exchange.upgrade {
                // Refused upgrade: answer it, then close both (the request parser stopped at the upgrade, and
                // an upstream that says 200 to an upgrade must never be taken as having switched).
                exchange.closeAfterResponse = true
                exchange.upstream?.reusable = false
            }
            var headers = UpstreamRequest.responseHeaders(head.headers, extra: exchange.extraResponseHeaders)
            if let override = exchange.locationRewrite, let location = headers.first(name: "location"),
                location == override.locationPrefix || location.hasPrefix(override.locationPrefix + "/")
            {
                // Frontend API redirects to itself go back through the proxy.
                headers.replaceOrAdd(name: "Location", value: override.publicPrefix + location.dropFirst(override.locationPrefix.count))
            }
            exchange.status = Int(head.status.code)
            armReadTimer(exchange)
            if exchange.closeAfterResponse { headers.replaceOrAdd(name: "Connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: exchange.head.version, status: head.status, headers: headers))), promise: nil)
        case .body(let buffer):
            exchange.bytesSent += buffer.readableBytes
            // Flushed at the response's end or when the upstream's read burst completes: one write for a small
            // response instead of one per part.
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            if !context.channel.isWritable, let upstream = exchange.upstream {
                upstream.pauseReading(true)
                readTimer?.cancel()
            } else {
                armReadTimer(exchange)
            }
        case .end:
            readTimer?.cancel()
            let upstream = exchange.upstream
            exchange.upstream = nil
            if let upstream {
                if exchange.requestEnded {
                    server.pools.pool(for: context.eventLoop).release(upstream)
                } else {
                    // The upstream answered before reading the whole body: that connection cannot be reused.
                    upstream.close()
                    exchange.discardBudget = ClientHandler.discardBudget
                }
            }
            exchange.responseDone = true
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            if exchange.requestEnded || exchange.closeAfterResponse {
                completeExchange(exchange)
            } else {
                // Read (and drop) the rest of the body, but not forever: a client that stops sending is cut off.
                armHeadTimer(seconds: exchange.snapshot.settings.server.headerTimeout)
                resumeReads()
            }
        }
    }

    private func armReadTimer(_ exchange: Exchange) {
        readTimer?.set(in: exchange.snapshot.settings.proxy.readTimeout)
    }

    /// After the upstream's 101: forward it, take the HTTP handlers out of both pipelines and relay bytes.
    /// The tunnel closes at the session token's expiry (if configured) or the maximum lifetime.
    private func switchToTunnel(_ exchange: Exchange, upstreamHead: HTTPResponseHead) {
        guard let context, let upstream = exchange.upstream else { return }
        exchange.upstream = nil
        upstream.reusable = false
        upstream.delegate = nil
        exchange.status = 101
        exchange.decisionLabel = "upgrade"
        var headers = HTTPHeaders(HopByHop.removing(from: HeaderList(upstreamHead.headers)))
        headers.add(name: "Connection", value: "Upgrade")
        headers.add(name: "Upgrade", value: upstreamHead.headers.first(name: "upgrade") ?? "websocket")
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: headers))), promise: nil)
        finishLog(exchange)
        self.exchange = nil
        headTimer?.cancel()
        readTimer?.cancel()
        sendTimer?.cancel()

        // The same rule as the data plane's (token expiry, a machine token's, an opaque one's revocation window).
        let lifetime = exchange.evaluation.map { RequestPolicy.lifetime($0, settings: exchange.snapshot.settings, now: Date().timeIntervalSince1970) }
            ?? exchange.snapshot.settings.proxy.websocketMaxLifetime
        let clientChannel = context.channel
        let upstreamChannel = upstream.channel
        let (clientSide, upstreamSide) = TunnelHandler.pair()
        context.eventLoop.assumeIsolated().execute {
            do {
                let client = clientChannel.pipeline.syncOperations
                try client.addHandler(clientSide, name: ServerPipeline.tunnel)
                for name in [ServerPipeline.client, ServerPipeline.validator, ServerPipeline.encoder, ServerPipeline.decoder] {
                    client.removeHandler(name: name, promise: nil)
                }
                let up = upstreamChannel.pipeline.syncOperations
                try up.addHandler(upstreamSide, name: UpstreamPipeline.tunnel)
                for name in [UpstreamPipeline.handler, UpstreamPipeline.encoder, UpstreamPipeline.decoder] {
                    up.removeHandler(name: name, promise: nil)
                }
                _ = upstreamChannel.setOption(ChannelOptions.autoRead, value: true)
                clientChannel.read()
                upstreamChannel.read()
            } catch {
                clientChannel.close(promise: nil)
                upstreamChannel.close(promise: nil)
                return
            }
            let deadline = clientChannel.eventLoop.scheduleTask(in: .milliseconds(Int64(lifetime * 1000))) {
                clientChannel.close(promise: nil)
                upstreamChannel.close(promise: nil)
            }
            clientChannel.closeFuture.whenComplete { _ in
                deadline.cancel()
                upstreamChannel.close(promise: nil)
            }
        }
    }

    func upstreamReadComplete() {
        context?.flush()
    }

    func upstreamWritabilityChanged(isWritable: Bool) {
        if isWritable { resumeReads() } else { pauseReads() }
    }

    func upstreamFailed(_ error: any Error) {
        guard let exchange, let failed = exchange.upstream else { return }
        exchange.upstream = nil
        responseTimer?.cancel()
        // A pooled keep-alive connection the upstream had already closed: retry a bodiless, idempotent request
        // once on a new connection (nothing of it can have been processed twice).
        if failed.reused, !exchange.retried, !exchange.responseStarted, exchange.requestEnded, exchange.requestBodyBytes == 0,
            ["GET", "HEAD", "OPTIONS"].contains(exchange.head.method.rawValue), let head = exchange.upstreamHead,
            let target = exchange.upstreamTarget
        {
            exchange.retried = true
            server.state.metrics.recordUpstreamError("stale_connection_retried")
            connectUpstream(exchange, target: target, head: head, fresh: true)
            return
        }
        if error is NIOSSLError || error is NIOSSLExtraError {
            // A certificate that is untrusted or names another host: nothing was sent (NIOSSL holds writes
            // until the handshake is done). Said as such, so operators do not look for a crashed upstream.
            server.state.metrics.recordUpstreamError("tls_failed")
            respondLocally(exchange, decision: .deny(status: 502, error: "upstream_unavailable",
                message: "The upstream's TLS certificate could not be verified.", explanation: "upstream TLS handshake failed: \(error)"),
                label: "upstream_error")
            return
        }
        server.state.metrics.recordUpstreamError("connection_lost")
        if exchange.responseStarted {
            // Part of the response is already out: the only honest signal left is closing the connection.
            context?.close(promise: nil)
        } else {
            respondLocally(exchange, decision: .deny(status: 502, error: "upstream_error",
                message: "The upstream closed the connection without answering.", explanation: "upstream connection lost: \(error)"), label: "upstream_error")
        }
    }

    // MARK: Local responses

    private func respondLocally(_ exchange: Exchange, decision: Decision, label: String) {
        guard let context, !closed else { return }
        exchange.decisionLabel = label
        exchange.status = decision.status
        if exchange.evaluation == nil {
            // Decided before evaluation (framing, limits): mark so later body parts are discarded, not buffered.
            exchange.evaluation = Evaluation(request: nil, route: nil, routeMatched: false, auth: nil, decision: decision)
        }
        if !exchange.requestEnded {
            exchange.discardBudget = ClientHandler.discardBudget
            for part in exchange.buffered {
                if case .end = part { exchange.requestEnded = true }
                if case .body(let b) = part { exchange.discardBudget -= b.readableBytes }
            }
        }
        if !exchange.requestEnded, !ClientHandler.restFits(exchange) {
            // The rest of the body will not be read to the end: say so in this response, so a pooled client
            // does not send its next request on a connection about to close (it used to close unannounced).
            exchange.closeAfterResponse = true
        }
        exchange.buffered = []
        exchange.bytesSent = write(decision, version: exchange.head.version, omitBody: exchange.head.method == .HEAD,
                                   requestID: exchange.requestID, closing: exchange.closeAfterResponse, context: context)
        exchange.responseDone = true
        if exchange.requestEnded || exchange.closeAfterResponse {
            completeExchange(exchange)
        } else {
            // Read (and discard) the rest of the body, but not forever: a client that stops sending is cut off.
            armHeadTimer(seconds: exchange.snapshot.settings.server.headerTimeout)
            resumeReads()
        }
    }

    /// Writes one complete response made by Gatehouse itself; returns the body bytes sent.
    @discardableResult
    private func write(_ decision: Decision, version: HTTPVersion, omitBody: Bool, requestID: String?, closing: Bool,
                       closeWhenWritten: Bool = false, context: ChannelHandlerContext) -> Int {
        var headers = HTTPHeaders(decision.responseHeaders)
        let body = decision.body.map { $0 + "\n" } ?? ""
        headers.replaceOrAdd(name: "Content-Length", value: String(body.utf8.count))
        if let requestID { headers.add(name: "X-Request-Id", value: requestID) }
        if closing { headers.replaceOrAdd(name: "Connection", value: "close") }
        let status = HTTPResponseStatus(statusCode: decision.status)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: status, headers: headers))), promise: nil)
        var sent = 0
        if !body.isEmpty, !omitBody {
            var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
            buffer.writeString(body)
            sent = buffer.readableBytes
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if closeWhenWritten { written.assumeIsolated().whenComplete { _ in context.close(promise: nil) } }
        return sent
    }

    /// Request body bytes read and dropped after a local answer before the connection is given up instead.
    static let discardBudget = 64 * 1024

    /// Does the unread rest of this request's body fit the discard budget? A chunked body's end is unknown;
    /// without `Content-Length` or chunked there is no body (the request's end is on its way).
    static func restFits(_ exchange: Exchange) -> Bool {
        if let length = exchange.head.headers.first(name: "content-length").flatMap(Int.init) {
            return length - exchange.requestBodyBytes <= exchange.discardBudget
        }
        return exchange.head.headers[canonicalForm: "transfer-encoding"].isEmpty
    }

    private func bodyTooLarge(_ exchange: Exchange) {
        if exchange.responseStarted || exchange.upstream != nil {
            server.state.metrics.recordUpstreamError("client_body_too_large")
            abandonUpstream(exchange)
            if exchange.responseStarted {
                context?.close(promise: nil)
                return
            }
        }
        exchange.closeAfterResponse = true
        exchange.requestEnded = true
        respondLocally(exchange, decision: ClientHandler.payloadTooLarge, label: "reject")
    }

    static let payloadTooLarge = Decision.deny(
        status: 413, error: "payload_too_large", message: "The request body is larger than this gateway accepts.",
        explanation: "body over max_body_bytes")

    private func completeExchange(_ exchange: Exchange) {
        guard self.exchange === exchange, let context else { return }
        responseTimer?.cancel()
        finishLog(exchange)
        self.exchange = nil
        if let parserError = pipelinedParserError {
            pipelined = []
            rejectUnparseable(parserError, context: context)
            return
        }
        if exchange.closeAfterResponse {
            // As nginx's lingering close: only when the client may still be sending (an unread body, pipelined
            // requests); otherwise the slot is freed at once.
            if exchange.requestEnded && pipelined.isEmpty { context.close(promise: nil) } else { closeInStages(context) }
            return
        }
        armHeadTimer(seconds: exchange.snapshot.settings.server.idleTimeout)
        if !pipelined.isEmpty {
            let parts = pipelined
            pipelined = []
            for part in parts { dispatch(part, context: context) }
            if let next = self.exchange {
                // The replayed request manages reading: it needs its body unless it waits for an upstream
                // connection (which resumes reading when it is ready) or has all of it.
                if !next.requestEnded && !next.awaitingUpstream { resumeReads() }
                return
            }
        }
        resumeReads()
    }

    /// Shuts our side for writing once the response is out (NIO waits for pending writes), then reads and
    /// drops until the client closes (a read of 0 closes the channel) or `lingerSeconds` pass.
    private func closeInStages(_ context: ChannelHandlerContext) {
        lingering = true
        pipelined = []
        context.close(mode: .output, promise: nil)
        headTimer?.set(in: ClientHandler.lingerSeconds)
        resumeReads()
    }

    private func finishLog(_ exchange: Exchange) {
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - exchange.started) / 1e9
        let evaluation = exchange.evaluation
        let route = evaluation?.route?.name
        if evaluation?.request == nil {
            server.state.metrics.recordRejected(status: exchange.status)
        } else {
            server.state.metrics.recordRequest(route: route ?? "none", decision: exchange.decisionLabel, status: exchange.status, seconds: seconds)
        }
        guard server.accessLog.enabled else { return }
        let facts = evaluation?.authLogFacts
        let entry = AccessLog.Entry(
            requestID: exchange.requestID, method: exchange.head.method.rawValue, path: evaluation?.request?.path.value,
            route: route, decision: exchange.decisionLabel, status: exchange.status,
            userID: facts?.userID, authReason: facts?.reason,
            upstreamMilliseconds: exchange.upstreamMilliseconds, durationMilliseconds: seconds * 1000, bytesSent: exchange.bytesSent,
            clientAddress: peer, host: evaluation?.request?.host ?? exchange.head.headers.first(name: "host"),
            userAgent: exchange.head.headers.first(name: "user-agent"),
            protocolVersion: "HTTP/\(exchange.head.version.major).\(exchange.head.version.minor)",
            tokenType: facts?.tokenType, machineSubject: facts?.machineSubject)
        server.accessLog.write(entry)
    }

    // MARK: Errors

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if lingering {
            // Whatever the client sent after its last request is not ours to judge.
            context.close(promise: nil)
            return
        }
        if let parserError = error as? HTTPParserError {
            if let exchange, exchange.requestEnded {
                // A malformed pipelined request: answer it after the response in flight, then close.
                pipelinedParserError = parserError
                exchange.closeAfterResponse = true
                pauseReads()
                return
            }
            if let exchange, exchange.responseDone {
                // Answered locally already, and the rest of the body is malformed: end here, no second answer.
                finishLog(exchange)
                self.exchange = nil
                context.close(promise: nil)
                return
            }
            if exchange == nil || exchange?.responseStarted == false {
                rejectUnparseable(parserError, context: context)
                return
            }
        }
        context.close(promise: nil)
    }

    private func rejectUnparseable(_ parserError: HTTPParserError, context: ChannelHandlerContext) {
        let tooLarge = parserError == .headerOverflow
        let status = tooLarge ? 431 : 400
        server.state.metrics.recordRejected(status: status)
        let decision = Decision.deny(status: status, error: "bad_request",
                                     message: tooLarge ? "request header fields too large" : "malformed HTTP request",
                                     explanation: "unparseable request: \(parserError)")
        write(decision, version: .http1_1, omitBody: false, requestID: nil, closing: true, closeWhenWritten: true, context: context)
        if let exchange {
            // Mid-request (a body cut short by the client leaving, bad chunk framing): the upstream holds a
            // half-sent request that can never be completed, so its connection goes too (it used to stay open
            // for good, one per aborted upload, while the open-connections gauge said 0).
            abandonUpstream(exchange)
            exchange.status = status
            exchange.decisionLabel = "reject"
            finishLog(exchange)
        }
        exchange = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            // Graceful shutdown: finish the request in flight, then close; close idle connections now.
            if let exchange {
                exchange.closeAfterResponse = true
            } else {
                context.close(promise: nil)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}

enum RequestID {
    /// 32 lower-case hex digits of two words, written on the stack and made into one string (one allocation
    /// per request; `String(unsafeUninitializedCapacity:)` ran ~570 instructions of its own beside it, and a
    /// digit-table loop ~540 where the four `hexDigits` run ~110, callgrind).
    static func hex(_ high: UInt64, _ low: UInt64) -> String {
        var text = (hexDigits(UInt32(truncatingIfNeeded: high >> 32)), hexDigits(UInt32(truncatingIfNeeded: high)),
                    hexDigits(UInt32(truncatingIfNeeded: low >> 32)), hexDigits(UInt32(truncatingIfNeeded: low)))
        return withUnsafeBytes(of: &text) { String(decoding: $0, as: UTF8.self) }
    }

    /// The eight lower-case hex digits of `value`, most significant first in memory: each nibble spread into a
    /// byte of its own, then turned into its ASCII digit in all eight bytes at once.
    static func hexDigits(_ value: UInt32) -> UInt64 {
        var x = UInt64(value)
        x = ((x & 0xFFFF_0000) << 16) | (x & 0xFFFF)
        x = ((x & 0x0000_FF00_0000_FF00) << 8) | (x & 0x0000_00FF_0000_00FF)
        x = ((x & 0x00F0_00F0_00F0_00F0) << 4) | (x & 0x000F_000F_000F_000F)
        // 1 in each byte whose nibble is 10 or more (adding 6 carries it into bit 4; no byte overflows).
        let letters = ((x &+ 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101
        // '0' + n, and for 10...15 the 39 more that reach 'a' + (n - 10).
        x = x &+ 0x3030_3030_3030_3030 &+ letters &* 0x27
        return x.bigEndian
    }
}
