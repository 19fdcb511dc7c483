import Foundation
import Synchronization

/// An upstream that reports the request head it received, byte for byte, parsed here with no Gatehouse or
/// NIO code: what an app behind a proxy really sees. It answers each request with `200` and a body of one
/// `name: value` line per header field, names as sent (so `_`, `.` and case variants stay visible).
/// Blocking sockets, a thread per connection, HTTP/1.x keep-alive.
final class HeaderEchoServer: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let stopped = Atomic<Bool>(false)

    init() throws {
        let (fd, port) = try LoopbackListener.open()
        self.port = port
        listener = fd
        Thread.detachNewThread { [self] in
            while !stopped.load(ordering: .relaxed) {
                let client = accept(fd, nil, nil)
                if client < 0 { return }
                Thread.detachNewThread { HeaderEchoServer.serve(client) }
            }
        }
    }

    func stop() {
        stopped.store(true, ordering: .relaxed)
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    /// One received request head: its header fields in order, exactly as written on the wire.
    struct Received {
        let requestLine: String
        let fields: [(name: String, value: String)]
    }

    private static func serve(_ fd: Int32) {
        defer { close(fd) }
        var buffer: [UInt8] = []
        while true {
            // Read one head.
            var end: Int? = nil
            while end == nil {
                if let range = find([13, 10, 13, 10], in: buffer) { end = range; break }
                var chunk = [UInt8](repeating: 0, count: 16_384)
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { return }
                buffer += chunk[0..<n]
            }
            let head = String(decoding: buffer[0..<end!], as: UTF8.self)
            buffer.removeFirst(end! + 4)
            let lines = head.components(separatedBy: "\r\n")
            var body = ""
            var contentLength = 0
            var close = lines[0].hasSuffix("HTTP/1.0")
            for line in lines.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                let name = String(line[..<colon])
                let value = line[line.index(after: colon)...].trimmingCharacters(in: CharacterSet(charactersIn: " \t"))
                body += "\(name): \(value)\n"
                if name.lowercased() == "content-length" { contentLength = Int(value) ?? 0 }
                if name.lowercased() == "connection" { close = value.lowercased() == "close" ? true : (value.lowercased() == "keep-alive" ? false : close) }
            }
            // Discard a body (the proxies send none here, but keep framing right).
            while buffer.count < contentLength {
                var chunk = [UInt8](repeating: 0, count: 16_384)
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { return }
                buffer += chunk[0..<n]
            }
            buffer.removeFirst(contentLength)
            body = lines[0] + "\n" + body
            let response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n"
                + (close ? "Connection: close\r\n" : "") + "\r\n" + body
            let bytes = Array(response.utf8)
            var offset = 0
            while offset < bytes.count {
                let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { return }
                offset += n
            }
            if close { return }
        }
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] && Array(haystack[i..<(i + needle.count)]) == needle {
            return i
        }
        return nil
    }

    /// Reads the report this server wrote as a response body.
    static func parse(_ body: String) -> Received {
        var lines = body.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let requestLine = lines.isEmpty ? "" : lines.removeFirst()
        let fields = lines.compactMap { line -> (name: String, value: String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), String(line[line.index(after: colon)...].dropFirst()))
        }
        return Received(requestLine: requestLine, fields: fields)
    }
}
