// Micro-benchmarks for the hot parts of a request, run by scripts/bench (release build):
//   swift run -c release gatehouse-microbench
// Each line is the median of 5 timed batches, in nanoseconds per operation. HTTP/1.1 parsing: HTTP1Bench.swift; the
// event loop and timer wheel: LoopBench.swift.
import Foundation
import GatehouseAuth
import GatehouseConfig
import GatehouseCore
import GatehouseDevIssuer
import GatehouseEngine
import GatehouseServer

@inline(never)
func blackHole<T>(_ value: T) { withExtendedLifetime(value) {} }

/// GATEHOUSE_BENCH_ONLY=text: only the benchmarks whose name contains it (to profile one).
let benchOnly = ProcessInfo.processInfo.environment["GATEHOUSE_BENCH_ONLY"]

/// GATEHOUSE_BENCH_ITERATIONS=n runs n per sample (to count instructions under valgrind, as `measureCPU`).
func measure(_ name: String, iterations: Int, _ body: () -> Void) {
    if let benchOnly, !name.contains(benchOnly) { return }
    let iterations = ProcessInfo.processInfo.environment["GATEHOUSE_BENCH_ITERATIONS"].flatMap(Int.init) ?? iterations
    var samples: [Double] = []
    for _ in 0..<5 {
        let start = ContinuousClock.now
        for _ in 0..<iterations { body() }
        let elapsed = ContinuousClock.now - start
        let ns = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
        samples.append(ns / Double(iterations))
    }
    samples.sort()
    print(String(format: "%-58@ %10.0f ns/op", name as NSString, samples[2]))
}

// `gatehouse-microbench loop`: only the I/O layer's numbers (LoopBench.swift).
if CommandLine.arguments.dropFirst().first == "loop" {
    print("gatehouse micro-benchmarks: GatehouseLoop")
    benchLoop()
    exit(0)
}

// `gatehouse-microbench decision [dump]`: only the whole decision path (DecisionPathBench.swift).
if CommandLine.arguments.dropFirst().first == "decision" {
    print("gatehouse micro-benchmarks: the data plane's decision path")
    benchDecisionPath(dump: CommandLine.arguments.dropFirst(2).first == "dump")
    exit(0)
}

// A realistic 50-rule table: literal prefixes, (.*) suffixes, :params, hosts and methods.
var rules: [RouteRule] = []
for i in 0..<48 {
    let patterns: [String]
    switch i % 4 {
    case 0: patterns = ["/service\(i)(.*)"]
    case 1: patterns = ["/api/v1/resource\(i)/:id", "/api/v1/resource\(i)/:id/items/:item"]
    case 2: patterns = ["/team\(i)/:slug/settings(.*)"]
    default: patterns = ["/static\(i)/:path*"]
    }
    rules.append(RouteRule(name: "r\(i)", patterns: try! patterns.map(RoutePattern.init)))
}
rules.append(RouteRule(name: "app", patterns: try! ["/dashboard(.*)", "/settings(.*)"].map(RoutePattern.init)))
rules.append(RouteRule(name: "catch-all", patterns: [try! RoutePattern("/(.*)")], access: .public))
let table = RouteTable(rules: rules, fallback: RouteRule(name: "default", patterns: []))

let headers = HeaderList([
    ("Host", "app.example.com"), ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"),
    ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"), ("Accept-Language", "en-US,en;q=0.5"),
    ("Accept-Encoding", "gzip, deflate, br"), ("Connection", "keep-alive"), ("Sec-Fetch-Dest", "document"),
    ("Cookie", "theme=dark; __client_uat=1800000000"), ("X-Gatehouse-User-Id", "spoofed"),
])
let raw = RawRequest(method: "GET", target: "/api/v1/resource45/1234/items/99?expand=true", headers: headers)
let request = try! CanonicalRequest(raw)
let late = try! CanonicalRequest(RawRequest(method: "GET", target: "/dashboard/projects/42", headers: headers))
let miss = try! CanonicalRequest(RawRequest(method: "GET", target: "/no/rule/matches/this/path", headers: headers))

print("gatehouse micro-benchmarks (release, one thread)")
measure("canonical path: /a/./b/../c/%7Euser//d?x", iterations: 200_000) {
    blackHole(try? CanonicalPath(parsing: "/a/./b/../c/%7Euser//d"))
}
measure("canonical request: target + 9 headers + cookies", iterations: 100_000) {
    blackHole(try? CanonicalRequest(raw))
}
measure("route match, 50 rules, hit at rule 46", iterations: 100_000) { blackHole(try! table.route(for: request)) }
measure("route match, 50 rules, hit at rule 49", iterations: 100_000) { blackHole(try! table.route(for: late)) }
measure("route match, 50 rules, falls to the catch-all", iterations: 100_000) { blackHole(try! table.route(for: miss)) }

