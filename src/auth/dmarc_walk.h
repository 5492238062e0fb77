/* dmarc_walk.h — the DNS Tree Walk of RFC 9989 §4.10 for one domain: which _dmarc names hold a
 * DMARC Policy Record, the Organizational Domain they select (§4.10.2) and, when the domain is an
 * Author Domain, the record whose policy applies (§4.10.1). A pure state machine on the step
 * protocol of auth_dns.h; `mailwerk dns check` runs it alone, the evaluator (dmarc.h) runs several
 * over one answer cache so that a name is never asked twice for one message.
 *
 * The walk (§4.10 steps 1-7): ask _dmarc.<domain>; then, if the domain has 8 labels or more, go on
 * with its last 7 labels, else with its parent; then drop one label at a time; stop after the
 * single-label name, or where a single DMARC Policy Record has psd=y or psd=n. At most 8 questions.
 * At each name, TXT records that do not start with v=DMARC1 are passed over, and several DMARC
 * Policy Records are all discarded (steps 2 and 6). A record that starts with v=DMARC1 but has no
 * usable policy (dmarc_record.h, DMARC_RECORD_NO_POLICY) still counts as a record here: its psd tag
 * steers the walk, and §4.10.1 then decides whether DMARC applies. A name that would be longer than
 * DNS allows once "_dmarc." is prepended cannot hold a record and is not asked. A question that
 * fails (TEMPFAIL, or BOGUS from DNSSEC validation) ends the walk unfinished. */
#ifndef MAILWERK_AUTH_DMARC_WALK_H
#define MAILWERK_AUTH_DMARC_WALK_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/auth_dns.h"
#include "auth/dmarc_record.h"

/* RFC 9989 §4.10: "Author Domains with more than eight labels do not result in more than eight
 * DNS queries" */
#define DMARC_WALK_MAX 8
/* Names a cache holds; a walker that asks for more is refused an entry and asks DNS again. */
#define DMARC_CACHE_MAX 96

/* What one _dmarc name holds. */
enum dmarc_found {
	DMARC_FOUND_NONE = 0, /* no DMARC Policy Record: NXDOMAIN, NODATA, or only other TXT records */
	DMARC_FOUND_RECORD,   /* exactly one */
	DMARC_FOUND_MULTIPLE, /* several: all discarded (§4.10 step 2) */
	DMARC_FOUND_TEMPFAIL, /* the question failed (TEMPFAIL, BOGUS) */
	DMARC_FOUND_TOO_LONG, /* "_dmarc." and the name exceed 253 octets: not asked */
};
const char *dmarc_found_str(enum dmarc_found f);

struct dmarc_node {
	char domain[DNS_HOST_SIZE]; /* without "_dmarc." */
	enum dmarc_found found;
	enum dns_status status;     /* the answer's (NXDOMAIN for TOO_LONG) */
	size_t other_txt;           /* TXT records that are not DMARC Policy Records */
	enum dmarc_record_error record_error; /* FOUND_RECORD: OK or NO_POLICY */
	const char *record_why;     /* FOUND_RECORD with NO_POLICY: why (static text) */
	struct dmarc_record *record; /* FOUND_RECORD */
	char why[320];              /* FOUND_TEMPFAIL: what went wrong */
};

enum dmarc_walk_status {
	DMARC_WALK_OK = 0,
	DMARC_WALK_TEMPFAIL,   /* a question failed: the Organizational Domain is unknown */
	DMARC_WALK_BAD_DOMAIN, /* the start is not a domain name DMARC can look up */
	DMARC_WALK_NOMEM,
};
const char *dmarc_walk_status_str(enum dmarc_walk_status s);

/* §4.10.2: how the Organizational Domain was selected */
enum dmarc_org_rule {
	DMARC_ORG_UNKNOWN = 0, /* the walk failed or was stopped before it could tell */
	DMARC_ORG_PSD_N,       /* step 1: the record with psd=n */
	DMARC_ORG_PSD_Y,       /* step 2: one label below the record with psd=y */
	DMARC_ORG_FEWEST,      /* step 3: the record at the name with the fewest labels */
	DMARC_ORG_START,       /* no record: "the initial target domain is the Organizational Domain" */
};
const char *dmarc_org_rule_str(enum dmarc_org_rule r);

/* §4.10.1: whose record applies to the start as an Author Domain */
enum dmarc_source {
	DMARC_SOURCE_NONE = 0, /* no DMARC Policy Record: DMARC does not apply */
	DMARC_SOURCE_DOMAIN,   /* the domain's own: p applies */
	DMARC_SOURCE_ORG,      /* its Organizational Domain's: sp or np */
	DMARC_SOURCE_PSD,      /* its Public Suffix Domain's (psd=y): sp or np */
};
const char *dmarc_source_str(enum dmarc_source s);

struct dmarc_walk_result {
	enum dmarc_walk_status status;
	const char *why;            /* one sentence when status is not OK */
	char domain[DNS_HOST_SIZE]; /* the start, normalized (dmarc_from_domain) */
	size_t count;               /* names looked at, in order (cached ones too) */
	const struct dmarc_node *nodes[DMARC_WALK_MAX];
	bool stopped;               /* dmarc_walk_stop ended it early */
	/* set when the walk is over (org_domain "" when org_rule is DMARC_ORG_UNKNOWN) */
	enum dmarc_org_rule org_rule;
	char org_domain[DNS_HOST_SIZE];
	enum dmarc_source source;   /* known even after a failure, when the domain has its own record */
	const struct dmarc_node *policy; /* the node whose record applies, NULL for DMARC_SOURCE_NONE */
};

struct dmarc_cache;
struct dmarc_cache *dmarc_cache_new(void);
void dmarc_cache_free(struct dmarc_cache *c);
/* The node already learnt for domain, or NULL. */
const struct dmarc_node *dmarc_cache_find(const struct dmarc_cache *c, const char *domain);

struct dmarc_walk;

/* A walk from domain with its own cache (NULL when out of memory; a domain that is not valid gives
 * a walk that ends at once with DMARC_WALK_BAD_DOMAIN). */
struct dmarc_walk *dmarc_walk_new(const char *domain);
/* The same over a cache the caller owns and keeps until dmarc_walk_free. */
struct dmarc_walk *dmarc_walk_new_cached(const char *domain, struct dmarc_cache *cache);

/* auth_step_fn: asks TXT questions for _dmarc names until the walk is over. */
enum auth_step dmarc_walk_step(void *walk, const struct dns_result *answer, struct auth_query *q_r);

/* Ends the walk where it is (the question it returned last is dropped): for an evaluator that has
 * learnt what it needs from the first name. A walk that was not over yet keeps org_rule
 * DMARC_ORG_UNKNOWN; source and policy still name the domain's own record. */
void dmarc_walk_stop(struct dmarc_walk *w);

/* Valid at any time; the nodes live as long as the cache. */
const struct dmarc_walk_result *dmarc_walk_result(const struct dmarc_walk *w);
bool dmarc_walk_done(const struct dmarc_walk *w);

void dmarc_walk_free(struct dmarc_walk *w);

/* Whether sub is domain or one of its subdomains (both in normal form). */
bool dmarc_domain_within(const char *sub, const char *domain);

#endif
