@testable import GatehouseAuth
@testable import GatehouseCore
import Testing

/// Clerk's own signed OAuth access-token fixtures (`packages/backend/src/fixtures/machine.ts`), verified with the
/// public half of Clerk's `signingJwks` (`fixtures/index.ts`; PyJWT verifies them with it too) at the time Clerk's
/// tests freeze (iat 1666648250).
@Suite struct MachineClerkFixtureTests {
    static let jwks = """
        {"keys":[{"use":"sig","kty":"RSA","kid":"ins_2GIoQhbUpy0hX7B2cVkuTMinXoD","alg":"RS256","n":"qYy3MY8fOneEyzNDu9lp6iGXKkNUF-u_dUnrlkadZYyB35efzKFJEr9fftmWv5PUj1uRHTQ3bh6X1cceOYsIjy008dHWZJsKhGOxgdTjeK91rjaklxt7tyFXEiKHIOr1LSgKzopClOfCIjxK_oPUOf38pVh7WnekcSBQmU5fqA-EzKMi6k9VwvbzqKlZM4XQsiFyn28d9VubJWjTU8nNot0n1NE-9k6TxM8nglM4RwkBH4Ni4B0LhKKOOV-AG8tBNiZVil415dpBldmJ_j0wk7Ad4VFi9en3Z17oCKr-K-zuT7vKMKSb1548dk0vnmi0vj2QGXSo-61wM5yQWpk6sQ","e":"AQAB"}]}
        """
    static let atJWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6Imluc18yR0lvUWhiVXB5MGhYN0IyY1ZrdVRNaW5Yb0QiLCJ0eXAiOiJhdCtqd3QifQ.eyJhenAiOiJodHRwczovL2FjY291bnRzLmluc3BpcmVkLnB1bWEtNzQubGNsLmRldiIsImV4cCI6MTY2NjY0ODU1MCwiaWF0IjoxNjY2NjQ4MjUwLCJpc3MiOiJodHRwczovL2NsZXJrLm9hdXRoLmV4YW1wbGUudGVzdCIsIm5iZiI6MTY2NjY0ODI0MCwic2lkIjoic2Vzc18yR2JEQjRlbk5kQ2E1dlMxenBDM1h6Zzl0SzkiLCJzdWIiOiJ1c2VyXzJ2WVZ0ZXN0VEVTVHRlc3RURVNUdGVzdFRFU1R0ZXN0IiwiY2xpZW50X2lkIjoiY2xpZW50XzJWVFdVenZHQzVVaGRKQ054NnhHMUQ5OGVkYyIsInNjb3BlIjoicmVhZDpmb28gd3JpdGU6YmFyIiwianRpIjoib2F0XzJ4S2E5Qmd2N054TVJERnlRdzhMcFozY1RtVTF2SGpFIn0.Wgw5L2u0nGkxF9Y-5Dje414UEkxq2Fu3_VePeh1-GehCugi0eIXV-QyiXp1ba4pxWWbCfIC_hihzKjwnVb5wrhzqyw8FJpvnvtrHEjt-zSijpS7WlO7ScJDY-PE8zgH-CICnS2CKYSkP3Rbzka9XY_Z6ieUzmBSFdA_0K8pQOdDHv70y04dnL1CjL6XToncnvezioL388Y1UTqlhll8b2Pm4EI7rGdHVKzLcKnKoYpgsBPZLmO7qGPJ5BkHvmg3gOSkmIiziFaEZkoXvjbvEUAt5qEqzaADSaFP6QhRYNtr1s4OD9uj0SK6QaoZTj69XYFuNMNnm7zN_WxvPBMTq9g"
    static let applicationTypJWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6Imluc18yR0lvUWhiVXB5MGhYN0IyY1ZrdVRNaW5Yb0QiLCJ0eXAiOiJhcHBsaWNhdGlvbi9hdCtqd3QifQ.eyJhenAiOiJodHRwczovL2FjY291bnRzLmluc3BpcmVkLnB1bWEtNzQubGNsLmRldiIsImV4cCI6MTY2NjY0ODU1MCwiaWF0IjoxNjY2NjQ4MjUwLCJpc3MiOiJodHRwczovL2NsZXJrLm9hdXRoLmV4YW1wbGUudGVzdCIsIm5iZiI6MTY2NjY0ODI0MCwic2lkIjoic2Vzc18yR2JEQjRlbk5kQ2E1dlMxenBDM1h6Zzl0SzkiLCJzdWIiOiJ1c2VyXzJ2WVZ0ZXN0VEVTVHRlc3RURVNUdGVzdFRFU1R0ZXN0IiwiY2xpZW50X2lkIjoiY2xpZW50XzJWVFdVenZHQzVVaGRKQ054NnhHMUQ5OGVkYyIsInNjb3BlIjoicmVhZDpmb28gd3JpdGU6YmFyIiwianRpIjoib2F0XzJ4S2E5Qmd2N054TVJERnlRdzhMcFozY1RtVTF2SGpFIn0.GPTvB4doScjzQD0kRMhMebVDREjwcrMWK73OP_kFc3pl0gST29BlWrKMBi8wRxoSJBc2ukO10BPhGxnh15PxCNLyk6xQFWhFBA7XpVxY4T_VHPDU5FEOocPQuqcqZ4cA1GDJST-BH511fxoJnv4kfha46IvQiUMvWCacIj_w12qfZigeb208mTDIeoJQtlYb-sD9u__CVvB4uZOqGb0lIL5-cCbhMPFg-6GQ2DhZ-Eq5tw7oyO6lPrsAaFN9u-59SLvips364ieYNpgcr9Dbo5PDvUSltqxoIXTDFo4esWw6XwUjnGfqCh34LYAhv_2QF2U0-GASBEn4GK-Wfv3wXg"
    static let now = 1_666_648_250.0

