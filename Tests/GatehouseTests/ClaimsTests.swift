import Foundation
@testable import GatehouseAuth
import GatehouseConfig
@testable import GatehouseCore
import GatehouseDevIssuer
import GatehouseEngine
import Testing

@Suite struct ClaimsTests {
    @Test func v1OrgClaimsMapToTheAuthObject() {
        let auth = SessionAuth(claims: [
            "sub": "user_1", "sid": "sess_1", "org_id": "org_1", "org_role": "org:admin", "org_slug": "acme",
            "org_permissions": ["org:billing:manage"], "sts": "active", "fva": [3, -1], "act": ["sub": "user_support"],
        ])
        #expect(auth.userId == "user_1")
        #expect(auth.orgId == "org_1")
        #expect(auth.orgRole == "org:admin")
        #expect(auth.orgSlug == "acme")
        #expect(auth.orgPermissions == ["org:billing:manage"])
        #expect(auth.factorVerificationAge == [3, -1])
        #expect(!auth.isPending)
    }

    @Test func v2PermissionsDecodeFromFeatureMasks() {
        let auth = SessionAuth(claims: [
            "sub": "user_1", "v": 2, "fea": "o:impersonation,u:profile,o:memberships",
            "o": ["id": "org_1", "slg": "acme", "rol": "admin", "per": "read,manage", "fpm": "1,3"],
        ])
        #expect(auth.orgRole == "org:admin")
        #expect(auth.orgSlug == "acme")
        #expect(auth.orgPermissions == ["org:impersonation:read", "org:memberships:read", "org:memberships:manage"])
    }

    @Test func masksWiderThan64BitsDecodeExactly() {
        // 2^53 + 1 (beyond Double precision) and 2^70 + 2^0 (beyond UInt64).
        #expect(DecimalBits.bits(of: "9007199254740993")!.enumerated().filter(\.element).map(\.offset) == [0, 53])
        #expect(DecimalBits.bits(of: "1180591620717411303425")!.enumerated().filter(\.element).map(\.offset) == [0, 70])
        let permissions = (0...70).map { "p\($0)" }.joined(separator: ",")
        let auth = SessionAuth(claims: [
            "sub": "u", "v": 2, "fea": "o:f", "o": ["id": "org_1", "per": .string(permissions), "fpm": "1180591620717411303425"],
        ])
        #expect(auth.orgPermissions == ["org:f:p0", "org:f:p70"])
    }

    @Test(arguments: ["-1", "1.5", "1invalid", "", String(repeating: "9", count: 400)])
    func malformedMasksGrantNothing(mask: String) {
        let auth = SessionAuth(claims: ["sub": "u", "v": 2, "fea": "o:f", "o": ["id": "org_1", "per": "read", "fpm": .string(mask)]])
        #expect(auth.orgPermissions.isEmpty)
    }

    @Test func malformedFeatureClaimGrantsNoPermissions() {
        let auth = SessionAuth(claims: ["sub": "u", "v": 2, "fea": "nocolon", "o": ["id": "org_1", "per": "read", "fpm": "1"]])
        #expect(auth.orgPermissions.isEmpty)
    }

    @Test func v2WithoutOrgHasNoOrgFields() {
        let auth = SessionAuth(claims: ["sub": "u", "v": 2, "org_id": "org_spoofed"])
        #expect(auth.orgId == nil)
    }

    @Test func pendingSessionsAreMarked() {
        #expect(SessionAuth(claims: ["sub": "u", "sts": "pending"]).isPending)
    }
}

@Suite struct RequirementTests {
    let admin = SessionAuth(claims: [
        "sub": "user_1", "org_id": "org_1", "org_role": "org:admin", "org_permissions": ["org:billing:manage"],
        "fea": "o:analytics,u:beta,ou:export", "pla": "u:pro", "metadata": ["role": "admin", "tags": ["a", "b"]],
    ])
    let member = SessionAuth(claims: ["sub": "user_2", "org_id": "org_1", "org_role": "org:member", "org_permissions": []])
    let noOrg = SessionAuth(claims: ["sub": "user_3", "org_role": "org:admin", "org_permissions": ["org:billing:manage"]])

    func passes(_ r: Requirements, _ auth: SessionAuth) -> Bool { r.firstFailure(for: auth) == nil }

    @Test func orgRoleIsNormalisedLikeHas() {
        var r = Requirements()
        for spelling in ["admin", "org:admin", "org:org:admin"] {
            r.orgRoles = [spelling]
            #expect(passes(r, admin))
            #expect(!passes(r, member))
            #expect(!passes(r, noOrg))  // a role without an active organization never counts
        }
        r.orgRoles = ["admin", "member"]
        #expect(passes(r, member))
    }

    @Test func permissionsNeedTheFullNameAndAnOrg() {
        var r = Requirements()
        r.permissions = ["billing:manage"]
        #expect(passes(r, admin))
        r.permissions = ["org:billing"]
        #expect(!passes(r, admin))
        r.permissions = ["org:billing:manage"]
        #expect(!passes(r, member))
        #expect(!passes(r, noOrg))
    }

    @Test func featuresAndPlansFollowScopes() {
        var r = Requirements()
        r.features = ["analytics"]; #expect(passes(r, admin))
        r.features = ["o:analytics"]; #expect(passes(r, admin))
        r.features = ["u:analytics"]; #expect(!passes(r, admin))
        r.features = ["user:beta"]; #expect(passes(r, admin))
        r.features = ["org:export"]; #expect(passes(r, admin))
        r.features = ["x:beta"]; #expect(!passes(r, admin))
        r.features = ["beta"]; #expect(!passes(r, member))
        r = Requirements(); r.plans = ["pro"]; #expect(passes(r, admin))
        r.plans = ["o:pro"]; #expect(!passes(r, admin))
    }

    @Test func claimMatchers() {
        func check(_ path: String, _ m: ClaimMatcher) -> Bool {
            var r = Requirements()
            r.claims = [ClaimRequirement(path: path, matcher: m)]
            return passes(r, admin)
        }
        #expect(check("metadata.role", .equals("admin")))
        #expect(!check("metadata.role", .equals("Admin")))
        #expect(check("metadata.role", .oneOf(["owner", "admin"])))
        #expect(check("metadata.tags", .contains("b")))
        #expect(!check("metadata.tags", .contains("c")))
        #expect(check("metadata.role", .exists(true)))
        #expect(check("metadata.missing", .exists(false)))
        #expect(!check("metadata.role.deeper", .equals("admin")))
        #expect(!check("metadata", .equals("admin")))
    }

    @Test func allRequirementsMustHold() {
        var r = Requirements()
        r.orgRoles = ["admin"]
        r.permissions = ["org:billing:manage"]
        r.requireOrganization = true
        #expect(passes(r, admin))
        r.plans = ["enterprise"]
        #expect(r.firstFailure(for: admin) == "plan enterprise is required")
    }
}
