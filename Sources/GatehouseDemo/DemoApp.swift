import Foundation
import GatehouseCore
import GatehouseDevIssuer
import NIOCore
import NIOHTTP1
import NIOPosix

/// DEVELOPMENT ONLY. The app behind the gateway in `gatehouse demo`: a local token issuer (JWKS, a sign-in
/// page that sets a `__session` cookie for a demo user, a bearer-token endpoint), a stand-in for Clerk's
/// Frontend API handshake (so the browser flow of a returning user can be seen), and pages that show the
/// identity headers Gatehouse sent. Nothing here is used unless `gatehouse demo` is run.
public final class DemoApp: Sendable {
    public struct User: Sendable {
        public let id: String
        public let name: String
        public let orgRole: String
        public let permissions: [String]
        public let role: String
    }

    public static let users: [User] = [
        User(id: "user_admin", name: "Ada Admin", orgRole: "org:admin", permissions: ["org:billing:manage"], role: "admin"),
        User(id: "user_member", name: "Mo Member", orgRole: "org:member", permissions: [], role: "member"),
    ]

    public let issuer: DevIssuer
    let group: MultiThreadedEventLoopGroup
    let channel: any Channel
    /// Demo sessions last an hour (Clerk's last 60 s and are refreshed by Clerk's browser script).
    static let tokenLifetime: Double = 3600
    /// The demo's "Frontend API host": the `iss` of its tokens and the host in its publishable key.
    public static let frontendAPIHost = "clerk.gatehouse.invalid"
    /// A development publishable key naming `frontendAPIHost`.
    public static var publishableKey: String {
        "pk_test_" + Data((frontendAPIHost + "$").utf8).base64EncodedString()
    }

    public var port: Int { channel.localAddress?.port ?? 0 }
    public var jwksURL: String { "http://127.0.0.1:\(port)/.well-known/jwks.json" }

    public init(host: String = "127.0.0.1", port: Int = 0) async throws {
        let issuer = try DevIssuer(kid: "gatehouse-demo")
        self.issuer = issuer
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(DemoAppHandler(issuer: issuer))
                }
            }
            .bind(host: host, port: port).get()
    }

    public func stop() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }

    /// A session token for a demo user, as Clerk would issue it (v1 org claims, `metadata.role`).
    public static func token(for user: User, issuer: DevIssuer, azp: String?, now: Double = Date().timeIntervalSince1970) -> String {
        let claims = DevIssuer.sessionClaims(
            userId: user.id, sessionId: "sess_" + user.id.dropFirst(5), issuedAt: now.rounded(.down), lifetime: tokenLifetime,
            issuer: "https://" + frontendAPIHost, azp: azp, org: ("org_acme", "acme", user.orgRole, user.permissions),
            extra: ["metadata": ["role": .string(user.role)], "name": .string(user.name)])
        return issuer.sign(claims)
    }
}