    static var keys: KeySet {
        KeySet(keys: try! JWKSParser.parse(Array(jwks.utf8), allowed: SigningAlgorithm.defaultAllowed).keys)
    }

    @Test(arguments: [atJWT, applicationTypJWT])
    func clerkOAuthFixturesVerify(_ token: String) throws {
        #expect(TokenClassifier.classify(token) == TokenClassifier.Classification(.oauthToken, .jwt))
        let identity = try MachineJWT.verify(token, type: .oauthToken, keys: Self.keys, policy: VerificationPolicy(), now: Self.now)
        // IdPOAuthAccessToken.fromJwtPayload's expectations.
        #expect(identity.id == "oat_2xKa9Bgv7NxMRDFyQw8LpZ3cTmU1vHjE")
        #expect(identity.subject == "user_2vYVtestTESTtestTESTtestTESTtest")
        #expect(identity.userId == identity.subject)
        #expect(identity.clientId == "client_2VTWUzvGC5UhdJCNx6xG1D98edc")
        #expect(identity.scopes == ["read:foo", "write:bar"])
    }

    @Test func clerkFixtureRules() throws {
        // Expired 300 s after iat (plus the 5 s skew).
        #expect(throws: TokenVerificationError.self) {
            try MachineJWT.verify(Self.atJWT, type: .oauthToken, keys: Self.keys, policy: VerificationPolicy(), now: Self.now + 306)
        }
        // A flipped signature byte.
        var tampered = Array(Self.atJWT)
        tampered[tampered.count - 2] = tampered[tampered.count - 2] == "A" ? "B" : "A"
        #expect(throws: TokenVerificationError.self) {
            try MachineJWT.verify(String(tampered), type: .oauthToken, keys: Self.keys, policy: VerificationPolicy(), now: Self.now)
        }
        // Not an M2M token.
        #expect(throws: TokenVerificationError.self) {
            try MachineJWT.verify(Self.atJWT, type: .m2mToken, keys: Self.keys, policy: VerificationPolicy(), now: Self.now)
        }
    }
}
