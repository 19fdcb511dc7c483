import Foundation
@testable import GatehouseCore
@testable import GatehouseServer
import Testing

/// The data plane writes a proxied request's identity fields from a block built once per session and route
/// (`IdentityHeaderPolicy.upstreamFields`) instead of a list built per request. The head must be byte for byte
/// the one the list gave (`UpstreamRequest.renderHead(headers:)` over the policy's field-by-field list), and a
/// block must never be reused for another policy, route or forwarded token.
@Suite struct IdentityBlockTests {
    static let sessions: [SessionAuth?] = [
        nil,
        SessionAuth(claims: ["sub": "user_1", "sid": "sess_1"]),
        SessionAuth(claims: ["sub": "user_2", "sid": "sess_2", "org_id": "org_9", "org_role": "org:admin", "org_slug": "acme",
                             "org_permissions": ["org:a:b", "org:c:d"], "email": "a@example.com", "act": ["sub": "user_admin"],
                             "meta": ["plan": "pro", "n": 3]]),
        // Unsafe values are left out, not sent.
        SessionAuth(claims: ["sub": "user_3\r\nX-Evil: 1", "sid": "sess_3", "email": "b\nc"]),
    ]

    static let policies: [IdentityHeaderPolicy] = [
        IdentityHeaderPolicy(),
        IdentityHeaderPolicy(forwardToken: true, claimHeaders: [("X-User-Email", ["email"]), ("X-Plan", ["meta", "plan"]), ("X-N", ["meta", "n"])]),
        // Claim headers named like forwarding fields or Via: dropped / merged where the head is written, so
        // their block is written field by field.
        IdentityHeaderPolicy(claimHeaders: [("X-Forwarded-Host", ["email"]), ("Via", ["email"]), ("X-Plain", ["email"])], strip: ["x-secret"]),
    ]

    static let clientFields: [(String, String)] = [
        ("Host", "app.example.com"), ("Authorization", "Bearer abc"), ("X-Gatehouse-User-Id", "spoof"), ("x_clerk_thing", "spoof"),
        ("Connection", "keep-alive, X-Hop"), ("X-Hop", "gone"), ("Via", "1.0 edge"), ("X-Forwarded-For", "203.0.113.9"),
        ("X-Secret", "s"), ("X-User-Email", "spoof"), ("Accept", "*/*"),
    ]

    static func render(_ request: CanonicalRequest, _ fields: UpstreamFields, trusted: Bool) -> [UInt8] {
        UpstreamRequest.renderHead(for: request, target: nil, fields: fields, peer: "192.0.2.7", trustedPeer: trusted, requestID: "rid",
                                   chunked: false, webSocketUpgrade: false)
    }

    static func reference(_ request: CanonicalRequest, _ list: HeaderList, trusted: Bool) -> [UInt8] {
        UpstreamRequest.renderHead(for: request, target: nil, headers: list, peer: "192.0.2.7", trustedPeer: trusted, requestID: "rid",
                                   chunked: false, webSocketUpgrade: false)
    }

    /// The identity fields the old per-request list carried, in order (IdentityHeaderPolicy.forEachIdentityValue).
    static func listFields(_ policy: IdentityHeaderPolicy, session: SessionAuth?, token: String?, route: String, machine: MachineIdentity?) -> HeaderList {
        let isHopByHop = HopByHop.predicate(for: HeaderList(clientFields))
        var list = HeaderList()
        for (name, value) in clientFields where !isHopByHop(name) && !policy.isReserved(name) { list.append(name, value) }
        policy.forEachIdentityValue(session: session, token: token, routeName: route, machine: machine) { name, value in
            if let value { list.append(name, value) }
        }
        return list
    }

