/// Why a TLS context could not be built. Messages name the file and the fault, never key material.
public enum TLSConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    case noCertificates
    case fileNotReadable(path: String, reason: String)
    case fileTooLarge(path: String, limit: Int)
    case noCertificateInFile(path: String)
    case noPrivateKeyInFile(path: String)
    case keyDoesNotMatchCertificate(certificatePath: String, privateKeyPath: String)
    case emptyServerName
    /// OpenSSL refused a setting or an object; the text is OpenSSL's error queue in words.
    case openSSL(operation: String, reason: String)

    public var description: String {
        switch self {
        case .noCertificates:
            "no TLS certificate configured"
        case .fileNotReadable(let path, let reason):
            "cannot read \(path): \(reason)"
        case .fileTooLarge(let path, let limit):
            "\(path) is larger than \(limit) bytes; not a PEM certificate or key"
        case .noCertificateInFile(let path):
            "no PEM certificate in \(path)"
        case .noPrivateKeyInFile(let path):
            "no PEM private key in \(path)"
        case .keyDoesNotMatchCertificate(let certificatePath, let privateKeyPath):
            "the private key in \(privateKeyPath) does not match the certificate in \(certificatePath)"
        case .emptyServerName:
            "an empty server name cannot be verified"
        case .openSSL(let operation, let reason):
            "\(operation) failed: \(reason)"
        }
    }
}

/// Something about a certificate worth an operator's attention that does not stop the listener
/// (nginx, too, serves an expired certificate: clients decide).
public enum TLSConfigWarning: Sendable, Equatable, CustomStringConvertible {
    case expired(certificatePath: String, notAfter: String)
    case notYetValid(certificatePath: String, notBefore: String)
    /// SNI can never select it; it is still served as the default when listed first.
    case noDNSNames(certificatePath: String)

    public var description: String {
        switch self {
        case .expired(let path, let notAfter):
            "the certificate in \(path) expired on \(notAfter)"
        case .notYetValid(let path, let notBefore):
            "the certificate in \(path) is not valid before \(notBefore)"
        case .noDNSNames(let path):
            "the certificate in \(path) has no DNS subjectAltName; SNI never selects it"
        }
    }
}
