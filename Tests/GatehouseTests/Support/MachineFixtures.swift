import Foundation
@testable import GatehouseAuth
import GatehouseConfig
@testable import GatehouseCore
import GatehouseDevIssuer
@testable import GatehouseEngine
import Synchronization

/// Config, tokens and an in-memory Backend API double for the machine-token tests.
enum MachineFixtures {
    // Clerk's `mockTokens` (packages/backend/src/fixtures/machine.ts).
    static let apiKey = "ak_LCWGdaM8mv8K4PC/57IICZQXAeWfCgF30DZaFXHoGn9="
    static let oauthToken = "oat_8XOIucKvqHVr5tYP123456789abcdefghij"
    static let m2mToken = "mt_8XOIucKvqHVr5tYP123456789abcdefghij"

    static let yaml = """
        clerk:
          publishable_key: pk_live_Y2xlcmsuZXhhbXBsZS5jb20k
          secret_key: sk_live_machinetests
          jwks_file: jwks.json
        sign_in_url: /sign-in
        routes:
          - name: keys
            match: ["/api/keys(.*)"]
            accepts: api_key
          - name: m2m
            match: ["/api/m2m(.*)"]
            accepts: m2m_token
          - name: oauth
            match: ["/api/mcp(.*)"]
            accepts: oauth_token
          - name: mixed
            match: ["/api/mixed(.*)"]
            accepts: [session_token, api_key]
          - name: machines
            match: ["/api/machines(.*)"]
            accepts: [api_key, m2m_token]
          - name: anything
            match: ["/api/any(.*)"]
            accepts: any
          - name: external
            match: ["/api/external(.*)"]
            accepts: {template: {iss: "https://clerk.example.com", aud: "external-api", claims: {"role": "reader"}}}
          - name: open
            match: ["/api/open(.*)"]
            access: public
            accepts: api_key
          - name: app
            match: ["/dashboard(.*)", "/api/app(.*)"]
        default: protected
        """

    /// Clerk's `mockM2MJwtPayload`, moved to `Fixtures.now`.
    static func m2mPayload(iat: Double = Fixtures.now, lifetime: Double = 300, sub: JSONValue = "mch_2vYVtestTESTtestTESTtestTESTtest") -> JSONObject {
        JSONObject([
            ("iss", "https://clerk.m2m.example.test"), ("sub", sub), ("aud", .array(["mch_1xxxxx", "mch_2xxxxx"])),
            ("exp", .number(JSONNumber(Int64(iat + lifetime)))), ("iat", .number(JSONNumber(Int64(iat)))),
            ("nbf", .number(JSONNumber(Int64(iat - 10)))), ("jti", "mt_2xKa9Bgv7NxMRDFyQw8LpZ3cTmU1vHjE"), ("scopes", "mch_1xxxxx mch_2xxxxx"),
        ])
    }

    static func m2mJWT(iat: Double = Fixtures.now, lifetime: Double = 300, cat: String? = "cl_B7d4PD333AAA", issuer: DevIssuer = Fixtures.issuer) -> String {
        issuer.sign(m2mPayload(iat: iat, lifetime: lifetime), header: cat.map { JSONObject([("cat", .string($0))]) } ?? JSONObject())
    }

    /// Clerk's `mockOAuthAccessTokenJwtPayload` shape.
    static func oauthPayload(iat: Double = Fixtures.now, lifetime: Double = 300, sub: JSONValue = "user_2vYVtestTESTtestTESTtestTESTtest") -> JSONObject {
        JSONObject([
            ("azp", "https://accounts.inspired.puma-74.lcl.dev"), ("exp", .number(JSONNumber(Int64(iat + lifetime)))),
            ("iat", .number(JSONNumber(Int64(iat)))), ("iss", "https://clerk.oauth.example.test"), ("nbf", .number(JSONNumber(Int64(iat - 10)))),
            ("sid", "sess_2GbDB4enNdCa5vS1zpC3Xzg9tK9"), ("sub", sub), ("client_id", "client_2VTWUzvGC5UhdJCNx6xG1D98edc"),
            ("scope", "read:foo write:bar"), ("jti", "oat_2xKa9Bgv7NxMRDFyQw8LpZ3cTmU1vHjE"),
        ])
    }

    static func oauthJWT(typ: String = "at+jwt", iat: Double = Fixtures.now, lifetime: Double = 300) -> String {
        Fixtures.issuer.sign(oauthPayload(iat: iat, lifetime: lifetime), header: JSONObject([("typ", .string(typ))]))
    }

