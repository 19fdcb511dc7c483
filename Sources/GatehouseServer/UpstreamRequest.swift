#if canImport(Glibc)
import Glibc
#endif
import GatehouseCore
import GatehouseDataPlane
import NIOHTTP1

extension HeaderList {
    /// The engine's view of NIO's parsed header fields (order and spelling kept).
    init(_ headers: HTTPHeaders) {
        var fields: [(name: String, value: String)] = []
        fields.reserveCapacity(headers.count)
        for (name, value) in headers { fields.append((name, value)) }
        self.init(fields)
    }
}

extension HTTPHeaders {
    init(_ list: HeaderList) {
        self.init()
        reserveCapacity(list.count)
        for field in list { add(name: field.name, value: field.value) }
    }
}

/// Builds what is sent upstream from a decided request: the canonical path, the decision's headers (already
/// without hop-by-hop fields and identity look-alikes), and forwarding information Gatehouse vouches for.
///
/// `X-Forwarded-*`, `Forwarded`, `X-Real-IP` and `X-Request-Id` sent by the client are kept (and extended) only
/// when the peer is a trusted proxy; otherwise they are replaced.
public enum UpstreamRequest {
    static var forwardingHeaders: [String] { ForwardingHeaders.names }

    public struct Head: Sendable, Equatable {
        public var method: String
        public var target: String
        public var headers: HeaderList
    }

    /// - Parameters:
    ///   - peer: the client's IP address as text.
    ///   - requestID: the id for this request (from a trusted proxy, or made by Gatehouse).
    ///   - chunked: the client's body is chunked (its framing header was removed as hop-by-hop).
    public static func head(
        for request: CanonicalRequest, headers decided: HeaderList, peer: String, trustedPeer: Bool, requestID: String,
        chunked: Bool
    ) -> Head {
        var headers = HeaderList()
        headers.reserveCapacity(decided.count + 9)
        var priorVia: [String] = []
        for field in decided {
            if forwardingHeaders.contains(where: { headerNamesEquivalent(field.name, $0) }) { continue }
            if asciiCaseInsensitiveEquals(field.name, "via") {
                priorVia.append(field.value)
                continue
            }
            headers.append(field.name, field.value)
        }
        let priorFor = trustedPeer ? request.headers.values("x-forwarded-for").joined(separator: ", ") : ""
        headers.append("X-Forwarded-For", priorFor.isEmpty ? peer : priorFor + ", " + peer)
        headers.append("X-Forwarded-Proto", request.scheme)
        if let host = request.host { headers.append("X-Forwarded-Host", host) }
        // Built in one buffer: appending piece by piece reallocated it several times per request.
        let node = forwardedNode(peer)
        var forwarded = ""
        forwarded.reserveCapacity(18 + node.utf8.count + request.scheme.utf8.count + (request.host?.utf8.count ?? 0))
        forwarded += "for="
        forwarded += node
        forwarded += ";proto="
        forwarded += request.scheme
        if let host = request.host {
            forwarded += ";host=\""
            forwarded += host
            forwarded += "\""
        }
        headers.append("Forwarded", forwarded)
        headers.append("X-Real-IP", peer)
        headers.append("X-Request-Id", requestID)
        headers.append("Via", via(after: priorVia))
        if chunked { headers.append("Transfer-Encoding", "chunked") }
        return Head(method: request.method, target: request.pathAndQuery, headers: headers)
    }

    /// `head(for:…)` written straight to bytes — request line, the same fields in the same order, blank line —
    /// without the intermediate HeaderList and target string (the data plane sends these bytes as they are;
    /// building, copying and then rendering the list cost ~1.5 µs per request, perf).
    /// - Parameters:
    ///   - target: the request-target to send instead of the canonical path and query (a prefix override).
    ///   - webSocketUpgrade: end with `Connection: Upgrade` and `Upgrade: websocket`.
    public static func renderHead(
        for request: CanonicalRequest, target: String?, headers decided: HeaderList, peer: String, trustedPeer: Bool, requestID: String,
        chunked: Bool, webSocketUpgrade: Bool
    ) -> [UInt8] {
        renderHead(for: request, target: target, fields: UpstreamFields(decided), peer: peer, trustedPeer: trustedPeer, requestID: requestID,
                   chunked: chunked, webSocketUpgrade: webSocketUpgrade)
    }

    /// The same head from the decision's parts: the kept client fields, then the identity block's bytes as they
    /// are (built once per session and route), then appended fields.
    public static func renderHead(
        for request: CanonicalRequest, target: String?, fields decided: UpstreamFields, peer: String, trustedPeer: Bool, requestID: String,
        chunked: Bool, webSocketUpgrade: Bool
    ) -> [UInt8] {
        renderedHead(for: request, target: target, fields: decided, peer: peer, trustedPeer: trustedPeer, requestID: requestID,
                     chunked: chunked, webSocketUpgrade: webSocketUpgrade).bytes
    }

