/// Cookies of a request, parsed like the `cookie` package Clerk's backend uses: pairs split on `;`,
/// name and value split at the first `=`, both trimmed, surrounding quotes removed, the value percent-decoded
/// when it decodes cleanly (a malformed escape is kept literally). Every value of a repeated name is kept so
/// that callers can notice ambiguity; `value(_:)` returns the first, as Clerk does.
public struct CookieJar: Sendable, Equatable {
    private var entries: [(name: String, value: String)]

    public init(headerValues: [String]) {
        var entries: [(name: String, value: String)] = []
        for header in headerValues {
            // Split on UTF-8 bytes: ';', '=' and spaces are ASCII, and byte work avoids grapheme breaking.
            for pair in header.utf8.split(separator: UInt8(ascii: ";"), omittingEmptySubsequences: true) {
                guard let eq = pair.firstIndex(of: UInt8(ascii: "=")) else { continue }
                // Index boundaries at ASCII bytes are valid character boundaries, so these are plain substrings.
                let rawName = Substring(pair[pair.startIndex..<eq])
                let rawValue = Substring(pair[pair.index(after: eq)...])
                let name = rawName.trimmingASCIIWhitespace()
                guard !name.isEmpty else { continue }
                var value = rawValue.trimmingASCIIWhitespace()
                if value.utf8.count >= 2, value.utf8.first == UInt8(ascii: "\""), value.utf8.last == UInt8(ascii: "\"") {
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
