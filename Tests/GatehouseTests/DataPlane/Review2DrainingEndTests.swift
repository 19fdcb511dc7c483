import GatehouseCore
import GatehouseDataPlane
import Testing

/// The loop now writes at the end of its pass (8e1f7de), so an answer the machine queued may not be written yet
/// when the same pass reads the client's end of input. A local answer given while a small body is still coming
/// (`.draining`) must still go out then, as one given with `Connection: close` does
/// (`clientThatClosedBeforeTheFlushIsNotLingeredFor`): the client ending mid-body abandons the body, not the
/// answer that is already complete.
@Suite("Connection machine: an unwritten answer and the client's end (review2)")
struct Review2DrainingEndTests {
    @Test func aLocalAnswerNotWrittenYetWhenTheClientEndsMidBodyStillGoesOut() {
        var d = MachineDriver()
        d.autoWrite = false  // the loop has not got to writing: it writes at the end of the pass
        d.client("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n01234")
        d.decide(deny(401))
        d.clientEOF()
        d.writeQueued()
        #expect(responses(d.takeClient()).map(\.status) == [401], "the queued 401 was dropped when the client's end came in the same pass")
        #expect(d.clientClosed && !d.clientWriteShut)
        #expect(d.finished.count == 1)
        #expect(d.problems.isEmpty)
    }

    /// An answer the upstream completed before the body did (`.draining` too) is the same case.
    @Test func anUpstreamAnswerNotWrittenYetWhenTheClientEndsMidBodyStillGoesOut() {
        var d = MachineDriver()
        d.client("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n01234")
        d.decide(forward("POST /x HTTP/1.1\r\nHost: app\r\nContent-Length: 10\r\n\r\n"))
        d.attach()
        d.autoWrite = false
        d.upstreamSends("HTTP/1.1 413 Payload Too Large\r\nContent-Length: 2\r\n\r\nno")
        d.clientEOF()
        d.writeQueued()
        #expect(responses(d.takeClient()).map(\.status) == [413], "the relayed 413 was dropped when the client's end came in the same pass")
        #expect(d.clientClosed)
        #expect(d.problems.isEmpty)
    }
}
