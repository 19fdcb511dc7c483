import GatehouseAuth
import GatehouseCore
import Yams

/// What one route takes from machine callers (`accepts:`), looked up by route name.
public struct MachineRouteRule: Sendable, Equatable {
    public let accepts: TokenAcceptance
    public let requirements: MachineRequirements
    /// Claim conditions for machine tokens: `claims:` on a route that takes no session tokens,
    /// `machine_claims:` on one that also does (there `claims:` is refused: a machine sets its own claims).
    public let claims: [ClaimRequirement]

    public init(accepts: TokenAcceptance, requirements: MachineRequirements = MachineRequirements(), claims: [ClaimRequirement] = []) {
        self.accepts = accepts
        self.requirements = requirements
        self.claims = claims
    }
}

/// Machine authentication: per-route accepted token types, the Backend API verification limits and keys.
public struct MachineSettings: Sendable {
    /// Routes whose `accepts:` is not the default (`session_token`), by name.
    public var routes: [String: MachineRouteRule] = [:]
    /// `clerk.machine_secret_key` / `CLERK_MACHINE_SECRET_KEY`: the preferred key for `/m2m_tokens/verify`.
    public var machineSecretKey: String?
    /// `machine_auth.machine_id`: this app's Clerk machine (`mch_…`). When set, an M2M token (JWT or opaque)
    /// must be granted to it: the id in its `scopes` (and in `aud` when the JWT has one), as the Backend API
    /// demands of opaque tokens verified with the machine secret key. M2M JWTs are verified locally, so
    /// without it any machine's token for any other machine of the instance passes.
    public var machineId: String?
    public var limits = MachineTokenVerifier.Limits()
    /// Time allowed for one Backend API verify call.
    public var timeout = 3.0
    /// The RFC 9728 metadata Gatehouse serves for the protected app (`machine_auth.protected_resource`).
    public var protectedResource: ProtectedResource?
    /// Routes whose session callers must have reverified recently (`require: { reverification: … }`), by name.
    public var reverification: [String: ReverificationRule] = [:]
    /// Where OAuth 401s point MCP clients: the served document, else the instance's Frontend API one (as Clerk).
    public var resourceMetadataURL: String?

    public init() {}

    public func acceptance(for route: RouteRule) -> TokenAcceptance {
        guard let at = Self.place(of: route.name, in: routes) else { return .sessionOnly }
        return routes.values[at].accepts
    }

    /// Where `name` is in a by-name table: compared name by name in a small table (a handful of machine
    /// routes, most configs none: hashing the name for every request cost ~500 instructions, callgrind), looked
    /// up in a big one. Every per-route lookup below goes through it.
    @inline(__always)
    static func place<Value>(of name: String, in table: [String: Value]) -> Dictionary<String, Value>.Index? {
        guard table.count <= 4 else { return table.index(forKey: name) }
        var i = table.startIndex
        while i != table.endIndex {
            if table.keys[i] == name { return i }
            table.formIndex(after: &i)
        }
        return nil
    }

    /// The route's reverification rule, if it has one (looked up as `acceptance`).
    public func reverificationRule(for route: RouteRule) -> ReverificationRule? {
        guard let at = Self.place(of: route.name, in: reverification) else { return nil }
        return reverification.values[at]
    }

    public func requirements(for route: RouteRule) -> MachineRequirements {
        guard let at = Self.place(of: route.name, in: routes) else { return MachineRequirements() }
        return routes.values[at].requirements
    }

    public func claims(for route: RouteRule) -> [ClaimRequirement] {
        guard let at = Self.place(of: route.name, in: routes) else { return [] }
        return routes.values[at].claims
    }

    /// Nil when `identity` may call this app; otherwise why not. Only M2M tokens are scoped to machines.
    public func grantFailure(_ identity: MachineIdentity) -> String? {
        guard identity.tokenType == .m2mToken, let own = machineId else { return nil }
        if !identity.scopes.contains(own) { return "the M2M token is not granted to this machine (\(own) is not in its scopes)" }
        if let aud = identity.claims?["aud"] {
            let audiences: [String]
            switch aud {
            case .string(let one): audiences = [one]
            case .array(let many): audiences = many.compactMap(\.stringValue)
            default: audiences = []
            }
            if !audiences.contains(own) { return "the M2M token is not granted to this machine (\(own) is not in its aud)" }
        }
        return nil
    }

