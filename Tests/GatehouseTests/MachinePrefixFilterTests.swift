import GatehouseAuth
@testable import GatehouseCore
@testable import GatehouseEngine
import Testing

/// The session-only machine path skips the opaque-prefix comparisons unless the token's first byte is one a
/// prefix starts with (`m`, `o`, `a`): every prefix must start with one of them, or a machine token could be
/// taken for a session token.
@Suite struct MachinePrefixFilterTests {
    @Test func everyOpaquePrefixStartsWithAFilteredByte() {
        #expect(!Gatekeeper.opaquePrefixes.isEmpty)
        for (prefix, _) in Gatekeeper.opaquePrefixes {
            #expect(["m", "o", "a"].contains(prefix.first.map(String.init) ?? ""), "\(prefix)")
        }
    }

    @Test func aSessionOnlyRouteStillCallsMachineTokensMismatched() throws {
        let gatekeeper = try Fixtures.gatekeeper()
        let request = try Fixtures.request("/dashboard")
        for (prefix, type) in Gatekeeper.opaquePrefixes {
            guard case .decided(let auth) = gatekeeper.machinePath(request, accepts: .sessionOnly, token: prefix + "abc123") else {
                Issue.record("\(prefix) not decided")
                continue
            }
            #expect(auth.tokenType == type)
            #expect(auth.reason == "token-type-mismatch")
        }
        for token in ["eyJhbGciOi.x.y", "m", "oa", "a_", "xk_123", "Ak_123"] {
            guard case .session = gatekeeper.machinePath(request, accepts: .sessionOnly, token: token) else {
                Issue.record("\(token) not left to the session path")
                continue
            }
        }
    }
}
