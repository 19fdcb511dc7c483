import Foundation
@testable import GatehouseCore
import GatehouseDevIssuer
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// TEST DOUBLE of Clerk's Frontend API and Backend API, on 127.0.0.1. Only what Gatehouse's browser flow
/// touches:
/// - `GET /v1/client/handshake?redirect_url=…` — answers like Clerk's handshake endpoint: a 307 back to
///   `redirect_url` carrying a signed `__clerk_handshake` token (development: in the query; production: in a
///   cookie) or a `__clerk_handshake_nonce`, whose directives sign in `clientUser` (or sign out when nil);
/// - `GET /v1/clients/handshake_payload?nonce=…` — the Backend API's nonce exchange (needs the secret key);
/// - `/.well-known/jwks.json` — the instance keys;
/// - anything else — echoes what it received as JSON (for the Frontend API proxy), `/v1/redirect-me` answers
///   a redirect to itself.
final class FrontendAPIStandIn: Sendable {
    enum Transport: Sendable { case token, nonce }

    struct Behaviour: Sendable {
        /// Who the browser's Clerk client is signed in as (nil: nobody).
        var clientUser: String? = "user_returning"
        var transport: Transport = .token
        /// Signs handshake tokens and the sessions in them (a foreign issuer makes a forged handshake).
        var signer: DevIssuer = Fixtures.issuer
        var development: Bool
    }

    static let secretKey = "sk_test_standin"

    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let channel: any Channel
    let behaviour: Mutex<Behaviour>
    /// Query parameters of every handshake request received, in order.
    let handshakeRequests = Mutex<[[(name: String, value: String)]]>([])
    let nonces = Mutex<[String: [String]]>([:])
    let nonceExchanges = Atomic<Int>(0)
    private let stopOnce = StopOnce()

    var port: Int { channel.localAddress!.port! }
    var origin: String { "http://127.0.0.1:\(port)" }

    init(development: Bool) async throws {
        let behaviour = Mutex(Behaviour(development: development))
        self.behaviour = behaviour
        let box = StandInBox()
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(StandInHandler(box: box))
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

    func update(_ change: (inout Behaviour) -> Void) { behaviour.withLock { change(&$0) } }

    var lastHandshake: [(name: String, value: String)]? { handshakeRequests.withLock { $0.last } }

    /// The directives a handshake carries for the current behaviour.
    func directives(now: Double) -> [String] {
        let b = behaviour.withLock { $0 }
        guard let user = b.clientUser else {
            return ["__session=; Path=/; Max-Age=0", "__client_uat=0; Path=/; SameSite=Lax", "__clerk_handshake=; Path=/; Max-Age=0"]
        }
        let token = Fixtures.token(user, issuer: b.signer, iat: now.rounded(.down), azp: nil)
        var directives = ["__session=\(token); Path=/; HttpOnly; SameSite=Lax", "__client_uat=\(Int(now)); Path=/; SameSite=Lax",
                          "__clerk_handshake=; Path=/; Max-Age=0"]
        // A development Frontend API also hands out the dev browser the instance needs.
        if b.development { directives.append("__clerk_db_jwt=dvb_standin; Path=/; SameSite=Lax") }
        return directives
    }
}

final class StandInBox: @unchecked Sendable {
    weak var standIn: FrontendAPIStandIn?
}

final class StandInHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let box: StandInBox
    private var head: HTTPRequestHead?

    init(box: StandInBox) { self.box = box }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end: if let head, let standIn = box.standIn { respond(head, standIn: standIn, context: context) }
        }
    }

    private func send(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, body: String = "", headers extra: [(String, String)] = []) {
        var headers = HTTPHeaders([("Content-Length", String(body.utf8.count)), ("Content-Type", "application/json")])
        for (n, v) in extra { headers.add(name: n, value: v) }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
        buffer.writeString(body)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    private func respond(_ head: HTTPRequestHead, standIn: FrontendAPIStandIn, context: ChannelHandlerContext) {
        let parts = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = String(parts[0])
        let query = StandInHandler.parseQuery(parts.count > 1 ? String(parts[1]) : "")
        let now = Date().timeIntervalSince1970
        let behaviour = standIn.behaviour.withLock { $0 }
        switch path {
        case "/v1/client/handshake":
            standIn.handshakeRequests.withLock { $0.append(query) }
            guard let redirectURL = query.first(where: { $0.name == "redirect_url" })?.value else {
                send(context, .badRequest, body: "{\"error\":\"redirect_url missing\"}")
                return
            }
            let directives = standIn.directives(now: now)
            let name: String, value: String
            switch behaviour.transport {
            case .token:
                name = "__clerk_handshake"
                value = behaviour.signer.sign(JSONObject([("handshake", .array(directives.map(JSONValue.string)))]))
            case .nonce:
                name = "__clerk_handshake_nonce"
                value = "nonce_" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
                standIn.nonces.withLock { $0[value] = directives }
            }
            if behaviour.development {
                let separator = redirectURL.contains("?") ? "&" : "?"
                send(context, .temporaryRedirect, headers: [("Location", redirectURL + separator + name + "=" + StandInHandler.encode(value))])
            } else {
                send(context, .temporaryRedirect, headers: [("Location", redirectURL), ("Set-Cookie", "\(name)=\(value); Path=/; HttpOnly; SameSite=Lax")])
            }
        case "/v1/clients/handshake_payload":
            standIn.nonceExchanges.wrappingAdd(1, ordering: .relaxed)
            guard head.headers.first(name: "authorization") == "Bearer " + FrontendAPIStandIn.secretKey else {
                send(context, .unauthorized, body: "{\"errors\":[{\"code\":\"authentication_invalid\"}]}")
                return
            }
            let nonce = query.first(where: { $0.name == "nonce" })?.value ?? ""
            guard let directives = standIn.nonces.withLock({ $0.removeValue(forKey: nonce) }) else {
                send(context, .notFound, body: "{\"errors\":[{\"code\":\"resource_not_found\"}]}")
                return
            }
            send(context, .ok, body: StandInHandler.json(["directives": directives]))
        case "/.well-known/jwks.json":
            send(context, .ok, body: behaviour.signer.jwks.serialized())
        case "/v1/redirect-me":
            send(context, .found, headers: [("Location", standIn.origin + "/v1/client/sign_ins")])
        default:
            // Every value of every header, in order: a client copy sent next to Gatehouse's own must show.
            var headers: [String: [String]] = [:]
            for (name, value) in head.headers { headers[name.lowercased(), default: []].append(value) }
            let body = StandInHandler.json(["uri": head.uri, "headers": headers])
            send(context, .ok, body: body, headers: [("Set-Cookie", "__client=fapi; Path=/"), ("Set-Cookie", "__client_uat=1; Path=/")])
        }
    }
}

