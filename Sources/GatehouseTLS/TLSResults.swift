/// Why a connection failed, in OpenSSL's words plus the verification result when a certificate was refused
/// ("certificate verify failed: hostname mismatch"). Never carries key material or plaintext.
public struct TLSFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String
    public init(reason: String) { self.reason = reason }
    public var description: String { reason }
}

public enum TLSHandshakeState: Sendable, Equatable {
    /// Feed more ciphertext (and send what `pendingCiphertextCount` says is waiting).
    case inProgress
    case complete
    case failed(TLSFailure)
}

public enum TLSReadResult: Sendable, Equatable {
    /// This many plaintext bytes were written into the buffer.
    case bytes(Int)
    case needMoreCiphertext
    /// The peer sent close_notify: no more plaintext will come.
    case closed
    /// Fatal: send any pending ciphertext (an alert), then close the socket.
    case failed(TLSFailure)
}

public enum TLSWriteResult: Sendable, Equatable {
    /// This many plaintext bytes were encrypted (fewer than given once the ciphertext backlog is full: drain
    /// `takeCiphertext` and offer the rest again).
    case accepted(Int)
    /// The handshake is not done yet; feed ciphertext first.
    case needMoreCiphertext
    case failed(TLSFailure)
}
