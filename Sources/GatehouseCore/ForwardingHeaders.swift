/// Client headers that say where a request came from or how it was routed. Gatehouse writes its own
/// `X-Forwarded-*`, `Forwarded`, `X-Real-IP` and `X-Request-Id` upstream; every other field of this list is
/// dropped (compared by normalised name). `Via` is extended, not dropped.
public enum ForwardingHeaders {
    public static let names: [String] = [
        "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "x-forwarded-prefix",
        "x-forwarded-uri", "x-forwarded-method", "x-original-uri", "x-original-url", "x-rewrite-url", "forwarded",
        "x-real-ip", "x-request-id", "x-envoy-original-path", "x-http-method-override", "x-http-method",
        "x-method-override",
        // Gatehouse answers `Expect: 100-continue` itself once it has decided to proxy (see ClientHandler).
        "expect",
    ]

    /// Is `name` (as sent) one of `names`, compared by normalised name?
    @inline(__always) public static func contains(_ name: String) -> Bool {
        mayBe(name) && names.contains(where: { headerNamesEquivalent(name, $0) })
    }

    /// False for a name that cannot be in `names`. Every name there starts with x, f or e, and name folding
    /// only lowercases a letter: any other first byte cannot match one, so most fields skip the comparisons.
    /// Nor can a name of a length none of them has (the comparison is byte for byte), nor one whose third byte
    /// (a letter in each of them) is none of theirs, which spares the `X-Gatehouse-*` fields (`g`).
    @inline(__always) public static func mayBe(_ name: String) -> Bool {
        let bytes = name.utf8
        let count = bytes.count
        guard count < 64, nameLengths & (1 << UInt64(count)) != 0 else { return false }
        switch bytes.first {
        case UInt8(ascii: "x"), UInt8(ascii: "X"), UInt8(ascii: "f"), UInt8(ascii: "F"), UInt8(ascii: "e"), UInt8(ascii: "E"): break
        default: return false
        }
        let third = bytes[bytes.index(bytes.startIndex, offsetBy: 2)] | 0x20
        return third >= UInt8(ascii: "a") && third <= UInt8(ascii: "z") && thirdLetters & (1 << UInt32(third - UInt8(ascii: "a"))) != 0
    }

    /// Bit n set: some forwarding name is n bytes long (all are under 64).
    static let nameLengths: UInt64 = names.reduce(0) { $0 | (1 << UInt64($1.utf8.count)) }
    /// Bit n set: some forwarding name's third byte is the n-th letter (each is a lower-case letter).
    static let thirdLetters: UInt32 = names.reduce(0) { bits, name in
        let third = Array(name.utf8)[2]
        precondition(third >= UInt8(ascii: "a") && third <= UInt8(ascii: "z"), "forwarding names have a letter third")
        return bits | (1 << UInt32(third - UInt8(ascii: "a")))
    }
}
