import Foundation
import GatehouseTLS
import Synchronization

/// The trust store for `https://` upstreams on the data plane: the system roots, or `proxy.tls_ca_file`.
/// Read again on reload; its generation changes only when the file's path or content does, so pooled
/// connections verified against an older store are not reused.
struct DataPlaneTrust: Sendable {
    let generation: Int
    let context: Result<TLSClientContext, UpstreamTrustError>

    private struct Loaded {
        let pem: Data?
        let trust: DataPlaneTrust
    }

    private static let loaded = Mutex<(byPath: [String: Loaded], generation: Int)>(([:], 0))

    static func load(caFile: String?) -> DataPlaneTrust {
        let pem = caFile.flatMap { FileManager.default.contents(atPath: $0) }
        return loaded.withLock { state in
            if let known = state.byPath[caFile ?? ""], known.pem == pem { return known.trust }
            state.generation += 1
            let context: Result<TLSClientContext, UpstreamTrustError>
            if let caFile, pem == nil {
                context = .failure(UpstreamTrustError(message: "cannot read proxy.tls_ca_file \(caFile)"))
            } else {
                do {
                    context = .success(try TLSClientContext(trustRootsPEMPath: caFile))
                } catch {
                    context = .failure(UpstreamTrustError(message: "\(caFile ?? "the system roots"): \(error)"))
                }
            }
            let trust = DataPlaneTrust(generation: state.generation, context: context)
            state.byPath[caFile ?? ""] = Loaded(pem: pem, trust: trust)
            return trust
        }
    }
}
