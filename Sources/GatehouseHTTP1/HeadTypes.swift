// GatehouseHTTP1: the HTTP/1.1 layer of Gatehouse's coming data plane (issue 11), on bytes and sans-IO.
// The event loop will own the connection buffers; this module only reads them: a request head becomes byte
// ranges (method, target, fields) plus its framing, so the head can be forwarded with Gatehouse's changes
// spliced in without building strings; a response is relayed after reading only its head and framing; bodies
// are never copied (decoders hand back ranges). It is strict on purpose (README "HTTP/1.1 on bytes"): it
// refuses at least what llhttp's strict mode refuses, and what it accepts llhttp and h11 read the same way
// (Tests/GatehouseTests/HTTP1). Not yet used by the daemon, which still runs on SwiftNIO's codecs.

/// One field line of a head: byte ranges of its name and of its value (without surrounding whitespace),
/// both offsets into the buffer the parser was given.
public struct FieldRange: Sendable, Equatable {
    public var name: Range<Int>
    public var value: Range<Int>
    /// The whole line including its CRLF (what a head rewrite copies or drops).
    public var line: Range<Int>
}

public enum HTTPVersion: Sendable, Equatable {
    case http10, http11
}

/// The methods relayed. The list is the intersection of RFC 9110's and the WebDAV methods with llhttp's
/// method table, so nothing we accept is unknown to an llhttp-based upstream; other tokens → 501.
public enum HTTPMethod: Sendable, Equatable {
    case get, head, post, put, delete, options, trace, patch
    case propfind, proppatch, mkcol, copy, move, lock, unlock
    /// An extension method in llhttp's table (PURGE, REPORT, SEARCH…): relayed, and routes may name it.
    case llhttpExtension
}

/// RFC 9112 §3.2's forms (authority-form exists only for CONNECT, which is refused).
public enum TargetForm: Sendable, Equatable {
    /// `/path?query`
    case origin
    /// `http://host/path` or `https://…`: the authority is the range after `//`.
    case absolute(authority: Range<Int>)
    /// `*`, only with OPTIONS.
    case asterisk
}

/// The Connection field's options that change how the connection is handled (RFC 9112 §9.3, §9.6).
public struct ConnectionOptions: Sendable, Equatable {
    public var close = false
    public var keepAlive = false
    public var upgrade = false
    /// The other option tokens: names of further hop-by-hop fields to drop when forwarding (RFC 9110 §7.6.1).
    /// (Empty in the common case, so no allocation.)
    public var otherTokens: [Range<Int>] = []
    public init() {}
}

public enum RequestBodyFraming: Sendable, Equatable {
    case none
    case contentLength(Int)
    case chunked
}

public struct RequestHead: Sendable, Equatable {
    public var method: Range<Int>
    public var knownMethod: HTTPMethod
    public var target: Range<Int>
    public var targetForm: TargetForm
    public var version: HTTPVersion
    public var fields: [FieldRange]
    /// Bytes of the head, including the blank line: where the body (or the next request) starts.
    public var length: Int
    /// Index into `fields` of Host, if any (absent only in HTTP/1.0).
    public var host: Int?
    public var body: RequestBodyFraming
    public var connection: ConnectionOptions
    /// Index into `fields` of Upgrade, if any.
    public var upgrade: Int?
    public var expectsContinue: Bool

    /// Whether the connection may carry another request after this one (RFC 9112 §9.3).
    public var keepAlive: Bool {
        if connection.close { return false }
        return version == .http11 || connection.keepAlive
    }
}

public enum ResponseBodyFraming: Sendable, Equatable {
    /// HEAD responses, 204, 304 (RFC 9112 §6.3 rule 1).
    case none
    case contentLength(Int)
    case chunked
    /// No length: the body ends when the upstream closes (the upstream connection cannot be reused).
    case untilClose
    /// 1xx other than 101 (100 Continue, 103 Early Hints): forward it, then parse the next head.
    case interim
    /// 101: the connection becomes a tunnel after this head.
    case switchingProtocols
}

public struct ResponseHead: Sendable, Equatable {
    public var version: HTTPVersion
    public var status: Int
    public var reason: Range<Int>
    public var fields: [FieldRange]
    public var length: Int
    public var body: ResponseBodyFraming
    public var connection: ConnectionOptions

    public var keepAlive: Bool {
        if connection.close || body == .untilClose { return false }
        return version == .http11 || connection.keepAlive
    }
}

/// One step of an incremental head parse.
public enum HeadParse<Head: Sendable & Equatable>: Sendable, Equatable {
    /// Not enough bytes yet: call again with the same bytes and more after them.
    case needMore
    case complete(Head)
    case refused(HTTP1Refusal)
}
