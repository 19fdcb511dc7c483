import GatehouseCore
@testable import GatehouseServer
import Testing

/// RequestPolicy answers "is this the forward-auth path?" without canonicalising an already canonical
/// origin-form path; ClientHandler canonicalises every time. Both must agree for every target.
@Suite struct ForwardAuthPathFastPathTests {
    static let configured = ["/_gatehouse/auth", "/fa", "/Auth/Check"]

    static var targets: [String] {
        let stems = ["/_gatehouse/auth", "/_GATEHOUSE/Auth", "/_gatehouse/auth/", "/_gatehouse/auth/nginx", "/_gatehouse/authx", "/_gatehouse/auth;x",
                     "/_gatehouse//auth", "/_gatehouse/./auth", "/x/../_gatehouse/auth", "/_gatehouse/%61uth", "/_gatehouse/auth%2F",
                     "/fa", "/FA/", "/fa;", "/fa.", "/fa/..", "/fab", "/f%41", "/auth/check/x", "/", "//", "/a/b/c", "/_gatehouse/au\u{301}th",
                     "/\u{301}_gatehouse/auth", "http://h/_gatehouse/auth", "HTTP://h/fa", "http://h?x", "*", "", "fa", "/fa\\x"]
        var all: [String] = []
        for stem in stems {
            all.append(stem)
            for query in ["?", "?a=1", "?\u{301}", "?/_gatehouse/auth"] { all.append(stem + query) }
        }
        all.append("/fa" + String(repeating: "/a", count: CanonicalPath.maxLength / 2))
        all.append("/?\u{301}")
        return all
    }

    @Test func theFastPathAgreesWithTheFullOne() {
        for configured in Self.configured {
            for semicolons in [false, true] {
                let options = CanonicalizationOptions(allowPathSemicolons: semicolons)
                for target in Self.targets {
                    let fast = RequestPolicy.reservedForwardAuthPath(target, configured: configured, options: options)
                    let full = ClientHandler.reservedForwardAuthPath(target, configured: configured, options: options)
                    #expect(fast?.routed == full?.routed && fast?.strict == full?.strict, "\(target.prefix(60)) under \(configured)")
                }
            }
        }
    }

    @Test func theDefaultPathIsFoundAndOthersAreNot() {
        let options = CanonicalizationOptions()
        #expect(RequestPolicy.reservedForwardAuthPath("/_gatehouse/auth?x", configured: "/_gatehouse/auth", options: options)?.strict == "/_gatehouse/auth")
        #expect(RequestPolicy.reservedForwardAuthPath("/_Gatehouse/auth/nginx", configured: "/_gatehouse/auth", options: options)?.strict == "/_Gatehouse/auth/nginx")
        #expect(RequestPolicy.reservedForwardAuthPath("/app/index.html", configured: "/_gatehouse/auth", options: options) == nil)
    }
}
