/* metrics.c (http) — GET /metrics and its text: the Prometheus exposition format 0.0.4
 * (prometheus.io/docs/instrumenting/exposition_formats), rendered from the counters of
 * util/metrics.h and a snapshot of gauges. The sessions are counted on the loop, where the
 * registry lives; the queue is read on a worker through the API's reader connection, as every
 * SQLite read of the API is (it may wait on the disk), and the webhook backlog there too, through
 * the webhook store (its own connection and mutex). No authentication, as for /healthz: the
 * numbers say how busy the server is, never whose mail it holds. */
#include "http/metrics.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "events/webhook_sender.h"
#include "events/webhooks_store.h"
#include "http/api.h"
#include "http/session.h"
#include "queue/queue.h"
#include "server/server.h"
#include "net/tls.h"
#include "util/log.h"
#include "util/worker.h"

/* as openapi.json documents it, and as Prometheus's own client libraries send it */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
/* "/suppressions/batch/remove" is the longest pattern today; a longer one is cut, never overrun */
#define METRICS_ROUTE_LABEL_MAX 64

/* ---- the text ---- */

/* A label value: backslash, double quote and line feed are escaped (the format's only three). */
static void put_value(FILE *f, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\')
			fputs("\\\\", f);
		else if (*v == '"')
			fputs("\\\"", f);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

/* HELP text: backslash and line feed are escaped (a quote is fine there). */
static void put_family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s ", name);
	for (const char *p = help; *p != '\0'; p++) {
		if (*p == '\\')
			fputs("\\\\", f);
		else if (*p == '\n')
			fputs("\\n", f);
		else
			fputc(*p, f);
	}
	fprintf(f, "\n# TYPE %s %s\n", name, type);
}

/* The roles that take messages (POP3 only hands them out). */
static bool role_accepts(enum conf_listener l)
{
	return l != CONF_LISTEN_POP3 && l != CONF_LISTEN_POP3S;
}

/* Seconds from microseconds, exactly: a sum is an integer count of µs. */
static void put_us(FILE *f, uint64_t us)
{
	fprintf(f, "%" PRIu64 ".%06" PRIu64, us / 1000000, us % 1000000);
}

static void put_histogram(FILE *f, const char *name, const char *help, const struct metrics_histogram *h)
{
	put_family(f, name, "histogram", help);
	/* the buckets are counted apart (util/metrics.h); here they become cumulative, and the
	 * +Inf bucket is the count */
	uint64_t total = 0;
	for (size_t i = 0; i <= h->n_bounds; i++) {
		total += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
		if (i < h->n_bounds)
			fprintf(f, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, h->bounds[i], total);
		else
			fprintf(f, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, total);
	}
	fprintf(f, "%s_sum ", name);
	put_us(f, atomic_load_explicit(&h->sum_us, memory_order_relaxed));
	fprintf(f, "\n%s_count %" PRIu64 "\n", name, total);
}

