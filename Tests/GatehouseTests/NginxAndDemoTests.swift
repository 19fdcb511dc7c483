import Foundation
@testable import GatehouseCore
import GatehouseDemo
import NIOCore
@testable import GatehouseServer
import Testing

/// nginx `auth_request` in front of a real upstream, asking Gatehouse's forward-auth endpoint.
/// scripts/test.sh installs nginx and sets GATEHOUSE_REQUIRE_NGINX=1, so CI never skips this.
@Suite(.serialized) struct NginxForwardAuthTests {
    static let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static let required = ProcessInfo.processInfo.environment["GATEHOUSE_REQUIRE_NGINX"] == "1"

    /// The snippet from the README, with test ports.
    static func config(directory: String, port: Int, gatehousePort: Int, upstreamPort: Int) -> String {
        """
        worker_processes 1;
        daemon off;
        error_log \(directory)/error.log warn;
        pid \(directory)/nginx.pid;
        events { worker_connections 64; }
        http {
            access_log off;
            absolute_redirect off;
            client_body_temp_path \(directory)/body; proxy_temp_path \(directory)/proxy;
            fastcgi_temp_path \(directory)/fastcgi; uwsgi_temp_path \(directory)/uwsgi; scgi_temp_path \(directory)/scgi;
            server {
                listen 127.0.0.1:\(port);
                location = /_gatehouse/auth {
                    internal;
                    proxy_pass http://127.0.0.1:\(gatehousePort)/_gatehouse/auth;
                    proxy_pass_request_body off;
                    proxy_set_header Content-Length "";
                    proxy_set_header X-Original-URI $request_uri;
                    proxy_set_header X-Original-Method $request_method;
                    proxy_set_header X-Forwarded-Host $host;
                    proxy_set_header X-Forwarded-Proto $scheme;
                }
                location @gatehouse_unauthenticated {
                    if ($gatehouse_location) { return 307 $gatehouse_location; }
                    return 401;
                }
                location / {
                    auth_request /_gatehouse/auth;
                    auth_request_set $gatehouse_location $upstream_http_x_gatehouse_location;
                    auth_request_set $gatehouse_user $upstream_http_x_gatehouse_user_id;
                    auth_request_set $gatehouse_session $upstream_http_x_gatehouse_session_id;
                    auth_request_set $gatehouse_org $upstream_http_x_gatehouse_org_id;
                    auth_request_set $gatehouse_org_role $upstream_http_x_gatehouse_org_role;
                    error_page 401 = @gatehouse_unauthenticated;
                    proxy_set_header X-Gatehouse-User-Id $gatehouse_user;
                    proxy_set_header X-Gatehouse-Session-Id $gatehouse_session;
                    proxy_set_header X-Gatehouse-Org-Id $gatehouse_org;
                    proxy_set_header X-Gatehouse-Org-Role $gatehouse_org_role;
                    proxy_pass http://127.0.0.1:\(upstreamPort);
                }
            }
        }
        """
    }

    @Test(.enabled(if: nginx != nil || required, "nginx is not installed (scripts/test.sh installs it)"))
    func nginxAuthRequestThroughGatehouse() async throws {
        let nginx = try #require(Self.nginx, "nginx binary missing")
        let h = try await GatewayHarness { $0.replacingOccurrences(of: "trusted_proxies: [\"10.9.9.9\"]", with: "trusted_proxies: [\"127.0.0.1\"]") }
        defer { Task { await h.stop() } }
        let directory = h.directory.appendingPathComponent("nginx").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let port = GatewayProcess.freePorts(1)[0]
        let configPath = directory + "/nginx.conf"
        try Self.config(directory: directory, port: port, gatehousePort: h.port, upstreamPort: h.upstream.port)
            .write(toFile: configPath, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: nginx)
        process.arguments = ["-p", directory, "-c", configPath]
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { process.terminate(); process.waitUntilExit() }
        var up = false
        for _ in 0..<200 where !up {
            up = (try? RawClient(port: port, timeout: 1)) != nil
            if !up { try await Task.sleep(for: .milliseconds(25)) }
        }
        #expect(up, "nginx did not start: \((try? String(contentsOfFile: directory + "/error.log", encoding: .utf8)) ?? "")")

        let member = ServerIntegrationTests.fresh("user_member", org: ("org_1", "acme", "org:member", []))
        let admin = ServerIntegrationTests.fresh("user_admin", extra: ["metadata": ["role": "admin"]])
        let c = try RawClient(port: port)
        // Signed in: allowed, identity from Gatehouse, the client's own look-alike gone.
        let allowed = try #require(c.request("GET", "/echo/x", headers: [bearer(member), ("X-Gatehouse-User-Id", "user_admin")]))
        #expect(allowed.status == 200)
        let headers = allowed.json?.objectValue?["headers"]?.objectValue
        #expect(headers?["x-gatehouse-user-id"] == ["user_member"])
        #expect(headers?["x-gatehouse-org-role"] == ["org:member"])
        // Signed in, not allowed.
        #expect(c.request("GET", "/admin", headers: [bearer(member)])?.status == 403)
        #expect(c.request("GET", "/admin", headers: [bearer(admin)])?.status == 200)
        // Signed out: API → 401, browser page → redirect to sign in with the original URL.
        #expect(c.request("GET", "/dashboard", headers: [("Accept", "application/json")])?.status == 401)
        let page = try #require(c.request("GET", "/dashboard?tab=2", headers: [("Accept", "text/html")]))
        #expect(page.status == 307)
        #expect(page.header("location") == "/sign-in?redirect_url=http%3A%2F%2Fapp.example.com%2Fdashboard%3Ftab%3D2")
        // A path trick is judged on the canonical path.
        #expect(c.request("GET", "/public/%2e%2e/admin", headers: [bearer(member)])?.status == 403)
        // Public routes pass without a token.
        #expect(c.request("GET", "/public/x")?.status == 200)
    }
}

