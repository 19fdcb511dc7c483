import Foundation
@testable import GatehouseCore
import GatehouseDemo
import NIOCore
@testable import GatehouseServer
import Testing

// nginx (and Caddy) forward-auth run the README's own snippets: ForwardAuthProxyTests.swift.

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
        let first = try await browser.navigate(base + "/dashboard")
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
        let dashboard = try await browser.navigate(base + "/dashboard")
        #expect(dashboard.map(\.response.status) == [200])
        #expect(dashboard.last?.response.text.contains("user_admin") == true)
        #expect(try await browser.navigate(base + "/admin").last?.response.status == 200)
        // Back from a coffee break: the session token expired, the Clerk client did not. One handshake later
        // the dashboard is served, signed in, without the sign-in page.
        let returning = try await browser.navigate(base + "/dev/expire-session")
        #expect(returning.map(\.response.status) == [303, 307, 307, 307, 200])
        #expect(returning[1].response.header("x-clerk-auth-reason") == "session-token-expired-refresh-non-eligible-no-refresh-cookie")
        #expect(returning.last?.target == "/dashboard")
        #expect(returning.last?.response.text.contains("user_admin") == true)

        try signIn("user_member")
        #expect(try await browser.navigate(base + "/admin").last?.response.status == 403)
        #expect(try await browser.navigate(base + "/orgs/acme/settings").last?.response.status == 403)
        // The bearer endpoint mints tokens the gateway accepts.
        let c = try RawClient(port: port)
        let token = try #require(c.request("GET", "/dev/token?user=member", host: "127.0.0.1:\(port)")?.text.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(c.request("GET", "/dashboard", headers: [("Authorization", "Bearer " + token)], host: "127.0.0.1:\(port)")?.status == 200)

        await server.shutdown(gracePeriod: 1)
        await app.stop()
    }
}

import GatehouseConfig
