import GatehouseAuth
import GatehouseConfig
import GatehouseCore

/// Clerk's Frontend API through the app's own origin (clerk-protocol.md §9): `/__clerk/<rest>?q` is sent to
/// `<frontend api>/<rest>?q` with the `Host` the Frontend API expects, `Clerk-Proxy-Url` saying where the proxy
/// lives and `Clerk-Secret-Key` proving the proxy is the instance's own. These requests carry no identity.
enum FrontendAPIProxy {
    static let routeName = "clerk-frontend-api"
    static let route = RouteRule(name: routeName, patterns: [], access: .public, csrf: false)
    /// Headers a client must never choose: they vouch for the proxy to the Frontend API.
    static let reserved: Set<String> = ["host", "clerk-proxy-url", "clerk-secret-key"]

    static func evaluate(_ request: CanonicalRequest, proxy: FrontendAPIProxySettings, settings: GatehouseSettings) -> Evaluation? {
        let path = request.path.value
        guard path == proxy.path || path.hasPrefix(proxy.path + "/") else { return nil }
        guard let origin = settings.browser.origin(of: request) else {
            return Evaluation(request: request, route: route, routeMatched: true, auth: nil,
                              decision: .reject(RequestRejection("a Host header is required for the Frontend API proxy")))
        }
        var rest = String(path.dropFirst(proxy.path.count))
        if rest.isEmpty { rest = "/" }
        var headers = HopByHop.removing(from: request.headers)
        // Everything proxy mode strips goes too (Gatehouse's identity prefixes, claim headers, `strip`, other auth
        // proxies' identity headers), by the same rule: the Frontend API request carries no identity, and an
        // app's own handler behind the same origin must not learn one. Plus the headers vouching for the proxy.
        headers.removeAll { name in reserved.contains(normalizedHeaderName(name)) || settings.identity.isReserved(name) }
        headers.append("Host", proxy.host)
        headers.append("Clerk-Proxy-Url", origin + proxy.path)
        if let secretKey = settings.secretKey { headers.append("Clerk-Secret-Key", secretKey) }
        var decision = Decision.proxy(upstreamHeaders: headers, explanation: "Clerk Frontend API proxy to \(proxy.target)")
        decision.upstreamOverride = UpstreamOverride(
            target: proxy.target, requestTarget: rest + (request.query.map { "?" + $0 } ?? ""),
            locationPrefix: proxy.target.description, publicPrefix: origin + proxy.path)
        return Evaluation(request: request, route: route, routeMatched: true, auth: nil, decision: decision)
    }
}
