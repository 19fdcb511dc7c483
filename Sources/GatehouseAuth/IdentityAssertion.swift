import Crypto
import GatehouseCore
import Synchronization

/// `identity_assertion:` settings (see the README's "Defense in depth").
public struct IdentityAssertionSettings: Sendable, Equatable {
    /// `iss` of every assertion.
    public var issuer = "gatehouse"
    /// `exp - iat`, in seconds (never past the session token's own `exp`).
    public var lifetime = 30
    /// How long one signed assertion is handed out again for the very same (token, route, audience, method,
    /// host, path); 0 signs every request.
    public var reuse = 5.0
    /// Upstream origin (`http://127.0.0.1:3000`) → audience; an upstream not listed gets its origin.
    public var audiences: [String: String] = [:]
    /// Public path serving the JWKS on the public listener (besides the admin listener), or nil.
    public var jwksPath: String? = nil
    /// What one assertion is bound to (`bind:`).
    public var binding = BindingScope.request

    /// `request`: method, host and path are signed in, so an assertion is good for one request (a signature
    /// per distinct request, reused only for the very same one). `route`: one signature per (caller, route,
    /// audience) for `reuse` seconds, without method/host/path — one signature for a whole page load's worth of
    /// requests, at the price of an assertion that a party able to reach the app could replay within its
    /// lifetime to any path of that route.
    public enum BindingScope: String, Sendable, Equatable {
        case request, route
    }

    public init() {}

    public func audience(for upstream: UpstreamTarget) -> String { audiences[upstream.description] ?? upstream.description }
}

/// Signs Gatehouse's identity assertions (ES256, JWS compact) and publishes the public keys as a JWKS.
///
/// An assertion binds the verified identity to one request: `method`, `host`, `path`, `route`, `aud` (one
/// per upstream), `iat`/`exp` seconds apart. The binding is inside the signature, so it cannot be lifted to
/// another request; the cost is kept low by reusing a signature for `reuse` seconds for an identical binding
/// (polling, assets, retries) instead of signing a session-wide token and an unsigned per-request field
/// that an app could not verify.
public final class IdentityAssertionIssuer: Sendable {
    public static let header = "X-Gatehouse-Assertion"

    public let settings: IdentityAssertionSettings
    /// RFC 7638 thumbprint of the signing key.
    public let kid: String
    /// `{"keys":[signing key, previous keys…]}`.
    public let jwks: String
    private let key: P256.Signing.PrivateKey
    private let cache = Mutex<[String: Reusable]>([:])
    static let cacheCapacity = 10_000

    private struct Reusable {
        let jwt: String
        let until: Double
    }

    public init(signingKey: P256.Signing.PrivateKey, previousKeys: [P256.Signing.PublicKey] = [], settings: IdentityAssertionSettings) {
        self.key = signingKey
        self.settings = settings
        let current = IdentityAssertionIssuer.jwk(signingKey.publicKey)
        self.kid = current.kid
        var keys = [current.json]
        for previous in previousKeys where IdentityAssertionIssuer.jwk(previous).kid != current.kid {
            keys.append(IdentityAssertionIssuer.jwk(previous).json)
        }
        self.jwks = JSONValue.object(JSONObject([("keys", .array(keys))])).serialized()
    }

    static func jwk(_ key: P256.Signing.PublicKey) -> (kid: String, json: JSONValue) {
        let point = Array(key.x963Representation)  // 0x04 ‖ x ‖ y
        let x = Base64URL.encode(point[1..<33]), y = Base64URL.encode(point[33..<65])
        // RFC 7638: the required members in lexicographic order, no whitespace.
        let canonical = "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"\(x)\",\"y\":\"\(y)\"}"
        let kid = Base64URL.encode(SHA256.hash(data: Array(canonical.utf8)))
        return (kid, .object(JSONObject([
            ("kty", "EC"), ("crv", "P-256"), ("x", .string(x)), ("y", .string(y)),
            ("kid", .string(kid)), ("alg", "ES256"), ("use", "sig"),
        ])))
    }

    /// What one assertion says about one request.
    public struct Binding: Sendable {
        public var session: SessionAuth?
        /// The verified session token (only the cache key uses it; it is never put in the assertion).
        public var token: String?
        public var route: String
        public var audience: String
        public var method: String
        public var host: String?
        public var path: String
        /// A machine caller (API key, M2M or OAuth token, template), when the request carries no session.
        public var machine: MachineIdentity?

        public init(session: SessionAuth?, token: String?, route: String, audience: String, method: String, host: String?, path: String,
                    machine: MachineIdentity? = nil) {
            self.machine = machine
            self.session = session
            self.token = token
            self.route = route
            self.audience = audience
            self.method = method
            self.host = host
            self.path = path
        }
    }

