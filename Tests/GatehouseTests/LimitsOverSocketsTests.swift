import Foundation
import GatehouseCore
import Synchronization
import Testing

/// 413 and 414 over real sockets, on their harder paths: bodies without a declared length, and the whole
/// request-target (not only the path) at the 8 KiB boundary.
@Suite(.serialized, .stopsServers) struct LimitsOverSocketsTests {
    static func limited() async throws -> GatewayHarness {
        try await GatewayHarness { $0.replacingOccurrences(of: "idle_timeout: 5s }", with: "idle_timeout: 5s, max_body_bytes: 1000 }") }
    }

    static func chunked(_ total: Int, chunk: Int = 300) -> String {
        var body = ""
        var left = total
        while left > 0 {
            let n = min(chunk, left)
            body += String(n, radix: 16) + "\r\n" + String(repeating: "z", count: n) + "\r\n"
            left -= n
        }
        return body + "0\r\n\r\n"
    }

    @Test func aChunkedBodyOverTheLimitIsCutOffWith413() async throws {
        let h = try await Self.limited()
        defer { Task { await h.stop() } }
        let small = try h.client()
        small.send("POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + Self.chunked(900))
        let ok = try #require(small.readResponse(method: "POST")?.0)
        #expect(ok.status == 200)
        #expect(ok.text.contains("\"received\":900"))

        let big = try h.client()
        big.send("POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + Self.chunked(3000))
        let refused = try #require(big.readResponse(method: "POST")?.0)
        #expect(refused.status == 413)
        #expect(refused.text.contains("payload_too_large"))
        #expect(big.isClosedByPeer())
        // The upstream never answered a complete over-long upload.
        #expect(!(refused.text.contains("received")))
        let metrics = try RawClient(port: h.adminPort).request("GET", "/metrics")?.text ?? ""
        #expect(metrics.contains("gatehouse_upstream_errors_total{kind=\"client_body_too_large\"} 1"), "\(metrics)")
    }

    @Test func aDeclaredLengthOverTheLimitIs413BeforeTheUpstream() async throws {
        let h = try await Self.limited()
        defer { Task { await h.stop() } }
        let c = try h.client()
        c.send("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n")
        #expect(c.readResponse(method: "POST")?.0.status == 413)
        #expect(c.isClosedByPeer())
        #expect(h.upstream.targets.withLock { $0 }.isEmpty)
        #expect(try h.client().request("POST", "/upload", body: String(repeating: "a", count: 1000))?.status == 200)
    }

    @Test func theWholeTargetIsLimitedAt8KiBIncludingTheQuery() async throws {
        let h = try await GatewayHarness()
        defer { Task { await h.stop() } }
        let prefix = "/public/x?q="
        let atLimit = prefix + String(repeating: "a", count: 8192 - prefix.utf8.count)
        let ok = try #require(try h.client().request("GET", atLimit))
        #expect(ok.status == 200)
        #expect(ok.json?.objectValue?["uri"] == .string(atLimit))

        let over = try h.client()
        let refused = try #require(over.request("GET", atLimit + "a"))
        #expect(refused.status == 414)
        #expect(over.isClosedByPeer())

        let longPath = "/public/" + String(repeating: "p", count: 8192 - "/public/".utf8.count + 1)
        #expect(try h.client().request("GET", longPath)?.status == 414)
        #expect(try h.client().request("GET", String(longPath.dropLast()))?.status == 200)
        #expect(h.upstream.targets.withLock { $0 }.count == 2)
    }
}
