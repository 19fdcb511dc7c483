import Foundation
@testable import GatehouseAuth
import GatehouseConfig
@testable import GatehouseCore
import GatehouseDevIssuer
import GatehouseEngine
import Testing

@Suite struct TokenVerificationTests {
    let policy = VerificationPolicy(authorizedParties: ["https://app.example.com"])

    func verify(_ token: String, keys: KeySet = Fixtures.keySet, policy: VerificationPolicy? = nil, now: Double = Fixtures.now) throws -> JSONObject {
        try TokenVerifier.verify(try DecodedToken(token), keys: keys, policy: policy ?? self.policy, now: now)
    }

    func failure(_ token: String, keys: KeySet = Fixtures.keySet, policy: VerificationPolicy? = nil, now: Double = Fixtures.now) -> TokenFailure? {
        do {
            _ = try verify(token, keys: keys, policy: policy, now: now)
            return nil
        } catch let error as TokenVerificationError {
            return error.reason
        } catch {
            return .invalid
        }
    }

    /// A token with an arbitrary header and payload and the given signature bytes.
    func forge(header: JSONValue, payload: JSONValue, signature: [UInt8] = [0, 1, 2, 3]) -> String {
        Base64URL.encode(Array(header.serialized().utf8)) + "." + Base64URL.encode(Array(payload.serialized().utf8)) + "." + Base64URL.encode(signature)
    }

    var validPayload: JSONValue { .object(DevIssuer.sessionClaims(userId: "user_1", issuedAt: Fixtures.now, azp: "https://app.example.com")) }

    @Test func validTokenVerifies() throws {
        let claims = try verify(Fixtures.token())
        #expect(claims["sub"] == "user_1")
    }

    @Test(arguments: ["none", "NONE", "nOnE"])
    func algNoneIsRejected(alg: String) {
        let token = forge(header: ["alg": .string(alg), "typ": "JWT", "kid": "kid-main"], payload: validPayload)
        #expect(failure(token) == .invalidAlgorithm)
    }

    @Test func hs256SignedWithThePublicKeyIsRejected() {
        // The classic RS/HS confusion: HMAC keyed with the public key. HS256 is never an allowed algorithm.
        let token = forge(header: ["alg": "HS256", "typ": "JWT", "kid": "kid-main"], payload: validPayload, signature: Array(repeating: 1, count: 32))
        #expect(failure(token) == .invalidAlgorithm)
        let allowAll = VerificationPolicy(allowedAlgorithms: SigningAlgorithm.allCases)
        #expect(failure(token, policy: allowAll) == .invalidAlgorithm)
    }

    @Test func algorithmIsPinnedPerKeyNotTakenFromTheToken() {
        // RS384 is allowed, but the key is pinned to RS256: a correctly RS384-signed token must still fail.
        let token = Fixtures.issuer.sign(DevIssuer.sessionClaims(userId: "u", issuedAt: Fixtures.now, azp: "https://app.example.com"), algorithm: "RS384")
        #expect(failure(token) == .invalidAlgorithm)
        // And a bad header alg earlier does not poison the key for later valid tokens (jwt-kit pitfall).
        #expect(failure(forge(header: ["alg": "PS256", "kid": "kid-main"], payload: validPayload)) == .invalidAlgorithm)
        #expect(failure(Fixtures.token()) == nil)
    }

    @Test func unknownKidNeverFallsBackToAnotherKey() {
        let token = Fixtures.token(header: ["kid": "not-a-known-kid"])
        #expect(failure(token) == .kidMismatch)
    }

    @Test func missingKidIsOnlyAcceptedWithASingleKey() {
        var noKid = JSONObject([("alg", "RS256"), ("typ", "JWT")])
        noKid.set("kid", .null)
        let token = Fixtures.token(header: noKid)
        #expect(failure(token) == .invalid)  // kid: null is not a string
        let twoKeys = KeySet(keys: Fixtures.keySet.keysByID.values.map { $0 } + (try! JWKSParser.parse(Array(Fixtures.rotatedIssuer.jwks.serialized().utf8), allowed: SigningAlgorithm.defaultAllowed).keys))
        let withoutKid = stripKid(Fixtures.token())
        #expect(failure(withoutKid, keys: Fixtures.keySet) == nil)
        #expect(failure(withoutKid, keys: twoKeys) == .kidMismatch)
    }

    func stripKid(_ token: String) -> String {
        let payload = try! JSONParser.parse(Base64URL.decode(String(token.split(separator: ".")[1]))!).objectValue!
        return Fixtures.issuer.signRaw(header: JSONObject([("alg", "RS256"), ("typ", "JWT")]), payload: payload)
    }

