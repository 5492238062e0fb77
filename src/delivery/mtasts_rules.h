/* mtasts_rules.h — the MTA-STS rules that are decisions, not I/O (RFC 8461 §3.3, §5.1), as pure
 * functions the cache (mtasts_cache.c) applies and the unit tests check row by row:
 *  - what a fetched answer must be to count as a policy (§3.3: 200, text/plain, no redirect, size);
 *  - what the cache does with what it holds, given the TXT answer and a fetch's outcome;
 *  - when a cached policy is refreshed before it expires (§3.3 "proactively"), with jitter;
 *  - the served side (§3.2, §3.1): the policy text this server publishes, its id, and which local
 *    domain a Host field names.
 * No clock, no randomness of its own, no allocation. */
#ifndef MAILWERK_DELIVERY_MTASTS_RULES_H
#define MAILWERK_DELIVERY_MTASTS_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "delivery/mtasts.h"

/* ---- the answer of the policy host (§3.3) ---- */

/* Whether a Content-Type field value is text/plain: the media type compared case-insensitively
 * (RFC 9110 §8.3.1), optional whitespace, parameters after ";" allowed and not judged ("text/plain;
 * charset=utf-8"). NULL or "" is not text/plain. */
bool mtasts_content_type_ok(const char *value);

/* ---- the cache ---- */

/* What the cache holds for a domain (a row of the store): present false for none. */
struct mtasts_entry {
	bool present;
	char id[MTASTS_ID_MAX + 1];
	int64_t fetched; /* unix seconds */
	int64_t expires; /* fetched + max_age */
};

/* The _mta-sts TXT answer, as far as the rules care. */
enum mtasts_txt_state {
	MTASTS_TXT_ONE = 0, /* one valid v=STSv1 record: `id` */
	MTASTS_TXT_NONE,    /* NXDOMAIN, NODATA, no v=STSv1 record, two or more, or one we cannot read (§3.1) */
	MTASTS_TXT_ERROR,   /* SERVFAIL, timeout, bogus: nothing is known */
};
const char *mtasts_txt_state_str(enum mtasts_txt_state s);

/* What to do next, given the cached entry and the TXT answer (§3.3, §5.1):
 *   FETCH  the TXT id is new (no valid cache, or a different id, or the cached one expired): fetch
 *   USE    a valid cached policy stands (same id; or the TXT is gone or failed, and §5.1 says a
 *          valid cached policy is used until it expires: "If a valid TXT record is not found but the
 *          sender has a cached policy, the sender continues to use the cached policy")
 *   NONE   no valid cache and no TXT record to fetch for: no policy
 * A cached entry at or past its expiry counts as absent (and is dropped by the caller). */
enum mtasts_next {
	MTASTS_NEXT_FETCH = 0,
	MTASTS_NEXT_USE,
	MTASTS_NEXT_NONE,
};
const char *mtasts_next_str(enum mtasts_next n);
bool mtasts_entry_valid(const struct mtasts_entry *e, int64_t now);
enum mtasts_next mtasts_rules_after_txt(const struct mtasts_entry *cached, enum mtasts_txt_state txt,
					const char *txt_id, int64_t now);

/* What the cache keeps after a fetch:
 *   STORE  the fetched policy replaces the entry (id from the TXT record, expires now + max_age)
 *   CLEAR  the fetched policy says mode none (§5: "the Policy Domain does not have an active
 *          policy"): the entry is deleted, and there is no policy
 *   KEEP   the fetch failed and a valid cached policy is kept (§3.3: "If the HTTPS GET fails... a
 *          sender SHOULD use the cached policy")
 *   DROP   the fetch failed, and there is no valid cached one: no policy (an expired entry goes) */
enum mtasts_keep {
	MTASTS_KEEP_STORE = 0,
	MTASTS_KEEP_CLEAR,
	MTASTS_KEEP_KEEP,
	MTASTS_KEEP_DROP,
};
const char *mtasts_keep_str(enum mtasts_keep k);
/* fetched: NULL when the fetch failed (no usable answer, or a text that does not parse). */
enum mtasts_keep mtasts_rules_after_fetch(const struct mtasts_entry *cached, const struct mtasts_policy *fetched,
					  int64_t now);

/* When to refresh an entry before it expires (§3.3: senders should refresh "proactively" so that a
 * policy in use never lapses): a quarter of its life before the end, but at most a day before, less
 * a jitter of up to a tenth of that lead (jitter in [0, 1): the caller's random number), so that the
 * entries of one start-up are not all fetched in the same minute. Never before fetched + 60 s. */
int64_t mtasts_rules_refresh_at(const struct mtasts_entry *e, double jitter);

/* ---- the served side ---- */

#define MTASTS_TEXT_MAX 4096 /* the policy we publish: our names only, far below MTASTS_POLICY_MAX */

/* The policy text (§3.2) this server serves: version, mode, each mx name, max_age, CRLF line ends.
 * mx[0..n) are host names or "*." patterns (the caller has validated them). The length, or 0 when
 * it does not fit out_size. */
size_t mtasts_policy_text(enum mtasts_mode mode, uint32_t max_age, const char *const *mx, size_t n, char *out,
			  size_t out_size);
/* The policy this server serves for every local domain, from [mta_sts] mode and max_age: mx lines
 * for [server] hostname and then each name of [mta_sts] mx. The length, or 0 when it does not fit. */
struct conf;
size_t mtasts_served_text(const struct conf *c, char *out, size_t out_size);

/* The id (§3.1: 1-32 letters and digits) of a policy text: the first 16 octets of its SHA-256 in
 * hex, so that it changes whenever the text does and `dns records` and the server agree on it
 * without storing anything. id_r has MTASTS_ID_MAX + 1 octets. */
void mtasts_policy_id(const char *text, size_t len, char *id_r);

/* The domain a request's Host field asks the policy of: "mta-sts.DOMAIN" with an optional ":port"
 * and an optional trailing dot, case-insensitive; DOMAIN lower-cased into domain_r (size at least
 * 254). false when the value is not that (no prefix, not a host name, a bracketed address). */
bool mtasts_host_domain(const char *host, size_t len, char *domain_r, size_t size);

#endif
