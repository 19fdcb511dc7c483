@testable import GatehouseCore
import Testing

/// The identity header values of a session are worked out once, when the session is built
/// (`SessionAuth.identityValues`). `forEachIdentityValue` must give what it gave when it worked them out per
/// request — the former code is the oracle here — for v1 and v2 claims, empty and unsafe values, actors with and
/// without a subject, permissions without an organization, alone and beside a machine identity.
@Suite struct SessionIdentityValuesTests {
    /// The per-request version (before identityValues), fixed fields only.
    static func oracle(session: SessionAuth?, machine: MachineIdentity?) -> [String?] {
        func safe(_ value: String?) -> String? {
            guard let value, !value.isEmpty, value.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x7F }) else { return nil }
            return value
        }
        var values: [String?] = [
            safe(session?.userId ?? machine?.userId), safe(session?.sessionId), safe(session?.orgId ?? machine?.orgId),
            safe(session?.orgRole), safe(session?.orgSlug),
        ]
        if let session, session.orgId != nil, !session.orgPermissions.isEmpty {
            values.append(safe(session.orgPermissions.joined(separator: ",")))
        } else {
            values.append(nil)
        }
        if case .object(let actor)? = session?.actor { values.append(safe(actor["sub"]?.stringValue)) } else { values.append(nil) }
        return values
    }

    static let fixedNames = [IdentityHeaderPolicy.userId, IdentityHeaderPolicy.sessionId, IdentityHeaderPolicy.orgId, IdentityHeaderPolicy.orgRole,
                             IdentityHeaderPolicy.orgSlug, IdentityHeaderPolicy.orgPermissions, IdentityHeaderPolicy.actor]

    static let claimSets: [[(key: String, value: JSONValue)]] = [
        [("sub", "user_1"), ("sid", "sess_1")],
        [("sub", ""), ("sid", "")],
        [("sub", "user\r\nX-Evil: 1"), ("sid", "sess\u{7F}")],
        [("sub", "user_1"), ("org_id", "org_1"), ("org_role", "org:admin"), ("org_slug", "acme"), ("org_permissions", .array(["org:a:b", "org:c:d"]))],
        [("sub", "user_1"), ("org_permissions", .array(["org:a:b"]))],
        [("sub", "user_1"), ("org_id", ""), ("org_role", "admin"), ("org_slug", "a\u{1}b"), ("org_permissions", .array(["x\ny"]))],
        [("sub", "user_1"), ("act", .object(JSONObject([("sub", "user_admin")])))],
        [("sub", "user_1"), ("act", .object(JSONObject([("iss", "x")])))],
        [("sub", "user_1"), ("act", .string("user_admin"))],
        [("sub", "user_1"), ("act", .null)],
        [("sub", "user_1"), ("act", .object(JSONObject([("sub", "é\tok")])))],
        [("sub", "user_1"), ("v", .number(JSONNumber(2))), ("fea", "o:f"), ("o", .object(JSONObject([("id", "org_2"), ("rol", "member"), ("slg", "s"), ("per", "p0,p1"), ("fpm", "3")])))],
        [("sub", "user_1"), ("v", .number(JSONNumber(2))), ("o", .object(JSONObject([("id", "org_2"), ("rol", "")])))],
    ]

    static let machines: [MachineIdentity?] = [
        nil,
        MachineIdentity(tokenType: .apiKey, form: .opaque, id: "ak_1", subject: "org_9", scopes: [], claims: nil),
        MachineIdentity(tokenType: .oauthToken, form: .jwt, id: "oat_1", subject: "user_9", scopes: ["a"], claims: nil),
        MachineIdentity(tokenType: .apiKey, form: .opaque, id: "ak_2", subject: "user\r\n", scopes: [], claims: nil),
    ]

    @Test(arguments: 0..<SessionIdentityValuesTests.claimSets.count)
    func onceEqualsPerRequest(_ index: Int) {
        let policy = IdentityHeaderPolicy()
        for withSession in [true, false] {
            let session = withSession ? SessionAuth(claims: JSONObject(Self.claimSets[index])) : nil
            for machine in Self.machines {
                var got: [String: String?] = [:]
                policy.forEachIdentityValue(session: session, token: nil, routeName: "r", machine: machine) { name, value in got[name] = value }
                let expected = Self.oracle(session: session, machine: machine)
                for (name, value) in zip(Self.fixedNames, expected) {
                    #expect(got[name] == .some(value), "\(name) for claims \(index), machine \(machine?.id ?? "none")")
                }
            }
        }
    }
}
