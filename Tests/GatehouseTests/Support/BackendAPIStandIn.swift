import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// TEST DOUBLE of Clerk's Backend API machine-token verify endpoints, on 127.0.0.1:
/// `POST /api_keys/verify` (`{"secret"}`), `/m2m_tokens/verify` (`{"token"}`),
/// `/oauth_applications/access_tokens/verify` (`{"access_token"}`). Bodies are parsed with Foundation, never
/// with Gatehouse code. It answers from a table of tokens (404 otherwise), counts calls, records what it was
/// sent, and can be slow, down (closes connections unanswered) or rate-limiting (429).
final class BackendAPIStandIn: Sendable {
    enum Mode: Sendable, Equatable {
        case normal
        /// Answers after this many seconds.
        case slow(Double)
        /// Closes every connection without an answer.
        case down
        /// 429 with `Retry-After: 1`.
        case rateLimited
    }

    struct Received: Sendable {
        let path: String
        let authorization: String?
        let apiVersion: String?
        let contentType: String?
        /// The body's members, as Foundation parsed them.
        let body: [String: String]
    }

    static let secretKey = "sk_live_backendstandin"

    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let channel: any Channel
    let mode = Mutex<Mode>(.normal)
    let answers = Mutex<[String: (status: Int, body: String)]>([:])
    let received = Mutex<[Received]>([])
    private let stopOnce = StopOnce()

    var port: Int { channel.localAddress!.port! }
    var origin: String { "http://127.0.0.1:\(port)" }
    var calls: Int { received.withLock { $0.count } }

    init() async throws {
        let box = BackendStandInBox()
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(BackendStandInHandler(box: box))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        box.standIn = self
        ServerRegistry.register { [self] in await self.stop() }
    }

    func stop() async {
        await stopOnce.run { [channel, group] in
            try? await channel.close()
            try? await group.shutdownGracefully()
        }
    }

    func answer(_ token: String, status: Int = 200, _ body: String) { answers.withLock { $0[token] = (status, body) } }
    func setMode(_ new: Mode) { mode.withLock { $0 = new } }
}

final class BackendStandInBox: @unchecked Sendable {
    weak var standIn: BackendAPIStandIn?
}

final class BackendStandInHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let box: BackendStandInBox
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []

    init(box: BackendStandInBox) { self.box = box }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = []
        case .body(let buffer): body += buffer.readableBytesView
        case .end: if let head, let standIn = box.standIn { respond(head, standIn: standIn, context: context) }
        }
    }

    static let bodyKeys = ["/api_keys/verify": "secret", "/m2m_tokens/verify": "token", "/oauth_applications/access_tokens/verify": "access_token"]

    private func respond(_ head: HTTPRequestHead, standIn: BackendAPIStandIn, context: ChannelHandlerContext) {
        let parsed = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:]
        var members: [String: String] = [:]
        for (key, value) in parsed { members[key] = value as? String ?? "\(value)" }
        standIn.received.withLock {
            $0.append(.init(path: head.uri, authorization: head.headers.first(name: "authorization"), apiVersion: head.headers.first(name: "clerk-api-version"),
                            contentType: head.headers.first(name: "content-type"), body: members))
        }
        let mode = standIn.mode.withLock { $0 }
        if mode == .down {
            context.close(promise: nil)
            return
        }
        var status = 404
        var text = #"{"errors":[{"message":"not found","long_message":"Resource not found","code":"resource_not_found"}]}"#
        var extra: [(String, String)] = []
        if mode == .rateLimited {
            status = 429
            text = #"{"errors":[{"message":"Too many requests","code":"too_many_requests"}]}"#
            extra = [("Retry-After", "1")]
        } else if head.method != .POST || head.headers.first(name: "authorization")?.hasPrefix("Bearer ") != true {
            status = 401
            text = #"{"errors":[{"message":"Invalid secret key","code":"authentication_invalid"}]}"#
        } else if let key = BackendStandInHandler.bodyKeys[head.uri], let token = members[key], let known = standIn.answers.withLock({ $0[token] }) {
            status = known.status
            text = known.body
        }
        let send = { [self] in
            var headers = HTTPHeaders([("Content-Length", String(text.utf8.count)), ("Content-Type", "application/json")])
            for (n, v) in extra { headers.add(name: n, value: v) }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: text)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
        if case .slow(let seconds) = mode {
            context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(seconds * 1000))) { send() }
        } else {
            send()
        }
    }
}
