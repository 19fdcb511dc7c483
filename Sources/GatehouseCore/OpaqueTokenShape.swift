/// The shape of an opaque machine token (`ak_…`, `mt_…`, `oat_…`), checked before any Backend API call: a
/// text that cannot be one of Clerk's tokens is refused locally, so it costs neither a metered call nor a
/// token of the verification buckets. Clerk's tokens are the prefix and a few dozen base64/base64url
/// characters (API keys end in `=` padding and may contain `+` `/`).
public enum OpaqueTokenShape {
    /// Far above any Clerk token (about 40 to 60 characters), far below a header limit.
    public static let maxLength = 512

    /// Nil when well formed; otherwise why not (for `explain`; the caller only learns "malformed").
    public static func problem(_ token: String, type: TokenType) -> String? {
        let prefix: String
        switch type {
        case .apiKey: prefix = TokenClassifier.apiKeyPrefix
        case .m2mToken: prefix = TokenClassifier.m2mPrefix
        case .oauthToken: prefix = TokenClassifier.oauthPrefix
        default: return "\(type.rawValue) is not an opaque token type"
        }
        let bytes = token.utf8
        guard token.hasPrefix(prefix) else { return "it does not start with \(prefix)" }
        guard bytes.count > prefix.utf8.count else { return "nothing follows \(prefix)" }
        guard bytes.count <= maxLength else { return "it is longer than \(maxLength) bytes" }
        guard bytes.dropFirst(prefix.utf8.count).allSatisfy(isTokenByte) else {
            return "it has characters outside the token alphabet (A-Z a-z 0-9 - _ + / =)"
        }
        return nil
    }

    static func isTokenByte(_ b: UInt8) -> Bool {
        TokenClassifier.isBase64URLByte(b) || b == UInt8(ascii: "+") || b == UInt8(ascii: "/") || b == UInt8(ascii: "=")
    }
}
