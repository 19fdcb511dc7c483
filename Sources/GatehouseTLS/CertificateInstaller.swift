import COpenSSL

/// Loads a certificate chain and its key into an SSL_CTX, with a precise error for each way that fails.
enum CertificateInstaller {
    struct Installed {
        let dnsNames: [String]
        let warnings: [TLSConfigWarning]
    }

    static func install(_ files: TLSCertificateFiles, into context: OpaquePointer) throws(TLSConfigError) -> Installed {
        let chain = try PEMFile.certificates(inFile: files.certificateChainPath)
        let key = try PEMFile.privateKey(inFile: files.privateKeyPath)
        let leaf = chain[0].pointer
        OpenSSLErrorQueue.clear()
        guard SSL_CTX_use_certificate(context, leaf) == 1 else {
            throw .openSSL(operation: "using the certificate in \(files.certificateChainPath)",
                           reason: OpenSSLErrorQueue.drainDescription(fallback: "refused"))
        }
        for intermediate in chain.dropFirst() {
            guard gh_ssl_ctx_add1_chain_cert(context, intermediate.pointer) == 1 else {
                throw .openSSL(operation: "adding the chain in \(files.certificateChainPath)",
                               reason: OpenSSLErrorQueue.drainDescription(fallback: "refused"))
            }
        }
        // X509_check_private_key first: SSL_CTX_use_PrivateKey's own mismatch error is less plain.
        guard X509_check_private_key(leaf, key.pointer) == 1 else {
            OpenSSLErrorQueue.clear()
            throw .keyDoesNotMatchCertificate(certificatePath: files.certificateChainPath, privateKeyPath: files.privateKeyPath)
        }
        guard SSL_CTX_use_PrivateKey(context, key.pointer) == 1, SSL_CTX_check_private_key(context) == 1 else {
            throw .openSSL(operation: "using the private key in \(files.privateKeyPath)",
                           reason: OpenSSLErrorQueue.drainDescription(fallback: "refused"))
        }
        return Installed(dnsNames: CertificateDetails.dnsNames(leaf), warnings: warnings(for: leaf, path: files.certificateChainPath))
    }

    private static func warnings(for leaf: OpaquePointer, path: String) -> [TLSConfigWarning] {
        var warnings: [TLSConfigWarning] = []
        if CertificateDetails.isExpired(leaf) {
            warnings.append(.expired(certificatePath: path, notAfter: CertificateDetails.notAfter(leaf)))
        }
        if CertificateDetails.isNotYetValid(leaf) {
            warnings.append(.notYetValid(certificatePath: path, notBefore: CertificateDetails.notBefore(leaf)))
        }
        if CertificateDetails.dnsNames(leaf).isEmpty {
            warnings.append(.noDNSNames(certificatePath: path))
        }
        return warnings
    }
}
