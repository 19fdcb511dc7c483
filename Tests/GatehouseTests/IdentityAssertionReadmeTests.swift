import Foundation
@testable import GatehouseCore
import Testing

/// The README's Python verification example, run verbatim (addresses ported) against real assertions.
@Suite(.serialized, .stopsServers) struct IdentityAssertionReadmeTests {
    @Test func thePythonExampleAcceptsThisRequestAndRefusesAnother() async throws {
        let h = try await GatewayHarness(extra: IdentityAssertionSocketTests.extra(keyFile: "assertion.pem")
            .replacingOccurrences(of: "issuer: gatehouse-test", with: "issuer: gatehouse"))
        defer { Task { await h.stop() } }
        let member = ServerIntegrationTests.fresh("user_member", org: ("org_1", "acme", "org:member", []))
        let response = try #require(try h.client().request("POST", "/echo/orders/7", headers: [bearer(member)]))
        let token = try #require(response.json?.value(atPath: ["headers", "x-gatehouse-assertion"])?.arrayValue?.first?.stringValue)

        let snippet = try ForwardAuthProxyTests.snippet("pyjwt-assertion")
        #expect(snippet.contains("http://gatehouse-admin:9090") && snippet.contains("http://127.0.0.1:3000"))
        let ported = snippet.replacingOccurrences(of: "http://gatehouse-admin:9090", with: "http://127.0.0.1:\(h.adminPort)")
            .replacingOccurrences(of: "http://127.0.0.1:3000", with: "http://127.0.0.1:\(h.upstream.port)")
        let script = ported + """

            import sys, json
            for method, host, path in [("POST", "app.example.com", "/echo/orders/7"), ("GET", "app.example.com", "/echo/orders/7"),
                                       ("POST", "app.example.com", "/echo/orders/8"), ("POST", "other.example.com", "/echo/orders/7")]:
                try:
                    print(json.dumps({"sub": identity(sys.argv[1], method, host, path)["sub"]}))
                except Exception as error:
                    print(json.dumps({"error": type(error).__name__}))
            """
        let path = h.directory.appendingPathComponent("readme_verify.py").path
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        let outcome = try await OffPoolProcess.run(IdentityAssertionSocketTests.python, [path, token])
        let lines = String(decoding: outcome.stdout, as: UTF8.self).split(separator: "\n").map(String.init)
        let errorText = String(decoding: outcome.stderr, as: UTF8.self)
        #expect(outcome.status == 0, "\(errorText)")
        #expect(lines == [#"{"sub": "user_member"}"#] + Array(repeating: #"{"error": "InvalidTokenError"}"#, count: 3), "\(errorText)")
    }
}
