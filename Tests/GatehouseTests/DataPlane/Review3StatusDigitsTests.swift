import GatehouseCore
import GatehouseDataPlane
import Testing

/// Review of 6491319 (the status written as three digits, behind a precondition): every status the parser lets
/// through comes out as the upstream wrote it, and every status line it must not let through is a 502, never
/// the precondition (which would take the whole process down on one upstream's answer).
@Suite("Review3: response status digits")
struct Review3StatusDigitsTests {
    static func relay(_ statusLine: String) -> (client: String, driver: MachineDriver) {
        var d = MachineDriver()
        d.client("GET /s HTTP/1.1\r\nHost: a\r\n\r\n")
        d.decide(forward())
        d.attach()
        d.upstreamSends(statusLine + "\r\nContent-Length: 0\r\n\r\n")
        return (d.takeClient(), d)
    }

    @Test func everyFinalStatusComesOutAsSent() {
        for status in 200...599 {
            let (client, d) = Self.relay("HTTP/1.1 \(status) Reason \(status)")
            #expect(client.hasPrefix("HTTP/1.1 \(status) Reason \(status)\r\n"), "\(status): \(client.prefix(40))")
            #expect(d.finished.map(\.status) == [status])
        }
    }

    @Test func anEmptyReasonKeepsItsSpace() {
        for line in ["HTTP/1.1 200", "HTTP/1.1 200 "] {
            let (client, _) = Self.relay(line)
            #expect(client.hasPrefix("HTTP/1.1 200 \r\n"), "\(line): \(client.prefix(30))")
        }
    }

    @Test(arguments: ["HTTP/1.1 000 X", "HTTP/1.1 099 X", "HTTP/1.1 600 X", "HTTP/1.1 999 X", "HTTP/1.1 1000 X",
                      "HTTP/1.1 20 X", "HTTP/1.1 -20 X", "HTTP/1.1 +20 X", "HTTP/1.1 2 0 X", "HTTP/1.1 ２00 X",
                      "HTTP/1.1 20a X", "HTTP/1.1  200 X", "HTTP/1.1 200X"])
    func anOddStatusIsA502(line: String) {
        let (client, d) = Self.relay(line)
        #expect(client.hasPrefix("HTTP/1.1 502 "), "\(line): \(client.prefix(40))")
        #expect(d.upstreamErrors == ["invalid_response"])
    }
}
