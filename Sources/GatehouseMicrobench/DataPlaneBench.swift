import GatehouseCore
import GatehouseDataPlane
import GatehouseHTTP1

/// The connection machine's own work for one proxied keep-alive exchange, as the profile harness sends it
/// (wrk's request with a bearer token, nginx's 20-byte answer): the head parsed and decided (a ready plan,
/// as the policy hands it), the pooled upstream attached, the request written, the response parsed,
/// rewritten and relayed, the exchange finished. No sockets and no decision: what the data plane adds.
func benchDataPlane() {
    let request = Array(("GET /app/x HTTP/1.1\r\nHost: 127.0.0.1:19412\r\n"
        + "Authorization: Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6ImRldiJ9.eyJzdWIiOiJ1c2VyXzEifQ.c2lnbmF0dXJl\r\n\r\n").utf8)
    let response = Array(("HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Tue, 01 Dec 2026 21:40:00 GMT\r\n"
        + "Content-Type: application/octet-stream\r\nContent-Length: 20\r\nConnection: keep-alive\r\n\r\n"
        + "01234567890123456789").utf8)
    let plan = ForwardPlan(
        upstream: UpstreamTarget(url: "http://127.0.0.1:19411")!,
        head: Array(("GET /app/x HTTP/1.1\r\nHost: 127.0.0.1:19412\r\nX-Gatehouse-User-Id: user_1\r\n"
            + "X-Forwarded-For: 127.0.0.1\r\nX-Request-Id: 0123456789abcdef-1\r\nVia: 1.1 gatehouse\r\n\r\n").utf8),
        chunkedBody: false, retryable: true, sendContinue: false, tunnelLifetime: nil, response: ResponseRewrite(),
        requestID: "0123456789abcdef-1")
    func newMachine() -> ConnectionMachine {
        var machine = ConnectionMachine(settings: ConnectionSettings(), now: 1)
        machine.clientIn.adopt([UInt8](repeating: 0, count: 8192))
        machine.clientOut.adopt([UInt8](repeating: 0, count: 8192))
        machine.upstreamIn.adopt([UInt8](repeating: 0, count: 8192))
        machine.upstreamOut.adopt([UInt8](repeating: 0, count: 8192))
        return machine
    }
    // wrk -c50 keeps 50 connections busy in turn: their machines and buffers do not all stay in the caches.
    var machines = (0..<50).map { _ in newMachine() }
    var machine = newMachine()
    var batch: [ConnectionAction] = []
    var now: UInt64 = 2
    var finished = 0
    func exchange() {
        now += 1000
        machine.clientIn.append(request)
        machine.clientReceived(now: now)
        machine.takeActions(into: &batch)
        machine.decided(.forward(plan), now: now)
        machine.takeActions(into: &batch)
        machine.upstreamAttached(reused: true, now: now)
        machine.upstreamOut.consume(machine.upstreamOut.count)
        machine.upstreamWrote(now: now)
        machine.upstreamIn.append(response)
        machine.upstreamReceived(now: now)
        machine.takeActions(into: &batch)
        for action in batch { if case .finished = action { finished += 1 } }
        machine.clientOut.consume(machine.clientOut.count)
        machine.clientWrote(now: now)
        blackHole(machine.nextDeadline())
    }
    exchange()
    guard finished == 1, machine.isIdle else { fatalError("bench exchange did not finish") }
    measure("data plane: one proxied keep-alive exchange (machine only)", iterations: 500_000) { exchange() }
    var turn = 0
    measure("data plane: the same, 50 connections in turn", iterations: 500_000) {
        swap(&machine, &machines[turn])
        exchange()
        swap(&machine, &machines[turn])
        turn = turn == 49 ? 0 : turn + 1
    }
}
