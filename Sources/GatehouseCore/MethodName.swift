/// Request method names. RFC 9110 makes them case-sensitive, but upstreams differ: some treat `get` as GET,
/// others as an unknown method. Gatehouse must not let one spelling skip a rule written for another, so
///
/// - a case variant of a standard method (`get`, `Post`, `connect`) is refused with 400 before routing
///   (`CanonicalRequest`);
/// - rule `methods:` match case-insensitively, so an extension method (`purge`, `Purge`) meets a
///   `methods: [PURGE]` rule whatever its spelling. The method is forwarded unchanged.
public enum MethodName {
    /// The registered methods (RFC 9110 §9, RFC 5789).
    public static let standard: [String] = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]

    /// The standard method `method` spells case-insensitively, if any (`"get"` → `"GET"`).
    public static func standardSpelling(of method: String) -> String? {
        guard method.utf8.count <= 7 else { return nil }
        let upper = uppercased(method)
        return standard.contains(upper) ? upper : nil
    }

    /// Does `method` equal one of `candidates` (upper case) ignoring ASCII case?
    public static func matches(_ method: String, anyOf candidates: [String]) -> Bool {
        if candidates.contains(method) { return true }
        guard method.utf8.contains(where: { $0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z") }) else { return false }
        return candidates.contains(uppercased(method))
    }

    static func uppercased(_ text: String) -> String {
        String(decoding: text.utf8.map { $0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z") ? $0 - 32 : $0 }, as: UTF8.self)
    }
}
