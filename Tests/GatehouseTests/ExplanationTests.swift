import Foundation
import GatehouseCore
@testable import GatehouseEngine
import Testing

/// Proxied decisions keep their explanation as parts and build the sentence when it is read (explain,
/// forward-auth). The sentences are the ones `explain` has always printed.
@Suite struct ExplanationTests {
    @Test func theSentencesAreTheOnesExplainPrints() {
        #expect(Explanation.publicRoute(route: "docs", userId: nil).text == "public route 'docs'")
        #expect(Explanation.publicRoute(route: "docs", userId: "user_1").text == "public route 'docs', signed in as user_1")
        #expect(Explanation.requirementsMet(userId: "user_1", route: "app", ownership: nil).text == "signed in as user_1; route 'app' requirements met")
        #expect(Explanation.requirementsMet(userId: "user_1", route: "app", ownership: "; params.userId 'user_1' = user_id").text
            == "signed in as user_1; route 'app' requirements met; params.userId 'user_1' = user_id")
        // Equal when the sentences are, whichever way they were kept.
        #expect(Explanation.text("public route 'docs'") == .publicRoute(route: "docs", userId: nil))
        #expect(Explanation.text("public route 'doc'") != .publicRoute(route: "docs", userId: nil))
    }

    @Test func theGatekeeperExplainsProxiedRequests() async throws {
        let gatekeeper = try Fixtures.gatekeeper()
        let bearer = [("Host", "app.example.com"), ("Authorization", "Bearer " + Fixtures.token("user_7"))]
        let signedIn = await gatekeeper.evaluate(RawRequest(method: "GET", target: "/dashboard", headers: HeaderList(bearer)), now: Fixtures.now)
        #expect(signedIn.decision.action == .proxy)
        #expect(signedIn.decision.explanation == "signed in as user_7; route 'app' requirements met")
        let publicSignedIn = await gatekeeper.evaluate(RawRequest(method: "GET", target: "/api/public/x", headers: HeaderList(bearer)), now: Fixtures.now)
        #expect(publicSignedIn.decision.explanation == "public route 'public', signed in as user_7")
        let anonymous = await gatekeeper.evaluate(RawRequest(method: "GET", target: "/api/public/x", headers: HeaderList([("Host", "app.example.com")])),
                                                  now: Fixtures.now)
        #expect(anonymous.decision.explanation == "public route 'public'")
    }
}
