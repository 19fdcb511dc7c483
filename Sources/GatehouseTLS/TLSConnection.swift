import COpenSSL
#if canImport(Glibc)
import Glibc
#endif

/// One TLS session over memory BIOs: the socket loop feeds what it read (`receiveCiphertext`) and sends what
/// `takeCiphertext` gives it; the HTTP side reads and writes plaintext. No I/O here, so every step is
/// testable with bytes. Not thread-safe: one per socket, used by one loop at a time.
public final class TLSConnection {
    private enum State {
        case handshaking
        case established
        /// The peer's close_notify arrived.
        case closedByPeer
        /// Sticky: OpenSSL must not be called again after a fatal error.
        case failed(TLSFailure)
    }

    private let ssl: OpaquePointer
    /// Ciphertext from the socket, consumed by OpenSSL. Owned by `ssl`.
    private let incoming: OpaquePointer
    /// Ciphertext OpenSSL produced, for the socket. Owned by `ssl`.
    private let outgoing: OpaquePointer
    /// Keeps the SSL_CTX(s), and the SNI callback's target, alive for this connection's life.
    private let owner: AnyObject
    private var state: State = .handshaking
    private var shutdownQueued = false
    /// The name a client connection verified its peer against (nil on the server side).
    private var clientServerName: String?

    /// Above this much unsent ciphertext, writes accept nothing more until the caller drains.
    public static let ciphertextBacklogLimit = 256 * 1024
    /// One TLS record's worth of plaintext per SSL_write, so a large write stops near the backlog limit.
    private static let recordPlaintext = 16 * 1024

    public convenience init(server: TLSServerContext) throws(TLSConfigError) {
        try self.init(context: server.contexts[0], owner: server)
        SSL_set_accept_state(ssl)
    }

