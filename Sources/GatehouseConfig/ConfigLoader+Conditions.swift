import GatehouseCore
import Yams

extension ConfigLoader {
    static let conditionKeys: Set<String> = ["headers", "server_action"]
    static let headerConditionHint = "expected present, absent, { equals: … }, { one_of: […] } or { contains: … }"

    /// `when: { headers: { <name>: present | absent | {equals|one_of|contains: …} }, server_action: bool }`.
    static func parseConditions(_ node: Node, path: String, reader: ConfigReader) -> [RequestCondition] {
        guard let map = reader.mapping(node, path: path, allowed: conditionKeys) else { return [] }
        if case .mapping(let raw) = node, raw.isEmpty { reader.fail(path, node, "expected headers or server_action") }
        var conditions: [RequestCondition] = []
        if let action = map["server_action"], let wanted = reader.bool(action, path: path + ".server_action") {
            conditions.append(.serverAction(wanted))
        }
        guard let headersNode = map["headers"] else { return conditions }
        guard case .mapping(let headers) = headersNode, !headers.isEmpty else {
            reader.fail(path + ".headers", headersNode, "expected a mapping of header name to condition, e.g. { next-action: present }")
            return conditions
        }
        var seen: Set<String> = []
        for (keyNode, valueNode) in headers {
            guard let name = keyNode.scalar?.string, isValidHeaderName(name) else {
                reader.fail(path + ".headers", keyNode, "'\(keyNode.scalar?.string ?? "")' is not a header name (letters, digits and '-')")
                continue
            }
            let lower = name.lowercased()
            let keyPath = path + ".headers." + name
            guard seen.insert(lower).inserted else {
                reader.fail(keyPath, keyNode, "header named twice (names are case-insensitive)")
                continue
            }
            if let condition = parseHeaderCondition(valueNode, path: keyPath, reader: reader) {
                conditions.append(.header(name: lower, condition))
            }
        }
        return conditions
    }

    private static func parseHeaderCondition(_ node: Node, path: String, reader: ConfigReader) -> HeaderCondition? {
        switch node {
        case .scalar(let scalar):
            switch scalar.string {
            case "present": return .present
            case "absent": return .absent
            default:
                reader.fail(path, node, headerConditionHint + ", got '\(scalar.string.prefix(50))'")
                return nil
            }
        case .mapping:
            guard let map = reader.mapping(node, path: path, allowed: ["equals", "one_of", "contains"]), map.count == 1, let (kind, value) = map.first else {
                reader.fail(path, node, headerConditionHint)
                return nil
            }
            switch kind {
            case "one_of":
                guard case .sequence = value, let options = reader.strings(value, path: path + ".one_of"), !options.isEmpty else {
                    reader.fail(path + ".one_of", value, "expected a non-empty list of values")
                    return nil
                }
                return .oneOf(options)
            default:
                guard case .scalar = value, let text = reader.string(value, path: path + "." + kind) else {
                    reader.fail(path + "." + kind, value, "expected a non-empty value")
                    return nil
                }
                return kind == "equals" ? .oneOf([text]) : .contains(text)
            }
        default:
            reader.fail(path, node, headerConditionHint)
            return nil
        }
    }
}
