import Crypto
import Foundation

/// Gatehouse's own signing key on disk.
public enum AssertionKeyFile {
    public struct Problem: Error {
        public let message: String
        /// The problem is with a previous key, not the signing key.
        public var isPrevious = false
    }

    static func loadOrGenerate(_ path: String) throws(Problem) -> P256.Signing.PrivateKey {
        var info = stat()
        if stat(path, &info) != 0 {
            guard errno == ENOENT else { throw Problem(message: "\(path): \(String(cString: strerror(errno)))") }
            let key = P256.Signing.PrivateKey()
            let pem = Array(key.pemRepresentation.utf8)
            // O_EXCL: never overwrite a key another process just wrote; 0600 from the start.
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
            guard fd >= 0 else { throw Problem(message: "\(path) cannot be created: \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            guard pem.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == pem.count, fsync(fd) == 0 else {
                throw Problem(message: "\(path) could not be written")
            }
            return key
        }
        guard info.st_mode & 0o077 == 0 else {
            throw Problem(message: "\(path) is readable by group or others (mode \(String(info.st_mode & 0o777, radix: 8))); chmod 600 it")
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw Problem(message: "\(path) cannot be read") }
        guard let key = try? P256.Signing.PrivateKey(pemRepresentation: text) else {
            throw Problem(message: "\(path) is not a PEM P-256 private key (PKCS#8 'PRIVATE KEY' or SEC1 'EC PRIVATE KEY')")
        }
        return key
    }

    /// A previous key, still published for verifiers during rotation: its public key PEM (or its private key).
    static func publicKey(_ path: String) throws(Problem) -> P256.Signing.PublicKey {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw Problem(message: "\(path) cannot be read", isPrevious: true) }
        if let key = try? P256.Signing.PublicKey(pemRepresentation: text) { return key }
        if let key = try? P256.Signing.PrivateKey(pemRepresentation: text) {
            // A private key is still a secret (it could sign again): the same mode rule as the signing key.
            var info = stat()
            if stat(path, &info) == 0, info.st_mode & 0o077 != 0 {
                throw Problem(message: "\(path) holds a private key and is readable by group or others (mode \(String(info.st_mode & 0o777, radix: 8))); chmod 600 it, or keep only its public key", isPrevious: true)
            }
            return key.publicKey
        }
        throw Problem(message: "\(path) is not a PEM P-256 public or private key", isPrevious: true)
    }
}

extension IdentityAssertionIssuer {
    /// Loads (or generates) the signing key and reads the previous keys.
    public convenience init(keyFile: String, previousKeyFiles: [String], settings: IdentityAssertionSettings) throws(AssertionKeyFile.Problem) {
        let key = try AssertionKeyFile.loadOrGenerate(keyFile)
        var previous: [P256.Signing.PublicKey] = []
        for file in previousKeyFiles { previous.append(try AssertionKeyFile.publicKey(file)) }
        self.init(signingKey: key, previousKeys: previous, settings: settings)
    }
}
