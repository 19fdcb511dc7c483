import AsyncHTTPClient
import GatehouseAuth
import NIOCore
import NIOHTTP1

/// Fetches a JWKS over HTTP(S) with async-http-client: redirects refused (a secret key must not follow a
/// redirect elsewhere), body bounded to 256 KiB, time (head and body together) bounded by `timeout`.
/// The secret key, when present, is sent as a bearer token and never appears in `description` or errors.
public struct HTTPJWKSSource: JWKSSource {
    public let url: String
    let bearer: String?
    let timeout: TimeAmount
    public let description: String

    public init(url: String, bearer: String?, timeout: TimeAmount = .seconds(5)) {
        self.url = url
        self.bearer = bearer
        self.timeout = timeout
        self.description = url + (bearer == nil ? "" : " (with secret key)")
    }

    /// One client for the process lifetime (it is never shut down, so it must never be deinitialised).
    static let client = HTTPClient(
        eventLoopGroupProvider: .singleton,
        configuration: HTTPClient.Configuration(redirectConfiguration: .disallow))

    /// One deadline for the whole call: AsyncHTTPClient's (connect and head; it reports precise errors such
    /// as "Connection refused", which it retries until then), and what is left of it for the body, which
    /// AsyncHTTPClient does not bound. `body` nil when the status is not `accept`ed (the body is not read).
    static func fetch(_ request: HTTPClientRequest, timeout: TimeAmount, maxBody: Int,
                      accept: @escaping @Sendable (UInt) -> Bool = { _ in true }) async throws -> (status: UInt, body: [UInt8]?) {
        let deadline = NIODeadline.now() + timeout
        let response = try await client.execute(request, deadline: deadline)
        let status = response.status.code
        guard accept(status) else { return (status, nil) }
        let left = Double(max(0, (deadline - NIODeadline.now()).nanoseconds)) / 1e9
        let body = response.body
        let bytes = try await Deadline.run(seconds: left) { try await body.collect(upTo: maxBody) }
        return (status, Array(bytes.readableBytesView))
    }

    struct FetchError: Error, CustomStringConvertible {
        let description: String
    }

    public func fetchJWKS() async throws -> [UInt8] {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "gatehouse")
        if let bearer { request.headers.add(name: "Authorization", value: "Bearer " + bearer) }
        let answer: (status: UInt, body: [UInt8]?)
        do {
            answer = try await HTTPJWKSSource.fetch(request, timeout: timeout, maxBody: 256 * 1024, accept: { $0 == 200 })
        } catch {
            throw FetchError(description: "JWKS fetch from \(url) failed: \(NetworkErrorDescription.describe(error))")
        }
        guard let body = answer.body else { throw FetchError(description: "JWKS fetch from \(url) answered \(answer.status)") }
        return body
    }
}
