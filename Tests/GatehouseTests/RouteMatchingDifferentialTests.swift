import Foundation
@testable import GatehouseCore
import Testing

/// Gatehouse's route matching against Clerk's `createRouteMatcher`, on vectors computed by running Clerk's
/// vendored path-to-regexp 6.3.0 and path normalisation under node (scripts/route-vectors/generate.mjs).
/// Each raw request-target goes through Gatehouse's canonicalisation and route table exactly as a request
/// would. A refusal (400) is counted, and allowed: it never lets a request through.
@Suite struct RouteMatchingDifferentialTests {
    struct Group {
        let pattern: String
        let regex: String?
        let error: String?
        /// (raw request-target, Clerk's answer: true, false, or nil for MalformedURLError)
        let cases: [(String, Bool?)]
    }

    static func loadVectors() throws -> [Group] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Vectors/route-matching.json")
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        return (object["groups"] as! [[String: Any]]).map { g in
            let cases = (g["cases"] as? [[Any]] ?? []).map { pair -> (String, Bool?) in
                (pair[0] as! String, pair[1] as? String == "malformed" ? nil : (pair[1] as! Bool))
            }
            return Group(pattern: g["pattern"] as! String, regex: g["regex"] as? String, error: g["error"] as? String, cases: cases)
        }
    }

    static func request(_ target: String, options: CanonicalizationOptions = CanonicalizationOptions()) throws(RequestRejection) -> CanonicalRequest {
        try CanonicalRequest(RawRequest(method: "GET", target: target, headers: HeaderList([("Host", "app.example.com")])), options: options)
    }

    /// RegExp.source writes `/` as `\/`; path-to-regexp already does for its own text, user groups may not.
    static func normalizedSource(_ s: String) -> String { s.replacingOccurrences(of: "\\/", with: "/") }

    /// Once with the default path refusals, once with every opt-out (`allow_path_semicolons`,
    /// `allow_path_encoded_semicolons`, `allow_path_encoded_percent`), so `;`, `%3B` and `%25` are matched too.
    @Test(arguments: [false, true])
    func gatehouseAgreesWithCreateRouteMatcherOnEveryVector(optOuts: Bool) throws {
        let options = CanonicalizationOptions(allowPathSemicolons: optOuts, allowPathEncodedSemicolons: optOuts, allowPathEncodedPercent: optOuts)
        var refusalReasons: [String: Int] = [:]
        let groups = try Self.loadVectors()
        var cases = 0, agreements = 0, refusals = 0, refusedMalformed = 0, refusedWhereClerkMatches = 0
        var disagreements: [String] = []
        var acceptedPatterns = 0, refusedPatterns = 0
        for group in groups {
            if let error = group.error {
                refusedPatterns += 1
                do {
                    _ = try RoutePattern(group.pattern)
                    disagreements.append("pattern \(group.pattern) accepted; path-to-regexp: \(error)")
                } catch {
                    // path-to-regexp's own messages are reproduced word for word.
                    if !group.error!.hasPrefix("Invalid regular expression") && error.message != group.error! {
                        disagreements.append("pattern \(group.pattern): message '\(error.message)' vs '\(group.error!)'")
                    }
                }
                continue
            }
            acceptedPatterns += 1
            let pattern: RoutePattern
            do { pattern = try RoutePattern(group.pattern) } catch {
                disagreements.append("pattern \(group.pattern) refused (\(error.message)); path-to-regexp accepts it")
                continue
            }
            if let regex = group.regex, Self.normalizedSource(regex) != Self.normalizedSource(pattern.javaScriptRegex) {
                disagreements.append("pattern \(group.pattern): regex \(pattern.javaScriptRegex) vs path-to-regexp \(regex)")
            }
            let table = RouteTable(rules: [RouteRule(name: "r", patterns: [pattern])], fallback: RouteRule(name: "default", patterns: []))
            for (target, expected) in group.cases {
                cases += 1
                let request: CanonicalRequest
                do { request = try Self.request(target, options: options) } catch {
                    refusals += 1
                    refusalReasons[error.message, default: 0] += 1
                    if expected == nil { refusedMalformed += 1 }
                    if expected == true { refusedWhereClerkMatches += 1 }
                    continue
                }
                // U+2028/U+2029 are refused (JavaScript's `.` skips them, so `/admin(.*)` would be stepped around).
                let upper = target.uppercased()
                if upper.contains("%E2%80%A8") || upper.contains("%E2%80%A9") {
                    disagreements.append("\(group.pattern) \(target): a line or paragraph separator was accepted")
                    continue
                }
                guard let expected else {
                    disagreements.append("\(group.pattern) \(target): Clerk refuses (malformed), Gatehouse accepted the path")
                    continue
                }
                let matched: Bool
                do { matched = try table.route(for: request).matched } catch {
                    refusals += 1
                    continue
                }
                if matched == expected { agreements += 1 } else {
                    disagreements.append("\(group.pattern) \(target) (canonical \(request.path)): Clerk \(expected), Gatehouse \(matched)")
                }
            }
        }
        print("route vectors\(optOuts ? " (opt-outs on)" : ""): \(groups.count) patterns (\(acceptedPatterns) accepted, \(refusedPatterns) refused by path-to-regexp), "
            + "\(cases) cases, \(agreements) agreements, \(refusals) refused by Gatehouse (\(refusedMalformed) malformed for Clerk too, "
            + "\(refusedWhereClerkMatches) where Clerk matches), \(disagreements.count) disagreements")
        for (reason, count) in refusalReasons.sorted(by: { $0.value > $1.value }) { print("  refused \(count)×: \(reason)") }
        for line in disagreements.prefix(80) { print("  " + line) }
        #expect(disagreements.isEmpty)
        #expect(cases > 10_000)
        #expect(agreements + refusals == cases)
    }
}
