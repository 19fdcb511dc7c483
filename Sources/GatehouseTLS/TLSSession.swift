import COpenSSL

/// A session a client connection may resume (a TLS 1.3 ticket or a TLS 1.2 session), so a new connection to
/// the same upstream skips the certificate exchange and its signature. Tied to the server name it was
/// verified for: offered to any other name it is ignored, because a resumed session is not re-verified.
public final class TLSSession: @unchecked Sendable {
    /// One reference to an immutable SSL_SESSION.
    let pointer: OpaquePointer
    public let serverName: String

    init(_ pointer: OpaquePointer, serverName: String) {
        self.pointer = pointer
        self.serverName = serverName
    }

    deinit {
        SSL_SESSION_free(pointer)
    }
}
