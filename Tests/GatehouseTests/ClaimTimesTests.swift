@testable import GatehouseAuth
import GatehouseCore
import Testing

/// A cached token's claims are checked with its exp/nbf/iat read once (`ClaimTimes`): the outcome (success, or
/// the same error) must be the payload check's, for every mix of present, absent, malformed and out-of-window
/// times, with and without clock skew and issuer rules.
@Suite struct ClaimTimesTests {
    static let now = 1_800_000_000.0
    static let stamps: [JSONValue?] = [nil, .number(JSONNumber(Int(now) + 600)), .number(JSONNumber(Int(now) - 600)), .number(JSONNumber(Int(now) + 3)),
                                       .string("soon"), .number(JSONNumber(-1)), .number(JSONNumber(Int64(1e15)))]

    static func outcome(_ check: () throws(TokenVerificationError) -> Void) -> TokenVerificationError? {
        do throws(TokenVerificationError) { try check(); return nil } catch { return error }
    }

    @Test(arguments: [VerificationPolicy(), VerificationPolicy(clockSkew: 0), VerificationPolicy(clockSkew: 5, issuer: "https://clerk.example.com")])
    func cachedTimesCheckAsThePayloadDoes(policy: VerificationPolicy) {
        var compared = 0
        var refusals = Set<String>()
        for exp in Self.stamps {
            for nbf in Self.stamps {
                for iat in Self.stamps {
                    for sub: JSONValue? in ["user_1", nil] {
                        var members: [(key: String, value: JSONValue)] = [("iss", "https://clerk.example.com")]
                        if let sub { members.append(("sub", sub)) }
                        if let exp { members.append(("exp", exp)) }
                        if let nbf { members.append(("nbf", nbf)) }
                        if let iat { members.append(("iat", iat)) }
                        let claims = JSONObject(members)
                        let times = ClaimTimes(claims)
                        let payload = Self.outcome { () throws(TokenVerificationError) in try TokenVerifier.checkClaims(claims, policy: policy, now: Self.now) }
                        let cached = Self.outcome { () throws(TokenVerificationError) in
                            try TokenVerifier.checkClaims(claims, times: times, policy: policy, now: Self.now)
                        }
                        #expect(payload == cached, "\(members)")
                        if let payload { refusals.insert(payload.message) }
                        compared += 1
                    }
                }
            }
        }
        #expect(compared == 7 * 7 * 7 * 2)
        // The mixes reach every rule: missing sub, missing or malformed exp, expired, nbf, iat, malformed nbf/iat.
        #expect(refusals.count >= 7, "\(refusals)")
    }
}
