import Foundation

/// Field names and methods as most requests spell them, kept as string literals: a request's copy of a common
/// name is this literal (immortal: no allocation, and retains and releases of it do nothing) instead of a string
/// made from the head's bytes per request (~200 instructions each, callgrind; a browser head has a dozen names).
/// Only an exact byte match is replaced, so every name keeps its spelling as sent.
enum CommonNames {
    static let fieldNames: [String] = [
        "Host", "Authorization", "User-Agent", "Accept", "Accept-Encoding", "Accept-Language", "Connection", "Cookie",
        "Content-Type", "Content-Length", "Referer", "Origin", "Cache-Control", "Pragma", "Upgrade-Insecure-Requests",
        "Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-User", "If-None-Match", "If-Modified-Since",
        "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Request-Id", "X-Real-IP", "Priority", "DNT", "TE",
        "Transfer-Encoding", "Expect", "Upgrade", "Range", "Sec-CH-UA", "Sec-CH-UA-Mobile", "Sec-CH-UA-Platform",
        "host", "authorization", "user-agent", "accept", "accept-encoding", "accept-language", "connection", "cookie",
        "content-type", "content-length", "referer", "origin", "cache-control", "x-forwarded-for", "x-forwarded-proto",
        "x-request-id",
    ]
    static let methods: [String] = ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"]

    /// Candidates by byte length (all are under 32 bytes).
    static let fieldNamesByLength: [[(bytes: [UInt8], name: String)]] = byLength(fieldNames)
    static let methodsByLength: [[(bytes: [UInt8], name: String)]] = byLength(methods)

    static func byLength(_ names: [String]) -> [[(bytes: [UInt8], name: String)]] {
        var table = [[(bytes: [UInt8], name: String)]](repeating: [], count: 32)
        for name in names {
            precondition(name.utf8.count < 32)
            table[name.utf8.count].append((Array(name.utf8), name))
        }
        return table
    }

    /// The literal spelled exactly as these bytes, if there is one.
    @inline(__always) static func literal(_ bytes: UnsafeRawBufferPointer, in table: [[(bytes: [UInt8], name: String)]]) -> String? {
        guard bytes.count < 32, let base = bytes.baseAddress else { return nil }
        for candidate in table[bytes.count] where candidate.bytes.withUnsafeBytes({ memcmp($0.baseAddress!, base, bytes.count) == 0 }) {
            return candidate.name
        }
        return nil
    }
}