static uint64_t get(const _Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

int metrics_render(const struct metrics *m, const struct metrics_snapshot *g, char **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);
	if (f == NULL)
		return -1;

	put_family(f, "mailwerk_build_info", "gauge", "Always 1; the version of mailwerk in its label.");
	fputs("mailwerk_build_info{version=\"", f);
	put_value(f, g->version != NULL ? g->version : "");
	fputs("\"} 1\n", f);

	put_family(f, "mailwerk_messages_accepted_total", "counter",
		   "Messages acknowledged to their sender once durable (SMTP 250, the API's answer), by listener.");
	for (int l = 0; l < CONF_LISTEN_COUNT; l++)
		if (role_accepts(l))
			fprintf(f, "mailwerk_messages_accepted_total{listener=\"%s\"} %" PRIu64 "\n", conf_listener_str(l),
				get(&m->accepted[l]));

	put_family(f, "mailwerk_messages_refused_total", "counter",
		   "Messages refused for a reason of this server (short of disk space, a failed queue write), by "
		   "listener and reason.");
	for (int l = 0; l < CONF_LISTEN_COUNT; l++)
		for (int r = 0; role_accepts(l) && r < METRICS_REFUSAL_COUNT; r++)
			fprintf(f, "mailwerk_messages_refused_total{listener=\"%s\",reason=\"%s\"} %" PRIu64 "\n",
				conf_listener_str(l), metrics_refusal_str(r), get(&m->refused[l][r]));

	put_family(f, "mailwerk_deliveries_total", "counter",
		   "Delivery attempts per recipient, counted once their outcome is recorded in the queue, by route "
		   "and result.");
	for (int r = 0; r < METRICS_ROUTE_COUNT; r++)
		for (int o = 0; o < METRICS_OUTCOME_COUNT; o++)
			fprintf(f, "mailwerk_deliveries_total{route=\"%s\",result=\"%s\"} %" PRIu64 "\n",
				metrics_route_str(r), metrics_outcome_str(o), get(&m->deliveries[r][o]));

	put_histogram(f, "mailwerk_delivery_latency_seconds",
		      "Seconds from a message's arrival to the recorded delivery of a recipient.",
		      &m->hist[METRICS_HIST_DELIVERY_LATENCY]);

	if (g->queue_read) {
		put_family(f, "mailwerk_queue_messages", "gauge",
			   "Messages in the queue (not yet delivered or failed for every recipient).");
		fprintf(f, "mailwerk_queue_messages %" PRIu64 "\n", g->queue_messages);
		put_family(f, "mailwerk_queue_oldest_seconds", "gauge",
			   "Age in seconds of the oldest message in the queue; 0 when it is empty.");
		fprintf(f, "mailwerk_queue_oldest_seconds %" PRId64 "\n",
			g->queue_oldest_seconds > 0 ? g->queue_oldest_seconds : 0);
	}

	if (g->tls_cert) {
		put_family(f, "mailwerk_tls_certificate_expiry_timestamp_seconds", "gauge",
			   "When the TLS certificate of the listeners expires (its notAfter), in unix seconds.");
		fprintf(f, "mailwerk_tls_certificate_expiry_timestamp_seconds %" PRId64 "\n", g->tls_not_after);
	}

	if (g->webhooks_read) {
		put_family(f, "mailwerk_webhook_backlog", "gauge",
			   "Webhook deliveries of enabled webhooks recorded and not yet delivered or given up (those "
			   "being posted included).");
		fprintf(f, "mailwerk_webhook_backlog %" PRIu64 "\n", g->webhook_backlog);
	}
	put_family(f, "mailwerk_webhook_failures_total", "counter",
		   "Webhook deliveries given up after the last attempt of [webhooks] retry_schedule.");
	fprintf(f, "mailwerk_webhook_failures_total %" PRIu64 "\n", get(&m->webhook_attempts[METRICS_WEBHOOK_FAILED]));
	put_family(f, "mailwerk_webhook_attempts_total", "counter",
		   "Webhook posts, counted once their outcome is recorded, by result (retry: not delivered, "
		   "tried again later; failed: not delivered, given up).");
	for (int r = 0; r < METRICS_WEBHOOK_RESULT_COUNT; r++)
		fprintf(f, "mailwerk_webhook_attempts_total{result=\"%s\"} %" PRIu64 "\n", metrics_webhook_result_str(r),
			get(&m->webhook_attempts[r]));

	put_family(f, "mailwerk_sessions_open", "gauge", "Open client sessions, by listener.");
	for (int l = 0; l < CONF_LISTEN_COUNT; l++)
		fprintf(f, "mailwerk_sessions_open{role=\"%s\"} %u\n", conf_listener_str(l), g->sessions[l]);

	put_family(f, "mailwerk_overload", "gauge",
		   "1 while more of [server] max_connections is in use than overload mode allows (new sessions get "
		   "shorter timeouts), else 0.");
	fprintf(f, "mailwerk_overload %d\n", g->overload ? 1 : 0);

	put_family(f, "mailwerk_outbound_connections_total", "counter",
		   "Outbound SMTP connections made for remote delivery, by whether TLS was in use on them.");
	fprintf(f, "mailwerk_outbound_connections_total{tls=\"yes\"} %" PRIu64 "\n", get(&m->outbound[1]));
	fprintf(f, "mailwerk_outbound_connections_total{tls=\"no\"} %" PRIu64 "\n", get(&m->outbound[0]));

	put_histogram(f, "mailwerk_dns_query_seconds", "Seconds from the start of a DNS lookup to its answer or timeout.",
		      &m->hist[METRICS_HIST_DNS_QUERY]);

	put_family(f, "mailwerk_http_requests_total", "counter",
		   "HTTP API requests answered, by route pattern (\"other\" when none matched), method and status.");
	for (size_t i = 0; i < g->http_count && i < METRICS_HTTP_SLOTS; i++)
		for (size_t k = 0; k < METRICS_HTTP_STATUSES; k++) {
			uint64_t v = get(&m->http_requests[i][k]);
			/* only the series that happened: routes × methods × statuses would be mostly zeros */
			if (v == 0)
				continue;
			fputs("mailwerk_http_requests_total{route=\"", f);
			put_value(f, g->http[i].route);
			fputs("\",method=\"", f);
			put_value(f, g->http[i].method);
			unsigned status = metrics_http_status_at(k);
			if (status != 0)
				fprintf(f, "\",status=\"%u\"} %" PRIu64 "\n", status, v);
			else
				fprintf(f, "\",status=\"other\"} %" PRIu64 "\n", v);
		}

	if (ferror(f)) {
		fclose(f);
		free(buf);
		return -1;
	}
	if (fclose(f) != 0) {
		free(buf);
		return -1;
	}
	*out = buf;
	*len = size;
	return 0;
}

