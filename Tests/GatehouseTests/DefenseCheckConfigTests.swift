import Foundation
import Testing

/// `gatehouse check-config` names ownership parameters, `when:` conditions and the assertion key.
@Suite struct DefenseCheckConfigTests {
    @Test func theCompiledTableShowsTheNewRuleParts() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-cc-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let config = directory.appendingPathComponent("g.yaml").path
        try """
            upstream: "http://127.0.0.1:3000"
            admin: { listen: "127.0.0.1:9191" }
            clerk: { publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k }
            sign_in_url: /sign-in
            identity_assertion: { key_file: key.pem, jwks_path: /.well-known/gh.json, reuse: 2s }
            routes:
              - { name: own, match: ["/users/:userId"], require: { params: { userId: user_id } } }
              - { name: act, match: ["/s(.*)"], when: { server_action: true, headers: { x-a: present } } }
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let outcome = try await OffPoolProcess.run(GatewayProcess.binary.path, ["check-config", "--config", config])
        let text = String(decoding: outcome.stdout + outcome.stderr, as: UTF8.self)
        #expect(outcome.status == 0, "\(text)")
        #expect(text.contains("own [protected]  /users/:userId  requires params.userId=user_id"), "\(text)")
        #expect(text.contains("act [protected]  /s(.*)  when a Next.js server action and header x-a present"), "\(text)")
        #expect(text.range(of: #"assertion:  X-Gatehouse-Assertion ES256 kid [A-Za-z0-9_-]{43}, lifetime 30s, reuse 2.0s; JWKS at admin 127.0.0.1:9191 /.well-known/jwks.json, public /.well-known/gh.json"#,
                           options: .regularExpression) != nil, "\(text)")
        #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("key.pem").path))
    }
}
