import Foundation
import GatehouseCore
@testable import GatehouseServer
import Testing

/// The data plane renders the upstream head in one pass (`UpstreamRequest.renderHead`); the SwiftNIO path
/// still builds `UpstreamRequest.head` and the data plane used to render that. Both must give the same bytes
/// for every request: forwarding look-alikes, earlier hops from trusted proxies, `Via`, IPv6 peers, chunked
/// bodies, WebSocket upgrades and prefix overrides.
@Suite struct UpstreamHeadRenderTests {
    static let heads: [(target: String, fields: [(String, String)])] = [
        ("/app/index.html", [("Host", "app.example.com"), ("Authorization", "Bearer abc")]),
        ("/app/x?q=1&r=%20", [("Host", "Example.COM:8080"), ("Accept", "*/*"), ("Via", "1.0 edge"), ("via", "1.1 cdn")]),
        ("/a", [("Host", "h"), ("X-Forwarded-For", "203.0.113.9"), ("x_forwarded_for", "10.0.0.1"), ("X.Real.IP", "1.2.3.4"),
                ("Forwarded", "for=1.2.3.4"), ("X-Request-Id", "spoof"), ("Expect", "100-continue"), ("X-Forwarded-Host", "evil")]),
        ("/b", [("Host", "h"), ("X-Forwarded-For", ""), ("X-Forwarded-For", "")]),
        ("/c", [("Host", "h"), ("X-Forwarded-For", "")]),
        ("/d", [("Host", "h"), ("X-Forwarded-For", "198.51.100.1, 198.51.100.2"), ("X-Forwarded-For", "198.51.100.3")]),
        ("/e", [("X-Custom", "v"), ("X-Empty", "")]),
        // Just inside a recycled head buffer (HeadBuffers.size), then past it (a buffer of its own).
        ("/f", [("Host", "h"), ("X-Big", String(repeating: "b", count: 3600)), ("Via", "1.0 edge")]),
        ("/g", [("Host", "h"), ("X-Big", String(repeating: "g", count: 5000)), ("X-Forwarded-For", "203.0.113.9")]),
    ]

    static func rendered(_ raw: RawRequest, peer: String, trusted: Bool, target: String?, chunked: Bool, webSocket: Bool) throws -> ([UInt8], [UInt8]) {
        let request = try CanonicalRequest(raw)
        let decided = IdentityHeaderPolicy().upstreamHeaders(from: request.headers, session: nil, token: nil, routeName: "app")
        var head = UpstreamRequest.head(for: request, headers: decided, peer: peer, trustedPeer: trusted, requestID: "rid-1", chunked: chunked)
        if let target { head.target = target }
        if webSocket {
            head.headers.append("Connection", "Upgrade")
            head.headers.append("Upgrade", "websocket")
        }
        let onePass = UpstreamRequest.renderHead(for: request, target: target, headers: decided, peer: peer, trustedPeer: trusted,
                                                 requestID: "rid-1", chunked: chunked, webSocketUpgrade: webSocket)
        return (Self.render(head), onePass)
    }

    /// The way the head was rendered before the one-pass renderer: request line, then the list's fields.
    static func render(_ head: UpstreamRequest.Head) -> [UInt8] {
        Array("\(head.method) \(head.target) HTTP/1.1\r\n".utf8) + RequestPolicy.render(head.headers) + Array("\r\n".utf8)
    }

    @Test(arguments: 0..<UpstreamHeadRenderTests.heads.count)
    func onePassEqualsTheListThenRender(_ index: Int) throws {
        let (target, fields) = Self.heads[index]
        for method in ["GET", "POST"] {
            for peer in ["192.0.2.10", "2001:db8::1", ""] {
                for trusted in [false, true] {
                    for scheme in ["http", "https"] {
                        let raw = RawRequest(method: method, target: target, headers: HeaderList(fields), scheme: scheme, fromTrustedProxy: trusted,
                                             peer: peer, trustedProxies: [])
                        for override in [nil, "/upstream/prefix/x?y"] as [String?] {
                            for (chunked, webSocket) in [(false, false), (true, false), (false, true)] {
                                let (reference, onePass) = try Self.rendered(raw, peer: peer, trusted: trusted, target: override,
                                                                             chunked: chunked, webSocket: webSocket)
                                #expect(onePass == reference, "\(method) \(target) peer=\(peer) trusted=\(trusted) override=\(override ?? "-")")
                            }
                        }
                    }
                }
            }
        }
    }

