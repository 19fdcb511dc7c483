import COpenSSL
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads PEM files itself (not through OpenSSL's file BIOs) so a missing or unreadable file gets its own
/// message, and parses certificates and keys from memory.
enum PEMFile {
    /// Certificates and keys are a few KiB; anything this large is the wrong file.
    static let sizeLimit = 1 << 20

    static func read(_ path: String) throws(TLSConfigError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .fileNotReadable(path: path, reason: String(cString: strerror(errno))) }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw .fileNotReadable(path: path, reason: String(cString: strerror(errno))) }
        guard (status.st_mode & S_IFMT) == S_IFREG else { throw .fileNotReadable(path: path, reason: "not a regular file") }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .fileNotReadable(path: path, reason: String(cString: strerror(errno)))
            }
            if count == 0 { return bytes }
            bytes.append(contentsOf: chunk[..<count])
            if bytes.count > sizeLimit { throw .fileTooLarge(path: path, limit: sizeLimit) }
        }
    }

    /// Every certificate in the file, in order (leaf first for a chain).
    static func certificates(inFile path: String) throws(TLSConfigError) -> [OwnedCertificate] {
        let bytes = try read(path)
        var certificates: [OwnedCertificate] = []
        OpenSSLErrorQueue.clear()
        let outcome: Result<Void, TLSConfigError> = withMemoryBIO(bytes) { bio in
            while let certificate = PEM_read_bio_X509(bio, nil, nil, nil) {
                certificates.append(OwnedCertificate(certificate))
            }
            // The loop ends at "no start line" (no more PEM blocks); any other error is a damaged block.
            return endedCleanly() ? .success(()) : .failure(.openSSL(operation: "reading the certificates in \(path)",
                                                                   reason: OpenSSLErrorQueue.drainDescription(fallback: "damaged PEM")))
        }
        try outcome.get()
        OpenSSLErrorQueue.clear()
        guard !certificates.isEmpty else { throw .noCertificateInFile(path: path) }
        return certificates
    }

    static func privateKey(inFile path: String) throws(TLSConfigError) -> OwnedPrivateKey {
        let bytes = try read(path)
        // OpenSSL 3's decoders say only "unsupported" for a file with no key block; name it here instead.
        // Covers "PRIVATE KEY", "EC PRIVATE KEY" and "RSA PRIVATE KEY".
        guard contains(bytes, "PRIVATE KEY-----") else { throw .noPrivateKeyInFile(path: path) }
        if contains(bytes, "ENCRYPTED") {
            throw .openSSL(operation: "reading the private key in \(path)", reason: "encrypted private keys are not supported")
        }
        OpenSSLErrorQueue.clear()
        // A password callback that refuses, so OpenSSL never prompts on a terminal.
        let key = withMemoryBIO(bytes) { bio in PEM_read_bio_PrivateKey(bio, nil, { _, _, _, _ in 0 }, nil) }
        guard let key else {
            let clean = endedCleanly()
            let reason = OpenSSLErrorQueue.drainDescription(fallback: "damaged PEM")
            if clean { throw .noPrivateKeyInFile(path: path) }
            throw .openSSL(operation: "reading the private key in \(path)", reason: reason)
        }
        OpenSSLErrorQueue.clear()
        return OwnedPrivateKey(key)
    }

    private static func endedCleanly() -> Bool {
        let last = ERR_peek_last_error()
        return last == 0 || (ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE)
    }

    private static func withMemoryBIO<T>(_ bytes: [UInt8], _ body: (OpaquePointer) -> T) -> T {
        bytes.withUnsafeBytes { buffer in
            let bio = BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count))!
            defer { BIO_free(bio) }
            return body(bio)
        }
    }

    private static func contains(_ bytes: [UInt8], _ word: String) -> Bool {
        let needle = Array(word.utf8)
        guard bytes.count >= needle.count else { return false }
        return (0...(bytes.count - needle.count)).contains { start in bytes[start..<(start + needle.count)].elementsEqual(needle) }
    }
}

/// An X509 this code holds one reference to.
final class OwnedCertificate {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
    deinit { X509_free(pointer) }
}

/// An EVP_PKEY this code holds one reference to.
final class OwnedPrivateKey {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
    deinit { EVP_PKEY_free(pointer) }
}
