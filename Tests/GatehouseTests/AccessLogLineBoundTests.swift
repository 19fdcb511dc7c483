import Foundation
@testable import GatehouseServer
import Testing

/// `AccessLogLine.render` writes through a pointer into room for `maxLineBytes`: the worst line (every value at
/// its cut, every byte escaped to six) must fit, and still be one valid JSON line with each value cut.
@Suite struct AccessLogLineBoundTests {
    @Test func theLongestPossibleLineFitsItsBoundAndIsValidJSON() throws {
        let worst = String(repeating: "\u{01}", count: 4 * AccessLogLine.maxValueBytes)
        var entry = AccessLog.Entry(requestID: worst, method: worst, path: worst, route: worst, decision: worst, status: Int.min + 1,
                                    userID: worst, authReason: worst, upstreamMilliseconds: 9e18, durationMilliseconds: 9e18,
                                    bytesSent: Int.max, clientAddress: worst, host: worst, userAgent: worst, protocolVersion: worst)
        entry.tokenType = worst
        entry.machineSubject = worst
        var out: [UInt8] = [], scratch: [UInt8] = []
        var clock = AccessLogLine.SecondClock()
        AccessLogLine.render(entry, now: timespec(tv_sec: 1_700_000_000, tv_nsec: 999_999_999), into: &out, scratch: &scratch, clock: &clock)
        #expect(out.count <= AccessLogLine.maxLineBytes)
        #expect(out.count > 13 * 6 * AccessLogLine.maxValueBytes)  // every value was escaped to its cut
        #expect(out.last == UInt8(ascii: "\n") && out.dropLast().firstIndex(of: UInt8(ascii: "\n")) == nil)
        let line = try #require(try JSONSerialization.jsonObject(with: Data(out)) as? [String: Any])
        let cut = String(repeating: "\u{01}", count: AccessLogLine.maxValueBytes) + "…"
        for key in ["request_id", "method", "path", "route", "decision", "user_id", "token_type", "machine_subject", "auth_reason",
                    "client_ip", "host", "user_agent", "protocol"] {
            #expect(line[key] as? String == cut, "\(key)")
        }
        #expect(line["bytes"] as? Int == Int.max)
    }

    @Test func linesAppendToWhatTheBufferAlreadyHolds() throws {
        var out = Array("{\"earlier\":1}\n".utf8), scratch: [UInt8] = []
        var clock = AccessLogLine.SecondClock()
        let entry = AccessLog.Entry(requestID: "r1", method: "GET", path: "/a\"b", route: nil, decision: "proxy", status: 200,
                                    userID: nil, authReason: nil, upstreamMilliseconds: nil, durationMilliseconds: 1.25,
                                    bytesSent: 0, clientAddress: nil, host: "h", userAgent: nil, protocolVersion: "HTTP/1.1")
        for _ in 0..<2 {
            AccessLogLine.render(entry, now: timespec(tv_sec: 0, tv_nsec: 5_000_000), into: &out, scratch: &scratch, clock: &clock)
        }
        let lines = String(decoding: out, as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 3 && lines[0] == "{\"earlier\":1}")
        #expect(lines[1] == lines[2])
        #expect(lines[1] == #"{"time":"1970-01-01T00:00:00.005Z","request_id":"r1","method":"GET","path":"/a\"b","route":null,"decision":"proxy","status":200,"user_id":null,"duration_ms":1.250,"bytes":0,"client_ip":null,"host":"h","user_agent":null,"protocol":"HTTP/1.1"}"#)
    }
}
