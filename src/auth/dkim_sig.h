/* dkim_sig.h — one DKIM-Signature header field: its tags parsed and checked as RFC 6376 §3.5 and
 * §6.1.1 require (everything that can be checked without the key or the clock), and the form of the
 * field that goes into the header hash (§3.7 step 2). Pure, no allocation except in
 * dkim_sig_canon_self; the parsed signature points into the field text. */
#ifndef MAILWERK_AUTH_DKIM_SIG_H
#define MAILWERK_AUTH_DKIM_SIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/dkim_canon.h"
#include "auth/dkim_key.h"
#include "net/dns_parse.h"
#include "util/header.h"

/* h= names we take; a longer list is refused. Real signers list a few dozen at most. */
#define DKIM_SIG_HEADERS_MAX 128
/* b= octets: a signature of an 8192-bit RSA key (DKIM_KEY_RSA_BITS_MAX) */
#define DKIM_SIG_B_MAX 1024
/* i= as written (dkim-quoted-printable, FWS removed), with its NUL */
#define DKIM_IDENTITY_SIZE 512
/* RFC 6008 §4: header.b carries the first eight characters of b= */
#define DKIM_SIG_B_PREFIX 8

enum dkim_sig_error {
	DKIM_SIG_OK = 0,
	DKIM_SIG_SYNTAX,    /* not a tag list, or a tag value against its grammar (§6.1.1) */
	DKIM_SIG_MISSING,   /* one of v a b bh d h s is missing (§6.1.1) */
	DKIM_SIG_VERSION,   /* v= is not 1 (§6.1.1 "incompatible version") */
	DKIM_SIG_ALGORITHM, /* a= names an algorithm we do not implement */
	DKIM_SIG_DOMAIN,    /* the domain of i= is not d= nor below it (§6.1.1 "domain mismatch") */
	DKIM_SIG_FROM,      /* h= does not list From (§6.1.1 "From field not signed") */
	DKIM_SIG_QUERY,     /* q= does not offer dns/txt (§3.5) */
};
const char *dkim_sig_error_str(enum dkim_sig_error e);

struct dkim_span {
	const char *p;
	size_t len;
};

struct dkim_sig {
	enum dkim_alg alg;
	bool alg_known;
	enum dkim_canon header_canon, body_canon; /* c= (default simple/simple) */
	char domain[DNS_HOST_SIZE];               /* d=, lower case; "" until parsed */
	char selector[DNS_HOST_SIZE];             /* s=, lower case; "" until parsed */
	char identity[DKIM_IDENTITY_SIZE];        /* i=, or "@" d= when absent */
	size_t identity_domain;                   /* where the domain of identity starts */
	struct dkim_span headers[DKIM_SIG_HEADERS_MAX]; /* h=, in order, as written */
	size_t nheaders;
	bool has_length;    /* l= */
	uint64_t length;    /* saturates: a value past 2^64-1 is longer than any body */
	bool has_timestamp; /* t= */
	uint64_t timestamp; /* saturates ("infinite", §3.5) */
	bool has_expire;    /* x= */
	uint64_t expire;
	unsigned char bh[DKIM_DIGEST_SIZE];
	unsigned char b[DKIM_SIG_B_MAX];
	size_t b_len;
	char b_prefix[DKIM_SIG_B_PREFIX + 1];
	/* What §3.7 step 2 deletes: from just after "b=" up to the ';' that ends the tag (or the end of
	 * the value), so the value and the whitespace around it. Points into the parsed text. */
	const char *b_del_start, *b_del_end;
};

/* Parses value (a DKIM-Signature field's value: what follows the colon, still folded). On any
 * error *error_r is a short sentence fit for a result's reason; domain and selector are filled as
 * far as the field parsed. Unknown tags are ignored (§3.5). rsa-sha1 parses (alg_known, alg
 * DKIM_ALG_RSA_SHA1): refusing it is the verifier's decision (RFC 8301 §3.1). */
enum dkim_sig_error dkim_sig_parse(const char *value, size_t len, struct dkim_sig *sig_r, const char **error_r);

/* "<s>._domainkey.<d>" (RFC 6376 §3.6.2.1) into name (DNS_HOST_SIZE). False when it would be longer
 * than a DNS name may be (the parser refuses such signatures already). */
bool dkim_sig_key_name(const struct dkim_sig *sig, char *name, size_t size);

/* Whether h= lists name (ignoring case). */
bool dkim_sig_signs(const struct dkim_sig *sig, const char *name);

/* RFC 6376 §3.7 step 2: the field (raw: name, colon, value and line end, as header_next gives it;
 * sig parsed from its value) with the b= value deleted, canonicalized by c, without a final CRLF.
 * False when out of memory. */
bool dkim_sig_canon_self(const struct dkim_sig *sig, enum dkim_canon c, const char *raw, size_t raw_len,
			 dkim_canon_sink_fn *sink, void *arg);

/* RFC 6376 §3.7 (the first part of the header hash) and §5.4.2: for each of names in order, the
 * last field of that name not taken yet, canonicalized by c, goes to sink; a name without such a
 * field adds nothing. fields are the header section in message order; taken (nfields entries) marks
 * the fields already used, and the caller sets the entry of a field that must never be taken (the
 * signature being verified). */
void dkim_headers_canon(enum dkim_canon c, const struct header_field *fields, size_t nfields, bool *taken,
			const struct dkim_span *names, size_t nnames, dkim_canon_sink_fn *sink, void *arg);

/* Whether dom is the domain d or a subdomain of it (ASCII case ignored). */
bool dkim_domain_within(const char *dom, size_t len, const char *d);
/* d= syntax (RFC 6376 §3.5 domain-name: at least two labels, letters, digits and hyphens). */
bool dkim_domain_valid(const char *s, size_t len);
/* s= syntax (RFC 6376 §3.1; '_' allowed too). */
bool dkim_selector_valid(const char *s, size_t len);

#endif
