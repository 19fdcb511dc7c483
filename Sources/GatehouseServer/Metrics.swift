import Synchronization

/// Prometheus counters and histograms for the daemon. Labels are route names, decisions and statuses —
/// never paths or user ids — so cardinality stays bounded by the config.
///
/// Hand-written rather than swift-metrics + swift-prometheus: the set is small and fixed, and this keeps the
/// hot path to one short lock per request.
public final class GatewayMetrics: Sendable {
    static let latencyBuckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    private struct Histogram {
        var buckets = [Int](repeating: 0, count: GatewayMetrics.latencyBuckets.count)
        var count = 0
        var sum = 0.0

        mutating func record(_ seconds: Double) {
            count += 1
            sum += seconds
            for (i, bound) in GatewayMetrics.latencyBuckets.enumerated() where seconds <= bound { buckets[i] += 1 }
        }
    }

    private struct RequestKey: Hashable {
        let route: String
        let decision: String
        let status: Int
    }

    private struct State {
        var requests: [RequestKey: Int] = [:]
        var latency: [String: Histogram] = [:]  // route
        var upstreamErrors: [String: Int] = [:]  // kind
        var reloads: [String: Int] = [:]  // result
        var rejected: [Int: Int] = [:]  // status of requests refused before routing
        var openConnections = 0
        var refusedConnections = 0
        var connectionSetupFailures = 0
        /// Where the last request's counter and histogram are: the next request is nearly always the same
        /// route, decision and status, found by comparing instead of hashing both keys again (~0.3% of the CPU
        /// per request). Valid until a key is added (which moves entries); cleared then.
        var lastRequest: (key: RequestKey, index: Dictionary<RequestKey, Int>.Index)?
        var lastLatency: (route: String, index: Dictionary<String, Histogram>.Index)?

        mutating func countRequest(_ key: RequestKey) {
            if let last = lastRequest, last.key == key {
                requests.values[last.index] += 1
                return
            }
            if let index = requests.index(forKey: key) {
                requests.values[index] += 1
                lastRequest = (key, index)
                return
            }
            requests[key] = 1
            // Indices into a dictionary that grew may point elsewhere: found again next time.
            lastRequest = nil
        }

        mutating func recordLatency(route: String, seconds: Double) {
            if let last = lastLatency, last.route == route {
                latency.values[last.index].record(seconds)
                return
            }
            if let index = latency.index(forKey: route) {
                latency.values[index].record(seconds)
                lastLatency = (route, index)
                return
            }
            var histogram = Histogram()
            histogram.record(seconds)
            latency[route] = histogram
            lastLatency = nil
        }
    }

    private let state = Mutex(State())

    public init() {}

    public func recordRequest(route: String, decision: String, status: Int, seconds: Double) {
        state.withLock { s in
            s.countRequest(RequestKey(route: route, decision: decision, status: status))
            // In place: copying the histogram out and back copied its bucket array on every request.
            s.recordLatency(route: route, seconds: seconds)
        }
    }

    public func recordUpstreamError(_ kind: String) { state.withLock { $0.upstreamErrors[kind, default: 0] += 1 } }
    public func recordReload(success: Bool) { state.withLock { $0.reloads[success ? "success" : "failure", default: 0] += 1 } }
    public func recordRejected(status: Int) { state.withLock { $0.rejected[status, default: 0] += 1 } }
    public func connectionOpened() { state.withLock { $0.openConnections += 1 } }
    public func connectionClosed() { state.withLock { $0.openConnections -= 1 } }
    public func connectionRefused() { state.withLock { $0.refusedConnections += 1 } }
    public func connectionSetupFailed() { state.withLock { $0.connectionSetupFailures += 1 } }

