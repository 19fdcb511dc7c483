// OpenSSL 3 (Debian's libssl-dev) for GatehouseTLS. Many OpenSSL calls are macros over SSL_CTX_ctrl/SSL_ctrl
// or stack helpers that Swift cannot import; the static inline wrappers below give them real signatures.
#ifndef GATEHOUSE_COPENSSL_SHIM_H
#define GATEHOUSE_COPENSSL_SHIM_H

#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/bio.h>

static inline int gh_ssl_ctx_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}
static inline int gh_ssl_ctx_set_max_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_max_proto_version(ctx, version);
}
static inline int gh_ssl_set_tlsext_host_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}
/// Adds an intermediate certificate to the context's chain (takes its own reference).
static inline int gh_ssl_ctx_add1_chain_cert(SSL_CTX *ctx, X509 *cert) {
    return (int)SSL_CTX_add1_chain_cert(ctx, cert);
}
static inline void gh_ssl_ctx_set_modes(SSL_CTX *ctx) {
    // Idle connections give their 16 KiB+ record buffers back (many keep-alive sockets, few busy).
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
}
static inline void gh_ssl_ctx_set_no_auto_chain(SSL_CTX *ctx) {
    // Send exactly the configured chain: no per-handshake chain building from the trust store.
    SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);
}

typedef int (*gh_servername_callback)(SSL *ssl, int *alert, void *arg);
static inline void gh_ssl_ctx_set_servername_callback(SSL_CTX *ctx, gh_servername_callback callback, void *arg) {
    SSL_CTX_set_tlsext_servername_arg(ctx, arg);
    SSL_CTX_set_tlsext_servername_callback(ctx, callback);
}

/// A memory BIO that reports end of stream once empty (after the socket read 0), instead of "retry".
static inline void gh_bio_set_mem_eof_is_end(BIO *bio) {
    BIO_set_mem_eof_return(bio, 0);
}
static inline size_t gh_bio_pending(BIO *bio) {
    return (size_t)BIO_pending(bio);
}

// SSL_OP_* are 64-bit casts Swift does not import.
static inline uint64_t gh_ssl_op_no_compression(void) { return SSL_OP_NO_COMPRESSION; }
static inline uint64_t gh_ssl_op_no_renegotiation(void) { return SSL_OP_NO_RENEGOTIATION; }
static inline uint64_t gh_ssl_op_cipher_server_preference(void) { return SSL_OP_CIPHER_SERVER_PREFERENCE; }
static inline uint64_t gh_ssl_op_no_ticket(void) { return SSL_OP_NO_TICKET; }

// subjectAltName DNS entries, without Swift touching OpenSSL's stack macros.
static inline GENERAL_NAMES *gh_x509_subject_alt_names(X509 *cert) {
    return (GENERAL_NAMES *)X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
}
static inline int gh_general_names_count(GENERAL_NAMES *names) {
    return sk_GENERAL_NAME_num(names);
}
/// The i-th name's bytes when it is a dNSName, else NULL.
static inline const unsigned char *gh_general_name_dns(GENERAL_NAMES *names, int index, int *length) {
    GENERAL_NAME *name = sk_GENERAL_NAME_value(names, index);
    if (name == NULL || name->type != GEN_DNS) return NULL;
    *length = ASN1_STRING_length(name->d.dNSName);
    return ASN1_STRING_get0_data(name->d.dNSName);
}
static inline void gh_general_names_free(GENERAL_NAMES *names) {
    GENERAL_NAMES_free(names);
}

#endif
