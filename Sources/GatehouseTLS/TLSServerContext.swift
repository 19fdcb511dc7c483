import COpenSSL

/// The listener's TLS settings and certificates: one SSL_CTX per certificate (all with the same settings);
/// SNI moves a connection from the first to the one whose names match.
///
/// Immutable once built, so any thread may start connections from it. Reload builds a new context from the
/// same paths: connections keep the context they started with (each holds a reference to it, and OpenSSL
/// reference-counts the SSL_CTX under each SSL), new ones take the new context.
public final class TLSServerContext: @unchecked Sendable {
    /// Problems worth logging that do not stop the listener (an expired certificate, one SNI never picks).
    public let warnings: [TLSConfigWarning]
    /// contexts[0] is the default: no SNI, or no certificate matches the name.
    let contexts: [OpaquePointer]
    let matcher: ServerNameMatcher

    public init(certificates: [TLSCertificateFiles]) throws(TLSConfigError) {
        guard !certificates.isEmpty else { throw .noCertificates }
        var contexts: [OpaquePointer] = []
        var names: [[String]] = []
        var warnings: [TLSConfigWarning] = []
        do throws(TLSConfigError) {
            for files in certificates {
                guard let context = SSL_CTX_new(TLS_server_method()) else {
                    throw .openSSL(operation: "SSL_CTX_new", reason: OpenSSLErrorQueue.drainDescription(fallback: "out of memory"))
                }
                contexts.append(context)
                try Self.configure(context)
                let installed = try CertificateInstaller.install(files, into: context)
                names.append(installed.dnsNames)
                warnings += installed.warnings
            }
        } catch {
            contexts.forEach { SSL_CTX_free($0) }
            throw error
        }
        self.contexts = contexts
        self.matcher = ServerNameMatcher(namesByCertificate: names)
        self.warnings = warnings
        // Only the first context sees the ClientHello's server name; the callback finds this object by pointer.
        // Unretained is safe: every TLSConnection that can run the callback holds this context.
        gh_ssl_ctx_set_servername_callback(contexts[0], serverNameCallback, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        contexts.forEach { SSL_CTX_free($0) }
    }

    /// The DNS names of each certificate, in order (for logs and `check-config`).
    public var certificateDNSNames: [[String]] { matcher.namesByCertificate }

    private static func configure(_ context: OpaquePointer) throws(TLSConfigError) {
        try TLSDefaults.apply(to: context)
        SSL_CTX_set_options(context, gh_ssl_op_cipher_server_preference())
        // The chain file is the chain (as nginx's ssl_certificate): nothing is looked up per handshake.
        gh_ssl_ctx_set_no_auto_chain(context)
        // Session tickets stay on (OpenSSL's default; keys are per context, so a reload starts new ones).
        // A session id context lets sessions resume at all once client certificates are in play.
        let sessionContext = Array("gatehouse".utf8)
        guard SSL_CTX_set_session_id_context(context, sessionContext, UInt32(sessionContext.count)) == 1 else {
            throw .openSSL(operation: "setting the session id context", reason: OpenSSLErrorQueue.drainDescription(fallback: "refused"))
        }
        SSL_CTX_set_alpn_select_cb(context, alpnSelectCallback, nil)
    }
}

/// SNI: switch the connection to the matching certificate's context before the server's reply is built.
private let serverNameCallback: gh_servername_callback = { ssl, _, argument in
    guard let ssl, let argument, let requested = SSL_get_servername(ssl, Int32(TLSEXT_NAMETYPE_host_name)) else {
        return SSL_TLSEXT_ERR_OK
    }
    let server = Unmanaged<TLSServerContext>.fromOpaque(argument).takeUnretainedValue()
    if let index = server.matcher.certificateIndex(for: String(cString: requested)), index != 0 {
        _ = SSL_set_SSL_CTX(ssl, server.contexts[index])
    }
    return SSL_TLSEXT_ERR_OK
}

/// ALPN: `http/1.1` when the client offers it. A client that offers ALPN without it is refused with the
/// no_application_protocol alert, as nginx does since 1.21.4 (cross-protocol attacks, ALPACA); a client
/// that sends no ALPN at all is served without it.
private let alpnSelectCallback: @convention(c) (
    OpaquePointer?, UnsafeMutablePointer<UnsafePointer<UInt8>?>?, UnsafeMutablePointer<UInt8>?,
    UnsafePointer<UInt8>?, UInt32, UnsafeMutableRawPointer?
) -> Int32 = { _, out, outLength, offered, offeredLength, _ in
    guard let out, let outLength, let offered else { return SSL_TLSEXT_ERR_ALERT_FATAL }
    let list = UnsafeBufferPointer(start: offered, count: Int(offeredLength))
    guard let range = ALPNList.range(of: TLSDefaults.alpnHTTP11.dropFirst(), in: list) else { return SSL_TLSEXT_ERR_ALERT_FATAL }
    // The answer points into the client's own list, which OpenSSL keeps for the handshake.
    out.pointee = offered + range.lowerBound
    outLength.pointee = UInt8(range.count)
    return SSL_TLSEXT_ERR_OK
}