let issuer = benchIssuer(kid: "bench")
let keys = KeySet(keys: try! JWKSParser.parse(Array(issuer.jwks.serialized().utf8), allowed: SigningAlgorithm.defaultAllowed).keys)
let now = Date().timeIntervalSince1970
let token = issuer.sign(DevIssuer.sessionClaims(userId: "user_1", issuedAt: now, lifetime: 3600,
                                                 org: ("org_1", "acme", "org:admin", ["org:billing:manage"])))
measure("token decode (base64url + JSON), \(token.utf8.count) bytes", iterations: 50_000) {
    blackHole(try? DecodedToken(token))
}
let decoded = try! DecodedToken(token)
measure("token verify cold: RS256 + claims", iterations: 5_000) {
    blackHole(try? TokenVerifier.verify(decoded, keys: keys, policy: VerificationPolicy(), now: now))
}
let store = KeyStore(staticKeys: keys, description: "bench")
let authenticator = SessionAuthenticator(instance: nil, policy: VerificationPolicy(), keyStore: store)
let bearer = try! CanonicalRequest(RawRequest(method: "GET", target: "/x", headers: HeaderList([("Host", "a"), ("Authorization", "Bearer " + token)])))
_ = authenticator.authenticateWithoutFetching(bearer, now: now)
measure("authenticate bearer, cached verification", iterations: 200_000) {
    blackHole(authenticator.authenticateWithoutFetching(bearer, now: now))
}
let uncached = SessionAuthenticator(instance: nil, policy: VerificationPolicy(), keyStore: store, cache: TokenCache(capacity: 0))
measure("authenticate bearer, cache off (decode + RS256)", iterations: 5_000) {
    blackHole(uncached.authenticateWithoutFetching(bearer, now: now))
}
let session = SessionAuth(claims: decoded.payload)
let policy = IdentityHeaderPolicy(claimHeaders: [("X-User-Email", ["email"])], strip: ["Remote-User"])
measure("header rewrite: strip look-alikes + hop-by-hop, add identity", iterations: 200_000) {
    blackHole(policy.upstreamHeaders(from: headers, session: session, token: token, routeName: "app"))
}

// The access log on the request path: render into this thread's shard (the writer thread drains to /dev/null).
let devNull = open("/dev/null", O_WRONLY)
let accessLog = AccessLog(enabled: true, fd: devNull)
let logEntry = AccessLog.Entry(requestID: "5f0c6a1e-8d1b-4c2e-9a57-1b2c3d4e5f60", method: "GET", path: "/dashboard/settings", route: "app",
                               decision: "proxy", status: 200, userID: "user_2abcdefghijklmnopqrstuvwxyz", authReason: nil,
                               upstreamMilliseconds: 0.412, durationMilliseconds: 0.533, bytesSent: 1234, clientAddress: "192.0.2.10",
                               host: "app.example.com", userAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
                               protocolVersion: "HTTP/1.1")
measure("access log line (render into the thread's buffer)", iterations: 200_000) { accessLog.write(logEntry) }
print("access log lines dropped during that run (output kept up if 0): \(accessLog.droppedLines)")
benchDecisionPath()
benchHTTP1()
benchDataPlane()
benchLoop()
// Identity assertions (`identity_assertion:`): a new ES256 signature per binding, and a binding reused
// within `reuse` seconds (what a repeated request costs).
let assertionKey = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-bench-\(getpid()).pem").path
let assertionIssuer = try! IdentityAssertionIssuer(keyFile: assertionKey, previousKeyFiles: [], settings: IdentityAssertionSettings())
try? FileManager.default.removeItem(atPath: assertionKey)
var benchPath = 0
measure("identity assertion: sign ES256 (new binding)", iterations: 5_000) {
    benchPath += 1
    blackHole(assertionIssuer.sign(.init(session: session, token: token, route: "app", audience: "http://127.0.0.1:3000",
                                         method: "GET", host: "app.example.com", path: "/dashboard/\(benchPath)"), now: now))
}
let reusedBinding = IdentityAssertionIssuer.Binding(session: session, token: token, route: "app", audience: "http://127.0.0.1:3000",
                                                    method: "GET", host: "app.example.com", path: "/dashboard/projects/42")
measure("identity assertion: reused within 5 s (same binding)", iterations: 200_000) {
    blackHole(assertionIssuer.assertion(for: reusedBinding, now: now))
}
