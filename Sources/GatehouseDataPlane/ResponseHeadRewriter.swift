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
        out.append(String(head.status))
        out.append(" ")
        out.append(UnsafeRawBufferPointer(rebasing: b[head.reason]))
        out.append("\r\n")
        var priorVia: [Range<Int>] = []
        for field in head.fields {
            let name = UnsafeRawBufferPointer(rebasing: b[field.name])
            if FieldName.isHopByHop(name) { continue }
            // Content-Length is the framing the client reads (below): a `Connection` naming it must not drop it,
            // or the client gets a keep-alive response it cannot delimit.
            if !FieldName.equal(name, "content-length"),
                head.connection.otherTokens.contains(where: { FieldName.equal(name, UnsafeRawBufferPointer(rebasing: b[$0])) })
            {
                continue
            }
            if framing != .asUpstream, FieldName.equal(name, "content-length") { continue }
            if FieldName.equal(name, "via") {
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
    /// GatehouseCore's hop-by-hop names (the one list both engines use), as bytes.
    static let hopByHop: [[UInt8]] = HopByHop.names.map { Array($0.utf8) }

    static func isHopByHop(_ name: UnsafeRawBufferPointer) -> Bool {
        hopByHop.contains { $0.count == name.count && equal(name, $0) }
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
