import Foundation

/// Renders one access-log entry as a JSON line straight into bytes: no JSON tree, no `String(format:)`, the
/// date formatted once per second. Every value is bounded (`maxValueBytes`) so one line cannot crowd out
/// others, and escaped as JSON requires (quotes, backslashes, control characters).
enum AccessLogLine {
    /// Client-chosen values (path, host, user agent…) beyond this many bytes are cut at a character boundary.
    static let maxValueBytes = 512

    /// `YYYY-MM-DDTHH:MM:SS` of the last second seen.
    struct SecondClock {
        var second = -1
        var text: [UInt8] = []

        mutating func text(for second: Int) -> [UInt8] {
            if second != self.second {
                var tm = tm()
                var seconds = time_t(second)
                gmtime_r(&seconds, &tm)
                var out: [UInt8] = []
                out.reserveCapacity(19)
                AccessLogLine.digits(Int(tm.tm_year) + 1900, 4, &out); out.append(UInt8(ascii: "-"))
                AccessLogLine.digits(Int(tm.tm_mon) + 1, 2, &out); out.append(UInt8(ascii: "-"))
                AccessLogLine.digits(Int(tm.tm_mday), 2, &out); out.append(UInt8(ascii: "T"))
                AccessLogLine.digits(Int(tm.tm_hour), 2, &out); out.append(UInt8(ascii: ":"))
                AccessLogLine.digits(Int(tm.tm_min), 2, &out); out.append(UInt8(ascii: ":"))
                AccessLogLine.digits(Int(tm.tm_sec), 2, &out)
                self.second = second
                text = out
            }
            return text
        }
    }

    static func render(_ entry: AccessLog.Entry, now: timespec, into out: inout [UInt8], clock: inout SecondClock) {
        out.append(contentsOf: #"{"time":""#.utf8)
        out.append(contentsOf: clock.text(for: Int(now.tv_sec)))
        out.append(UInt8(ascii: "."))
        digits(Int(now.tv_nsec / 1_000_000), 3, &out)
        out.append(contentsOf: #"Z","request_id":"#.utf8)
        string(entry.requestID, &out)
        out.append(contentsOf: #","method":"#.utf8)
        string(entry.method, &out)
        out.append(contentsOf: #","path":"#.utf8)
        optional(entry.path, &out)
        out.append(contentsOf: #","route":"#.utf8)
        optional(entry.route, &out)
        out.append(contentsOf: #","decision":"#.utf8)
        string(entry.decision, &out)
        out.append(contentsOf: #","status":"#.utf8)
        integer(entry.status, &out)
        out.append(contentsOf: #","user_id":"#.utf8)
        optional(entry.userID, &out)
        if let type = entry.tokenType {
            out.append(contentsOf: #","token_type":"#.utf8)
            string(type, &out)
        }
        if let subject = entry.machineSubject {
            out.append(contentsOf: #","machine_subject":"#.utf8)
            string(subject, &out)
        }
        if let reason = entry.authReason {
            out.append(contentsOf: #","auth_reason":"#.utf8)
            string(reason, &out)
        }
        if let ms = entry.upstreamMilliseconds {
            out.append(contentsOf: #","upstream_ms":"#.utf8)
            milliseconds(ms, &out)
        }
        out.append(contentsOf: #","duration_ms":"#.utf8)
        milliseconds(entry.durationMilliseconds, &out)
        out.append(contentsOf: #","bytes":"#.utf8)
        integer(entry.bytesSent, &out)
        out.append(contentsOf: #","client_ip":"#.utf8)
        optional(entry.clientAddress, &out)
        out.append(contentsOf: #","host":"#.utf8)
        optional(entry.host, &out)
        out.append(contentsOf: #","user_agent":"#.utf8)
        optional(entry.userAgent, &out)
        out.append(contentsOf: #","protocol":"#.utf8)
        string(entry.protocolVersion, &out)
        out.append(contentsOf: "}\n".utf8)
    }

    static func optional(_ value: String?, _ out: inout [UInt8]) {
        if let value { string(value, &out) } else { out.append(contentsOf: "null".utf8) }
    }

    /// A JSON string: `"`, `\` and control characters escaped; longer than `maxValueBytes` cut (at a UTF-8
    /// character start, so the line stays valid UTF-8) and marked with `…`.
    static func string(_ value: String, _ out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { bytes in
            var end = bytes.count
            if end > maxValueBytes {
                end = maxValueBytes
                while end > 0 && bytes[end] & 0xC0 == 0x80 { end -= 1 }
            }
            // Most values need no escaping: copy them whole (per-byte appends were most of a line's cost).
            if !bytes[..<end].contains(where: { $0 < 0x20 || $0 == 0x7F || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
                out.append(contentsOf: bytes[..<end])
                if end < bytes.count { out.append(contentsOf: "…".utf8) }
                return
            }
            for byte in bytes[..<end] {
                switch byte {
                case UInt8(ascii: "\""): out.append(contentsOf: #"\""#.utf8)
                case UInt8(ascii: "\\"): out.append(contentsOf: #"\\"#.utf8)
                case 0..<0x20, 0x7F:
                    out.append(contentsOf: #"\u00"#.utf8)
                    out.append(hex(byte >> 4))
                    out.append(hex(byte & 0xF))
                default: out.append(byte)
                }
            }
            if end < bytes.count { out.append(contentsOf: "…".utf8) }
        }
        out.append(UInt8(ascii: "\""))
    }

    static func integer(_ value: Int, _ out: inout [UInt8]) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        let magnitude = value.magnitude
        var divisor: UInt = 1
        while divisor <= magnitude / 10 { divisor *= 10 }
        while divisor > 0 {
            out.append(UInt8(ascii: "0") + UInt8(magnitude / divisor % 10))
            divisor /= 10
        }
    }

    /// Three decimals, as before (`12.345`).
    static func milliseconds(_ value: Double, _ out: inout [UInt8]) {
        guard value.isFinite, value >= 0 else { out.append(contentsOf: "0.000".utf8); return }
        let micros = Int(min(value * 1000, 9e15).rounded())
        integer(micros / 1000, &out)
        out.append(UInt8(ascii: "."))
        digits(micros % 1000, 3, &out)
    }

    static func digits(_ value: Int, _ width: Int, _ out: inout [UInt8]) {
        var divisor = 1
        for _ in 1..<width { divisor *= 10 }
        var rest = value
        while divisor > 0 {
            out.append(UInt8(ascii: "0") + UInt8((rest / divisor) % 10))
            rest %= divisor
            divisor /= 10
        }
    }

    private static func hex(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }
}
