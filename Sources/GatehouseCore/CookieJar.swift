/// Cookies of a request, parsed like the `cookie` package Clerk's backend uses: pairs split on `;`,
/// name and value split at the first `=`, both trimmed, surrounding quotes removed, the value percent-decoded
/// when it decodes cleanly (a malformed escape is kept literally). Every value of a repeated name is kept so
/// that callers can notice ambiguity; `value(_:)` returns the first, as Clerk does.
public struct CookieJar: Sendable, Equatable {
    private var entries: [(name: String, value: String)]

    public init(headerValues: [String]) {
        var entries: [(name: String, value: String)] = []
        for header in headerValues {
            for pair in header.split(separator: ";", omittingEmptySubsequences: true) {
                guard let eq = pair.firstIndex(of: "=") else { continue }
                let name = pair[..<eq].trimmingASCIIWhitespace()
                guard !name.isEmpty else { continue }
                var value = pair[pair.index(after: eq)...].trimmingASCIIWhitespace()
                if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
                    value = String(value.dropFirst().dropLast())
                }
                entries.append((name, CookieJar.percentDecoded(value) ?? value))
            }
        }
        self.entries = entries
    }

    public func value(_ name: String) -> String? {
        for entry in entries where entry.name == name { return entry.value }
        return nil
    }

    public func values(_ name: String) -> [String] {
        entries.compactMap { $0.name == name ? $0.value : nil }
    }

    public var names: [String] { entries.map(\.name) }

    public static func == (lhs: CookieJar, rhs: CookieJar) -> Bool {
        lhs.entries.count == rhs.entries.count
            && zip(lhs.entries, rhs.entries).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }

    static func percentDecoded(_ s: String) -> String? {
        guard s.utf8.contains(UInt8(ascii: "%")) else { return s }
        var out = [UInt8]()
        var bytes = Array(s.utf8)[...]
        while let b = bytes.first {
            if b == UInt8(ascii: "%") {
                guard bytes.count >= 3, let hi = hexValue(bytes[bytes.startIndex + 1]),
                    let lo = hexValue(bytes[bytes.startIndex + 2])
                else { return nil }
                out.append(hi << 4 | lo)
                bytes = bytes.dropFirst(3)
            } else {
                out.append(b)
                bytes = bytes.dropFirst()
            }
        }
        return String(validating: out, as: UTF8.self)
    }
}