    @Test func tokenFromAnotherKeyWithTheSameKidFailsTheSignature() {
        #expect(failure(Fixtures.token(issuer: Fixtures.otherIssuer)) == .invalidSignature)
    }

    @Test func tamperedPayloadFailsTheSignature() {
        let parts = Fixtures.token().split(separator: ".").map(String.init)
        var claims = try! JSONParser.parse(Base64URL.decode(parts[1])!).objectValue!
        claims.set("sub", "user_admin")
        let tampered = parts[0] + "." + Base64URL.encode(Array(JSONValue.object(claims).serialized().utf8)) + "." + parts[2]
        #expect(failure(tampered) == .invalidSignature)
        #expect(failure(parts[0] + "." + parts[1] + ".") == .invalid)  // signature stripped
    }

    @Test func expiredNotYetValidAndFutureIatAreRejectedWithSkew() {
        let token = Fixtures.token(iat: Fixtures.now, lifetime: 60)
        #expect(failure(token, now: Fixtures.now + 64) == nil)  // within 5 s skew
        #expect(failure(token, now: Fixtures.now + 65) == .expired)
        #expect(failure(token, now: Fixtures.now - 16) == .notActiveYet)  // nbf = iat - 10
        let futureIat = Fixtures.token(extra: ["nbf": .number(JSONNumber(Int(Fixtures.now) - 100)), "iat": .number(JSONNumber(Int(Fixtures.now) + 30))])
        #expect(failure(futureIat) == .issuedInTheFuture)
    }

    @Test(arguments: [JSONValue.string("1900000000"), .null, .bool(true), .number(JSONNumber(Int64(1e15)))])
    func malformedExpIsRejected(exp: JSONValue) {
        #expect(failure(Fixtures.token(extra: ["exp": exp])) == .verificationFailed)
    }

    @Test func missingExpIsRejected() {
        var claims = DevIssuer.sessionClaims(userId: "u", issuedAt: Fixtures.now, azp: "https://app.example.com")
        claims = JSONObject(claims.members.filter { $0.key != "exp" })
        #expect(failure(Fixtures.issuer.sign(claims)) == .verificationFailed)
    }

    @Test func missingSubIsRejected() {
        let claims = JSONObject(DevIssuer.sessionClaims(userId: "u", issuedAt: Fixtures.now, azp: "https://app.example.com").members.filter { $0.key != "sub" })
        #expect(failure(Fixtures.issuer.sign(claims)) == .verificationFailed)
    }

    @Test func azpMustBeAnAuthorizedParty() {
        #expect(failure(Fixtures.token(azp: "https://evil.example")) == .invalidAuthorizedParties)
        #expect(failure(Fixtures.token(azp: nil)) == .invalidAuthorizedParties)
        #expect(failure(Fixtures.token(azp: "https://app.example.com/")) == .invalidAuthorizedParties)
        #expect(failure(Fixtures.token(azp: nil), policy: VerificationPolicy()) == nil)
    }

    @Test func issuerAndAudienceAreCheckedWhenConfigured() {
        let strict = VerificationPolicy(audiences: ["api"], issuer: "https://clerk.example.com")
        #expect(failure(Fixtures.token(), policy: strict) == .verificationFailed)
        let good = Fixtures.token(extra: ["aud": ["x", "api"], "iss": "https://clerk.example.com"])
        #expect(failure(good, policy: strict) == nil)
    }

    @Test func criticalHeaderExtensionsAndWrongTypAreRejected() {
        #expect(failure(Fixtures.token(header: ["crit": ["exp"]])) == .invalid)
        #expect(failure(Fixtures.token(header: ["typ": "at+jwt"])) == .invalid)
    }

    @Test func embeddedKeysInTheHeaderAreIgnored() {
        // jwk / jku / x5u in the header never select a key: a token signed by another key still fails.
        let attacker = Fixtures.otherIssuer
        let token = Fixtures.token(issuer: attacker, header: ["jwk": attacker.jwks.objectValue!["keys"]!.arrayValue![0], "jku": "https://evil/jwks"])
        #expect(failure(token) == .invalidSignature)
    }

    @Test(arguments: [
        "", "a.b", "a.b.c.d", "x.y.z", "eyJhbGciOiJSUzI1NiJ9.e30", "eyJhbGciOiJSUzI1NiJ9.e30.", " eyJ.e30.x",
        "eyJhbGciOiJSUzI1NiJ9=.e30.AA", "eyJhbGciOiJSUzI1NiJ9.e30.a+/b",
        "..", "...", ".e30.AA", "eyJhbGciOiJSUzI1NiJ9..AA", "eyJhbGciOiJSUzI1NiJ9.e30.AA.", "eyJhbGciOiJSUzI1NiJ9.e30.AA.AA",
    ])
    func malformedStructureIsInvalid(token: String) {
        #expect(throws: TokenVerificationError.self) { try DecodedToken(token) }
    }