/// The `gatehouse demo` flow over real sockets: redirect to sign in, sign in, admin vs member.
@Suite struct DemoFlowTests {
    @Test func newcomerFlow() async throws {
        let app = try await DemoApp()
        let ports = GatewayProcess.freePorts(2)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-demo-test-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let configPath = directory.appendingPathComponent("demo.yaml").path
        try DemoConfig.yaml(port: ports[0], adminPort: ports[1], appPort: app.port, jwksURL: app.jwksURL)
            .replacingOccurrences(of: "listen: \"127.0.0.1:\(ports[0])\"", with: "listen: \"127.0.0.1:\(ports[0])\"\naccess_log: off")
            .write(toFile: configPath, atomically: true, encoding: .utf8)
        let settings = try ConfigLoader.load(path: configPath, environment: [:])
        let state = await GatewayState(configPath: configPath, settings: settings)
        let server = GatewayServer(state: state)
        try await server.start()
        let port = server.publicAddress!.port!

        let base = "http://127.0.0.1:\(port)"
        let browser = MiniBrowser()
        // First visit: a development instance fetches a dev browser through the Frontend API stand-in
        // (/__clerk), comes back to the same URL, and a signed-out page load goes on to sign in.
        let first = try browser.navigate(base + "/dashboard")
        #expect(first.map(\.response.status) == [307, 307, 307, 307, 200])
        #expect(first[0].response.header("x-clerk-auth-reason") == "dev-browser-missing")
        #expect(first[0].response.header("location")?.hasPrefix(base + "/__clerk/v1/client/handshake?") == true)
        #expect(first[3].response.header("location") == "/sign-in?redirect_url=http%3A%2F%2F127.0.0.1%3A\(port)%2Fdashboard")
        #expect(first.last?.response.text.contains("Sign in as Ada Admin") == true)
        #expect(browser.jar["__clerk_db_jwt"] == "dvb_gatehouse_demo")

        func signIn(_ user: String) throws {
            let c = try RawClient(port: port)
            let cookies = browser.jar.map { "\($0.key)=\($0.value)" }.joined(separator: "; ")
            let response = try #require(c.request("POST", "/sign-in", headers: [
                ("Content-Type", "application/x-www-form-urlencoded"), ("Origin", base), ("Cookie", cookies),
            ], body: "user=\(user)&redirect_url=http%3A%2F%2F127.0.0.1%3A\(port)%2Fdashboard", host: "127.0.0.1:\(port)"))
            #expect(response.status == 303)
            #expect(response.header("location") == "/dashboard")
            browser.store(response)
        }
        try signIn("user_admin")
        let dashboard = try browser.navigate(base + "/dashboard")
        #expect(dashboard.map(\.response.status) == [200])
        #expect(dashboard.last?.response.text.contains("user_admin") == true)
        #expect(try browser.navigate(base + "/admin").last?.response.status == 200)
        // Back from a coffee break: the session token expired, the Clerk client did not. One handshake later
        // the dashboard is served, signed in, without the sign-in page.
        let returning = try browser.navigate(base + "/dev/expire-session")
        #expect(returning.map(\.response.status) == [303, 307, 307, 307, 200])
        #expect(returning[1].response.header("x-clerk-auth-reason") == "session-token-expired-refresh-non-eligible-no-refresh-cookie")
        #expect(returning.last?.target == "/dashboard")
        #expect(returning.last?.response.text.contains("user_admin") == true)

        try signIn("user_member")
        #expect(try browser.navigate(base + "/admin").last?.response.status == 403)
        #expect(try browser.navigate(base + "/orgs/acme/settings").last?.response.status == 403)
        // The bearer endpoint mints tokens the gateway accepts.
        let c = try RawClient(port: port)
        let token = try #require(c.request("GET", "/dev/token?user=member", host: "127.0.0.1:\(port)")?.text.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(c.request("GET", "/dashboard", headers: [("Authorization", "Bearer " + token)], host: "127.0.0.1:\(port)")?.status == 200)

        await server.shutdown(gracePeriod: 1)
        await app.stop()
    }
}

import GatehouseConfig
