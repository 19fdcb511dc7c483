import GatehouseCore

/// How browser sessions are kept alive the way Clerk's middleware does it (clerk-protocol.md §3.4–3.9):
/// handshake round trips to the Frontend API, dev-browser tokens and satellite domains.
public struct BrowserSessionOptions: Sendable {
    /// Send browsers through Clerk's handshake when their cookies are stale. Off: those states are signed out.
    public var handshake: Bool
    /// Where browsers reach the Frontend API: Clerk's `proxyUrl` (absolute, or a path on the app's origin such as
    /// `/__clerk`), else `https://<frontend api host>` (`clerk.<domain>` for a production satellite).
    public var frontendAPI: String?
    /// The app's public origin; when nil the request's own scheme and host are used.
    public var publicOrigin: String?
    public var isSatellite: Bool
    public var domain: String?
    /// The primary's sign-in URL, which a development satellite syncs through.
    public var signInURL: String?
    /// Origins a development primary may send its dev-browser token back to (`__clerk_redirect_url`).
    public var trustedOrigins: [String]

    public init(handshake: Bool = true, frontendAPI: String? = nil, publicOrigin: String? = nil, isSatellite: Bool = false,
                domain: String? = nil, signInURL: String? = nil, trustedOrigins: [String] = []) {
        self.handshake = handshake
        self.frontendAPI = frontendAPI
        self.publicOrigin = publicOrigin
        self.isSatellite = isSatellite
        self.domain = domain
        self.signInURL = signInURL
        self.trustedOrigins = trustedOrigins
    }

    /// Clerk's `clerkUrl`: the URL the browser asked for (public origin, or the request's scheme and host).
    public func clerkURL(for request: CanonicalRequest) -> String? {
        guard let origin = origin(of: request) else { return nil }
        return origin + request.pathAndQuery
    }

    public func origin(of request: CanonicalRequest) -> String? {
        if let publicOrigin { return publicOrigin }
        return request.host.map { request.scheme + "://" + $0 }
    }

    /// The Frontend API base the browser is sent to, absolute, without a trailing `/`.
    func frontendAPIBase(instance: ClerkInstance, requestOrigin: String) -> String {
        var base: String
        if let frontendAPI {
            base = frontendAPI.hasPrefix("/") ? requestOrigin + frontendAPI : frontendAPI
        } else if instance.kind == .production, isSatellite, let domain {
            base = "clerk." + domain
        } else {
            base = instance.frontendAPIHost
        }
        if !base.hasPrefix("http") { base = "https://" + base }
        while base.hasSuffix("/") { base.removeLast() }
        return base
    }
}

/// Fetches the cookie directives behind a handshake nonce (Backend API `GET /v1/clients/handshake_payload`).
public protocol HandshakePayloadSource: Sendable {
    func directives(nonce: String) async throws -> [String]
}

/// The cookie and query names of Clerk's browser protocol.
enum ClerkNames {
    static let handshakeToken = "__clerk_handshake"
    static let handshakeNonce = "__clerk_handshake_nonce"
    static let devBrowser = "__clerk_db_jwt"
    static let redirectCount = "__clerk_redirect_count"
    static let synced = "__clerk_synced"
    static let redirectURL = "__clerk_redirect_url"
    /// Clerk's `SUPPORTED_BAPI_VERSION`, sent as `__clerk_api_version`.
    static let apiVersion = "2026-05-12"
    /// Removed from the URL after a development handshake.
    static let handshakeQueryNames: Set<String> = [handshakeToken, "__clerk_help", devBrowser, handshakeNonce]
}

/// Handshake tokens carry Set-Cookie directives, signed with the instance's keys. Clerk's rules for them
/// (`verifyHandshakeToken`): `typ` absent or `JWT`, an RS* algorithm, a session (or ignorable) category, a
/// valid signature — and no time claims.
enum HandshakeToken {
    static let categories: Set<String> = ["cl_B7d4PD111AAA", "cl_I7d4PD111III"]

    static func directives(_ token: String, keys: KeySet, policy: VerificationPolicy) throws(TokenVerificationError) -> [String] {
        let decoded = try DecodedToken(token)
        if let cat = decoded.header["cat"], !(cat.stringValue.map(categories.contains) ?? false) {
            throw TokenVerificationError(.invalid, "Invalid handshake token category.")
        }
        guard let alg = decoded.algorithm, alg.hasPrefix("RS") else {
            throw TokenVerificationError(.invalidAlgorithm, "Handshake tokens must be signed with RS256, RS384 or RS512.")
        }
        try TokenVerifier.verifySignature(decoded, keys: keys, policy: policy)
        guard case .array(let values)? = decoded.payload["handshake"] else { return [] }
        return values.compactMap(\.stringValue)
    }
}

extension String {
    /// The cookie name of a `Set-Cookie` directive (`name=value; attrs`).
    var setCookieName: Substring {
        let pair = self[..<(firstIndex(of: ";") ?? endIndex)]
        return pair[..<(pair.firstIndex(of: "=") ?? pair.endIndex)].trimmingPrefixWhitespace()
    }

    /// The cookie value of a `Set-Cookie` directive, as Clerk reads it (`split(';')[0].split('=')[1]`).
    var setCookieValue: String {
        let pair = self[..<(firstIndex(of: ";") ?? endIndex)]
        let parts = pair.split(separator: "=", omittingEmptySubsequences: false)
        return parts.count > 1 ? String(parts[1]) : ""
    }
}

extension Substring {
    func trimmingPrefixWhitespace() -> Substring { drop { $0 == " " || $0 == "\t" } }
}
