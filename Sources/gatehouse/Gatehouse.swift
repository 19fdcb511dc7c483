import ArgumentParser
import Foundation
import GatehouseAuth
import GatehouseConfig
import GatehouseCore
import GatehouseEngine
import GatehouseFetch
import GatehouseServer

@main
struct Gatehouse: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gatehouse",
        abstract: "An authentication gateway for Clerk sessions.",
        version: BuildInfo.versionLine,
        subcommands: [Serve.self, Demo.self, CheckConfig.self, Explain.self, Dev.self, Healthcheck.self])

    /// Exit codes: 0 success, 1 a failed check, 2 usage or config errors (ArgumentParser's own are mapped to 2).
    static func main() async {
        // Without a subcommand nothing runs: a usage error (2), not help with exit 0, so a unit or
        // container missing its arguments fails visibly.
        if CommandLine.arguments.count <= 1 {
            printError(helpMessage())
            printError("error: a subcommand is required (serve, check-config, explain, demo, dev); --version prints the version")
            Foundation.exit(2)
        }
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                exit(withError: error)
            }
            if let exitCode = error as? ExitCode {
                Foundation.exit(exitCode.rawValue)
            }
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            Foundation.exit(2)
        }
    }
}

struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "Config file (default: $GATEHOUSE_CONFIG, else ./gatehouse.yaml).")
    var config: String?

    init() {}
    init(config: String) { self.config = config }

    var path: String {
        config ?? ProcessInfo.processInfo.environment["GATEHOUSE_CONFIG"] ?? "gatehouse.yaml"
    }

    func load() throws -> GatehouseSettings {
        do {
            return try ConfigLoader.load(path: path)
        } catch {
            printError("\(path): configuration is invalid (\(error.issues.count) problem\(error.issues.count == 1 ? "" : "s")):")
            for issue in error.issues { printError("  " + issue.description) }
            throw ExitCode(2)
        }
    }
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

struct CheckConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Validate a config and print the compiled route table (like nginx -t).")

    @OptionGroup var options: ConfigOption

    func run() async throws {
        let settings = try options.load()
        print("configuration \(settings.file) is valid")
        print("listen:     \(settings.listen)")
        print("upstream:   \(settings.upstream)")
        if let instance = settings.instance {
            print("clerk:      \(instance.kind.rawValue) instance, Frontend API \(instance.frontendAPIHost), cookie suffix \(instance.cookieSuffix)")
        }
        print("keys:       \(settings.keySource.description)")
        print("algorithms: \(settings.policy.allowedAlgorithms.map(\.rawValue).joined(separator: ", ")), clock skew \(settings.policy.clockSkew)s")
        if !settings.policy.authorizedParties.isEmpty {
            print("azp:        \(settings.policy.authorizedParties.joined(separator: ", "))")
        }
        print("sign-in:    \(settings.signInURL)")
        print("browser:    " + describeBrowser(settings))
        if let assertion = settings.identityAssertion {
            let jwks = (settings.adminListen.map { ["admin \($0) /.well-known/jwks.json"] } ?? []) + (assertion.settings.jwksPath.map { ["public \($0)"] } ?? [])
            print("assertion:  X-Gatehouse-Assertion ES256 kid \(assertion.kid), lifetime \(assertion.settings.lifetime)s, reuse \(assertion.settings.reuse)s; JWKS at " + (jwks.isEmpty ? "nowhere (admin listener off, no jwks_path)" : jwks.joined(separator: ", ")))
        }
        print("routes (first match wins):")
        for (i, rule) in settings.routes.rules.enumerated() {
            print(String(format: "  %2d. ", i + 1) + describe(rule))
        }
        print("      " + "default: \(settings.routes.fallback.access.rawValue)")
        for warning in settings.warnings { print("warning: \(warning)") }
    }

    /// Handshake, Frontend API proxy and satellite settings in one line.
    func describeBrowser(_ settings: GatehouseSettings) -> String {
        let browser = settings.browser
        guard browser.handshake, let instance = settings.instance else { return "handshake off (stale cookie sessions are signed out)" }
        var parts = ["handshake via " + (browser.frontendAPI ?? "https://" + instance.frontendAPIHost)]
        if let proxy = settings.frontendAPIProxy { parts.append("Frontend API proxy \(proxy.path) → \(proxy.target)") }
        if browser.isSatellite { parts.append("satellite of domain \(browser.domain ?? "(proxy_url)")") }
        return parts.joined(separator: "; ")
    }

    func describe(_ rule: RouteRule) -> String {
        var parts = ["\(rule.name) [\(rule.access.rawValue)]", rule.patterns.map(\.source).joined(separator: " ")]
        if !rule.methods.isEmpty { parts.append("methods=" + rule.methods.joined(separator: ",")) }
        if !rule.hosts.isEmpty { parts.append("hosts=" + rule.hosts.map(\.source).joined(separator: ",")) }
        if !rule.csrf { parts.append("csrf=off") }
        if !rule.conditions.isEmpty { parts.append("when " + rule.conditions.map(\.description).joined(separator: " and ")) }
        let r = rule.requirements
        var requires: [String] = []
        if r.requireOrganization { requires.append("org") }
        if !r.orgRoles.isEmpty { requires.append("org_role=" + r.orgRoles.map(Requirements.normalizedOrgKey).joined(separator: "|")) }
        for p in r.permissions { requires.append("permission=" + Requirements.normalizedOrgKey(p)) }
        for f in r.features { requires.append("feature=" + f) }
        for p in r.plans { requires.append("plan=" + p) }
        for c in r.claims { requires.append("claim " + c.displayPath) }
        for p in r.ownership?.requirements ?? [] { requires.append("params.\(p.parameter)=\(p.field)") }
        if !requires.isEmpty { parts.append("requires " + requires.joined(separator: ", ")) }
        if rule.forbiddenStatus != 403 { parts.append("on_forbidden=\(rule.forbiddenStatus)") }
        if rule.onUnauthenticated != .auto { parts.append("on_unauthenticated=\(rule.onUnauthenticated.rawValue)") }
        return parts.joined(separator: "  ")
    }
}

