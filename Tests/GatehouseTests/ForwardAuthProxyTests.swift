import Foundation
import GatehouseCore
import Testing

/// The README's forward-auth snippets, read out of README.md, run by real nginx and real Caddy in front of an
/// upstream that reports the header fields it received (HeaderEchoServer: its own parsing). Every identity
/// header name, spoofed by the client under several spellings, must reach the app only with Gatehouse's value
/// or not at all; denials must reach the client with their real status.
/// scripts/test.sh installs both and sets GATEHOUSE_REQUIRE_NGINX=1 / GATEHOUSE_REQUIRE_CADDY=1, so CI never
/// skips these.
@Suite(.serialized) struct ForwardAuthProxyTests {
    enum Kind: String, CustomStringConvertible, CaseIterable {
        case nginx, caddy
        var description: String { rawValue }
        var binary: String? {
            let candidates = self == .nginx ? ["/usr/sbin/nginx", "/usr/bin/nginx"] : ["/usr/bin/caddy"]
            return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
        }
        var required: Bool {
            ProcessInfo.processInfo.environment[self == .nginx ? "GATEHOUSE_REQUIRE_NGINX" : "GATEHOUSE_REQUIRE_CADDY"] == "1"
        }
    }

    static let routes = GatewayHarness.defaultRoutes + """

          - { name: hidden, match: ["/hidden(.*)"], require: { org_role: "org:admin" }, on_forbidden: 404 }
        """

    /// Every identity header name Gatehouse sets with this harness's config (claims `X-User-Email: email`),
    /// written out here rather than taken from the implementation.
    static let identityNames = [
        "X-Gatehouse-Route", "X-Gatehouse-User-Id", "X-Gatehouse-Session-Id", "X-Gatehouse-Org-Id", "X-Gatehouse-Org-Role",
        "X-Gatehouse-Org-Slug", "X-Gatehouse-Org-Permissions", "X-Gatehouse-Actor-Id", "X-Gatehouse-Token", "X-Gatehouse-Assertion", "X-Gatehouse-Token-Type", "X-Gatehouse-Subject", "X-Gatehouse-Machine-Id", "X-Gatehouse-Client-Id", "X-Gatehouse-Scopes", "X-Gatehouse-Key-Name", "X-User-Email",
    ]
    static let foreignNames = [
        "Remote-User", "Remote-Groups", "Remote-Email", "Remote-Name", "X-Forwarded-User", "X-Forwarded-Email",
        "X-Forwarded-Groups", "X-Forwarded-Preferred-Username",
    ]

    /// The spellings a client may try: as Gatehouse writes it, lower, upper, `_`, `.`, and one `_` among `-`.
    static let spellings: [(String, @Sendable (String) -> String)] = [
        ("exact", { $0 }), ("lower", { $0.lowercased() }), ("upper", { $0.uppercased() }),
        ("underscores", { $0.replacingOccurrences(of: "-", with: "_") }),
        ("dots", { $0.replacingOccurrences(of: "-", with: ".") }),
        ("mixed", { name in
            guard let last = name.range(of: "-", options: .backwards) else { return name }
            return name.replacingCharacters(in: last, with: "_")
        }),
    ]

    /// How an app that folds `_`/`.` into `-` and ignores case would read a name (Rack, WSGI, CGI, PHP…).
    static func folded(_ name: String) -> String {
        String(name.lowercased().map { $0 == "_" || $0 == "." ? "-" : $0 })
    }

    // MARK: Snippets out of the README

    static let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("README.md")

    /// The fenced code block right after `<!-- snippet:NAME -->` in README.md.
    static func snippet(_ name: String) throws -> String {
        let text = try String(contentsOf: readme, encoding: .utf8)
        let marker = try #require(text.range(of: "<!-- snippet:\(name) -->"), "README.md has no snippet marker \(name)")
        let rest = text[marker.upperBound...]
        let open = try #require(rest.range(of: "```"))
        let bodyStart = try #require(rest[open.upperBound...].range(of: "\n")).upperBound
        let close = try #require(rest[bodyStart...].range(of: "\n```"))
        return String(rest[bodyStart..<close.lowerBound])
    }

    /// The README's snippet with the test's ports for Gatehouse (8080 there) and the app (3000).
    static func ported(_ snippet: String, gatehouse: Int, app: Int) throws -> String {
        #expect(snippet.contains("127.0.0.1:8080") && snippet.contains("127.0.0.1:3000"))
        return snippet.replacingOccurrences(of: "127.0.0.1:8080", with: "127.0.0.1:\(gatehouse)")
            .replacingOccurrences(of: "127.0.0.1:3000", with: "127.0.0.1:\(app)")
    }

    // MARK: Running a proxy

