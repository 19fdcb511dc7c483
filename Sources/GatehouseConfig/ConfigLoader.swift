import Foundation
import GatehouseAuth
import GatehouseCore
import GatehouseTLS
import Yams

/// Reads a YAML config, expands `${VAR}`, falls back to Clerk's own environment variables, validates every
/// key and compiles routes and keys. Either a complete `GatehouseSettings` comes out or a `ConfigError`
/// listing every problem with file, line and key — never a half-loaded state.
public enum ConfigLoader {
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigError) -> GatehouseSettings {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError(issues: [ConfigIssue(file: path, line: nil, column: nil, keyPath: "", message: "cannot read the config file (\(error.localizedDescription))")])
        }
        let directory = (path as NSString).deletingLastPathComponent
        return try load(yaml: text, file: path, baseDirectory: directory.isEmpty ? "." : directory, environment: environment)
    }

    static let topLevelKeys: Set<String> = [
        "listen", "upstream", "public_origin", "trusted_proxies", "allow_path_semicolons",
        "allow_path_encoded_semicolons", "allow_path_encoded_percent", "clerk", "sign_in_url",
        "identity_headers", "routes", "default", "server", "proxy", "admin", "forward_auth", "access_log", "machine_auth",
        "log_level", "identity_assertion", "tls",
    ]
    static let serverKeys: Set<String> = [
        "threads", "max_connections", "header_timeout", "idle_timeout", "body_timeout", "send_timeout", "max_header_bytes", "max_header_count",
        "max_body_bytes", "grace_period",
    ]
    static let proxyKeys: Set<String> = [
        "connect_timeout", "response_timeout", "read_timeout", "idle_timeout", "max_idle_connections", "websocket_max_lifetime",
        "websocket_close_at_token_expiry", "tls_ca_file",
    ]
    static let clerkKeys: Set<String> = [
        "publishable_key", "secret_key", "jwt_key", "jwks_file", "jwks_url", "api_url", "authorized_parties", "audience",
        "issuer", "clock_skew", "algorithms", "jwks_refresh", "jwks_cooldown", "token_cache_size",
        "handshake", "proxy_url", "frontend_api_url", "frontend_api_proxy", "satellite", "domain", "machine_secret_key",
    ]
    static let routeKeys: Set<String> = ["name", "match", "methods", "hosts", "access", "require", "on_forbidden", "on_unauthenticated", "upstream", "csrf", "accepts", "when"]
    static let requireKeys = Set(["signed_in", "role", "org_role", "permission", "feature", "plan", "org", "claims", "params"])
        .union(MachineConfig.routeRequireKeys)
    static let identityKeys: Set<String> = ["forward_token", "claims", "strip"]

    public static func load(yaml: String, file: String, baseDirectory: String = ".", environment: [String: String]) throws(ConfigError) -> GatehouseSettings {
        let reader = ConfigReader(file: file, environment: environment)
        let root: Node
        do {
            guard let parsed = try Yams.compose(yaml: yaml) else {
                throw ConfigError(issues: [ConfigIssue(file: file, line: nil, column: nil, keyPath: "", message: "the config file is empty")])
            }
            root = parsed
        } catch let error as ConfigError {
            throw error
        } catch {
            throw ConfigError(issues: [yamlIssue(error, file: file)])
        }
        guard let top = reader.mapping(root, path: "", allowed: topLevelKeys) else { throw ConfigError(issues: reader.issues) }
        var warnings: [String] = []

        let listen = reader.string(top["listen"], path: "listen") ?? "127.0.0.1:8080"
        if !isHostPort(listen) { reader.fail("listen", top["listen"], "expected host:port, e.g. 127.0.0.1:8080") }
        var upstream: UpstreamTarget? = nil
        if let upstreamText = reader.string(top["upstream"], path: "upstream") {
            upstream = UpstreamTarget(url: upstreamText)
            if upstream == nil {
                reader.fail("upstream", top["upstream"], "expected an http:// or https:// origin such as http://127.0.0.1:3000 (no path)")
            }
        } else {
            // No silent default: a gateway that proxies to a guessed port is worse than one that does not start.
            reader.fail("upstream", top["upstream"], "required: the origin requests are proxied to, e.g. http://127.0.0.1:3000")
        }
        var server = ServerLimits()
        if let node = top["server"], let map = reader.mapping(node, path: "server", allowed: serverKeys) {
            func int(_ key: String, hint: String = "") -> Int? {
                reader.integer(map[key], path: "server." + key, in: integerBounds["server." + key]!, hint: hint)
            }
            func duration(_ key: String) -> Double? {
                reader.duration(map[key], path: "server." + key, in: durationBounds["server." + key]!)
            }
            server.threads = int("threads", hint: " (0: one per core)") ?? server.threads
            server.maxConnections = int("max_connections") ?? server.maxConnections
            server.maxHeaderBytes = int("max_header_bytes") ?? server.maxHeaderBytes
            server.maxHeaderCount = int("max_header_count") ?? server.maxHeaderCount
            server.maxBodyBytes = int("max_body_bytes", hint: " (0: no limit)") ?? server.maxBodyBytes
            server.headerTimeout = duration("header_timeout") ?? server.headerTimeout
            server.idleTimeout = duration("idle_timeout") ?? server.idleTimeout
            server.bodyTimeout = duration("body_timeout") ?? server.bodyTimeout
            server.sendTimeout = duration("send_timeout") ?? server.sendTimeout
            server.gracePeriod = duration("grace_period") ?? server.gracePeriod
        }
        var proxy = ProxySettings()
        if let node = top["proxy"], let map = reader.mapping(node, path: "proxy", allowed: proxyKeys) {
            func duration(_ key: String) -> Double? {
                reader.duration(map[key], path: "proxy." + key, in: durationBounds["proxy." + key]!)
            }
            proxy.connectTimeout = duration("connect_timeout") ?? proxy.connectTimeout
            proxy.responseTimeout = duration("response_timeout") ?? proxy.responseTimeout
            proxy.readTimeout = duration("read_timeout") ?? proxy.readTimeout
            proxy.idleTimeout = duration("idle_timeout") ?? proxy.idleTimeout
            proxy.websocketMaxLifetime = duration("websocket_max_lifetime") ?? proxy.websocketMaxLifetime
            proxy.websocketCloseAtTokenExpiry = reader.bool(map["websocket_close_at_token_expiry"], path: "proxy.websocket_close_at_token_expiry") ?? proxy.websocketCloseAtTokenExpiry
            proxy.maxIdleConnections = reader.integer(map["max_idle_connections"], path: "proxy.max_idle_connections",
                                                      in: integerBounds["proxy.max_idle_connections"]!, hint: " (0: no pooling)")
                ?? proxy.maxIdleConnections
            if let file = reader.string(map["tls_ca_file"], path: "proxy.tls_ca_file") {
                // Read here so a missing or non-PEM file is a config error, not a 502 on the first request.
                let path = file.hasPrefix("/") ? file : baseDirectory + "/" + file
                if let text = try? String(contentsOfFile: path, encoding: .utf8), text.contains("-----BEGIN CERTIFICATE-----") {
                    proxy.tlsCAFile = path
                } else {
                    reader.fail("proxy.tls_ca_file", map["tls_ca_file"], "cannot read PEM certificates from \(path)")
                }
            }
        }
        var adminListen: String? = "127.0.0.1:9090"
        if let node = top["admin"] {
            if let map = reader.mapping(node, path: "admin", allowed: ["listen"]) {
                adminListen = reader.string(map["listen"], path: "admin.listen")
                if let adminListen, adminListen != "off", !isHostPort(adminListen) {
                    reader.fail("admin.listen", map["listen"], "expected host:port or off")
                }
                if adminListen == "off" { adminListen = nil }
            }
        }
        var forwardAuthPath: String? = "/_gatehouse/auth"
        if let node = top["forward_auth"], let map = reader.mapping(node, path: "forward_auth", allowed: ["path"]) {
            forwardAuthPath = reader.string(map["path"], path: "forward_auth.path")
            if forwardAuthPath == "off" { forwardAuthPath = nil }
            if let path = forwardAuthPath, (try? CanonicalPath(parsing: path))?.value != path {
                reader.fail("forward_auth.path", map["path"], "expected a canonical absolute path such as /_gatehouse/auth, or off")
            } else if let path = forwardAuthPath, path.hasSuffix("/") {
                // `/fa/` would put the nginx endpoint at `/fa//nginx`, and `/` would take every path from the app.
                reader.fail("forward_auth.path", map["path"], path == "/" ? "the forward-auth path cannot be /: it would take every path from the app; use e.g. /_gatehouse/auth"
                                                                          : "expected no trailing slash (e.g. \(path.dropLast()))")
            }
        }
        var accessLog = true
        if let text = reader.string(top["access_log"], path: "access_log") {
            switch text {
            case "stdout": accessLog = true
            case "off": accessLog = false
            default: reader.fail("access_log", top["access_log"], "expected stdout or off")
            }
        }
        var logLevel = LogLevel.info
        if let text = reader.string(top["log_level"], path: "log_level") {
            if let level = LogLevel(rawValue: text) { logLevel = level } else {
                reader.fail("log_level", top["log_level"], "expected one of " + LogLevel.allCases.map(\.rawValue).joined(separator: ", "))
            }
        }
        let publicOrigin = reader.string(top["public_origin"], path: "public_origin")
        if let publicOrigin, !isOrigin(publicOrigin) {
            reader.fail("public_origin", top["public_origin"], "expected an origin such as https://app.example.com (scheme and host, no path)")
        }
        var trustedProxies: [CIDR] = []
        for (i, text) in (reader.strings(top["trusted_proxies"], path: "trusted_proxies") ?? []).enumerated() {
            if let cidr = CIDR(text) { trustedProxies.append(cidr) } else {
                reader.fail("trusted_proxies[\(i)]", top["trusted_proxies"], "'\(text)' is not an IP address or CIDR")
            }
        }
        let allowSemicolons = reader.bool(top["allow_path_semicolons"], path: "allow_path_semicolons") ?? false
        let allowEncodedSemicolons = reader.bool(top["allow_path_encoded_semicolons"], path: "allow_path_encoded_semicolons") ?? false
        let allowEncodedPercent = reader.bool(top["allow_path_encoded_percent"], path: "allow_path_encoded_percent") ?? false

        // Clerk section, with Clerk's environment variable names as fallbacks.
        let clerkNode = top["clerk"]
        let clerk = clerkNode.flatMap { reader.mapping($0, path: "clerk", allowed: clerkKeys) } ?? [:]
        // A key that expands to nothing (`${CLERK_SECRET_KEY:-}`) falls back to Clerk's names like an absent one.
        func clerkValue(_ key: String, env names: [String]) -> String? {
            if let node = clerk[key], let value = reader.string(node, path: "clerk." + key) { return value }
            for name in names { if let value = environment[name], !value.isEmpty { return value } }
            return nil
        }
        let publishableKey = clerkValue("publishable_key", env: ["CLERK_PUBLISHABLE_KEY", "NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY", "VITE_CLERK_PUBLISHABLE_KEY", "PUBLIC_CLERK_PUBLISHABLE_KEY"])
        var instance: ClerkInstance? = nil
        if let publishableKey {
            do { instance = try ClerkInstance(publishableKey: publishableKey) } catch {
                reader.fail("clerk.publishable_key", clerk["publishable_key"], error.message)
            }
        }
        let secretKey = clerkValue("secret_key", env: ["CLERK_SECRET_KEY"])
        if let secretKey, !(secretKey.hasPrefix("sk_test_") || secretKey.hasPrefix("sk_live_")) {
            reader.fail("clerk.secret_key", clerk["secret_key"], "expected a Clerk secret key (sk_test_… or sk_live_…)")
        }
        warnings += keyPairWarnings(publishableKey: publishableKey, instance: instance, secretKey: secretKey)
        let jwtKeyText = clerkValue("jwt_key", env: ["CLERK_JWT_KEY"])
        let jwksFile = clerkValue("jwks_file", env: [])
        let jwksURL = clerkValue("jwks_url", env: [])
        let apiURL = clerkValue("api_url", env: ["CLERK_API_URL"]) ?? instance?.backendAPIURL ?? "https://api.clerk.com"

        var algorithms = SigningAlgorithm.defaultAllowed
        if let names = reader.strings(clerk["algorithms"], path: "clerk.algorithms") {
            var parsed: [SigningAlgorithm] = []
            for name in names {
                if let alg = SigningAlgorithm(rawValue: name) { parsed.append(alg) } else {
                    reader.fail("clerk.algorithms", clerk["algorithms"], "unsupported algorithm '\(name)' (supported: \(SigningAlgorithm.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
            }
            if parsed.isEmpty { reader.fail("clerk.algorithms", clerk["algorithms"], "at least one algorithm is required") }
            algorithms = parsed
        }
        let rsaDefault = algorithms.first(where: { $0.rawValue.hasPrefix("RS") }) ?? .rs256
        let clockSkew = reader.duration(clerk["clock_skew"], path: "clerk.clock_skew", in: durationBounds["clerk.clock_skew"]!,
                                        hint: " (more than 5m defeats expiry checks)") ?? 5
        let authorizedParties = reader.strings(clerk["authorized_parties"], path: "clerk.authorized_parties") ?? []
        for (i, party) in authorizedParties.enumerated() where !isOrigin(party) {
            reader.fail("clerk.authorized_parties[\(i)]", clerk["authorized_parties"], "'\(party)' is not an origin such as https://app.example.com (azp is compared exactly)")
        }
        let audiences = reader.strings(clerk["audience"], path: "clerk.audience") ?? []
        let issuer = reader.string(clerk["issuer"], path: "clerk.issuer")
        let refresh = reader.duration(clerk["jwks_refresh"], path: "clerk.jwks_refresh", in: durationBounds["clerk.jwks_refresh"]!) ?? 300
        let cooldown = reader.duration(clerk["jwks_cooldown"], path: "clerk.jwks_cooldown", in: durationBounds["clerk.jwks_cooldown"]!) ?? 10
        let tokenCacheSize = reader.integer(clerk["token_cache_size"], path: "clerk.token_cache_size", in: integerBounds["clerk.token_cache_size"]!,
                                            hint: " (0 turns the cache off)") ?? 10_000

        // Key source by precedence.
        var keySource: KeySource? = nil
        var configuredSources: [String] = []
        if let jwtKeyText {
            configuredSources.append("jwt_key")
            do {
                keySource = .pem(try VerificationKey.rsaPEM(jwtKeyText.replacingOccurrences(of: "\\n", with: "\n"), algorithm: rsaDefault))
            } catch {
                reader.fail("clerk.jwt_key", clerk["jwt_key"], "\(error)")
            }
        }
        if let jwksFile {
            configuredSources.append("jwks_file")
            let path = jwksFile.hasPrefix("/") ? jwksFile : baseDirectory + "/" + jwksFile
            if keySource == nil {
                do {
                    let data = try Data(contentsOf: URL(fileURLWithPath: path))
                    let parsed = try JWKSParser.parse(Array(data), allowed: algorithms, rsaDefault: rsaDefault)
                    if parsed.keys.isEmpty {
                        reader.fail("clerk.jwks_file", clerk["jwks_file"], "\(path) has no usable signing key" + (parsed.skipped.isEmpty ? "" : ": " + parsed.skipped.joined(separator: "; ")))
                    } else {
                        keySource = .jwksFile(path: path, keys: parsed.keys, skipped: parsed.skipped)
                        for note in parsed.skipped { warnings.append("clerk.jwks_file: skipped \(note)") }
                    }
                } catch let error as KeyError {
                    reader.fail("clerk.jwks_file", clerk["jwks_file"], "\(path): \(error)")
                } catch {
                    reader.fail("clerk.jwks_file", clerk["jwks_file"], "cannot read \(path) (\(error.localizedDescription))")
                }
            }
        }
        if let jwksURL {
            configuredSources.append("jwks_url")
            if !(jwksURL.hasPrefix("https://") || jwksURL.hasPrefix("http://")) {
                reader.fail("clerk.jwks_url", clerk["jwks_url"], "expected an http(s) URL")
            } else if keySource == nil {
                keySource = .remote(url: jwksURL, bearer: nil, origin: "jwks_url")
            }
        }
        if let secretKey {
            configuredSources.append("secret_key")
            if keySource == nil {
                keySource = .remote(url: apiURL + "/v1/jwks", bearer: secretKey, origin: "Clerk Backend API (secret_key)")
            }
        }
        if configuredSources.count > 1 {
            warnings.append("several key sources are configured (\(configuredSources.joined(separator: ", "))); only \(configuredSources[0]) is used")
        }
        if keySource == nil, reader.issues.isEmpty {
            if let instance {
                keySource = .remote(url: instance.frontendJWKSURL, bearer: nil, origin: "Frontend API JWKS (publishable_key)")
            } else {
                reader.fail("clerk", clerkNode, "no key source: set publishable_key, secret_key, jwt_key, jwks_file or jwks_url (or CLERK_PUBLISHABLE_KEY / CLERK_SECRET_KEY / CLERK_JWT_KEY in the environment)")
            }
        }

        // Sign-in URL: explicit, Clerk's env names, or the Account Portal of the instance.
        let signInNode = top["sign_in_url"]
        var signInURL = signInNode.flatMap { reader.string($0, path: "sign_in_url") }
            ?? environment["NEXT_PUBLIC_CLERK_SIGN_IN_URL"].flatMap { $0.isEmpty ? nil : $0 }
            ?? environment["CLERK_SIGN_IN_URL"].flatMap { $0.isEmpty ? nil : $0 }
        if signInURL == nil { signInURL = instance?.defaultSignInURL }
        if let url = signInURL, !isSafeRedirectTarget(url) {
            reader.fail("sign_in_url", signInNode, "expected an absolute http(s) URL or a path starting with a single '/'")
        }

        // Browser sessions: handshake, Frontend API location and proxy, satellite domains.
        var browser = BrowserSessionOptions(handshake: false, publicOrigin: publicOrigin, trustedOrigins: authorizedParties)
        browser.handshake = reader.bool(clerk["handshake"], path: "clerk.handshake") ?? (instance != nil)
        if browser.handshake, instance == nil, clerk["handshake"] != nil {
            reader.fail("clerk.handshake", clerk["handshake"], "the handshake needs clerk.publishable_key (it names the Frontend API)")
        }
        browser.isSatellite = reader.bool(clerk["satellite"], path: "clerk.satellite")
            ?? (environment["CLERK_IS_SATELLITE"] ?? environment["NEXT_PUBLIC_CLERK_IS_SATELLITE"]).map { $0 == "true" } ?? false
        browser.domain = clerkValue("domain", env: ["CLERK_DOMAIN", "NEXT_PUBLIC_CLERK_DOMAIN"])
        browser.signInURL = signInURL
        let frontendAPIURL = reader.string(clerk["frontend_api_url"], path: "clerk.frontend_api_url")
        if let frontendAPIURL, !isOrigin(frontendAPIURL) || UpstreamTarget(url: frontendAPIURL) == nil {
            reader.fail("clerk.frontend_api_url", clerk["frontend_api_url"], "expected an http(s) origin such as https://clerk.example.com (no path)")
        }
        var proxyURL = clerkValue("proxy_url", env: ["CLERK_PROXY_URL", "NEXT_PUBLIC_CLERK_PROXY_URL"])
        if let url = proxyURL, !(isSafeRedirectTarget(url) && !url.contains("?")) {
            reader.fail("clerk.proxy_url", clerk["proxy_url"], "expected an absolute http(s) URL or a path such as /__clerk")
        }
        var frontendAPIProxy: FrontendAPIProxySettings? = nil
        if let path = reader.string(clerk["frontend_api_proxy"], path: "clerk.frontend_api_proxy"), path != "off" {
            let target = frontendAPIURL.flatMap { UpstreamTarget(url: $0) } ?? instance.flatMap { UpstreamTarget(url: $0.frontendAPIProxyTarget) }
            if (try? CanonicalPath(parsing: path))?.value != path || path == "/" || path.hasSuffix("/") {
                reader.fail("clerk.frontend_api_proxy", clerk["frontend_api_proxy"], "expected a path such as /__clerk, or off")
            } else if let target {
                frontendAPIProxy = FrontendAPIProxySettings(path: path, target: target, host: target.authority)
                if !target.tls, secretKey != nil, !(target.host == "127.0.0.1" || target.host == "::1" || target.host == "localhost") {
                    warnings.append("clerk.frontend_api_proxy sends the secret key (Clerk-Secret-Key) to \(target) without TLS")
                }
                if proxyURL == nil { proxyURL = path }
                if secretKey == nil {
                    warnings.append("clerk.frontend_api_proxy without clerk.secret_key: Clerk's Frontend API only accepts proxied requests that carry the secret key")
                }
            } else {
                reader.fail("clerk.frontend_api_proxy", clerk["frontend_api_proxy"], "needs clerk.publishable_key or clerk.frontend_api_url")
            }
        }
        browser.frontendAPI = proxyURL ?? frontendAPIURL
        if browser.isSatellite {
            if browser.domain == nil && proxyURL == nil {
                reader.fail("clerk.satellite", clerk["satellite"], "a satellite needs clerk.domain or clerk.proxy_url")
            }
            if instance?.kind == .development, !(signInURL.map { $0.hasPrefix("http") } ?? false) {
                reader.fail("sign_in_url", signInNode, "a development satellite signs in on its primary: set an absolute sign_in_url")
            }
        }

        // Identity headers.
        var identity = IdentityHeaderPolicy()
        if let node = top["identity_headers"], let map = reader.mapping(node, path: "identity_headers", allowed: identityKeys) {
            identity.forwardToken = reader.bool(map["forward_token"], path: "identity_headers.forward_token") ?? false
            if let claimsNode = map["claims"], let claims = reader.mapping(claimsNode, path: "identity_headers.claims", allowed: Set(claimsNode.mapping?.compactMap { $0.key.string } ?? [])) {
                for (header, pathNode) in claims.sorted(by: { $0.key < $1.key }) {
                    let keyPath = "identity_headers.claims." + header
                    guard let claimPath = reader.string(pathNode, path: keyPath) else { continue }
                    if !isValidHeaderName(header) { reader.fail(keyPath, pathNode, "'\(header)' is not a valid header name") }
                    if normalizedHeaderName(header).hasPrefix("x-gatehouse-") || normalizedHeaderName(header).hasPrefix("x-clerk-") || HopByHop.names.contains(normalizedHeaderName(header)) || ["host", "authorization", "cookie", "content-length"].contains(normalizedHeaderName(header)) {
                        reader.fail(keyPath, pathNode, "'\(header)' is reserved")
                    }
                    identity.claimHeaders.append((header, claimPath.split(separator: ".", omittingEmptySubsequences: false).map(String.init)))
                }
            }
            for name in reader.strings(map["strip"], path: "identity_headers.strip") ?? [] {
                if isValidHeaderName(name) { identity.strip.insert(normalizedHeaderName(name)) } else {
                    reader.fail("identity_headers.strip", map["strip"], "'\(name)' is not a valid header name")
                }
            }
        }

        // Routes.
        var rules: [RouteRule] = []
        var names = Set<String>()
        if let routesNode = top["routes"] {
            if case .sequence(let sequence) = routesNode {
                for (i, node) in sequence.enumerated() {
                    if let rule = parseRoute(node, index: i, reader: reader) {
                        if !names.insert(rule.name.lowercased()).inserted {
                            reader.fail("routes[\(i)].name", node, "duplicate route name '\(rule.name)'")
                        }
                        rules.append(rule)
                    }
                }
            } else {
                reader.fail("routes", routesNode, "expected a list of rules")
            }
        } else {
            warnings.append("no routes: every request gets the default access")
        }
        let machine = MachineConfig.parse(top: top, clerk: clerk, environment: environment, secretKey: secretKey, instance: instance, reader: reader)
        warnings += MachineConfig.warnings(machine)
        var fallbackAccess = Access.protected
        if let text = reader.string(top["default"], path: "default") {
            if let access = Access(rawValue: text) { fallbackAccess = access } else {
                reader.fail("default", top["default"], "expected 'protected' or 'public'")
            }
        }
        if fallbackAccess == .public {
            warnings.append("default: public — paths no rule names are open to everyone")
        }
        let needsSignIn = rules.contains { $0.access == .protected && ($0.onUnauthenticated == .auto || $0.onUnauthenticated == .redirect) } || fallbackAccess == .protected
        if signInURL == nil, needsSignIn, reader.issues.isEmpty {
            reader.fail("sign_in_url", nil, "required: browsers are redirected to sign in, and without a publishable_key there is no Account Portal to default to")
        }

        let identityAssertion = top["identity_assertion"].flatMap { parseIdentityAssertion($0, baseDirectory: baseDirectory, reader: reader) }
        let tls = top["tls"].flatMap { parseListenerTLS($0, baseDirectory: baseDirectory, reader: reader) }
        guard reader.issues.isEmpty, let keySource, let upstream else {
            // In file order, so the list reads top to bottom.
            let sorted = reader.issues.enumerated().sorted { ($0.element.line ?? 0, $0.offset) < ($1.element.line ?? 0, $1.offset) }
            throw ConfigError(issues: sorted.map(\.element))
        }
        return GatehouseSettings(
            file: file, listen: listen, upstream: upstream, publicOrigin: publicOrigin, trustedProxies: trustedProxies,
            canonicalization: CanonicalizationOptions(
                allowPathSemicolons: allowSemicolons, allowPathEncodedSemicolons: allowEncodedSemicolons,
                allowPathEncodedPercent: allowEncodedPercent),
            instance: instance,
            secretKey: secretKey, keySource: keySource,
            keySettings: KeyStore.Settings(allowedAlgorithms: algorithms, rsaDefault: rsaDefault, refreshInterval: refresh, unknownKidCooldown: cooldown),
            policy: VerificationPolicy(allowedAlgorithms: algorithms, clockSkew: clockSkew, authorizedParties: authorizedParties, audiences: audiences, issuer: issuer),
            signInURL: signInURL ?? "/sign-in", browser: browser, apiURL: apiURL, frontendAPIProxy: frontendAPIProxy,
            routes: RouteTable(rules: rules, fallback: RouteRule(name: RouteTable.fallbackName, patterns: [], access: fallbackAccess)),
            identity: identity, tokenCacheSize: tokenCacheSize, server: server, proxy: proxy, adminListen: adminListen, forwardAuthPath: forwardAuthPath,
            accessLog: accessLog, logLevel: logLevel, warnings: warnings + (tls?.context.warnings.map { "tls: \($0)" } ?? []),
            machine: machine, identityAssertion: identityAssertion, tls: tls)
    }

    /// `tls: { certificates: [{ certificate: chain.pem, key: key.pem }, …] }`: every pair is loaded here and the
    /// listener's context built, so a missing file, a key that does not match or a file without a certificate
    /// is a config error (at start, `check-config` and reload), never a failed handshake later.
    private static func parseListenerTLS(_ node: Node, baseDirectory: String, reader: ConfigReader) -> ListenerTLS? {
        guard let map = reader.mapping(node, path: "tls", allowed: ["certificates"]) else { return nil }
        guard case .sequence(let sequence)? = map["certificates"], !sequence.isEmpty else {
            reader.fail("tls.certificates", map["certificates"] ?? node, "expected a list of { certificate: path, key: path }")
            return nil
        }
        let list = Array(sequence)
        var files: [TLSCertificateFiles] = []
        for (index, item) in list.enumerated() {
            let path = "tls.certificates[\(index)]"
            guard let pair = reader.mapping(item, path: path, allowed: ["certificate", "key"]),
                let certificate = reader.string(pair["certificate"], path: path + ".certificate"),
                let key = reader.string(pair["key"], path: path + ".key")
            else {
                if reader.mapping(item, path: path, allowed: ["certificate", "key"]) != nil {
                    reader.fail(path, item, "needs both certificate and key")
                }
                continue
            }
            func resolved(_ file: String) -> String { file.hasPrefix("/") ? file : baseDirectory + "/" + file }
            files.append(TLSCertificateFiles(certificateChainPath: resolved(certificate), privateKeyPath: resolved(key)))
        }
        guard files.count == list.count else { return nil }
        do {
            return ListenerTLS(certificates: files, context: try TLSServerContext(certificates: files))
        } catch {
            reader.fail("tls.certificates", map["certificates"] ?? node, "\(error)")
            return nil
        }
    }

    private static func parseRoute(_ node: Node, index: Int, reader: ConfigReader) -> RouteRule? {
        let path = "routes[\(index)]"
        guard let map = reader.mapping(node, path: path, allowed: routeKeys) else { return nil }
        let before = reader.issues.count
        let name = reader.string(map["name"], path: path + ".name") ?? ""
        if name.isEmpty { reader.fail(path + ".name", node, "every route needs a name") }
        else if !name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) {
            reader.fail(path + ".name", map["name"], "use letters, digits, '-', '_' or '.' (the name appears in headers and metrics)")
        } else if name.lowercased() == RouteTable.fallbackName {
            // The fallback is called "default": a route of that name would share its per-route settings
            // (accepts:, machine requirements, reverification are looked up by name) and its log lines.
            reader.fail(path + ".name", map["name"], "'\(name)' is reserved for the fallback (default:); choose another name")
        }
        let label = name.isEmpty ? path : "\(path) (\(name))"
        var patterns: [RoutePattern] = []
        let sources = reader.strings(map["match"], path: label + ".match") ?? []
        if sources.isEmpty { reader.fail(label + ".match", map["match"] ?? node, "at least one pattern is required") }
        for source in sources {
            do { patterns.append(try RoutePattern(source)) } catch {
                let shown = source.count > 200 ? source.prefix(200) + "…" : source  // a huge pattern by its start
                reader.fail(label + ".match", map["match"], "'\(shown)': \(error.message)")
            }
        }
        var methods: [String] = []
        for method in reader.strings(map["methods"], path: label + ".methods") ?? [] {
            let upper = method.uppercased()
            if upper.allSatisfy({ $0.isASCII && $0.isLetter }) { methods.append(upper) } else {
                reader.fail(label + ".methods", map["methods"], "'\(method)' is not an HTTP method")
            }
        }
        let hosts = (reader.strings(map["hosts"], path: label + ".hosts") ?? []).map(HostPattern.init)
        var access = Access.protected
        if let text = reader.string(map["access"], path: label + ".access") {
            if let parsed = Access(rawValue: text) { access = parsed } else {
                reader.fail(label + ".access", map["access"], "expected 'public' or 'protected'")
            }
        }
        var requirements = Requirements()
        if let requireNode = map["require"] {
            if access == .public {
                reader.fail(label + ".require", requireNode, "a public route cannot have requirements (remove 'access: public' or 'require')")
            }
            if let require = reader.mapping(requireNode, path: label + ".require", allowed: requireKeys) {
                let p = label + ".require"
                if reader.bool(require["signed_in"], path: p + ".signed_in") == false {
                    reader.fail(p + ".signed_in", require["signed_in"], "protected routes always require a signed-in caller; use 'access: public' instead")
                }
                requirements.orgRoles = (reader.strings(require["role"], path: p + ".role") ?? []) + (reader.strings(require["org_role"], path: p + ".org_role") ?? [])
                requirements.permissions = reader.strings(require["permission"], path: p + ".permission") ?? []
                requirements.features = reader.strings(require["feature"], path: p + ".feature") ?? []
                requirements.plans = reader.strings(require["plan"], path: p + ".plan") ?? []
                requirements.requireOrganization = reader.bool(require["org"], path: p + ".org") ?? false
                // `claims:` and `session_claims:` are the session's (which one a route may use, and
                // `machine_claims:`, is checked with `accepts:` in MachineConfig).
                for key in ["claims", "session_claims"] {
                    if let claimsNode = require[key] { requirements.claims += parseClaims(claimsNode, path: p + "." + key, reader: reader) }
                }
                if let paramsNode = require["params"] {
                    requirements.ownership = parseOwnership(paramsNode, path: p + ".params", patterns: patterns.count == sources.count ? patterns : nil, reader: reader)
                }
            }
        }
        var forbiddenStatus = 403
        if let text = reader.string(map["on_forbidden"], path: label + ".on_forbidden") {
            if text == "403" || text == "404" { forbiddenStatus = Int(text)! } else {
                reader.fail(label + ".on_forbidden", map["on_forbidden"], "expected 403 or 404")
            }
        }
        var onUnauthenticated = UnauthenticatedResponse.auto
        if let text = reader.string(map["on_unauthenticated"], path: label + ".on_unauthenticated") {
            if let parsed = UnauthenticatedResponse(rawValue: text) { onUnauthenticated = parsed } else {
                reader.fail(label + ".on_unauthenticated", map["on_unauthenticated"], "expected auto, 401, 404 or redirect")
            }
        }
        var upstream: UpstreamTarget? = nil
        if let text = reader.string(map["upstream"], path: label + ".upstream") {
            upstream = UpstreamTarget(url: text)
            if upstream == nil { reader.fail(label + ".upstream", map["upstream"], "expected an http:// or https:// origin such as http://127.0.0.1:4000 (no path)") }
        }
        let csrf = reader.bool(map["csrf"], path: label + ".csrf") ?? true
        let conditions = map["when"].map { parseConditions($0, path: label + ".when", reader: reader) } ?? []
        guard reader.issues.count == before else { return nil }
        return RouteRule(name: name, patterns: patterns, methods: methods, hosts: hosts, access: access, requirements: requirements,
                         forbiddenStatus: forbiddenStatus, onUnauthenticated: onUnauthenticated, upstream: upstream, csrf: csrf,
                         conditions: conditions)
    }

    /// A mapping of dotted claim path to matcher (`require.claims`, `session_claims`, `machine_claims`).
    static func parseClaims(_ node: Node, path: String, reader: ConfigReader) -> [ClaimRequirement] {
        guard case .mapping(let claims) = node else {
            reader.fail(path, node, "expected a mapping of claim path to matcher")
            return []
        }
        var parsed: [ClaimRequirement] = []
        for (keyNode, valueNode) in claims {
            guard let claimPath = keyNode.string, !claimPath.isEmpty, !claimPath.split(separator: ".", omittingEmptySubsequences: false).contains(where: \.isEmpty) else {
                reader.fail(path, keyNode, "claim paths are dotted names such as metadata.role")
                continue
            }
            if let matcher = parseClaimMatcher(valueNode, path: path + "." + claimPath, reader: reader) {
                parsed.append(ClaimRequirement(path: claimPath, matcher: matcher))
            }
        }
        return parsed
    }

    /// `"admin"` (equals), `["a", "b"]` (one of), or `{equals|one_of|exists|contains: …}`.
    static func parseClaimMatcher(_ node: Node, path: String, reader: ConfigReader) -> ClaimMatcher? {
        switch node {
        case .scalar:
            return yamlScalarJSON(node, path: path, reader: reader).map(ClaimMatcher.equals)
        case .sequence(let sequence):
            let values = sequence.enumerated().compactMap { yamlScalarJSON($1, path: "\(path)[\($0)]", reader: reader) }
            return values.count == sequence.count ? .oneOf(values) : nil
        case .mapping:
            guard let map = reader.mapping(node, path: path, allowed: ["equals", "one_of", "exists", "contains"]), map.count == 1,
                let (kind, value) = map.first
            else {
                reader.fail(path, node, "use exactly one of equals, one_of, exists, contains")
                return nil
            }
            switch kind {
            case "equals": return yamlScalarJSON(value, path: path + ".equals", reader: reader).map(ClaimMatcher.equals)
            case "contains": return yamlScalarJSON(value, path: path + ".contains", reader: reader).map(ClaimMatcher.contains)
            case "exists": return reader.bool(value, path: path + ".exists").map(ClaimMatcher.exists)
            default:
                guard case .sequence(let sequence) = value else {
                    reader.fail(path + ".one_of", value, "expected a list")
                    return nil
                }
                let values = sequence.enumerated().compactMap { yamlScalarJSON($1, path: "\(path).one_of[\($0)]", reader: reader) }
                return values.count == sequence.count ? .oneOf(values) : nil
            }
        default:
            reader.fail(path, node, "unsupported matcher")
            return nil
        }
    }

    /// A YAML scalar as the JSON value a claim would hold: quoted text stays a string, plain `true`/`42` are
    /// a boolean / number.
    private static func yamlScalarJSON(_ node: Node, path: String, reader: ConfigReader) -> JSONValue? {
        guard case .scalar(let scalar) = node else {
            reader.fail(path, node, "expected a single value")
            return nil
        }
        guard let text = reader.string(node, path: path) else {
            reader.fail(path, node, "empty value")
            return nil
        }
        if scalar.style == .plain {
            if text == "true" { return .bool(true) }
            if text == "false" { return .bool(false) }
            if let parsed = try? JSONParser.parse(text), case .number = parsed { return parsed }
        }
        return .string(text)
    }

    private static func yamlIssue(_ error: any Error, file: String) -> ConfigIssue {
        if let yaml = error as? YamlError {
            switch yaml {
            case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _):
                return ConfigIssue(file: file, line: mark.line, column: mark.column, keyPath: "", message: "YAML syntax error: \(problem)")
            case .composer(_, let problem, let mark, _):
                return ConfigIssue(file: file, line: mark.line, column: mark.column, keyPath: "", message: "YAML error: \(problem)")
            case .duplicatedKeysInMapping(let duplicates, let context):
                return ConfigIssue(file: file, line: context.mark.line, column: context.mark.column, keyPath: "", message: "duplicate keys: \(duplicates.joined(separator: ", "))")
            default:
                return ConfigIssue(file: file, line: nil, column: nil, keyPath: "", message: "YAML error: \(yaml)")
            }
        }
        return ConfigIssue(file: file, line: nil, column: nil, keyPath: "", message: "YAML error: \(error)")
    }

    static func isHostPort(_ text: String) -> Bool { parseHostPort(text) != nil }

    /// `host:port` (an IPv6 host in brackets) as a bind address: the host without brackets and the port.
    public static func parseHostPort(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        // Digits only: Int("+80") would take a sign.
        let portText = text[text.index(after: colon)...]
        guard !portText.isEmpty, portText.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            let port = Int(portText), (0...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        guard !host.isEmpty, (try? CanonicalRequest.normalizeHost(host)) != nil else { return nil }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host, port)
    }

    static func isOrigin(_ text: String) -> Bool {
        for scheme in ["https://", "http://"] where text.hasPrefix(scheme) {
            let rest = String(text.dropFirst(scheme.count))
            return !rest.isEmpty && !rest.contains("/") && !rest.contains("@") && (try? CanonicalRequest.normalizeHost(rest)) != nil
        }
        return false
    }

    /// A sign-in URL must be an absolute http(s) URL without userinfo, or a same-origin path (`/x`, but not
    /// `//host` or `/\host`, which browsers treat as another origin).
    static func isSafeRedirectTarget(_ url: String) -> Bool {
        if url.utf8.contains(where: { $0 < 0x21 || $0 >= 0x7F || $0 == UInt8(ascii: "\\") }) { return false }
        if url.hasPrefix("/") { return !url.hasPrefix("//") }
        for scheme in ["https://", "http://"] where url.hasPrefix(scheme) {
            let authority = url.dropFirst(scheme.count).prefix { $0 != "/" && $0 != "?" && $0 != "#" }
            return !authority.isEmpty && !authority.contains("@") && (try? CanonicalRequest.normalizeHost(String(authority))) != nil
        }
        return false
    }

    static func isValidHeaderName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { b in
            (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
                || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "-")
        }
    }
}
