/// Who is asking, for per-client limits (the handshake-nonce buckets).
///
/// Behind trusted proxies, `X-Forwarded-For` is walked from the right: each trusted proxy appended the address
/// it received the request from, so the first address that is not itself a trusted proxy is the client. The
/// walk stops at an element that is not an IP address (whatever stands left of it came from the client and is
/// not believed). IPv6 clients are keyed by their /64, which one client usually holds whole.
public enum ClientAddress {
    /// `peer` is a trusted proxy (the caller checked it); the client is looked for in `forwardedFor`.
    public static func key(peer: String, forwardedFor: [String], trustedProxies: [CIDR]) -> String {
        var client = peer
        let elements = forwardedFor.flatMap { $0.split(separator: ",") }
        for element in elements.reversed() {
            let address = String(element.trimmingASCIIWhitespace())
            guard CIDR.parseAddress(address) != nil else { break }
            client = address
            if !isTrusted(address, trustedProxies) { break }
        }
        return normalized(client)
    }

    public static func isTrusted(_ address: String, _ trusted: [CIDR]) -> Bool {
        guard let bytes = bytes(address) else { return false }
        return trusted.contains { $0.contains(bytes) }
    }

    /// IPv4 as dotted quad; IPv4-mapped IPv6 as its IPv4; other IPv6 as its /64; anything else as given (at most
    /// 64 characters).
    public static func normalized(_ address: String) -> String {
        guard let bytes = bytes(address) else { return String(address.prefix(64)) }
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        let groups = stride(from: 0, to: 8, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
        return groups.joined(separator: ":") + "::/64"
    }

    static func bytes(_ address: String) -> [UInt8]? {
        if address.hasPrefix("::ffff:"), address.contains("."), let v4 = CIDR.parseAddress(String(address.dropFirst(7))) { return v4 }
        return CIDR.parseAddress(address)
    }
}