    final class RunningProxy {
        let process = Process()
        let port: Int
        let log: String
        init(_ kind: Kind, binary: String, gateway: GatewayHarness, app: HeaderEchoServer) async throws {
            let directory = gateway.directory.appendingPathComponent(kind.rawValue).path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            port = GatewayProcess.freePorts(1)[0]
            log = directory + "/error.log"
            let configPath: String
            switch kind {
            case .nginx:
                let server = try ForwardAuthProxyTests.ported(ForwardAuthProxyTests.snippet("nginx-forward-auth"), gatehouse: gateway.port, app: app.port)
                configPath = directory + "/nginx.conf"
                try """
                worker_processes 1;
                daemon off;
                error_log \(log) warn;
                pid \(directory)/nginx.pid;
                events { worker_connections 64; }
                http {
                    access_log off;
                    client_body_temp_path \(directory)/body; proxy_temp_path \(directory)/proxy;
                    fastcgi_temp_path \(directory)/fastcgi; uwsgi_temp_path \(directory)/uwsgi; scgi_temp_path \(directory)/scgi;
                    server {
                        listen 127.0.0.1:\(port);
                \(server)
                    }
                }
                """.write(toFile: configPath, atomically: true, encoding: .utf8)
                process.arguments = ["-p", directory, "-c", configPath]
            case .caddy:
                let site = try ForwardAuthProxyTests.ported(ForwardAuthProxyTests.snippet("caddy-forward-auth"), gatehouse: gateway.port, app: app.port)
                #expect(site.hasPrefix("app.example.com {"))
                configPath = directory + "/Caddyfile"
                try """
                {
                    admin off
                    auto_https off
                    default_bind 127.0.0.1
                    storage file_system \(directory)/data
                }
                \(site.replacingOccurrences(of: "app.example.com {", with: "http://app.example.com:\(port) {"))
                """.write(toFile: configPath, atomically: true, encoding: .utf8)
                process.arguments = ["run", "--config", configPath, "--adapter", "caddyfile"]
                process.environment = ["HOME": directory, "XDG_DATA_HOME": directory + "/data", "XDG_CONFIG_HOME": directory + "/config"]
            }
            process.executableURL = URL(fileURLWithPath: binary)
            FileManager.default.createFile(atPath: directory + "/output.log", contents: nil)
            let output = try FileHandle(forWritingTo: URL(fileURLWithPath: directory + "/output.log"))
            process.standardOutput = output
            process.standardError = output
            try process.run()
            for _ in 0..<400 {
                if (try? RawClient(port: port, timeout: 1)) != nil { return }
                if !process.isRunning { break }
                try await Task.sleep(for: .milliseconds(25))
            }
            let said = (try? String(contentsOfFile: directory + "/output.log", encoding: .utf8)) ?? ""
            let logged = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            stop()
            throw StartFailure(description: "\(kind) did not start listening: \(said) \(logged)")
        }

        func stop() {
            if process.isRunning {
                process.terminate()
                process.waitUntilExit()
            }
        }
    }

    /// A gateway trusting 127.0.0.1 (the proxy), the echo app, and the proxy running the README's snippet.
    static func withProxy(_ kind: Kind, _ body: (RunningProxy, HeaderEchoServer) async throws -> Void) async throws {
        let binary = try #require(kind.binary, "\(kind) binary missing")
        let gateway = try await GatewayHarness(routes: routes) {
            $0.replacingOccurrences(of: "trusted_proxies: [\"10.9.9.9\"]", with: "trusted_proxies: [\"127.0.0.1\"]")
        }
        let app = try HeaderEchoServer()
        let proxy: RunningProxy
        do {
            proxy = try await RunningProxy(kind, binary: binary, gateway: gateway, app: app)
        } catch {
            app.stop()
            await gateway.stop()
            throw error
        }
        do {
            try await body(proxy, app)
        } catch {
            proxy.stop()
            app.stop()
            await gateway.stop()
            throw error
        }
        proxy.stop()
        app.stop()
        await gateway.stop()
    }

    static func available(_ kind: Kind) -> Bool { kind.binary != nil || kind.required }

    static let member = ServerIntegrationTests.fresh(
        "user_member", org: ("org_1", "acme", "org:member", ["org:billing:read"]),
        extra: ["email": "m@example.com", "act": ["sub": "user_support"]])

    /// What the app sees for one request through the proxy.
    static func throughProxy(_ proxy: RunningProxy, _ target: String, headers: [(String, String)]) throws -> (RawClient.Response, HeaderEchoServer.Received?) {
        let response = try #require(try RawClient(port: proxy.port).request("GET", target, headers: headers + [("Connection", "close")]))
        let received = response.status == 200 ? HeaderEchoServer.parse(response.text) : nil
        return (response, received)
    }

    /// Checks that, for every identity and foreign name (folded as a lenient app would), the app received
    /// exactly `expected[name]` once, or nothing when `expected` has no value for it — never a spoofed value,
    /// an empty one, or a literal placeholder.
    static func expectIdentity(_ received: HeaderEchoServer.Received, _ expected: [String: String], _ context: String) {
        for name in identityNames + foreignNames {
            let seen = received.fields.filter { folded($0.name) == folded(name) }.map(\.value)
            if let value = expected[name] {
                #expect(seen == [value], "\(context): \(name) reached the app as \(seen), expected [\(value)]")
            } else {
                #expect(seen.isEmpty, "\(context): \(name) reached the app as \(seen), expected nothing")
            }
        }
    }

