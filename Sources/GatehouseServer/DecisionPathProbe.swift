import GatehouseAuth
import GatehouseConfig
import GatehouseCore
import GatehouseDataPlane
import GatehouseEngine
import GatehouseHTTP1

/// The data plane's per-request decision path without sockets, for gatehouse-microbench: what
/// `ClientConnection.decide` runs for a head that decides on the loop (RequestPolicy.prepare, the engine's
/// evaluateWithoutFetching, RequestPolicy.verdict), against one snapshot.
public struct DecisionPathProbe: Sendable {
    let snapshot: GatewaySnapshot
    let head: [UInt8]
    let parsed: RequestHead
    let peer: String

    /// `head`: one complete request head (request line, fields, blank line).
    public init?(settings: GatehouseSettings, head: [UInt8], peer: String) {
        var parser = RequestHeadParser()
        guard case .complete(let parsed) = parser.parse(head) else { return nil }
        let store = Gatekeeper.makeKeyStore(for: settings, remote: { _, _ in fatalError("the probe needs local keys") })
        self.snapshot = GatewaySnapshot(settings: settings, keyStore: store, generation: 1, tokenCache: TokenCache(capacity: settings.tokenCacheSize))
        self.head = head
        self.parsed = parsed
        self.peer = peer
    }

    /// One request: the upstream head when it is forwarded, else the answer's status (nil: it would wait for a fetch).
    public func run(now: Double, requestNumber: UInt64) -> Outcome? {
        let (prepared, step) = head.withUnsafeBytes { bytes in
            RequestPolicy.prepare(parsed, bytes, peer: peer, snapshot: snapshot, newRequestID: { RequestID.hex(0x5eed, requestNumber) })
        }
        let verdict: ExchangeVerdict
        switch step {
        case .answered(let answer): verdict = answer
        case .evaluate:
            guard let evaluation = snapshot.gatekeeper.evaluateWithoutFetching(prepared.raw, now: now) else { return nil }
            verdict = RequestPolicy.verdict(evaluation, prepared, snapshot: snapshot, peer: peer, now: now)
        }
        switch verdict {
        case .answer(let decision, _, _): return .answered(status: decision.status)
        case .forward(let plan): return .forwarded(head: plan.head)
        }
    }

    public enum Outcome: Sendable, Equatable {
        case answered(status: Int)
        case forwarded(head: RenderedHead)
    }
}