    /// Does any route verify opaque tokens at the Backend API?
    public var needsBackendAPI: Bool {
        routes.values.contains { !$0.accepts.types.isDisjoint(with: [.apiKey, .m2mToken, .oauthToken]) }
    }
}

/// OAuth 2.0 Protected Resource Metadata (RFC 9728) for the app behind Gatehouse.
public struct ProtectedResource: Sendable, Equatable {
    /// The resource identifier, e.g. `https://mcp.example.com/mcp`.
    public let resource: String
    /// `/.well-known/oauth-protected-resource` followed by the resource's path (RFC 9728 §3.1).
    public let metadataPath: String
    public let authorizationServers: [String]
    public let scopes: [String]

    public var metadataURL: String {
        let origin = resource.split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false).prefix(3).joined(separator: "/")
        return origin + metadataPath
    }

    /// The document, with the members RFC 9728 defines that Gatehouse knows.
    public var document: JSONValue {
        var object = JSONObject([
            ("resource", .string(resource)),
            ("authorization_servers", .array(authorizationServers.map(JSONValue.string))),
            ("bearer_methods_supported", .array(["header"])),
        ])
        if !scopes.isEmpty { object.set("scopes_supported", .array(scopes.map(JSONValue.string))) }
        return .object(object)
    }
}

/// Parsing of `accepts:`, `clerk.machine_secret_key` and `machine_auth:` (kept out of ConfigLoader's body).
enum MachineConfig {
    static let tuningKeys: Set<String> = [
        "revocation_window", "negative_cache", "timeout", "burst", "per_second", "client_burst", "client_per_second",
        "protected_resource", "machine_id",
    ]
    static let durationBounds: [String: ClosedRange<Double>] = [
        "machine_auth.revocation_window": 0...3600, "machine_auth.negative_cache": 0...600, "machine_auth.timeout": 0.1...60,
    ]
    static let integerBounds: [String: ClosedRange<Int>] = ["machine_auth.burst": 1...100_000, "machine_auth.client_burst": 1...10_000]
    static let templateKeys: Set<String> = ["iss", "aud", "claims"]
    /// Session requirements: they read a session's org, role and billing claims, which machine tokens lack.
    /// `params` too: ownership rules compare a session's identity (a machine token has no session to own a path).
    static let sessionOnlyRequireKeys = ["role", "org_role", "permission", "feature", "plan", "org", "params"]
    /// The `require:` keys parsed here rather than in ConfigLoader.parseRoute.
    static var routeRequireKeys: [String] { machineRequireKeys.map(\.key) + ["reverification", "session_claims", "machine_claims"] }
    /// Machine requirement keys and the token types each can apply to.
    static let machineRequireKeys: [(key: String, types: Set<TokenType>)] = [
        ("scopes", [.apiKey, .m2mToken, .oauthToken]), ("any_scope", [.apiKey, .m2mToken, .oauthToken]),
        ("subjects", [.apiKey, .m2mToken, .oauthToken, .template]), ("machine_ids", [.m2mToken]), ("client_ids", [.oauthToken]),
        ("api_key_subject", [.apiKey]),
    ]

