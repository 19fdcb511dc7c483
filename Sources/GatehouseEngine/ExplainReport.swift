import GatehouseAuth
import GatehouseCore

/// The JSON object `gatehouse explain` prints. Secrets never appear: the token, cookies and the
/// `Authorization` header are shown redacted.
public enum ExplainReport {
    static let redactedHeaders: Set<String> = ["authorization", "cookie", "proxy-authorization", "clerk-secret-key", "set-cookie", normalizedHeaderName(IdentityHeaderPolicy.token), normalizedHeaderName(IdentityHeaderPolicy.assertion)]

    public static func json(for evaluation: Evaluation) -> JSONValue {
        var root = JSONObject()
        if let request = evaluation.request {
            root.set("request", .object(JSONObject([
                ("method", .string(request.method)),
                ("path", .string(request.path.value)),
                ("query", request.query.map(JSONValue.string) ?? .null),
                ("host", request.host.map(JSONValue.string) ?? .null),
            ])))
        } else {
            root.set("request", .null)
        }
        if let route = evaluation.route {
            root.set("route", .object(JSONObject([
                ("name", .string(route.name)),
                ("access", .string(route.access.rawValue)),
                ("matched", .bool(evaluation.routeMatched)),
            ] + ownershipJSON(route: route, evaluation: evaluation))))
        } else {
            root.set("route", .null)
        }
        if let auth = evaluation.auth {
            let session = auth.session
            func optional(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
            root.set("auth", .object(JSONObject([
                ("status", .string(auth.status.rawValue)),
                ("reason", optional(auth.reason)),
                ("message", optional(auth.message)),
                ("tokenCarrier", optional(auth.carrier?.rawValue)),
                ("tokenType", optional(auth.tokenType?.rawValue)),
                ("machine", MachineExplain.json(auth.machineIdentity)),
                ("userId", optional(session?.userId)),
                ("sessionId", optional(session?.sessionId)),
                ("sessionStatus", optional(session?.sessionStatus)),
                ("orgId", optional(session?.orgId)),
                ("orgRole", optional(session?.orgRole)),
                ("orgSlug", optional(session?.orgSlug)),
                ("orgPermissions", session.map { .array($0.orgPermissions.map(JSONValue.string)) } ?? .null),
                ("claims", session.map { .object($0.claims) } ?? .null),
            ])))
        } else {
            root.set("auth", .null)
        }
        let decision = evaluation.decision
        var decisionJSON = JSONObject([
            ("action", .string(decision.action.rawValue)),
            ("status", .number(JSONNumber(decision.status))),
        ])
        if let location = decision.location { decisionJSON.set("location", .string(redactingTokens(in: location))) }
        decisionJSON.set("explanation", .string(decision.explanation))
        if decision.action != .proxy || !decision.responseHeaders.isEmpty {
            decisionJSON.set("headers", headersJSON(decision.responseHeaders))
            if let body = decision.body, let parsed = try? JSONParser.parse(body) { decisionJSON.set("body", parsed) }
        }
        root.set("decision", .object(decisionJSON))
        if let upstream = decision.upstreamHeaders {
            root.set("upstream", .object(JSONObject([("headers", headersJSON(upstream))])))
        } else {
            root.set("upstream", .null)
        }
        return .object(root)
    }

    /// Query parameters that carry tokens in Clerk's redirects (the handshake URL sends the session token).
    static let tokenParameters: Set<String> = ["__session", "__clerk_db_jwt", "__clerk_handshake", "__clerk_handshake_nonce"]

    static func redactingTokens(in url: String) -> String {
        guard let q = url.firstIndex(of: "?") else { return url }
        let pieces = url[url.index(after: q)...].split(separator: "&", omittingEmptySubsequences: false).map { piece -> String in
            let name = piece.prefix { $0 != "=" }
            return tokenParameters.contains(String(name)) ? name + "=[redacted]" : String(piece)
        }
        return url[...q] + pieces.joined(separator: "&")
    }

    static func headersJSON(_ headers: HeaderList) -> JSONValue {
        .array(headers.fields.map { field in
            let name = normalizedHeaderName(field.name)
            var value = redactedHeaders.contains(name) ? "[redacted]" : field.value
            if name == "location" { value = redactingTokens(in: value) }
            if name == "set-cookie" {
                // The cookie's name and attributes say what happens; its value may be a session token.
                let cookieName = field.value.prefix { $0 != "=" && $0 != ";" }
                let attributes = field.value.firstIndex(of: ";").map { String(field.value[$0...]) } ?? ""
                value = cookieName + "=[redacted]" + attributes
            }
            return .array([.string(field.name), .string(value)])
        })
    }
}
