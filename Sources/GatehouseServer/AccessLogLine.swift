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

    /// The longest line `render` can write: 13 string values of at most `maxValueBytes` bytes, each escaped to at
    /// most 6 bytes a byte, plus quotes and `…`, is 40,001 bytes; the keys and numbers add well under 1 KiB.
    static let maxLineBytes = 48 * 1024

    /// Renders into `scratch` (grown once to `maxLineBytes`, kept by the caller) through a pointer, then
    /// appends the line to `out` in one copy: forty-odd `Array.append`s per line, each checking uniqueness and
    /// capacity, were most of its cost.
    static func render(_ entry: AccessLog.Entry, now: timespec, into out: inout [UInt8], scratch: inout [UInt8],
                       clock: inout SecondClock) {
        if scratch.count < maxLineBytes { scratch = [UInt8](repeating: 0, count: maxLineBytes) }
        let time = clock.text(for: Int(now.tv_sec))
        scratch.withUnsafeMutableBufferPointer { buffer in
            var w = LineWriter(buffer.baseAddress!)
            w.literal(#"{"time":""#)
            time.withUnsafeBytes { w.bytes($0) }
            w.byte(UInt8(ascii: "."))
            w.digits(Int(now.tv_nsec / 1_000_000), 3)
            w.literal(#"Z","request_id":"#)
            w.string(entry.requestID)
            w.literal(#","method":"#)
            w.string(entry.method)
            w.literal(#","path":"#)
            w.optional(entry.path)
            w.literal(#","route":"#)
            w.optional(entry.route)
            w.literal(#","decision":"#)
            w.string(entry.decision)
            w.literal(#","status":"#)
            w.integer(entry.status)
            w.literal(#","user_id":"#)
            w.optional(entry.userID)
            if let type = entry.tokenType {
                w.literal(#","token_type":"#)
                w.string(type)
            }
            if let subject = entry.machineSubject {
                w.literal(#","machine_subject":"#)
                w.string(subject)
            }
            if let reason = entry.authReason {
                w.literal(#","auth_reason":"#)
                w.string(reason)
            }
            if let ms = entry.upstreamMilliseconds {
                w.literal(#","upstream_ms":"#)
                w.milliseconds(ms)
            }
            w.literal(#","duration_ms":"#)
            w.milliseconds(entry.durationMilliseconds)
            w.literal(#","bytes":"#)
            w.integer(entry.bytesSent)
            w.literal(#","client_ip":"#)
            w.optional(entry.clientAddress)
            w.literal(#","host":"#)
            w.optional(entry.host)
            w.literal(#","user_agent":"#)
            w.optional(entry.userAgent)
            w.literal(#","protocol":"#)
            w.string(entry.protocolVersion)
            w.literal("}\n")
            let length = w.at - buffer.baseAddress!
            precondition(length <= maxLineBytes, "access log line over its bound")
            out.append(contentsOf: UnsafeBufferPointer(start: buffer.baseAddress, count: length))
        }
    }

    /// Writes a line at a pointer with room for `maxLineBytes` (see `render`).
    struct LineWriter {
        var at: UnsafeMutablePointer<UInt8>
        init(_ start: UnsafeMutablePointer<UInt8>) { at = start }

        mutating func byte(_ b: UInt8) {
            at.pointee = b
            at += 1
        }

        mutating func bytes(_ b: UnsafeRawBufferPointer) {
            guard let base = b.baseAddress, !b.isEmpty else { return }
            UnsafeMutableRawPointer(at).copyMemory(from: base, byteCount: b.count)
            at += b.count
        }

        mutating func literal(_ text: StaticString) {
            // (withUTF8Buffer: a one-character literal such as `…` may be stored as a scalar, not as bytes.)
            text.withUTF8Buffer { bytes(UnsafeRawBufferPointer($0)) }
        }

        mutating func optional(_ value: String?) {
            if let value { string(value) } else { literal("null") }
        }

        /// A JSON string: `"`, `\` and control characters escaped; longer than `maxValueBytes` cut (at a UTF-8
        /// character start, so the line stays valid UTF-8) and marked with `…`.
        mutating func string(_ value: String) {
            byte(UInt8(ascii: "\""))
            var value = value
            value.withUTF8 { all in
                var end = all.count
                if end > AccessLogLine.maxValueBytes {
                    end = AccessLogLine.maxValueBytes
                    while end > 0 && all[end] & 0xC0 == 0x80 { end -= 1 }
                }
                let kept = UnsafeBufferPointer(rebasing: all[..<end])
                // Most values need no escaping: copied whole.
                if !kept.contains(where: { $0 < 0x20 || $0 == 0x7F || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
                    bytes(UnsafeRawBufferPointer(kept))
                } else {
                    for b in kept {
                        switch b {
                        case UInt8(ascii: "\""): literal(#"\""#)
                        case UInt8(ascii: "\\"): literal(#"\\"#)
                        case 0..<0x20, 0x7F:
                            literal(#"\u00"#)
                            byte(AccessLogLine.hex(b >> 4))
                            byte(AccessLogLine.hex(b & 0xF))
                        default: byte(b)
                        }
                    }
                }
                if end < all.count { literal("…") }
            }
            byte(UInt8(ascii: "\""))
        }

        mutating func integer(_ value: Int) {
            if value < 0 { byte(UInt8(ascii: "-")) }
            let magnitude = value.magnitude
            var divisor: UInt = 1
            while divisor <= magnitude / 10 { divisor *= 10 }
            while divisor > 0 {
                byte(UInt8(ascii: "0") + UInt8(magnitude / divisor % 10))
                divisor /= 10
            }
        }

        /// Three decimals, as before (`12.345`).
        mutating func milliseconds(_ value: Double) {
            guard value.isFinite, value >= 0 else { literal("0.000"); return }
            let micros = Int(min(value * 1000, 9e15).rounded())
            integer(micros / 1000)
            byte(UInt8(ascii: "."))
            digits(micros % 1000, 3)
        }

        mutating func digits(_ value: Int, _ width: Int) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            var rest = value
            while divisor > 0 {
                byte(UInt8(ascii: "0") + UInt8((rest / divisor) % 10))
                rest %= divisor
                divisor /= 10
            }
        }
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

    fileprivate static func hex(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }
}
