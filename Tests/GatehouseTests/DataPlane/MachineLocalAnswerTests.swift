import GatehouseCore
import GatehouseDataPlane
import Testing

/// Answers made by Gatehouse itself: what happens to the unread body, to the connection, and to bytes after a
/// head that is refused.
@Suite("Connection machine: local answers and refusals")
struct MachineLocalAnswerTests {
    @Test func smallUnreadBodyIsDrainedAndTheNextRequestParsed() {
        var d = MachineDriver()
        d.client("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n01234")
        d.decide(deny(403))
        let seen = responses(d.takeClient())
        #expect(seen.map(\.status) == [403])
        #expect(seen.first?.value("connection") == nil)
        #expect(d.finished.isEmpty)  // the body is still being read
        // The rest of the body is dropped; what follows it is the next request.
        d.client("56789GET /n HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(d.finished.map(\.status) == [403])
        #expect(d.decidedTargets == ["/x", "/n"])
        #expect(d.upstreamGot.isEmpty && d.acquires.isEmpty)
        #expect(!d.clientClosed && !d.clientWriteShut)
        #expect(d.problems.isEmpty)
    }

    @Test func largeUnreadBodySaysCloseThenLingers() {
        var d = MachineDriver()
        d.client("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n" + String(repeating: "b", count: 1000))
        d.decide(deny(401))
        let seen = responses(d.takeClient())
        #expect(seen.map(\.status) == [401])
        #expect(seen.first?.value("connection") == "close")
        // Closing in stages: our side is shut, what the client still sends is read and dropped.
        #expect(d.clientWriteShut && !d.clientClosed)
        #expect(d.machine.wantsClientRead)
        d.client(String(repeating: "b", count: 5000) + "GET /never HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(d.decideCount == 1)
        #expect(d.machine.deadline != nil)
        d.elapse(1.9)
        #expect(!d.clientClosed)
        d.elapse(0.2)
        #expect(d.clientClosed)
        #expect(d.finished.map(\.status) == [401])
        #expect(d.problems.isEmpty)
    }

    @Test func clientThatClosedBeforeTheFlushIsNotLingeredFor() {
        var d = MachineDriver()
        d.clientReading = false
        d.client("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n")
        d.decide(deny(401))
        d.clientEOF()
        d.clientResumesReading()
        #expect(responses(d.takeClient()).map(\.status) == [401])
        // Its end of input came already: nothing to wait for.
        #expect(d.clientClosed && !d.clientWriteShut)
    }

    @Test func lingeringEndsWhenTheClientCloses() {
        var d = MachineDriver()
        d.client("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n")
        d.decide(deny(401))
        #expect(d.clientWriteShut && !d.clientClosed)
        d.clientEOF()
        #expect(d.clientClosed)
    }

    @Test func chunkedUnreadBodySaysCloseThenLingers() {
        var d = MachineDriver()
        d.client("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        d.decide(deny(403))
        #expect(responses(d.takeClient()).first?.value("connection") == "close")
        #expect(d.clientWriteShut && !d.clientClosed)
        d.client("0\r\n\r\nGET /never HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(d.decideCount == 1)
    }

    @Test func bodilessLocalAnswerKeepsTheConnection() {
        var d = MachineDriver()
        d.client("GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        d.decide(.answer(.deny(status: 302, error: "r", message: "m", extraHeaders: [("Location", "/sign-in")], explanation: "e"),
                         label: "redirect", closeConnection: false))
        let seen = responses(d.takeClient())
        #expect(seen.map(\.status) == [302] && seen[0].value("location") == "/sign-in")
        #expect(seen[0].body.hasSuffix("\n") && seen[0].value("content-length") == String(seen[0].body.utf8.count))
        #expect(d.finished.map(\.label) == ["redirect"])
        #expect(!d.clientClosed && !d.clientWriteShut)
    }

    @Test func headRequestGetsNoBodyFromALocalAnswer() {
        var d = MachineDriver()
        d.client("HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n")
        d.decide(deny(403))
        let got = d.takeClient()
        #expect(got.hasPrefix("HTTP/1.1 403 Forbidden\r\n") && got.hasSuffix("\r\n\r\n"))
        #expect(!got.contains("{"))
        #expect(d.finished.first?.bodyBytesSent == 0)
    }

    @Test func continueIsNotSentOnDenyAndTheConnectionSaysClose() {
        var d = MachineDriver()
        d.client("PUT /f HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        d.decide(deny(403))
        let got = d.takeClient()
        #expect(!got.contains("100 Continue"))
        let seen = responses(got)
        #expect(seen.map(\.status) == [403])
        // The client may never send a body it was not asked for: keeping the connection would read its next
        // request as that body. So the answer says close, and the rest is lingered over.
        #expect(seen.first?.value("connection") == "close")
        #expect(d.clientWriteShut)
        d.client("GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(d.decideCount == 1)
    }

    @Test func expectingClientThatSentItsBodyAnywayKeepsTheConnection() {
        var d = MachineDriver()
        d.client("PUT /f HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc")
        d.decide(deny(403))
        #expect(responses(d.takeClient()).first?.value("connection") == nil)
        d.client("GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(d.decidedTargets == ["/f", "/next"])
    }

    @Test func closeConnectionVerdictEndsTheConnection() {
        var d = MachineDriver()
        d.client("GET /x HTTP/1.1\r\nHost: a\r\n\r\nGET /y HTTP/1.1\r\nHost: a\r\n\r\n")
        d.decide(deny(400, close: true))
        #expect(responses(d.takeClient()).first?.value("connection") == "close")
        #expect(d.decideCount == 1)
        // Bytes of a next request were there: linger, never parse them.
        #expect(d.clientWriteShut && !d.clientClosed)
        #expect(d.problems.isEmpty)
    }

    @Test(arguments: [
        ("look-alike of Transfer-Encoding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc", 400),
        ("HTTP/1.1 without Host", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400),
        ("Content-Length with Transfer-Encoding", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("two Content-Lengths", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400),
        ("bare LF", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400),
        ("CONNECT", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 501),
        ("gzip transfer coding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    ])
    func refusedHeadIsAnswered400AndNothingAfterItIsParsed(name: String, head: String, status: Int) {
        var d = MachineDriver()
        d.client(head + "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(d.decideCount == 0)
        let seen = responses(d.takeClient())
        #expect(seen.map(\.status) == [status])
        #expect(seen.first?.value("connection") == "close")
        #expect(d.finished.count == 1 && d.finished[0].refusedBeforeDecision && d.finished[0].status == status)
        // More bytes, even a well-formed request: never parsed.
        d.client("GET /later HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(d.decideCount == 0 && d.acquires.isEmpty)
        #expect(d.clientWriteShut)
        #expect(d.problems.isEmpty)
    }

    @Test func refusedPipelinedHeadIsAnsweredAfterTheResponseBeforeIt() {
        var d = MachineDriver()
        d.client("GET /ok HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n\r\nGET /after HTTP/1.1\r\nHost: a\r\n\r\n")
        d.decide(forward())
        d.attach()
        d.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        let seen = responses(d.takeClient())
        #expect(seen.map(\.status) == [200, 400])
        #expect(d.decidedTargets == ["/ok"])
    }

    @Test func nonWebSocketUpgradeIsAnsweredAsHTTP11AndIsTheLast() {
        var d = MachineDriver()
        d.client("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"
            + "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        d.decide(forward())
        d.attach()
        d.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        #expect(d.takeClient() == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nVia: 1.1 gatehouse\r\nConnection: close\r\n\r\nok")
        #expect(d.decideCount == 1)
        #expect(!d.takeUpstream().contains("PRI"))
        // The preface that followed is not a request: linger over it, then close.
        #expect(d.clientWriteShut && !d.clientClosed)
    }

    @Test func nonWebSocketUpgradeDeniedSaysClose() {
        var d = MachineDriver()
        d.client("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
        d.decide(deny(401))
        #expect(responses(d.takeClient()).first?.value("connection") == "close")
        #expect(d.clientClosed)
    }

    @Test func bodyOverMaxByContentLengthIs413BeforeAnyDecision() {
        var settings = ConnectionSettings()
        settings.maxBodyBytes = 10
        var d = MachineDriver(settings: settings)
        d.client("POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello")
        #expect(d.decideCount == 0)
        let seen = responses(d.takeClient())
        #expect(seen.map(\.status) == [413] && seen[0].value("connection") == "close")
        #expect(d.finished.count == 1 && d.finished[0].refusedBeforeDecision && d.finished[0].label == "reject")
        #expect(d.clientWriteShut)  // the body is still coming: linger
        d.client(" worldGET / HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(d.decideCount == 0)
    }

    @Test func bodyAtMaxByContentLengthIsAllowed() {
        var settings = ConnectionSettings()
        settings.maxBodyBytes = 10
        var d = MachineDriver(settings: settings)
        d.client("POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789")
        #expect(d.decideCount == 1)
    }

    @Test func chunkedBodyOverMaxMidRelayIs413AndTheUpstreamGoes() {
        var settings = ConnectionSettings()
        settings.maxBodyBytes = 10
        var d = MachineDriver(settings: settings)
        d.client("POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        d.decide(forward("POST /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", chunked: true))
        d.attach()
        #expect(d.takeUpstream().hasSuffix("5\r\nhello\r\n"))
        d.client("6\r\nworld!\r\n")
        #expect(d.count(.closeUpstream) == 1)
        #expect(d.upstreamErrors == ["client_body_too_large"])
        #expect(!d.takeUpstream().contains("world"))
        let seen = responses(d.takeClient())
        #expect(seen.map(\.status) == [413] && seen[0].value("connection") == "close")
        #expect(d.finished.map(\.status) == [413])
        // The client is still sending its body: close in stages so it reads the 413 instead of a reset.
        #expect(d.clientWriteShut && !d.clientClosed)
        #expect(d.problems.isEmpty)
    }

    @Test func chunkedBodyOverMaxAfterTheResponseHeadClosesBoth() {
        var settings = ConnectionSettings()
        settings.maxBodyBytes = 10
        var d = MachineDriver(settings: settings)
        d.client("POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        d.decide(forward("POST /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", chunked: true))
        d.attach()
        d.upstreamSends("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n")
        d.client("6\r\nworld!\r\n")
        #expect(d.count(.closeUpstream) == 1 && d.clientClosed)
        #expect(d.finished.count == 1)
        #expect(d.problems.isEmpty)
    }
}
