import GatehouseCore
import GatehouseHTTP1

/// Writes the response head sent to the client from the upstream's parsed head, without building strings:
/// the upstream's field lines are copied as they are, minus the hop-by-hop ones (RFC 9110 §7.6.1, plus those
/// its `Connection` names); `Via` gains this hop; the decision's own fields are added; the framing the
/// client gets is said explicitly.
enum ResponseHeadRewriter {
    enum ClientFraming {
        /// The upstream's `Content-Length` (copied with the fields), or no body.
        case asUpstream
        /// Chunked to the client (copied chunk by chunk as the upstream sent it).
        case chunked
        /// Close-delimited (an HTTP/1.0 client, or the upstream's body ends at its close).
        case untilClose
    }

    static func write(_ head: ResponseHead, from b: UnsafeRawBufferPointer, clientVersion: HTTPVersion, framing: ClientFraming,
                      keepAlive: Bool, rewrite: ResponseRewrite, into out: inout ByteQueue) {
        out.append(clientVersion == .http10 ? "HTTP/1.0 " : "HTTP/1.1 ")
        appendStatus(head.status, into: &out)
        out.append(UnsafeRawBufferPointer(rebasing: b[head.reason]))
        out.append("\r\n")
        var priorVia: [Range<Int>] = []
        let namedByConnection = head.connection.otherTokens
        for field in head.fields {
            let name = UnsafeRawBufferPointer(rebasing: b[field.name])
            if FieldName.isHopByHop(name) { continue }
            // Content-Length is the framing the client reads (below): a `Connection` naming it must not drop it,
            // or the client gets a keep-alive response it cannot delimit.
            let isContentLength = FieldName.equal(name, "content-length")
            if !isContentLength, !namedByConnection.isEmpty,
                namedByConnection.contains(where: { FieldName.equal(name, UnsafeRawBufferPointer(rebasing: b[$0])) })
            {
                continue
            }
            if framing != .asUpstream, isContentLength { continue }
            if name.count == 3, FieldName.equal(name, "via") {
                priorVia.append(field.value)
                continue
            }
            if let location = rewrite.location, FieldName.equal(name, "location"), rewriteLocation(b, field, location, into: &out) {
                continue
            }
            out.append(UnsafeRawBufferPointer(rebasing: b[field.line]))
        }
        out.append(rewrite.extraFields)
        out.append("Via: ")
        for range in priorVia {
            out.append(UnsafeRawBufferPointer(rebasing: b[range]))
            out.append(", ")
        }
        out.append("1.1 gatehouse\r\n")
        switch framing {
        case .chunked: out.append("Transfer-Encoding: chunked\r\n")
        case .asUpstream, .untilClose: break
        }
        if !keepAlive {
            out.append("Connection: close\r\n")
        } else if clientVersion == .http10 {
            out.append("Connection: keep-alive\r\n")
        }
        out.append("\r\n")
    }

    /// `NNN ` for a status the parser checked to be 100...599: three digits, no String made for it.
    private static func appendStatus(_ status: Int, into out: inout ByteQueue) {
        precondition(status >= 100 && status <= 999, "a parsed status has three digits")
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 4) { digits in
            digits[0] = UInt8(ascii: "0") + UInt8(status / 100)
            digits[1] = UInt8(ascii: "0") + UInt8(status / 10 % 10)
            digits[2] = UInt8(ascii: "0") + UInt8(status % 10)
            digits[3] = UInt8(ascii: " ")
            out.append(UnsafeRawBufferPointer(digits))
        }
    }

    /// Frontend API redirects to itself go back through the proxy: `from` or `from/…` becomes `to…`.
    private static func rewriteLocation(_ b: UnsafeRawBufferPointer, _ field: FieldRange, _ location: (from: [UInt8], to: [UInt8]),
                                        into out: inout ByteQueue) -> Bool {
        let value = UnsafeRawBufferPointer(rebasing: b[field.value])
        let from = location.from
        guard value.count >= from.count, value.prefix(from.count).elementsEqual(from),
            value.count == from.count || value[from.count] == UInt8(ascii: "/")
        else { return false }
        out.append(UnsafeRawBufferPointer(rebasing: b[field.name]))
        out.append(": ")
        out.append(location.to)
        out.append(UnsafeRawBufferPointer(rebasing: value[from.count...]))
        out.append("\r\n")
        return true
    }
}

/// Field names compared as bytes, ASCII case-insensitively.
enum FieldName {
    /// One of GatehouseCore's hop-by-hop names (`HopByHop.names`, the one list both engines use): picked by
    /// length and first letter, then one comparison, as `HopByHop.isFixed` does (walking the list of nine
    /// names cost ~20 ns per response field). MachineHopByHopTests hold it to `HopByHop.names`.
    static func isHopByHop(_ name: UnsafeRawBufferPointer) -> Bool {
        guard let first = name.first else { return false }
        switch (name.count, lower(first)) {
        case (2, UInt8(ascii: "t")): return equal(name, "te")
        case (7, UInt8(ascii: "t")): return equal(name, "trailer")
        case (7, UInt8(ascii: "u")): return equal(name, "upgrade")
        case (10, UInt8(ascii: "c")): return equal(name, "connection")
        case (10, UInt8(ascii: "k")): return equal(name, "keep-alive")
        case (16, UInt8(ascii: "p")): return equal(name, "proxy-connection")
        case (17, UInt8(ascii: "t")): return equal(name, "transfer-encoding")
        case (18, UInt8(ascii: "p")): return equal(name, "proxy-authenticate")
        case (19, UInt8(ascii: "p")): return equal(name, "proxy-authorization")
        default: return false
        }
    }

    static func equal(_ a: UnsafeRawBufferPointer, _ lowercase: [UInt8]) -> Bool {
        guard a.count == lowercase.count else { return false }
        for i in 0..<a.count where lower(a[i]) != lowercase[i] { return false }
        return true
    }

    static func equal(_ a: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
        lowercase.withUTF8Buffer { l in
            guard a.count == l.count else { return false }
            for i in 0..<a.count where lower(a[i]) != l[i] { return false }
            return true
        }
    }

    static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        for i in 0..<a.count where lower(a[i]) != lower(b[i]) { return false }
        return true
    }

    @inline(__always) static func lower(_ c: UInt8) -> UInt8 { c >= 65 && c <= 90 ? c | 0x20 : c }
}
