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

    /// Durations: `500ms`, `5s`, `2m`, `1h`, `1d`, or a bare number of seconds (digits with an optional
    /// fraction: no sign, exponent or hex, so `1e30s` is an error rather than a value that traps when it
    /// becomes a timer). The value must lie in `range` (seconds); `hint` is added to the error.
    func duration(_ node: Node?, path: String, in range: ClosedRange<Double>, hint: String = "") -> Double? {
        guard let text = string(node, path: path) else { return nil }
        let expected = "expected a duration in \(formatDuration(range.lowerBound))...\(formatDuration(range.upperBound))"
        guard let value = ConfigReader.parseDuration(text) else {
            fail(path, node, expected + " such as 500ms, 5s, 2m or 1h, got '\(text.prefix(40))'" + hint)
            return nil
        }
        guard range.contains(value) else {
            fail(path, node, expected + ", got '\(text.prefix(40))'" + hint)
            return nil
        }
        return value
    }

    static func parseDuration(_ text: String) -> Double? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]
        var number = Substring(text)
        var factor = 1.0
        for (suffix, unit) in units where text.hasSuffix(suffix) {
            number = text.dropLast(suffix.count)
            factor = unit
            break
        }
        let parts = number.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let isDigits = { (part: Substring) in !part.isEmpty && part.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } }
        // At most 12 integer digits: every accepted value stays far from what a timer conversion can hold.
        guard parts.count <= 2, isDigits(parts[0]), parts[0].count <= 12, parts.count == 1 || isDigits(parts[1]),
            let value = Double(number)
        else { return nil }
        return value * factor
    }

    private func expand(_ text: String, path: String, node: Node) -> String? {
        guard text.contains("$") else { return text }
        var failed = false
        let result = expandReferences(Substring(text), path: path, node: node, depth: 1, failed: &failed)
        return failed ? nil : result
    }

    /// How deep defaults may nest references (`${A:-${B:-x}}` is 2): each level recurses once.
    static let maxReferenceNesting = 8

    /// `${VAR}`, `${VAR:-default}` (the default may itself hold references, e.g.
    /// `${CLERK_PUBLISHABLE_KEY:-${NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY:-pk_…}}`) and `$$` for a literal `$`.
    /// `depth` is the nesting level of the references in `text` (1 at the top).
    private func expandReferences(_ text: Substring, path: String, node: Node, depth: Int, failed: inout Bool) -> String {
        var out = ""
        var rest = text
        while !failed, let dollar = rest.firstIndex(of: "$") {
            out += rest[..<dollar]
            let after = rest[rest.index(after: dollar)...]
            if after.hasPrefix("$") {
                out += "$"
                rest = after.dropFirst()
                continue
            }
            guard after.hasPrefix("{"), let close = ConfigReader.matchingBrace(after) else {
                out += "$"
                rest = after
                continue
            }
            if depth > ConfigReader.maxReferenceNesting {
                fail(path, node, "variable references nested more than \(ConfigReader.maxReferenceNesting) deep in defaults (${A:-${B:-…}})")
                failed = true
                break
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
                failed = true
                break
            }
            if let value = environment[String(name)], !value.isEmpty {
                out += value
            } else if let fallback {
                out += expandReferences(fallback, path: path, node: node, depth: depth + 1, failed: &failed)
            } else {
                fail(path, node, "environment variable \(name) is not set (write ${\(name):-default} for a default)")
                failed = true
            }
        }
        out += rest
        return out
    }

    /// The `}` closing the `{` that `text` starts with, counting nested `${…}`.
    private static func matchingBrace(_ text: Substring) -> Substring.Index? {
        var depth = 0
        for index in text.indices {
            switch text[index] {
            case "{": depth += 1
            case "}":
                depth -= 1
                if depth == 0 { return index }
            default: break
            }
        }
        return nil
    }
}

/// A duration as error messages show it: 0.1 → "100ms", 300 → "5m", 86400 → "24h", 2592000 → "30d".
func formatDuration(_ seconds: Double) -> String {
    if seconds == 0 { return "0s" }
    if seconds < 1 { return "\(Int((seconds * 1000).rounded()))ms" }
    if seconds >= 3600, seconds.truncatingRemainder(dividingBy: 3600) == 0 {
        let hours = Int(seconds / 3600)
        return hours > 24 && hours % 24 == 0 ? "\(hours / 24)d" : "\(hours)h"
    }
    if seconds >= 60, seconds.truncatingRemainder(dividingBy: 60) == 0 { return "\(Int(seconds / 60))m" }
    return seconds == seconds.rounded() ? "\(Int(seconds))s" : "\(seconds)s"
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
