import GatehouseTLS

/// The data plane's trust store (OpenSSL), reloaded with `proxy.tls_ca_file`; see `TrustStore`.
typealias DataPlaneTrust = TrustStore<TLSClientContext>

extension TrustStore where Context == TLSClientContext {
    static func load(caFile: String?) -> DataPlaneTrust { dataPlaneTrustStores.load(caFile: caFile) }
}

private let dataPlaneTrustStores = TrustStoreCache<TLSClientContext> { caFile, _ in
    do {
        // OpenSSL reads the file by path (its API has no PEM-bytes form here); the cache compared the bytes.
        return try TLSClientContext(trustRootsPEMPath: caFile)
    } catch {
        throw UpstreamTrustError(message: "\(caFile ?? "the system roots"): \(error)")
    }
}
