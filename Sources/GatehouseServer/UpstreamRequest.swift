import GatehouseCore
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
    static let forwardingHeaders: Set<String> = [
        "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "x-forwarded-prefix",
        "x-forwarded-uri", "x-forwarded-method", "x-original-uri", "x-original-url", "x-rewrite-url", "forwarded",
        "x-real-ip", "x-request-id", "x-envoy-original-path", "x-http-method-override", "x-http-method",
        "x-method-override",
        // Gatehouse answers `Expect: 100-continue` itself once it has decided to proxy (see ClientHandler).
        "expect",
    ]

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
        var headers = decided
        let priorFor = trustedPeer ? request.headers.values("x-forwarded-for").joined(separator: ", ") : ""
        headers.removeAll { forwardingHeaders.contains(normalizedHeaderName($0)) }
        headers.append("X-Forwarded-For", priorFor.isEmpty ? peer : priorFor + ", " + peer)
        headers.append("X-Forwarded-Proto", request.scheme)
        if let host = request.host { headers.append("X-Forwarded-Host", host) }
        var forwarded = "for=" + forwardedNode(peer) + ";proto=" + request.scheme
        if let host = request.host { forwarded += ";host=\"" + host + "\"" }
        headers.append("Forwarded", forwarded)
        headers.append("X-Real-IP", peer)
        headers.append("X-Request-Id", requestID)
        extendVia(&headers)
        if chunked { headers.append("Transfer-Encoding", "chunked") }
        return Head(method: request.method, target: request.pathAndQuery, headers: headers)
    }

    /// RFC 7239 node: IPv6 addresses are quoted and bracketed.
    static func forwardedNode(_ ip: String) -> String {
        ip.contains(":") ? "\"[" + ip + "]\"" : ip
    }

    /// A request id a trusted proxy sent, if it is short and plain enough to log and forward.
    public static func trustedRequestID(_ headers: HeaderList) -> String? {
        guard let id = headers.first("x-request-id"), !id.isEmpty, id.utf8.count <= 128,
            id.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") })
        else { return nil }
        return id
    }

    /// Response headers from an upstream, minus hop-by-hop fields; `Via` extended. Works on NIO's headers
    /// directly: this runs for every response, and converting to and from `HeaderList` cost two copies of
    /// every field (measured with perf on the proxy path).
    static func responseHeaders(_ upstream: HTTPHeaders) -> HTTPHeaders {
        var headers = upstream
        let isHopByHop = HopByHop.predicate(connection: upstream.contains(name: "connection") ? upstream["connection"] : [])
        if upstream.contains(where: { isHopByHop($0.name) }) {
            headers = HTTPHeaders(upstream.filter { !isHopByHop($0.name) })
        }
        let prior = headers.contains(name: "via") ? headers["via"] : []
        if !prior.isEmpty { headers.remove(name: "via") }
        headers.add(name: "Via", value: via(after: prior))
        return headers
    }

    /// Folds every `Via` field into one and appends this hop.
    static func extendVia(_ headers: inout HeaderList) {
        let prior = headers.values("via")
        if !prior.isEmpty { headers.removeAll { asciiCaseInsensitiveEquals($0, "via") } }
        headers.append("Via", via(after: prior))
    }

    /// One `Via` value: the earlier hops, then this one.
    static func via(after prior: [String]) -> String {
        prior.isEmpty ? "1.1 gatehouse" : prior.joined(separator: ", ") + ", 1.1 gatehouse"
    }
}
