import Crypto
import CryptoExtras
import Foundation
import GatehouseCore

/// A DEVELOPMENT token issuer: generates an RSA key and signs Clerk-shaped session tokens with it.
/// It exists for tests, demos and `gatehouse dev` — it is never used to verify anything, and a gateway only
/// trusts it when its JWKS is explicitly configured as a key source.
public struct DevIssuer: Sendable {
    public let kid: String
    let privateKey: _RSA.Signing.PrivateKey

    public init(kid: String = "dev-" + String(UInt32.random(in: 0...UInt32.max), radix: 16), bits: Int = 2048) throws {
        self.kid = kid
        // Small keys only ever exist to prove that verifiers refuse them.
        self.privateKey = bits >= 2048
            ? try _RSA.Signing.PrivateKey(keySize: .init(bitCount: bits))
            : try _RSA.Signing.PrivateKey(unsafeKeySize: .init(bitCount: bits))
    }

    public init(kid: String, privateKeyPEM: String) throws {
        self.kid = kid
        self.privateKey = try _RSA.Signing.PrivateKey(pemRepresentation: privateKeyPEM)
    }

    public var privateKeyPEM: String { privateKey.pemRepresentation }
    public var publicKeyPEM: String { privateKey.publicKey.pemRepresentation }

    /// The public half as a JWKS document (`alg` RS256, `use` sig).
    public var jwks: JSONValue {
        let primitives = try! privateKey.publicKey.getKeyPrimitives()
        return ["keys": [[
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": .string(kid),
            "n": .string(Base64URL.encode(primitives.modulus)), "e": .string(Base64URL.encode(primitives.publicExponent)),
        ]]]
    }

    /// Signs `payload` with RS256 (or the given RSA algorithm name); `header` members are added to
    /// `{"alg","typ","kid"}` and may override them (tests forge headers this way).
    public func sign(_ payload: JSONObject, header extra: JSONObject = JSONObject(), algorithm: String = "RS256") -> String {
        var header = JSONObject([("alg", .string(algorithm)), ("typ", "JWT"), ("kid", .string(kid))])
        for (key, value) in extra.members { header.set(key, value) }
        return signRaw(header: header, payload: payload, algorithm: algorithm)
    }

    /// Signs with exactly this header (tests use it to leave out `kid` and the like).
    public func signRaw(header: JSONObject, payload: JSONObject, algorithm: String = "RS256") -> String {
        let input = Base64URL.encode(Array(JSONValue.object(header).serialized().utf8)) + "."
            + Base64URL.encode(Array(JSONValue.object(payload).serialized().utf8))
        let data = Array(input.utf8)
        let signature: _RSA.Signing.RSASignature
        switch algorithm {
        case "RS384": signature = try! privateKey.signature(for: SHA384.hash(data: data), padding: .insecurePKCS1v1_5)
        case "RS512": signature = try! privateKey.signature(for: SHA512.hash(data: data), padding: .insecurePKCS1v1_5)
        default: signature = try! privateKey.signature(for: SHA256.hash(data: data), padding: .insecurePKCS1v1_5)
        }
        return input + "." + Base64URL.encode(signature.rawRepresentation)
    }

    /// A Clerk-shaped session token payload (v1 org claims when `org` is given).
    public static func sessionClaims(
        userId: String, sessionId: String = "sess_dev", issuedAt: Double, lifetime: Double = 60,
        issuer: String = "https://clerk.gatehouse.invalid", azp: String? = nil,
        org: (id: String, slug: String, role: String, permissions: [String])? = nil, extra: JSONObject = JSONObject()
    ) -> JSONObject {
        var claims = JSONObject([
            ("azp", azp.map(JSONValue.string) ?? .null), ("exp", .number(JSONNumber(Int64(issuedAt + lifetime)))),
            ("iat", .number(JSONNumber(Int64(issuedAt)))), ("iss", .string(issuer)),
            ("nbf", .number(JSONNumber(Int64(issuedAt - 10)))), ("sid", .string(sessionId)), ("sub", .string(userId)),
        ])
        if azp == nil { claims = JSONObject(claims.members.filter { $0.key != "azp" }) }
        if let org {
            claims.set("org_id", .string(org.id))
            claims.set("org_slug", .string(org.slug))
            claims.set("org_role", .string(org.role))
            claims.set("org_permissions", .array(org.permissions.map(JSONValue.string)))
        }
        for (key, value) in extra.members { claims.set(key, value) }
        return claims
    }
}
