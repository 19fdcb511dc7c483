import Foundation
import GatehouseCore
import GatehouseDevIssuer
import Testing

/// The access log of the real binary, read from its stdout: the documented fields, Clerk's reason strings,
/// and never a token, a cookie value or a query value. Lines are parsed with Foundation, not Gatehouse's JSON.
@Suite(.serialized, .stopsServers) struct AccessLogTests {
    static let fields = ["time", "request_id", "method", "path", "route", "decision", "status", "user_id", "duration_ms", "bytes", "client_ip", "host", "user_agent", "protocol"]

    /// A machine caller's line names the credential's type and subject, and no user; a session's names its type
    /// and user; a refused one its reason (the data plane reads them from the result in place, `AuthLogFacts`).
    @Test func machineAndSessionCallersAreNamed() async throws {
        let upstream = try await TestUpstream()
        let standIn = try await BackendAPIStandIn()
        defer { Task { await upstream.stop(); await standIn.stop() } }
        standIn.answer(MachineFixtures.apiKey, MachineFixtures.apiKeyJSON(subject: "user_keyowner"))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-log-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data(Fixtures.issuer.jwks.serialized().utf8).write(to: directory.appendingPathComponent("jwks.json"))
        let routes = "  - { name: keys, match: [\"/api/keys(.*)\"], accepts: api_key }\n" + GatewayHarness.defaultRoutes
        let yaml = DaemonProcessTests.yaml(upstream.port, routes: routes)
            .replacingOccurrences(of: "access_log: off", with: "access_log: stdout")
            .replacingOccurrences(of: "  publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k\n", with: """
                  publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k
                  api_url: "\(standIn.origin)"
                  secret_key: \(BackendAPIStandIn.secretKey)

                """)
        try #require(yaml.contains("access_log: stdout") && yaml.contains(standIn.origin))
        let gateway = try GatewayProcess(yaml: yaml, directory: directory)

        let c = try RawClient(port: gateway.port)
        #expect(c.request("GET", "/api/keys/1", headers: [bearer(MachineFixtures.apiKey)])?.status == 200)
        #expect(c.request("GET", "/echo/2", headers: [bearer(ServerIntegrationTests.fresh("user_session"))])?.status == 200)
        #expect(c.request("GET", "/api/keys/3", headers: [bearer("ak_unknown"), ("Accept", "application/json")])?.status == 401)

        let (stdout, stderr) = gateway.stopAndCollectOutput()
        let lines = stdout.split(separator: "\n").map(String.init).filter { $0.hasPrefix("{") }
        try #require(lines.count == 3, "expected one access-log line per request; stdout was:\n\(stdout)\nstderr:\n\(stderr)")
        let entries = try lines.map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line)")
        }
        #expect(entries.map { $0["token_type"] as? String } == ["api_key", "session_token", "api_key"])
        #expect(entries.map { $0["machine_subject"] as? String } == ["user_keyowner", nil, nil])
        #expect(entries.map { $0["user_id"] as? String } == [nil, "user_session", nil])
        #expect(entries[2]["auth_reason"] as? String != nil, "a refused key's line says why: \(lines[2])")
        #expect(!stdout.contains(MachineFixtures.apiKey), "the key itself is never logged")
    }

    @Test func linesCarryTheDocumentedFieldsAndNoSecrets() async throws {
        let upstream = try await TestUpstream()
        defer { Task { await upstream.stop() } }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-log-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data(Fixtures.issuer.jwks.serialized().utf8).write(to: directory.appendingPathComponent("jwks.json"))
        let yaml = DaemonProcessTests.yaml(upstream.port, routes: GatewayHarness.defaultRoutes)
            .replacingOccurrences(of: "access_log: off", with: "access_log: stdout")
        #expect(yaml.contains("access_log: stdout"))
        let gateway = try GatewayProcess(yaml: yaml, directory: directory)

        let bearerToken = ServerIntegrationTests.fresh("user_bearer")
        let cookieToken = ServerIntegrationTests.fresh("user_cookie")
        let expired = Fixtures.token("user_late", iat: Date().timeIntervalSince1970 - 3600)
        let querySecret = "qsecret\(UInt64.random(in: 1...UInt64.max))"
        let cookieSecret = "csecret\(UInt64.random(in: 1...UInt64.max))"
        let c = try RawClient(port: gateway.port)
        let proxied = c.request("GET", "/echo/a?api_key=\(querySecret)", headers: [bearer(bearerToken), ("User-Agent", "gatehouse-tests/1")])
        #expect(proxied?.status == 200)
        let cookie = c.request("GET", "/dashboard/b?token=\(querySecret)&x=1",
                               headers: [("Cookie", "__session=\(cookieToken); __client_uat=1; other=\(cookieSecret)")])
        #expect(cookie?.status == 200)
        let anonymous = c.request("GET", "/dashboard/c?code=\(querySecret)", headers: [("Accept", "application/json")])
        #expect(anonymous?.status == 401)
        let late = c.request("GET", "/echo/d", headers: [bearer(expired), ("Accept", "application/json")])
        #expect(late?.status == 401)
        // Proxied requests: the id the upstream was given; Gatehouse's own responses: the id returned.
        func echoedID(_ response: RawClient.Response?) -> String? {
            guard let body = response?.body, let json = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
                let headers = json["headers"] as? [String: [String]] else { return nil }
            return headers["x-request-id"]?.first
        }
        let requestIDs = [echoedID(proxied), echoedID(cookie), anonymous?.header("x-request-id"), late?.header("x-request-id")]

        let (stdout, stderr) = gateway.stopAndCollectOutput()
        let lines = stdout.split(separator: "\n").map(String.init).filter { $0.hasPrefix("{") }
        try #require(lines.count == 4, "expected one access-log line per request; stdout was:\n\(stdout)\nstderr:\n\(stderr)")
        let entries = try lines.map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line)")
        }
        for entry in entries {
            for field in Self.fields { #expect(entry.keys.contains(field), "missing \(field) in \(entry)") }
            #expect((entry["time"] as? String)?.hasSuffix("Z") == true)
            #expect(entry["method"] as? String == "GET")
            #expect((entry["duration_ms"] as? NSNumber).map { $0.doubleValue >= 0 } == true)
        }
        #expect(entries.map { $0["path"] as? String } == ["/echo/a", "/dashboard/b", "/dashboard/c", "/echo/d"])
        #expect(entries.map { $0["route"] as? String } == ["app", "app", "app", "app"])
        #expect(entries.map { ($0["status"] as? NSNumber)?.intValue } == [200, 200, 401, 401])
        #expect(entries.map { $0["user_id"] as? String } == ["user_bearer", "user_cookie", nil, nil])
        #expect(entries.map { $0["decision"] as? String } == ["proxy", "proxy", "deny", "deny"])
        // Proxied requests name the upstream's time; the ids are those returned to the client.
        #expect(entries[0]["upstream_ms"] is NSNumber)
        #expect(entries.map { $0["request_id"] as? String } == requestIDs)
        #expect(requestIDs.allSatisfy { $0 != nil })
        // Clerk's reason strings for the signed-out cases.
        #expect(entries[2]["auth_reason"] as? String == "session-token-and-uat-missing")
        // An expired token: Clerk's refresh-aware reason (no refresh cookie, so no refresh was possible).
        #expect(entries[3]["auth_reason"] as? String == "session-token-expired-refresh-non-eligible-no-refresh-cookie")
        #expect(((entries[1]["bytes"] as? NSNumber)?.intValue ?? 0) > 0)
        #expect(entries.allSatisfy { $0["client_ip"] as? String == "127.0.0.1" && $0["protocol"] as? String == "HTTP/1.1" })
        #expect(entries.map { $0["host"] as? String } == Array(repeating: "app.example.com", count: 4))
        #expect(entries[0]["user_agent"] as? String == "gatehouse-tests/1")
        #expect(entries[1]["user_agent"] is NSNull)

        // No secret anywhere in the output, in any form (whole tokens, their signatures, the cookie and query values).
        let everything = stdout + stderr
        for secret in [bearerToken, cookieToken, expired, querySecret, cookieSecret]
            + [bearerToken, cookieToken].map({ String($0.split(separator: ".")[2]) }) {
            #expect(!everything.contains(secret), "a secret reached the log output")
        }
        #expect(!everything.contains("api_key"))
        #expect(!everything.contains("?"))
    }
}
