import COpenSSL

/// The settings every Gatehouse SSL_CTX shares, server or client.
enum TLSDefaults {
    /// TLS 1.2 suites: ECDHE key exchange with AEAD ciphers only (forward secrecy, no CBC, no RSA kex).
    static let tls12Ciphers = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")
    /// TLS 1.3 suites (all three are AEAD).
    static let tls13Ciphersuites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
    /// ALPN wire form: length-prefixed protocol names. `h2` joins when HTTP/2 does.
    static let alpnHTTP11: [UInt8] = [8] + Array("http/1.1".utf8)

    static func apply(to context: OpaquePointer) throws(TLSConfigError) {
        OpenSSLErrorQueue.clear()
        guard gh_ssl_ctx_set_min_proto_version(context, TLS1_2_VERSION) == 1 else {
            throw .openSSL(operation: "setting TLS 1.2 as the minimum", reason: OpenSSLErrorQueue.drainDescription(fallback: "refused"))
        }
        // Compression (CRIME) and renegotiation (a client-driven CPU and state-machine cost) are off.
        SSL_CTX_set_options(context, gh_ssl_op_no_compression() | gh_ssl_op_no_renegotiation())
        guard SSL_CTX_set_cipher_list(context, tls12Ciphers) == 1,
              SSL_CTX_set_ciphersuites(context, tls13Ciphersuites) == 1 else {
            throw .openSSL(operation: "setting the cipher suites", reason: OpenSSLErrorQueue.drainDescription(fallback: "refused"))
        }
        gh_ssl_ctx_set_modes(context)
    }
}
