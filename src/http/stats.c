/* stats.c — GET /stats, mailwerk's own (Resend shows this only in its dashboard): how tracked mail
 * fared over the last 24 hours (per hour) or 30 days (per day, ?window=30d), the mail received for
 * the applications, the queue's depth and its oldest deferred recipient. What the dashboard's
 * overview draws; the reads run on a worker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/db.h"
#include "events/stats.h"
#include "http/api.h"
#include "http/json.h"
#include "http/job_answer.h"
#include "http/session.h"
#include "inbound/inbound_store.h"
#include "queue/queue.h"
#include "server/server.h"
#include "util/date.h"
#include "util/worker.h"

/* The event types the overview counts, by Resend's names. */
static const enum email_event_type stats_types[] = {
	EMAIL_EVENT_SENT,   EMAIL_EVENT_DELIVERED,	EMAIL_EVENT_DELIVERY_DELAYED, EMAIL_EVENT_BOUNCED,
	EMAIL_EVENT_COMPLAINED, EMAIL_EVENT_FAILED, EMAIL_EVENT_SUPPRESSED,
};

struct stats_job {
	struct server *srv;
	struct http_api *api;
	uint64_t session_id;
	bool month;
	int64_t now_ms;
	struct http_job_answer ans;
};

static json_t *counts_json(const uint64_t counts[EMAIL_EVENT_COUNT])
{
	json_t *o = json_object();
	for (size_t i = 0; i < sizeof(stats_types) / sizeof(stats_types[0]); i++)
		json_object_set_new(o, email_event_type_str(stats_types[i]), json_integer((json_int_t)counts[stats_types[i]]));
	return o;
}

static void stats_work(void *arg)
{
	struct stats_job *j = arg;
	/* buckets end with the current one: hours of the last day, or days (UTC) of the last 30 */
	int64_t bucket = j->month ? 86400000 : 3600000;
	size_t n = j->month ? 30 : 24;
	int64_t since = (j->now_ms / bucket - (int64_t)(n - 1)) * bucket;
	struct events_stats *st = calloc(1, sizeof(*st));
	uint64_t depth = 0, deferred = 0, received = 0;
	int64_t oldest = 0;
	struct queue_deferred d = {0};
	const char *err;
	char ierr[256];
	pthread_mutex_lock(&j->api->reader_mu);
	bool ok = st != NULL && events_stats_read(queue_db(j->api->reader), since, bucket, n, st) == SQLITE_OK &&
		  queue_stats(j->api->reader, &depth, &oldest, &err) == RESULT_OK &&
		  queue_deferred_oldest(j->api->reader, &deferred, &d, &err) == RESULT_OK;
	pthread_mutex_unlock(&j->api->reader_mu);
	ok = ok && inbound_store_count_since(j->api->inbound, since, &received, ierr, sizeof(ierr)) == 0;
	if (ok) {
		json_t *series = json_array();
		for (size_t b = 0; b < st->buckets; b++) {
			json_t *c = counts_json(st->counts[b]);
			json_object_set_new(c, "start", http_json_time(since + (int64_t)b * bucket));
			json_array_append_new(series, c);
		}
		json_t *od = deferred > 0 ? json_pack("{s:s, s:s, s:o, s:o, s:o}", "queue_id", d.id, "recipient", d.addr,
						       "arrival", http_json_time(d.arrival * 1000), "next_attempt",
						       http_json_time(d.next_attempt * 1000), "last_error",
						       d.last_error != NULL ? json_string(d.last_error) : json_null())
					  : json_null();
		j->ans.body = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:I, s:{s:I, s:o, s:I, s:o}}", "object", "stats",
				    "window", j->month ? "30d" : "24h", "bucket", j->month ? "day" : "hour", "since",
				    http_json_time(since), "series", series, "totals", counts_json(st->totals), "received",
				    (json_int_t)received, "queue", "messages", (json_int_t)depth, "oldest_arrival",
				    depth > 0 ? http_json_time(oldest * 1000) : json_null(), "deferred", (json_int_t)deferred,
				    "oldest_deferred", od);
	}
	if (j->ans.body == NULL)
		http_job_fail(&j->ans, 503, "internal_server_error", "The statistics cannot be read now.");
	free(d.addr);
	free(d.last_error);
	free(st);
}

static void stats_done(void *arg)
{
	struct stats_job *j = arg;
	http_job_send(j->srv, j->session_id, &j->ans, 200);
	free(j);
}

void http_stats(struct http_call *c)
{
	char window[8] = "";
	if (http_query_get(c->s->req.query, "window", window, sizeof(window)) < 0 ||
	    (window[0] != '\0' && strcmp(window, "24h") != 0 && strcmp(window, "30d") != 0)) {
		http_respond_error(c->s, 422, "validation_error", "The `window` parameter must be `24h` or `30d`.");
		return;
	}
	struct stats_job *j = calloc(1, sizeof(*j));
	if (j == NULL) {
		http_respond_error(c->s, 500, "internal_server_error", "Out of memory.");
		return;
	}
	j->srv = c->s->srv;
	j->api = c->api;
	j->session_id = c->s->conn.id;
	j->month = strcmp(window, "30d") == 0;
	j->now_ms = date_now_ms();
	worker_pool_submit(c->s->srv->workers, stats_work, stats_done, j);
}