    /// `renderHead` as the data plane sends it: the writer's buffer handed over, not copied into an array.
    static func renderedHead(
        for request: CanonicalRequest, target: String?, fields decided: UpstreamFields, peer: String, trustedPeer: Bool, requestID: String,
        chunked: Bool, webSocketUpgrade: Bool
    ) -> RenderedHead {
        // Room for the request line, the client's fields, the identity block and Gatehouse's forwarding fields.
        var size = 256 + request.method.utf8.count + (target?.utf8.count ?? request.path.value.utf8.count + (request.query?.utf8.count ?? 0))
        for field in request.headers { size += field.name.utf8.count + field.value.utf8.count + 4 }
        size += decided.identity.wire?.count ?? 0
        var out = HeadWriter(capacity: size)
        out.append(request.method)
        out.append(0x20)
        if let target {
            out.append(target)
        } else {
            out.append(request.path.value)
            if let query = request.query {
                out.append(UInt8(ascii: "?"))
                out.append(query)
            }
        }
        out.append(" HTTP/1.1\r\n" as StaticString)
        var priorVia: [String] = []
        decided.forEachClientField { writeDecided($0, $1, into: &out, priorVia: &priorVia) }
        if let wire = decided.identity.wire {
            // No forwarding or Via name among them (IdentityBlock checked): each would be written as it is.
            wire.withUnsafeBytes { out.append($0) }
        } else {
            for field in decided.identity.fields { writeDecided(field.name, field.value, into: &out, priorVia: &priorVia) }
        }
        for field in decided.appended { writeDecided(field.name, field.value, into: &out, priorVia: &priorVia) }
        // X-Forwarded-For: earlier hops (from a trusted proxy only), then the peer.
        out.append("X-Forwarded-For: " as StaticString)
        if trustedPeer {
            let start = out.count
            var first = true
            for field in request.headers where asciiCaseInsensitiveEquals(field.name, "x-forwarded-for") {
                if !first { out.append(", " as StaticString) }
                out.append(field.value)
                first = false
            }
            // As `head`: the separator only after a non-empty join.
            if out.count > start { out.append(", " as StaticString) }
        }
        out.append(peer)
        out.append("\r\n" as StaticString)
        out.field("X-Forwarded-Proto" as StaticString, request.scheme)
        if let host = request.host { out.field("X-Forwarded-Host" as StaticString, host) }
        out.append("Forwarded: for=" as StaticString)
        if isIPv6(peer) {
            out.append("\"[" as StaticString)
            out.append(peer)
            out.append("]\"" as StaticString)
        } else {
            out.append(peer)
        }
        out.append(";proto=" as StaticString)
        out.append(request.scheme)
        if let host = request.host {
            out.append(";host=\"" as StaticString)
            out.append(host)
            out.append(UInt8(ascii: "\""))
        }
        out.append("\r\n" as StaticString)
        out.field("X-Real-IP" as StaticString, peer)
        out.field("X-Request-Id" as StaticString, requestID)
        if priorVia.isEmpty { out.append("Via: 1.1 gatehouse\r\n" as StaticString) } else { out.field("Via" as StaticString, via(after: priorVia)) }
        if chunked { out.append("Transfer-Encoding: chunked\r\n" as StaticString) }
        if webSocketUpgrade { out.append("Connection: Upgrade\r\nUpgrade: websocket\r\n" as StaticString) }
        out.append("\r\n" as StaticString)
        return out.rendered()
    }

    /// One decided field into the head: forwarding look-alikes dropped (Gatehouse writes its own), `Via` kept
    /// aside to be extended.
    @inline(__always) static func writeDecided(_ name: String, _ value: String, into out: inout HeadWriter, priorVia: inout [String]) {
        if ForwardingHeaders.contains(name) { return }
        if asciiCaseInsensitiveEquals(name, "via") {
            priorVia.append(value)
            return
        }
        out.field(name, value)
    }


    /// RFC 7239 node: IPv6 addresses are quoted and bracketed.
    static func forwardedNode(_ ip: String) -> String {
        isIPv6(ip) ? "\"[" + ip + "]\"" : ip
    }

    /// An address with a colon is IPv6. Searched in the bytes in place: `String.contains` walks characters,
    /// and the UTF-8 view's generic `contains` cost ~300 instructions for `127.0.0.1` (callgrind).
    @inline(__always) static func isIPv6(_ ip: String) -> Bool {
        ip.utf8.withContiguousStorageIfAvailable { bytes in
            guard let base = bytes.baseAddress else { return false }
            return memchr(base, Int32(UInt8(ascii: ":")), bytes.count) != nil
        } ?? ip.utf8.contains(UInt8(ascii: ":"))
    }

    /// A request id a trusted proxy sent, if it is short and plain enough to log and forward.
    public static func trustedRequestID(_ headers: HeaderList) -> String? {
        guard let id = headers.first("x-request-id"), !id.isEmpty, id.utf8.count <= 128,
            id.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") })
        else { return nil }
        return id
    }

    /// Response headers from an upstream, minus hop-by-hop fields, plus `extra` (the decision's own); `Via`
    /// extended. Works on NIO's headers and builds the result in one pass: this runs for every response, and
    /// copying, filtering and re-adding cost several allocations per response (measured with perf).
    static func responseHeaders(_ upstream: HTTPHeaders, extra: HeaderList = HeaderList()) -> HTTPHeaders {
        let isHopByHop = HopByHop.predicate(for: upstream)
        var headers = HTTPHeaders()
        headers.reserveCapacity(upstream.count + extra.count + 1)
        var prior: [String] = []
        for (name, value) in upstream {
            if isHopByHop(name) { continue }
            if asciiCaseInsensitiveEquals(name, "via") {
                prior.append(value)
                continue
            }
            headers.add(name: name, value: value)
        }
        for field in extra { headers.add(name: field.name, value: field.value) }
        headers.add(name: "Via", value: via(after: prior))
        return headers
    }

    /// One `Via` value: the earlier hops, then this one.
    static func via(after prior: [String]) -> String {
        prior.isEmpty ? "1.1 gatehouse" : prior.joined(separator: ", ") + ", 1.1 gatehouse"
    }
}