    static func parse(top: [String: Node], clerk: [String: Node], environment: [String: String], secretKey: String?,
                      instance: ClerkInstance?, reader: ConfigReader) -> MachineSettings {
        var settings = MachineSettings()
        let frontendAPI = instance.map { "https://" + $0.frontendAPIHost }
        settings.resourceMetadataURL = frontendAPI.map { $0 + "/.well-known/oauth-protected-resource" }
        if let node = clerk["machine_secret_key"] {
            settings.machineSecretKey = reader.string(node, path: "clerk.machine_secret_key")
        } else if let value = environment["CLERK_MACHINE_SECRET_KEY"], !value.isEmpty {
            settings.machineSecretKey = value
        }
        if let key = settings.machineSecretKey, !key.hasPrefix("ak_") {
            reader.fail("clerk.machine_secret_key", clerk["machine_secret_key"], "expected a Clerk machine secret key (ak_…)")
        }
        if let node = top["machine_auth"], let map = reader.mapping(node, path: "machine_auth", allowed: tuningKeys) {
            func duration(_ key: String) -> Double? {
                reader.duration(map[key], path: "machine_auth." + key, in: durationBounds["machine_auth." + key]!)
            }
            func integer(_ key: String) -> Int? {
                reader.integer(map[key], path: "machine_auth." + key, in: integerBounds["machine_auth." + key]!)
            }
            func rate(_ key: String) -> Double? {
                guard let text = reader.string(map[key], path: "machine_auth." + key) else { return nil }
                guard let value = Double(text), value > 0, value <= 100_000 else {
                    reader.fail("machine_auth." + key, map[key], "expected calls per second, a number in 0...100000 (above 0)")
                    return nil
                }
                return value
            }
            settings.limits.revocationWindow = duration("revocation_window") ?? settings.limits.revocationWindow
            settings.limits.negativeSeconds = duration("negative_cache") ?? settings.limits.negativeSeconds
            settings.timeout = duration("timeout") ?? settings.timeout
            settings.limits.callTimeout = settings.timeout
            settings.limits.burst = integer("burst") ?? settings.limits.burst
            settings.limits.clientBurst = integer("client_burst") ?? settings.limits.clientBurst
            settings.limits.perSecond = rate("per_second") ?? settings.limits.perSecond
            settings.limits.clientPerSecond = rate("client_per_second") ?? settings.limits.clientPerSecond
            if let node = map["machine_id"], let id = reader.string(node, path: "machine_auth.machine_id") {
                if id.hasPrefix(TokenClassifier.m2mSubjectPrefix), id.count > 4, id.utf8.allSatisfy({ $0 < 0x80 && $0 > 0x20 }) {
                    settings.machineId = id
                } else {
                    reader.fail("machine_auth.machine_id", node, "expected this app's Clerk machine id (mch_…)")
                }
            }
            if let node = map["protected_resource"] {
                settings.protectedResource = parseProtectedResource(node, frontendAPI: frontendAPI, reader: reader)
                if let served = settings.protectedResource { settings.resourceMetadataURL = served.metadataURL }
            }
        }
        guard case .sequence(let routes)? = top["routes"] else { return settings }
        for (i, node) in routes.enumerated() {
            guard case .mapping(let map) = node else { continue }
            let name = map["name"]?.string ?? ""
            let label = name.isEmpty ? "routes[\(i)]" : "routes[\(i)] (\(name))"
            let requireMap: [String: Node]
            if case .mapping(let require)? = map["require"] {
                requireMap = Dictionary(require.compactMap { key, value in key.string.map { ($0, value) } }, uniquingKeysWith: { a, _ in a })
            } else {
                requireMap = [:]
            }
            if let node = requireMap["reverification"], let rule = parseReverification(node, path: label + ".require.reverification", reader: reader) {
                settings.reverification[name] = rule
                if let acceptsNode = map["accepts"], let accepts = parseAcceptance(acceptsNode, path: label + ".accepts", reader: ConfigReader(file: "", environment: [:])),
                    accepts.acceptsMachine
                {
                    let machine = TokenType.allCases.filter { $0 != .sessionToken && accepts.types.contains($0) }.map(\.rawValue)
                    reader.fail(label + ".require.reverification", node, "cannot apply to \(machine.joined(separator: ", ")) tokens: reverification reads a session's fva claim; give machine callers a route of their own")
                }
            }
            guard let acceptsNode = map["accepts"] else {
                for key in machineRequireKeys.map(\.key) + ["machine_claims"] where requireMap[key] != nil {
                    reader.fail(label + ".require." + key, requireMap[key], "cannot apply to session_token tokens (the route accepts only those): add accepts: with the machine token types it is for")
                }
                continue
            }
            guard let accepts = parseAcceptance(acceptsNode, path: label + ".accepts", reader: reader) else { continue }
            let requirements = parseMachineRequirements(requireMap, accepts: accepts, label: label, reader: reader)
            let claims = parseMachineClaims(requireMap, accepts: accepts, label: label, reader: reader)
            if accepts.acceptsMachine, case .mapping(let require)? = map["require"] {
                let machineTypes = TokenType.allCases.filter { $0 != .sessionToken && accepts.types.contains($0) }.map(\.rawValue)
                for key in sessionOnlyRequireKeys where require[key] != nil {
                    reader.fail(label + ".require." + key, require[key],
                                "cannot apply to \(machineTypes.joined(separator: ", ")) tokens: \(key) is read from a session's claims; give machine callers a route of their own")
                }
            }
            let opaque = accepts.types.intersection([.apiKey, .oauthToken])
            if !opaque.isEmpty, secretKey == nil {
                reader.fail(label + ".accepts", acceptsNode,
                            "\(TokenType.allCases.filter(opaque.contains).map(\.rawValue).joined(separator: " and ")) tokens are verified at the Backend API: set clerk.secret_key (CLERK_SECRET_KEY)")
            }
            if accepts.types.contains(.m2mToken), secretKey == nil, settings.machineSecretKey == nil {
                reader.fail(label + ".accepts", acceptsNode,
                            "opaque m2m_token tokens are verified at the Backend API: set clerk.machine_secret_key (CLERK_MACHINE_SECRET_KEY) or clerk.secret_key")
            }
            if !accepts.isSessionOnly { settings.routes[name] = MachineRouteRule(accepts: accepts, requirements: requirements, claims: claims) }
        }
        return settings
    }

