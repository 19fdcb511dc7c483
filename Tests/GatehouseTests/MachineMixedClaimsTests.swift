import Foundation
@testable import GatehouseAuth
import GatehouseConfig
import GatehouseDevIssuer
@testable import GatehouseCore
@testable import GatehouseEngine
import Testing

/// Claim rules on routes that take session and machine tokens (review finding 2): `claims:` is refused
/// there, `session_claims:` and `machine_claims:` say which caller each applies to.
@Suite struct MachineMixedClaimsTests {
    func yaml(_ require: String, accepts: String = "[session_token, m2m_token]") -> String {
        """
        clerk:
          publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k
          secret_key: sk_live_machinetests
          jwks_file: jwks.json
        sign_in_url: /sign-in
        routes:
          - name: admin-api
            match: ["/api/admin(.*)"]
            accepts: \(accepts)
            require: \(require)
        default: protected
        """
    }

    @Test func claimsOnAMixedRouteIsRefusedWithAPreciseError() {
        for accepts in ["[session_token, m2m_token]", "[session_token, api_key]", "any"] {
            let issues = Fixtures.configIssues(yaml(#"{claims: {"metadata.role": admin}}"#, accepts: accepts))
            #expect(issues.contains { $0.keyPath == "routes[0] (admin-api).require.claims" && $0.message.contains("session_claims:") && $0.message.contains("machine_claims:") },
                    "\(accepts): \(issues)")
        }
        // Where only one kind of caller comes, claims: stays, and the split keys are refused.
        #expect(Fixtures.configIssues(yaml(#"{claims: {team: ops}}"#, accepts: "m2m_token")).isEmpty)
        #expect(Fixtures.configIssues(yaml(#"{machine_claims: {team: ops}}"#, accepts: "m2m_token")).contains { $0.keyPath.hasSuffix("require.machine_claims") })
        #expect(Fixtures.configIssues(yaml(#"{session_claims: {team: ops}}"#, accepts: "m2m_token")).contains { $0.keyPath.hasSuffix("require.session_claims") })
        let noAccepts = yaml(#"{machine_claims: {team: ops}}"#).replacingOccurrences(of: "    accepts: [session_token, m2m_token]\n", with: "")
        #expect(Fixtures.configIssues(noAccepts).contains { $0.keyPath.hasSuffix("require.machine_claims") })
        // A broken machine_claims: is reported, not dropped.
        #expect(Fixtures.configIssues(yaml(#"{session_claims: {a: b}, machine_claims: [x]}"#)).contains { $0.keyPath.hasSuffix("require.machine_claims") })
    }

    @Test func splitClaimsApplyEachToItsOwnCaller() async throws {
        let g = try MachineFixtures.gatekeeper(yaml(#"{session_claims: {"metadata.role": admin}, machine_claims: {team: ops}}"#))
        func m2m(_ claims: [(String, JSONValue)]) -> String {
            var payload = MachineFixtures.m2mPayload()
            for (k, v) in claims { payload.set(k, v) }
            return Fixtures.issuer.sign(payload, header: JSONObject([("cat", "cl_B7d4PD333AAA")]))
        }
        func bearer(_ token: String) -> [(String, String)] { [("Authorization", "Bearer " + token)] }
        // A machine granting itself the session's role does not pass; the machine rule decides.
        let selfGranted = await g.evaluate("/api/admin/users", headers: bearer(m2m([("metadata", .object(JSONObject([("role", "admin")])))])))
        #expect(selfGranted.decision.status == 403, "\(selfGranted.decision.explanation)")
        #expect(await g.evaluate("/api/admin/users", headers: bearer(m2m([("team", "ops")]))).decision.action == .proxy)
        // Sessions: the session rule, not the machine one.
        let admin = Fixtures.token(extra: JSONObject([("metadata", .object(JSONObject([("role", "admin")])))]))
        #expect(await g.evaluate("/api/admin/users", headers: bearer(admin)).decision.action == .proxy)
        let teamOnly = Fixtures.token(extra: JSONObject([("team", "ops")]))
        #expect(await g.evaluate("/api/admin/users", headers: bearer(teamOnly)).decision.status == 403)
    }
}