// Parsing and encoding with Foundation only: the stand-in must not judge Gatehouse with Gatehouse's own code.
extension StandInHandler {
    /// `application/x-www-form-urlencoded` pairs in order (`+` is a space).
    static func parseQuery(_ query: String) -> [(name: String, value: String)] {
        query.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map {
                $0.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0)
            }
            return (kv[0], kv.count > 1 ? kv[1] : "")
        }
    }

    static func encode(_ value: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
    }

    static func json(_ object: [String: Any]) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }
}

/// A browser in miniature for the handshake flow: one cookie jar for 127.0.0.1 (browsers do not separate
/// cookies by port, so the stand-in's cookies reach the gateway as Clerk's reach the app on its parent
/// domain), redirects followed by hand so each hop can be inspected.
/// Used by one test at a time; `navigate` runs its blocking sockets on a thread of its own, off Swift's
/// cooperative pool, which the in-process gateway's async decisions (JWKS re-fetch, nonce exchange) need: on 2 cores a
/// blocked pool made the nonce exchange time out and the handshake loop.
final class MiniBrowser: @unchecked Sendable {
    var jar: [String: String] = [:]

    struct Hop {
        let port: Int
        let target: String
        let response: RawClient.Response
    }

    /// GET `url` (http://127.0.0.1:port/…) as a page navigation, following up to `maxHops` redirects.
    func navigate(_ url: String, maxHops: Int = 8, extraHeaders: [(String, String)] = []) async throws -> [Hop] {
        try await withCheckedThrowingContinuation { continuation in
            // A thread of its own: on Linux Swift's async tasks also run on Dispatch's global queue.
            Thread {
                continuation.resume(with: Result { try self.navigateBlocking(url, maxHops: maxHops, extraHeaders: extraHeaders) })
            }.start()
        }
    }

    private func navigateBlocking(_ url: String, maxHops: Int, extraHeaders: [(String, String)]) throws -> [Hop] {
        var hops: [Hop] = []
        var next = url
        for _ in 0..<maxHops {
            guard let (port, target) = MiniBrowser.split(next) else { break }
            let client = try RawClient(port: port)
            var headers: [(String, String)] = [("Sec-Fetch-Dest", "document"), ("Accept", "text/html")] + extraHeaders
            let cookies = jar.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: "; ")
            if !cookies.isEmpty { headers.append(("Cookie", cookies)) }
            guard let response = client.request("GET", target, headers: headers, host: "127.0.0.1:\(port)") else { break }
            hops.append(Hop(port: port, target: target, response: response))
            store(response)
            guard [301, 302, 303, 307, 308].contains(response.status), let location = response.header("location") else { break }
            next = location.hasPrefix("/") ? "http://127.0.0.1:\(port)" + location : location
        }
        return hops
    }

    func store(_ response: RawClient.Response) {
        for (name, value) in response.headers where name.lowercased() == "set-cookie" {
            let pair = value.split(separator: ";", maxSplits: 1).first.map(String.init) ?? value
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let expired = value.lowercased().contains("max-age=0") || (kv.count > 1 && kv[1].isEmpty)
            if expired { jar.removeValue(forKey: kv[0]) } else { jar[kv[0]] = kv.count > 1 ? kv[1] : "" }
        }
    }

    static func split(_ url: String) -> (Int, String)? {
        guard url.hasPrefix("http://127.0.0.1:") else { return nil }
        let rest = url.dropFirst("http://127.0.0.1:".count)
        let portText = rest.prefix { $0.isNumber }
        guard let port = Int(portText) else { return nil }
        let target = String(rest.dropFirst(portText.count))
        return (port, target.isEmpty ? "/" : target)
    }
}
