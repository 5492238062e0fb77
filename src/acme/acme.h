/* acme.h — certificates by ACME (RFC 8555): the worker gets, installs and renews the certificate
 * its listeners serve. One client on the event loop, asynchronous throughout (net/http_client.h),
 * with the account key and the certificate in data_dir/acme (mode 0600). HTTP-01 is answered on
 * the http listener (http/api.c routes /.well-known/acme-challenge/ here), TLS-ALPN-01 (RFC 8737)
 * in the TLS handshake of every implicit-TLS listener (acme_tls.c). A certificate is renewed at
 * two thirds of its lifetime; a failure keeps the one in use and is tried again on
 * [acme] retry_schedule. Loop thread only. */
#ifndef MAILWERK_ACME_ACME_H
#define MAILWERK_ACME_ACME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

struct server;
struct acme;

/* The files in data_dir/acme (acme_store.c) that others read: the certificate in use (its
 * private key, then its chain) and the key staged for the next certificate (RFC 7671 §8.1: its
 * TLSA record is published before it is used; domains/domain_tlsa.c prints it). */
#define ACME_DIR "acme"
#define ACME_CERT_FILE "cert.pem"
#define ACME_NEXT_KEY_FILE "next_key.pem"

/* After the switch to [server] user (the files are the user's), before the sandbox: with
 * [acme] directory set, reads (or makes) the account key and reads the certificate of an earlier
 * run. *a_r is NULL when ACME is off. 0, or -1 with a sentence. */
int acme_open(struct server *srv, struct acme **a_r, char *error, size_t error_size);
/* The worker that does the background work (not a standby) starts checking. */
void acme_start(struct acme *a);
/* Ends requests under way without their callbacks; after the loop queue is gone. */
void acme_free(struct acme *a);

/* The context the listeners are to use: one with ACME's certificate when there is one (ctx is then
 * freed), else ctx; either way with the TLS-ALPN-01 hooks. a may be NULL (ctx as it is). */
SSL_CTX *acme_tls_ctx(struct acme *a, SSL_CTX *ctx);

/* HTTP-01 (RFC 8555 §8.3): the key authorization for token, while its challenge is under way. */
bool acme_http_key_authz(struct acme *a, const char *token, char *out, size_t size);

/* `mailwerk acme renew` (force: even when the certificate is far from its renewal) and `acme
 * revoke` (revokeCert for the certificate in use, RFC 8555 §7.6, then a new one). 0 when started,
 * -1 with a sentence (ACME off, or already under way). */
int acme_renew_now(struct acme *a, bool revoke, char *error, size_t error_size);

/* For status: when the certificate in use expires (0: none from ACME), when the next attempt is
 * due (unix seconds), failures in a row, and the last error ("" when none). */
void acme_state(const struct acme *a, int64_t *not_after_r, int64_t *next_r, unsigned *failures_r,
		const char **error_r);

#endif