    /// The claim conditions machine tokens must meet. One `claims:` cannot serve both kinds of caller: for a
    /// session the claims come from the app's session-token template, for an M2M token or API key from
    /// whoever minted it (`createToken({ claims })`), so on a route taking both `claims:` would let any
    /// machine grant itself a session's role. There the conditions are split: `session_claims:` and
    /// `machine_claims:`.
    static func parseMachineClaims(_ require: [String: Node], accepts: TokenAcceptance, label: String, reader: ConfigReader) -> [ClaimRequirement] {
        let p = label + ".require"
        let machineTypes = TokenType.allCases.filter { $0 != .sessionToken && accepts.types.contains($0) }.map(\.rawValue).joined(separator: ", ")
        let mixed = accepts.acceptsSession && accepts.acceptsMachine
        if mixed, let node = require["claims"] {
            reader.fail(p + ".claims", node, "is ambiguous on a route that accepts session_token and \(machineTypes): machine tokens carry claims their minter chose, so a session's claim rule would be met by them; split it into session_claims: (session tokens) and machine_claims: (\(machineTypes))")
        }
        if !accepts.acceptsSession, let node = require["session_claims"] {
            reader.fail(p + ".session_claims", node, "the route accepts no session_token: use claims:")
        }
        if !mixed, let node = require["machine_claims"] {
            reader.fail(p + ".machine_claims", node, accepts.acceptsSession ? "the route accepts no machine tokens" : "only for routes that also accept session_token: use claims:")
        }
        let key = mixed ? "machine_claims" : "claims"
        guard accepts.acceptsMachine, let node = require[key] else { return [] }
        // `claims:` was parsed (and its errors reported) with the route already; `machine_claims:` is only here.
        return ConfigLoader.parseClaims(node, path: p + "." + key, reader: mixed ? reader : ConfigReader(file: "", environment: [:]))
    }

    /// Routes that take M2M tokens from any machine of the instance, for any machine.
    static func warnings(_ settings: MachineSettings) -> [String] {
        guard settings.machineId == nil else { return [] }
        return settings.routes.sorted { $0.key < $1.key }.compactMap { name, rule in
            guard rule.accepts.types.contains(.m2mToken), rule.requirements.allScopes.isEmpty, rule.requirements.anyScope.isEmpty,
                rule.requirements.machineIds.isEmpty
            else { return nil }
            return "route '\(name)' accepts m2m_token with no scopes: or machine_ids: requirement and machine_auth.machine_id is not set: an M2M JWT any machine of the instance minted for any other machine passes (JWTs are verified locally; clerk.machine_secret_key only restricts opaque mt_ tokens)"
        }
    }

    /// `strict | moderate | lax | strict_mfa` or `{level: first_factor|second_factor|multi_factor, after_minutes: N}`.
    static func parseReverification(_ node: Node, path: String, reader: ConfigReader) -> ReverificationRule? {
        let presets = ReverificationRule.presets.keys.sorted().joined(separator: ", ")
        if case .scalar = node {
            guard let text = reader.string(node, path: path) else { return nil }
            guard let rule = ReverificationRule(preset: text) else {
                reader.fail(path, node, "expected one of \(presets), or {level, after_minutes}")
                return nil
            }
            return rule
        }
        guard let map = reader.mapping(node, path: path, allowed: ["level", "after_minutes"]) else { return nil }
        let levels = ReverificationRule.Level.allCases.map(\.rawValue).joined(separator: ", ")
        guard let levelText = reader.string(map["level"], path: path + ".level"), let level = ReverificationRule.Level(rawValue: levelText) else {
            reader.fail(path + ".level", map["level"] ?? node, "expected one of \(levels)")
            return nil
        }
        guard let minutes = reader.integer(map["after_minutes"], path: path + ".after_minutes", in: 1...525_600),
            let rule = ReverificationRule(level: level, afterMinutes: minutes)
        else {
            if map["after_minutes"] == nil { reader.fail(path + ".after_minutes", node, "required: minutes since the factor was verified, above 0") }
            return nil
        }
        return rule
    }

