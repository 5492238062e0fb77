/* dkim_canon.h — the canonicalizations of RFC 6376 §3.4 ("simple" and "relaxed", for header fields
 * and for the body) and the streaming body hash with its l= limit (§3.7 hash step 1). The output goes
 * to a sink, so the same code feeds a SHA-256 context (signing, verifying) or a buffer (tests). Pure:
 * no I/O; libcrypto only for the digest. */
#ifndef MAILWERK_AUTH_DKIM_CANON_H
#define MAILWERK_AUTH_DKIM_CANON_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <stdint.h>

#include <openssl/evp.h>

enum dkim_canon {
	DKIM_CANON_SIMPLE = 0, /* RFC 6376 §3.4.1, §3.4.3; the default of c= */
	DKIM_CANON_RELAXED,    /* RFC 6376 §3.4.2, §3.4.4 */
};
/* "simple", "relaxed" (the words of c=) */
const char *dkim_canon_str(enum dkim_canon c);

/* SHA-256 is the only digest DKIM signatures we accept use (RFC 8301 §3.1). */
#define DKIM_DIGEST_SIZE 32

/* Where canonical text goes. */
typedef void dkim_canon_sink_fn(void *arg, const void *data, size_t len);

/* One header field, as header_next() returns it in raw (name, colon, value, folded lines, line end).
 * simple: the field unchanged (a missing or bare-LF final line end becomes CRLF); relaxed: the name
 * in lower case, unfolded, WSP runs as one SP, no WSP around the colon or at the end. With final_crlf
 * false the final CRLF is left out (the DKIM-Signature field itself, RFC 6376 §3.7 step 2). */
void dkim_canon_header(enum dkim_canon c, const char *raw, size_t len, bool final_crlf,
		       dkim_canon_sink_fn *sink, void *arg);

/* The body canonicalizer as a stream: feed the body (the octets after the empty line that ends the
 * header section) in pieces of any size, then finish. Lines end in CRLF; a bare CR or LF is an
 * ordinary octet. Trailing empty lines are held back until a non-empty line shows they are not
 * trailing. */
struct dkim_body_canon {
	enum dkim_canon canon;
	dkim_canon_sink_fn *sink;
	void *arg;
	uint64_t empty_lines; /* complete empty lines held back */
	bool cr_pending;      /* the last octet seen was a CR: a line end if LF follows */
	bool wsp_pending;     /* relaxed: WSP seen in this line, not yet written */
	bool line_content;    /* this line has written content */
	bool any_output;
};

void dkim_body_canon_init(struct dkim_body_canon *b, enum dkim_canon c, dkim_canon_sink_fn *sink, void *arg);
void dkim_body_canon_update(struct dkim_body_canon *b, const char *data, size_t len);
void dkim_body_canon_final(struct dkim_body_canon *b);

/* The body hash of RFC 6376 §3.7 step 1: SHA-256 over the canonical body, cut at l= octets when
 * has_limit. total counts every canonical octet, so that the caller can tell an l= longer than the
 * body (a failure) and how much the signature leaves uncovered. */
struct dkim_body_hash {
	struct dkim_body_canon canon;
	EVP_MD_CTX *md;
	bool has_limit;
	uint64_t limit;
	uint64_t total;  /* canonical octets seen */
	uint64_t hashed; /* canonical octets hashed (<= limit) */
	/* relaxed output comes a word at a time: gathered here, the digest sees few large updates */
	size_t staged;
	char stage[4096];
};

/* False when libcrypto cannot make a digest context (out of memory). */
bool dkim_body_hash_init(struct dkim_body_hash *h, enum dkim_canon c, bool has_limit, uint64_t limit);
void dkim_body_hash_update(struct dkim_body_hash *h, const char *data, size_t len);
/* Finishes the canonicalization and writes the digest; false on a libcrypto failure. */
bool dkim_body_hash_final(struct dkim_body_hash *h, unsigned char digest_r[DKIM_DIGEST_SIZE]);
/* Frees the digest context (also after final; safe to call twice). */
void dkim_body_hash_clear(struct dkim_body_hash *h);

/* The part of a body that is not in memory: read() puts up to size octets from off (counted from the
 * start of that part) into buf and says how many, 0 at the end, -1 on an error. Whoever holds the
 * message (a spool file) provides it; DKIM itself reads nothing. Positional, so it can be read twice
 * (two signatures). */
typedef ssize_t dkim_body_read_fn(void *arg, uint64_t off, char *buf, size_t size);
struct dkim_body_tail {
	dkim_body_read_fn *read; /* NULL: the body is all in memory */
	void *arg;
};

/* Octets read() is asked for at a time. */
#define DKIM_BODY_TAIL_PIECE 65536

/* Gives what tail holds, in order, a piece at a time, to update(arg, piece, len); true when it was
 * read to its end (and when there is no tail: tail NULL or tail->read NULL). */
bool dkim_body_tail_feed(const struct dkim_body_tail *tail, void (*update)(void *arg, const char *data, size_t len),
			 void *arg);

/* The whole body at once. */
bool dkim_body_hash_compute(enum dkim_canon c, const char *body, size_t len, bool has_limit, uint64_t limit,
			    unsigned char digest_r[DKIM_DIGEST_SIZE], uint64_t *total_r);
/* A body of len octets in memory followed by what tail gives (tail NULL or tail->read NULL: none);
 * false on a libcrypto failure or when the tail cannot be read. */
bool dkim_body_hash_compute_tail(enum dkim_canon c, const char *body, size_t len, const struct dkim_body_tail *tail,
				 bool has_limit, uint64_t limit, unsigned char digest_r[DKIM_DIGEST_SIZE], uint64_t *total_r);

/* A sink that feeds an EVP_MD_CTX (arg). */
void dkim_canon_sink_digest(void *arg, const void *data, size_t len);

#endif
