#if canImport(Glibc)
import Glibc
#endif
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
        // Written straight into the queue's free space, sized up front: appended piece by piece, each of the
        // ~15 pieces checked the queue's room and its array's uniqueness (~700 instructions per response,
        // callgrind). Every field line kept is at most its line in the upstream's head, the prior `Via`
        // values at most theirs, a rewritten `Location` at most its line plus the new prefix.
        let locationGrowth = rewrite.location.map { ($0.to.count + 4) * head.fields.count } ?? 0
        let bound = 128 + head.reason.count + 2 * head.length + rewrite.extraFields.count + locationGrowth
        out.fill(minimum: bound) { free in
            var w = HeadBytes(free)
            w.append(clientVersion == .http10 ? "HTTP/1.0 " : "HTTP/1.1 ")
            w.appendStatus(head.status)
            w.append(UnsafeRawBufferPointer(rebasing: b[head.reason]))
            w.append("\r\n")
            let priorVia = writeFields(head, b, framing: framing, location: rewrite.location, into: &w)
            rewrite.extraFields.withUnsafeBytes { w.append($0) }
            w.append("Via: ")
            for range in priorVia {
                w.append(UnsafeRawBufferPointer(rebasing: b[range]))
                w.append(", ")
            }
            w.append("1.1 gatehouse\r\n")
            switch framing {
            case .chunked: w.append("Transfer-Encoding: chunked\r\n")
            case .asUpstream, .untilClose: break
            }
            if !keepAlive {
                w.append("Connection: close\r\n")
            } else if clientVersion == .http10 {
                w.append("Connection: keep-alive\r\n")
            }
            w.append("\r\n")
            return w.count
        }
    }

    /// The upstream's field lines that go on; its `Via` values are returned, to be extended after the
    /// decision's fields.
    private static func writeFields(_ head: ResponseHead, _ b: UnsafeRawBufferPointer, framing: ClientFraming,
                                    location: (from: [UInt8], to: [UInt8])?, into w: inout HeadBytes) -> [Range<Int>] {
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
            if let location, FieldName.equal(name, "location"), rewriteLocation(b, field, location, into: &w) {
                continue
            }
            w.append(UnsafeRawBufferPointer(rebasing: b[field.line]))
        }
        return priorVia
    }

    /// Frontend API redirects to itself go back through the proxy: `from` or `from/…` becomes `to…`.
    private static func rewriteLocation(_ b: UnsafeRawBufferPointer, _ field: FieldRange, _ location: (from: [UInt8], to: [UInt8]),
                                        into w: inout HeadBytes) -> Bool {
        let value = UnsafeRawBufferPointer(rebasing: b[field.value])
        let from = location.from
        guard value.count >= from.count, value.prefix(from.count).elementsEqual(from),
            value.count == from.count || value[from.count] == UInt8(ascii: "/")
        else { return false }
        w.append(UnsafeRawBufferPointer(rebasing: b[field.name]))
        w.append(": ")
        location.to.withUnsafeBytes { w.append($0) }
        w.append(UnsafeRawBufferPointer(rebasing: value[from.count...]))
        w.append("\r\n")
        return true
    }
}

/// Bytes written into free space reserved for them: a bounds check and a copy per piece. Writing past the
/// reserved space stops the process rather than writing past the buffer (the caller's bound is wrong).
struct HeadBytes {
    private let free: UnsafeMutableRawBufferPointer
    private(set) var count = 0

    init(_ free: UnsafeMutableRawBufferPointer) { self.free = free }

    @inline(__always) mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        precondition(count + bytes.count <= free.count, "response head larger than its reserved space")
        memcpy(free.baseAddress! + count, source, bytes.count)
        count += bytes.count
    }

    @inline(__always) mutating func append(_ text: StaticString) {
        text.withUTF8Buffer { append(UnsafeRawBufferPointer($0)) }
    }

    /// `NNN ` for a status the parser checked to be 100...599: three digits, no String made for it.
    @inline(__always) mutating func appendStatus(_ status: Int) {
        precondition(status >= 100 && status <= 999, "a parsed status has three digits")
        precondition(count + 4 <= free.count, "response head larger than its reserved space")
        let p = free.baseAddress! + count
        p.storeBytes(of: UInt8(ascii: "0") + UInt8(status / 100), as: UInt8.self)
        (p + 1).storeBytes(of: UInt8(ascii: "0") + UInt8(status / 10 % 10), as: UInt8.self)
        (p + 2).storeBytes(of: UInt8(ascii: "0") + UInt8(status % 10), as: UInt8.self)
        (p + 3).storeBytes(of: UInt8(ascii: " "), as: UInt8.self)
        count += 4
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

    // Eight bytes at a time (GatehouseCore's fold; CaseInsensitiveEqualsTests hold it to byte by byte).
    static func equal(_ a: UnsafeRawBufferPointer, _ lowercase: [UInt8]) -> Bool {
        lowercase.withUnsafeBytes { asciiCaseInsensitiveEquals(a, $0) }
    }

    static func equal(_ a: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
        lowercase.withUTF8Buffer { asciiCaseInsensitiveEquals(a, UnsafeRawBufferPointer($0)) }
    }

    static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        asciiCaseInsensitiveEquals(a, b)
    }

    @inline(__always) static func lower(_ c: UInt8) -> UInt8 { c >= 65 && c <= 90 ? c | 0x20 : c }
}
