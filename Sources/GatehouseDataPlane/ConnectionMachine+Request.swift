import GatehouseCore
import GatehouseHTTP1

extension ConnectionMachine {
    /// Works through `clientIn` as far as the phase allows: parses heads, relays or drops body bytes,
    /// feeds the tunnel. Called after every event that may have made progress possible.
    mutating func advance(_ now: UInt64) {
        while true {
            switch phase {
            case .awaitingHead(var wait):
                guard !clientIn.isEmpty else { return }
                // A pipelining client reads its answers before more of its requests are parsed.
                guard clientOut.count < Self.highWater else { return }
                if wait.firstByte == nil {
                    // A new head: nothing of it was parsed yet.
                    parser.reset()
                    wait.firstByte = now
                    phase = .awaitingHead(wait)
                }
                let parsed = clientIn.withReadable { parser.parse($0) }
                switch parsed {
                case .needMore:
                    // Half a head and no more to come; what was answered before it still goes out.
                    if clientEnded { startClosing(linger: false, now) }
                    return
                case .refused(let refusal):
                    refuse(refusal, now)
                    return
                case .complete(let head):
                    begin(head, now)
                    return
                }
            case .deciding, .connecting:
                return
            case .relaying:
                relayRequestBody(now)
                return
            case .draining:
                guard dropRequestBody(now) else { return }
            case .tunnel:
                if !clientIn.isEmpty {
                    clientIn.withReadable { upstreamOut.append($0) }
                    clientIn.removeAll()
                }
                return
            case .closing, .closed:
                clientIn.removeAll()
                return
            }
        }
    }

    /// A complete head: refuse what the limits forbid, else ask for a decision.
    private mutating func begin(_ head: RequestHead, _ now: UInt64) {
        let bodyEnded: Bool
        switch head.body {
        case .none, .contentLength(0): bodyEnded = true
        default: bodyEnded = false
        }
        let body = BodyDecoder(head.body, limits: settings.http1Limits)
        let closeAfter = !head.keepAlive || quiescing
        var request: Request
        if let reused = spare.takeRequest() {
            reused.restart(head: head, unconsumedHead: head.length, body: body, bodyEnded: bodyEnded, started: now, lastBodyProgress: now,
                           closeAfter: closeAfter)
            request = reused
        } else {
            request = Request(head: head, unconsumedHead: head.length, body: body, bodyEnded: bodyEnded, started: now,
                              lastBodyProgress: now, closeAfter: closeAfter)
        }
        if let upgrade = head.upgrade, !isWebSocket(head.fields[upgrade]) {
            // An upgrade Gatehouse does not carry out (h2c, anything but WebSocket): answered as HTTP/1.1, and the
            // connection's last (what follows would be in the other protocol).
            request.closeAfter = true
        }
        if case .contentLength(let length) = head.body, settings.maxBodyBytes > 0, length > settings.maxBodyBytes {
            clientIn.consume(request.unconsumedHead)
            request.unconsumedHead = 0
            request.closeAfter = true
            request.refusedBeforeDecision = true
            answer(&request, Self.payloadTooLarge, label: "reject", now)
            return
        }
        phase = .deciding(request)
        actions.append(.decide)
    }

    /// The head a `.decide` asks about, while its decision is awaited (nil once the connection moved on).
    public var headToDecide: RequestHead? {
        guard case .deciding(let request) = phase else { return nil }
        return request.head
    }

    private func isWebSocket(_ field: FieldRange) -> Bool {
        clientIn.withReadable { b in FieldName.equal(UnsafeRawBufferPointer(rebasing: b[field.value]), "websocket") }
    }

    /// The decision for the head in `.deciding`. Ignored when the connection has moved on (closed meanwhile).
    /// `verdict` is consumed: the plan moves into the exchange's `Forwarding` (a copy retained and released
    /// its counted fields).
    public mutating func decided(_ verdict: consuming ExchangeVerdict, now: UInt64) {
        guard case .deciding(var request) = phase else { return }
        clientIn.consume(request.unconsumedHead)
        request.unconsumedHead = 0
        switch consume verdict {
        case .answer(let decision, let label, let closeConnection):
            if closeConnection { request.closeAfter = true }
            if request.head.expectsContinue, !request.bodyEnded, clientIn.isEmpty {
                // The client waits for a 100 that will not come and may never send its body: kept alive, its
                // next request would be read as that body. So the answer says close (RFC 9110 §10.1.1).
                request.closeAfter = true
            }
            answer(&request, decision, label: label, now)
        case .forward(let plan):
            request.label = plan.label
            request.requestID = plan.requestID
            if plan.sendContinue, !request.bodyEnded, request.head.version == .http11 {
                // The client waits for a go-ahead before sending its body: the request is allowed, so give it
                // now (the upstream never sees the Expect; the body is streamed to it as it comes).
                clientOut.append("HTTP/1.1 100 Continue\r\n\r\n")
            }
            let upstream = plan.upstream
            let forwarding: Forwarding
            if let reused = spare.takeForwarding() {
                reused.restart(consume plan)
                forwarding = reused
            } else {
                forwarding = Forwarding(consume plan)
            }
            phase = .connecting(request, forwarding, Connecting(since: now, retry: false))
            actions.append(.acquireUpstream(upstream, fresh: false))
        }
        advance(now)
    }

