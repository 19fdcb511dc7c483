// Fuzz target: DecodedToken and TokenVerifier. Three valid tokens (RS256, ES256, EdDSA) are signed at
// start-up with fresh keys; the input either mutates one of them (byte edits, part swaps) or is taken as a
// token as is. Only the untouched original may verify: any change to a signed token must be refused, and
// nothing may crash. A third mode feeds the bytes to the JWKS parser.
import Crypto
import CryptoExtras
import Foundation
@testable import GatehouseAuth
import GatehouseCore

private let now = 1_750_000_000.0

private struct Fixture {
    let tokens: [[UInt8]]
    let keys: KeySet
    /// Kept so that LeakSanitizer sees the start-up key material as reachable, not leaked.
    let privateKeys: (_RSA.Signing.PrivateKey, P256.Signing.PrivateKey, Curve25519.Signing.PrivateKey)
}

private func signingInput(alg: String, kid: String) -> String {
    let header = "{\"alg\":\"\(alg)\",\"kid\":\"\(kid)\",\"typ\":\"JWT\"}"
    let payload = "{\"sub\":\"user_2fuzz\",\"iat\":\(Int(now) - 10),\"nbf\":\(Int(now) - 10),\"exp\":\(Int(now) + 60),\"sid\":\"sess_1\",\"azp\":\"https://app.example.com\"}"
    return Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(payload.utf8))
}

private let fixture: Fixture = {
    do {
        let rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let p256 = P256.Signing.PrivateKey()
        let ed = Curve25519.Signing.PrivateKey()

        let rsaInput = signingInput(alg: "RS256", kid: "rsa")
        let rsaSig = try rsa.signature(for: SHA256.hash(data: Data(rsaInput.utf8)), padding: .insecurePKCS1v1_5)
        let ecInput = signingInput(alg: "ES256", kid: "ec")
        let ecSig = try p256.signature(for: Data(ecInput.utf8))
        let edInput = signingInput(alg: "EdDSA", kid: "ed")
        let edSig = try ed.signature(for: Data(edInput.utf8))

        let tokens = [
            rsaInput + "." + Base64URL.encode(Array(rsaSig.rawRepresentation)),
            ecInput + "." + Base64URL.encode(Array(ecSig.rawRepresentation)),
            edInput + "." + Base64URL.encode(Array(edSig)),
        ].map { Array($0.utf8) }
        let keys = KeySet(keys: [
            try VerificationKey.rsaPEM(rsa.publicKey.pemRepresentation, kid: "rsa", algorithm: .rs256),
            VerificationKey(kid: "ec", algorithm: .es256, material: .p256(p256.publicKey)),
            VerificationKey(kid: "ed", algorithm: .edDSA, material: .ed25519(ed.publicKey)),
        ])
        return Fixture(tokens: tokens, keys: keys, privateKeys: (rsa, p256, ed))
    } catch {
        fatalError("fuzz fixture: \(error)")
    }
}()

private let policy = VerificationPolicy(allowedAlgorithms: SigningAlgorithm.allCases, clockSkew: 5)

private func verifies(_ token: [UInt8]) -> Bool {
    guard let decoded = try? DecodedToken(String(fuzzBytes: token)) else { return false }
    return (try? TokenVerifier.verify(decoded, keys: fixture.keys, policy: policy, now: now)) != nil
}

/// Applies edits read from the input: (op, position, byte) triples.
private func mutate(_ original: [UInt8], with input: inout FuzzInput) -> [UInt8] {
    var token = original
    var edits = 0
    while !input.isAtEnd, edits < 8 {
        edits += 1
        let op = input.byte()
        let position = token.isEmpty ? 0 : Int(input.byte()) << 8 | Int(input.byte())
        let value = input.byte()
        let at = token.isEmpty ? 0 : position % token.count
        switch op % 6 {
        case 0: if !token.isEmpty { token[at] = value }
        case 1: if !token.isEmpty { token[at] ^= 1 << (value % 8) }
        case 2: token.insert(value, at: at)
        case 3: if !token.isEmpty { token.remove(at: at) }
        case 4:
            // Swap one part for the same part of another valid token (alg/key confusion, payload splicing).
            let other = fixture.tokens[Int(value) % fixture.tokens.count]
            var parts = token.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false).map(Array.init)
            let donor = other.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false).map(Array.init)
            let part = at % 3
            if parts.count == 3 { parts[part] = donor[part] }
            token = Array(parts.joined(separator: [UInt8(ascii: ".")]))
        default:
            token = Array(token.prefix(at))
        }
    }
    return token
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJWT(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let mode = input.byte()
    switch mode % 4 {
    case 0, 1, 2:
        let original = fixture.tokens[Int(mode % 4)]
        let token = mutate(original, with: &input)
        if token == original {
            require(verifies(token), "the untouched fixture token no longer verifies")
        } else if !fixture.tokens.contains(token) {  // part swaps can rebuild another fixture token whole
            require(!verifies(token), "a modified token verified: \(String(fuzzBytes: token).debugDescription)")
        }
    default:
        let bytes = input.rest
        if mode & 4 != 0 {
            // Arbitrary bytes as a token: never crashes, and never verifies (it was not signed with these keys).
            require(!verifies(bytes) || fixture.tokens.contains(bytes), "unsigned bytes verified as a token")
        } else if let result = try? JWKSParser.parse(bytes, allowed: SigningAlgorithm.allCases) {
            let kids = result.keys.compactMap(\.kid)
            require(kids.count == result.keys.count && Set(kids).count == kids.count, "JWKS keys without kid or with a repeated kid")
        }
    }
    return 0
}
