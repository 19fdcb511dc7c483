import Foundation
import Testing

/// `gatehouse healthcheck`, the command the container images' HEALTHCHECK runs (no curl in a scratch image).
@Suite(.serialized) struct HealthcheckCommandTests {
    @Test func exitsZeroOnReadyOneWhenNothingAnswersTwoOnABadURL() async throws {
        let upstream = try await TestUpstream()
        defer { Task { await upstream.stop() } }
        let (gateway, directory) = try OperatorConventionTests.start(upstream, extra: "")
        defer { gateway.stop(); try? FileManager.default.removeItem(at: directory) }
        #expect(try OperatorConventionTests.run(["healthcheck", "--url", "http://127.0.0.1:\(gateway.adminPort)/readyz"]).0 == 0)
        // A 404 is not healthy.
        let missing = try OperatorConventionTests.run(["healthcheck", "--url", "http://127.0.0.1:\(gateway.adminPort)/nope"])
        #expect(missing.0 == 1)
        #expect(missing.2.contains("status 404"), "\(missing.2)")
        let closed = GatewayProcess.freePorts(1)[0]
        let refused = try OperatorConventionTests.run(["healthcheck", "--url", "http://127.0.0.1:\(closed)/readyz", "--timeout", "1"])
        #expect(refused.0 == 1)
        #expect(refused.2.contains("no answer"), "\(refused.2)")
        #expect(try OperatorConventionTests.run(["healthcheck", "--url", "https://127.0.0.1/readyz"]).0 == 2)
    }
}
