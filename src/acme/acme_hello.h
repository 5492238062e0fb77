/* acme_hello.h — the two ClientHello extensions a TLS-ALPN-01 answer depends on (RFC 8737 §3):
 * application_layer_protocol_negotiation (RFC 7301 §3.1) and server_name (RFC 6066 §3), read from
 * the raw extension data OpenSSL's client hello callback gives. Pure, strict: a malformed
 * extension is no match. Fuzzed (fuzz/fuzz_acme_msg.c). */
#ifndef MAILWERK_ACME_ACME_HELLO_H
#define MAILWERK_ACME_ACME_HELLO_H

#include <stdbool.h>
#include <stddef.h>

#define ACME_ALPN_PROTOCOL "acme-tls/1" /* RFC 8737 §6.2 */

/* Whether the ProtocolNameList in ext (len octets) is well-formed and offers proto. */
bool acme_hello_alpn_offers(const unsigned char *ext, size_t len, const char *proto);

/* The host_name of a well-formed ServerNameList (one entry of type host_name, a host name of
 * letters, digits, '-' and '.', at most 253 octets) in lower case; false otherwise. */
bool acme_hello_server_name(const unsigned char *ext, size_t len, char *out, size_t size);

#endif