    static func parseProtectedResource(_ node: Node, frontendAPI: String?, reader: ConfigReader) -> ProtectedResource? {
        let p = "machine_auth.protected_resource"
        guard let map = reader.mapping(node, path: p, allowed: ["resource", "authorization_servers", "scopes"]) else { return nil }
        guard let resource = reader.string(map["resource"], path: p + ".resource") else {
            reader.fail(p + ".resource", map["resource"] ?? node, "required: the app's resource identifier, e.g. https://mcp.example.com/mcp")
            return nil
        }
        let afterScheme = resource.hasPrefix("https://") ? resource.dropFirst(8) : resource.hasPrefix("http://") ? resource.dropFirst(7) : nil
        let authority = afterScheme.map { $0.prefix { $0 != "/" } }
        guard let afterScheme, let authority, !authority.isEmpty, !authority.contains("@"), !resource.contains("?"), !resource.contains("#"),
            HeaderSafety.isQuotable(resource)
        else {
            reader.fail(p + ".resource", map["resource"], "expected an absolute https:// URL without query or fragment, e.g. https://mcp.example.com/mcp")
            return nil
        }
        var path = String(afterScheme.dropFirst(authority.count))
        if path == "/" { path = "" }
        let servers = reader.strings(map["authorization_servers"], path: p + ".authorization_servers") ?? frontendAPI.map { [$0] } ?? []
        if servers.isEmpty {
            reader.fail(p + ".authorization_servers", map["authorization_servers"] ?? node, "required without clerk.publishable_key (the instance's Frontend API is the default)")
            return nil
        }
        return ProtectedResource(resource: resource, metadataPath: "/.well-known/oauth-protected-resource" + path, authorizationServers: servers,
                                 scopes: reader.strings(map["scopes"], path: p + ".scopes") ?? [])
    }

    /// The machine keys of `require:`; each must apply to every token type the route accepts.
    static func parseMachineRequirements(_ require: [String: Node], accepts: TokenAcceptance, label: String, reader: ConfigReader) -> MachineRequirements {
        var requirements = MachineRequirements()
        let p = label + ".require"
        for (key, types) in machineRequireKeys {
            guard let node = require[key] else { continue }
            let unfit = TokenType.allCases.filter { accepts.types.contains($0) && !types.contains($0) }
            if !unfit.isEmpty {
                reader.fail(p + "." + key, node, "cannot apply to \(unfit.map(\.rawValue).joined(separator: ", ")) tokens (it applies to \(TokenType.allCases.filter(types.contains).map(\.rawValue).joined(separator: ", ")) only); give those callers a route of their own")
                continue
            }
            switch key {
            case "api_key_subject":
                guard let text = reader.string(node, path: p + "." + key) else { continue }
                if let subject = MachineRequirements.APIKeySubject(rawValue: text) { requirements.apiKeySubject = subject } else {
                    reader.fail(p + "." + key, node, "expected user or org")
                }
            default:
                let values = reader.strings(node, path: p + "." + key) ?? []
                if values.isEmpty { reader.fail(p + "." + key, node, "expected one or more values") }
                switch key {
                case "scopes": requirements.allScopes = values
                case "any_scope": requirements.anyScope = values
                case "subjects": requirements.subjects = values
                case "machine_ids": requirements.machineIds = values
                default: requirements.clientIds = values
                }
            }
        }
        return requirements
    }

