@testable import GatehouseCore
import Testing

/// `Requirements.normalizedOrgKey` gained a byte fast path ("starts with `org:` once: as it is"). The code it
/// replaced stripped `org:` by characters, where a grapheme-extending scalar right after the colon makes the
/// fourth character `:` + mark, not `:`. These hold the new function to the former one and show the decision
/// that differed.
@Suite struct Review2OrgKeyTests {
    /// The former function, as it was before 5fbf6fd (the oracle; it strips by characters).
    static func formerNormalizedOrgKey(_ key: String) -> String {
        var rest = Substring(key)
        while rest.hasPrefix("org:") { rest = rest.dropFirst(4) }
        return "org:" + rest
    }

    static let keys = [
        "admin", "org:admin", "org:org:admin", "org:", "", "org", "org:\u{301}admin", "org:\u{200D}admin", "org:\u{0308}",
        "org:org:\u{301}admin", "\u{301}admin", "org:é", "org:e\u{301}", "org:\u{1F1FA}\u{1F1F8}", "org:\r\nx", "org:\u{FE0F}x",
    ]

    @Test(arguments: keys) func normalisesAsTheFormerFunctionDid(_ key: String) {
        let new = Requirements.normalizedOrgKey(key)
        let old = Self.formerNormalizedOrgKey(key)
        // Compared by bytes: String's == is canonical equivalence and could hide a difference.
        #expect(Array(new.utf8) == Array(old.utf8), "normalizedOrgKey(\(key.unicodeScalars.map { String($0.value, radix: 16) }))")
    }

    /// The decision that changed: a route requiring role `\u{301}admin` (normalised `org:\u{301}admin` by both)
    /// and a session whose role is `org:\u{301}admin` (formerly normalised to `org:org:\u{301}admin`, refused).
    @Test func aRoleWithAMarkAfterTheColonIsDecidedAsBefore() {
        var requirements = Requirements()
        requirements.orgRoles = ["\u{301}admin"]
        let session = SessionAuth(claims: ["sub": "user_1", "org_id": "org_1", "org_role": "org:\u{301}admin"])
        let formerlyAllowed = Self.formerNormalizedOrgKey("org:\u{301}admin") == Self.formerNormalizedOrgKey("\u{301}admin")
        #expect(!formerlyAllowed)
        #expect((requirements.firstFailure(for: session) == nil) == formerlyAllowed)
    }
}
