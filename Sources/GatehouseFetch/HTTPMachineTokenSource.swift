import AsyncHTTPClient
import GatehouseAuth
import GatehouseCore
import NIOCore
import NIOHTTP1

/// Verifies opaque machine tokens at the Backend API as Clerk's SDK does: `POST {api}/m2m_tokens/verify`,
/// `/api_keys/verify` or `/oauth_applications/access_tokens/verify` (no `/v1`, the SDK's bapi-proxy paths),
/// a JSON body with the token, `Clerk-API-Version`, and `Authorization: Bearer` the secret key (for M2M the
/// machine secret key when configured). Time (head and body together) and body size bounded; neither the token nor a key appears in errors.
public struct HTTPMachineTokenSource: MachineTokenSource {
    let apiURL: String
    let secretKey: String?
    let machineSecretKey: String?
    let timeout: TimeAmount

    public init(apiURL: String, secretKey: String?, machineSecretKey: String?, timeout: Double = 3) {
        var base = apiURL
        while base.hasSuffix("/") { base.removeLast() }
        self.apiURL = base
        self.secretKey = secretKey
        self.machineSecretKey = machineSecretKey
        self.timeout = .milliseconds(Int64(timeout * 1000))
    }

    struct VerifyError: Error, CustomStringConvertible {
        let description: String
    }

    public func verify(_ type: TokenType, token: String) async throws -> BackendAPIAnswer {
        guard let path = MachineTokenResponse.path(for: type) else { throw VerifyError(description: "\(type.rawValue) is not an opaque token type") }
        guard let key = type == .m2mToken ? machineSecretKey ?? secretKey : secretKey else {
            throw VerifyError(description: "no key to verify \(type.rawValue) tokens with")
        }
        var request = HTTPClientRequest(url: apiURL + path)
        request.method = .POST
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "gatehouse")
        request.headers.add(name: "Clerk-API-Version", value: "2026-05-12")
        request.headers.add(name: "Authorization", value: "Bearer " + key)
        let body = JSONValue.object(JSONObject([(MachineTokenResponse.bodyKey(for: type), .string(token))])).serialized()
        request.body = .bytes(ByteBuffer(string: body))
        do {
            let answer = try await HTTPJWKSSource.fetch(request, timeout: timeout, maxBody: 64 * 1024)
            return BackendAPIAnswer(status: Int(answer.status), body: answer.body ?? [])
        } catch {
            throw VerifyError(description: "token verification request failed: \(NetworkErrorDescription.describe(error))")
        }
    }
}