    /// `serverName` is the upstream's host: a DNS name (sent as SNI and verified against the certificate's
    /// names) or an IP literal (verified against its IP addresses; no SNI, which RFC 6066 forbids for IPs).
    /// `resuming` offers an earlier connection's `resumableSession` (ignored unless made for `serverName`).
    public convenience init(client: TLSClientContext, serverName: String, resuming session: TLSSession? = nil) throws(TLSConfigError) {
        guard !serverName.isEmpty else { throw .emptyServerName }
        try self.init(context: client.context, owner: client)
        OpenSSLErrorQueue.clear()
        let isIPLiteral = Self.isIPLiteral(serverName)
        let configured: Bool
        if isIPLiteral {
            configured = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), serverName) == 1
        } else {
            SSL_set_hostflags(ssl, UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS))
            configured = SSL_set1_host(ssl, serverName) == 1 && gh_ssl_set_tlsext_host_name(ssl, serverName) == 1
        }
        guard configured else {
            throw .openSSL(operation: "setting the server name to verify", reason: OpenSSLErrorQueue.drainDescription(fallback: "refused"))
        }
        if let session, session.serverName == serverName {
            _ = SSL_set_session(ssl, session.pointer)  // takes its own reference
        }
        clientServerName = serverName
        SSL_set_connect_state(ssl)
    }

    private init(context: OpaquePointer, owner: AnyObject) throws(TLSConfigError) {
        guard let ssl = SSL_new(context) else {
            throw .openSSL(operation: "SSL_new", reason: OpenSSLErrorQueue.drainDescription(fallback: "out of memory"))
        }
        let incoming = BIO_new(BIO_s_mem())
        let outgoing = BIO_new(BIO_s_mem())
        guard let incoming, let outgoing else {
            BIO_free(incoming)  // BIO_free(NULL) is a no-op
            BIO_free(outgoing)
            SSL_free(ssl)
            throw .openSSL(operation: "BIO_new", reason: OpenSSLErrorQueue.drainDescription(fallback: "out of memory"))
        }
        SSL_set_bio(ssl, incoming, outgoing)
        self.ssl = ssl
        self.incoming = incoming
        self.outgoing = outgoing
        self.owner = owner
    }

    deinit {
        SSL_free(ssl)
    }

    // MARK: Ciphertext side (the socket)

    /// Bytes read from the socket.
    public func receiveCiphertext(_ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < bytes.count {
            let chunk = Int32(min(bytes.count - offset, Int(Int32.max)))
            let written = BIO_write(incoming, bytes.baseAddress! + offset, chunk)
            guard written > 0 else { return }  // only on allocation failure; the next read then fails
            offset += Int(written)
        }
    }

    /// The socket read end-of-stream: from now on a read that needs more ciphertext fails as truncated
    /// instead of waiting (a peer that closes without close_notify may have cut the data short).
    public func receiveEndOfCiphertext() {
        gh_bio_set_mem_eof_is_end(incoming)
    }

    /// Received ciphertext not yet decrypted: a loop stops reading the socket while this grows, so a peer
    /// whose plaintext nobody reads cannot make it buffer without bound.
    public var unprocessedCiphertextCount: Int { Int(gh_bio_pending(incoming)) }

    /// Bytes waiting to be written to the socket.
    public var pendingCiphertextCount: Int { Int(gh_bio_pending(outgoing)) }

    /// Moves up to `buffer.count` waiting bytes into `buffer`; returns how many. The caller keeps any part its
    /// socket write did not take.
    public func takeCiphertext(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        let count = BIO_read(outgoing, base, Int32(min(buffer.count, Int(Int32.max))))
        return max(0, Int(count))
    }

    // MARK: Handshake

    /// Runs the handshake as far as the ciphertext received allows; its output lands in the outgoing buffer.
    @discardableResult
    public func advanceHandshake() -> TLSHandshakeState {
        switch state {
        case .established, .closedByPeer: return .complete
        case .failed(let failure): return .failed(failure)
        case .handshaking: break
        }
        OpenSSLErrorQueue.clear()
        let result = SSL_do_handshake(ssl)
        if result == 1 {
            state = .established
            return .complete
        }
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .inProgress
        case let code:
            let failure = fail(code)
            return .failed(failure)
        }
    }

    public var isHandshakeComplete: Bool {
        switch state {
        case .established, .closedByPeer: true
        case .handshaking, .failed: false
        }
    }

    // MARK: Plaintext side (HTTP)

    /// Decrypts into `buffer`, driving the handshake first if it is not done.
    public func readPlaintext(into buffer: UnsafeMutableRawBufferPointer) -> TLSReadResult {
        switch state {
        case .failed(let failure): return .failed(failure)
        case .closedByPeer: return .closed
        case .handshaking:
            switch advanceHandshake() {
            case .inProgress: return .needMoreCiphertext
            case .failed(let failure): return .failed(failure)
            case .complete: break
            }
        case .established: break
        }
        guard let base = buffer.baseAddress, buffer.count > 0 else { return .bytes(0) }
        OpenSSLErrorQueue.clear()
        var count = 0
        if SSL_read_ex(ssl, base, buffer.count, &count) == 1 { return .bytes(count) }
        switch SSL_get_error(ssl, 0) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .needMoreCiphertext
        case SSL_ERROR_ZERO_RETURN:
            state = .closedByPeer
            return .closed
        case let code:
            return .failed(fail(code))
        }
    }

    /// Encrypts as much of `bytes` as the ciphertext backlog allows.
    public func writePlaintext(_ bytes: UnsafeRawBufferPointer) -> TLSWriteResult {
        switch state {
        case .failed(let failure): return .failed(failure)
        case .handshaking:
            switch advanceHandshake() {
            case .inProgress: return .needMoreCiphertext
            case .failed(let failure): return .failed(failure)
            case .complete: break
            }
        case .established, .closedByPeer: break
        }
        if shutdownQueued { return .failed(TLSFailure(reason: "write after shutdown")) }
        var accepted = 0
        while accepted < bytes.count, pendingCiphertextCount < Self.ciphertextBacklogLimit {
            let chunk = min(bytes.count - accepted, Self.recordPlaintext)
            var written = 0
            OpenSSLErrorQueue.clear()
            guard SSL_write_ex(ssl, bytes.baseAddress! + accepted, chunk, &written) == 1 else {
                switch SSL_get_error(ssl, 0) {
                case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                    return .accepted(accepted)
                case let code:
                    return .failed(fail(code))
                }
            }
            accepted += written
        }
        return .accepted(accepted)
    }

    /// Queues close_notify (once). Reading may go on until the peer's own close_notify.
    public func shutdown() {
        guard !shutdownQueued, isHandshakeComplete else { return }
        shutdownQueued = true
        OpenSSLErrorQueue.clear()
        _ = SSL_shutdown(ssl)
        OpenSSLErrorQueue.clear()
    }

    // MARK: What was negotiated

    public var negotiatedALPN: String? {
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &length)
        guard let data, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self)
    }

    /// The SNI name the client asked for (server side), or the one this client sent.
    public var requestedServerName: String? {
        SSL_get_servername(ssl, Int32(TLSEXT_NAMETYPE_host_name)).map { String(cString: $0) }
    }

    /// "TLSv1.3" or "TLSv1.2" once the handshake is done.
    public var protocolVersion: String? {
        isHandshakeComplete ? String(cString: SSL_get_version(ssl)) : nil
    }

    public var cipherSuite: String? {
        SSL_get_current_cipher(ssl).flatMap { SSL_CIPHER_get_name($0) }.map { String(cString: $0) }
    }

    public var isSessionReused: Bool { SSL_session_reused(ssl) == 1 }

    /// Client side: a session to offer the next connection to the same server name. With TLS 1.3 it exists
    /// only after `readPlaintext` has consumed the server's post-handshake ticket.
    public var resumableSession: TLSSession? {
        guard let clientServerName, isHandshakeComplete, let current = SSL_get_session(ssl),
              SSL_SESSION_is_resumable(current) == 1,
              // A copy: SSL_free marks the connection's own session unresumable unless close_notify was sent,
              // and the upstream pool frees idle connections without one.
              let copy = SSL_SESSION_dup(current)
        else { return nil }
        return TLSSession(copy, serverName: clientServerName)
    }

    /// The peer's leaf certificate subject ("/CN=app.example.test"), if it sent one.
    public var peerCertificateSubject: String? {
        SSL_get0_peer_certificate(ssl).map(CertificateDetails.subject)
    }

    /// The peer's leaf certificate's DNS subjectAltNames, lowercased.
    public var peerCertificateDNSNames: [String] {
        SSL_get0_peer_certificate(ssl).map(CertificateDetails.dnsNames) ?? []
    }

    // MARK: Failures

    private func fail(_ code: Int32) -> TLSFailure {
        let failure = TLSFailure(reason: describe(code))
        state = .failed(failure)
        return failure
    }

    private func describe(_ code: Int32) -> String {
        var reasons = OpenSSLErrorQueue.drainReasons()
        let verification = SSL_get_verify_result(ssl)
        if verification != X509_V_OK, let text = X509_verify_cert_error_string(verification) {
            let detail = String(cString: text)
            if let index = reasons.firstIndex(of: "certificate verify failed") {
                reasons[index] += ": " + detail
            } else {
                reasons.append("certificate verify failed: " + detail)
            }
        }
        if !reasons.isEmpty { return reasons.joined(separator: "; ") }
        return code == SSL_ERROR_SYSCALL ? "connection closed without close_notify" : "TLS error (SSL_get_error \(code))"
    }

    private static func isIPLiteral(_ name: String) -> Bool {
        var address = in6_addr()
        return inet_pton(AF_INET, name, &address) == 1 || inet_pton(AF_INET6, name, &address) == 1
    }
}
