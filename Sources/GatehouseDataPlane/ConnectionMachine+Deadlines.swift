import GatehouseCore

extension ConnectionMachine {
    /// When `deadlinePassed` must be called next (monotonic ns), if ever. Every phase has one, so no
    /// connection and no upstream can be held forever by a peer that stops.
    public var deadline: UInt64? { earliestDeadline(phase) }

    /// `deadline` with the phase passed in borrowed: a payload bound from `self.phase` is a copy (its request and
    /// response retained and released on every call, once or twice per request; uprobes), one bound from a
    /// borrowed parameter is not.
    private func earliestDeadline(_ phase: borrowing Phase) -> UInt64? {
        var earliest: UInt64?
        func consider(_ t: UInt64?) {
            guard let t else { return }
            if earliest == nil || t < earliest! { earliest = t }
        }
        if let stalled = sendStalledSince { consider(stalled + nanoseconds(settings.sendTimeout)) }
        switch phase {
        case .awaitingHead(let wait):
            consider(headDeadline(wait))
        case .deciding:
            break  // the decision's own calls have their deadlines (Deadline.run)
        case .connecting(_, _, let connecting):
            consider(connecting.since + nanoseconds(settings.connectTimeout))
        case .relaying(let request, _, let response):
            if !request.bodyEnded, upstreamOut.count < Self.highWater {
                // The client must keep sending its body (unless the upstream is what holds it up).
                consider(request.lastBodyProgress + nanoseconds(settings.bodyTimeout))
            }
            if !request.bodyEnded, upstreamOut.count >= Self.highWater, clientOut.count < Self.highWater {
                // The upstream holds the body up: it must keep taking it (without this, an upstream that stops
                // reading a request and never answers held both connections forever). Not while a slow client
                // holds the upstream's response up: that may be why it stopped reading.
                consider(response.lastProgress + nanoseconds(settings.readTimeout))
            }
            switch response.stage {
            case .head:
                // Counted from the end of the request, so a long upload is not cut short.
                if let ended = response.requestEndedAt { consider(ended + nanoseconds(settings.responseTimeout)) }
            case .body:
                // The upstream must keep sending (unless the client is what holds it up).
                if clientOut.count < Self.highWater { consider(response.lastProgress + nanoseconds(settings.readTimeout)) }
            }
        case .draining(_, let since):
            consider(since + nanoseconds(settings.headerTimeout))
        case .tunnel(let until):
            consider(until)
        case .closing(.lingering(let until)):
            consider(until)
        case .closing(.afterFlush), .closed:
            break
        }
        return earliest
    }

    /// The header timeout from a head's first byte; else the idle timeout from when the last answer was written
    /// (not queued: while a slow client still reads it, the send timeout governs, so it is not cut off mid-answer).
    func headDeadline(_ wait: HeadWait) -> UInt64? {
        if let first = wait.firstByte { return first + nanoseconds(settings.headerTimeout) }
        if wait.fresh { return wait.since + nanoseconds(settings.headerTimeout) }
        return clientOut.isEmpty ? wait.since + nanoseconds(settings.idleTimeout) : nil
    }

    /// Acts on every deadline that has passed by `now`.
    public mutating func deadlinePassed(now: UInt64) {
        if let stalled = sendStalledSince, stalled + nanoseconds(settings.sendTimeout) <= now {
            // The client stopped reading: what is queued for it (and the upstream behind it) is let go.
            clientOut.removeAll()
            clientFailed(now: now)
            return
        }
        switch phase {
        case .awaitingHead(let wait):
            if let limit = headDeadline(wait), limit <= now { close(now) }
        case .deciding:
            break
        case .connecting(_, _, let connecting):
            guard connecting.since + nanoseconds(settings.connectTimeout) <= now else { return }
            actions.append(.closeUpstream)
            upstreamUnavailable(.timedOut, now: now)
        case .relaying(var request, _, let response):
            if !request.bodyEnded, upstreamOut.count < Self.highWater, request.lastBodyProgress + nanoseconds(settings.bodyTimeout) <= now {
                // The body stopped coming: free the upstream connection and end this one.
                upstreamIn.removeAll()
                upstreamOut.removeAll()
                if response.headStarted {
                    request.status = 408
                    abandon(request, status: 408, now)  // closes the upstream too (once: a second close could hit a reused fd)
                } else {
                    actions.append(.closeUpstream)
                    request.closeAfter = true
                    request.bodyEnded = true
                    answer(&request, .deny(status: 408, error: "request_timeout", message: "The request body stopped arriving.",
                                           explanation: "no request body data within server.body_timeout"), label: "reject", now)
                }
                return
            }
            if !request.bodyEnded, upstreamOut.count >= Self.highWater, clientOut.count < Self.highWater,
                response.lastProgress + nanoseconds(settings.readTimeout) <= now
            {
                // The upstream stopped taking the request body.
                actions.append(.upstreamError("timeout"))
                request.upstreamError = "timeout"
                upstreamIn.removeAll()
                upstreamOut.removeAll()
                if response.headStarted {
                    actions.append(.finished(request.record))
                    close(now)
                } else {
                    actions.append(.closeUpstream)
                    request.closeAfter = true  // the rest of the body is not read: linger over it
                    answer(&request, .deny(status: 504, error: "upstream_timeout", message: "The upstream stopped reading the request.",
                                           explanation: "the upstream took no request body within proxy.read_timeout"), label: "upstream_timeout", now)
                }
                return
            }
            switch response.stage {
            case .head:
                if let ended = response.requestEndedAt, ended + nanoseconds(settings.responseTimeout) <= now {
                    actions.append(.closeUpstream)
                    actions.append(.upstreamError("timeout"))
                    upstreamIn.removeAll()
                    upstreamOut.removeAll()
                    request.upstreamError = "timeout"
                    answer(&request, .deny(status: 504, error: "upstream_timeout", message: "The upstream did not answer in time.",
                                           explanation: "no response head within proxy.response_timeout"), label: "upstream_timeout", now)
                    advance(now)
                }
            case .body:
                if clientOut.count < Self.highWater, response.lastProgress + nanoseconds(settings.readTimeout) <= now {
                    // The upstream stalled mid-response: the response cannot be finished, so both connections go.
                    actions.append(.upstreamError("read_timeout"))
                    request.upstreamError = "read_timeout"
                    actions.append(.finished(request.record))
                    close(now)
                }
            }
        case .draining(let request, let since):
            // Answered, while the rest of the body never came: close.
            if since + nanoseconds(settings.headerTimeout) <= now {
                let request = request
                request.closeAfter = true
                actions.append(.finished(request.record))
                close(now)
            }
        case .tunnel(let until):
            if until <= now { close(now) }
        case .closing(.lingering(let until)):
            if until <= now { close(now) }
        case .closing(.afterFlush), .closed:
            break
        }
    }
}
