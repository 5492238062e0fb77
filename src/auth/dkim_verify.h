/* dkim_verify.h — verifies the DKIM signatures of a message (RFC 6376 §6, RFC 8463, RFC 8301) as a
 * pure state machine on the step protocol of auth_dns.h: dkim_verify_new does the work that needs no
 * key (parsing, checks, the body hashes: the CPU-heavy part, fit for a worker thread), then each step
 * asks for one key record and finishes the signatures that use it. */
#ifndef MAILWERK_AUTH_DKIM_VERIFY_H
#define MAILWERK_AUTH_DKIM_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "auth/auth_dns.h"
#include "auth/dkim_canon.h"
#include "auth/dkim_key.h"
#include "auth/dkim_sig.h"

/* Key records tried per signature when the name holds several that parse (RFC 6376 §6.1.2 step 4). */
#define DKIM_VERIFY_RECORDS_MAX 4

enum dkim_result {
	DKIM_RESULT_NONE = 0, /* no signature (reported by callers when dkim_verify_count is 0) */
	DKIM_RESULT_PASS,
	DKIM_RESULT_FAIL,      /* the signature or the body hash did not verify, or RFC 8301 refuses it */
	DKIM_RESULT_NEUTRAL,   /* not produced here; part of the RFC 8601 vocabulary for callers */
	DKIM_RESULT_POLICY,    /* not produced here; for callers' local policy (RFC 8601 §2.7.1) */
	DKIM_RESULT_TEMPERROR, /* the key could not be fetched now */
	DKIM_RESULT_PERMERROR, /* the signature or its key record cannot be used */
};
/* RFC 8601 §2.7.1: "none", "pass", "fail", "neutral", "policy", "temperror", "permerror" */
const char *dkim_result_str(enum dkim_result r);

struct dkim_sig_result {
	enum dkim_result result;
	/* A short stable sentence: "body hash mismatch", "signature did not verify", "key revoked",
	 * "no key record", "signature expired", "RSA key of 512 bits is too short (RFC 8301)", ...
	 * Valid while the verifier lives. */
	const char *reason;
	char domain[DNS_HOST_SIZE];          /* d=, "" when the field did not parse that far */
	char selector[DNS_HOST_SIZE];        /* s=, likewise */
	char identity[DKIM_IDENTITY_SIZE];   /* i=, or "@" d= when absent */
	enum dkim_alg alg;
	bool alg_known;
	enum dkim_canon header_canon, body_canon;
	bool body_length_limited;            /* l= was used */
	unsigned long long body_unsigned;    /* canonical body octets after l= that the signature leaves out */
	unsigned key_bits;                   /* 0 until a key was found */
	bool key_testing;                    /* the key record says t=y (RFC 6376 §3.6.1) */
	char b_prefix[DKIM_SIG_B_PREFIX + 1]; /* RFC 6008 header.b */
	char reason_buf[64];                 /* where a reason with a number is written */
};

struct dkim_verify;

/* Parses every DKIM-Signature field (the first max_sigs of them, top down; the rest are counted and
 * ignored), checks what needs no key, and hashes the body once per distinct (body canonicalization,
 * l=). msg uses CRLF line ends and need not outlive the call. now is the time x= is checked against.
 * NULL only when out of memory. */
struct dkim_verify *dkim_verify_new(const char *msg, size_t len, unsigned max_sigs, time_t now);
/* The same for a message whose body goes on past len in what tail gives (a spooled message), read
 * once. NULL also when the tail cannot be read. */
struct dkim_verify *dkim_verify_new_tail(const char *msg, size_t len, const struct dkim_body_tail *tail,
					 unsigned max_sigs, time_t now);

/* The step function (auth_step_fn): one TXT question "<s>._domainkey.<d>" per distinct key name still
 * needed; each answer finishes every signature that uses that name (header hash, signature check). */
enum auth_step dkim_verify_step(void *v, const struct dns_result *answer, struct auth_query *q_r);

/* Signatures evaluated (at most max_sigs), and those past max_sigs. */
size_t dkim_verify_count(const struct dkim_verify *v);
size_t dkim_verify_ignored(const struct dkim_verify *v);
/* The result of signature i (0 <= i < count, in message order). */
const struct dkim_sig_result *dkim_verify_result(const struct dkim_verify *v, size_t i);

void dkim_verify_free(struct dkim_verify *v);

/* Decoded key records come from (and go to) c, which must outlive the steps; the thread running the
 * steps must be the only user of c. Without it every record is decoded. */
struct dkim_key_cache;
void dkim_verify_key_cache_set(struct dkim_verify *v, struct dkim_key_cache *c);

#endif
