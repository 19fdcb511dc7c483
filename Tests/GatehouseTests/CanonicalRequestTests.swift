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

    static let slash = "encoded slash (%2F) in path", backslash = "encoded backslash (%5C) in path"
    static let control = "encoded control character or NUL in path", percent = "malformed percent-encoding in path"
    static let utf8 = "percent-encoded bytes in path are not valid UTF-8 (overlong or invalid sequence)"
    static let semicolon = "semicolon in path (path parameters are refused; see allow_path_semicolons)"

    /// Each refusal with its reason and a 400 (not just "some error"), so a refusal for the wrong reason shows.
    @Test(arguments: [
        ("/admin%2Fx", slash), ("/public/..%2fadmin/x", slash), ("/admin%5Cx", backslash), ("/public%5c..%5cadmin", backslash),
        ("/public\\..\\admin\\x", "backslash in path"),
        ("/admin%00", control), ("/admin%00.json", control), ("/admin%09", control), ("/admin%0a", control), ("/admin%7f", control),
        ("/admin#x", "fragment (#) in request-target"), ("/admin%zz", percent), ("/admin%", percent), ("/admin%2", percent),
        ("/%c0%af", utf8), ("/%e0%80%af", utf8), ("/%ff", utf8), ("/%c3", utf8),
        ("/admin x", "control character, space or NUL in path"), ("/admin;x=y", semicolon), ("/public/..;/admin", semicolon),
        ("admin", "path must start with '/'"),
    ])
    func ambiguousPathsAreRejected(raw: String, reason: String) {
        #expect(throws: RequestRejection(reason, status: 400)) { try canonical(raw) }
    }

    @Test func semicolonsCanBeAllowedExplicitly() throws {
        #expect(try CanonicalPath(parsing: "/a;jsessionid=1", allowSemicolons: true).value == "/a;jsessionid=1")
    }

    @Test func overlongTargetsGet414() throws {
        let long = "/" + String(repeating: "a", count: 9000)
        #expect(throws: RequestRejection("request-target too long", status: 414)) { try canonical(long) }
        #expect(try canonical("/" + String(repeating: "a", count: 8191)).utf8.count == 8192)
        #expect(throws: RequestRejection("request-target too long", status: 414)) { try canonical("/" + String(repeating: "a", count: 8192)) }
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

    static let notOriginForm = "request-target must be origin-form (/path) or absolute-form (http://host/path)"

    /// `ftp://app.example.com/admin` names the request's own Host, so only the scheme can be the reason.
    @Test(arguments: ["http:app/admin", "*", "app.example.com:443", "ftp://app.example.com/admin"])
    func otherTargetFormsAreRejected(target: String) {
        #expect(throws: RequestRejection(Self.notOriginForm, status: 400)) { try make(target) }
    }

    @Test func doubleSlashTargetIsAPathNotAnAuthority() throws {
        let r = try make("//admin/x?")
        #expect(r.path.value == "/admin/x")
        #expect(r.host == "app.example.com")
    }

    @Test func connectIsRejected() {
        #expect(throws: RequestRejection("CONNECT is not supported", status: 400)) { try make("app.example.com:443", method: "CONNECT") }
    }

    @Test func hostMismatchWithAbsoluteFormIsRejected() {
        #expect(throws: RequestRejection("Host header does not match the absolute-form request-target", status: 400)) {
            try make("http://other/admin", headers: [("Host", "app.example.com")])
        }
    }

    @Test func duplicateHostOrAuthorizationIsRejected() {
        #expect(throws: RequestRejection("more than one Host header", status: 400)) { try make("/", headers: [("Host", "a"), ("host", "b")]) }
        #expect(throws: RequestRejection("more than one Authorization header", status: 400)) {
            try make("/", headers: [("Host", "a"), ("Authorization", "Bearer x"), ("authorization", "Bearer y")])
        }
    }

    @Test func hostIsLowercasedWithoutTrailingDotOrDefaultPort() throws {
        #expect(try make("/", headers: [("Host", "A.B.Example.COM.:80")]).host == "a.b.example.com")
        #expect(try make("/", headers: [("Host", "app.example.com:8443")]).host == "app.example.com:8443")
    }

    @Test(arguments: [("app@evil.com", "invalid Host"), ("a b", "invalid Host"), ("app.example.com:99999", "invalid port in Host"),
                      ("app..example.com", "invalid Host"), ("", "empty Host")])
    func invalidHostsAreRejected(host: String, reason: String) {
        #expect(throws: RequestRejection(reason, status: 400)) { try make("/", headers: [("Host", host)]) }
    }

    @Test func controlCharactersInHeaderValuesAreRejected() {
        #expect(throws: RequestRejection("control character in header x-a", status: 400)) { try make("/", headers: [("X-A", "a\u{0}b")]) }
        #expect(throws: RequestRejection("control character in header x-a", status: 400)) { try make("/", headers: [("X-A", "a\r\nb")]) }
        #expect(throws: RequestRejection("invalid header name", status: 400)) { try make("/", headers: [("Bad Name", "x")]) }
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
