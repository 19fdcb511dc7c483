/// Picks the certificate for a requested server name (SNI), as nginx picks a server block: an exact name
/// first, then a `*.` wildcard covering exactly one leftmost label, in the order the certificates are listed;
/// ASCII case does not matter. No match → nil (the caller serves its first certificate).
struct ServerNameMatcher: Sendable {
    /// Lowercased DNS names of each certificate, in the configured order.
    let namesByCertificate: [[String]]

    func certificateIndex(for requestedName: String) -> Int? {
        guard let name = Self.normalized(requestedName) else { return nil }
        if let exact = namesByCertificate.firstIndex(where: { $0.contains(name) }) { return exact }
        return namesByCertificate.firstIndex { names in names.contains { Self.wildcard($0, covers: name) } }
    }

    /// Lowercased, or nil for a name no certificate may match (empty labels, a bare wildcard, spaces).
    static func normalized(_ name: String) -> String? {
        let lowered = name.lowercased()
        guard !lowered.isEmpty, lowered.utf8.count <= 253,
              lowered.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "*") }),
              !lowered.split(separator: ".", omittingEmptySubsequences: false).contains(where: \.isEmpty)
        else { return nil }
        return lowered
    }

    /// `*.example.test` covers `app.example.test`, not `example.test` nor `a.b.example.test`.
    static func wildcard(_ pattern: String, covers name: String) -> Bool {
        guard pattern.hasPrefix("*.") else { return false }
        let suffix = pattern.dropFirst(1)  // ".example.test"
        guard suffix.count > 1, name.hasSuffix(suffix) else { return false }
        let label = name.dropLast(suffix.count)
        return !label.isEmpty && !label.contains(".")
    }
}
