import GatehouseCore

/// Calls the Backend API's verify endpoint for one opaque token (implemented over HTTP in GatehouseFetch).
public protocol MachineTokenSource: Sendable {
    /// Throws when no answer came (connection refused, timeout): the caller answers 503.
    func verify(_ type: TokenType, token: String) async throws -> BackendAPIAnswer
}

public struct BackendAPIAnswer: Sendable {
    public let status: Int
    public let body: [UInt8]

    public init(status: Int, body: [UInt8]) {
        self.status = status
        self.body = body
    }
}

/// Reads a verify endpoint's answer (`api/resources/*.ts`, snake_case JSON, times in milliseconds) and
/// maps failures to Clerk's codes and messages (§1.5 of the design notes). Stricter than Clerk's SDK, which
/// trusts any 200: a 200 that says `revoked`, `expired` (or an `expiration` in the past), `active: false`,
/// names no or another object type, has a non-boolean flag, or has no subject is a rejection.
public enum MachineTokenResponse {
    /// The Backend API path of each opaque type (the SDK's bapi-proxy paths, without `/v1`).
    public static func path(for type: TokenType) -> String? {
        switch type {
        case .m2mToken: return "/m2m_tokens/verify"
        case .apiKey: return "/api_keys/verify"
        case .oauthToken: return "/oauth_applications/access_tokens/verify"
        default: return nil
        }
    }

    /// The JSON body member carrying the token.
    public static func bodyKey(for type: TokenType) -> String {
        switch type {
        case .m2mToken: return "token"
        case .apiKey: return "secret"
        default: return "access_token"
        }
    }

    static func notFoundMessage(_ type: TokenType) -> String {
        switch type {
        case .apiKey: return "API key not found"
        case .oauthToken: return "OAuth token not found"
        default: return "Machine token not found"
        }
    }

    static let expectedObjects: [TokenType: String] = [
        .apiKey: "api_key", .m2mToken: "machine_to_machine_token", .oauthToken: "clerk_idp_oauth_access_token",
    ]

    /// `now` is Unix seconds.
    public static func interpret(_ answer: BackendAPIAnswer, type: TokenType, now: Double) -> MachineAuthState {
        func rejected(_ message: String, code: String = "token-invalid") -> MachineAuthState {
            .rejected(reason: code, message: "\(message) (code=\(code), status=\(answer.status))")
        }
        switch answer.status {
        case 200:
            break
        case 404:
            return rejected(notFoundMessage(type))
        case 400, 422:
            return rejected("The Backend API refused the token")
        case 401, 403:
            // Our key is wrong, not the caller's token: not the caller's fault, so 503, and nothing cached.
            return .unavailable(reason: "secret-key-invalid", message: "The Backend API refused Gatehouse's secret key (status=\(answer.status)).")
        default:
            return .unavailable(reason: "unexpected-error", message: "The Backend API answered \(answer.status).")
        }
        guard case .object(let object)? = try? JSONParser.parse(answer.body) else {
            return .unavailable(reason: "unexpected-error", message: "The Backend API's answer is not a JSON object.")
        }
        // Only Clerk's verified resource passes: `object` must be there and name the expected type, and the
        // flags, when present, must be booleans (a string "false" or a 0 is not Clerk's answer).
        guard let kind = object["object"] else { return rejected("The Backend API's answer names no object type") }
        if kind.stringValue != expectedObjects[type] { return rejected("The Backend API verified another kind of object") }
        for flag in ["active", "revoked", "expired"] {
            if let value = object[flag], value.boolValue == nil { return rejected("The token's \(flag) flag is not a boolean") }
        }
        if object["active"] == .bool(false) { return rejected("The token is not active") }
        if object["revoked"] == .bool(true) { return rejected("The token is revoked") }
        if object["expired"] == .bool(true) { return rejected("The token is expired") }
        var expiresAt: Double? = nil
        if let expiration = object["expiration"], expiration != .null {
            guard let ms = expiration.doubleValue, ms.isFinite else { return rejected("The token's expiration is not a number") }
            // OAuth's OpenAPI example gives seconds; Clerk's resources give milliseconds. Below 1e11 it is seconds.
            let seconds = ms > 100_000_000_000 ? ms / 1000 : ms
            if seconds <= now { return rejected("The token is expired") }
            expiresAt = seconds
        }
        guard let subject = object["subject"]?.stringValue, !subject.isEmpty else { return rejected("The token has no subject") }
        let scopes = object["scopes"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let claims = object["claims"]?.objectValue
        return .verified(MachineIdentity(
            tokenType: type, form: .opaque, id: object["id"]?.stringValue ?? "", subject: subject, scopes: scopes,
            claims: claims.flatMap { $0.members.isEmpty ? nil : $0 }, name: type == .apiKey ? object["name"]?.stringValue : nil,
            clientId: type == .oauthToken ? object["client_id"]?.stringValue : nil, expiresAt: expiresAt))
    }
}