    /// The assertion for `binding` at `now` (Unix seconds): a reused one while it is fresh, else a new one.
    public func assertion(for binding: Binding, now: Double) -> String {
        // Every field the assertion takes from a machine caller (a token without a `jti` has no id of its own).
        let caller = binding.machine.map {
            [$0.tokenType.rawValue, $0.id, $0.subject, $0.scopes.joined(separator: " "), $0.clientId ?? "", $0.name ?? "",
             $0.expiresAt.map { String($0) } ?? ""].joined(separator: "\u{1}")
        } ?? ""
        let requestPart = settings.binding == .request ? [binding.method, binding.host ?? "", binding.path] : []
        let cacheKey = settings.reuse > 0 ? ([binding.token ?? "", caller, binding.route, binding.audience] + requestPart).joined(separator: "\u{0}") : ""
        if settings.reuse > 0, let hit = cache.withLock({ $0[cacheKey] }), hit.until > now { return hit.jwt }
        let jwt = sign(binding, now: now)
        if settings.reuse > 0 {
            cache.withLock { entries in
                if entries.count >= IdentityAssertionIssuer.cacheCapacity { entries = entries.filter { $0.value.until > now } }
                if entries.count >= IdentityAssertionIssuer.cacheCapacity { entries.removeAll(keepingCapacity: true) }
                entries[cacheKey] = Reusable(jwt: jwt, until: now + settings.reuse)
            }
        }
        return jwt
    }

    /// 96 random bits from two generator calls (one per byte was a dozen getrandom calls per assertion).
    static func randomID() -> String {
        var generator = SystemRandomNumberGenerator()
        let a: UInt64 = generator.next(), b: UInt32 = generator.next()
        return Base64URL.encode((0..<8).map { UInt8(truncatingIfNeeded: a >> ($0 * 8)) } + (0..<4).map { UInt8(truncatingIfNeeded: b >> ($0 * 8)) })
    }

    /// A freshly signed assertion (no reuse).
    public func sign(_ binding: Binding, now: Double) -> String {
        let iat = Int(now.rounded(.down))
        var exp = iat + settings.lifetime
        if let tokenExp = binding.session?.claims["exp"]?.doubleValue ?? binding.machine?.expiresAt { exp = min(exp, Int(tokenExp.rounded(.down))) }
        var claims = JSONObject([
            ("iss", .string(settings.issuer)), ("aud", .string(binding.audience)),
            ("iat", .number(JSONNumber(iat))), ("exp", .number(JSONNumber(exp))),
            ("jti", .string(IdentityAssertionIssuer.randomID())),
            ("route", .string(binding.route)),
        ])
        if settings.binding == .request {
            claims.set("method", .string(binding.method))
            claims.set("host", binding.host.map(JSONValue.string) ?? .null)
            claims.set("path", .string(binding.path))
        }
        if let session = binding.session {
            claims.set("sub", .string(session.userId))
            if let sid = session.sessionId { claims.set("sid", .string(sid)) }
            if let orgId = session.orgId {
                claims.set("org_id", .string(orgId))
                if let slug = session.orgSlug { claims.set("org_slug", .string(slug)) }
                if let role = session.orgRole { claims.set("org_role", .string(role)) }
                claims.set("org_permissions", .array(session.orgPermissions.map(JSONValue.string)))
            }
            if let actor = session.actor { claims.set("act", actor) }
        } else if let machine = binding.machine {
            // A machine caller: `token_type` says so (a session's assertion has none), `sub` is its subject
            // (`mch_…`, or the `user_…`/`org_…` owning an API key or OAuth grant).
            claims.set("token_type", .string(machine.tokenType.rawValue))
            claims.set("sub", .string(machine.subject))
            claims.set("scopes", .array(machine.scopes.map(JSONValue.string)))
            if let client = machine.clientId { claims.set("client_id", .string(client)) }
            if let name = machine.name { claims.set("key_name", .string(name)) }
        }
        let header = "{\"alg\":\"ES256\",\"kid\":\"\(kid)\",\"typ\":\"gatehouse-assertion+jwt\"}"
        let signingInput = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(JSONValue.object(claims).serialized().utf8))
        // Signing with a valid in-memory key cannot fail short of memory exhaustion; fail closed with a token no
        // verifier accepts rather than crash the daemon.
        guard let signature = try? key.signature(for: Array(signingInput.utf8)) else { return signingInput + "." }
        return signingInput + "." + Base64URL.encode(signature.rawRepresentation)
    }
}
