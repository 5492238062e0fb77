/* metrics.h (http) — GET /metrics: the Prometheus text exposition format 0.0.4 of the counters in
 * util/metrics.h and of the gauges read at scrape time (sessions on the loop, the queue and the
 * webhook outbox on a worker), and the counting of every API answer by route, method and status. */
#ifndef MAILWERK_HTTP_METRICS_H
#define MAILWERK_HTTP_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "util/metrics.h"

struct http_session;

/* The route and method labels of an HTTP slot (util/metrics.h). */
struct metrics_http_label {
	const char *route;  /* "/emails/{id}", or "other" */
	const char *method; /* "GET" */
};

/* What a scrape reads at its own time, next to the counters. */
struct metrics_snapshot {
	const char *version;                    /* mailwerk_build_info */
	unsigned sessions[CONF_LISTEN_COUNT];   /* open sessions by listener role */
	bool overload;                          /* the server is in overload mode (util/overload.h) */
	bool queue_read;                        /* false: the queue could not be read, its gauges are left out */
	uint64_t queue_messages;
	int64_t queue_oldest_seconds;           /* age of the oldest message; 0 when the queue is empty */
	bool webhooks_read;                     /* false: the outbox could not be read, its gauge is left out */
	uint64_t webhook_backlog;               /* deliveries of enabled webhooks still pending */
	bool tls_cert;                          /* false: no TLS certificate, its gauge is left out */
	int64_t tls_not_after;                  /* the certificate's notAfter, unix seconds */
	const struct metrics_http_label *http;  /* slot i's labels, for i < http_count */
	size_t http_count;
};

/* The whole exposition (HELP and TYPE lines, escaped label values) into *out (malloc'd,
 * NUL-terminated, *len octets without the NUL). Pure: it reads m and g only. 0, or -1 when out of
 * memory (*out is then NULL). */
int metrics_render(const struct metrics *m, const struct metrics_snapshot *g, char **out, size_t *len);

/* Counts the answer the session is giving now (session.c, for every status it sends). */
void http_metrics_count(struct http_session *s, unsigned status);

#endif
