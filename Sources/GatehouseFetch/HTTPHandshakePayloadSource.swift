import AsyncHTTPClient
import GatehouseAuth
import GatehouseCore
import NIOCore
import NIOHTTP1

/// Exchanges a handshake nonce for its cookie directives at the Backend API
/// (`GET {api}/v1/clients/handshake_payload?nonce=…`, `Authorization: Bearer <secret key>`), as Clerk's backend
/// does. Redirects refused, body bounded, time (head and body together) bounded; the secret key never appears in errors.
public struct HTTPHandshakePayloadSource: HandshakePayloadSource {
    let apiURL: String
    let secretKey: String
    let timeout: TimeAmount

    public init(apiURL: String, secretKey: String, timeout: TimeAmount = .seconds(5)) {
        var base = apiURL
        while base.hasSuffix("/") { base.removeLast() }
        self.apiURL = base
        self.secretKey = secretKey
        self.timeout = timeout
    }

    struct PayloadError: Error, CustomStringConvertible {
        let description: String
    }

    public func directives(nonce: String) async throws -> [String] {
        var request = HTTPClientRequest(url: apiURL + "/v1/clients/handshake_payload?nonce=" + URLEncoding.formEncode(nonce))
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "gatehouse")
        request.headers.add(name: "Clerk-API-Version", value: "2026-05-12")
        request.headers.add(name: "Authorization", value: "Bearer " + secretKey)
        let answer: (status: UInt, body: [UInt8]?)
        do {
            answer = try await HTTPJWKSSource.fetch(request, timeout: timeout, maxBody: 64 * 1024, accept: { $0 == 200 })
        } catch {
            throw PayloadError(description: "handshake payload request failed: \(NetworkErrorDescription.describe(error))")
        }
        guard let body = answer.body else { throw PayloadError(description: "handshake payload request answered \(answer.status)") }
        guard case .object(let object) = try JSONParser.parse(body),
            case .array(let values)? = object["directives"]
        else { throw PayloadError(description: "handshake payload has no directives array") }
        return values.compactMap(\.stringValue)
    }
}