    @Test func theHeadFromTheBlockIsTheHeadFromTheList() throws {
        let machine = MachineIdentity(tokenType: .apiKey, form: .opaque, id: "ak_1", subject: "org_1", scopes: ["read"], claims: nil)
        let request = try CanonicalRequest(RawRequest(method: "GET", target: "/app/x?y=1", headers: HeaderList(Self.clientFields), peer: "192.0.2.7"))
        for policy in Self.policies {
            for session in Self.sessions {
                for machine in [nil, machine] {
                    for route in ["app", "other", "bad\r\nroute"] {
                        for trusted in [false, true] {
                            // Twice: the second time the block comes from the cache.
                            for _ in 0..<2 {
                                var fields = policy.upstreamFields(from: request.headers, session: session, token: "tok_1", routeName: route, machine: machine)
                                var list = Self.listFields(policy, session: session, token: "tok_1", route: route, machine: machine)
                                #expect(fields.headers == list)
                                #expect(Self.render(request, fields, trusted: trusted) == Self.reference(request, list, trusted: trusted),
                                        "\(route) session=\(session?.userId ?? "-") machine=\(machine != nil)")
                                fields.append(IdentityHeaderPolicy.assertion, "eyJ.x.y")
                                list.append(IdentityHeaderPolicy.assertion, "eyJ.x.y")
                                #expect(Self.render(request, fields, trusted: trusted) == Self.reference(request, list, trusted: trusted))
                            }
                        }
                    }
                }
            }
        }
    }

    @Test func aForwardingOrViaNamedClaimHeaderMakesABlockWithoutWireBytes() {
        let session = SessionAuth(claims: ["sub": "user_1", "email": "a@example.com"])
        let plain = IdentityHeaderPolicy(claimHeaders: [("X-Email", ["email"])])
        #expect(plain.upstreamFields(from: HeaderList(), session: session, token: nil, routeName: "r").identity.wire
            == Array("X-Gatehouse-Route: r\r\nX-Gatehouse-User-Id: user_1\r\nX-Email: a@example.com\r\n".utf8))
        for name in ["X-Forwarded-Host", "x_real_ip", "VIA", "Expect"] {
            let policy = IdentityHeaderPolicy(claimHeaders: [(name, ["email"])])
            #expect(policy.upstreamFields(from: HeaderList(), session: session, token: nil, routeName: "r").identity.wire == nil, "\(name)")
        }
    }

    @Test func aBlockIsReusedOnlyForTheSamePolicyRouteAndToken() {
        let session = SessionAuth(claims: ["sub": "user_1", "email": "a@example.com"])
        var policy = IdentityHeaderPolicy(forwardToken: true)
        let first = policy.upstreamFields(from: HeaderList(), session: session, token: "tok_1", routeName: "app").identity
        #expect(policy.upstreamFields(from: HeaderList(), session: session, token: "tok_1", routeName: "app").identity === first)
        #expect(policy.upstreamFields(from: HeaderList(), session: session, token: "tok_2", routeName: "app").identity !== first)
        #expect(policy.upstreamFields(from: HeaderList(), session: session, token: "tok_1", routeName: "admin").identity !== first)
        // A changed policy (as a reload makes) never sees the old block, whichever property changed.
        let copy = policy
        policy.claimHeaders = [("X-Email", ["email"])]
        let changed = policy.upstreamFields(from: HeaderList(), session: session, token: "tok_1", routeName: "app").identity
        #expect(changed !== first)
        #expect(changed.fields.contains { $0.name == "X-Email" && $0.value == "a@example.com" })
        #expect(copy.upstreamFields(from: HeaderList(), session: session, token: "tok_1", routeName: "app").identity === first)
        policy.forwardToken = false
        #expect(!policy.upstreamFields(from: HeaderList(), session: session, token: "tok_1", routeName: "app").identity.fields
            .contains { $0.name == IdentityHeaderPolicy.token })
        policy.strip = ["x-other"]
        #expect(policy.upstreamFields(from: HeaderList(), session: session, token: "tok_1", routeName: "app").identity !== changed)
        // Another session with the same claims has its own blocks.
        let twin = SessionAuth(claims: ["sub": "user_1", "email": "a@example.com"])
        #expect(copy.upstreamFields(from: HeaderList(), session: twin, token: "tok_1", routeName: "app").identity !== first)
    }

    @Test func signedOutBlocksAreSharedPerRouteAndBounded() {
        let policy = IdentityHeaderPolicy()
        let a = policy.upstreamFields(from: HeaderList(), session: nil, token: nil, routeName: "public").identity
        #expect(policy.upstreamFields(from: HeaderList(), session: nil, token: nil, routeName: "public").identity === a)
        #expect(a.fields.map(\.name) == [IdentityHeaderPolicy.route])
        let b = policy.upstreamFields(from: HeaderList(), session: nil, token: nil, routeName: "docs").identity
        #expect(b !== a && b.fields.first?.value == "docs")
        for i in 0..<(IdentityPolicyTag.signedOutLimit + 10) {
            let block = policy.upstreamFields(from: HeaderList(), session: nil, token: nil, routeName: "r\(i)").identity
            #expect(block.fields.first?.value == "r\(i)")
        }
    }

    @Test func aSessionKeepsAFewBlocksAndStillAnswersForMoreRoutes() {
        let session = SessionAuth(claims: ["sub": "user_1"])
        let policy = IdentityHeaderPolicy()
        for round in 0..<3 {
            for i in 0..<(IdentityBlockCache.limit + 3) {
                let block = policy.upstreamFields(from: HeaderList(), session: session, token: nil, routeName: "r\(i)").identity
                #expect(block.fields.map(\.value) == ["r\(i)", "user_1"], "round \(round)")
            }
        }
    }

    @Test func blocksAreSafeToShareAcrossThreads() async {
        let session = SessionAuth(claims: ["sub": "user_1", "sid": "sess_1"])
        let policy = IdentityHeaderPolicy()
        await withTaskGroup(of: Bool.self) { group in
            for t in 0..<8 {
                group.addTask {
                    (0..<2000).allSatisfy { i in
                        let route = "r\((i + t) % 6)"
                        return policy.upstreamFields(from: HeaderList(), session: session, token: nil, routeName: route).identity.fields.first?.value == route
                    }
                }
            }
            for await ok in group { #expect(ok) }
        }
    }
}