    static func parseAcceptance(_ node: Node, path: String, reader: ConfigReader) -> TokenAcceptance? {
        let expected = "expected session_token, api_key, m2m_token, oauth_token, {template: {iss, aud}}, a list of them, or any"
        switch node {
        case .scalar:
            guard let text = reader.string(node, path: path) else {
                reader.fail(path, node, expected)
                return nil
            }
            if text == "any" { return .any }
            guard let type = scalarType(text, path: path, node: node, reader: reader) else { return nil }
            return TokenAcceptance(types: [type], shape: .single)
        case .mapping:
            guard let template = parseTemplate(node, path: path, reader: reader) else { return nil }
            return TokenAcceptance(types: [.template], shape: .single, template: template)
        case .sequence(let elements):
            guard !elements.isEmpty else {
                reader.fail(path, node, "an empty list accepts nothing: " + expected)
                return nil
            }
            var types = Set<TokenType>()
            var template: TemplateRule? = nil
            var failed = false
            for (i, element) in elements.enumerated() {
                let elementPath = "\(path)[\(i)]"
                if case .mapping = element {
                    if template != nil { reader.fail(elementPath, element, "one template per route"); failed = true; continue }
                    guard let parsed = parseTemplate(element, path: elementPath, reader: reader) else { failed = true; continue }
                    template = parsed
                    types.insert(.template)
                    continue
                }
                guard let text = reader.string(element, path: elementPath) else { reader.fail(elementPath, element, expected); failed = true; continue }
                if text == "any" {
                    reader.fail(elementPath, element, "'any' stands alone (accepts: any), not in a list")
                    failed = true
                    continue
                }
                guard let type = scalarType(text, path: elementPath, node: element, reader: reader) else { failed = true; continue }
                types.insert(type)
            }
            return failed ? nil : TokenAcceptance(types: types, shape: .list, template: template)
        default:
            reader.fail(path, node, expected)
            return nil
        }
    }

    private static func scalarType(_ text: String, path: String, node: Node, reader: ConfigReader) -> TokenType? {
        guard let type = TokenType(rawValue: text) else {
            reader.fail(path, node, "unknown token type '\(text.prefix(40))': expected session_token, api_key, m2m_token, oauth_token, {template: {iss, aud}} or any")
            return nil
        }
        if type == .template {
            reader.fail(path, node, "a template needs its issuer and audience: {template: {iss: https://…, aud: …}}")
            return nil
        }
        return type
    }

    /// `{template: {iss, aud, claims}}`: both `iss` and `aud` are required (a template token without them
    /// is any token the instance signs with that category).
    private static func parseTemplate(_ node: Node, path: String, reader: ConfigReader) -> TemplateRule? {
        guard let outer = reader.mapping(node, path: path, allowed: ["template"]) else { return nil }
        guard let inner = outer["template"] else {
            reader.fail(path, node, "expected {template: {iss, aud}}")
            return nil
        }
        guard let map = reader.mapping(inner, path: path + ".template", allowed: templateKeys) else { return nil }
        let p = path + ".template"
        let issuer = reader.string(map["iss"], path: p + ".iss")
        if issuer == nil { reader.fail(p + ".iss", map["iss"] ?? inner, "required: the issuer the template's tokens carry (compared exactly)") }
        let audiences = reader.strings(map["aud"], path: p + ".aud") ?? []
        if audiences.isEmpty { reader.fail(p + ".aud", map["aud"] ?? inner, "required: the audience the template sets (compared exactly)") }
        var claims: [ClaimRequirement] = []
        if let claimsNode = map["claims"] {
            if case .mapping(let entries) = claimsNode {
                for (keyNode, valueNode) in entries {
                    guard let claimPath = keyNode.string, !claimPath.isEmpty,
                        !claimPath.split(separator: ".", omittingEmptySubsequences: false).contains(where: \.isEmpty)
                    else {
                        reader.fail(p + ".claims", keyNode, "claim paths are dotted names such as metadata.role")
                        continue
                    }
                    if let matcher = ConfigLoader.parseClaimMatcher(valueNode, path: p + ".claims." + claimPath, reader: reader) {
                        claims.append(ClaimRequirement(path: claimPath, matcher: matcher))
                    }
                }
            } else {
                reader.fail(p + ".claims", claimsNode, "expected a mapping of claim path to matcher")
            }
        }
        guard let issuer, !audiences.isEmpty else { return nil }
        return TemplateRule(issuer: issuer, audiences: audiences, claims: claims)
    }
}

enum HeaderSafety {
    /// Fits in a quoted header parameter: printable ASCII without `"` or `\\`.
    static func isQuotable(_ text: String) -> Bool {
        text.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }
    }
}
