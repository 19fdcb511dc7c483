import GatehouseCore
import Testing

/// The per-client key of the handshake-nonce buckets behind trusted proxies (second review: the last
/// `X-Forwarded-For` element alone let a multi-hop chain put every user in one bucket, and garbage or a
/// client's own header choose a fresh bucket per request).
@Suite struct ClientAddressTests {
    static let trusted = [CIDR("10.0.0.0/8")!, CIDR("192.0.2.7")!, CIDR("fd00::/8")!]

    func key(_ forwardedFor: [String], peer: String = "10.0.0.2") -> String {
        ClientAddress.key(peer: peer, forwardedFor: forwardedFor, trustedProxies: Self.trusted)
    }

    @Test func theFirstUntrustedAddressFromTheRightIsTheClient() {
        // CDN (192.0.2.7, trusted) → nginx (10.0.0.2, the peer): nginx appended the CDN, the CDN the client.
        #expect(key(["203.0.113.9, 192.0.2.7"]) == "203.0.113.9")
        #expect(key(["203.0.113.9", "10.1.1.1, 192.0.2.7"]) == "203.0.113.9")
        // Whatever the client wrote left of the address the first proxy appended is not believed.
        #expect(key(["1.2.3.4, 5.6.7.8, 203.0.113.9"]) == "203.0.113.9")
        #expect(key(["1.2.3.4, 203.0.113.9, 192.0.2.7"]) == "203.0.113.9")
    }

    @Test func aNonAddressStopsTheWalkAtTheHopThatAppendedItsRightNeighbour() {
        #expect(key(["evil-random-123, 203.0.113.9"]) == "203.0.113.9")
        // Garbage straight after trusted hops: the nearest trusted hop is the key (the client cannot pick one).
        #expect(key(["evil-random-123, 192.0.2.7"]) == "192.0.2.7")
        #expect(key(["nonsense"]) == "10.0.0.2")
        #expect(key([]) == "10.0.0.2")
        #expect(key(["203.0.113.9:1234"]) == "10.0.0.2")
    }

    @Test func ipv6ClientsShareTheirSlash64() {
        #expect(key(["2001:db8:1:2:aaaa::1"]) == key(["2001:db8:1:2:bbbb:cccc:dddd:eeee"]))
        #expect(key(["2001:db8:1:2::1"]) != key(["2001:db8:1:3::1"]))
        #expect(key(["2001:db8:1:2::1"]) == "2001:db8:1:2::/64")
        #expect(key(["2001:db8:1:2::1, fd00::5"]) == "2001:db8:1:2::/64")
        #expect(ClientAddress.normalized("::ffff:203.0.113.9") == "203.0.113.9")
    }

    @Test func anUntrustedPeerIsTheClientWhateverItForwards() throws {
        let raw = RawRequest(method: "GET", target: "/", headers: HeaderList([("Host", "a"), ("X-Forwarded-For", "203.0.113.9")]),
                             fromTrustedProxy: false, peer: "198.51.100.4", trustedProxies: Self.trusted)
        #expect(try CanonicalRequest(raw).clientAddress == "198.51.100.4")
        var viaChain = raw
        viaChain.fromTrustedProxy = true
        viaChain.peer = "10.0.0.2"
        viaChain.headers = HeaderList([("Host", "a"), ("X-Forwarded-For", "6.6.6.6, 203.0.113.9, 192.0.2.7")])
        #expect(try CanonicalRequest(viaChain).clientAddress == "203.0.113.9")
    }
}
