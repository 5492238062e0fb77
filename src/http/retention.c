/* retention.c — [api] retention: records and events of tracked mail older than this are pruned in
 * the background, an hour apart (and a minute after start), a bounded batch per transaction so
 * that the queue writer never waits long; Idempotency-Keys go after their 24 hours. A record
 * whose message is still in the queue stays, however old. Received mail (inbound_store.h) of the
 * same age goes too, rows and files. */
#include "http/retention.h"

#include <event2/event.h>
#include <stdlib.h>

#include "conf/conf.h"
#include "events/events.h"
#include "http/api.h"
#include "inbound/inbound_store.h"
#include "queue/queue.h"
#include "server/server.h"
#include "util/log.h"
#include "util/worker.h"
#include "util/date.h"

#define RETENTION_FIRST_SECONDS 60
#define RETENTION_EVERY_SECONDS 3600
#define RETENTION_BATCH 500
#define RETENTION_BATCHES_MAX 200 /* per run: 100,000 records; the rest waits for the next run */

struct retention_job {
	struct server *srv;
	int64_t before_ms;
	unsigned pruned;
	bool failed;
};

static void retention_work(void *arg)
{
	struct retention_job *j = arg;
	struct http_api *a = j->srv->http_api;
	if (a == NULL)
		return;
	for (unsigned b = 0; b < RETENTION_BATCHES_MAX; b++) {
		unsigned n = 0;
		pthread_mutex_lock(&a->reader_mu);
		int rc = events_prune(queue_db(a->reader), j->before_ms, date_now_ms(), RETENTION_BATCH, &n);
		pthread_mutex_unlock(&a->reader_mu);
		if (rc != 0) {
			j->failed = true;
			return;
		}
		j->pruned += n;
		if (n < RETENTION_BATCH)
			break;
	}
	char err[256];
	for (unsigned b = 0; a->inbound != NULL && b < RETENTION_BATCHES_MAX; b++) {
		unsigned n = 0;
		if (inbound_store_prune(a->inbound, j->before_ms, RETENTION_BATCH, &n, err, sizeof(err)) != 0) {
			log_warn("event=retention_failed store=inbound error=\"%s\"", err);
			j->failed = true;
			return;
		}
		j->pruned += n;
		if (n < RETENTION_BATCH)
			return;
	}
}

static void retention_done(void *arg)
{
	struct retention_job *j = arg;
	if (j->failed)
		log_warn("event=retention_failed pruned=%u", j->pruned);
	else if (j->pruned > 0)
		log_info("event=retention pruned=%u", j->pruned);
	free(j);
}

static void retention_tick(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	struct http_api *a = srv->http_api;
	if (a == NULL)
		return;
	struct retention_job *j = calloc(1, sizeof(*j));
	if (j != NULL) {
		j->srv = srv;
		j->before_ms = date_now_ms() - (int64_t)srv->conf->api_retention * 1000;
		worker_pool_submit(srv->workers, retention_work, retention_done, j);
	}
	struct timeval tv = {RETENTION_EVERY_SECONDS, 0};
	evtimer_add(a->retention_timer, &tv);
}

int http_retention_start(struct server *srv, struct http_api *a)
{
	a->retention_timer = evtimer_new(srv->base, retention_tick, srv);
	if (a->retention_timer == NULL)
		return -1;
	struct timeval tv = {RETENTION_FIRST_SECONDS, 0};
	return evtimer_add(a->retention_timer, &tv);
}

void http_retention_stop(struct http_api *a)
{
	if (a->retention_timer != NULL)
		event_free(a->retention_timer);
	a->retention_timer = NULL;
}