struct Explain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show, as JSON, what Gatehouse would decide for one simulated request.")

    @OptionGroup var options: ConfigOption

    @Option(name: .long, help: "Unix time to decide at (default: now), to examine expired tokens.")
    var at: Double?

    @Option(name: .long, help: "Request method.")
    var method: String = "GET"

    @Option(name: [.customShort("H"), .long], help: "A request header, 'Name: value' (repeatable).")
    var header: [String] = []

    @Argument(help: "The request-target: /path?query or http://host/path.")
    var target: String

    func run() async throws {
        let settings = try options.load()
        var headers = HeaderList()
        for line in header {
            guard let colon = line.firstIndex(of: ":") else {
                throw ValidationError("header '\(line)' must look like 'Name: value'")
            }
            headers.append(String(line[..<colon]), line[line.index(after: colon)...].trimmingASCIIWhitespace())
        }
        if !headers.contains("host"), !target.hasPrefix("http") {
            let host = settings.publicOrigin.map { String($0.split(separator: "/").last ?? "") } ?? settings.listen
            headers.append("Host", host)
        }
        let keyStore = await Gatekeeper.loadKeyStore(for: settings) { url, bearer in HTTPJWKSSource(url: url, bearer: bearer) }
        if let error = keyStore.status.lastError { printError("warning: \(error)") }
        let gatekeeper = Gatekeeper(settings: settings, keyStore: keyStore, payloadSource: settings.secretKey.map {
            HTTPHandshakePayloadSource(apiURL: settings.apiURL, secretKey: $0)
        }, machineSource: HTTPMachineTokenSource.forSettings(settings))
        let now = at ?? Date().timeIntervalSince1970
        let evaluation = await gatekeeper.evaluate(RawRequest(method: method, target: target, headers: headers), now: now)
        var report = ExplainReport.json(for: evaluation)
        if case .object(var members) = report {
            // What the data plane would carry out: the same parser and verdict the loop uses.
            members.set("data_plane", await VerdictReport.json(settings: settings, keyStore: keyStore, method: method, target: target,
                                                               headers: headers, now: now))
            report = .object(members)
        }
        print(report.serialized(pretty: true))
    }
}
