import GatehouseCore
import GatehouseDataPlane
import Testing

/// A keep-alive connection carries its next exchange in the objects (request, plan, response state) and the
/// response-head parser its last one used. Nothing of the last exchange may show in the next: every exchange
/// after any other gives the same bytes both ways, the same records and the same upstream actions as that
/// exchange on a new connection.
@Suite("Connection machine: an exchange after any other is an exchange on a new connection")
struct MachineExchangeReuseTests {
    /// One exchange each, ending with the client's connection open for another request.
    static let scenarios: [(name: String, run: @Sendable (inout MachineDriver) -> Void)] = [
        ("get", { d in
            d.client("GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
            d.decide(forward("GET /a HTTP/1.1\r\nHost: up\r\n\r\n"))
            d.attach(reused: true)
            d.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-App: 1\r\n\r\nhello")
        }),
        ("head", { d in
            // The response parser must not carry "the request was HEAD" into the next exchange.
            d.client("HEAD /h HTTP/1.1\r\nHost: a\r\n\r\n")
            d.decide(forward("HEAD /h HTTP/1.1\r\nHost: up\r\n\r\n"))
            d.attach()
            d.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n")
        }),
        ("chunked response, upstream closes", { d in
            // Leaves the response state with keep-alive off.
            d.client("GET /c HTTP/1.1\r\nHost: a\r\n\r\n")
            d.decide(forward())
            d.attach()
            d.upstreamSends("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        }),
        ("post", { d in
            d.client("POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab")
            d.decide(forward("POST /p HTTP/1.1\r\nHost: up\r\nContent-Length: 4\r\n\r\n"))
            d.attach()
            d.client("cd")
            d.upstreamSends("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
        }),
        ("chunked request", { d in
            d.client("POST /k HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n")
            d.decide(forward("POST /k HTTP/1.1\r\nHost: up\r\nTransfer-Encoding: chunked\r\n\r\n", chunked: true))
            d.attach()
            d.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nk")
        }),
        ("early answer, body drained", { d in
            d.client("POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nabc")
            d.decide(forward("POST /e HTTP/1.1\r\nHost: up\r\nContent-Length: 6\r\n\r\n"))
            d.attach()
            d.upstreamSends("HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n")
            d.client("def")
        }),
        ("interim responses", { d in
            d.client("PUT /f HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n")
            d.decide(forward("PUT /f HTTP/1.1\r\nHost: up\r\nContent-Length: 1\r\n\r\n", sendContinue: true))
            d.attach()
            d.client("x")
            d.upstreamSends("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
        }),
        ("stale pooled connection retried", { d in
            d.client("GET /r HTTP/1.1\r\nHost: a\r\n\r\n")
            d.decide(forward(retryable: true))
            d.attach(reused: true)
            d.upstreamEOF()
            d.attach()
            d.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        }),
        ("connect refused", { d in
            d.client("GET /u HTTP/1.1\r\nHost: a\r\n\r\n")
            d.decide(forward())
            d.unavailable(.refused)
        }),
        ("no answer in time", { d in
            d.client("GET /t HTTP/1.1\r\nHost: a\r\n\r\n")
            d.decide(forward())
            d.attach()
            d.elapse(61)
        }),
        ("local answer", { d in
            d.client("GET /d HTTP/1.1\r\nHost: a\r\n\r\n")
            d.decide(deny(403))
        }),
        ("rewritten response", { d in
            d.client("GET /w HTTP/1.1\r\nHost: a\r\n\r\n")
            let rewrite = ResponseRewrite(extraFields: Array("Set-Cookie: s=1\r\n".utf8),
                                          location: (from: Array("http://fapi".utf8), to: Array("/c".utf8)))
            d.decide(forward(rewrite: rewrite))
            d.attach()
            d.upstreamSends("HTTP/1.1 302 Found\r\nLocation: http://fapi/x\r\nVia: 1.0 c\r\nContent-Length: 0\r\n\r\n")
        }),
    ]

    @Test(arguments: scenarios.indices)
    func everyExchangeAfterThisOneIsAsOnANewConnection(first: Int) {
        for (name, second) in Self.scenarios {
            let outcome = ExchangeReuseCheck.run(second, after: Self.scenarios[first].run)
            #expect(outcome.after != nil, "\(Self.scenarios[first].name) must leave the connection open")
            #expect(outcome.after == outcome.alone, "\(name) after \(Self.scenarios[first].name)")
            #expect(outcome.problems.isEmpty, "\(outcome.problems)")
        }
    }
}
