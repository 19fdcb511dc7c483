import ArgumentParser
import Foundation
import GatehouseConfig
import GatehouseDemo
import GatehouseServer

/// Everything on one machine with nothing external: a development issuer and demo app, and the gateway in
/// front of them with the example routes. The issuer is only ever active in this command.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a self-contained demo: gateway + demo app + local DEVELOPMENT issuer (never for production).")

    @Option(name: .long, help: "Gateway port on 127.0.0.1.") var port: Int = 8080
    @Option(name: .long, help: "Admin port on 127.0.0.1 (health, readiness, metrics).") var adminPort: Int = 9090

    func run() async throws {
        let app = try await DemoApp()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-demo-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let configPath = directory.appendingPathComponent("gatehouse-demo.yaml").path
        try DemoConfig.yaml(port: port, adminPort: adminPort, appPort: app.port, jwksURL: app.jwksURL)
            .write(toFile: configPath, atomically: true, encoding: .utf8)
        let settings = try ConfigOption(config: configPath).load()
        let state = await GatewayState(configPath: configPath, settings: settings)
        let server = GatewayServer(state: state)
        try await server.start()
        let base = server.publicURL ?? "http://127.0.0.1:\(port)"
        printError("""
            Gatehouse demo (DEVELOPMENT issuer, never for production)
              open        \(base)/dashboard   → sign in as Ada Admin (org admin) or Mo Member
              admin page  \(base)/admin       (Ada: 200, Mo: 403)
              bearer      curl -H "Authorization: Bearer $(curl -s \(base)/dev/token?user=member)" \(base)/dashboard
              health      \(server.adminURL ?? "off")/readyz   metrics \(server.adminURL ?? "off")/metrics
              config      \(configPath)
            Ctrl-C stops it.
            """)
        await runUntilStopped(server: server, state: state, configPath: configPath, log: OperationalLog(level: settings.logLevel))
        await app.stop()
    }
}
