import GatehouseDataPlane
import Testing

/// An upstream that cannot be had, does not answer, stops, or breaks the exchange — and a client that breaks it.
@Suite("Connection machine: upstream failures")
struct MachineUpstreamFailureTests {
    private func relayedGet(retryable: Bool = false, reused: Bool = false) -> MachineDriver {
        var d = MachineDriver()
        d.client("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        d.decide(forward(retryable: retryable))
        d.attach(reused: reused)
        _ = d.takeUpstream()
        return d
    }

    @Test func responseHeadTimeoutIs504() {
        var d = relayedGet()
        d.elapse(59.9)
        #expect(d.clientGot.isEmpty)
        d.elapse(0.2)
        let seen = responses(d.takeClient())
        #expect(seen.map(\.status) == [504])
        #expect(d.count(.closeUpstream) == 1 && d.upstreamErrors == ["timeout"])
        #expect(d.finished.map(\.upstreamError) == ["timeout"] && d.finished.map(\.label) == ["upstream_timeout"])
        // A timeout of the upstream is not the client's fault: its connection stays.
        #expect(!d.clientClosed)
        #expect(d.problems.isEmpty)
    }

    @Test func responseTimeoutCountsFromTheRequestsEnd() {
        var d = MachineDriver()
        d.client("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n")
        d.decide(forward())
        d.attach()
        d.elapse(25)
        d.client("a")
        d.elapse(25)
        d.client("b")
        d.elapse(59)
        #expect(d.clientGot.isEmpty)
        d.elapse(1.1)
        #expect(responses(d.takeClient()).map(\.status) == [504])
    }

    @Test func connectTimeoutIs504() {
        var d = MachineDriver()
        d.client("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        d.decide(forward())
        #expect(d.machine.deadline != nil)
        d.elapse(5.1)
        #expect(responses(d.takeClient()).map(\.status) == [504])
        #expect(d.count(.closeUpstream) == 1 && d.upstream == .none)
        #expect(d.upstreamErrors == ["connect_timeout"])
        // A late connection is given back.
        d.upstream = .acquiring
        d.attach()
        #expect(d.log.last == .closeUpstream)
        #expect(!d.clientClosed)
    }

    @Test func connectRefusedIs502() {
        var d = MachineDriver()
        d.client("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        d.decide(forward())
        d.unavailable(.refused)
        #expect(responses(d.takeClient()).map(\.status) == [502])
        #expect(d.upstreamErrors == ["connect_failed"] && d.finished.map(\.upstreamError) == ["connect_failed"])
        #expect(!d.clientClosed)
        d.client("GET /n HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(d.decidedTargets == ["/", "/n"])
    }

    @Test func tlsFailureIs502SaidAsSuch() {
        var d = MachineDriver()
        d.client("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        d.decide(forward())
        d.unavailable(.tls("certificate verify failed"))
        let seen = responses(d.takeClient())
        #expect(seen.map(\.status) == [502] && seen[0].body.contains("TLS certificate"))
        #expect(d.upstreamErrors == ["tls_failed"])
    }

    @Test func stalePooledConnectionIsRetriedOnceOnAFreshOne() {
        var d = relayedGet(retryable: true, reused: true)
        d.upstreamEOF()
        #expect(d.upstreamErrors == ["stale_connection_retried"])
        #expect(d.acquires.map(\.fresh) == [false, true])
        #expect(d.clientGot.isEmpty)
        d.attach(reused: false)
        #expect(d.takeUpstream() == "GET / HTTP/1.1\r\nHost: app\r\n\r\n")
        d.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        #expect(responses(d.takeClient()).map(\.status) == [200])
        #expect(d.problems.isEmpty)
    }

    /// A retried request whose (empty) chunked body already ended is sent whole again: head and last chunk, the
    /// terminator queued when the fresh connection attaches, since no more body will come to end it.
    @Test func aRetriedRequestWithAnEndedChunkedBodySendsItsLastChunkAgain() {
        var d = MachineDriver()
        d.client("GET /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        d.decide(forward("GET /c HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n", chunked: true, retryable: true))
        d.attach(reused: true)
        #expect(d.takeUpstream() == "GET /c HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        d.upstreamEOF()
        #expect(d.upstreamErrors == ["stale_connection_retried"])
        d.attach(reused: false)
        #expect(d.takeUpstream() == "GET /c HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        d.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        #expect(responses(d.takeClient()).map(\.status) == [200])
        #expect(d.problems.isEmpty)
    }

    @Test func retryIsNotRetriedAgain() {
        var d = relayedGet(retryable: true, reused: true)
        d.upstreamReset()
        d.attach(reused: true)
        d.upstreamEOF()
        #expect(d.acquires.count == 2)
        #expect(responses(d.takeClient()).map(\.status) == [502])
        #expect(d.upstreamErrors == ["stale_connection_retried", "connection_lost"])
    }

    @Test func freshConnectionLostIs502WithoutRetry() {
        var d = relayedGet(retryable: true, reused: false)
        d.upstreamEOF()
        #expect(d.acquires.count == 1)
        #expect(responses(d.takeClient()).map(\.status) == [502])
    }

    @Test func postWithBodyIsNotRetried() {
        var d = MachineDriver()
        d.client("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
        // Even if policy said retryable: a body was sent, it may have been processed.
        d.decide(forward("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n", retryable: true))
        d.attach(reused: true)
        d.upstreamEOF()
        #expect(d.acquires.count == 1)
        #expect(responses(d.takeClient()).map(\.status) == [502])
        #expect(d.upstreamErrors == ["connection_lost"])
    }

    @Test func partOfAResponseMeansNoRetry() {
        var d = relayedGet(retryable: true, reused: true)
        d.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234")
        d.upstreamEOF()
        #expect(d.acquires.count == 1)
        // Mid-body: the only honest signal left is closing the client's connection.
        #expect(d.clientClosed)
        #expect(d.upstreamErrors == ["connection_lost"])
        #expect(d.count(.closeUpstream) == 1)
        #expect(d.problems.isEmpty)
    }

    @Test func invalidResponseHeadIs502() {
        var d = relayedGet()
        d.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc")
        #expect(responses(d.takeClient()).map(\.status) == [502])
        #expect(d.upstreamErrors == ["invalid_response"] && d.count(.closeUpstream) == 1)
    }

    @Test func unaskedSwitchOfProtocolsIs502() {
        var d = relayedGet()
        d.upstreamSends("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
        #expect(responses(d.takeClient()).map(\.status) == [502])
        #expect(d.count(.closeUpstream) == 1)
    }

    @Test func badChunkMidRequestClosesTheUpstreamAndAnswers400() {
        var d = MachineDriver()
        d.client("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        d.decide(forward("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", chunked: true))
        d.attach()
        #expect(d.takeUpstream().hasSuffix("5\r\nhello\r\n"))
        d.client("zz\r\nbad\r\n")
        #expect(d.count(.closeUpstream) == 1 && d.upstream == .none)
        #expect(d.takeUpstream().isEmpty)
        let seen = responses(d.takeClient())
        #expect(seen.map(\.status) == [400] && seen[0].value("connection") == "close")
        #expect(d.finished.map(\.status) == [400])
        d.client("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(d.decideCount == 1)
        #expect(d.problems.isEmpty)
    }

    @Test func badChunkAfterTheResponseHeadClosesBoth() {
        var d = MachineDriver()
        d.client("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        d.decide(forward("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", chunked: true))
        d.attach()
        d.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nstreaming")
        d.client("zz\r\n")
        #expect(d.count(.closeUpstream) == 1 && d.clientClosed)
        #expect(d.finished.count == 1)
        #expect(d.problems.isEmpty)
    }

    @Test func badChunkWhileDrainingAfterAnEarlyAnswerClosesOnce() {
        var d = MachineDriver()
        d.client("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        d.decide(forward("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", chunked: true))
        d.attach()
        d.upstreamSends("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        #expect(responses(d.takeClient()).map(\.status) == [403])
        d.clientSendsThenEOF("zz\r\n")
        #expect(d.clientClosed && d.count(.closeClient) == 1)
        #expect(d.finished.map(\.status) == [403])
        #expect(d.problems.isEmpty)
    }

    @Test func upstreamStallingMidBodyIsAReadTimeout() {
        var d = relayedGet()
        d.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome")
        d.elapse(30)
        d.upstreamSends("more")
        d.elapse(59.9)
        #expect(!d.clientClosed)
        d.elapse(0.2)
        #expect(d.clientClosed && d.count(.closeUpstream) == 1)
        #expect(d.upstreamErrors == ["read_timeout"])
        #expect(d.finished.map(\.upstreamError) == ["read_timeout"])
        #expect(d.problems.isEmpty)
    }

    @Test func clientThatStopsReadingIsCutOffAtTheSendTimeout() {
        var settings = ConnectionSettings()
        settings.sendTimeout = 5
        var d = MachineDriver(settings: settings)
        d.client("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        d.decide(forward())
        d.attach()
        d.clientReading = false
        d.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome")
        #expect(d.clientGot.isEmpty && d.machine.deadline != nil)
        d.elapse(4.9)
        d.upstreamSends("more")
        #expect(!d.clientClosed)
        d.elapse(0.2)
        #expect(d.clientClosed && d.count(.closeUpstream) == 1)
        #expect(!d.upstreamErrors.contains("read_timeout"))
        #expect(d.problems.isEmpty)
    }

    @Test func clientThatReadsSlowlyIsNotCutOff() {
        var settings = ConnectionSettings()
        settings.sendTimeout = 5
        var d = MachineDriver(settings: settings)
        d.client("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        d.decide(forward())
        d.attach()
        d.clientReading = false
        d.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsome")
        d.elapse(4)
        d.clientResumesReading()
        d.clientReading = false
        d.upstreamSends("more")
        d.elapse(4)
        #expect(!d.clientClosed)
        d.clientResumesReading()
        #expect(d.finished.count == 1 && !d.clientClosed)
    }

    @Test func clientLeavingMidBodyClosesTheUpstreamAndLogs499() {
        var d = MachineDriver()
        d.client("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
        d.decide(forward("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n"))
        d.attach()
        d.clientEOF()
        #expect(d.count(.closeUpstream) == 1 && d.upstream == .none)
        #expect(d.finished.map(\.status) == [499])
        #expect(d.clientClosed)
        #expect(d.problems.isEmpty)
    }

    @Test func clientLeavingWhileConnectingCancelsTheConnect() {
        var d = MachineDriver()
        d.client("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
        d.decide(forward("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n"))
        d.clientEOF()
        #expect(d.count(.closeUpstream) == 1 && d.upstream == .none)
        #expect(d.finished.map(\.status) == [499])
    }

    @Test func clientResetMidResponseClosesTheUpstream() {
        var d = relayedGet()
        d.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome")
        d.clientReset()
        #expect(d.count(.closeUpstream) == 1 && d.clientClosed)
        #expect(d.finished.count == 1)
        #expect(d.problems.isEmpty)
    }

    @Test func upstreamEOFMidBodyClosesTheClient() {
        var d = relayedGet()
        d.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome")
        d.upstreamEOF()
        #expect(d.clientClosed && d.count(.closeUpstream) == 1)
        #expect(d.upstreamErrors == ["connection_lost"])
    }

    @Test func truncatedChunkedResponseClosesTheClient() {
        var d = relayedGet()
        d.upstreamSends("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
        d.upstreamEOF()
        #expect(d.clientClosed)
        #expect(!d.takeClient().hasSuffix("0\r\n\r\n"))
    }
}
