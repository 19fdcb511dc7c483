import GatehouseDataPlane
import Testing

/// Every phase that waits on a peer has a deadline, and each one ends the wait the way it should.
@Suite("Connection machine: deadlines and connection lifetime")
struct MachineDeadlineTests {
    @Test func freshConnectionWithoutARequestClosesAtTheHeaderTimeout() {
        var d = MachineDriver()
        #expect(d.machine.deadline != nil)
        d.elapse(9.9)
        #expect(!d.clientClosed)
        d.elapse(0.2)
        #expect(d.clientClosed && d.finished.isEmpty)
    }

    @Test func idleKeepAliveConnectionClosesAtTheIdleTimeout() {
        var d = MachineDriver()
        d.client("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        d.decide(deny(404))
        d.elapse(59.9)
        #expect(!d.clientClosed)
        d.elapse(0.2)
        #expect(d.clientClosed)
    }

    @Test func idleTimeoutRunsFromWhenTheLastAnswerWasWrittenNotQueued() {
        var d = MachineDriver()
        d.client("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        d.decide(forward())
        d.attach()
        d.clientReading = false
        d.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n" + String(repeating: "s", count: 200_000))
        #expect(d.finished.count == 1)
        // A slow client, reading a little every 50 s: never stalled for the send timeout, so never cut off.
        for _ in 0..<3 {
            d.elapse(50)
            d.clientReads(1000)
        }
        #expect(!d.clientClosed)
        d.clientResumesReading()
        #expect(d.takeClient().utf8.count > 200_000)
        d.elapse(59.9)
        #expect(!d.clientClosed)
        d.elapse(0.2)
        #expect(d.clientClosed)
    }

    @Test func partialHeadOnAnIdleConnectionGetsTheHeaderTimeoutFromItsFirstByte() {
        var d = MachineDriver()
        d.client("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        d.decide(deny(404))
        d.elapse(30)
        d.client("GET / HT")
        d.elapse(9.9)
        #expect(!d.clientClosed)
        d.elapse(0.2)
        #expect(d.clientClosed)
        #expect(d.decideCount == 1)
    }

    @Test func slowlorisTricklingAHeadIsCutOffAtTheHeaderTimeout() {
        var d = MachineDriver()
        d.elapse(3)
        d.client("G")
        for piece in ["ET / ", "HTTP/1.1\r\n", "Host: a\r\n", "X-A: 1\r\n"] {
            d.elapse(2.4)
            d.client(piece)
        }
        #expect(!d.clientClosed)
        d.elapse(0.5)  // 10.1 s after the first byte
        #expect(d.clientClosed && d.decideCount == 0)
    }

    @Test func bodyThatNeverEndsAfterALocalAnswerIsClosed() {
        var d = MachineDriver()
        d.client("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
        d.decide(deny(403))
        #expect(responses(d.takeClient()).map(\.status) == [403])
        #expect(d.machine.deadline != nil)
        d.elapse(9.9)
        #expect(!d.clientClosed)
        d.elapse(0.2)
        #expect(d.clientClosed)
        #expect(d.finished.map(\.status) == [403])
        #expect(d.problems.isEmpty)
    }

    @Test func bodyThatNeverEndsAfterAnEarlyUpstreamAnswerIsClosed() {
        var d = MachineDriver()
        d.client("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
        d.decide(forward("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n"))
        d.attach()
        d.upstreamSends("HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n")
        #expect(responses(d.takeClient()).map(\.status) == [413])
        // The upstream did not read the whole request: its connection cannot carry another.
        #expect(d.count(.closeUpstream) == 1 && d.count(.releaseUpstream) == 0)
        #expect(d.machine.deadline != nil)
        d.elapse(10.1)
        #expect(d.clientClosed)
        #expect(d.finished.map(\.status) == [413])
        #expect(d.problems.isEmpty)
    }

    @Test func largeBodyAfterAnEarlyUpstreamAnswerSaysCloseThenLingers() {
        var d = MachineDriver()
        d.client("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n" + String(repeating: "u", count: 1000))
        d.decide(forward("POST / HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n"))
        d.attach()
        d.upstreamSends("HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n")
        #expect(d.takeClient() == "HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nVia: 1.1 gatehouse\r\nConnection: close\r\n\r\n")
        d.client(String(repeating: "u", count: 70 * 1024))
        #expect(d.clientWriteShut && !d.clientClosed)
        #expect(d.finished.map(\.status) == [413])
        #expect(d.problems.isEmpty)
    }

    @Test func bodyThatEndsAfterAnEarlyUpstreamAnswerKeepsTheConnection() {
        var d = MachineDriver()
        d.client("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
        d.decide(forward("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n"))
        d.attach()
        d.upstreamSends("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        d.client("defghijGET /n HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(d.decidedTargets == ["/", "/n"])
        #expect(!d.takeUpstream().contains("defg"))
    }

    @Test func relayedBodyThatStopsIs408() {
        var d = MachineDriver()
        d.client("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
        d.decide(forward("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n"))
        d.attach()
        d.elapse(29.9)
        #expect(d.clientGot.isEmpty)
        d.elapse(0.2)
        let seen = responses(d.takeClient())
        #expect(seen.map(\.status) == [408] && seen[0].value("connection") == "close")
        #expect(d.count(.closeUpstream) == 1)
        #expect(d.problems.isEmpty)
    }

    @Test func relayedBodyThatStopsAfterTheResponseHeadClosesBoth() {
        var d = MachineDriver()
        d.client("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
        d.decide(forward("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n"))
        d.attach()
        d.upstreamSends("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        d.elapse(30.1)
        #expect(d.clientClosed)
        #expect(d.count(.closeUpstream) == 1)
        #expect(d.finished.map(\.status) == [408])
        #expect(d.problems.isEmpty)
    }

    @Test func tunnelEndsAtItsLifetime() {
        var d = MachineDriver()
        d.client("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        d.decide(forward(tunnel: 120))
        d.attach()
        d.upstreamSends("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        d.elapse(119.9)
        #expect(!d.clientClosed)
        d.client("ping")
        d.upstreamSends("pong")
        d.elapse(0.2)
        #expect(d.clientClosed && d.count(.closeUpstream) == 1)
    }

    /// Walks one connection through every phase that waits on a peer and asks for its deadline in each.
    @Test func everyPhaseThatWaitsOnAPeerHasADeadline() {
        var d = MachineDriver()
        var missing: [String] = []
        func check(_ d: MachineDriver, _ phase: String) {
            if d.machine.deadline == nil { missing.append(phase) }
        }
        check(d, "new connection")
        d.client("POST / HT")
        check(d, "partial head")
        d.client("TP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab")
        d.decide(forward("POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\n"))
        check(d, "connecting")
        d.attach()
        check(d, "relaying the request body")
        d.client("cd")
        check(d, "awaiting the response head")
        d.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nok")
        check(d, "relaying the response body")
        d.upstreamSends("ok")
        check(d, "idle keep-alive")
        d.client("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab")
        d.decide(deny(403))
        check(d, "draining after a local answer")
        d.client("cd")
        d.client("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        d.decide(forward(tunnel: 3600))
        d.attach()
        d.upstreamSends("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
        check(d, "tunnel")
        #expect(missing.isEmpty, "no deadline while \(missing)")

        var lingering = MachineDriver()
        lingering.client("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
        lingering.decide(deny(403))
        #expect(lingering.clientWriteShut && lingering.machine.deadline != nil)

        var stalledClient = MachineDriver()
        stalledClient.clientReading = false
        stalledClient.client("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        stalledClient.decide(deny(403))
        #expect(stalledClient.machine.deadline != nil, "closing after the flush, client not reading")
    }

    @Test func upstreamThatStopsReadingTheRequestBodyHasADeadline() {
        var d = MachineDriver()
        d.client("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n")
        d.decide(forward("POST / HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n"))
        d.upstreamReading = false
        d.attach()
        d.client(String(repeating: "x", count: 300 * 1024))
        #expect(!d.machine.wantsClientRead)
        // Neither the client (held back by us) nor anything else is being waited for except the upstream.
        #expect(d.machine.deadline != nil)
        d.elapse(59.9)
        #expect(d.upstream == .attached)
        d.elapse(0.2)
        #expect(d.upstream == .none && d.upstreamErrors == ["timeout"])
        let seen = responses(d.takeClient())
        #expect(seen.map(\.status) == [504] && seen[0].value("connection") == "close")
        // The client is mid-upload: close in stages.
        #expect(d.clientWriteShut)
        #expect(d.problems.isEmpty)
    }

    @Test func upstreamHeldUpBySlowClientIsNotBlamedForNotReadingTheBody() {
        var d = MachineDriver()
        d.client("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n")
        d.decide(forward("POST / HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n"))
        d.upstreamReading = false
        d.attach()
        d.client(String(repeating: "x", count: 300 * 1024))
        // Full duplex: the upstream streams its answer while the upload goes on, and the client reads slowly.
        d.clientReading = false
        d.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 900000\r\n\r\n" + String(repeating: "r", count: 300 * 1024))
        for _ in 0..<3 {
            d.elapse(50)
            d.clientReads(1000)
        }
        #expect(!d.clientClosed && d.upstream == .attached)
        #expect(d.upstreamErrors.isEmpty)
    }

    @Test func bodyTimeoutDoesNotCountTimeTheUpstreamHeldTheBodyUp() {
        var d = MachineDriver()
        d.client("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n")
        d.decide(forward("POST / HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n"))
        d.upstreamReading = false
        d.attach()
        d.client(String(repeating: "x", count: 300 * 1024))
        #expect(!d.machine.wantsClientRead)
        d.elapse(20)
        d.upstreamResumesReading()
        #expect(d.machine.wantsClientRead)
        // The client could not send for 20 s because of us: it has its whole body timeout from now.
        d.elapse(29)
        #expect(d.clientGot.isEmpty && !d.clientClosed)
        d.client("more")
        d.elapse(29)
        #expect(d.clientGot.isEmpty && !d.clientClosed)
    }

    @Test func halfCloseAfterACompleteRequestStillGetsItsResponse() {
        var d = MachineDriver()
        d.client("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        d.clientEOF()
        #expect(!d.clientClosed)
        d.decide(forward())
        d.attach()
        d.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        #expect(responses(d.takeClient()).map(\.body) == ["ok"])
        #expect(d.clientClosed && d.lostAtClose.isEmpty && !d.clientWriteShut)
        #expect(d.count(.releaseUpstream) == 1)
    }

    @Test func halfCloseAfterACompletePostWhileDecidingStillGetsItsResponse() {
        var d = MachineDriver()
        d.client("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
        d.clientEOF()
        #expect(d.finished.isEmpty && !d.clientClosed)
        d.decide(forward("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n"))
        d.attach()
        #expect(d.takeUpstream() == "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
        d.upstreamSends("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
        #expect(responses(d.takeClient()).map(\.status) == [201])
        #expect(d.finished.map(\.status) == [201] && d.clientClosed)
        #expect(d.problems.isEmpty)
    }

    @Test func halfCloseAfterACompleteChunkedBodyWhileConnectingStillGetsItsResponse() {
        var d = MachineDriver()
        d.client("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
        d.decide(forward("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", chunked: true))
        d.clientSendsThenEOF("3\r\nabc\r\n0\r\n\r\n")
        #expect(d.finished.isEmpty && !d.clientClosed)
        d.attach()
        #expect(d.takeUpstream().hasSuffix("3\r\nabc\r\n0\r\n\r\n"))
        d.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        #expect(d.finished.map(\.status) == [200])
    }

    @Test func halfCloseWithAnIncompleteBodyWhileDecidingIsAbandoned() {
        var d = MachineDriver()
        d.client("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nabc")
        d.clientEOF()
        #expect(d.finished.map(\.status) == [499] && d.clientClosed)
    }

    @Test func halfCloseWithTheBodyHeldBackByASlowUpstreamStillGetsItsResponse() {
        var d = MachineDriver()
        let size = 300 * 1024
        d.client("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \(size)\r\n\r\n")
        d.decide(forward("POST / HTTP/1.1\r\nContent-Length: \(size)\r\n\r\n"))
        d.upstreamReading = false
        d.attach()
        d.client(String(repeating: "a", count: 200 * 1024))
        // The rest and the end, read in one go while the upstream is not taking more.
        d.clientSendsThenEOF(String(repeating: "b", count: 100 * 1024))
        #expect(d.finished.isEmpty && d.upstream == .attached)
        d.upstreamResumesReading()
        #expect(d.takeUpstream().utf8.count == "POST / HTTP/1.1\r\nContent-Length: \(size)\r\n\r\n".utf8.count + size)
        d.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        #expect(d.finished.map(\.status) == [200] && d.clientClosed)
        #expect(d.problems.isEmpty)
    }

    @Test func halfCloseAfterPipelinedRequestsAnswersEachOfThem() {
        var d = MachineDriver()
        d.client("GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HT")
        d.clientEOF()
        d.decide(forward())
        d.attach()
        d.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1")
        #expect(d.decidedTargets == ["/1", "/2"])
        d.decide(deny(404))
        // The third never became a request: the connection ends after the second answer.
        #expect(responses(d.takeClient()).map(\.status) == [200, 404])
        #expect(d.decideCount == 2 && d.clientClosed)
        #expect(d.problems.isEmpty)
    }

    @Test func halfCloseReadWithTheRequestBeforeTheAnswerWasWrittenStillGetsIt() {
        var d = MachineDriver()
        // The loop read the request and the end of input in one go, and has not written the answer yet.
        d.autoWrite = false
        d.client("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        d.decide(deny(403))
        d.clientEOF()
        d.autoWrite = true
        d.writeQueued()
        #expect(responses(d.takeClient()).map(\.status) == [403])
        #expect(d.lostAtClose.isEmpty && d.clientClosed)
    }

    @Test func pipelinedAnswerNotYetWrittenIsNotLostWhenTheClientLeavesMidHead() {
        var d = MachineDriver()
        d.autoWrite = false
        d.client("GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HT")
        d.decide(deny(404))
        d.clientEOF()
        d.autoWrite = true
        d.writeQueued()
        #expect(responses(d.takeClient()).map(\.status) == [404])
        #expect(d.lostAtClose.isEmpty && d.clientClosed)
    }

    @Test func quiesceClosesAnIdleConnectionNow() {
        var d = MachineDriver()
        d.client("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        d.decide(deny(404))
        d.quiesce()
        #expect(d.clientClosed)
    }

    @Test func quiesceDoesNotDropAnAnswerNotYetWritten() {
        var d = MachineDriver()
        d.autoWrite = false
        d.client("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        d.decide(deny(404))
        d.quiesce()
        d.autoWrite = true
        d.writeQueued()
        #expect(responses(d.takeClient()).map(\.status) == [404])
        #expect(d.lostAtClose.isEmpty && d.clientClosed)
    }

    @Test func quiesceLetsABusyConnectionFinishWithConnectionClose() {
        var d = MachineDriver()
        d.client("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        d.decide(forward())
        d.attach()
        d.quiesce()
        #expect(!d.clientClosed)
        d.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        let seen = responses(d.takeClient())
        #expect(seen.map(\.status) == [200] && seen[0].value("connection") == "close")
        #expect(d.clientClosed && d.count(.releaseUpstream) == 1)
    }

    @Test func quiesceWhileDecidingAnswersWithConnectionClose() {
        var d = MachineDriver()
        d.client("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
        d.quiesce()
        d.decide(deny(403))
        #expect(responses(d.takeClient()).first?.value("connection") == "close")
        #expect(d.decideCount == 1)
    }
}
