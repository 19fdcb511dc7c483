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

    /// AsyncHTTPClient's own deadline (connect and head), inside the whole call's: a little shorter, so when
    /// it is what ends the call its precise error (e.g. "Connection refused", which it retries until then)
    /// is the one reported rather than the outer "timed out".
    static func innerDeadline(_ timeout: TimeAmount) -> TimeAmount {
        .nanoseconds(timeout.nanoseconds * 4 / 5)
    }

    struct FetchError: Error, CustomStringConvertible {
        let description: String
    }

    public func fetchJWKS() async throws -> [UInt8] {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "gatehouse")
        if let bearer { request.headers.add(name: "Authorization", value: "Bearer " + bearer) }
        let request_ = request
        let (timeout, url) = (self.timeout, self.url)
        let answer: (status: UInt, body: [UInt8]?)
        do {
            // One deadline for head and body: AsyncHTTPClient's own ends at the head.
            answer = try await Deadline.run(seconds: Double(timeout.nanoseconds) / 1e9) {
                let response = try await HTTPJWKSSource.client.execute(request_, timeout: HTTPJWKSSource.innerDeadline(timeout))
                guard response.status == .ok else { return (response.status.code, nil) }
                let body = try await response.body.collect(upTo: 256 * 1024)
                return (response.status.code, Array(body.readableBytesView))
            }
        } catch {
            throw FetchError(description: "JWKS fetch from \(url) failed: \(NetworkErrorDescription.describe(error))")
        }
        guard let body = answer.body else { throw FetchError(description: "JWKS fetch from \(url) answered \(answer.status)") }
        return body
    }
}