    /// Answers with a response made here, then reads and drops the rest of the body (within the budget) or
    /// ends the connection.
    mutating func answer(_ request: inout Request, _ decision: Decision, label: String, _ now: UInt64) {
        request.status = decision.status
        request.label = label
        if !request.bodyEnded {
            request.discardLeft = settings.discardBudget
            // The rest of the body will not be read to the end: say so in this response, so a pooled client
            // does not send its next request on a connection about to close.
            if !request.restFits { request.closeAfter = true }
        }
        if quiescing { request.closeAfter = true }
        request.bodyBytesSent = LocalAnswer.write(decision, version: request.head.version, omitBody: request.isHeadMethod,
                                                  requestID: request.requestID, closing: request.closeAfter, into: &clientOut)
        if request.bodyEnded || request.closeAfter {
            finish(request, now)
        } else {
            phase = .draining(request, since: now)
        }
    }

    /// A head that cannot be read unambiguously: answered, and nothing after it is read as a request.
    private mutating func refuse(_ refusal: HTTP1Refusal, _ now: UInt64) {
        let tooLarge = refusal.status == 431
        let decision = Decision.deny(status: refusal.status, error: "bad_request",
                                     message: tooLarge ? "request header fields too large" : Self.message(refusal),
                                     explanation: "unparseable request: \(refusal)")
        actions.append(.finished(ExchangeRecord(status: refusal.status, label: "reject", bodyBytesSent: 0, upstreamNanoseconds: nil,
                                                upstreamError: nil, refusedBeforeDecision: true)))
        LocalAnswer.write(decision, version: .http11, omitBody: false, requestID: nil, closing: true, into: &clientOut)
        startClosing(linger: true, now)
    }

    static func message(_ refusal: HTTP1Refusal) -> String {
        switch refusal {
        case .missingHost: return "HTTP/1.1 request without a Host header"
        case .duplicateContentLength: return "more than one Content-Length"
        case .invalidContentLength: return "invalid Content-Length"
        case .contentLengthWithTransferEncoding: return "both Content-Length and Transfer-Encoding"
        case .unsupportedTransferEncoding, .duplicateTransferEncoding, .transferEncodingInHTTP10: return "unsupported Transfer-Encoding"
        case .lookAlikeFieldName: return "a header name is a look-alike of a framing header"
        case .unsupportedVersion: return "unsupported HTTP version"
        case .targetTooLong: return "request target too long"
        case .unknownMethod: return "method not implemented"
        case .lowercaseMethod: return "method names are case-sensitive"
        case .connectNotSupported: return "CONNECT is not supported"
        case .unsupportedExpectation: return "unsupported Expect"
        case .duplicateHost: return "more than one Host header"
        case .invalidHost: return "invalid Host header"
        default: return "malformed HTTP request"
        }
    }

    static let payloadTooLarge = Decision.deny(
        status: 413, error: "payload_too_large", message: "The request body is larger than this gateway accepts.",
        explanation: "body over max_body_bytes")

    /// Relays request body bytes from `clientIn` to `upstreamOut` (re-framed as chunks when the client's body
    /// was chunked), as far as the upstream side takes them.
    mutating func relayRequestBody(_ now: UInt64) {
        // Most requests have no body left by now: asked of the phase borrowed first (bound from `self.phase`,
        // its three objects were retained and released on every call; uprobes).
        guard Self.bodyStillComing(phase) else { return }
        guard case .relaying(let request, let plan, let response) = phase else { return }
        // (A complete body ends even above the high-water mark: its end adds nothing to upstreamOut.)
        while !request.bodyEnded, (!clientIn.isEmpty && upstreamOut.count < Self.highWater) || request.bodyComplete {
            let event = clientIn.withReadable { request.body.decode($0, from: 0) }
            switch event {
            case .data(let range):
                request.bodyBytes += range.count
                request.lastBodyProgress = now
                if settings.maxBodyBytes > 0, request.bodyBytes > settings.maxBodyBytes {
                    bodyTooLarge(request, now)
                    return
                }
                if plan.chunkedBody {
                    upstreamOut.append(String(range.count, radix: 16))
                    upstreamOut.append("\r\n")
                    upstreamOut.append(from: clientIn, range: range)
                    upstreamOut.append("\r\n")
                } else {
                    upstreamOut.append(from: clientIn, range: range)
                }
                clientIn.consume(range.upperBound)
            case .needMore:
                request.lastBodyProgress = now
                clientIn.consume(clientIn.count)
            case .end(let at):
                clientIn.consume(at)
                request.bodyEnded = true
                response.requestEndedAt = now
                if plan.chunkedBody { upstreamOut.append("0\r\n\r\n") }
            case .refused(let refusal):
                malformedBody(request, refusal, now)
                return
            }
        }
    }

