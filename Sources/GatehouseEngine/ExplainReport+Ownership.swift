import GatehouseAuth
import GatehouseCore

extension ExplainReport {
    /// `("when", …)` for a rule with conditions, and `("parameters", …)` for a rule with ownership requirements:
    /// the pattern that gave the values, and each comparison (`expected` is null without a session).
    static func ownershipJSON(route: RouteRule, evaluation: Evaluation) -> [(key: String, value: JSONValue)] {
        let when: [(key: String, value: JSONValue)] = route.conditions.isEmpty ? [] : [("when", .array(route.conditions.map { .string($0.description) }))]
        return when + parametersJSON(route: route, evaluation: evaluation)
    }

    private static func parametersJSON(route: RouteRule, evaluation: Evaluation) -> [(key: String, value: JSONValue)] {
        guard let ownership = route.requirements.ownership, let request = evaluation.request else { return [] }
        switch ownership.check(path: request.path, auth: evaluation.auth?.activeSession) {
        case .failed(let reason):
            return [("parameters", .object(JSONObject([("error", .string(reason))])))]
        case .compared(let pattern, let comparisons):
            let list = comparisons.map { c in
                JSONValue.object(JSONObject([
                    ("parameter", .string(c.parameter)),
                    ("value", c.value.map(JSONValue.string) ?? .null),
                    ("mustEqual", .string(c.field.description)),
                    ("expected", c.expected.map(JSONValue.string) ?? .null),
                    ("holds", .bool(c.holds)),
                ]))
            }
            return [("parameters", .object(JSONObject([("pattern", .string(pattern)), ("comparisons", .array(list))])))]
        }
    }
}
