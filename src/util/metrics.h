/* metrics.h — the server's counters and histograms, served at GET /metrics (src/http/metrics.c
 * names them and formats them). Everything is a C11 atomic, so any thread counts without a lock
 * and without a message to the loop: the runner thread, the loop and the workers all count into
 * the same struct. Relaxed ordering is enough, as no value orders anything else; a scrape may see
 * one counter a moment before another, which the exposition format allows.
 *
 * struct server owns the one struct metrics; the modules that count get it passed in. Every
 * counting call takes m == NULL as "not counted" (the CLI's resolver, unit tests). */
#ifndef MAILWERK_UTIL_METRICS_H
#define MAILWERK_UTIL_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"

/* Why a message was not taken (mailwerk_messages_refused_total{reason}). Only reasons of ours: a
 * recipient or a policy refused is a reply to the client, not a failure of this server. */
enum metrics_refusal {
	METRICS_REFUSAL_MIN_FREE_SPACE = 0, /* [server] min_free_space */
	METRICS_REFUSAL_STORE_FAILED,       /* the queue's transaction failed */
	METRICS_REFUSAL_COUNT,
};
const char *metrics_refusal_str(enum metrics_refusal r);

/* Where a recipient went (queue.h's enum queue_route, which util/ does not see). */
enum metrics_route {
	METRICS_ROUTE_LOCAL = 0,
	METRICS_ROUTE_REMOTE,
	METRICS_ROUTE_COUNT,
};
const char *metrics_route_str(enum metrics_route r);

enum metrics_outcome {
	METRICS_OUTCOME_DELIVERED = 0,
	METRICS_OUTCOME_DEFERRED,
	METRICS_OUTCOME_FAILED,
	METRICS_OUTCOME_COUNT,
};
const char *metrics_outcome_str(enum metrics_outcome o);

/* How one webhook attempt ended (mailwerk_webhook_attempts_total{result}); the given-up ones are
 * also mailwerk_webhook_failures_total. */
enum metrics_webhook_result {
	METRICS_WEBHOOK_DELIVERED = 0, /* the receiver answered 2xx */
	METRICS_WEBHOOK_FAILED,        /* not delivered, the retry schedule used up: given up */
	METRICS_WEBHOOK_RETRY,         /* not delivered, another attempt to come */
	METRICS_WEBHOOK_RESULT_COUNT,
};
const char *metrics_webhook_result_str(enum metrics_webhook_result r);

enum metrics_hist {
	METRICS_HIST_DELIVERY_LATENCY = 0, /* arrival to delivered, per recipient */
	METRICS_HIST_DNS_QUERY,            /* one libunbound lookup, start to answer (or timeout) */
	METRICS_HIST_COUNT,
};

#define METRICS_BUCKETS_MAX 16

/* Fixed buckets. Each observation adds to one bucket only (not cumulative: one atomic add);
 * the renderer sums them up. There is no separate count: the +Inf bucket is the count, so the two
 * can never disagree in a scrape taken while an observation is half made. */
struct metrics_histogram {
	const double *bounds; /* upper bounds (le, inclusive) in seconds, ascending; +Inf is implicit */
	size_t n_bounds;
	_Atomic uint64_t buckets[METRICS_BUCKETS_MAX + 1]; /* [n_bounds]: above every bound */
	_Atomic uint64_t sum_us;                            /* microseconds, so that adds stay integer */
};

/* HTTP requests by (slot, status). A slot is the API's business (http/metrics.c: a row of the
 * route table, or "no route" per method); the status is one of a fixed list, or "other", so that
 * the series stay few whatever clients send. */
#define METRICS_HTTP_SLOTS 96
#define METRICS_HTTP_STATUSES 23 /* the list in metrics.c, plus "other" */
/* The index of status in the list; METRICS_HTTP_STATUSES - 1 for any other. */
size_t metrics_http_status_index(unsigned status);
/* The status at index i; 0 for the last ("other"). */
unsigned metrics_http_status_at(size_t i);

