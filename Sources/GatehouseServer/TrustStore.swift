import Foundation
import Synchronization

/// The trust store for `https://` upstreams: `proxy.tls_ca_file` as read at start or at the last reload, or the
/// system roots. Verification is always full (chain and host name): there is no setting that turns it off.
/// One type for both engines; `Context` is the TLS library's (NIOSSL's for the NIO listener, OpenSSL's for the
/// data plane).
///
/// The context is built on first use: loading the system roots costs OpenSSL ~25 ms and BoringSSL as much again
/// (measured: most of the start-up time of a gateway with no `https://` upstream), and holds ~140 parsed
/// certificates. A config that names an `https://` upstream warms it off the loops right after start
/// (`warm()`), so the first such connection does not wait for it.
struct TrustStore<Context: Sendable>: Sendable {
    /// Changes whenever the file's path or content does, so pooled connections can tell they are stale.
    let generation: Int
    private let built: LazyTrustContext<Context>

    init(generation: Int, build: @escaping @Sendable () -> Result<Context, UpstreamTrustError>) {
        self.generation = generation
        self.built = LazyTrustContext(build: build)
    }

    /// The context, built now if this is its first use (callers that must not wait call `warm()` first).
    var context: Result<Context, UpstreamTrustError> { built.value }

    /// Builds the context on a background thread, if it is not built yet.
    func warm() {
        let built = self.built
        DispatchQueue.global(qos: .utility).async { _ = built.value }
    }
}

/// A trust context built once, by whichever caller first needs it (others wait for that build).
final class LazyTrustContext<Context: Sendable>: Sendable {
    private let state = Mutex<Result<Context, UpstreamTrustError>?>(nil)
    private let build: @Sendable () -> Result<Context, UpstreamTrustError>

    init(build: @escaping @Sendable () -> Result<Context, UpstreamTrustError>) {
        self.build = build
    }

    var value: Result<Context, UpstreamTrustError> {
        state.withLock { state in
            if let state { return state }
            let value = build()
            state = value
            return value
        }
    }
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
            let build = self.build
            let store = TrustStore<Context>(generation: state.generation) {
                if let caFile, pem == nil { return .failure(UpstreamTrustError(message: "cannot read proxy.tls_ca_file \(caFile)")) }
                do { return .success(try build(caFile, pem)) } catch let error as UpstreamTrustError {
                    return .failure(error)
                } catch {
                    return .failure(UpstreamTrustError(message: "\(error)"))
                }
            }
            state.byPath[caFile ?? ""] = (pem, store)
            return store
        }
    }
}

struct UpstreamTrustError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
