import COpenSSL

/// Settings for TLS to `https://` upstreams: the peer's chain is verified against the given roots (or the
/// system's), its name against the host the connection is for, ALPN offers `http/1.1`, TLS 1.2 at least.
public final class TLSClientContext: @unchecked Sendable {
    let context: OpaquePointer

    /// - Parameters:
    ///   - trustRootsPEMPath: PEM file of trusted roots; nil trusts the system's (OpenSSL's default paths).
    ///   - clientCertificate: presented when the upstream asks (mTLS).
    public convenience init(trustRootsPEMPath: String?, clientCertificate: TLSCertificateFiles? = nil) throws(TLSConfigError) {
        try self.init(trustRootsPEMPath: trustRootsPEMPath, clientCertificate: clientCertificate, adjust: { _ in })
    }

    /// `adjust` runs last on the raw SSL_CTX: tests use it to build peers the public API refuses (TLS 1.1).
    init(trustRootsPEMPath: String?, clientCertificate: TLSCertificateFiles?, adjust: (OpaquePointer) -> Void) throws(TLSConfigError) {
        guard let context = SSL_CTX_new(TLS_client_method()) else {
            throw .openSSL(operation: "SSL_CTX_new", reason: OpenSSLErrorQueue.drainDescription(fallback: "out of memory"))
        }
        do throws(TLSConfigError) {
            try TLSDefaults.apply(to: context)
            try Self.trust(trustRootsPEMPath, in: context)
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
            // SSL_CTX_set_alpn_protos returns 0 on success.
            guard SSL_CTX_set_alpn_protos(context, TLSDefaults.alpnHTTP11, UInt32(TLSDefaults.alpnHTTP11.count)) == 0 else {
                throw .openSSL(operation: "setting ALPN", reason: OpenSSLErrorQueue.drainDescription(fallback: "refused"))
            }
            if let clientCertificate {
                _ = try CertificateInstaller.install(clientCertificate, into: context)
            }
        } catch {
            SSL_CTX_free(context)
            throw error
        }
        adjust(context)
        self.context = context
    }

    deinit {
        SSL_CTX_free(context)
    }

    private static func trust(_ path: String?, in context: OpaquePointer) throws(TLSConfigError) {
        OpenSSLErrorQueue.clear()
        guard let path else {
            guard SSL_CTX_set_default_verify_paths(context) == 1 else {
                throw .openSSL(operation: "loading the system's trust roots", reason: OpenSSLErrorQueue.drainDescription(fallback: "refused"))
            }
            return
        }
        // Parsed here rather than by SSL_CTX_load_verify_locations, for the same precise errors as certificates.
        let store = SSL_CTX_get_cert_store(context)
        for root in try PEMFile.certificates(inFile: path) {
            guard X509_STORE_add_cert(store, root.pointer) == 1 else {
                throw .openSSL(operation: "trusting the roots in \(path)", reason: OpenSSLErrorQueue.drainDescription(fallback: "refused"))
            }
        }
    }
}
