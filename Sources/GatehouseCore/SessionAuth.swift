/// Clerk's auth object, built from the claims of a verified session token
/// (`jwtPayloadParser.ts` in Clerk's shared package): v1 `org_*` claims or v2 `o`/`fea`/`pla` claims.
/// A class, not a struct: immutable, and copied several times per request (a dozen retains per copy of the struct).
public final class SessionAuth: Sendable, Equatable {
    public static func == (lhs: SessionAuth, rhs: SessionAuth) -> Bool { lhs === rhs || lhs.claims == rhs.claims }

    public let userId: String
    public let sessionId: String?
    public let orgId: String?
    public let orgRole: String?
    public let orgSlug: String?
    /// `orgRole` as `Requirements` compares it (`org:` once), worked out once per verified token.
    public let normalizedOrgRole: String?
    /// The identity header values from this session, checked for header safety once per verified token instead
    /// of on every request (IdentityHeaderPolicy.forEachIdentityValue).
    let identityValues: IdentityValues

    struct IdentityValues: Sendable {
        let userId, sessionId, orgId, orgRole, orgSlug, orgPermissions, actor: String?
    }
    /// The identity header blocks built from this session (IdentityHeaderPolicy.upstreamFields), reused by
    /// every request it makes on the same route.
    let identityBlocks = IdentityBlockCache()
    public let orgPermissions: [String]
    public let actor: JSONValue?
    public let factorVerificationAge: [Double]?
    public let sessionStatus: String?
    /// Raw `fea` / `pla` claims (`scope:key,…`), used by `feature` / `plan` requirements.
    public let features: String
    public let plans: String
    public let claims: JSONObject

    /// Pending sessions (`sts: pending`) count as signed out for every authorization purpose.
    public var isPending: Bool { sessionStatus == "pending" }

    public init(claims: JSONObject) {
        self.claims = claims
        self.userId = claims["sub"]?.stringValue ?? ""
        self.sessionId = claims["sid"]?.stringValue
        self.actor = claims["act"].flatMap { $0 == .null ? nil : $0 }
        self.factorVerificationAge = claims["fva"]?.arrayValue?.compactMap(\.doubleValue)
        self.sessionStatus = claims["sts"]?.stringValue
        self.features = claims["fea"]?.stringValue ?? ""
        self.plans = claims["pla"]?.stringValue ?? ""

        if claims["v"] == .number(JSONNumber(2)) {
            if let org = claims["o"]?.objectValue {
                self.orgId = org["id"]?.stringValue
                self.orgSlug = org["slg"]?.stringValue
                self.orgRole = org["rol"]?.stringValue.flatMap { $0.isEmpty ? nil : "org:" + $0 }
                let orgFeatures = SessionAuth.orgScopedFeatures(self.features)
                self.orgPermissions = SessionAuth.decodePermissions(
                    per: org["per"]?.stringValue, fpm: org["fpm"]?.stringValue, orgFeatures: orgFeatures)
            } else {
                self.orgId = nil
                self.orgSlug = nil
                self.orgRole = nil
                self.orgPermissions = []
            }
        } else {
            self.orgId = claims["org_id"]?.stringValue
            self.orgRole = claims["org_role"]?.stringValue
            self.orgSlug = claims["org_slug"]?.stringValue
            self.orgPermissions = claims["org_permissions"]?.arrayValue?.compactMap(\.stringValue) ?? []
        }
        self.normalizedOrgRole = orgRole.map(Requirements.normalizedOrgKey)
        let safe = HeaderValue.safe
        let actorSubject: String?
        if case .object(let actor)? = self.actor { actorSubject = safe(actor["sub"]?.stringValue) } else { actorSubject = nil }
        self.identityValues = IdentityValues(
            userId: safe(userId), sessionId: safe(sessionId), orgId: safe(orgId), orgRole: safe(orgRole), orgSlug: safe(orgSlug),
            orgPermissions: orgId != nil && !orgPermissions.isEmpty ? safe(orgPermissions.joined(separator: ",")) : nil, actor: actorSubject)
    }

    /// Features whose scope includes the organization (`o`, `ou`, `uo`), in claim order. Nil when the claim is
    /// malformed (an element without `:`), which Clerk treats as an error: no permissions are granted then.
    static func orgScopedFeatures(_ fea: String) -> [String]? {
        guard !fea.isEmpty else { return [] }
        var result: [String] = []
        for element in fea.split(separator: ",", omittingEmptySubsequences: false) {
            let trimmed = element.trimmingASCIIWhitespace()
            guard let colon = trimmed.firstIndex(of: ":") else { return nil }
            let scope = trimmed[..<colon]
            let key = String(trimmed[trimmed.index(after: colon)...])
            if scope == "o" || scope == "ou" || scope == "uo" { result.append(key) }
        }
        return result
    }

    /// v2 permissions: mask `i` (a decimal of any size) pairs with the `i`-th org feature, bit `j` (LSB first)
    /// with `per[j]`. Malformed masks grant nothing for their feature.
    static func decodePermissions(per: String?, fpm: String?, orgFeatures: [String]?) -> [String] {
        guard let per, !per.isEmpty, let fpm, !fpm.isEmpty, let orgFeatures else { return [] }
        let permissions = per.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingASCIIWhitespace() }
        let masks = fpm.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingASCIIWhitespace() }
        var result: [String] = []
        for (i, feature) in orgFeatures.enumerated() where i < masks.count {
            guard let bits = DecimalBits.bits(of: masks[i]) else { continue }
            for j in 0..<min(bits.count, permissions.count) where bits[j] {
                result.append("org:" + feature + ":" + permissions[j])
            }
        }
        return result
    }
}

/// Binary digits of an arbitrarily large non-negative decimal string, least-significant first.
public enum DecimalBits {
    /// Masks longer than this many digits (~1000 bits) grant nothing: they cannot come from a real instance
    /// and quadratic long division on them would be a denial-of-service lever.
    public static let maxDigits = 310

    public static func bits(of decimal: String) -> [Bool]? {
        var digits = [UInt8]()
        for b in decimal.utf8 {
            guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") else { return nil }
            digits.append(b - UInt8(ascii: "0"))
        }
        guard !digits.isEmpty, digits.count <= maxDigits else { return nil }
        var bits: [Bool] = []
        // Repeated halving of the decimal digit array.
        var start = 0
        while start < digits.count {
            var remainder: UInt8 = 0
            for k in start..<digits.count {
                let current = remainder * 10 + digits[k]
                digits[k] = current / 2
                remainder = current % 2
            }
            bits.append(remainder == 1)
            while start < digits.count, digits[start] == 0 { start += 1 }
        }
        return bits
    }
}
