import Foundation
@testable import GatehouseAuth
import GatehouseConfig
@testable import GatehouseCore
@testable import GatehouseEngine
import Testing

/// Review of issue 13 (ownership rules, `when:` conditions, identity assertions): each test states a behaviour
/// the feature promises and fails while the finding stands.
@Suite struct ReviewIssue13Tests {
    let source = FakeMachineSource()

    static func yaml(accepts: String) -> String {
        """
        clerk:
          publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k
          secret_key: sk_live_machinetests
          jwks_file: jwks.json
        sign_in_url: /sign-in
        routes:
          - name: own-profile
            match: ["/users/:userId", "/users/:userId/(.*)"]
            accepts: \(accepts)
            require: { params: { userId: user_id } }
        default: protected
        """
    }

    func bearer(_ token: String) -> [(String, String)] { [("Authorization", "Bearer " + token)] }

    /// Finding 1: the machine path (`decideMachine`) never runs `requirements.ownership`, so on a route that also
    /// accepts machine tokens any valid API key reaches every user's resource. Either the config must refuse
    /// `params:` next to machine `accepts:`, or the request must be denied.
    @Test(arguments: ["[session_token, api_key]", "api_key", "any"])
    func anAPIKeyCannotReachAnotherUsersResource(accepts: String) async throws {
        let yaml = Self.yaml(accepts: accepts)
        let issues = Fixtures.configIssues(yaml)
        if !issues.isEmpty { return }  // refused at load: fine
        source.answer(MachineFixtures.apiKey, MachineFixtures.apiKeyJSON(subject: "user_xxxxx"))
        let g = try MachineFixtures.gatekeeper(yaml, source: source)
        // The key belongs to user_xxxxx; the path names someone else.
        let e = await g.evaluate("/users/user_victim/billing", headers: bearer(MachineFixtures.apiKey))
        #expect(e.decision.action != .proxy, "accepts \(accepts): \(e.decision.status) \(e.decision.explanation)")
    }

    /// Finding 1 (OAuth): an OAuth access token's `sub` is a user, yet ownership is not compared either.
    @Test func anOAuthTokenCannotReachAnotherUsersResource() async throws {
        let yaml = Self.yaml(accepts: "[session_token, oauth_token]")
        let issues = Fixtures.configIssues(yaml)
        if !issues.isEmpty { return }
        let g = try MachineFixtures.gatekeeper(yaml, source: source)
        let e = await g.evaluate("/users/user_victim", headers: bearer(MachineFixtures.oauthJWT()))
        #expect(e.decision.action != .proxy, "\(e.decision.status) \(e.decision.explanation)")
    }

    /// Control: a session for user_abc is refused on user_victim's page on the same route (the check works for
    /// sessions), so the test above isolates the machine path.
    @Test func aSessionIsStillComparedOnTheMixedRoute() async throws {
        let g = try MachineFixtures.gatekeeper(Self.yaml(accepts: "[session_token, api_key]"), source: source)
        let e = await g.evaluate("/users/user_victim", headers: bearer(Fixtures.token("user_abc")))
        #expect(e.decision.status == 403)
        #expect(await g.evaluate("/users/user_abc", headers: bearer(Fixtures.token("user_abc"))).decision.action == .proxy)
    }
}

/// Finding 2: the README tells apps to check `token_type` before reading `sub` as a user, and to check
/// `method`/`host`/`path`, but its own Node, Python and Go verification examples check neither `token_type` nor
/// `host`. An app copying them treats an API key owned by user_x (assertion `sub: user_x`, `token_type: api_key`)
/// as user_x's session, and accepts an assertion minted for another virtual host of the same upstream.
@Suite struct ReviewIssue13ReadmeTests {
    static func verificationExamples() throws -> [String] {
        let readme = try String(contentsOfFile: #filePath.replacingOccurrences(of: "Tests/GatehouseTests/ReviewIssue13Tests.swift", with: "README.md"), encoding: .utf8)
        let start = try #require(readme.range(of: "Verifying in the app"))
        let rest = readme[start.upperBound...]
        let end = rest.range(of: "\n### ")?.lowerBound ?? rest.range(of: "\n## ")?.lowerBound ?? rest.endIndex
        let section = rest[..<end]
        // Fenced code blocks in the section.
        let parts = section.components(separatedBy: "```")
        return stride(from: 1, to: parts.count, by: 2).map { parts[$0] }
    }

    @Test func everyExampleChecksTokenTypeAndHost() throws {
        let examples = try Self.verificationExamples()
        #expect(examples.count == 3)
        for example in examples {
            let language = example.prefix(while: { $0 != "\n" })
            #expect(example.contains("token_type"), "\(language) example reads sub without checking token_type")
            #expect(example.contains("host") || example.contains("Host"), "\(language) example does not compare the assertion's host")
        }
    }
}
