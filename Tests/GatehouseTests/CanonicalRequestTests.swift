import Foundation
@testable import GatehouseAuth
import GatehouseConfig
@testable import GatehouseCore
import GatehouseDevIssuer
import GatehouseEngine
import Testing

@Suite struct CanonicalPathTests {
    func canonical(_ raw: String) throws -> String { try CanonicalPath(parsing: raw).value }

    @Test(arguments: [
        ("/public/../admin/x", "/admin/x"),
        ("/public/%2e%2e/admin/x", "/admin/x"),
        ("/public/%2E%2e/admin", "/admin"),
        ("/public/.%2e/admin", "/admin"),
        ("/public/./../admin", "/admin"),
        ("/./admin", "/admin"),
        ("/admin/./x", "/admin/x"),
        ("//admin/x", "/admin/x"),
        ("///admin", "/admin"),
        ("/admin//x", "/admin/x"),
        ("/%61dmin", "/admin"),
        ("/adm%69n", "/admin"),
        ("/admin%23/public", "/admin%23/public"),
        ("/caf%c3%a9", "/caf%C3%A9"),
        ("/../../etc/passwd", "/etc/passwd"),
        ("/a/b/..", "/a/"),
        ("/a/.", "/a/"),
        ("/", "/"),
        ("/admin/", "/admin/"),
    ])
    func dotSegmentsSlashesAndEscapesAreCanonicalised(raw: String, expected: String) throws {
        #expect(try canonical(raw) == expected)
    }

    @Test(arguments: [
        "/admin%2Fx", "/public/..%2fadmin/x", "/admin%5Cx", "/public%5c..%5cadmin", "/public\\..\\admin\\x",
        "/admin%00", "/admin%00.json", "/admin%09", "/admin%0a", "/admin%7f", "/admin#x", "/admin%zz", "/admin%", "/admin%2",
        "/%c0%af", "/%e0%80%af", "/%ff", "/%c3", "/admin x", "/admin;x=y", "/public/..;/admin", "admin",
    ])
    func ambiguousPathsAreRejected(raw: String) {
        #expect(throws: RequestRejection.self) { try canonical(raw) }
    }

    @Test func semicolonsCanBeAllowedExplicitly() throws {
        #expect(try CanonicalPath(parsing: "/a;jsessionid=1", allowSemicolons: true).value == "/a;jsessionid=1")
    }

    @Test func overlongTargetsGet414() {
        let long = "/" + String(repeating: "a", count: 9000)
        #expect(throws: RequestRejection("request-target too long", status: 414)) { try canonical(long) }
    }
}

@Suite struct CanonicalRequestTests {
    func make(_ target: String, method: String = "GET", headers: [(String, String)] = [("Host", "app.example.com")], trusted: Bool = false) throws -> CanonicalRequest {
        try CanonicalRequest(RawRequest(method: method, target: target, headers: HeaderList(headers), fromTrustedProxy: trusted))
    }

    @Test func queryIsKeptRawAndNeverPartOfThePath() throws {
        let r = try make("/admin?next=/public/x")
        #expect(r.path.value == "/admin")
        #expect(r.query == "next=/public/x")
        #expect(r.pathAndQuery == "/admin?next=/public/x")
    }

    @Test func absoluteFormUsesItsAuthority() throws {
        let r = try make("http://APP.example.com./x?y=1", headers: [])
        #expect(r.host == "app.example.com")
        #expect(r.path.value == "/x")
    }

    @Test(arguments: ["http:app/admin", "*", "app.example.com:443", "ftp://x/admin"])
    func otherTargetFormsAreRejected(target: String) {
        #expect(throws: RequestRejection.self) { try make(target) }
    }

    @Test func doubleSlashTargetIsAPathNotAnAuthority() throws {
        let r = try make("//admin/x?")
        #expect(r.path.value == "/admin/x")
        #expect(r.host == "app.example.com")
    }

    @Test func connectIsRejected() {
        #expect(throws: RequestRejection.self) { try make("app.example.com:443", method: "CONNECT") }
    }

    @Test func hostMismatchWithAbsoluteFormIsRejected() {
        #expect(throws: RequestRejection.self) { try make("http://other/admin", headers: [("Host", "app.example.com")]) }
    }

    @Test func duplicateHostOrAuthorizationIsRejected() {
        #expect(throws: RequestRejection.self) { try make("/", headers: [("Host", "a"), ("host", "b")]) }
        #expect(throws: RequestRejection.self) { try make("/", headers: [("Host", "a"), ("Authorization", "Bearer x"), ("authorization", "Bearer y")]) }
    }

    @Test func hostIsLowercasedWithoutTrailingDotOrDefaultPort() throws {
        #expect(try make("/", headers: [("Host", "A.B.Example.COM.:80")]).host == "a.b.example.com")
        #expect(try make("/", headers: [("Host", "app.example.com:8443")]).host == "app.example.com:8443")
    }

    @Test(arguments: ["app@evil.com", "a b", "app.example.com:99999", "app..example.com", ""])
    func invalidHostsAreRejected(host: String) {
        #expect(throws: RequestRejection.self) { try make("/", headers: [("Host", host)]) }
    }

    @Test func controlCharactersInHeaderValuesAreRejected() {
        #expect(throws: RequestRejection.self) { try make("/", headers: [("X-A", "a\u{0}b")]) }
        #expect(throws: RequestRejection.self) { try make("/", headers: [("X-A", "a\r\nb")]) }
        #expect(throws: RequestRejection.self) { try make("/", headers: [("Bad Name", "x")]) }
    }

    @Test func forwardedHostAndProtoAreIgnoredFromUntrustedPeers() throws {
        let headers = [("Host", "app.example.com"), ("X-Forwarded-Host", "evil.com"), ("X-Forwarded-Proto", "https")]
        let untrusted = try make("/x", headers: headers)
        #expect(untrusted.host == "app.example.com")
        #expect(untrusted.scheme == "http")
        let trusted = try make("/x", headers: headers, trusted: true)
        #expect(trusted.host == "evil.com")
        #expect(trusted.scheme == "https")
    }

    @Test func cookiesParseLikeClerk() {
        let jar = CookieJar(headerValues: ["a=1; __session=first; b=%7Bx%7D", "__session=second; c=%C0bad; d=\"q\""])
        #expect(jar.value("__session") == "first")
        #expect(jar.values("__session") == ["first", "second"])
        #expect(jar.value("b") == "{x}")
        #expect(jar.value("c") == "%C0bad")
        #expect(jar.value("d") == "q")
    }
}
