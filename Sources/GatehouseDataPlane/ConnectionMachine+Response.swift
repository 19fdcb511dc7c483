import GatehouseCore
import GatehouseHTTP1

extension ConnectionMachine {
    /// The upstream connection asked for is there (`reused`: from the pool). Ignored if the request is gone:
    /// the loop then gets `.closeUpstream` back for it.
    public mutating func upstreamAttached(reused: Bool, now: UInt64) {
        guard case .connecting = phase else {
            actions.append(.closeUpstream)
            return
        }
        upstreamIn.removeAll()
        upstreamOut.removeAll()
        // The exchange's objects are reached through the phase borrowed and the transition is made in place:
        // bound out of `self.phase` and put back, the request and the plan were retained and released here.
        let attaching = Self.queueHead(of: phase, into: &upstreamOut, now: now)
        let limits = settings.http1Limits
        if responseParser.limits == limits {
            responseParser.reset(requestWasHead: attaching.isHeadMethod)
        } else {
            responseParser = ResponseHeadParser(limits: limits, requestWasHead: attaching.isHeadMethod)
        }
        let requestEndedAt = attaching.bodyEnded ? now : nil
        let response: Response
        if let reusable = spare.takeResponse() {
            reusable.restart(reused: reused, retried: attaching.retry, requestEndedAt: requestEndedAt, lastProgress: now)
            response = reusable
        } else {
            response = Response(reused: reused, retried: attaching.retry, requestEndedAt: requestEndedAt, lastProgress: now)
        }
        if attaching.bodyEnded, attaching.chunkedBody { upstreamOut.append("0\r\n\r\n") }
        phase.startRelaying(response)
        advance(now)
    }

    /// What attaching a connecting exchange needs of it, as plain values, after queueing its head for the
    /// upstream and noting when it started.
    private struct Attaching {
        var isHeadMethod = false
        var bodyEnded = false
        var retry = false
        var chunkedBody = false
    }

    private static func queueHead(of phase: borrowing Phase, into upstreamOut: inout ByteQueue, now: UInt64) -> Attaching {
        switch phase {
        case .connecting(let request, let plan, let connecting):
            plan.head.withUnsafeBytes { upstreamOut.append($0) }
            request.upstreamStarted = now
            return Attaching(isHeadMethod: request.isHeadMethod, bodyEnded: request.bodyEnded, retry: connecting.retry, chunkedBody: plan.chunkedBody)
        default:
            return Attaching()  // not reached: the caller checked the phase
        }
    }

    public mutating func upstreamUnavailable(_ reason: UpstreamUnavailable, now: UInt64) {
        guard case .connecting(var request, _, _) = phase else { return }
        let decision: Decision
        switch reason {
        case .timedOut:
            request.upstreamError = "connect_timeout"
            decision = .deny(status: 504, error: "upstream_timeout", message: "The upstream could not be reached in time.",
                             explanation: "upstream connect timed out")
        case .refused:
            request.upstreamError = "connect_failed"
            decision = .deny(status: 502, error: "upstream_unavailable", message: "The upstream is not reachable.",
                             explanation: "upstream connect failed")
        case .tls(let why):
            // A certificate that is untrusted or names another host: nothing was sent. Said as such, so
            // operators do not look for a crashed upstream.
            request.upstreamError = "tls_failed"
            decision = .deny(status: 502, error: "upstream_unavailable", message: "The upstream's TLS certificate could not be verified.",
                             explanation: "upstream TLS handshake failed: \(why)")
        }
        actions.append(.upstreamError(request.upstreamError!))
        answer(&request, decision, label: "upstream_error", now)
        advance(now)
    }

    /// Bytes from the upstream were added to `upstreamIn`.
    public mutating func upstreamReceived(now: UInt64) {
        relayResponse(now)
        if case .awaitingHead = phase { advance(now) }
    }

