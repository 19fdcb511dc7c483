import Foundation
@testable import GatehouseAuth
import GatehouseConfig
@testable import GatehouseCore
import GatehouseDevIssuer
import GatehouseEngine
import Testing

@Suite struct HeaderPolicyTests {
    let policy = IdentityHeaderPolicy(forwardToken: true, claimHeaders: [("X-User-Email", ["email"])], strip: ["Remote-User"])
    let session = SessionAuth(claims: [
        "sub": "user_1", "sid": "sess_1", "org_id": "org_1", "org_role": "org:member", "org_slug": "acme",
        "org_permissions": ["org:a:read", "org:b:read"], "email": "u@example.com", "act": ["sub": "user_support"],
    ])

    @Test(arguments: [
        "X-Gatehouse-User-Id", "x-gatehouse-user-id", "X_Gatehouse_User_Id", "x.gatehouse.user.id", "X-GATEHOUSE-ORG-ROLE",
        "X-Gatehouse-Anything", "x_clerk_auth_status", "X-Clerk-Auth-Token", "X-User-Email", "x_user.email", "Remote-User",
        "remote_user",
    ])
    func clientLookAlikesAreAlwaysRemoved(name: String) {
        let client = HeaderList([("Host", "a"), (name, "spoofed"), (name, "")])
        for s in [session, nil] as [SessionAuth?] {
            let upstream = policy.upstreamHeaders(from: client, session: s, token: "tok", routeName: "r")
            #expect(!upstream.fields.contains { $0.value == "spoofed" || ($0.name == name && $0.value.isEmpty) })
        }
    }

    @Test func identityHeadersCarryTheVerifiedSession() {
        let upstream = policy.upstreamHeaders(from: HeaderList([("Host", "a"), ("Accept", "*/*")]), session: session, token: "tok", routeName: "app")
        #expect(upstream.first("x-gatehouse-user-id") == "user_1")
        #expect(upstream.first("x-gatehouse-session-id") == "sess_1")
        #expect(upstream.first("x-gatehouse-org-id") == "org_1")
        #expect(upstream.first("x-gatehouse-org-role") == "org:member")
        #expect(upstream.first("x-gatehouse-org-slug") == "acme")
        #expect(upstream.first("x-gatehouse-org-permissions") == "org:a:read,org:b:read")
        #expect(upstream.first("x-gatehouse-actor-id") == "user_support")
        #expect(upstream.first("x-gatehouse-token") == "tok")
        #expect(upstream.first("x-user-email") == "u@example.com")
        #expect(upstream.first("x-gatehouse-route") == "app")
        #expect(upstream.first("accept") == "*/*")
    }

    @Test func claimValuesWithControlCharactersAreLeftOut() {
        let evil = SessionAuth(claims: ["sub": "user_1", "email": "a@b.c\r\nX-Admin: 1"])
        let upstream = policy.upstreamHeaders(from: HeaderList(), session: evil, token: nil, routeName: "r")
        #expect(upstream.first("x-user-email") == nil)
    }

    @Test func hopByHopHeadersAndThoseNamedInConnectionAreRemoved() {
        let client = HeaderList([("Connection", "keep-alive, X-Forwarded-For"), ("Keep-Alive", "5"), ("X-Forwarded-For", "1.2.3.4"),
                                 ("TE", "trailers"), ("Upgrade", "h2c"), ("Accept", "x")])
        let upstream = IdentityHeaderPolicy().upstreamHeaders(from: client, session: nil, token: nil, routeName: "r")
        #expect(upstream.fields.map(\.name) == ["Accept", "X-Gatehouse-Route"])
        // Several Connection fields, odd spacing and case: every listed name goes, the rest stays.
        let listed = HeaderList([("connection", " x-a ,, X-B "), ("Connection", "Close"), ("X-A", "1"), ("x-b", "2"), ("close", "3"),
                                 ("X-C", "4")])
        let kept = IdentityHeaderPolicy().upstreamHeaders(from: listed, session: nil, token: nil, routeName: "r")
        #expect(kept.fields.map(\.name) == ["X-C", "X-Gatehouse-Route"])
    }
}