/* ---- counting answers ---- */

/* A route row is its own slot; a request that matched none is counted per method after them. */
void http_metrics_count(struct http_session *s, unsigned status)
{
	size_t routes = http_api_route_count();
	size_t slot;
	if (s->route >= 0) {
		slot = (size_t)s->route;
	} else {
		/* no request line read for this answer (a timeout, a line too long): the method of the
		 * previous request must not be taken for this one's */
		enum http_method method = s->state == HTTP_STATE_IDLE || s->req.method_text[0] == '\0' ? HTTP_METHOD_OTHER
													: s->req.method;
		slot = routes + (size_t)method;
	}
	metrics_http_count(s->srv->metrics, slot, status);
}

/* ---- GET /metrics ---- */

struct metrics_job {
	struct server *srv;
	struct http_api *api;
	struct webhooks_store *webhooks; /* NULL: no sender, the backlog is left out */
	uint64_t session_id;
	struct metrics_snapshot g;
};

static void metrics_work(void *arg)
{
	struct metrics_job *j = arg;
	uint64_t count = 0;
	int64_t oldest = 0;
	const char *err = NULL;
	pthread_mutex_lock(&j->api->reader_mu);
	enum result r = queue_stats(j->api->reader, &count, &oldest, &err);
	pthread_mutex_unlock(&j->api->reader_mu);
	if (r != RESULT_OK) {
		/* the gauges are left out rather than shown as 0: an empty queue is news of its own */
		log_warn("event=metrics_queue_failed error=\"%s\"", err != NULL ? err : "?");
	} else {
		j->g.queue_read = true;
		j->g.queue_messages = count;
		j->g.queue_oldest_seconds = count > 0 ? (int64_t)time(NULL) - oldest : 0;
	}
	/* the store locks its own mutex (webhooks_store.h), so it may wait for a round's commit */
	char werr[256];
	uint64_t pending = 0;
	if (j->webhooks == NULL)
		return;
	if (webhooks_store_pending_count(j->webhooks, &pending, werr, sizeof(werr)) != 0) {
		/* left out too, never a made-up 0 */
		log_warn("event=metrics_webhooks_failed error=\"%s\"", werr);
		return;
	}
	j->g.webhooks_read = true;
	j->g.webhook_backlog = pending;
}

