import GatehouseCore
import Yams

extension ConfigLoader {
    /// `params: { <parameter>: user_id | session_id | org_id | org_slug | claims.<path> }`. `patterns` is nil
    /// when one of the rule's patterns did not parse (already reported; parameters are not checked then).
    static func parseOwnership(_ node: Node, path: String, patterns: [RoutePattern]?, reader: ConfigReader) -> OwnershipRequirements? {
        guard case .mapping(let mapping) = node, !mapping.isEmpty else {
            reader.fail(path, node, "expected a mapping of route parameter to identity value, e.g. { userId: user_id }")
            return nil
        }
        var requirements: [ParameterRequirement] = []
        var ok = true
        for (keyNode, valueNode) in mapping {
            guard let parameter = keyNode.scalar?.string, !parameter.isEmpty else {
                reader.fail(path, keyNode, "parameter names are strings")
                ok = false
                continue
            }
            let valuePath = path + "." + parameter
            guard case .scalar(let scalar) = valueNode, let field = IdentityField(configName: scalar.string) else {
                reader.fail(valuePath, valueNode, "expected user_id, session_id, org_id, org_slug or claims.<dotted path>")
                ok = false
                continue
            }
            requirements.append(ParameterRequirement(parameter: parameter, field: field))
        }
        guard ok, let patterns else { return nil }
        do {
            return try OwnershipRequirements(requirements: requirements, patterns: patterns)
        } catch {
            reader.fail(path, node, error.message)
            return nil
        }
    }
}
