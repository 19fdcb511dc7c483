import GatehouseCore

/// Reads the original request from the headers nginx `auth_request`, Traefik ForwardAuth and Caddy
/// `forward_auth` send. Only ever consulted for trusted proxies.
enum ForwardAuth {
    struct Original {
        let method: String
        let uri: String
    }

    static func originalRequest(_ headers: HeaderList) -> Original? {
        guard headers.values("x-forwarded-uri").count <= 1, headers.values("x-original-uri").count <= 1,
            headers.values("x-forwarded-method").count <= 1, headers.values("x-original-method").count <= 1
        else { return nil }
        guard let uri = headers.first("x-forwarded-uri") ?? headers.first("x-original-uri"), !uri.isEmpty else { return nil }
        let method = headers.first("x-forwarded-method") ?? headers.first("x-original-method") ?? "GET"
        return Original(method: method, uri: uri)
    }
}
