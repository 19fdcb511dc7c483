import Foundation
import GatehouseAuth
import GatehouseConfig
import GatehouseCore
import GatehouseDataPlane
import GatehouseEngine
import GatehouseHTTP1

/// What the data plane would do with a request, for `gatehouse explain`: the request is written as a head,
/// read by the data plane's own parser, decided and turned into its verdict by the same RequestPolicy the
/// loop uses (nothing else decides). Credentials in the upstream head are masked in the report.
public enum VerdictReport {
    public static func json(settings: GatehouseSettings, keyStore: KeyStore, method: String, target: String, headers: HeaderList,
                            now: Double) async -> JSONValue {
        var text = "\(method) \(target) HTTP/1.1\r\n"
        for field in headers { text += "\(field.name): \(field.value)\r\n" }
        text += "\r\n"
        let head = Array(text.utf8)
        var parser = RequestHeadParser(limits: HTTP1Limits(maxHeadSize: settings.server.maxHeaderBytes, maxFieldCount: settings.server.maxHeaderCount))
        let parsed: RequestHead
        switch parser.parse(head) {
        case .complete(let complete): parsed = complete
        case .refused(let refusal): return .object(JSONObject([("verdict", "refused"), ("status", .number(JSONNumber(refusal.status))),
                                                              ("reason", .string("\(refusal)"))]))
        case .needMore: return .object(JSONObject([("verdict", "refused"), ("reason", "incomplete head")]))
        }
        let snapshot = GatewaySnapshot(settings: settings, keyStore: keyStore, generation: 1, tokenCache: TokenCache(capacity: settings.tokenCacheSize))
        let (prepared, step) = head.withUnsafeBytes { bytes in
            RequestPolicy.prepare(parsed, bytes, peer: "127.0.0.1", snapshot: snapshot, newRequestID: { "explain" })
        }
        let verdict: ExchangeVerdict
        switch step {
        case .answered(let answer):
            verdict = answer
        case .evaluate:
            let evaluation = await snapshot.gatekeeper.evaluate(prepared.raw, now: now)
            verdict = RequestPolicy.verdict(evaluation, prepared, snapshot: snapshot, peer: "127.0.0.1", now: now)
        }
        switch verdict {
        case .answer(let decision, let label, let closeConnection):
            return .object(JSONObject([("verdict", "answer"), ("status", .number(JSONNumber(decision.status))), ("label", .string(label)),
                                       ("close_connection", .bool(closeConnection))]))
        case .forward(let plan):
            var members: [(key: String, value: JSONValue)] = [
                ("verdict", "forward"), ("upstream", .string(plan.upstream.description)),
                ("upstream_head", .array(masked(plan.head.bytes).map { .string($0) })),
                ("retry_on_stale_connection", .bool(plan.retryable)), ("sends_100_continue", .bool(plan.sendContinue)),
                ("chunked_body", .bool(plan.chunkedBody)),
            ]
            if let lifetime = plan.tunnelLifetime { members.append(("tunnel_lifetime_seconds", .number(JSONNumber(Int(lifetime))))) }
            return .object(JSONObject(members))
        }
    }

    /// The head's lines, with the values of fields that carry credentials replaced.
    static func masked(_ head: [UInt8]) -> [String] {
        String(decoding: head, as: UTF8.self).components(separatedBy: "\r\n").filter { !$0.isEmpty }.map { line in
            guard let colon = line.firstIndex(of: ":") else { return line }
            let name = line[..<colon].lowercased()
            return ["authorization", "cookie", "x-gatehouse-assertion", "clerk-secret-key"].contains(name) ? line[..<colon] + ": (masked)" : line
        }
    }
}