    @Test func duplicateClaimNamesAreRejected() {
        let header = Base64URL.encode(Array(#"{"alg":"RS256","kid":"kid-main"}"#.utf8))
        let payload = Base64URL.encode(Array(#"{"sub":"user_1","sub":"user_admin","exp":1900000000}"#.utf8))
        #expect(throws: TokenVerificationError.self) { try DecodedToken(header + "." + payload + ".AAAA") }
    }

    @Test func oversizeTokensAreRejectedBeforeParsing() {
        let huge = Fixtures.token(extra: ["pad": .string(String(repeating: "x", count: 20_000))])
        #expect(throws: TokenVerificationError(.invalid, "Token is larger than 16384 bytes.")) { try DecodedToken(huge) }
    }

    @Test func noKeysMeansKeysUnavailable() {
        #expect(failure(Fixtures.token(), keys: .empty) == .keysUnavailable)
    }

    @Test func pemKeyVerifiesAnyKid() throws {
        let key = try VerificationKey.rsaPEM(Fixtures.issuer.publicKeyPEM)
        let keys = KeySet(keys: [], anyKidKey: key)
        #expect(failure(Fixtures.token(header: ["kid": "ins_whatever"]), keys: keys) == nil)
        // Bare base64 body, as Clerk's dashboard shows the key.
        let body = Fixtures.issuer.publicKeyPEM.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        #expect(throws: Never.self) { try VerificationKey.rsaPEM(body) }
        #expect(throws: KeyError.self) { try VerificationKey.rsaPEM("not a key") }
    }

    @Test func weakRSAKeysAreRefused() throws {
        let weak = try DevIssuer(kid: "weak", bits: 1024)
        let parsed = try JWKSParser.parse(Array(weak.jwks.serialized().utf8), allowed: SigningAlgorithm.defaultAllowed)
        #expect(parsed.keys.isEmpty)
        #expect(parsed.skipped.count == 1)
    }
}

@Suite struct JWKSParserTests {
    @Test func unsupportedKeysAreSkippedNotFatal() throws {
        var keys = Fixtures.issuer.jwks.objectValue!["keys"]!.arrayValue!
        keys.append(["kty": "oct", "kid": "hmac", "k": "c2VjcmV0"])
        keys.append(["kty": "OKP", "crv": "X25519", "kid": "x", "x": "AAAA"])
        keys.append(["kty": "RSA", "kid": "enc", "use": "enc", "alg": "RSA-OAEP-256", "n": "AQAB", "e": "AQAB"])
        keys.append(["kty": "RSA", "kid": "ps", "alg": "PS256", "n": "AQAB", "e": "AQAB"])
        keys.append("not an object")
        let document: JSONValue = ["keys": .array(keys)]
        let parsed = try JWKSParser.parse(Array(document.serialized().utf8), allowed: SigningAlgorithm.defaultAllowed)
        #expect(parsed.keys.map(\.kid) == ["kid-main"])
        #expect(parsed.skipped.count == 5)
    }

    @Test func keyWithoutAlgIsPinnedToTheRSADefault() throws {
        var key = Fixtures.issuer.jwks.objectValue!["keys"]!.arrayValue![0].objectValue!
        key = JSONObject(key.members.filter { $0.key != "alg" })
        let parsed = try JWKSParser.parse(Array(JSONValue.object(JSONObject([("keys", .array([.object(key)]))])).serialized().utf8), allowed: SigningAlgorithm.defaultAllowed)
        #expect(parsed.keys.first?.algorithm == .rs256)
    }

    @Test func repeatedKidKeepsTheFirstKey() throws {
        let a = Fixtures.issuer.jwks.objectValue!["keys"]!.arrayValue![0]
        let b = Fixtures.otherIssuer.jwks.objectValue!["keys"]!.arrayValue![0]
        let parsed = try JWKSParser.parse(Array(JSONValue.object(JSONObject([("keys", .array([a, b]))])).serialized().utf8), allowed: SigningAlgorithm.defaultAllowed)
        #expect(parsed.keys.count == 1)
        let keys = KeySet(keys: parsed.keys)
        #expect(throws: Never.self) { try TokenVerifier.verify(try DecodedToken(Fixtures.token()), keys: keys, policy: VerificationPolicy(), now: Fixtures.now) }
    }

    @Test func garbageDocumentsAreErrors() {
        #expect(throws: KeyError.self) { try JWKSParser.parse(Array("nope".utf8), allowed: SigningAlgorithm.defaultAllowed) }
        #expect(throws: KeyError.self) { try JWKSParser.parse(Array("{}".utf8), allowed: SigningAlgorithm.defaultAllowed) }
    }
}