    static func spoofHeaders(_ spelling: (String) -> String) -> [(String, String)] {
        (identityNames + foreignNames).map { (spelling($0), "spoofed") }
    }

    // MARK: Tests

    @Test(arguments: Kind.allCases)
    func spoofedIdentityHeadersNeverReachTheApp(kind: Kind) async throws {
        guard Self.available(kind) else {
            print("skipped: \(kind) is not installed (scripts/test.sh installs it)")
            return
        }
        try await Self.withProxy(kind) { proxy, _ in
            for (label, spelling) in Self.spellings {
                // Anonymous on a public route: only the route name is Gatehouse's to say.
                let (publicResponse, anonymous) = try Self.throughProxy(proxy, "/public/x", headers: Self.spoofHeaders(spelling))
                #expect(publicResponse.status == 200, "\(kind) \(label): public route answered \(publicResponse.status)")
                if let anonymous {
                    #expect(anonymous.requestLine.hasPrefix("GET /public/x "))
                    Self.expectIdentity(anonymous, ["X-Gatehouse-Route": "public"], "\(kind) public \(label)")
                }
                // Signed-in member on a protected route: Gatehouse's values, nothing of the client's.
                let (response, signedIn) = try Self.throughProxy(proxy, "/echo/x", headers: Self.spoofHeaders(spelling) + [bearer(Self.member)])
                #expect(response.status == 200, "\(kind) \(label): protected route answered \(response.status)")
                if let signedIn {
                    Self.expectIdentity(signedIn, [
                        "X-Gatehouse-Route": "app", "X-Gatehouse-User-Id": "user_member", "X-Gatehouse-Session-Id": "sess_dev",
                        "X-Gatehouse-Org-Id": "org_1", "X-Gatehouse-Org-Role": "org:member", "X-Gatehouse-Org-Slug": "acme",
                        "X-Gatehouse-Org-Permissions": "org:billing:read", "X-Gatehouse-Actor-Id": "user_support",
                        "X-User-Email": "m@example.com",
                    ], "\(kind) protected \(label)")
                }
            }
            // A member without organization or email: those names are absent, not empty, not spoofed.
            let plain = ServerIntegrationTests.fresh("user_plain")
            let (response, received) = try Self.throughProxy(proxy, "/echo/y", headers: Self.spoofHeaders { $0 } + [bearer(plain)])
            #expect(response.status == 200)
            if let received {
                Self.expectIdentity(received, ["X-Gatehouse-Route": "app", "X-Gatehouse-User-Id": "user_plain", "X-Gatehouse-Session-Id": "sess_dev"],
                                    "\(kind) protected, no org")
            }
        }
    }

    @Test(arguments: Kind.allCases)
    func denialsReachTheClientWithTheirRealStatus(kind: Kind) async throws {
        guard Self.available(kind) else {
            print("skipped: \(kind) is not installed (scripts/test.sh installs it)")
            return
        }
        try await Self.withProxy(kind) { proxy, _ in
            func status(_ target: String, _ headers: [(String, String)] = []) throws -> RawClient.Response {
                try Self.throughProxy(proxy, target, headers: headers).0
            }
            let admin = ServerIntegrationTests.fresh("user_admin", extra: ["metadata": ["role": "admin"]])
            // Signed out: an API call gets 401, a page the 307 to sign-in with the original URL.
            #expect(try status("/dashboard", [("Accept", "application/json")]).status == 401)
            let page = try status("/dashboard?tab=2", [("Accept", "text/html")])
            #expect(page.status == 307)
            #expect(page.header("location") == "/sign-in?redirect_url=http%3A%2F%2Fapp.example.com%2Fdashboard%3Ftab%3D2")
            // Signed in, not allowed: 403, or 404 where the rule says on_forbidden: 404.
            #expect(try status("/admin", [bearer(Self.member)]).status == 403)
            #expect(try status("/hidden/x", [bearer(Self.member)]).status == 404)
            #expect(try status("/admin", [bearer(admin)]).status == 200)
            // A path trick is judged on the canonical path.
            #expect(try status("/public/%2e%2e/admin", [bearer(Self.member)]).status == 403)
            // The client cannot name the request Gatehouse judges: the snippet's original-request headers win.
            for spoof in [("X-Forwarded-Uri", "/public/x"), ("X-Original-URI", "/public/x"), ("X-Forwarded-Method", "OPTIONS")] {
                let spoofed = try status("/admin", [spoof, ("Accept", "application/json")])
                // 401 as without it; Caddy's request carrying nginx's header too is refused as ambiguous (403).
                let expected = kind == .caddy && spoof.0 == "X-Original-URI" ? 403 : 401
                #expect(spoofed.status == expected, "\(kind): \(spoof.0) changed the decision to \(spoofed.status)")
            }
        }
    }
}
