import GatehouseAuth
import GatehouseConfig
import GatehouseCore

extension Gatekeeper {
    /// With `identity_assertion:` configured, a proxied request carries `X-Gatehouse-Assertion`, signed for
    /// this request and its upstream's audience. The client's own copy is already gone (reserved prefix).
    func signed(_ decision: consuming Decision, request: CanonicalRequest, route: RouteRule, auth: AuthResult, now: Double) -> Decision {
        guard let issuer = settings.identityAssertion, decision.action == .proxy, var headers = decision.upstream,
            decision.upstreamOverride == nil
        else { return decision }
        let upstream = route.upstream ?? settings.upstream
        let session = auth.activeSession
        let binding = IdentityAssertionIssuer.Binding(
            session: session, token: session == nil ? nil : auth.verifiedToken, route: route.name, audience: issuer.settings.audience(for: upstream),
            method: request.method, host: request.host, path: request.path.value, machine: session == nil ? auth.machineIdentity : nil)
        headers.append(IdentityHeaderPolicy.assertion, issuer.assertion(for: binding, now: now))
        var copy = decision
        copy.upstream = headers
        return copy
    }
}

extension Gatekeeper {
    /// `identity_assertion.jwks_path` on the public listener: the JWKS, for GET and HEAD, on any host.
    func assertionJWKSResponse(_ request: CanonicalRequest) -> Decision? {
        guard let issuer = settings.identityAssertion, let path = issuer.settings.jwksPath, request.path.value == path,
            request.method == "GET" || request.method == "HEAD"
        else { return nil }
        // Short caching: verifiers pick up a rotated key within a minute (keep the previous key published longer).
        var decision = Decision.deny(status: 200, error: "", message: "", explanation: "Gatehouse's identity assertion keys (\(path))")
        decision.responseHeaders = HeaderList([("Content-Type", "application/json"), ("Cache-Control", "public, max-age=60")])
        decision.body = issuer.jwks
        return decision
    }
}