/* ---- deliveries of the last minute and the last hour (`mailwerk status`, metrics_recent.c) ----
 *
 * The counters above only grow; "how many failed in the last hour" needs the same outcomes by
 * time. Each outcome counted by metrics_delivery_count also goes into two rings of slots on the
 * monotonic clock (a clock step moves nothing): 60 of one second and 60 of one minute, each slot
 * stamped with the second (minute) it counts and reset when it comes round again. That is a fixed
 * 6.7 KiB per server whatever the traffic, and the status's numbers are the same outcomes as
 * mailwerk_deliveries_total's, counted at the same moment (once recorded in the queue).
 *
 * One writing thread (the delivery runner's, which records every outcome); any thread reads. A
 * slot being reset is stamped METRICS_RECENT_BUSY first, and a reader takes a slot only when its
 * stamp is the same before and after reading its counts (a seqlock), so that it never adds the
 * half-cleared counts of a slot that now counts another second. */
#define METRICS_RECENT_SLOTS 60
#define METRICS_RECENT_BUSY INT64_MIN

struct metrics_recent_slot {
	_Atomic int64_t stamp; /* the second (minute) of the monotonic clock it counts */
	_Atomic uint64_t n[METRICS_ROUTE_COUNT][METRICS_OUTCOME_COUNT];
};

struct metrics_recent {
	struct metrics_recent_slot seconds[METRICS_RECENT_SLOTS];
	struct metrics_recent_slot minutes[METRICS_RECENT_SLOTS];
};

struct metrics_recent_counts {
	uint64_t minute[METRICS_ROUTE_COUNT][METRICS_OUTCOME_COUNT]; /* this second and the 59 before */
	uint64_t hour[METRICS_ROUTE_COUNT][METRICS_OUTCOME_COUNT];   /* this minute and the 59 before */
};

struct metrics {
	_Atomic uint64_t accepted[CONF_LISTEN_COUNT];                       /* by listener role */
	_Atomic uint64_t refused[CONF_LISTEN_COUNT][METRICS_REFUSAL_COUNT];
	_Atomic uint64_t deliveries[METRICS_ROUTE_COUNT][METRICS_OUTCOME_COUNT];
	_Atomic uint64_t outbound[2];                                       /* [tls] */
	_Atomic uint64_t http_requests[METRICS_HTTP_SLOTS][METRICS_HTTP_STATUSES];
	_Atomic uint64_t webhook_attempts[METRICS_WEBHOOK_RESULT_COUNT];
	struct metrics_histogram hist[METRICS_HIST_COUNT];
	struct metrics_recent recent; /* the deliveries' outcomes by time (see above) */
};

/* All zero, with the histograms' buckets set. NULL when out of memory. */
struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/* n messages acknowledged (SMTP 250, the API's answer) on a listener of role l. */
void metrics_message_accepted(struct metrics *m, enum conf_listener l, uint64_t n);
void metrics_message_refused(struct metrics *m, enum conf_listener l, enum metrics_refusal r, uint64_t n);
/* One recipient's attempt, once its outcome is recorded. */
void metrics_delivery_count(struct metrics *m, enum metrics_route r, enum metrics_outcome o);
/* One outbound SMTP connection, once it is known whether TLS was up on it. */
void metrics_outbound_count(struct metrics *m, bool tls);
void metrics_http_count(struct metrics *m, size_t slot, unsigned status);
/* One webhook attempt, once its outcome is recorded in the outbox. */
void metrics_webhook_count(struct metrics *m, enum metrics_webhook_result r);
/* One observation of seconds (negative ones, from a clock set back, count as 0). */
void metrics_observe(struct metrics *m, enum metrics_hist h, double seconds);

/* The outcomes of the last minute and the last hour, local and remote. Any thread; m may be NULL
 * (all zero). */
void metrics_recent_read(const struct metrics *m, struct metrics_recent_counts *r_r);
/* The same two as of mono_s, a second of the monotonic clock (unit tests step it themselves):
 * counting one outcome (the writing thread's), and reading. */
void metrics_recent_count_at(struct metrics *m, enum metrics_route r, enum metrics_outcome o, int64_t mono_s);
void metrics_recent_read_at(const struct metrics *m, int64_t mono_s, struct metrics_recent_counts *r_r);

/* Monotonic seconds, for timing an interval on one thread (DNS lookups). */
double metrics_now(void);

#endif
