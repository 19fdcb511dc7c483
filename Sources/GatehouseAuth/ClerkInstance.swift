import Crypto
import Foundation
import GatehouseCore

/// What a Clerk publishable key says about its instance (Clerk's `parsePublishableKey`).
public struct ClerkInstance: Sendable, Equatable {
    public enum Kind: String, Sendable { case development, production }

    public let publishableKey: String
    public let kind: Kind
    /// Frontend API host, e.g. `clerk.example.com` or `happy-cat-1.clerk.accounts.dev`.
    public let frontendAPIHost: String
    /// `base64(SHA1(pk))[0..<8]` with `+/` → `-_`: the suffix of `__session_<suffix>` and friends.
    public let cookieSuffix: String

    public init(publishableKey: String) throws(KeyError) {
        let kind: Kind
        if publishableKey.hasPrefix("pk_test_") {
            kind = .development
        } else if publishableKey.hasPrefix("pk_live_") {
            kind = .production
        } else {
            throw KeyError("publishable key must start with pk_test_ or pk_live_")
        }
        let parts = publishableKey.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 3, let decoded = Base64URL.decodeStandard(String(parts[2])),
            let text = String(validating: decoded, as: UTF8.self)
        else { throw KeyError("publishable key is not valid base64") }
        guard text.hasSuffix("$"), text.filter({ $0 == "$" }).count == 1 else {
            throw KeyError("publishable key does not encode a Frontend API host")
        }
        let host = String(text.dropLast())
        guard host.contains("."), (try? CanonicalRequest.normalizeHost(host)) != nil else {
            throw KeyError("publishable key does not encode a valid Frontend API host")
        }
        self.publishableKey = publishableKey
        self.kind = kind
        self.frontendAPIHost = host
        self.cookieSuffix = ClerkInstance.cookieSuffix(for: publishableKey)
    }

    public static func cookieSuffix(for publishableKey: String) -> String {
        let digest = Insecure.SHA1.hash(data: Array(publishableKey.utf8))
        let base64 = Data(digest).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        return String(base64.prefix(8))
    }

    /// The Account Portal origin (`clerk.example.com` → `https://accounts.example.com`).
    public var accountsBaseURL: String {
        var host = frontendAPIHost
        if host.hasPrefix("clerk.accountsstage.") {
            host = "accountsstage." + host.dropFirst("clerk.accountsstage.".count)
        } else if let range = host.range(of: "clerk.accounts.") {
            host.replaceSubrange(range, with: "accounts.")
        } else if let range = host.range(of: "clerk.") {
            host.replaceSubrange(range, with: "accounts.")
        }
        return "https://" + host
    }

    public var defaultSignInURL: String { accountsBaseURL + "/sign-in" }

    /// The instance's public JWKS on its Frontend API.
    public var frontendJWKSURL: String { "https://" + frontendAPIHost + "/.well-known/jwks.json" }

    /// Where a Frontend API proxy forwards (Clerk's `fapiUrlFromPublishableKey`): the shared Frontend API
    /// endpoint of the environment, which finds the instance by the secret key the proxy sends.
    public var frontendAPIProxyTarget: String {
        let host = frontendAPIHost
        let legacyDev = [".lcl.dev", ".lclstage.dev", ".lclclerk.com"]
        if host.hasPrefix("clerk."), legacyDev.contains(where: host.hasSuffix) { return "https://frontend-api.clerk.dev" }
        if [".lcl.dev", "lclstage.dev", ".lclclerk.com", ".accounts.lclclerk.com"].contains(where: host.hasSuffix) {
            return "https://frontend-api.lclclerk.com"
        }
        if host.hasSuffix(".accountsstage.dev") { return "https://frontend-api.clerkstage.dev" }
        return "https://frontend-api.clerk.dev"
    }

    /// The Backend API base for this instance (Clerk's `apiUrlFromPublishableKey`).
    public var backendAPIURL: String {
        let host = frontendAPIHost
        if host.hasSuffix(".lcl.dev") || host.hasSuffix(".lclstage.dev") || host.hasSuffix(".lclclerk.com") {
            return "https://api.lclclerk.com"
        }
        if host.hasSuffix(".accountsstage.dev") || host.hasSuffix(".clerkstage.dev") {
            return "https://api.clerkstage.dev"
        }
        return "https://api.clerk.com"
    }
}
