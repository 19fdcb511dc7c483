import Foundation
import Synchronization

/// An upstream whose every answer is scripted by the test, byte for byte (blocking sockets, a thread per
/// connection, no Gatehouse or NIO code): for upstreams that misbehave on purpose. It reads request heads
/// (and Content-Length bodies) and records each, then sends what `answer` returns for it in one write.
final class ScriptedUpstream: @unchecked Sendable {
    struct Received: Sendable {
        let connection: Int
        let head: String
        let body: [UInt8]
    }

    let port: Int
    private let listener: Int32
    private let stopped = Atomic<Bool>(false)
    private let record = Mutex<[Received]>([])
    let connections = Atomic<Int>(0)
    /// (connection number from 1, request number on it from 1, head) → bytes to send; nil closes.
    private let answer: @Sendable (Int, Int, String) -> [UInt8]?
    /// (connection, request) → close right after that answer (in the same instant, with no `Connection: close`).
    private let closeAfter: @Sendable (Int, Int) -> Bool

    init(closeAfter: @escaping @Sendable (Int, Int) -> Bool = { _, _ in false },
         answer: @escaping @Sendable (Int, Int, String) -> [UInt8]?) throws {
        self.answer = answer
        self.closeAfter = closeAfter
        let (fd, port) = try LoopbackListener.open()
        self.port = port
        listener = fd
        Thread.detachNewThread { [self] in
            while !stopped.load(ordering: .relaxed) {
                let client = accept(fd, nil, nil)
                if client < 0 { return }
                let number = connections.add(1, ordering: .relaxed).newValue
                Thread.detachNewThread { [self] in serve(client, number) }
            }
        }
    }

    var received: [Received] { record.withLock { $0 } }

    func stop() {
        stopped.store(true, ordering: .relaxed)
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private func serve(_ fd: Int32, _ connection: Int) {
        defer { close(fd) }
        var buffer: [UInt8] = []
        var requestNumber = 0
        func more() -> Bool {
            var chunk = [UInt8](repeating: 0, count: 65_536)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return false }
            buffer += chunk[0..<n]
            return true
        }
        while true {
            var end: Int?
            while end == nil {
                end = Self.find([13, 10, 13, 10], in: buffer)
                if end == nil, !more() { return }
            }
            let head = String(decoding: buffer[0..<end!], as: UTF8.self)
            buffer.removeFirst(end! + 4)
            var length = 0
            for line in head.components(separatedBy: "\r\n") where line.lowercased().hasPrefix("content-length:") {
                length = Int(line.dropFirst(15).trimmingCharacters(in: .whitespaces)) ?? 0
            }
            while buffer.count < length { if !more() { return } }
            let body = Array(buffer[0..<length])
            buffer.removeFirst(length)
            requestNumber += 1
            record.withLock { $0.append(Received(connection: connection, head: head, body: body)) }
            guard let bytes = answer(connection, requestNumber, head) else { return }
            var offset = 0
            while offset < bytes.count {
                let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { return }
                offset += n
            }
            if closeAfter(connection, requestNumber) { return }
        }
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] && Array(haystack[i..<(i + needle.count)]) == needle {
            return i
        }
        return nil
    }

    /// A response of exactly `total` bytes (head and body together).
    static func response(totalBytes total: Int, status: String = "200 OK") -> [UInt8] {
        func head(_ n: Int) -> String { "HTTP/1.1 \(status)\r\nContent-Type: text/plain\r\nContent-Length: \(n)\r\n\r\n" }
        var bodyLength = total - head(0).utf8.count
        while head(bodyLength).utf8.count + bodyLength > total { bodyLength -= 1 }
        return Array(head(bodyLength).utf8) + [UInt8](repeating: UInt8(ascii: "a"), count: bodyLength)
    }
}
