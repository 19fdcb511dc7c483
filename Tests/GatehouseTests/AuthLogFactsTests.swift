@testable import GatehouseAuth
import GatehouseCore
import Testing

/// The access log reads an authentication result through `logFacts` (in place, without copies); it must say
/// exactly what the computed readings it replaced said, for every kind of result.
@Suite struct AuthLogFactsTests {
    static func results() -> [(String, AuthResult)] {
        var machine = AuthResult.signedOut("machine-verified")
        machine.tokenType = .apiKey
        machine.machine = .verified(MachineIdentity(tokenType: .apiKey, form: .opaque, id: "ak_1", subject: "user_machine", scopes: [], claims: nil))
        var refused = AuthResult.signedOut("token-invalid", carrier: .header, invalidToken: true)
        refused.tokenType = .m2mToken
        refused.machine = .rejected(reason: "token-invalid", message: "no")
        var handshake = AuthResult.signedOut("session-token-outdated", carrier: .cookie)
        handshake.status = .handshake
        var handshakeWithSession = AuthResult.signedIn(SessionAuth(claims: ["sub": "user_h"]), token: "t", carrier: .cookie)
        handshakeWithSession.status = .handshake
        var typed = AuthResult.signedIn(SessionAuth(claims: ["sub": "user_typed", "sts": "active"]), token: "t", carrier: .header)
        typed.tokenType = .sessionToken
        return [
            ("signed in", AuthResult.signedIn(SessionAuth(claims: ["sub": "user_1"]), token: "t", carrier: .header)),
            ("signed in, typed", typed),
            ("pending session", AuthResult.signedIn(SessionAuth(claims: ["sub": "user_p", "sts": "pending"]), token: "t", carrier: .cookie)),
            ("signed out", AuthResult.signedOut("session-token-and-uat-missing")),
            ("machine verified", machine),
            ("machine refused", refused),
            ("handshake", handshake),
            ("handshake beside a session", handshakeWithSession),
        ]
    }

    @Test(arguments: results().map(\.0))
    func logFactsReadWhatTheComputedPropertiesRead(_ name: String) throws {
        let result = try #require(Self.results().first { $0.0 == name }?.1)
        let facts = result.logFacts
        #expect(facts.userID == result.activeSession?.userId)
        #expect(facts.reason == result.reason)
        #expect(facts.tokenType == result.tokenType?.rawValue)
        #expect(facts.machineSubject == result.machineIdentity?.subject)
    }

    @Test func theCasesCoverEveryField() {
        let all = Self.results().map { $0.1.logFacts }
        #expect(all.contains { $0.userID != nil } && all.contains { $0.userID == nil && $0.reason == nil })
        #expect(all.contains { $0.machineSubject == "user_machine" } && all.contains { $0.tokenType == "session_token" })
    }
}
