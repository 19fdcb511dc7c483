// Fuzz target: RoutePattern compilation and matching. Any pattern either compiles or is refused with a
// message; matching is total and fast (libFuzzer's -timeout catches blow-ups). Checks that hold for any
// engine: matching ignores ASCII case, one trailing '/' is optional, `P(.*)` ≡ `P(.*)(.*)` (the first is the
// literal-prefix shortcut, the second the general matcher), and a plain literal matches exactly itself.
import GatehouseCore

private func asciiUppercased(_ s: String) -> String {
    String(decoding: s.utf8.map { $0 >= 0x61 && $0 <= 0x7A ? $0 - 0x20 : $0 }, as: UTF8.self)
}

private func asciiLowercased(_ s: String) -> String {
    String(decoding: s.utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0 }, as: UTF8.self)
}

/// True for patterns made only of characters that are literal in every position and already canonical.
private func isPlainLiteral(_ source: String) -> Bool {
    guard let canonical = try? CanonicalPath(parsing: source), canonical.value == source else { return false }
    return !source.utf8.contains { ":()\\*+?{}%".utf8.contains($0) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRoutePattern(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let source = String(fuzzBytes: input.line())
    let pattern: RoutePattern
    do {
        pattern = try RoutePattern(source)
    } catch {
        require(!error.message.isEmpty, "pattern \(source.debugDescription) refused without a message")
        return 0
    }
    let wildcardTwin = source.hasSuffix("(.*)") ? try? RoutePattern(source + "(.*)") : nil
    let plain = isPlainLiteral(source)

    var paths = 0
    while !input.isAtEnd, paths < 8 {
        let raw = String(fuzzBytes: input.line())
        guard let path = try? CanonicalPath(parsing: raw) else { continue }
        paths += 1
        // A match that hits PCRE2's limits throws (the route table refuses such requests): nothing to compare.
        guard let matched = try? pattern.matches(path) else { continue }

        if let upper = try? CanonicalPath(parsing: asciiUppercased(path.value)) {
            require((try? pattern.matches(upper)) ?? matched == matched, "\(source) matches \(path) and \(upper) differently (case)")
        }
        // Not for paths holding `?` or `#` (never in a real request's path): path-to-regexp's optional trailing
        // delimiter is any of `/#?`, so `/a?` matches `/:x` by its `?` and `/a?/` then has two.
        if matched, !path.value.hasSuffix("/"), !path.value.utf8.contains(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }),
            let slashed = try? CanonicalPath(parsing: path.value + "/") {
            require((try? pattern.matches(slashed)) ?? true, "\(source) matches \(path) but not \(slashed)")
        }
        if let twin = wildcardTwin {
            require((try? twin.matches(path)) ?? matched == matched, "\(source) and \(source)(.*) disagree on \(path)")
        }
        // Paths with escapes are left out: whether `%3C` in a path meets `<` in a pattern depends on the
        // decoding the engine applies (Clerk matches the decodeURI form).
        if plain, !path.value.utf8.contains(UInt8(ascii: "%")) {
            let p = asciiLowercased(path.value), s = asciiLowercased(source)
            let expected = p == s || (!s.hasSuffix("/") && p == s + "/")
            require(matched == expected, "literal \(source) \(matched ? "matches" : "does not match") \(path)")
        }
    }
    return 0
}
