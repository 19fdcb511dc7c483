import Foundation
import GatehouseConfig
import GatehouseCore
import GatehouseDataPlane
import GatehouseDevIssuer
import GatehouseServer

/// The whole per-request decision path as the data plane runs it (RequestPolicy.prepare, evaluateWithoutFetching,
/// RequestPolicy.verdict) on scripts/bench's config: a protected route with a repeated bearer token (the
/// verified-token cache answers) and a public route. `gatehouse-microbench decision` runs only these;
/// `decision dump` prints the upstream heads instead (to compare before and after a change).
func benchDecisionPath(dump: Bool = false) {
    let issuer = benchIssuer(kid: "bench-decision")
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-bench-\(getpid())").path
    try! FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    try! issuer.jwks.serialized().write(toFile: directory + "/jwks.json", atomically: true, encoding: .utf8)
    let yaml = """
        listen: "127.0.0.1:8080"
        upstream: "http://127.0.0.1:3000"
        access_log: off
        clerk: { jwks_file: \(directory)/jwks.json, token_cache_size: 10000, secret_key: sk_live_bench, api_url: "http://127.0.0.1:9" }
        sign_in_url: /sign-in
        routes:
          - { name: public, match: ["/public(.*)"], access: public }
          - { name: api, match: ["/api(.*)"], accepts: api_key }
          - { name: app, match: ["/app(.*)"], require: { org_role: "org:member" } }
        """
    let settings = try! ConfigLoader.load(yaml: yaml, file: "bench.yaml", baseDirectory: directory, environment: [:])
    // scripts/bench's (b): the verified-token cache off, so every request decodes and verifies the token in full.
    var uncached = settings
    uncached.tokenCacheSize = 0
    let now = Date().timeIntervalSince1970
    let token = issuer.sign(DevIssuer.sessionClaims(userId: "user_2abcdefghijklmnopqrstuvwxyz", issuedAt: now, lifetime: 3600,
                                                   org: ("org_1", "acme", "org:member", [])))
    let browserFields = "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
        + "Accept: application/json\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n"
        + "Connection: keep-alive\r\nCookie: theme=dark\r\nX-Gatehouse-User-Id: spoofed\r\n"
    let wrkHead = "GET /app/index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAuthorization: Bearer \(token)\r\n\r\n"
    let cases: [(String, String, String)] = [
        ("protected, wrk head, cached bearer", wrkHead, "127.0.0.1"),
        ("protected, wrk head, cache off (verified in full)", wrkHead, "127.0.0.1"),
        ("protected, 9 fields, cached bearer", "GET /app/projects/42?tab=x HTTP/1.1\r\nHost: app.example.com\r\nAuthorization: Bearer \(token)\r\n"
            + browserFields + "\r\n", "192.0.2.10"),
        ("protected, IPv6 peer, cached bearer", "GET /app/index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAuthorization: Bearer \(token)\r\n\r\n", "2001:db8::1"),
        ("public, wrk head", "GET /public/index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n", "127.0.0.1"),
        ("protected, no token (401)", "GET /app/index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept: application/json\r\n\r\n", "127.0.0.1"),
    ]
    // GATEHOUSE_BENCH_ONLY=text: only the cases whose name contains it (to profile one).
    let only = benchOnly
    for (name, head, peer) in cases where only.map(name.contains) ?? true {
        let verifiesInFull = name.contains("cache off")
        guard let probe = DecisionPathProbe(settings: verifiesInFull ? uncached : settings, head: Array(head.utf8), peer: peer) else { fatalError("bench head refused: \(name)") }
        guard let first = probe.run(now: now, requestNumber: 1) else { fatalError("bench request would wait: \(name)") }
        if dump {
            switch first {
            case .forwarded(let head): print("== \(name)\n" + String(decoding: head.bytes, as: UTF8.self))
            case .answered(let status): print("== \(name)\nanswered \(status)\n")
            }
            continue
        }
        if name.hasPrefix("protected, no token") {
            guard first == .answered(status: 401) else { fatalError("bench expected 401: \(name), got \(first)") }
        } else {
            guard case .forwarded = first else { fatalError("bench request not forwarded: \(name), got \(first)") }
        }
        var n: UInt64 = 1
        measureCPU("decision path: \(name)", iterations: verifiesInFull ? 5_000 : 50_000) {
            n &+= 1
            blackHole(probe.run(now: now, requestNumber: n))
        }
    }
}

/// A signing issuer for the benchmarks. GATEHOUSE_BENCH_KEY=file.pem signs with that key instead of a new one
/// (key generation's prime search runs a different number of instructions every time, which would swamp a
/// count under valgrind).
func benchIssuer(kid: String) -> DevIssuer {
    try! ProcessInfo.processInfo.environment["GATEHOUSE_BENCH_KEY"].map {
        try DevIssuer(kid: kid, privateKeyPEM: String(contentsOfFile: $0, encoding: .utf8))
    } ?? DevIssuer(kid: kid)
}

/// `measure` on this thread's CPU time instead of the wall clock: the machine is shared, and time spent
/// waiting for a core is not the code's cost.
/// GATEHOUSE_BENCH_ITERATIONS=n runs n per sample instead (to count instructions under valgrind, where the
/// difference between two counts is the cost of the extra iterations alone).
func measureCPU(_ name: String, iterations: Int, _ body: () -> Void) {
    let iterations = ProcessInfo.processInfo.environment["GATEHOUSE_BENCH_ITERATIONS"].flatMap(Int.init) ?? iterations
    func cpuNanoseconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
        return Double(t.tv_sec) * 1e9 + Double(t.tv_nsec)
    }
    var samples: [Double] = []
    for _ in 0..<5 {
        let start = cpuNanoseconds()
        for _ in 0..<iterations { body() }
        samples.append((cpuNanoseconds() - start) / Double(iterations))
    }
    samples.sort()
    print(String(format: "%-58@ %10.0f ns/op (CPU time)", name as NSString, samples[2]))
}
