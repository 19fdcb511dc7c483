import GatehouseCore
@testable import GatehouseServer
import Testing

/// Which proxy is asking, and which headers name the request it asks about.
@Suite struct ForwardAuthDialectTests {
    @Test func thePathSaysWhichVocabulary() {
        let none = HeaderList()
        #expect(ForwardAuth.dialect(path: "/_gatehouse/auth", configured: "/_gatehouse/auth", headers: none) == .passThrough)
        #expect(ForwardAuth.dialect(path: "/_gatehouse/auth/nginx", configured: "/_gatehouse/auth", headers: none) == .nginx)
        #expect(ForwardAuth.dialect(path: "/auth/nginx", configured: "/auth", headers: none) == .nginx)
        #expect(ForwardAuth.dialect(path: "/nginx", configured: "/", headers: none) == .nginx)
        for other in ["/_gatehouse/auth/", "/_gatehouse/auth/nginx/x", "/_gatehouse/authx", "/_gatehouse", "/_gatehouse/auth/caddy"] {
            #expect(ForwardAuth.dialect(path: other, configured: "/_gatehouse/auth", headers: none) == nil, "\(other)")
        }
        // The plain path with only nginx's header (snippets written before /nginx) keeps nginx's vocabulary.
        let nginxOnly = HeaderList([("X-Original-URI", "/x")])
        let both = HeaderList([("X-Original-URI", "/x"), ("X-Forwarded-Uri", "/y")])
        #expect(ForwardAuth.dialect(path: "/_gatehouse/auth", configured: "/_gatehouse/auth", headers: nginxOnly) == .nginx)
        #expect(ForwardAuth.dialect(path: "/_gatehouse/auth", configured: "/_gatehouse/auth", headers: both) == .passThrough)
    }

    @Test func eachDialectReadsOnlyItsOwnPair() {
        let headers = HeaderList([("X-Original-URI", "/admin"), ("X-Original-Method", "POST"),
                                  ("X-Forwarded-Uri", "/public"), ("X-Forwarded-Method", "GET")])
        let nginx = ForwardAuth.originalRequest(headers, dialect: .nginx)
        #expect(nginx?.uri == "/admin" && nginx?.method == "POST")
        let other = ForwardAuth.originalRequest(HeaderList([("X-Forwarded-Uri", "/public"), ("X-Forwarded-Method", "GET")]), dialect: .passThrough)
        #expect(other?.uri == "/public" && other?.method == "GET")
        // Both pairs at the plain path: a client added one of them. Refused, whichever it was.
        #expect(ForwardAuth.originalRequest(headers, dialect: .passThrough) == nil)
        // Only the other pair, none, an empty or a repeated URI: no original request (403).
        #expect(ForwardAuth.originalRequest(HeaderList([("X-Forwarded-Uri", "/x")]), dialect: .nginx) == nil)
        #expect(ForwardAuth.originalRequest(HeaderList([("X-Original-URI", "/x")]), dialect: .passThrough) == nil)
        #expect(ForwardAuth.originalRequest(HeaderList([("X-Forwarded-Uri", "")]), dialect: .passThrough) == nil)
        #expect(ForwardAuth.originalRequest(HeaderList([("X-Forwarded-Uri", "/a"), ("X-Forwarded-Uri", "/b")]), dialect: .passThrough) == nil)
        #expect(ForwardAuth.originalRequest(HeaderList([("X-Forwarded-Uri", "/a"), ("X-Forwarded-Method", "GET"), ("X-Forwarded-Method", "POST")]), dialect: .passThrough) == nil)
        // No method, or an empty one: never guessed (GET would judge a POST by a GET-only rule).
        #expect(ForwardAuth.originalRequest(HeaderList([("X-Forwarded-Uri", "/a")]), dialect: .passThrough) == nil)
        #expect(ForwardAuth.originalRequest(HeaderList([("X-Forwarded-Uri", "/a"), ("X-Forwarded-Method", "")]), dialect: .passThrough) == nil)
        #expect(ForwardAuth.originalRequest(HeaderList([("X-Original-URI", "/a")]), dialect: .nginx) == nil)
        #expect(ForwardAuth.originalRequest(HeaderList([("X-Original-URI", "/a"), ("X-Original-Method", "GET"), ("X-Original-Method", "POST")]), dialect: .nginx) == nil)
        // The other dialect's method does not stand in for the missing one.
        #expect(ForwardAuth.originalRequest(HeaderList([("X-Original-URI", "/a"), ("X-Forwarded-Method", "GET")]), dialect: .nginx) == nil)
    }

    @Test func nginxDenialsKeepTheirRealStatus() {
        let notFound = ForwardAuth.denial(.deny(status: 404, error: "not_found", message: "Not found.", explanation: "x"), dialect: .nginx)
        #expect(notFound.status == 403)
        #expect(notFound.responseHeaders.first("x-gatehouse-status") == "404")
        let redirect = ForwardAuth.denial(.redirect(to: "/sign-in?x=1", extraHeaders: [("Set-Cookie", "a=b")], explanation: "x"), dialect: .nginx)
        #expect(redirect.status == 401)
        #expect(redirect.responseHeaders.first("x-gatehouse-location") == "/sign-in?x=1")
        #expect(redirect.responseHeaders.first("x-gatehouse-status") == "307")
        #expect(redirect.responseHeaders.first("set-cookie") == "a=b")
        let unavailable = ForwardAuth.denial(.deny(status: 503, error: "keys_unavailable", message: "m", extraHeaders: [("Retry-After", "5")], explanation: "x"), dialect: .nginx)
        #expect(unavailable.status == 403 && unavailable.responseHeaders.first("x-gatehouse-status") == "503")
        #expect(unavailable.responseHeaders.first("retry-after") == "5")
        // Traefik and Caddy pass the answer on as it is.
        let plain = Decision.deny(status: 404, error: "not_found", message: "Not found.", explanation: "x")
        #expect(ForwardAuth.denial(plain, dialect: .passThrough) == plain)
    }
}
