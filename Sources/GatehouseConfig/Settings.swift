import GatehouseAuth
import GatehouseCore
import GatehouseTLS

/// Where signing keys come from, chosen by precedence: `jwt_key` (PEM, networkless) > `jwks_file` >
/// `jwks_url` > the Backend API via `secret_key` > the Frontend API's public JWKS from the publishable key.
public enum KeySource: Sendable {
    case pem(VerificationKey)
    case jwksFile(path: String, keys: [VerificationKey], skipped: [String])
    /// A JWKS fetched over HTTP; `bearer` is the secret key for the Backend API (never printed).
    case remote(url: String, bearer: String?, origin: String)

    public var description: String {
        switch self {
        case .pem: return "jwt_key (PEM public key, networkless)"
        case .jwksFile(let path, let keys, _): return "jwks_file \(path) (\(keys.count) key\(keys.count == 1 ? "" : "s"))"
        case .remote(let url, _, let origin): return "\(origin) \(url)"
        }
    }
}

/// A validated, compiled configuration. Immutable: a reload builds a new one and swaps it whole.
public struct GatehouseSettings: Sendable {
    public var file: String
    public var listen: String
    public var upstream: UpstreamTarget
    /// The app's public origin (`https://app.example.com`); when set, redirects use it instead of `Host`.
    public var publicOrigin: String?
    public var trustedProxies: [CIDR]
    public var canonicalization: CanonicalizationOptions
    public var instance: ClerkInstance?
    /// Clerk secret key, only for Backend API calls. Never printed or logged.
    public var secretKey: String?
    public var keySource: KeySource
    public var keySettings: KeyStore.Settings
    public var policy: VerificationPolicy
    public var signInURL: String
    /// Handshakes, dev browsers and satellite syncs for browser sessions (Clerk's middleware behaviour).
    public var browser: BrowserSessionOptions
    /// Clerk's Backend API base (`https://api.clerk.com`), for the handshake-nonce exchange.
    public var apiURL: String
    /// The Frontend API proxy (`/__clerk` → the Frontend API), when turned on.
    public var frontendAPIProxy: FrontendAPIProxySettings?
    public var routes: RouteTable
    public var identity: IdentityHeaderPolicy
    /// Verified tokens remembered (0: verify every request in full).
    public var tokenCacheSize: Int
    public var server: ServerLimits
    public var proxy: ProxySettings
    /// Admin listener for /healthz, /readyz and /metrics; nil turns it off.
    public var adminListen: String?
    /// Path of the forward-auth endpoint on the public listener; nil turns it off.
    public var forwardAuthPath: String?
    public var accessLog: Bool
    /// `log_level` for operational messages (applied by a reload).
    public var logLevel: LogLevel = .info
    /// Things that are legal but probably not what the operator meant.
    public var warnings: [String]
    /// Machine authentication (`accepts:`, `machine_auth:`); see Settings+Machine.swift.
    public var machine = MachineSettings()
    /// Signed identity assertions for upstreams (`identity_assertion:`), or nil.
    public var identityAssertion: IdentityAssertionIssuer? = nil
    /// TLS on the public listener (`tls:`), or nil for plain HTTP.
    public var tls: ListenerTLS? = nil
}

/// TLS termination on the public listener: the certificates (SNI picks among them, the first is the
/// default) and the OpenSSL context built from them when the config was loaded. A reload loads them again:
/// new connections get the new certificates, open ones keep theirs.
public struct ListenerTLS: Sendable {
    public let certificates: [TLSCertificateFiles]
    public let context: TLSServerContext
}

/// Clerk's Frontend API served through Gatehouse under `path` (clerk-protocol.md §9), so apps can serve Clerk
/// from their own domain.
public struct FrontendAPIProxySettings: Sendable, Equatable {
    /// `/__clerk` by default; requests under it go to the Frontend API with the prefix removed.
    public var path: String
    /// The Frontend API origin, e.g. `https://clerk.example.com`.
    public var target: UpstreamTarget
    /// The `Host` the Frontend API expects.
    public var host: String
}

/// Listener limits: what a client may send and how long it may take.
public struct ServerLimits: Sendable, Equatable {
    /// Event loop threads; 0 means one per core.
    public var threads = 0
    public var maxConnections = 10_000
    /// Time allowed to send a complete request head (slowloris defence).
    public var headerTimeout = 10.0
    /// Time an idle keep-alive connection is kept open.
    public var idleTimeout = 60.0
    /// Longest pause between two pieces of a request body that is being proxied (slow-body defence).
    public var bodyTimeout = 30.0
    /// Longest a response may wait on a client that does not read it (as nginx's `send_timeout`).
    public var sendTimeout = 60.0
    public var maxHeaderBytes = 32 * 1024
    public var maxHeaderCount = 100
    /// Largest request body accepted; 0 means no limit.
    public var maxBodyBytes = 0
    /// Time in-flight requests get to finish on SIGTERM/SIGINT.
    public var gracePeriod = 25.0

    public init() {}
}

/// How Gatehouse talks to upstreams.
public struct ProxySettings: Sendable, Equatable {
    public var connectTimeout = 5.0
    /// Time from sending a request until the upstream's response head arrives.
    public var responseTimeout = 60.0
    /// Longest pause between two reads of a response being relayed (as nginx's `proxy_read_timeout`).
    public var readTimeout = 60.0
    /// Time a pooled idle upstream connection is kept.
    public var idleTimeout = 60.0
    /// Idle upstream connections kept per upstream and thread.
    public var maxIdleConnections = 64
    /// A WebSocket tunnel is closed after this long, whatever happens.
    public var websocketMaxLifetime = 3600.0
    /// Close a WebSocket tunnel when the session token that opened it expires.
    public var websocketCloseAtTokenExpiry = true
    /// PEM file of the CAs that https:// upstream certificates must chain to (absolute path); nil means the
    /// system trust store.
    public var tlsCAFile: String? = nil

    public init() {}
}

extension GatehouseSettings {
    /// Whether any request may go to an `https://` upstream (the default upstream, a route's, the Frontend API
    /// proxy's): only then is the upstream trust store needed.
    public var namesTLSUpstream: Bool {
        upstream.tls || frontendAPIProxy?.target.tls == true || routes.rules.contains { $0.upstream?.tls == true }
            || routes.fallback.upstream?.tls == true
    }
}