    /// Prometheus text exposition format 0.0.4.
    public func render(jwksFetches: Int, jwksFailures: Int, signingKeys: Int, tokenCacheHits: Int, tokenCacheMisses: Int) -> String {
        // /proc is read outside the lock that request accounting takes.
        let processText = ProcessStats.current()?.exposition ?? ""
        return state.withLock { s in
            var out = ""
            out += "# HELP gatehouse_requests_total Requests by route, decision and status.\n# TYPE gatehouse_requests_total counter\n"
            let sorted = s.requests.sorted { ($0.key.route, $0.key.decision, $0.key.status) < ($1.key.route, $1.key.decision, $1.key.status) }
            for (key, value) in sorted {
                out += "gatehouse_requests_total{route=\"\(key.route)\",decision=\"\(key.decision)\",status=\"\(key.status)\"} \(value)\n"
            }
            out += "# HELP gatehouse_request_duration_seconds Time from request head to response end.\n# TYPE gatehouse_request_duration_seconds histogram\n"
            for (route, h) in s.latency.sorted(by: { $0.key < $1.key }) {
                for (i, bound) in GatewayMetrics.latencyBuckets.enumerated() {
                    out += "gatehouse_request_duration_seconds_bucket{route=\"\(route)\",le=\"\(bound)\"} \(h.buckets[i])\n"
                }
                out += "gatehouse_request_duration_seconds_bucket{route=\"\(route)\",le=\"+Inf\"} \(h.count)\n"
                out += "gatehouse_request_duration_seconds_sum{route=\"\(route)\"} \(h.sum)\n"
                out += "gatehouse_request_duration_seconds_count{route=\"\(route)\"} \(h.count)\n"
            }
            out += "# HELP gatehouse_rejected_requests_total Requests refused before routing (unparseable or ambiguous).\n# TYPE gatehouse_rejected_requests_total counter\n"
            for (status, value) in s.rejected.sorted(by: { $0.key < $1.key }) {
                out += "gatehouse_rejected_requests_total{status=\"\(status)\"} \(value)\n"
            }
            out += "# HELP gatehouse_upstream_errors_total Upstream failures by kind.\n# TYPE gatehouse_upstream_errors_total counter\n"
            for (kind, value) in s.upstreamErrors.sorted(by: { $0.key < $1.key }) {
                out += "gatehouse_upstream_errors_total{kind=\"\(kind)\"} \(value)\n"
            }
            out += "# HELP gatehouse_config_reloads_total Config reloads by result.\n# TYPE gatehouse_config_reloads_total counter\n"
            for (result, value) in s.reloads.sorted(by: { $0.key < $1.key }) {
                out += "gatehouse_config_reloads_total{result=\"\(result)\"} \(value)\n"
            }
            out += "# HELP gatehouse_jwks_fetches_total JWKS fetches.\n# TYPE gatehouse_jwks_fetches_total counter\ngatehouse_jwks_fetches_total \(jwksFetches)\n"
            out += "# HELP gatehouse_jwks_fetch_failures_total Failed JWKS fetches.\n# TYPE gatehouse_jwks_fetch_failures_total counter\ngatehouse_jwks_fetch_failures_total \(jwksFailures)\n"
            out += "# HELP gatehouse_token_cache_hits_total Requests whose token signature was already verified.\n# TYPE gatehouse_token_cache_hits_total counter\ngatehouse_token_cache_hits_total \(tokenCacheHits)\n"
            out += "# HELP gatehouse_token_cache_misses_total Tokens verified in full.\n# TYPE gatehouse_token_cache_misses_total counter\ngatehouse_token_cache_misses_total \(tokenCacheMisses)\n"
            out += "# HELP gatehouse_signing_keys Signing keys in force.\n# TYPE gatehouse_signing_keys gauge\ngatehouse_signing_keys \(signingKeys)\n"
            out += "# HELP gatehouse_open_connections Open client connections.\n# TYPE gatehouse_open_connections gauge\ngatehouse_open_connections \(s.openConnections)\n"
            out += "# HELP gatehouse_refused_connections_total Connections refused over max_connections.\n# TYPE gatehouse_refused_connections_total counter\ngatehouse_refused_connections_total \(s.refusedConnections)\n"
            out += "# HELP gatehouse_connection_setup_failures_total Accepted connections reset because they could not be set up (socket options, pipeline), and failed accepts.\n# TYPE gatehouse_connection_setup_failures_total counter\ngatehouse_connection_setup_failures_total \(s.connectionSetupFailures)\n"
            out += "# HELP gatehouse_build_info The running binary: version and git commit (always 1).\n# TYPE gatehouse_build_info gauge\n"
            out += "gatehouse_build_info{version=\"\(BuildInfo.version)\",commit=\"\(BuildInfo.commit)\",swift=\"\(BuildInfo.swiftVersion)\"} 1\n"
            out += processText
            return out
        }
    }
}
