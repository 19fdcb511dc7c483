@testable import GatehouseCore
import Testing

/// JavaScript's `.` does not match U+2028 / U+2029, so Clerk's `/admin(.*)` misses `/admin/%E2%80%A9/settings`
/// and such a path would fall through to a later (public) rule while catch-all upstream routes serve it.
/// Gatehouse refuses them in the path, like control characters, so that `.` matches every accepted path.
@Suite struct LineSeparatorPathTests {
    static let reason = "encoded line or paragraph separator (%E2%80%A8, %E2%80%A9) in path"

    @Test(arguments: ["/admin/%E2%80%A9/settings", "/admin/%e2%80%a8", "/admin%E2%80%A8", "/x/%C3%A9%E2%80%A9", "/%E2%80%A8/../admin"])
    func encodedLineAndParagraphSeparatorsAreRefused(path: String) {
        #expect(throws: RequestRejection(Self.reason)) { try CanonicalPath(parsing: path) }
        #expect(throws: RequestRejection(Self.reason)) {
            try CanonicalPath(parsing: path, allowSemicolons: true, allowEncodedSemicolons: true, allowEncodedPercent: true)
        }
    }

    @Test func rawSeparatorsAreRefusedAsRawNonASCII() {
        #expect(throws: RequestRejection("raw non-ASCII byte in path")) { try CanonicalPath(parsing: "/admin/\u{2029}/x") }
    }

    @Test(arguments: ["/x/%E2%80%A7", "/x/%E2%80%AA", "/x/%E2%81%A8", "/x/%E2%80%A0"])
    func neighbouringCharactersAreStillAccepted(path: String) throws {
        #expect(try CanonicalPath(parsing: path).value == path)
    }

    /// An encoded `%` keeps the text `%E2%80%A9` after decoding (decodeURI runs once), which `.` matches.
    @Test func doublyEncodedSeparatorIsPlainText() throws {
        let path = try CanonicalPath(parsing: "/admin/%25E2%2580%25A9", allowEncodedPercent: true)
        #expect(try RoutePattern("/admin(.*)", fastPaths: false).outcome(for: path) == .match)
    }

    /// The reported bypass: `/admin(.*)` protected, everything else public.
    @Test func protectedCatchAllCannotBeSteppedAround() throws {
        let table = RouteTable(
            rules: [RouteRule(name: "admin", patterns: [try RoutePattern("/admin(.*)")])],
            fallback: RouteRule(name: "default", patterns: [], access: .public))
        #expect(throws: RequestRejection(Self.reason)) {
            let request = try CanonicalRequest(RawRequest(method: "GET", target: "/admin/%E2%80%A9/settings", headers: HeaderList([("Host", "a.test")])))
            _ = try table.route(for: request)
        }
    }

    /// With the separators refused, the regex `.` (not only the byte fast path) matches every accepted path:
    /// each BMP character, percent-encoded, after `/admin/`.
    @Test func dotMatchesEveryAcceptedBMPCharacter() throws {
        let regex = try RoutePattern("/admin(.*)", fastPaths: false)
        let fast = try RoutePattern("/admin(.*)")
        var accepted = 0
        var misses: [String] = []
        for value in UInt32(0x80)...0xFFFF {
            guard let scalar = Unicode.Scalar(value) else { continue }
            let encoded = String(scalar).utf8.map { "%" + String($0, radix: 16, uppercase: true) }.joined()
            guard let path = try? CanonicalPath(parsing: "/admin/" + encoded + "/settings") else { continue }
            accepted += 1
            if regex.outcome(for: path) != .match || fast.outcome(for: path) != .match { misses.append(encoded) }
        }
        #expect(accepted == 0xFFFF - 0x80 + 1 - 0x800 - 2)
        #expect(misses.isEmpty, "\(misses.prefix(10))")
    }
}
