import GatehouseDataPlane
import Testing

/// WebSocket tunnels after a 101, and the high-water marks that stop reading one side while the other is slow.
@Suite("Connection machine: tunnels and backpressure")
struct MachineTunnelAndBackpressureTests {
    private let upgrade = "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n"

    @Test func switchingProtocolsBecomesATunnelBothWays() {
        var d = MachineDriver()
        // The client sends a frame right after its request, before the 101: it belongs to the tunnel.
        d.client(upgrade + "\u{81}\u{01}A")
        d.decide(forward("GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", tunnel: 60))
        d.attach()
        #expect(d.takeUpstream() == "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        // The upstream's first frame arrives with its 101.
        d.upstreamSends("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s\r\n\r\n\u{81}\u{02}hi")
        #expect(d.takeClient() == "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\u{81}\u{02}hi")
        #expect(d.takeUpstream() == "\u{81}\u{01}A")
        #expect(d.finished.map(\.status) == [101] && d.finished.map(\.label) == ["upgrade"])
        // Bytes that look like HTTP are just bytes now.
        d.client("GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(d.takeUpstream() == "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(d.decideCount == 1)
        d.upstreamSends("HTTP/1.1 200 OK\r\n\r\n")
        #expect(d.takeClient() == "HTTP/1.1 200 OK\r\n\r\n")
        #expect(d.machine.hasUpstream)
        #expect(d.problems.isEmpty)
    }

    @Test func upstreamClosingTheTunnelFlushesThenClosesTheClient() {
        var d = MachineDriver()
        d.client(upgrade)
        d.decide(forward(tunnel: 60))
        d.attach()
        d.clientReading = false
        d.upstreamSends("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nbye")
        d.upstreamEOF()
        #expect(d.count(.closeUpstream) == 1 && !d.clientClosed)
        d.clientResumesReading()
        #expect(d.takeClient().hasSuffix("\r\n\r\nbye"))
        #expect(d.clientClosed)
    }

    @Test func clientClosingTheTunnelClosesBoth() {
        var d = MachineDriver()
        d.client(upgrade)
        d.decide(forward(tunnel: 60))
        d.attach()
        d.upstreamSends("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
        d.client("last")
        d.clientEOF()
        #expect(d.takeUpstream().hasSuffix("last"))
        #expect(d.clientClosed && d.count(.closeUpstream) == 1)
    }

    @Test func refusedUpgradeIsAnsweredThenBothClose() {
        var d = MachineDriver()
        d.client(upgrade + "\u{81}\u{01}A")
        d.decide(forward(tunnel: 60))
        d.attach()
        d.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nno")
        #expect(d.takeClient() == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nVia: 1.1 gatehouse\r\nConnection: close\r\n\r\nno")
        // Never taken as having switched: that connection is not pooled, and the frame is not a request.
        #expect(d.count(.closeUpstream) == 1 && d.count(.releaseUpstream) == 0)
        #expect(d.decideCount == 1)
        #expect(!d.takeUpstream().contains("\u{81}"))
        #expect(d.clientWriteShut && !d.clientClosed)  // the frame is still unread: linger
    }

    @Test func slowClientStopsUpstreamReadsUntilItDrains() {
        var d = MachineDriver()
        d.client("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        d.decide(forward())
        d.attach()
        #expect(d.machine.wantsUpstreamRead)
        d.clientReading = false
        let body = String(repeating: "y", count: 600 * 1024)
        d.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + String(body.prefix(300 * 1024)))
        #expect(!d.machine.wantsUpstreamRead)
        #expect(d.machine.clientOut.count <= 300 * 1024 + 200)
        d.clientResumesReading()
        #expect(d.machine.wantsUpstreamRead)
        d.upstreamSends(String(body.dropFirst(300 * 1024)))
        let got = d.takeClient()
        #expect(got == "HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\nVia: 1.1 gatehouse\r\n\r\n" + body)
        #expect(d.finished.first?.bodyBytesSent == body.utf8.count)
        #expect(d.count(.releaseUpstream) == 1)
    }

    @Test func responseReadWithTheUpstreamsEndWhileTheClientIsSlowIsNotCut() {
        var d = MachineDriver()
        d.client("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        d.decide(forward())
        d.attach()
        d.clientReading = false
        let body = String(repeating: "y", count: 400 * 1024)
        d.upstreamSendsThenEOF("HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body)
        d.clientResumesReading()
        #expect(d.takeClient().hasSuffix("\r\n\r\n" + body))
        #expect(d.finished.map(\.status) == [200] && d.upstreamErrors.isEmpty)
        #expect(d.count(.closeUpstream) == 1 && !d.clientClosed)
        #expect(d.problems.isEmpty)
    }

    @Test func tunnelBytesReadWithTheUpstreamsEndWhileTheClientIsSlowAreNotLost() {
        var d = MachineDriver()
        d.client(upgrade)
        d.decide(forward(tunnel: 60))
        d.attach()
        d.upstreamSends("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
        _ = d.takeClient()
        d.clientReading = false
        d.upstreamSends(String(repeating: "f", count: 100 * 1024))
        #expect(d.machine.wantsUpstreamRead)
        d.upstreamSendsThenEOF("last frame")
        d.clientResumesReading()
        #expect(d.takeClient().hasSuffix("last frame"))
        #expect(d.clientClosed)
    }

    @Test func slowUpstreamStopsClientReadsUntilItDrains() {
        var d = MachineDriver()
        d.client("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 700000\r\n\r\n")
        d.decide(forward("POST / HTTP/1.1\r\nContent-Length: 700000\r\n\r\n"))
        d.upstreamReading = false
        d.attach()
        #expect(d.machine.wantsClientRead)
        d.client(String(repeating: "z", count: 300 * 1024))
        #expect(!d.machine.wantsClientRead)
        d.upstreamResumesReading()
        #expect(d.machine.wantsClientRead)
        d.client(String(repeating: "z", count: 700000 - 300 * 1024))
        #expect(d.takeUpstream().utf8.count == "POST / HTTP/1.1\r\nContent-Length: 700000\r\n\r\n".utf8.count + 700000)
    }

    @Test func pipeliningClientThatDoesNotReadIsNotParsedFurther() {
        var d = MachineDriver()
        d.clientReading = false
        d.client("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n")
        d.decide(forward())
        d.attach()
        d.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: \(300 * 1024)\r\n\r\n" + String(repeating: "y", count: 300 * 1024))
        d.client("GET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
        // Its answers pile up unread: no more of its requests are taken on.
        #expect(d.decideCount == 1)
        d.clientResumesReading()
        #expect(d.decidedTargets == ["/1", "/2"])
    }

    @Test func bodyHeldWhileDecidingStopsReadsAtTheHoldLimit() {
        var d = MachineDriver()
        d.client("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 200000\r\n\r\n" + String(repeating: "q", count: 70 * 1024))
        #expect(!d.machine.wantsClientRead)
        d.decide(forward("POST / HTTP/1.1\r\nContent-Length: 200000\r\n\r\n"))
        #expect(!d.machine.wantsClientRead)
        d.attach()
        #expect(d.machine.wantsClientRead)
        #expect(d.takeUpstream().utf8.count == "POST / HTTP/1.1\r\nContent-Length: 200000\r\n\r\n".utf8.count + 70 * 1024)
    }
}