    /// Relays what `upstreamIn` holds: the response head (rewritten), then the body, as far as the client
    /// side takes it.
    mutating func relayResponse(_ now: UInt64) {
        switch phase {
        case .tunnel:
            if !upstreamIn.isEmpty, clientOut.count < Self.highWater {
                upstreamIn.withReadable { clientOut.append($0) }
                upstreamIn.removeAll()
            }
            return
        case .relaying:
            break
        default:
            return
        }
        guard case .relaying(let request, let plan, let response) = phase else { return }
        if !upstreamIn.isEmpty { response.lastProgress = now }
        while true {
            switch response.stage {
            case .head:
                guard !upstreamIn.isEmpty else {
                    return
                }
                let parsed = upstreamIn.withReadable { responseParser.parse($0) }
                switch parsed {
                case .needMore:
                    return
                case .refused(let refusal):
                    upstreamBroken(explanation: "unreadable upstream response: \(refusal)", kind: "invalid_response", now)
                    return
                case .complete(let head):
                    if case .interim = head.body {
                        // 103 Early Hints go to HTTP/1.1 clients as they came; a 100 is Gatehouse's to give.
                        if head.status != 100, request.head.version == .http11 {
                            upstreamIn.withReadable { clientOut.append(UnsafeRawBufferPointer(rebasing: $0[0..<head.length])) }
                        }
                        upstreamIn.consume(head.length)
                        responseParser.reset(requestWasHead: request.isHeadMethod)
                        continue
                    }
                    if case .switchingProtocols = head.body {
                        guard let lifetime = plan.tunnelLifetime else {
                            upstreamBroken(explanation: "the upstream switched protocols unasked", kind: "invalid_response", now)
                            return
                        }
                        guard provesWebSocketHandshake(head, plan) else {
                            upstreamBroken(explanation: "a 101 without the Sec-WebSocket-Accept for the request's key", kind: "invalid_response", now)
                            return
                        }
                        startTunnel(request, head, lifetime: lifetime, now)
                        return
                    }
                    if plan.tunnelLifetime != nil {
                        // A refused upgrade: answered, then both connections end (an upstream that says 200 to an
                        // upgrade must never be taken as having switched).
                        request.closeAfter = true
                        response.keepAlive = false
                    }
                    beginResponseBody(request, response, head, plan, now)
                }
            case .body(var decoder, let copyFraming):
                while clientOut.count < Self.highWater {
                    let event = upstreamIn.withReadable { decoder.decode($0, from: 0) }
                    switch event {
                    case .data(let range):
                        request.bodyBytesSent += range.count
                        if copyFraming {
                            clientOut.append(from: upstreamIn, range: 0..<range.upperBound)
                        } else {
                            clientOut.append(from: upstreamIn, range: range)
                        }
                        upstreamIn.consume(range.upperBound)
                    case .needMore:
                        if copyFraming { clientOut.append(from: upstreamIn, range: 0..<upstreamIn.count) }
                        upstreamIn.consume(upstreamIn.count)
                        response.stage = .body(decoder, copyFraming: copyFraming)
                        return
                    case .end(let at):
                        if copyFraming { clientOut.append(from: upstreamIn, range: 0..<at) }
                        upstreamIn.consume(at)
                        responseComplete(now)
                        return
                    case .refused(let refusal):
                        upstreamBroken(explanation: "unreadable upstream response body: \(refusal)", kind: "invalid_response", now)
                        return
                    }
                }
                response.stage = .body(decoder, copyFraming: copyFraming)
                return
            }
        }
    }

    private mutating func beginResponseBody(_ request: Request, _ response: Response, _ head: ResponseHead, _ plan: Forwarding,
                                            _ now: UInt64) {
        let clientVersion = request.head.version
        let framing: ResponseHeadRewriter.ClientFraming
        var copyFraming = false
        switch head.body {
        case .chunked where clientVersion == .http11:
            framing = .chunked
            copyFraming = true
        case .chunked, .untilClose:
            // An HTTP/1.0 client gets the data close-delimited; a body that ends at the upstream's close ends
            // the client's connection too.
            framing = .untilClose
            request.closeAfter = true
        default:
            framing = .asUpstream
        }
        if !head.keepAlive { response.keepAlive = false }
        if quiescing { request.closeAfter = true }
        if !request.bodyEnded {
            // Answered before the whole body was sent (an upstream's early 413, say): if the rest will not fit the
            // discard budget the connection ends after this response, so say so now, as a local answer does —
            // else a pooled client sends its next request on a connection about to close.
            request.discardLeft = settings.discardBudget
            if !request.restFits { request.closeAfter = true }
        }
        request.status = head.status
        if let started = request.upstreamStarted { request.upstreamNanoseconds = now - started }
        upstreamIn.withReadable { b in
            ResponseHeadRewriter.write(head, from: b, clientVersion: clientVersion, framing: framing, keepAlive: !request.closeAfter,
                                       rewrite: plan.response, into: &clientOut)
        }
        upstreamIn.consume(head.length)
        response.stage = .body(BodyDecoder(head.body, limits: settings.http1Limits), copyFraming: copyFraming)
    }

    /// The response is relayed to its end: the upstream connection goes back to the pool if it can carry
    /// another request, and the exchange ends (or its body is drained first, after an early answer).
    private mutating func responseComplete(_ now: UInt64) {
        guard case .relaying(let request, let plan, let response) = phase else { return }
        let reusable = response.keepAlive && upstreamIn.isEmpty && request.bodyEnded && upstreamOut.isEmpty
        actions.append(reusable ? .releaseUpstream : .closeUpstream)
        upstreamIn.removeAll()
        upstreamOut.removeAll()
        plan.clear()
        spare.forwarding = plan
        spare.response = response
        if request.bodyEnded {
            finish(request, now)
            return
        }
        // The upstream answered before reading the whole body: that connection is not reused, and the rest
        // of the body is read and dropped within the budget.
        request.discardLeft = settings.discardBudget
        phase = .draining(request, since: now)
        advance(now)
    }

