import ArgumentParser
import Foundation
import GatehouseCore
import GatehouseDevIssuer

/// DEVELOPMENT helpers: a local signing key and tokens for it. Nothing here is used by a running gateway
/// unless its config names the generated JWKS file.
struct Dev: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Development issuer: generate a local key and mint test session tokens (never for production).",
        subcommands: [Keygen.self, Token.self])

    struct Keygen: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a development RSA key and its JWKS to a directory.")

        @Option(name: .long, help: "Directory for dev-private-key.pem, kid and jwks.json.")
        var out: String

        func run() async throws {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let issuer = try DevIssuer()
            let keyPath = out + "/dev-private-key.pem"
            _ = FileManager.default.createFile(atPath: keyPath, contents: Data(issuer.privateKeyPEM.utf8), attributes: [.posixPermissions: 0o600])
            try Data(issuer.kid.utf8).write(to: URL(fileURLWithPath: out + "/kid"))
            try Data(issuer.jwks.serialized(pretty: true).utf8).write(to: URL(fileURLWithPath: out + "/jwks.json"))
            print("development key written to \(out) (kid \(issuer.kid)); point clerk.jwks_file at \(out)/jwks.json")
        }
    }

    struct Token: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a session token signed by a development key.")

        @Option(name: .long, help: "Directory written by `gatehouse dev keygen`.")
        var dir: String
        @Option(name: .long, help: "User id (sub).")
        var sub: String = "user_dev"
        @Option(name: .long, help: "Session id (sid).")
        var sid: String = "sess_dev"
        @Option(name: .long) var orgId: String?
        @Option(name: .long) var orgSlug: String?
        @Option(name: .long, help: "Org role, e.g. org:admin.") var orgRole: String?
        @Option(name: .long, help: "Org permission (repeatable).") var permission: [String] = []
        @Option(name: .long, help: "Extra claim as name=JSON, e.g. metadata={\"role\":\"admin\"} (repeatable).")
        var claim: [String] = []
        @Option(name: .long, help: "Issued-at Unix time (default: now).") var at: Double?
        @Option(name: .long, help: "Lifetime in seconds.") var lifetime: Double = 60
        @Option(name: .long, help: "Authorized party (azp).") var azp: String?
        @Option(name: .long, help: "Issuer (iss); Clerk picks suffixed cookies when it differs from https://<Frontend API host>.")
        var iss: String = "https://clerk.gatehouse.invalid"

        func run() async throws {
            let pem = try String(contentsOfFile: dir + "/dev-private-key.pem", encoding: .utf8)
            let kid = try String(contentsOfFile: dir + "/kid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let issuer = try DevIssuer(kid: kid, privateKeyPEM: pem)
            var extra = JSONObject()
            for item in claim {
                guard let eq = item.firstIndex(of: "=") else { throw ValidationError("--claim needs name=JSON") }
                let raw = String(item[item.index(after: eq)...])
                let value = (try? JSONParser.parse(raw)) ?? .string(raw)
                extra.set(String(item[..<eq]), value)
            }
            var org: (id: String, slug: String, role: String, permissions: [String])? = nil
            if let orgId { org = (orgId, orgSlug ?? orgId, orgRole ?? "org:member", permission) }
            let claims = DevIssuer.sessionClaims(userId: sub, sessionId: sid, issuedAt: (at ?? Date().timeIntervalSince1970).rounded(.down),
                                                 lifetime: lifetime, issuer: iss, azp: azp, org: org, extra: extra)
            print(issuer.sign(claims))
        }
    }
}
