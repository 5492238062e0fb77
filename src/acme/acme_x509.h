/* acme_x509.h — the certificate side of ACME: the CSR of a finalize (RFC 8555 §7.4), the check of
 * the chain the CA sends back (§7.4.2), and the self-signed certificate a TLS-ALPN-01 challenge is
 * answered with (RFC 8737 §3). */
#ifndef MAILWERK_ACME_ACME_X509_H
#define MAILWERK_ACME_ACME_X509_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* A CSR for names (the first also the subject's commonName) signed by key, as the base64url of
 * its DER (§7.4 "csr"); malloc'd, NULL on failure. */
char *acme_csr_new(EVP_PKEY *key, const char *const *names, size_t n);

/* Checks a PEM chain (application/pem-certificate-chain, §7.4.2) for key: at least one
 * certificate and at most 8, nothing but certificates, the first (the leaf) holds key's public
 * half and is valid for each of names. Its validity in *not_before_r, *not_after_r (unix seconds).
 * false with a sentence in error. */
bool acme_chain_check(const char *pem, size_t len, EVP_PKEY *key, const char *const *names, size_t n,
		      int64_t *not_before_r, int64_t *not_after_r, char *error, size_t error_size);

/* The leaf of a PEM chain's validity, for a certificate read back from disk. */
bool acme_pem_dates(const char *pem, size_t len, int64_t *not_before_r, int64_t *not_after_r);

/* RFC 8737 §3: a self-signed certificate for name with the critical acmeIdentifier extension
 * (id-pe-acmeIdentifier, 1.3.6.1.5.5.7.1.31) holding SHA-256 of key_authz; its key in *key_r. */
X509 *acme_alpn_cert_new(const char *name, const char *key_authz, EVP_PKEY **key_r);

/* key as PKCS#8 PEM (malloc'd, *len_r), and back. */
char *acme_key_pem(EVP_PKEY *key, size_t *len_r);
EVP_PKEY *acme_key_from_pem(const char *pem, size_t len);

#endif
