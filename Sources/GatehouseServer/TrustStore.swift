import Foundation
import Synchronization

/// The trust store for `https://` upstreams: `proxy.tls_ca_file` as read at start or at the last reload, or the
/// system roots. Verification is always full (chain and host name): there is no setting that turns it off.
/// One type for both engines; `Context` is the TLS library's (NIOSSL's for the NIO listener, OpenSSL's for the
/// data plane).
struct TrustStore<Context: Sendable>: Sendable {
    /// Changes whenever the file's path or content does, so pooled connections can tell they are stale.
    let generation: Int
    let context: Result<Context, UpstreamTrustError>
}

/// Trust stores by path: the last content read and the store built from it (building one is costly; a reload
/// that did not change the file keeps it, and its generation).
final class TrustStoreCache<Context: Sendable>: Sendable {
    private let state = Mutex<(byPath: [String: (pem: Data?, store: TrustStore<Context>)], generation: Int)>(([:], 0))
    /// Builds a context from `proxy.tls_ca_file`'s path and the bytes read from it (nil path: system roots).
    private let build: @Sendable (_ caFile: String?, _ pem: Data?) throws -> Context

    init(build: @escaping @Sendable (_ caFile: String?, _ pem: Data?) throws -> Context) {
        self.build = build
    }

    func load(caFile: String?) -> TrustStore<Context> {
        let pem = caFile.flatMap { FileManager.default.contents(atPath: $0) }
        return state.withLock { state in
            if let known = state.byPath[caFile ?? ""], known.pem == pem { return known.store }
            state.generation += 1
            let context: Result<Context, UpstreamTrustError>
            if let caFile, pem == nil {
                context = .failure(UpstreamTrustError(message: "cannot read proxy.tls_ca_file \(caFile)"))
            } else {
                do { context = .success(try build(caFile, pem)) } catch let error as UpstreamTrustError {
                    context = .failure(error)
                } catch {
                    context = .failure(UpstreamTrustError(message: "\(error)"))
                }
            }
            let store = TrustStore(generation: state.generation, context: context)
            state.byPath[caFile ?? ""] = (pem, store)
            return store
        }
    }
}

struct UpstreamTrustError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