/* The labels of every slot: the route rows, then "other" per method. */
static struct metrics_http_label *metrics_labels(size_t *n_r, char (**patterns_r)[METRICS_ROUTE_LABEL_MAX])
{
	size_t routes = http_api_route_count(), n = routes + HTTP_METHOD_OTHER + 1;
	struct metrics_http_label *l = calloc(n, sizeof(*l));
	char (*pat)[METRICS_ROUTE_LABEL_MAX] = calloc(routes, sizeof(*pat));
	if (l == NULL || pat == NULL) {
		free(l);
		free(pat);
		return NULL;
	}
	for (size_t i = 0; i < routes; i++) {
		enum http_method method;
		const char *p = http_api_route_pattern(i, &method);
		/* the "*" segment is shown as "{id}" ("/emails/{id}"), as the API's documentation writes it */
		size_t o = 0;
		for (; *p != '\0' && o + 5 < sizeof(pat[i]); p++) {
			if (*p == '*') {
				memcpy(pat[i] + o, "{id}", 4);
				o += 4;
			} else {
				pat[i][o++] = *p;
			}
		}
		pat[i][o] = '\0';
		l[i] = (struct metrics_http_label){pat[i], http_method_str(method)};
	}
	for (size_t k = 0; k <= HTTP_METHOD_OTHER; k++)
		l[routes + k] = (struct metrics_http_label){"other", http_method_str((enum http_method)k)};
	*n_r = n;
	*patterns_r = pat;
	return l;
}

static void metrics_done(void *arg)
{
	struct metrics_job *j = arg;
	struct http_session *s = http_session_find(j->srv, j->session_id);
	if (s == NULL) {
		free(j);
		return;
	}
	char (*patterns)[METRICS_ROUTE_LABEL_MAX] = NULL;
	struct metrics_http_label *labels = metrics_labels(&j->g.http_count, &patterns);
	j->g.http = labels;
	char *text = NULL;
	size_t len = 0;
	if (labels == NULL || metrics_render(j->srv->metrics, &j->g, &text, &len) != 0)
		http_respond_error(s, 500, "internal_server_error", "Out of memory.");
	else
		http_respond_body(s, 200, METRICS_CONTENT_TYPE, text, len, NULL);
	free(text);
	free(labels);
	free(patterns);
	free(j);
}

void http_metrics(struct http_call *c)
{
	struct server *srv = c->s->srv;
	struct metrics_job *j = calloc(1, sizeof(*j));
	if (j == NULL) {
		http_respond_error(c->s, 500, "internal_server_error", "Out of memory.");
		return;
	}
	j->srv = srv;
	j->api = c->api;
	/* taken here, on the loop, where the API's state is; the store outlives the workers' jobs
	 * (webhook_sender_stop runs after the workers have stopped) */
	j->webhooks = c->api->webhooks != NULL ? webhook_sender_store(c->api->webhooks) : NULL;
	j->session_id = c->s->conn.id;
	j->g.version = MAILWERK_VERSION;
	struct tls_cert_info ci;
	/* the current context is the loop's (reload replaces it) */
	if (tls_ctx_cert_info(srv->tls, &ci)) {
		j->g.tls_cert = true;
		j->g.tls_not_after = ci.not_after;
	}
	j->g.overload = srv->overload;
	/* the registry is the loop's: counted here, before the hop to the worker */
	for (size_t b = 0; b < SERVER_SESSION_BUCKETS; b++)
		for (const struct server_conn *sc = srv->sessions[b]; sc != NULL; sc = sc->hnext)
			if (!sc->closing && (unsigned)sc->role < CONF_LISTEN_COUNT)
				j->g.sessions[sc->role]++;
	worker_pool_submit(srv->workers, metrics_work, metrics_done, j);
}
