import COpenSSL

/// OpenSSL reports failures on a per-thread queue of codes; these turn it into words ("no shared cipher",
/// "wrong version number"). The strings are OpenSSL's static reason texts: they never carry key material.
enum OpenSSLErrorQueue {
    /// Drops stale entries so the next failure is read on its own. Asked first: the queue is nearly always
    /// empty, and `ERR_clear_error` on an empty queue still walks its 16 slots and frees 32 null pointers —
    /// three times per request over TLS (uprobes: 115 `free` calls per request against nginx's 80). An empty
    /// `ERR_peek_error` is what `SSL_get_error` itself reads, so the queue is as clean for it either way.
    static func clear() {
        if ERR_peek_error() != 0 { ERR_clear_error() }
    }

    /// Empties the queue and returns its distinct reasons, oldest first.
    static func drainReasons() -> [String] {
        var reasons: [String] = []
        while case let code = ERR_get_error(), code != 0 {
            let reason = ERR_reason_error_string(code).map { String(cString: $0) } ?? "OpenSSL error 0x\(String(code, radix: 16))"
            if !reasons.contains(reason) { reasons.append(reason) }
        }
        return reasons
    }

    static func drainDescription(fallback: String) -> String {
        let reasons = drainReasons()
        return reasons.isEmpty ? fallback : reasons.joined(separator: "; ")
    }
}
