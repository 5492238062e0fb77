/* dmarc.h — DMARC evaluation on the receiving side (RFC 9989 §5.3): for one Author Domain, the
 * policy discovery of §4.10.1, the Identifier Alignment of §4.4 / §4.10.2 and the result with the
 * disposition it asks for; and for a whole message, every Author Domain of its From fields
 * (dmarc_from.h) combined as §11.5 recommends. Pure state machines on the step protocol of
 * auth_dns.h: SPF and DKIM results come in as plain values.
 *
 * One Author Domain, in order:
 * 1. _dmarc.<author> (TXT). If it holds the record, p applies (§4.10.1); if not, the tree walk of
 *    dmarc_walk.h looks for the Organizational Domain's record (sp / np) or the PSD's.
 *    The walk goes on past the author's own record only when relaxed alignment needs the
 *    Organizational Domain (§4.10.2: not when every identifier equals the Author Domain, nor under
 *    strict alignment; nor for identifiers under another top-level name, which cannot share it). No record → result none; a record without a usable policy → none too
 *    (§4.10.1 "no DMARC processing").
 * 2. Alignment (§4.4), for SPF (the domain SPF passed: the MAIL FROM domain, or the HELO domain for
 *    a null MAIL FROM, RFC 9989 §3.2.4) and each DKIM d= that passed: strict = equal, ignoring case;
 *    relaxed = the same Organizational Domain. Relaxed short-cuts: equal domains align; a domain
 *    outside the author's Organizational Domain cannot share it; the Organizational Domain itself
 *    aligns. Otherwise the identifier's own walk decides (over the same answer cache, so names the
 *    author's walk asked are not asked again). DKIM stops at the first aligned domain.
 * 3. With the policy of the Organizational Domain or PSD, whether the Author Domain exists picks sp
 *    or np (§4.10.1, §3.2.13, Appendix A.4): a NODATA or records at _dmarc.<author> prove it exists;
 *    after an NXDOMAIN there, one question for the author's CNAME (not followed, so any record at
 *    the name counts) tells: NXDOMAIN = does not exist. Only asked when sp and np differ.
 * 4. pass when an identifier aligns (disposition none); else fail with the policy, one level lower
 *    under t=y (§4.7 t: reject → quarantine, quarantine → none).
 * DNS failures: a failed question that the result depends on gives temperror (§5.3.6); a pass
 * found without it stands. An Author Domain that is not a domain name gives permerror, as does an
 * identifier walk that the question budget cut short when nothing else aligned.
 *
 * Bounds: at most DMARC_DKIM_MAX DKIM domains are read (duplicates dropped first); at most
 * DMARC_QUERIES_MAX questions per Author Domain (each walk is at most 8 by itself), and
 * DMARC_MSG_QUERIES_MAX per message. A plain message asks 1 to 3. */
#ifndef MAILWERK_AUTH_DMARC_H
#define MAILWERK_AUTH_DMARC_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/auth_dns.h"
#include "auth/dmarc_from.h"
#include "auth/dmarc_record.h"
#include "auth/dmarc_walk.h"

#define DMARC_DKIM_MAX 8
#define DMARC_QUERIES_MAX 32
#define DMARC_MSG_QUERIES_MAX 64

/* RFC 8601 §2.7.1 / RFC 9989 §9.2 result words (dmarc_result_str) */
enum dmarc_result {
	DMARC_RESULT_NONE = 0, /* no DMARC Policy Record applies (or one without a usable policy) */
	DMARC_RESULT_PASS,
	DMARC_RESULT_FAIL,
	DMARC_RESULT_TEMPERROR,
	DMARC_RESULT_PERMERROR,
};
const char *dmarc_result_str(enum dmarc_result r);

struct dmarc_input {
	const char *author_domain;   /* one Author Domain; ASCII or UTF-8 (converted to A-labels) */
	bool spf_pass;               /* SPF passed for spf_domain */
	const char *spf_domain;      /* MAIL FROM domain, or HELO for a null MAIL FROM; NULL or "" if none */
	const char *const *dkim_pass_domains; /* d= of each DKIM signature that passed */
	size_t dkim_pass_count;
};

struct dmarc_outcome {
	enum dmarc_result result;
	enum dmarc_policy policy;      /* the p / sp / np that applies to this Author Domain */
	enum dmarc_policy disposition; /* none on pass; the policy after the t=y downgrade on fail; none otherwise */
	bool testing;                  /* t=y */
	char author_domain[DNS_HOST_SIZE]; /* header.from for Authentication-Results (normal form) */
	char policy_domain[DNS_HOST_SIZE]; /* where the applicable record is ("" without one) */
	char org_domain[DNS_HOST_SIZE];    /* of the Author Domain; "" when no walk had to find it */
	enum dmarc_source source;          /* whose record applies */
	bool spf_aligned, dkim_aligned;
	char dkim_aligned_domain[DNS_HOST_SIZE];
	const char *reason;                /* one sentence for logs and A-R comments */
	bool has_record;
	struct dmarc_record record;        /* the applicable record (rua etc.), when has_record */
	unsigned queries;                  /* DNS questions this evaluation asked */
};

struct dmarc_eval;

/* NULL when out of memory. The input is copied. */
struct dmarc_eval *dmarc_eval_new(const struct dmarc_input *in);
/* auth_step_fn */
enum auth_step dmarc_eval_step(void *e, const struct dns_result *answer, struct auth_query *q_r);
/* Complete once the step said AUTH_STEP_DONE. */
const struct dmarc_outcome *dmarc_eval_outcome(const struct dmarc_eval *e);
void dmarc_eval_free(struct dmarc_eval *e);

/* ---- a whole message ---- */

struct dmarc_msg_input {
	const struct dmarc_from *from; /* dmarc_from_parse's result */
	enum dmarc_from_error from_error; /* and its return value */
	bool spf_pass;
	const char *spf_domain;
	const char *const *dkim_pass_domains;
	size_t dkim_pass_count;
};

struct dmarc_msg_outcome {
	/* Combined (RFC 9989 §11.5, "the most strict policy selected among the checks that fail"):
	 * fail if any domain fails (disposition: the strictest of theirs), else temperror if any,
	 * else permerror if any or if there were more domains than evaluated, else pass if any, else
	 * none. No From field, one that does not parse, or no usable domain: permerror, no DNS. */
	enum dmarc_result result;
	enum dmarc_policy disposition;
	const char *reason;
	size_t from_fields;                 /* != 1 breaks RFC 5322 §3.6; the caller may refuse the message */
	size_t count;                       /* Author Domains evaluated */
	const struct dmarc_outcome *outcomes[DMARC_FROM_DOMAINS_MAX];
	const struct dmarc_outcome *decisive; /* the domain that decided, NULL when none was evaluated */
	unsigned queries;
};

struct dmarc_msg;
struct dmarc_msg *dmarc_msg_new(const struct dmarc_msg_input *in);
enum auth_step dmarc_msg_step(void *m, const struct dns_result *answer, struct auth_query *q_r);
const struct dmarc_msg_outcome *dmarc_msg_outcome(const struct dmarc_msg *m);
void dmarc_msg_free(struct dmarc_msg *m);

#endif
