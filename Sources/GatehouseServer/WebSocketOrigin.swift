import GatehouseAuth
import GatehouseConfig
import GatehouseCore
import GatehouseEngine

/// The one origin rule for WebSocket upgrades, used by both engines.
extension WebSocketUpgrade {
    /// Cross-site WebSocket hijacking: a browser attaches cookies to a socket opened by any site, so a cookie
    /// session's upgrade from an origin that is not the app's own is refused (403). Nil: allowed.
    static func crossSiteRefusal(_ evaluation: Evaluation, request: CanonicalRequest, origin: String?, snapshot: GatewaySnapshot) -> Decision? {
        guard evaluation.auth?.carrier == .cookie, let origin,
            !snapshot.gatekeeper.isAllowedOrigin(origin, own: [request.host.map { request.scheme + "://" + $0 }, snapshot.settings.publicOrigin])
        else { return nil }
        return .deny(status: 403, error: "forbidden", message: "Cross-origin WebSocket requests with cookies are refused.",
                     explanation: "WebSocket upgrade from foreign origin \(origin) with a cookie session")
    }
}
