import Crypto
import GatehouseAuth
import GatehouseCore
import Testing

/// Some issuers (PyJWT before 2.8) write EC coordinates without their leading zero bytes; about one key in 128
/// has one. The key is the same integer and must be usable (JWTVectorTests' random PyJWT keys hit this).
@Suite struct ShortECCoordinateTests {
    static func jwk(x: [UInt8], y: [UInt8], crv: String, alg: String) -> [UInt8] {
        Array(#"{"keys":[{"kty":"EC","crv":"\#(crv)","alg":"\#(alg)","kid":"k","x":"\#(Base64URL.encode(x))","y":"\#(Base64URL.encode(y))"}]}"#.utf8)
    }

    @Test func aP384KeyWithAShortXCoordinateIsUsable() throws {
        var key = P384.Signing.PrivateKey()
        while key.publicKey.rawRepresentation.first != 0 { key = P384.Signing.PrivateKey() }
        let raw = Array(key.publicKey.rawRepresentation)
        let x = Array(raw[0..<48].drop { $0 == 0 }), y = Array(raw[48...])
        let parsed = try JWKSParser.parse(Self.jwk(x: x, y: y, crv: "P-384", alg: "ES384"), allowed: [.es384])
        #expect(parsed.skipped.isEmpty)
        #expect(parsed.keys.count == 1)
    }

    @Test func aCoordinateLongerThanTheCurveIsRefused() throws {
        let key = P256.Signing.PrivateKey()
        let raw = Array(key.publicKey.rawRepresentation)
        let parsed = try JWKSParser.parse(Self.jwk(x: [1] + Array(raw[0..<32]), y: Array(raw[32...]), crv: "P-256", alg: "ES256"),
                                          allowed: SigningAlgorithm.defaultAllowed)
        #expect(parsed.keys.isEmpty)
        #expect(parsed.skipped.count == 1)
    }
}
