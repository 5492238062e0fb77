/* mtasts_cache.h — outbound MTA-STS (RFC 8461): what policy a recipient domain has, answered within
 * a short budget, from a persistent cache that fetches in the background.
 *
 * A lookup (mtasts_lookup) asks the domain's _mta-sts TXT record (through net/dns.h, whose unbound
 * cache makes that cheap) and applies delivery/mtasts_rules.h:
 *   - same id as the cached, unexpired policy: that policy (state POLICY);
 *   - a new id (or no cached policy): a fetch (delivery/mtasts_fetch.h) starts; the lookup waits for
 *     it at most budget_ms, then answers with the cached valid policy if there is one, else none
 *     (state PENDING), while the fetch goes on and its outcome is cached for the next message.
 *     Stalwart waits for the fetch inline, up to 300 s (its issue #1568): the first message to a
 *     new domain should not wait minutes on a slow policy host, and §5.1's "no policy" is what it
 *     would have had without MTA-STS anyway;
 *   - no TXT record, or the lookup failed: the cached valid policy, if any (§5.1: a valid cached
 *     policy is used until it expires even when the TXT record is gone), else none;
 *   - a failed fetch keeps the cached valid policy (state FAILED, the policy given); a fetched
 *     "mode: none" deletes it (§5).
 * A failed fetch for an id is not tried again for that id for MTASTS_CACHE_RETRY_S, so that a broken
 * policy host costs one fetch per few minutes, not one per message.
 *
 * The cache lives in DATA_DIR/reports.db (delivery/mtasts_store.h, written on a worker thread) and
 * in memory (at most MTASTS_CACHE_ENTRIES entries, loaded at start). Policies are refreshed before
 * they expire (mtasts_rules_refresh_at: a quarter of max_age before, at most a day, with jitter) by a
 * timer on the loop that starts at most a few refreshes per tick. max_age is capped at 31,557,600 s
 * (mtasts.h). At most max_fetches fetches run at once; a lookup that finds no slot answers from the
 * cache without asking.
 *
 * Loop thread only. No callback is ever called from within mtasts_lookup or mtasts_recheck, and none
 * after mtasts_lookup_cancel or mtasts_cache_stop. */
#ifndef MAILWERK_DELIVERY_MTASTS_CACHE_H
#define MAILWERK_DELIVERY_MTASTS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "delivery/mtasts.h"
#include "delivery/tls_decide.h"

struct dns;
struct worker_pool;
struct mtasts_cache;
struct mtasts_lookup;

#define MTASTS_CACHE_ENTRIES 10000 /* domains kept in memory and in the store */
#define MTASTS_CACHE_RETRY_S 300   /* a failed fetch for an id is not repeated sooner (recheck aside) */
#define MTASTS_CACHE_TICK_S 60     /* the refresh timer */

struct mtasts_cache_opts {
	struct dns *dns;              /* referenced (dns_ref) until mtasts_cache_stop */
	struct worker_pool *workers;  /* store writes run there; NULL: written at once on the caller's
				       * thread (the CLI) */
	const char *data_dir;         /* where reports.db is */
	const char *ca_file;          /* [delivery] mta_sts_ca_file: "" for the system trust store only */
	bool allow_private;           /* [delivery] mta_sts_allow_private */
	unsigned fetch_timeout_ms;    /* [delivery] mta_sts_fetch_timeout: one fetch, DNS included */
	unsigned max_fetches;         /* [delivery] mta_sts_max_fetches: fetches running at once */
	bool refresh;                 /* run the proactive refresh timer (the server: yes; the CLI: no) */
};

/* Opens the store and loads it; NULL with a sentence. Call on the loop thread of dns's base. */
struct mtasts_cache *mtasts_cache_new(const struct mtasts_cache_opts *o, char *error, size_t error_size);
/* Cancels every lookup and fetch (no callback follows), stops the timer, lets go of the resolver.
 * Store writes already handed to the workers still finish; mtasts_cache_free after the worker pool
 * and its loop queue are gone. */
void mtasts_cache_stop(struct mtasts_cache *c);
void mtasts_cache_free(struct mtasts_cache *c);

/* What a lookup answers. The pointers are valid only during the callback: copy *policy
 * (struct mtasts_policy is plain data) if it is needed later. */
struct mtasts_answer {
	const char *domain;
	/* for tls_decide_input: sts_state and sts (= policy) */
	enum tls_decide_sts_state state;
	const struct mtasts_policy *policy; /* NULL: no policy known (whatever state says) */
	const char *id;                     /* the policy's id, "" without one */
	int64_t fetched, expires;           /* of the policy (unix seconds); 0 without one */
	bool from_cache;                    /* the policy was cached before this lookup */
	/* the TXT answer of this lookup: whether it came within the budget, and what it said */
	bool txt_checked;
	const char *txt_id;                 /* "" when no single valid record was found */
	/* recheck: the TXT id differs from the id of the policy cached when the recheck began (a new
	 * policy was published: RFC 8461 §5.1 says not to fail the message on the old one) */
	bool id_changed;
	const char *reason; /* a stable word for logs: cached, fetched, pending, txt_none, txt_error,
			     * fetch_failed, mode_none, busy */
	const char *why;    /* a sentence on a failure, "" otherwise */
};
typedef void mtasts_done_fn(void *arg, const struct mtasts_answer *a);

/* Asks the policy of domain (a host name, any case), answering within budget_ms (0: the TXT lookup
 * and any fetch are waited for, up to the fetch timeout). Returns a handle valid until done has been
 * called or mtasts_lookup_cancel; NULL (done not called) only when domain is not a host name or
 * memory ran out: treat it as "no policy known". */
struct mtasts_lookup *mtasts_lookup(struct mtasts_cache *c, const char *domain, unsigned budget_ms,
				    mtasts_done_fn *done, void *arg);

/* RFC 8461 §5.1: before a message fails for a policy (at max_queue_lifetime, under enforce), the TXT
 * record is asked again (never from memory), and a changed id triggers a fetch that is waited for
 * (the retry pause after a failed fetch does not apply). The answer's id_changed says whether a new
 * id was published: if so, the message is not failed on the old policy (defer it once more, or use
 * the answer's new policy). budget_ms: as for mtasts_lookup (a recheck should allow the fetch
 * timeout: it runs once per failing message, not per delivery). Same handle rules. */
struct mtasts_lookup *mtasts_recheck(struct mtasts_cache *c, const char *domain, unsigned budget_ms,
				     mtasts_done_fn *done, void *arg);

/* Ends a lookup whose done has not been called; done is then never called. A fetch it started goes
 * on for the cache's sake. */
void mtasts_lookup_cancel(struct mtasts_cache *c, struct mtasts_lookup *l);

/* Starts the proactive refresh timer (opts.refresh does it at once): a standby worker's cache
 * starts refreshing once that worker takes over. false when out of memory. */
bool mtasts_cache_refresh_start(struct mtasts_cache *c);

/* For `mailwerk tls check` and tests: fetches running, entries in memory. */
unsigned mtasts_cache_fetches(const struct mtasts_cache *c);
size_t mtasts_cache_size(const struct mtasts_cache *c);
/* Runs the refresh scan now (what the timer does every MTASTS_CACHE_TICK_S), as if the time were
 * now; the number of refreshes started. */
unsigned mtasts_cache_refresh_due(struct mtasts_cache *c, int64_t now);

#endif
