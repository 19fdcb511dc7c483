import Foundation
@testable import GatehouseCore
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import Synchronization

/// A real upstream on 127.0.0.1 for end-to-end tests. Paths:
/// - `/echo…` answers JSON with the method, target and headers it received;
/// - `/slow?ms=N` answers after N milliseconds;
/// - `/download?bytes=N` streams N bytes;
/// - `/upload` counts the request body it receives and answers the count;
/// - `/jwks` serves `jwks` (503 when nil) and counts fetches.
final class TestUpstream: Sendable {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let channel: any Channel
    let connections = Atomic<Int>(0)
    /// Connections open right now (the gateway's side of each, seen from here).
    let openConnections = Atomic<Int>(0)
    let jwksFetches = Atomic<Int>(0)
    let jwks = Mutex<String?>(nil)
    /// Every request target received, in order.
    let targets = Mutex<[String]>([])
    private let stopOnce = StopOnce()

    var port: Int { channel.localAddress!.port! }

    init() async throws {
        let box = UpstreamBox()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    box.upstream?.connections.wrappingAdd(1, ordering: .relaxed)
                    box.upstream?.openConnections.wrappingAdd(1, ordering: .relaxed)
                    channel.closeFuture.whenComplete { _ in box.upstream?.openConnections.wrappingSubtract(1, ordering: .relaxed) }
                    // `/ws` upgrades to a WebSocket that echoes every frame.
                    let upgrader = NIOWebSocketServerUpgrader(
                        shouldUpgrade: { channel, head in
                            channel.eventLoop.makeSucceededFuture(head.uri.hasPrefix("/ws") ? HTTPHeaders() : nil)
                        },
                        upgradePipelineHandler: { channel, _ in
                            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(WebSocketEcho()) }
                        })
                    let handler = UpstreamTestHandler(box: box)
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withServerUpgrade: (upgraders: [upgrader], completionHandler: { context in
                            context.pipeline.syncOperations.removeHandler(handler, promise: nil)
                        }))
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        self.channel = channel
        box.upstream = self
        ServerRegistry.register { [self] in await self.stop() }
    }

    /// Whether `target` reached this upstream within `seconds` (polled): a test that stops or signals the gateway
    /// while a request is in flight must first know the request got that far, however late its client started.
    func received(_ target: String, within seconds: Double = 10) async -> Bool {
        await eventually(within: seconds) { targets.withLock { $0.contains(target) } }
    }

    func stop() async {
        await stopOnce.run { [channel, group] in
            try? await channel.close()
            try? await group.shutdownGracefully()
        }
    }
}

final class WebSocketEcho: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: frame.opcode, data: frame.unmaskedData)), promise: nil)
        case .connectionClose:
            context.close(promise: nil)
        default:
            break
        }
    }
}

final class UpstreamBox: @unchecked Sendable {
    weak var upstream: TestUpstream?
}

