/* dane.h — DANE authentication of one outbound TLS connection (RFC 7672 for SMTP, RFC 7671), with
 * OpenSSL 3's DANE API: the records go into the SSL before the handshake, and OpenSSL's verifier
 * matches the server's chain against them. */
#ifndef MAILWERK_DELIVERY_DANE_H
#define MAILWERK_DELIVERY_DANE_H

#include <stdbool.h>
#include <stddef.h>

#include "net/dns_parse.h"

struct ssl_ctx_st;
struct ssl_st;

/* Readies a client SSL_CTX for DANE connections (SSL_CTX_dane_enable). false on failure. */
bool delivery_dane_ctx_enable(struct ssl_ctx_st *ctx);

/* Turns DANE on for ssl: names[0] is the TLSA base domain (also the SNI name), any further name
 * is one more name a DANE-TA(2) leaf may carry (RFC 7672 §3.2.2: the MX host name); DANE-EE(3)
 * matches are not name-checked (§3.1.1). Usages 0 and 1 are never added (§3.1.3). Returns the
 * number of records OpenSSL took (0: none usable), -1 with a sentence on failure. */
int delivery_dane_setup(struct ssl_st *ssl, const struct dns_tlsa *tlsa, size_t count, const char *const *names,
			size_t name_count, char *error_r, size_t error_size);

/* After a handshake that verified: the record that matched as "U S M HEX" (the data's first 16
 * octets, with "..." when longer), for the log and the TLS report; "" when DANE did not match. */
void delivery_dane_matched(struct ssl_st *ssl, char *out, size_t size);

#endif