    /// Every forwarding name, as sent, upper-cased and with `_`/`.` for `-`, next to names of the same lengths
    /// that are not forwarding names: the one-pass filter (first byte, length, third letter) drops exactly what `head` drops.
    @Test func everyForwardingNameInEverySpellingIsDroppedAlike() throws {
        var fields: [(String, String)] = [("Host", "h")]
        for name in UpstreamRequest.forwardingHeaders {
            // "http": a value every forwarding field may carry from a trusted proxy (X-Forwarded-Proto too).
            fields.append((name, "http"))
            fields.append((name.uppercased(), "http"))
            fields.append((name.replacingOccurrences(of: "-", with: "_"), "http"))
            fields.append((name.replacingOccurrences(of: "-", with: "."), "http"))
            fields.append(("Y" + name.dropFirst(), "kept"))
            fields.append((name + "s", "kept"))
            // Same length and first byte, another third letter (the filter's third test).
            fields.append((String(name.prefix(2)) + "g" + name.dropFirst(3), "kept"))
        }
        for trusted in [false, true] {
            let raw = RawRequest(method: "GET", target: "/f", headers: HeaderList(fields), fromTrustedProxy: trusted, peer: "192.0.2.1")
            let (reference, onePass) = try Self.rendered(raw, peer: "192.0.2.1", trusted: trusted, target: nil, chunked: false, webSocket: false)
            #expect(onePass == reference)
            let text = String(decoding: onePass, as: UTF8.self)
            // Only Gatehouse's own forwarding fields remain, once each.
            let names = text.split(separator: "\r\n").dropFirst().compactMap { $0.split(separator: ":").first.map { normalizedHeaderName(String($0)) } }
            for name in UpstreamRequest.forwardingHeaders {
                let own = ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded", "x-real-ip", "x-request-id"].contains(name)
                #expect(names.filter { $0 == name }.count == (own ? 1 : 0), "\(name)")
            }
            #expect(text.components(separatedBy: ": kept\r\n").count - 1 == 3 * UpstreamRequest.forwardingHeaders.count)
        }
    }

    @Test func theHeadCarriesWhatItMust() throws {
        let raw = RawRequest(method: "GET", target: "/x?a=1", headers: HeaderList([("Host", "app.example.com"), ("X-Forwarded-For", "203.0.113.9")]),
                             fromTrustedProxy: true, peer: "10.0.0.2")
        let (_, bytes) = try Self.rendered(raw, peer: "10.0.0.2", trusted: true, target: nil, chunked: true, webSocket: false)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.hasPrefix("GET /x?a=1 HTTP/1.1\r\nHost: app.example.com\r\n"))
        #expect(text.contains("\r\nX-Forwarded-For: 203.0.113.9, 10.0.0.2\r\n"))
        #expect(text.contains("\r\nForwarded: for=10.0.0.2;proto=http;host=\"app.example.com\"\r\n"))
        #expect(text.hasSuffix("\r\nVia: 1.1 gatehouse\r\nTransfer-Encoding: chunked\r\n\r\n"))
    }

    /// The `Forwarded` node is bracketed and quoted for IPv6 peers only (small and heap strings alike).
    @Test func ipv6PeersAreToldApartFromIPv4Ones() {
        for peer in ["2001:db8::1", "::1", "2001:0db8:0000:0000:0000:ff00:0042:8329", "fe80::1%eth0"] {
            #expect(UpstreamRequest.isIPv6(peer), "\(peer)")
            #expect(UpstreamRequest.forwardedNode(peer) == "\"[\(peer)]\"")
        }
        for peer in ["127.0.0.1", "192.0.2.10", "", "255.255.255.255.255.255"] {
            #expect(!UpstreamRequest.isIPv6(peer), "\(peer)")
            #expect(UpstreamRequest.forwardedNode(peer) == peer)
        }
    }
}
