import GatehouseAuth
import GatehouseCore
import Yams

extension ConfigLoader {
    static let assertionKeys: Set<String> = ["key_file", "previous_keys", "issuer", "lifetime", "reuse", "audiences", "jwks_path", "bind"]

    /// `identity_assertion: { key_file, previous_keys, issuer, lifetime, reuse, audiences, jwks_path }`.
    /// A missing `key_file` is generated (P-256, PKCS#8 PEM, mode 0600); an existing one must not be readable
    /// by group or others.
    static func parseIdentityAssertion(_ node: Node, baseDirectory: String, reader: ConfigReader) -> IdentityAssertionIssuer? {
        let p = "identity_assertion"
        guard let map = reader.mapping(node, path: p, allowed: assertionKeys) else { return nil }
        let before = reader.issues.count
        var settings = IdentityAssertionSettings()
        if let issuer = reader.string(map["issuer"], path: p + ".issuer") { settings.issuer = issuer }
        if let lifetime = reader.duration(map["lifetime"], path: p + ".lifetime", in: 1...3600) {
            if lifetime != lifetime.rounded() { reader.fail(p + ".lifetime", map["lifetime"], "a whole number of seconds (iat and exp are seconds)") }
            settings.lifetime = Int(lifetime)
        }
        if let reuse = reader.duration(map["reuse"], path: p + ".reuse", in: 0...60) { settings.reuse = reuse }
        if let bind = reader.string(map["bind"], path: p + ".bind") {
            if let scope = IdentityAssertionSettings.BindingScope(rawValue: bind) { settings.binding = scope } else {
                reader.fail(p + ".bind", map["bind"], "expected request (method, host and path signed in: one signature per request) or route (one per caller, route and audience for `reuse` seconds)")
            }
        }
        if settings.reuse * 2 > Double(settings.lifetime) {
            reader.fail(p + ".reuse", map["reuse"] ?? map["lifetime"] ?? node,
                        "at most half the lifetime (\(settings.lifetime)s), so a reused assertion always has time left")
        }
        if let audiencesNode = map["audiences"] {
            if case .mapping(let audiences) = audiencesNode {
                for (keyNode, valueNode) in audiences {
                    let origin = keyNode.scalar?.string ?? ""
                    guard let target = UpstreamTarget(url: origin) else {
                        reader.fail(p + ".audiences", keyNode, "'\(origin.prefix(80))' is not an upstream origin such as http://127.0.0.1:3000")
                        continue
                    }
                    if let audience = reader.string(valueNode, path: p + ".audiences." + origin) { settings.audiences[target.description] = audience }
                }
            } else {
                reader.fail(p + ".audiences", audiencesNode, "expected a mapping of upstream origin to audience")
            }
        }
        if let jwksPath = reader.string(map["jwks_path"], path: p + ".jwks_path") {
            let segments = jwksPath.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
            let plain = jwksPath.utf8.allSatisfy { $0 < 0x80 && (($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || "-._~/".utf8.contains($0)) }
            if !jwksPath.hasPrefix("/") || !plain || segments.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) {
                reader.fail(p + ".jwks_path", map["jwks_path"], "expected an absolute path of letters, digits and -._~ segments, such as /.well-known/gatehouse-jwks.json")
            }
            settings.jwksPath = jwksPath
        }
        guard let keyFile = reader.string(map["key_file"], path: p + ".key_file") else {
            reader.fail(p + ".key_file", map["key_file"] ?? node, "required: the PEM file of Gatehouse's signing key (generated when missing)")
            return nil
        }
        func resolve(_ path: String) -> String { path.hasPrefix("/") ? path : baseDirectory + "/" + path }
        let previousFiles = reader.strings(map["previous_keys"], path: p + ".previous_keys") ?? []
        guard reader.issues.count == before else { return nil }
        do {
            return try IdentityAssertionIssuer(keyFile: resolve(keyFile), previousKeyFiles: previousFiles.map(resolve), settings: settings)
        } catch {
            reader.fail(p + (error.isPrevious ? ".previous_keys" : ".key_file"), map[error.isPrevious ? "previous_keys" : "key_file"], error.message)
            return nil
        }
    }
}

