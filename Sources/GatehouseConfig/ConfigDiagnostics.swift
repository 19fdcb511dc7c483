import Yams

/// One problem in a config file, located by file, line, column and key path.
public struct ConfigIssue: Sendable, Equatable, CustomStringConvertible {
    public let file: String
    public let line: Int?
    public let column: Int?
    public let keyPath: String
    public let message: String

    public init(file: String, line: Int?, column: Int?, keyPath: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.keyPath = keyPath
        self.message = message
    }

    public var description: String {
        var location = file
        if let line { location += ":\(line)" }
        if let column { location += ":\(column)" }
        return keyPath.isEmpty ? "\(location): \(message)" : "\(location): \(keyPath): \(message)"
    }
}

/// Thrown when a config cannot be loaded; lists every problem found, not just the first.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public let issues: [ConfigIssue]
    public init(issues: [ConfigIssue]) { self.issues = issues }
    public var description: String { issues.map(\.description).joined(separator: "\n") }
}

/// Walks a YAML node tree with typed accessors, collecting located errors instead of stopping at the first.
final class ConfigReader {
    let file: String
    private let environment: [String: String]
    private(set) var issues: [ConfigIssue] = []

    init(file: String, environment: [String: String]) {
        self.file = file
        self.environment = environment
    }

    func fail(_ path: String, _ node: Node?, _ message: String) {
        let mark = node?.mark
        issues.append(ConfigIssue(file: file, line: mark?.line, column: mark?.column, keyPath: path, message: message))
    }

    /// The mapping's entries by key, reporting unknown keys (typos must not be silently ignored).
    func mapping(_ node: Node, path: String, allowed: Set<String>) -> [String: Node]? {
        guard case .mapping(let mapping) = node else {
            fail(path, node, "expected a mapping")
            return nil
        }
        var result: [String: Node] = [:]
        for (keyNode, value) in mapping {
            guard let key = keyNode.scalar?.string else {
                fail(path, keyNode, "keys must be strings")
                continue
            }
            let childPath = path.isEmpty ? key : path + "." + key
            if !allowed.contains(key) {
                let hint = allowed.min { editDistance($0, key) < editDistance($1, key) }
                let suggestion = hint.map { editDistance($0, key) <= 3 ? " (did you mean '\($0)'?)" : "" } ?? ""
                fail(childPath, keyNode, "unknown key\(suggestion)")
                continue
            }
            result[key] = value
        }
        return result
    }

    /// A scalar as a string, with `${VAR}` / `${VAR:-default}` expanded. Empty results count as absent.
    func string(_ node: Node?, path: String) -> String? {
        guard let node else { return nil }
        guard case .scalar(let scalar) = node else {
            fail(path, node, "expected a string")
            return nil
        }
        if scalar.style == .plain && ["~", "null", "Null", "NULL", ""].contains(scalar.string) {
            return nil
        }
        guard let expanded = expand(scalar.string, path: path, node: node) else { return nil }
        return expanded.isEmpty ? nil : expanded
    }

    func bool(_ node: Node?, path: String) -> Bool? {
        guard let text = string(node, path: path) else { return nil }
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            fail(path, node, "expected true or false, got '\(text)'")
            return nil
        }
    }

    /// A string or a list of strings.
    func strings(_ node: Node?, path: String) -> [String]? {
        guard let node else { return nil }
        if case .sequence(let sequence) = node {
            var result: [String] = []
            for (i, element) in sequence.enumerated() {
                if let s = string(element, path: "\(path)[\(i)]") { result.append(s) }
                else if case .scalar = element { fail("\(path)[\(i)]", element, "empty value") }
            }
            return result
        }
        return string(node, path: path).map { [$0] }
    }

    /// A whole number within `range`; `hint` is added to the error (e.g. what 0 means).
    func integer(_ node: Node?, path: String, in range: ClosedRange<Int>, hint: String = "") -> Int? {
        guard let text = string(node, path: path) else { return nil }
        guard let value = Int(text), range.contains(value) else {
            fail(path, node, "expected a whole number in \(range.lowerBound)...\(range.upperBound)" + hint)
            return nil
        }
        return value
    }

    /// Durations: `500ms`, `5s`, `2m`, `1h`, or a bare number of seconds.
    func duration(_ node: Node?, path: String) -> Double? {
        guard let text = string(node, path: path) else { return nil }
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            if let value = Double(text.dropLast(suffix.count)), value >= 0, value.isFinite { return value * factor }
        }
        if let value = Double(text), value >= 0, value.isFinite { return value }
        fail(path, node, "expected a duration such as 500ms, 5s, 2m or 1h, got '\(text)'")
        return nil
    }

    private func expand(_ text: String, path: String, node: Node) -> String? {
        guard text.contains("$") else { return text }
        var out = ""
        var rest = Substring(text)
        while let dollar = rest.firstIndex(of: "$") {
            out += rest[..<dollar]
            let after = rest[rest.index(after: dollar)...]
            if after.hasPrefix("$") {
                out += "$"
                rest = after.dropFirst()
                continue
            }
            guard after.hasPrefix("{"), let close = after.firstIndex(of: "}") else {
                out += "$"
                rest = after
                continue
            }
            let body = after[after.index(after: after.startIndex)..<close]
            rest = after[after.index(after: close)...]
            var name = body
            var fallback: Substring? = nil
            if let sep = body.firstRange(of: ":-") {
                name = body[..<sep.lowerBound]
                fallback = body[sep.upperBound...]
            }
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                fail(path, node, "invalid variable reference '${\(body)}'")
                return nil
            }
            if let value = environment[String(name)], !value.isEmpty {
                out += value
            } else if let fallback {
                out += fallback
            } else {
                fail(path, node, "environment variable \(name) is not set (write ${\(name):-default} for a default)")
                return nil
            }
        }
        out += rest
        return out
    }
}

func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a), y = Array(b)
    if x.isEmpty { return y.count }
    if y.isEmpty { return x.count }
    var previous = Array(0...y.count)
    for i in 1...x.count {
        var current = [i] + Array(repeating: 0, count: y.count)
        for j in 1...y.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[y.count]
}