    /// A relayed request whose body is not all read yet (false in every other phase). The phase is a borrowed
    /// parameter, so its payload is read in place, not copied.
    static func bodyStillComing(_ phase: borrowing Phase) -> Bool {
        // (A `switch`: `if case` on a borrowed parameter would consume it.)
        switch phase {
        case .relaying(let request, _, _): return !request.bodyEnded
        default: return false
        }
    }

    /// Whether `clientIn` already holds the rest of the body (while a decision, a connection or the upstream
    /// holds it back): decoded on a copy, nothing consumed.
    func restOfBodyIsRead(_ request: Request) -> Bool {
        var decoder = request.body
        return clientIn.withReadable { b in
            var at = request.unconsumedHead
            while true {
                switch decoder.decode(b, from: at) {
                case .data(let range): at = range.upperBound
                case .end: return true
                case .needMore, .refused: return false
                }
            }
        }
    }

    /// Drops body bytes after an answer; true when the exchange finished (the next request may be parsed).
    mutating func dropRequestBody(_ now: UInt64) -> Bool {
        guard case .draining(let request, let since) = phase else { return false }
        while !request.bodyEnded, !clientIn.isEmpty || request.bodyComplete {
            let event = clientIn.withReadable { request.body.decode($0, from: 0) }
            switch event {
            case .data(let range):
                request.bodyBytes += range.count
                request.discardLeft -= range.count
                clientIn.consume(range.upperBound)
                if request.discardLeft < 0 {
                    // Not worth reading on: the answer said `Connection: close` unless the body said it fits.
                    request.closeAfter = true
                    finish(request, now)
                    return false
                }
            case .needMore:
                clientIn.consume(clientIn.count)
            case .end(let at):
                clientIn.consume(at)
                request.bodyEnded = true
            case .refused:
                // Answered already, and the rest of the body is malformed: end here, no second answer, no
                // lingering. (One close: finish() closes; closing again after it said .closeClient twice.)
                request.closeAfter = true
                request.bodyEnded = true
                clientIn.removeAll()
                finish(request, now)
                return false
            }
        }
        guard request.bodyEnded else {
            phase = .draining(request, since: since)
            return false
        }
        finish(request, now)
        if case .awaitingHead = phase { return true }
        return false
    }

    /// The exchange is over: log it, then wait for the next request or close.
    mutating func finish(_ request: Request, _ now: UInt64) {
        actions.append(.finished(request.record))
        // A client that half-closed after pipelining still gets an answer to each complete request it sent.
        if request.closeAfter || (clientEnded && clientIn.isEmpty) || quiescing {
            // As nginx's lingering close: only when the client may still be sending (an unread body,
            // pipelined requests); otherwise the slot is freed at once.
            startClosing(linger: !request.bodyEnded || !clientIn.isEmpty, now)
            return
        }
        // The parser is reset when the next head's first byte comes (advance), not here: the request ending
        // still holds its head, whose field array shares the parser's storage, so a reset now had to allocate
        // a new one.
        phase = .awaitingHead(HeadWait(since: now, firstByte: nil, fresh: false))
        // Kept for the next exchange without its head's field list: that list shares the parser's storage, and
        // holding it made the parser's next reset copy it (an allocation per request).
        request.head.fields = []
        spare.request = request
    }

    /// The client left (or failed) mid-exchange.
    mutating func abandon(_ request: Request, status: Int, _ now: UInt64) {
        let request = request
        if request.status == 0 || !request.bodyEnded { request.status = status }
        actions.append(.finished(request.record))
        close(now)
    }

    private mutating func bodyTooLarge(_ request: Request, _ now: UInt64) {
        guard case .relaying(var request, _, let response) = phase else { return }
        actions.append(.upstreamError("client_body_too_large"))
        actions.append(.closeUpstream)
        upstreamOut.removeAll()
        if response.headStarted {
            request.status = 413
            actions.append(.finished(request.record))
            closeClientNow()
            return
        }
        request.closeAfter = true
        request.bodyEnded = true
        answer(&request, Self.payloadTooLarge, label: "reject", now)
    }

    /// Bad chunk framing mid-body: the upstream holds a half-sent request that can never be completed.
    private mutating func malformedBody(_ request: Request, _ refusal: HTTP1Refusal, _ now: UInt64) {
        guard case .relaying(var request, _, let response) = phase else { return }
        actions.append(.closeUpstream)
        upstreamOut.removeAll()
        if response.headStarted {
            actions.append(.finished(request.record))
            closeClientNow()
            return
        }
        request.closeAfter = true
        request.bodyEnded = true
        request.refusedBeforeDecision = false
        let decision = Decision.deny(status: refusal.status, error: "bad_request", message: "malformed HTTP request",
                                     explanation: "unparseable request body: \(refusal)")
        answer(&request, decision, label: "reject", now)
    }
}
