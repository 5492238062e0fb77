/* metrics.c — the counting side of metrics.h: atomic adds, the histograms' fixed buckets, the
 * short list of HTTP statuses kept apart. Formatting is in src/http/metrics.c. */
#include "util/metrics.h"

#include <stdlib.h>
#include <time.h>

#include "util/date.h"

/* Arrival to delivery: local delivery takes well under a second, a remote one a few, a retry
 * minutes to hours; the largest bound is the usual default of a queue lifetime's first day. */
static const double metrics_latency_bounds[] = {0.1, 0.5, 1, 5, 30, 60, 300, 1800, 3600, 14400, 86400};
/* A cached answer takes microseconds, a resolver on the LAN a millisecond, a cold recursive
 * lookup tens to hundreds; 10 s is where unbound's own retries are giving up. */
static const double metrics_dns_bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

_Static_assert(sizeof(metrics_latency_bounds) / sizeof(double) <= METRICS_BUCKETS_MAX, "latency buckets");
_Static_assert(sizeof(metrics_dns_bounds) / sizeof(double) <= METRICS_BUCKETS_MAX, "dns buckets");

/* Every status the API answers with (http_status_text in src/http/session.c). */
static const unsigned metrics_http_statuses[] = {
	200, 201, 202, 204, 400, 401, 403, 404, 405, 408, 409, 411,
	413, 414, 415, 422, 429, 431, 500, 501, 503, 505,
};
_Static_assert(sizeof(metrics_http_statuses) / sizeof(unsigned) + 1 == METRICS_HTTP_STATUSES,
	       "METRICS_HTTP_STATUSES is the list plus other");

const char *metrics_refusal_str(enum metrics_refusal r)
{
	switch (r) {
	case METRICS_REFUSAL_MIN_FREE_SPACE: return "min_free_space";
	case METRICS_REFUSAL_STORE_FAILED: return "store_failed";
	case METRICS_REFUSAL_COUNT: break;
	}
	return "?";
}

const char *metrics_route_str(enum metrics_route r)
{
	switch (r) {
	case METRICS_ROUTE_LOCAL: return "local";
	case METRICS_ROUTE_REMOTE: return "remote";
	case METRICS_ROUTE_COUNT: break;
	}
	return "?";
}

const char *metrics_outcome_str(enum metrics_outcome o)
{
	switch (o) {
	case METRICS_OUTCOME_DELIVERED: return "delivered";
	case METRICS_OUTCOME_DEFERRED: return "deferred";
	case METRICS_OUTCOME_FAILED: return "failed";
	case METRICS_OUTCOME_COUNT: break;
	}
	return "?";
}

const char *metrics_webhook_result_str(enum metrics_webhook_result r)
{
	switch (r) {
	case METRICS_WEBHOOK_DELIVERED: return "delivered";
	case METRICS_WEBHOOK_FAILED: return "failed";
	case METRICS_WEBHOOK_RETRY: return "retry";
	case METRICS_WEBHOOK_RESULT_COUNT: break;
	}
	return "?";
}

size_t metrics_http_status_index(unsigned status)
{
	for (size_t i = 0; i < METRICS_HTTP_STATUSES - 1; i++)
		if (metrics_http_statuses[i] == status)
			return i;
	return METRICS_HTTP_STATUSES - 1;
}

unsigned metrics_http_status_at(size_t i)
{
	return i < METRICS_HTTP_STATUSES - 1 ? metrics_http_statuses[i] : 0;
}

struct metrics *metrics_new(void)
{
	/* calloc's zeros are valid initial values of the lock-free atomics used here */
	struct metrics *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->hist[METRICS_HIST_DELIVERY_LATENCY].bounds = metrics_latency_bounds;
	m->hist[METRICS_HIST_DELIVERY_LATENCY].n_bounds = sizeof(metrics_latency_bounds) / sizeof(double);
	m->hist[METRICS_HIST_DNS_QUERY].bounds = metrics_dns_bounds;
	m->hist[METRICS_HIST_DNS_QUERY].n_bounds = sizeof(metrics_dns_bounds) / sizeof(double);
	return m;
}

void metrics_free(struct metrics *m)
{
	free(m);
}

static void metrics_add(_Atomic uint64_t *v, uint64_t n)
{
	atomic_fetch_add_explicit(v, n, memory_order_relaxed);
}

void metrics_message_accepted(struct metrics *m, enum conf_listener l, uint64_t n)
{
	if (m != NULL && (unsigned)l < CONF_LISTEN_COUNT)
		metrics_add(&m->accepted[l], n);
}

void metrics_message_refused(struct metrics *m, enum conf_listener l, enum metrics_refusal r, uint64_t n)
{
	if (m != NULL && (unsigned)l < CONF_LISTEN_COUNT && (unsigned)r < METRICS_REFUSAL_COUNT)
		metrics_add(&m->refused[l][r], n);
}

void metrics_delivery_count(struct metrics *m, enum metrics_route r, enum metrics_outcome o)
{
	if (m != NULL && (unsigned)r < METRICS_ROUTE_COUNT && (unsigned)o < METRICS_OUTCOME_COUNT) {
		metrics_add(&m->deliveries[r][o], 1);
		metrics_recent_count_at(m, r, o, date_mono_ms() / 1000);
	}
}

void metrics_outbound_count(struct metrics *m, bool tls)
{
	if (m != NULL)
		metrics_add(&m->outbound[tls ? 1 : 0], 1);
}

void metrics_http_count(struct metrics *m, size_t slot, unsigned status)
{
	if (m != NULL && slot < METRICS_HTTP_SLOTS)
		metrics_add(&m->http_requests[slot][metrics_http_status_index(status)], 1);
}

void metrics_webhook_count(struct metrics *m, enum metrics_webhook_result r)
{
	if (m != NULL && (unsigned)r < METRICS_WEBHOOK_RESULT_COUNT)
		metrics_add(&m->webhook_attempts[r], 1);
}

void metrics_observe(struct metrics *m, enum metrics_hist h, double seconds)
{
	if (m == NULL || (unsigned)h >= METRICS_HIST_COUNT)
		return;
	struct metrics_histogram *hg = &m->hist[h];
	/* also NaN: no comparison below holds for it */
	if (!(seconds > 0))
		seconds = 0;
	size_t i = 0;
	while (i < hg->n_bounds && seconds > hg->bounds[i])
		i++;
	metrics_add(&hg->buckets[i], 1);
	/* a sum beyond 2^64 µs (half a million years) is not a concern; one absurd value is cut */
	double us = seconds * 1e6;
	metrics_add(&hg->sum_us, us < 1e15 ? (uint64_t)(us + 0.5) : (uint64_t)1e15);
}

double metrics_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