final class DemoAppHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let issuer: DevIssuer
    private var head: HTTPRequestHead?
    private var body = ""

    init(issuer: DevIssuer) { self.issuer = issuer }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = ""
        case .body(var buffer):
            if body.utf8.count < 8192 { body += buffer.readString(length: buffer.readableBytes) ?? "" }
        case .end:
            if let head { respond(head, context: context) }
        }
    }

    private func send(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, _ contentType: String, _ text: String, extra: [(String, String)] = []) {
        var headers = HTTPHeaders([("Content-Type", contentType), ("Content-Length", String(text.utf8.count)), ("Cache-Control", "no-store")])
        for (n, v) in extra { headers.add(name: n, value: v) }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        var buffer = context.channel.allocator.buffer(capacity: text.utf8.count)
        buffer.writeString(text)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    private func respond(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let (path, query) = DemoAppHandler.split(head.uri)
        let host = head.headers.first(name: "x-forwarded-host") ?? head.headers.first(name: "host") ?? "127.0.0.1"
        let origin = (head.headers.first(name: "x-forwarded-proto") ?? "http") + "://" + host
        switch (head.method, path) {
        case (.GET, "/.well-known/jwks.json"):
            send(context, .ok, "application/json", issuer.jwks.serialized())
        case (.GET, "/dev/token"):
            let name = query["user"] ?? "admin"
            guard let user = DemoApp.users.first(where: { $0.role == name || $0.id == name }) else {
                send(context, .notFound, "text/plain", "unknown demo user '\(name)'; try admin or member\n")
                return
            }
            send(context, .ok, "text/plain", DemoApp.token(for: user, issuer: issuer, azp: origin) + "\n")
        case (.GET, "/v1/client/handshake"):
            handshake(query: query, cookies: DemoAppHandler.cookies(head), origin: origin, context: context)
        case (.GET, "/dev/expire-session"):
            // "Back from a coffee break": the session token expired ten minutes ago, the Clerk client is still
            // signed in. The next page load goes through the handshake and comes back signed in.
            guard let userID = DemoAppHandler.cookies(head).value("__demo_client"), let user = DemoApp.users.first(where: { $0.id == userID }) else {
                send(context, .seeOther, "text/plain", "not signed in\n", extra: [("Location", "/sign-in")])
                return
            }
            let then = Date().timeIntervalSince1970 - 600 - DemoApp.tokenLifetime
            let stale = DemoApp.token(for: user, issuer: issuer, azp: origin, now: then)
            send(context, .seeOther, "text/plain", "session expired\n", extra: [
                ("Location", "/dashboard"),
                ("Set-Cookie", "__session=\(stale); Path=/; HttpOnly; SameSite=Lax"),
                ("Set-Cookie", "__client_uat=\(Int(then)); Path=/; SameSite=Lax"),
            ])
        case (.GET, "/sign-in"):
            send(context, .ok, "text/html; charset=utf-8", DemoPages.signIn(redirect: query["redirect_url"] ?? "/dashboard"))
        case (.POST, "/sign-in"):
            let form = DemoAppHandler.parseForm(body)
            guard let user = DemoApp.users.first(where: { $0.id == form["user"] }) else {
                send(context, .badRequest, "text/plain", "unknown demo user\n")
                return
            }
            let token = DemoApp.token(for: user, issuer: issuer, azp: origin)
            let now = Int(Date().timeIntervalSince1970)
            let target = DemoAppHandler.sameOriginPath(form["redirect_url"] ?? "/dashboard", host: host)
            send(context, .seeOther, "text/plain", "signed in as \(user.name)\n", extra: [
                ("Location", target),
                ("Set-Cookie", "__session=\(token); Path=/; HttpOnly; SameSite=Lax; Max-Age=\(Int(DemoApp.tokenLifetime))"),
                ("Set-Cookie", "__client_uat=\(now); Path=/; SameSite=Lax; Max-Age=\(Int(DemoApp.tokenLifetime))"),
                // The demo Frontend API's "client": who this browser is signed in as, for handshakes.
                ("Set-Cookie", "__demo_client=\(user.id); Path=/; HttpOnly; SameSite=Lax"),
            ])
        case (.GET, "/sign-out"), (.POST, "/sign-out"):
            send(context, .seeOther, "text/plain", "signed out\n", extra: [
                ("Location", "/"),
                ("Set-Cookie", "__session=; Path=/; Max-Age=0"), ("Set-Cookie", "__client_uat=0; Path=/; Max-Age=0"),
                ("Set-Cookie", "__demo_client=; Path=/; Max-Age=0"),
            ])
        default:
            var identity: [(String, String)] = []
            for (name, value) in head.headers where name.lowercased().hasPrefix("x-gatehouse-") { identity.append((name, value)) }
            send(context, .ok, "text/html; charset=utf-8", DemoPages.app(path: path, identity: identity))
        }
    }

    /// The Frontend API's handshake, as the demo's stand-in for it: back to `redirect_url` (same host only) with
    /// a signed `__clerk_handshake` whose directives set a fresh session for the demo client (or sign out), and
    /// the dev browser a development instance needs.
    private func handshake(query: [String: String], cookies: CookieJar, origin: String, context: ChannelHandlerContext) {
        guard let target = query["redirect_url"], target.hasPrefix(origin + "/") else {
            send(context, .badRequest, "text/plain", "redirect_url must be on this origin\n")
            return
        }
        var directives = ["__clerk_db_jwt=dvb_gatehouse_demo; Path=/; SameSite=Lax"]
        if let userID = cookies.value("__demo_client"), let user = DemoApp.users.first(where: { $0.id == userID }) {
            let now = Date().timeIntervalSince1970
            directives += [
                "__session=\(DemoApp.token(for: user, issuer: issuer, azp: origin, now: now)); Path=/; HttpOnly; SameSite=Lax",
                "__client_uat=\(Int(now)); Path=/; SameSite=Lax",
            ]
        } else {
            directives += ["__session=; Path=/; Max-Age=0", "__client_uat=0; Path=/; SameSite=Lax"]
        }
        let token = issuer.sign(JSONObject([("handshake", .array(directives.map(JSONValue.string)))]))
        let separator = target.contains("?") ? "&" : "?"
        send(context, .temporaryRedirect, "text/plain", "handshake\n", extra: [("Location", target + separator + "__clerk_handshake=" + token)])
    }

    /// The request's cookies, read as the gateway reads them (first of a repeated name wins).
    static func cookies(_ head: HTTPRequestHead) -> CookieJar {
        CookieJar(headerValues: head.headers["cookie"])
    }

    static func split(_ uri: String) -> (String, [String: String]) {
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        return (String(parts[0]), parts.count > 1 ? parseForm(String(parts[1])) : [:])
    }

    /// `application/x-www-form-urlencoded` (a query or a form body); a repeated name keeps its last value.
    static func parseForm(_ text: String) -> [String: String] {
        Dictionary(FormQuery.parse(text).map { ($0.name, $0.value) }, uniquingKeysWith: { _, last in last })
    }

    /// Only paths on this origin: an absolute URL for another host becomes "/" (no open redirect).
    static func sameOriginPath(_ target: String, host: String) -> String {
        if target.hasPrefix("/") && !target.hasPrefix("//") && !target.contains("\\") { return target }
        for scheme in ["http://", "https://"] where target.hasPrefix(scheme + host + "/") {
            return String(target.dropFirst(scheme.count + host.count))
        }
        return "/"
    }
}

