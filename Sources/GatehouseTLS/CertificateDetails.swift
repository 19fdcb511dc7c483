import COpenSSL

/// What Gatehouse reads from a certificate: the DNS names SNI matches against, the subject for logs and
/// tests, and the validity window for warnings.
enum CertificateDetails {
    /// subjectAltName dNSName entries, lowercased; names that are not plain ASCII are skipped (SAN must be
    /// A-labels, so such an entry can never match a requested name).
    static func dnsNames(_ certificate: OpaquePointer) -> [String] {
        guard let names = gh_x509_subject_alt_names(certificate) else { return [] }
        defer { gh_general_names_free(names) }
        var result: [String] = []
        for index in 0..<gh_general_names_count(names) {
            var length: Int32 = 0
            guard let bytes = gh_general_name_dns(names, index, &length), length > 0 else { continue }
            let buffer = UnsafeBufferPointer(start: bytes, count: Int(length))
            guard buffer.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { continue }
            result.append(String(decoding: buffer, as: UTF8.self).lowercased())
        }
        return result
    }

    /// The subject in OpenSSL's one-line form, e.g. "/CN=app.example.test".
    static func subject(_ certificate: OpaquePointer) -> String {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 512) { buffer in
            guard let line = X509_NAME_oneline(X509_get_subject_name(certificate), buffer.baseAddress, Int32(buffer.count)) else { return "" }
            return String(cString: line)
        }
    }

    static func isExpired(_ certificate: OpaquePointer) -> Bool {
        // X509_cmp_current_time: -1 when the time is before now; 0 on a malformed time (treated as expired).
        X509_cmp_current_time(X509_get0_notAfter(certificate)) <= 0
    }

    static func isNotYetValid(_ certificate: OpaquePointer) -> Bool {
        X509_cmp_current_time(X509_get0_notBefore(certificate)) > 0
    }

    static func notAfter(_ certificate: OpaquePointer) -> String { render(X509_get0_notAfter(certificate)) }
    static func notBefore(_ certificate: OpaquePointer) -> String { render(X509_get0_notBefore(certificate)) }

    private static func render(_ time: UnsafePointer<ASN1_TIME>?) -> String {
        guard let time, let bio = BIO_new(BIO_s_mem()) else { return "an unreadable date" }
        defer { BIO_free(bio) }
        guard ASN1_TIME_print(bio, time) == 1 else { return "an unreadable date" }
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = BIO_read(bio, &buffer, Int32(buffer.count))
        return count > 0 ? String(decoding: buffer[..<Int(count)], as: UTF8.self) : "an unreadable date"
    }
}
