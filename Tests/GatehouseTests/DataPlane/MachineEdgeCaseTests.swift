import GatehouseDataPlane
import Testing

/// Less common paths through the machine: framing fields a bodiless response still carries, limits on the head,
/// answers after a 100 or a 103 was already sent.
@Suite("Connection machine: edge cases")
struct MachineEdgeCaseTests {
    @Test func headResponseSayingChunkedHasNoBodyAndThePipelineGoesOn() {
        var d = MachineDriver()
        d.client("HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET /n HTTP/1.1\r\nHost: a\r\n\r\n")
        d.decide(forward("HEAD / HTTP/1.1\r\n\r\n"))
        d.attach()
        d.upstreamSends("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n")
        #expect(d.takeClient() == "HTTP/1.1 200 OK\r\nX-A: 1\r\nVia: 1.1 gatehouse\r\n\r\n")
        #expect(d.count(.releaseUpstream) == 1)
        #expect(d.decidedTargets == ["/", "/n"])
    }

    @Test func headTooLargeIs431AndCloses() {
        var d = MachineDriver()
        d.client("GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + String(repeating: "b", count: 17 * 1024) + "\r\n\r\n")
        #expect(d.decideCount == 0)
        let seen = responses(d.takeClient())
        #expect(seen.map(\.status) == [431] && seen[0].value("connection") == "close")
        #expect(d.finished.map(\.status) == [431])
    }

    @Test func partialHeadOverTheLimitIsRefusedWithoutWaitingForItsEnd() {
        var d = MachineDriver()
        d.client("GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + String(repeating: "b", count: 17 * 1024))
        #expect(responses(d.takeClient()).map(\.status) == [431])
    }

    @Test func connectFailureAfterA100LetsTheBodyComeAndKeepsTheConnection() {
        var d = MachineDriver()
        d.client("PUT /f HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        d.decide(forward("PUT /f HTTP/1.1\r\nContent-Length: 3\r\n\r\n", sendContinue: true))
        d.unavailable(.refused)
        let seen = responses(d.takeClient())
        #expect(seen.map(\.status) == [100, 502])
        // The client was told to go on: its body comes and is dropped; the connection carries on.
        #expect(seen.last?.value("connection") == nil)
        d.client("abcGET /n HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(d.decidedTargets == ["/f", "/n"])
    }

    @Test func responseTimeoutAfterEarlyHintsIs504() {
        var d = MachineDriver()
        d.client("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        d.decide(forward())
        d.attach()
        d.upstreamSends("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")
        d.elapse(60.1)
        #expect(responses(d.takeClient()).map(\.status) == [103, 504])
        #expect(d.count(.closeUpstream) == 1 && !d.clientClosed)
    }

    @Test func http10ClientGetsALocalAnswerInHTTP10AndTheConnectionCloses() {
        var d = MachineDriver()
        d.client("GET / HTTP/1.0\r\n\r\n")
        d.decide(deny(403))
        let got = d.takeClient()
        #expect(got.hasPrefix("HTTP/1.0 403 Forbidden\r\n") && got.contains("\r\nConnection: close\r\n"))
        #expect(d.clientClosed)
    }

    @Test func pipelinedClientThatNeverReadsIsCutOffAtTheSendTimeout() {
        var settings = ConnectionSettings()
        settings.sendTimeout = 5
        var d = MachineDriver(settings: settings)
        d.clientReading = false
        d.client("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n")
        d.decide(deny(404))
        #expect(d.machine.deadline != nil)
        d.elapse(5.1)
        #expect(d.clientClosed)
    }
}
