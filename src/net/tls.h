/* tls.h — the server's TLS context: built from the configured PEM files, rebuilt on reload. */
#ifndef MAILWERK_NET_TLS_H
#define MAILWERK_NET_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conf;

/* TLS 1.2 minimum (RFC 8996, RFC 8314 §4.1); cert chain and key checked to match. NULL with a
 * sentence in error_r on failure. */
SSL_CTX *tls_server_ctx_new(const struct conf *c, char *error_r, size_t error_size);

/* The same from memory: a PEM chain (leaf first) and its key (ACME's certificate, acme/). */
SSL_CTX *tls_server_ctx_new_pem(const char *chain, size_t chain_len, EVP_PKEY *key, char *error_r, size_t error_size);

/* What the context's own certificate (the leaf) says of itself, for operators and their alerts. */
struct tls_cert_info {
	char subject[256]; /* the subject's commonName, "" when it has none */
	char issuer[256];  /* the issuer's commonName (or its whole name, one line) */
	/* the dNSName entries of subjectAltName, as many as fit, comma-separated */
	char names[1024];
	int64_t not_before, not_after; /* unix seconds (RFC 5280 §4.1.2.5) */
};
/* false when ctx holds no certificate or its dates cannot be read. */
bool tls_ctx_cert_info(SSL_CTX *ctx, struct tls_cert_info *r);
/* The same of any certificate (a peer's, say: its names are then whatever the peer put there). */
bool tls_cert_info_of(X509 *x, struct tls_cert_info *r);
/* Whole days from now to not_after, rounded down: 0 on its last day, negative once it has
 * expired (-1 within the first day after). */
int64_t tls_cert_days_left(int64_t not_after, int64_t now);

#endif
