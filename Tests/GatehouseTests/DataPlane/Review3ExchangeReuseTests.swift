import Foundation
import GatehouseCore
import GatehouseDataPlane
import Testing

/// Review of eb8a278 (exchange objects and the response parser carried from one exchange to the next): the
/// paths MachineExchangeReuseTests does not walk (an upstream broken mid-head, a split head, HEAD/304 with
/// framing fields, an HTTP/1.0 keep-alive client, a locally refused Expect), each followed by every other, and
/// pipelined requests read in one go, where the next head is parsed while the last exchange's objects are
/// still on the stack.
@Suite("Review3: exchange objects and the response parser, after error paths and pipelined")
struct Review3ExchangeReuseTests {
    static let scenarios: [(name: String, run: @Sendable (inout MachineDriver) -> Void)] = [
        ("plain get", { d in
            d.client("GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
            d.decide(forward("GET /a HTTP/1.1\r\nHost: up\r\n\r\n"))
            d.attach()
            d.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
        }),
        ("upstream's status line unreadable", { d in
            // The response parser is left refused: the next exchange must parse from scratch.
            d.client("GET /b HTTP/1.1\r\nHost: a\r\n\r\n")
            d.decide(forward())
            d.attach()
            d.upstreamSends("HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n")
        }),
        ("upstream's head cut by its close", { d in
            // The parser is left mid-head (status line and a field taken).
            d.client("GET /c HTTP/1.1\r\nHost: a\r\n\r\n")
            d.decide(forward())
            d.attach()
            d.upstreamSends("HTTP/1.1 404 Not Found\r\nX-Half: 1\r\nContent-Le")
            d.upstreamEOF()
        }),
        ("head split in three reads", { d in
            d.client("GET /s HTTP/1.1\r\nHost: a\r\n\r\n")
            d.decide(forward())
            d.attach()
            d.upstreamSends("HTTP/1.1 200 OK\r\nCont")
            d.upstreamSends("ent-Length: 2\r\nX-A: b")
            d.upstreamSends("\r\n\r\nok")
        }),
        ("head answered with chunked framing", { d in
            d.client("HEAD /h HTTP/1.1\r\nHost: a\r\n\r\n")
            d.decide(forward("HEAD /h HTTP/1.1\r\nHost: up\r\n\r\n"))
            d.attach()
            d.upstreamSends("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        }),
        ("304 with a content-length", { d in
            d.client("GET /n HTTP/1.1\r\nHost: a\r\nIf-None-Match: \"x\"\r\n\r\n")
            d.decide(forward())
            d.attach()
            d.upstreamSends("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: \"x\"\r\n\r\n")
        }),
        ("http/1.0 keep-alive", { d in
            d.client("GET /o HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            d.decide(forward("GET /o HTTP/1.0\r\nHost: up\r\n\r\n"))
            d.attach()
            d.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nold")
        }),
        ("expect refused locally", { d in
            d.client("PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
            d.decide(deny(401))
            d.client("abc")
        }),
        ("upstream timed out", { d in
            d.client("GET /t HTTP/1.1\r\nHost: a\r\n\r\n")
            d.decide(forward())
            d.unavailable(.timedOut)
        }),
    ]

    @Test(arguments: scenarios.indices)
    func afterThisEveryExchangeIsAsOnANewConnection(first: Int) {
        for (name, second) in Self.scenarios {
            let outcome = ExchangeReuseCheck.run(second, after: Self.scenarios[first].run)
            guard let after = outcome.after else { continue }  // that path ends the connection: nothing comes after it
            #expect(after == outcome.alone, "\(name) after \(Self.scenarios[first].name)")
            #expect(outcome.problems.isEmpty, "\(outcome.problems)")
        }
    }

    /// HEAD and GET read together: the GET's response must be read with a body, not as HEAD's was.
    @Test func pipelinedHeadThenGet() {
        var d = MachineDriver()
        d.client("HEAD /h HTTP/1.1\r\nHost: a\r\n\r\nGET /g HTTP/1.1\r\nHost: a\r\n\r\n")
        d.decide(forward("HEAD /h HTTP/1.1\r\nHost: up\r\n\r\n"))
        d.attach()
        d.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n")
        #expect(d.decideCount == 2)
        d.decide(forward("GET /g HTTP/1.1\r\nHost: up\r\n\r\n"))
        if d.upstream == .pooled { d.upstream = .none }
        d.attach(reused: true)
        d.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
        // (Split by hand: `responses` would read the HEAD answer's Content-Length as a body.)
        let got = d.takeClient()
        #expect(got.components(separatedBy: "HTTP/1.1 200 OK\r\n").count == 3)
        #expect(got.hasSuffix("\r\n\r\nhello"))
        #expect(got.components(separatedBy: "\r\n\r\n").count == 3)
        #expect(d.finished.map(\.status) == [200, 200])
        #expect(d.finished.map(\.bodyBytesSent) == [0, 5])
        #expect(!d.clientClosed)
        #expect(d.problems.isEmpty, "\(d.problems)")
    }

    /// A POST whose body the upstream answered early, with a GET pipelined behind the body: the GET is an
    /// exchange of its own (its body framing, counters and upstream are not the POST's).
    @Test func pipelinedAfterAnEarlyAnswer() {
        var d = MachineDriver()
        d.client("POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nabc")
        d.decide(forward("POST /p HTTP/1.1\r\nHost: up\r\nContent-Length: 6\r\n\r\n"))
        d.attach()
        d.upstreamSends("HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\n\r\nbig!")
        d.client("defGET /g HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(d.decidedTargets == ["/p", "/g"])
        d.decide(forward("GET /g HTTP/1.1\r\nHost: up\r\n\r\n"))
        d.attach()
        _ = d.takeUpstream()
        d.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        let seen = responses(d.takeClient())
        #expect(seen.map(\.status) == [413, 200])
        #expect(seen.last?.body == "ok")
        #expect(d.finished.map(\.status) == [413, 200])
        #expect(d.finished.map(\.bodyBytesSent) == [4, 2])
        #expect(d.problems.isEmpty, "\(d.problems)")
    }

    /// Three GETs read together, each answered in turn: every one gets its own body and record.
    @Test func threePipelined() {
        var d = MachineDriver()
        d.client("GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n")
        for i in 1...3 {
            d.decide(forward("GET /\(i) HTTP/1.1\r\nHost: up\r\n\r\n"))
            if d.upstream == .pooled { d.upstream = .none }
            d.attach(reused: i > 1)
            #expect(d.takeUpstream() == "GET /\(i) HTTP/1.1\r\nHost: up\r\n\r\n")
            d.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: \(i)\r\n\r\n" + String(repeating: "x", count: i))
        }
        #expect(d.decidedTargets == ["/1", "/2", "/3"])
        #expect(responses(d.takeClient()).map(\.body) == ["x", "xx", "xxx"])
        #expect(d.finished.map(\.bodyBytesSent) == [1, 2, 3])
        #expect(d.problems.isEmpty, "\(d.problems)")
    }
}