    /// The upstream closed its side.
    public mutating func upstreamEndedInput(now: UInt64) {
        if case .relaying(_, _, let response) = phase {
            // Whatever completes with the bytes read before this end, the connection is done: never pooled.
            response.keepAlive = false
        }
        relayResponse(now)
        switch phase {
        case .relaying(_, _, let response):
            if case .body(var decoder, _) = response.stage, decoder.endOfInput() == nil {
                // A close-delimited body ends here.
                response.keepAlive = false
                responseComplete(now)
                return
            }
            upstreamLost(now)
        case .tunnel:
            // One side is done: let the client read what is queued, then end both.
            actions.append(.closeUpstream)
            startClosing(linger: false, now)
        default:
            break
        }
    }

    /// The upstream connection failed (a reset, an error).
    public mutating func upstreamFailed(now: UInt64) {
        switch phase {
        case .relaying:
            upstreamLost(now)
        case .tunnel:
            actions.append(.closeUpstream)
            startClosing(linger: false, now)
        default:
            break
        }
    }

    /// The upstream connection ended before its response did.
    private mutating func upstreamLost(_ now: UInt64) {
        guard case .relaying(let request, let plan, let response) = phase else { return }
        actions.append(.closeUpstream)
        if case .head = response.stage, response.reused, plan.retryable, !response.retried, request.bodyEnded, request.bodyBytes == 0 {
            // A pooled keep-alive connection the upstream had already closed: send the request once more on a
            // new connection (it is bodiless and idempotent: nothing of it can have been processed twice).
            actions.append(.upstreamError("stale_connection_retried"))
            phase = .connecting(request, plan, Connecting(since: now, retry: true))
            actions.append(.acquireUpstream(plan.upstream, fresh: true))
            return
        }
        upstreamBroken(explanation: "upstream connection lost", kind: "connection_lost", now, alreadyClosed: true)
    }

    /// The exchange with the upstream cannot go on: 502 if nothing of the response was sent, else the only
    /// honest signal left is closing the client's connection.
    mutating func upstreamBroken(explanation: String, kind: String, _ now: UInt64, alreadyClosed: Bool = false) {
        guard case .relaying(var request, _, let response) = phase else { return }
        if !alreadyClosed { actions.append(.closeUpstream) }
        actions.append(.upstreamError(kind))
        upstreamIn.removeAll()
        upstreamOut.removeAll()
        request.upstreamError = kind
        if response.headStarted {
            actions.append(.finished(request.record))
            closeClientNow()
            return
        }
        let message = kind == "connection_lost" ? "The upstream closed the connection without answering." : "The upstream's response could not be read."
        answer(&request, .deny(status: 502, error: "upstream_error", message: message, explanation: explanation), label: "upstream_error", now)
        advance(now)
    }

    /// One `Sec-WebSocket-Accept`, equal to the one the plan expects (when it expects one).
    private func provesWebSocketHandshake(_ head: ResponseHead, _ plan: Forwarding) -> Bool {
        guard let expected = plan.webSocketAccept else { return true }
        return upstreamIn.withReadable { b in
            var matches = 0
            for field in head.fields where FieldName.equal(UnsafeRawBufferPointer(rebasing: b[field.name]), "sec-websocket-accept") {
                guard Array(UnsafeRawBufferPointer(rebasing: b[field.value])) == expected else { return false }
                matches += 1
            }
            return matches == 1 && !expected.isEmpty
        }
    }

    /// After the upstream's 101: forward it, then relay bytes both ways.
    private mutating func startTunnel(_ request: Request, _ head: ResponseHead, lifetime: Double, _ now: UInt64) {
        let request = request
        request.status = 101
        request.label = "upgrade"
        if let started = request.upstreamStarted { request.upstreamNanoseconds = now - started }
        upstreamIn.withReadable { b in
            clientOut.append("HTTP/1.1 101 Switching Protocols\r\n")
            var upgrade: Range<Int>?
            for field in head.fields {
                let name = UnsafeRawBufferPointer(rebasing: b[field.name])
                if FieldName.equal(name, "upgrade") { upgrade = field.value }
                if FieldName.isHopByHop(name) { continue }
                clientOut.append(UnsafeRawBufferPointer(rebasing: b[field.line]))
            }
            clientOut.append("Connection: Upgrade\r\nUpgrade: ")
            if let upgrade { clientOut.append(UnsafeRawBufferPointer(rebasing: b[upgrade])) } else { clientOut.append("websocket") }
            clientOut.append("\r\n\r\n")
        }
        upstreamIn.consume(head.length)
        actions.append(.finished(request.record))
        phase = .tunnel(until: now + nanoseconds(lifetime))
        // What either side sent after the handshake is the tunnel's.
        relayResponse(now)
        advance(now)
    }
}