    static func templateJWT(aud: String = "external-api", iss: String = "https://clerk.example.com", role: String = "reader", lifetime: Double = 60) -> String {
        let payload = JSONObject([
            ("iss", .string(iss)), ("sub", "user_template"), ("aud", .string(aud)), ("role", .string(role)),
            ("exp", .number(JSONNumber(Int64(Fixtures.now + lifetime)))), ("iat", .number(JSONNumber(Int64(Fixtures.now)))),
        ])
        return Fixtures.issuer.sign(payload, header: JSONObject([("cat", "cl_B7d4PD222AAA")]))
    }

    static func gatekeeper(_ yaml: String = MachineFixtures.yaml, source: (any MachineTokenSource)? = nil,
                           verifier: MachineTokenVerifier? = nil) throws -> Gatekeeper {
        let settings = try Fixtures.settings(yaml)
        let store = Gatekeeper.makeKeyStore(for: settings) { _, _ in fatalError("no network in unit tests") }
        return Gatekeeper(settings: settings, keyStore: store, machineSource: source, machineVerifier: verifier)
    }

    /// Clerk's raw Backend API JSON (§6 of the design notes), with the fields a test changes.
    static func apiKeyJSON(revoked: Bool = false, expired: Bool = false, expiration: String = "null", subject: String? = "user_xxxxx") -> String {
        let subjectMember = subject.map { "\"subject\":\"\($0)\"," } ?? ""
        return """
            {"object":"api_key","id":"ak_xxxxx","type":"secret_key","name":"Test API Key",\(subjectMember)"scopes":["scope1","scope2"],"claims":{"foo":"bar"},"revoked":\(revoked),"revocation_reason":null,"expired":\(expired),"expiration":\(expiration),"created_by":"user_xxxxx","description":"Test description","last_used_at":null,"created_at":1753743316590,"updated_at":1753743316590}
            """
    }

    static let m2mJSON = """
        {"object":"machine_to_machine_token","id":"mt_1xxxxxxxxxxxxx","subject":"mch_1xxxxxxxxxxxxx","scopes":["mch_1xxxxxxxxxxxxx","mch_2xxxxxxxxxxxxx"],"claims":{"foo":"bar"},"token":"mt_secret_1xxxxxxxxxxxxx","revoked":false,"revocation_reason":null,"expired":false,"expiration":1753746916590,"created_at":1753743316590,"updated_at":1753743316590}
        """

    static let oauthJSON = """
        {"object":"clerk_idp_oauth_access_token","id":"oat_0ef5a7a33d87ed87ee7954c845d80450","client_id":"client_2xhFjEI5X2qWRvtV13BzSj8H6Dk","subject":"user_2xhFjEI5X2qWRvtV13BzSj8H6Dk","scopes":["read","write"],"revoked":false,"revocation_reason":null,"expired":false,"expiration":null,"created_at":1716883200000,"updated_at":1716883200000}
        """
}

/// TEST DOUBLE for the Backend API's verify endpoints, in memory: answers by token, counts calls, can wait
/// (until released) or fail. Its answers are the JSON strings above, never built with Gatehouse code.
final class FakeMachineSource: MachineTokenSource {
    struct State {
        var answers: [String: BackendAPIAnswer] = [:]
        var calls = 0
        var down = false
        var gate: [CheckedContinuation<Void, Never>] = []
        var holding = false
    }
    let state = Mutex(State())

    func answer(_ token: String, status: Int = 200, _ body: String) {
        state.withLock { $0.answers[token] = BackendAPIAnswer(status: status, body: Array(body.utf8)) }
    }

    var calls: Int { state.withLock { $0.calls } }

    func setDown(_ down: Bool) { state.withLock { $0.down = down } }

    /// Calls wait until `release()`.
    func hold() { state.withLock { $0.holding = true } }

    func release() {
        let waiting = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.holding = false
            defer { state.gate = [] }
            return state.gate
        }
        for continuation in waiting { continuation.resume() }
    }

    struct Down: Error {}

    func verify(_ type: TokenType, token: String) async throws -> BackendAPIAnswer {
        await withCheckedContinuation { continuation in
            let wait = state.withLock { state -> Bool in
                state.calls += 1
                if state.holding { state.gate.append(continuation); return true }
                return false
            }
            if !wait { continuation.resume() }
        }
        let (down, answer) = state.withLock { ($0.down, $0.answers[token]) }
        if down { throw Down() }
        return answer ?? BackendAPIAnswer(status: 404, body: Array(#"{"errors":[{"message":"not found","code":"resource_not_found"}]}"#.utf8))
    }
}