enum DemoPages {
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static let style = """
        <style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222}
        .dev{background:#fff3cd;border:1px solid #e0c36b;padding:.5rem .8rem;border-radius:6px}
        nav a{margin-right:1rem} table{border-collapse:collapse} td{border:1px solid #ccc;padding:.3rem .6rem;font-family:monospace}
        button{font-size:1rem;margin:.3rem 0;padding:.5rem 1rem}</style>
        """

    static let banner = "<p class=\"dev\">⚠ Gatehouse <b>demo</b> with a local <b>development issuer</b>. Never use it in production.</p>"

    static func nav() -> String {
        "<nav><a href=\"/\">Home</a><a href=\"/dashboard\">Dashboard</a><a href=\"/admin\">Admin</a><a href=\"/orgs/acme/settings\">Org settings</a><a href=\"/sign-out\">Sign out</a></nav>"
    }

    static func signIn(redirect: String) -> String {
        let buttons = DemoApp.users.map { user in
            "<form method=\"post\" action=\"/sign-in\"><input type=\"hidden\" name=\"user\" value=\"\(user.id)\"><input type=\"hidden\" name=\"redirect_url\" value=\"\(escape(redirect))\"><button id=\"sign-in-\(user.role)\">Sign in as \(escape(user.name)) (\(user.orgRole) of acme)</button></form>"
        }.joined()
        return "<!doctype html><title>Sign in · Gatehouse demo</title>\(style)\(banner)<h1>Sign in</h1><p>Choose a demo user:</p>\(buttons)"
    }

    static func app(path: String, identity: [(String, String)]) -> String {
        let rows = identity.isEmpty
            ? "<p>No identity headers: you are not signed in (this page is public).</p>"
            : "<table>" + identity.map { "<tr><td>\(escape($0.0))</td><td>\(escape($0.1))</td></tr>" }.joined() + "</table>"
        let title = path == "/" ? "Home" : escape(path)
        return "<!doctype html><title>\(title) · Gatehouse demo</title>\(style)\(banner)\(nav())<h1 id=\"page\">\(title)</h1><p>The upstream app received these identity headers from Gatehouse:</p>\(rows)"
    }
}
