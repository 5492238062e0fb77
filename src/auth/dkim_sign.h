/* dkim_sign.h — makes the DKIM-Signature header field of a message (RFC 6376 §5, RFC 8463 for
 * Ed25519). Pure: the message is in memory (or its body's tail comes from the caller's reader);
 * nothing is read or written here.
 *
 * In two parts, so that the process that hashes the message need not hold the key: a draft takes
 * from the message what every signature of it shares (h=, bh=, the canonical signed fields); for
 * each key, the draft gives the field up to "b=" and the digest the key signs (RFC 6376 §3.7), and
 * the signature, made elsewhere, completes the field. dkim_sign does all of it with a key in hand. */
#ifndef MAILWERK_AUTH_DKIM_SIGN_H
#define MAILWERK_AUTH_DKIM_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>

#include "auth/dkim_canon.h"
#include "auth/dkim_key.h"

/* Lines of the field are folded to at most this many columns unless asked otherwise (RFC 5322
 * §2.1.1 "SHOULD be no more than 78 characters"). A single value longer than a line (a d= of 250
 * octets) is not split, so such a line can be longer. */
#define DKIM_SIGN_FOLD_DEFAULT 78

struct dkim_sign_params {
	const char *domain;   /* d= */
	const char *selector; /* s=; dkim_sign only */
	EVP_PKEY *key;        /* dkim_sign only: RSA (at least 1024 bits, RFC 8301 §3.2) or Ed25519; a= follows */
	enum dkim_canon header_canon, body_canon; /* callers use relaxed/relaxed by default */
	time_t timestamp;     /* t=; 0 leaves it out */
	time_t expire;        /* x=; 0 leaves it out; must be after t= */
	const char *identity; /* i= as an address ("user@sub.example.com" or "@example.com"); the local
			       * part is written dkim-quoted-printable (RFC 6376 §2.11); NULL leaves it out */
	bool query_method;    /* emit q=dns/txt */
	/* NULL: the default list (dkim_sign_default_headers); else the h= text to emit, names separated
	 * by ':' with optional whitespace, e.g. "from : to : subject" (whitespace runs become one space) */
	const char *headers;
	/* 0: DKIM_SIGN_FOLD_DEFAULT; kept within 20..998. Lines are filled greedily, folding only where a
	 * space is or FWS may go, b= starting a line of its own; 59 reproduces the RFC 8463 fields. */
	unsigned fold_width;
	/* the part of the body that is not in msg (a spooled message), read once; none when zero */
	struct dkim_body_tail body_tail;
};

/* The names the default h= draws from, in order, each listed as many times as the message has it
 * (§5.4.2) and From once more (§8.15: a From added later then breaks the signature). */
extern const char *const dkim_sign_default_headers[];

/* A complete header field "DKIM-Signature: v=1; a=...\r\n", folded with CRLF SP, tags in the order
 * v a c d i q s t x h bh b, to be prepended to msg. msg uses CRLF line ends. Allocated (free());
 * NULL with *error_r on failure (no From field, bad parameters, a key that cannot sign). */
char *dkim_sign(const struct dkim_sign_params *p, const char *msg, size_t len, const char **error_r);

/* What every signature of msg shares (p's selector and key are not read; the body tail is read
 * now). NULL with *error_r as dkim_sign's. */
struct dkim_draft;
struct dkim_draft *dkim_draft_new(const struct dkim_sign_params *p, const char *msg, size_t len, const char **error_r);
void dkim_draft_free(struct dkim_draft *d);
const char *dkim_draft_domain(const struct dkim_draft *d);

/* The field for selector and alg up to and including its empty "b=" (malloc'd), and in digest_r
 * the SHA-256 the key signs (RFC 6376 §3.7 step 2; RFC 8463 §3 signs the same digest). NULL with
 * *error_r (a selector that is not one, an unknown algorithm, out of memory). */
char *dkim_draft_field(const struct dkim_draft *d, const char *selector, enum dkim_alg alg,
		       unsigned char digest_r[DKIM_DIGEST_SIZE], const char **error_r);

/* The complete field, CRLF-terminated (malloc'd): field (from dkim_draft_field) with sig in b=,
 * folded as the rest. NULL with *error_r (an empty or oversized signature, a field that does not
 * end in "b="). */
char *dkim_draft_finish(const struct dkim_draft *d, const char *field, const unsigned char *sig, size_t sig_len,
			const char **error_r);

#endif