final class UpstreamTestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let box: UpstreamBox
    var head: HTTPRequestHead?
    var received = 0
    /// Set by `/close-next`: the next request on this connection is answered by closing it.
    var closeNext = false

    init(box: UpstreamBox) { self.box = box }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            received = 0
            box.upstream?.targets.withLock { $0.append(head.uri) }
            if head.uri.hasPrefix("/public/early") {
                // Answers at once, before the request body (which it never reads to the end).
                respond(head, context: context)
                self.head = nil
            }
        case .body(let buffer):
            received += buffer.readableBytes
        case .end:
            guard let head else { return }
            if closeNext {
                context.close(promise: nil)
                return
            }
            if head.uri.hasSuffix("/close-next") { closeNext = true }
            respond(head, context: context)
        }
    }

    private func send(_ context: ChannelHandlerContext, status: HTTPResponseStatus = .ok, body: String, contentType: String = "application/json") {
        var headers = HTTPHeaders([("Content-Type", contentType), ("Content-Length", String(body.utf8.count))])
        headers.add(name: "Connection", value: "keep-alive")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
        buffer.writeString(body)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    private func respond(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?").first.map(String.init) ?? head.uri
        let query = head.uri.split(separator: "?").dropFirst().first.map(String.init) ?? ""
        func number(_ name: String) -> Int {
            for pair in query.split(separator: "&") where pair.hasPrefix(name + "=") { return Int(pair.dropFirst(name.count + 1)) ?? 0 }
            return 0
        }
        if path == "/jwks" {
            box.upstream?.jwksFetches.wrappingAdd(1, ordering: .relaxed)
            if let document = box.upstream?.jwks.withLock({ $0 }) { send(context, body: document) } else { send(context, status: .serviceUnavailable, body: "{}") }
        } else if path == "/slow" {
            let ms = number("ms")
            context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(ms))) { self.send(context, body: "{\"slow\":\(ms)}") }
        } else if path == "/download" {
            let total = number("bytes")
            let headers = HTTPHeaders([("Content-Type", "application/octet-stream"), ("Content-Length", String(total))])
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            streamDownload(context: context, remaining: total)
        } else if path.hasPrefix("/public/stall") {
            // Half of what its Content-Length promises, then nothing (the connection stays open).
            let half = max(1, number("bytes"))
            let headers = HTTPHeaders([("Content-Type", "application/octet-stream"), ("Content-Length", String(2 * half))])
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            var buffer = context.channel.allocator.buffer(capacity: half)
            buffer.writeRepeatingByte(UInt8(ascii: "s"), count: half)
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        } else if path == "/upload" {
            send(context, body: "{\"received\":\(received)}")
        } else {
            // Foundation's serializer, not Gatehouse's: the double must not share the code under test.
            var headers: [String: [String]] = [:]
            for (name, value) in head.headers { headers[name.lowercased(), default: []].append(value) }
            let object: [String: Any] = ["method": head.method.rawValue, "uri": head.uri, "bodyBytes": received, "headers": headers]
            let body = String(decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
            send(context, body: body)
        }
    }

    /// Writes 64 KiB chunks, waiting for each write to complete: memory stays bounded on this side too.
    private func streamDownload(context: ChannelHandlerContext, remaining: Int) {
        if remaining == 0 {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            return
        }
        let size = min(65_536, remaining)
        var buffer = context.channel.allocator.buffer(capacity: size)
        buffer.writeRepeatingByte(UInt8(ascii: "x"), count: size)
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(buffer)))).assumeIsolated().whenSuccess {
            // Via the loop, not directly: a write that completes at once would otherwise recurse.
            context.eventLoop.assumeIsolated().execute { self.streamDownload(context: context, remaining: remaining - size) }
        }
    }
}

/// A blocking HTTP/1.1 client on a raw socket: it sends exactly the bytes a test writes, so malformed and
/// smuggling requests can be tried, and reads responses framed by Content-Length or chunked encoding.
final class RawClient {
    let fd: Int32
    private var buffer: [UInt8] = []

