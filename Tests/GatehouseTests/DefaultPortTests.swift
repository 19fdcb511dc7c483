@testable import GatehouseCore
import Testing

/// The default port is dropped from the canonical host by a byte test before the character test; both must
/// agree on every host: only `:80` for http and `:443` for https, as a whole port.
@Suite struct DefaultPortTests {
    @Test(arguments: [
        ("app.example.com:80", "http", "app.example.com"), ("app.example.com:80", "https", "app.example.com:80"),
        ("app.example.com:443", "https", "app.example.com"), ("app.example.com:443", "http", "app.example.com:443"),
        ("app.example.com:8080", "http", "app.example.com:8080"), ("app.example.com:180", "http", "app.example.com:180"),
        ("app.example.com:1443", "https", "app.example.com:1443"), ("127.0.0.1:80", "http", "127.0.0.1"),
        ("[::1]:80", "http", "[::1]"), ("[::1]:443", "https", "[::1]"), ("app.example.com", "http", "app.example.com"),
    ])
    func defaultPortsAreDroppedAndOthersKept(host: String, scheme: String, expected: String) throws {
        let raw = RawRequest(method: "GET", target: "/", headers: HeaderList([("Host", host)]), scheme: scheme)
        #expect(try CanonicalRequest(raw).host == expected)
    }

    @Test func methodsWithoutLowerCaseAreNotRespelled() throws {
        for method in ["GET", "POST", "PURGE", "M-SEARCH", "PROPFIND", "X"] {
            #expect(try CanonicalRequest(RawRequest(method: method, target: "/", headers: HeaderList([("Host", "h")]))).method == method)
        }
        for method in ["get", "Post", "pUt", "delete"] {
            #expect(throws: RequestRejection.self) { try CanonicalRequest(RawRequest(method: method, target: "/", headers: HeaderList([("Host", "h")]))) }
        }
        // A non-standard lower-case method is its own name.
        #expect(try CanonicalRequest(RawRequest(method: "purge", target: "/", headers: HeaderList([("Host", "h")]))).method == "purge")
    }
}
