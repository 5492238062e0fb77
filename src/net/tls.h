/* tls.h — the server's TLS context: built from the configured PEM files, rebuilt on reload. */
#ifndef MAILWERK_NET_TLS_H
#define MAILWERK_NET_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

struct conf;

/* TLS 1.2 minimum (RFC 8996, RFC 8314 §4.1); cert chain and key checked to match. NULL with a
 * sentence in error_r on failure. */
SSL_CTX *tls_server_ctx_new(const struct conf *c, char *error_r, size_t error_size);

#endif