    struct Response {
        let status: Int
        let headers: [(String, String)]
        let body: [UInt8]
        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
        var text: String { String(decoding: body, as: UTF8.self) }
        /// Parsed by Foundation (then shown as Gatehouse's JSONValue for convenient comparisons).
        var json: JSONValue? { (try? JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed])).flatMap(JSONValue.init(foundation:)) }
        var foundationJSON: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] }
    }

    init(port: Int, timeout: Double = 10) throws {
        fd = try RawClient.connectedSocket(port: port, timeout: timeout)
    }

    /// A blocking TCP socket connected to 127.0.0.1:`port`, reads timing out after `timeout` seconds (closed
    /// again when the connect fails). For tests that manage the descriptor themselves.
    static func connectedSocket(port: Int, timeout: Double) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            close(fd)
            throw POSIXError(.ECONNREFUSED)
        }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    deinit { close(fd) }

    /// Sends that failed (a reset or a closed connection while sending).
    private(set) var sendFailures = 0

    /// Leaves: both directions shut down now (the descriptor itself is closed at deinit).
    func hangUp() { Glibc.shutdown(fd, Int32(SHUT_RDWR)) }

    func send(_ text: String) { send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { sendFailures += 1; return }
            offset += n
        }
    }

    /// Reads more bytes; false on EOF, error or timeout.
    private func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { return false }
        buffer.append(contentsOf: chunk[0..<n])
        return true
    }

    /// True when the server closed the connection (EOF) within the socket timeout. Bytes that arrive before
    /// the EOF are kept (see `unread`): a response the server should not have sent is evidence, not noise.
    func isClosedByPeer() -> Bool {
        while true {
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return true }
            if n < 0 { return errno == ECONNRESET }
            buffer.append(contentsOf: chunk[0..<n])
        }
    }

    /// Received bytes not consumed by a read yet.
    var unread: String { String(decoding: buffer, as: UTF8.self) }

    private func line() -> String? {
        while true {
            if let i = buffer.firstIndex(of: 10) {
                let text = String(decoding: buffer[0..<i], as: UTF8.self).trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
                buffer.removeFirst(i + 1)
                return text
            }
            if !fill() { return nil }
        }
    }

    func readBytes(_ count: Int) -> [UInt8]? { bytes(count, discard: false) }

    /// Sends a masked WebSocket text frame (clients must mask) and reads the echoed, unmasked one.
    func webSocketEcho(_ text: String) -> String? {
        let payload = Array(text.utf8)
        precondition(payload.count < 126)
        let mask: [UInt8] = [1, 2, 3, 4]
        send([0x81, 0x80 | UInt8(payload.count)] + mask + payload.enumerated().map { $1 ^ mask[$0 % 4] })
        guard let header = readBytes(2), header[0] == 0x81, let body = readBytes(Int(header[1] & 0x7F)) else { return nil }
        return String(decoding: body, as: UTF8.self)
    }

    private func bytes(_ count: Int, discard: Bool) -> [UInt8]? {
        var out: [UInt8] = []
        var remaining = count
        while remaining > 0 {
            if buffer.isEmpty, !fill() { return nil }
            let take = min(remaining, buffer.count)
            if !discard { out.append(contentsOf: buffer[0..<take]) }
            buffer.removeFirst(take)
            remaining -= take
        }
        return out
    }

    /// Reads one response; with `discardBody` the body is counted, not kept (large downloads).
    func readResponse(method: String = "GET", discardBody: Bool = false) -> (Response, Int)? {
        guard let statusLine = line(), statusLine.hasPrefix("HTTP/1."), let status = Int(statusLine.split(separator: " ")[1]) else { return nil }
        var headers: [(String, String)] = []
        while let l = line(), !l.isEmpty {
            guard let colon = l.firstIndex(of: ":") else { continue }
            headers.append((String(l[..<colon]), l[l.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        let response = { (body: [UInt8]) in Response(status: status, headers: headers, body: body) }
        if method == "HEAD" || status == 204 || status == 304 { return (response([]), 0) }
        if let length = headers.first(where: { $0.0.lowercased() == "content-length" }).flatMap({ Int($0.1) }) {
            guard let body = bytes(length, discard: discardBody) else { return nil }
            return (response(body), length)
        }
        if headers.contains(where: { $0.0.lowercased() == "transfer-encoding" }) {
            var body: [UInt8] = []
            var total = 0
            while let sizeLine = line(), let size = Int(sizeLine.split(separator: ";")[0], radix: 16) {
                if size == 0 {
                    _ = line()
                    break
                }
                guard let chunk = bytes(size, discard: discardBody) else { return nil }
                body += chunk
                total += size
                _ = line()
            }
            return (response(body), total)
        }
        return (response([]), 0)
    }

    /// One request on this connection.
    func request(_ method: String = "GET", _ target: String, headers: [(String, String)] = [], body: String? = nil, host: String = "app.example.com") -> Response? {
        var text = "\(method) \(target) HTTP/1.1\r\nHost: \(host)\r\n"
        for (n, v) in headers { text += "\(n): \(v)\r\n" }
        if let body { text += "Content-Length: \(body.utf8.count)\r\n" }
        text += "\r\n" + (body ?? "")
        send(text)
        return readResponse(method: method)?.0
    }
}

/// Resident memory of this process in bytes (from /proc/self/statm).
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    return (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
}

extension JSONValue {
    /// Converts what Foundation's JSONSerialization parsed; nil for anything it cannot represent.
    init?(foundation value: Any) {
        switch value {
        case is NSNull: self = .null
        case let number as NSNumber:
            if "\(value)" == "true" || "\(value)" == "false" {
                self = .bool(number.boolValue)
            } else if let int = Int(exactly: number.doubleValue), !"\(number)".contains(".") {
                self = .number(JSONNumber(int))
            } else {
                self = .number(JSONNumber(validatedText: "\(number)"))
            }
        case let string as String: self = .string(string)
        case let array as [Any]:
            var values: [JSONValue] = []
            for element in array {
                guard let converted = JSONValue(foundation: element) else { return nil }
                values.append(converted)
            }
            self = .array(values)
        case let dictionary as [String: Any]:
            var members: [(key: String, value: JSONValue)] = []
            for key in dictionary.keys.sorted() {
                guard let converted = JSONValue(foundation: dictionary[key]!) else { return nil }
                members.append((key, converted))
            }
            self = .object(JSONObject(members))
        default: return nil
        }
    }
}

/// Loopback addresses an upstream connection cannot complete on, for the 502/504 paths.
final class UnreachableUpstream: @unchecked Sendable {
    enum Kind {
        /// Bound but not listening: connections are refused at once (502).
        case refusing
        /// Listening with a backlog of 0 whose queue one never-accepted connection fills: the kernel drops
        /// further SYNs, so a connect hangs until its timeout (504). No non-loopback address is needed.
        case hanging
    }

    private var fds: [Int32] = []
    let port: Int

    init(_ kind: Kind) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        port = Int(UInt16(bigEndian: address.sin_port))
        fds.append(fd)
        if case .hanging = kind {
            listen(fd, 0)
            let filler = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(filler, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            fds.append(filler)
        }
    }

    deinit { fds.forEach { close($0) } }
}
