/* signer_msg.h — what the worker and the DKIM signer say to each other over their socketpair
 * (framed by ipc/ipc.h; the request id ties a reply to its request). The worker hashes; the signer
 * holds the private keys and only signs digests. Each side trusts the other no more than a peer,
 * so every payload is read by the strict parsers here. Pure: no I/O, unit-tested and fuzzed.
 *
 *   KEYS      worker → signer   the domain                     which keys sign for it?
 *   KEYLIST   signer → worker   "ALG SELECTOR\n" per key        Ed25519 first; empty: none
 *   SIGN      worker → signer   "DOMAIN SELECTOR\n" + digest    32 octets of SHA-256
 *   SIGNATURE signer → worker   the signature's octets
 *   ERROR     signer → worker   a sentence (printable ASCII)
 *   MAKE      worker → signer   "DOMAIN SELECTOR TYPE BITS WHEN" a new key (the signer alone writes them)
 *   ACTIVATE  worker → signer   "DOMAIN SELECTOR"               that key signs from now on
 *   DONE      signer → worker   "active" or "inactive"          what the key is now
 */
#ifndef MAILWERK_SERVER_SIGNER_MSG_H
#define MAILWERK_SERVER_SIGNER_MSG_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/dkim_canon.h"
#include "keys/dkim_store.h"
#include "net/dns_parse.h"

enum signer_msg_type {
	SIGNER_MSG_KEYS = 1,
	SIGNER_MSG_KEYLIST,
	SIGNER_MSG_SIGN,
	SIGNER_MSG_SIGNATURE,
	SIGNER_MSG_ERROR,
	SIGNER_MSG_MAKE,
	SIGNER_MSG_ACTIVATE,
	SIGNER_MSG_DONE,
};

/* MAKE: the key to make. when_first: it becomes active only when the domain has no active key of its
 * type (what dkim_store_add does); else it is activated at once. bits: 0 for the default. */
struct signer_make {
	char domain[DNS_HOST_SIZE];
	char selector[DKIM_SELECTOR_MAX + 1];
	enum dkim_key_type type;
	unsigned bits;
	bool when_first;
};

#define SIGNER_ERROR_MAX 255 /* octets of an ERROR sentence */

/* KEYS: the payload is the domain itself. 0 with it in domain_r, or -1 with a sentence. */
int signer_keys_parse(const unsigned char *p, size_t len, char domain_r[DNS_HOST_SIZE], const char **error_r);

/* KEYLIST of keys[0..n): its length, or -1 when it does not fit in size. */
int signer_keylist_format(const struct dkim_signer_key *keys, size_t n, char *out, size_t size);
/* At most DKIM_SIGNER_KEYS_MAX lines of a known algorithm and a valid selector: 0 with *n_r, or -1. */
int signer_keylist_parse(const unsigned char *p, size_t len, struct dkim_signer_key out[DKIM_SIGNER_KEYS_MAX],
			 size_t *n_r, const char **error_r);

/* SIGN: its length, or -1 when domain or selector is not one or it does not fit in size. */
int signer_sign_format(const char *domain, const char *selector, const unsigned char digest[DKIM_DIGEST_SIZE],
		       unsigned char *out, size_t size);
int signer_sign_parse(const unsigned char *p, size_t len, char domain_r[DNS_HOST_SIZE],
		      char selector_r[DKIM_SELECTOR_MAX + 1], unsigned char digest_r[DKIM_DIGEST_SIZE],
		      const char **error_r);

/* SIGNATURE: 1 to DKIM_SIG_B_MAX octets, taken as they are. 0, or -1. */
int signer_signature_check(size_t len, const char **error_r);

/* ERROR: 1 to SIGNER_ERROR_MAX printable ASCII octets, copied with a NUL into out. 0, or -1. */
int signer_error_parse(const unsigned char *p, size_t len, char out[SIGNER_ERROR_MAX + 1], const char **error_r);

/* MAKE: its length, or -1 when a name is not one or it does not fit in size. */
int signer_make_format(const struct signer_make *k, char *out, size_t size);
/* TYPE rsa|ed25519, BITS 0 or 1024..8192 in decimal, WHEN first|now. 0, or -1 with a sentence. */
int signer_make_parse(const unsigned char *p, size_t len, struct signer_make *k_r, const char **error_r);

/* ACTIVATE: "DOMAIN SELECTOR". Its length, or -1; 0, or -1 with a sentence. */
int signer_activate_format(const char *domain, const char *selector, char *out, size_t size);
int signer_activate_parse(const unsigned char *p, size_t len, char domain_r[DNS_HOST_SIZE],
			  char selector_r[DKIM_SELECTOR_MAX + 1], const char **error_r);

/* DONE: "active" (1) or "inactive" (0); -1 with a sentence for anything else. */
int signer_done_parse(const unsigned char *p, size_t len, const char **error_r);

#endif
