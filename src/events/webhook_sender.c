/* webhook_sender.c — the rounds that post the webhook outbox (webhook_sender.h).
 *
 * State on the loop: the posts in flight (a list) and the outcomes waiting to be recorded (an
 * array). A round's job takes the outcomes with it and a copy of the flights' ids (the "busy"
 * list the due scan leaves out), so the loop never shares a struct with a worker. One job at a
 * time: a tick while one runs is remembered and served when it ends. Jobs hold a reference on the
 * sender, as their done callbacks may run after stop (server.h: loopq_free runs what the workers
 * posted last). */
#include "events/webhook_sender.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "conf/conf.h"
#include "events/webhook_payload.h"
#include "events/webhooks_store.h"
#include "net/http_client.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/worker.h"
#include "util/date.h"

#define FANOUT_BATCHES_PER_ROUND 8
#define FANOUT_BATCH 500                         /* events fanned out per round at most */
#define PRUNE_INTERVAL_MS (3600 * (int64_t)1000) /* finished deliveries are pruned hourly */

struct webhook_flight {
	struct webhook_flight *next, *prev;
	struct webhook_sender *snd;
	int64_t delivery_id;
	char webhook_id[WEBHOOK_ID_LEN + 1];
	char msg_id[WEBHOOK_MSG_ID_LEN + 1];
	char event_type[WEBHOOK_EVENT_NAME_MAX + 1];
	unsigned attempts; /* made before this one */
};

struct webhook_sender {
	struct event_base *base;
	struct worker_pool *workers;
	struct conf *const *conf;
	const bool *held;        /* true: another process posts the outbox (webhook_sender_start) */
	struct metrics *metrics; /* NULL: not counted */
	struct webhooks_store *store;
	struct http_client *http;
	struct event *tick;
	struct webhook_flight *flights;
	size_t n_flights;
	struct webhook_outcome *outcomes; /* to record */
	size_t n_outcomes, cap_outcomes;
	bool job_running, again, stopped, failing;
	unsigned refs; /* 1 until stop, and 1 per job */
	int64_t last_prune_ms;
};

struct webhook_job {
	struct webhook_sender *snd;
	struct webhooks_store *store;
	struct metrics *metrics; /* atomics: counted on the worker without a message to the loop */
	int64_t now_ms;
	struct webhook_outcome *outcomes;
	size_t n_outcomes;
	struct webhook_busy *busy;
	size_t n_busy;
	unsigned per_endpoint, room;
	int64_t prune_before; /* 0: no pruning this round */
	/* what it found */
	bool record_failed;
	char err[256];
	unsigned created;
	struct webhook_due *due;
	size_t n_due;
};

static void sender_unref(struct webhook_sender *snd)
{
	if (--snd->refs > 0)
		return;
	free(snd->outcomes);
	free(snd);
}

/* ---- outcomes ---- */

static struct webhook_outcome *outcome_add(struct webhook_sender *snd)
{
	if (snd->n_outcomes == snd->cap_outcomes) {
		size_t cap = snd->cap_outcomes ? snd->cap_outcomes * 2 : 16;
		struct webhook_outcome *g = realloc(snd->outcomes, cap * sizeof(*g));
		if (g == NULL)
			return NULL;
		snd->outcomes = g, snd->cap_outcomes = cap;
	}
	struct webhook_outcome *o = &snd->outcomes[snd->n_outcomes++];
	memset(o, 0, sizeof(*o));
	return o;
}

static void round_start(struct webhook_sender *snd);

/* Counted once recorded (committed), not when the answer comes: outcomes whose write failed
 * travel with the next round and would otherwise be counted twice; those lost at a crash are
 * posted again and counted then. The failed ones are the deliveries given up. */
static void outcomes_count(struct metrics *m, const struct webhook_outcome *o, size_t n)
{
	for (size_t i = 0; m != NULL && i < n; i++)
		metrics_webhook_count(m, o[i].delivered ? METRICS_WEBHOOK_DELIVERED
				      : o[i].retry  ? METRICS_WEBHOOK_RETRY
						    : METRICS_WEBHOOK_FAILED);
}

/* The end of one attempt: what it means for the delivery, logged, kept for the next job. */
static void attempt_end(struct webhook_sender *snd, const struct webhook_flight *f, long status,
			const char *error, const char *response, unsigned elapsed_ms)
{
	const struct conf *c = *snd->conf;
	struct webhook_outcome *o = outcome_add(snd);
	if (o == NULL) {
		/* not recorded: still pending in the store, so it is posted again (at-least-once) */
		log_error("event=webhook_attempt_lost delivery=%" PRId64 " reason=\"out of memory\"",
			  f->delivery_id);
		return;
	}
	int64_t now = date_now_ms();
	o->delivery_id = f->delivery_id;
	o->attempts = f->attempts + 1;
	o->status = (int)status;
	/* Standard Webhooks §"Delivery": a 2xx answer is success; anything else (3xx too: no
	 * redirects are followed) is tried again */
	o->delivered = status >= 200 && status <= 299;
	snprintf(o->response, sizeof(o->response), "%s", response != NULL ? response : error != NULL ? error : "");
	if (!o->delivered) {
		snprintf(o->error, sizeof(o->error), "%s", error != NULL ? error : "");
		o->retry = webhook_retry_next(c->webhook_retry_schedule, c->webhook_retry_count, o->attempts,
					      now, &o->next_attempt);
	}
	char err[LOG_VALUE_SIZE(160)];
	log_safe(err, sizeof(err), o->error, (unsigned)strnlen(o->error, 160));
	const char *result = o->delivered ? "delivered" : o->retry ? "retry" : "failed";
	int64_t next_in = o->retry ? (o->next_attempt - now) / 1000 : 0;
	log_msg(o->delivered ? LOG_LEVEL_INFO : LOG_LEVEL_WARN,
		"event=webhook_attempt webhook=%s delivery=%" PRId64
		" msg_id=%s type=%s attempt=%u status=%ld"
		" elapsed_ms=%u result=%s next_in_s=%" PRId64 " error=%s",
		f->webhook_id, f->delivery_id, f->msg_id, f->event_type, o->attempts, status, elapsed_ms,
		result, next_in, err);
}

static void flight_unlink(struct webhook_sender *snd, struct webhook_flight *f)
{
	if (f->prev != NULL)
		f->prev->next = f->next;
	else
		snd->flights = f->next;
	if (f->next != NULL)
		f->next->prev = f->prev;
	snd->n_flights--;
}

/* The HTTP client's callback (loop thread). */
static void flight_done(void *arg, const struct http_client_result *r)
{
	struct webhook_flight *f = arg;
	struct webhook_sender *snd = f->snd;
	char why[HTTP_CLIENT_KEEP + 64];
	const char *error = r->error;
	if (error == NULL && (r->status < 200 || r->status > 299)) {
		/* the receiver's first words say why, for `mailwerk webhook log` */
		snprintf(why, sizeof(why), "HTTP %ld%s%.*s", r->status, r->body_len > 0 ? ": " : "",
			 (int)(r->body_len > 200 ? 200 : r->body_len), r->body);
		error = why;
	}
	/* the answer's first words, whatever it was, for the attempts list */
	char answer[256];
	snprintf(answer, sizeof(answer), "%.*s", (int)(r->body_len > 255 ? 255 : r->body_len), r->body != NULL ? r->body : "");
	attempt_end(snd, f, r->error != NULL ? 0 : r->status, error, r->error != NULL ? r->error : answer, r->elapsed_ms);
	flight_unlink(snd, f);
	free(f);
	/* record it and fill the slot now rather than at the next tick: under load, rounds then
	 * follow each other as fast as the jobs go, each recording every outcome since the last */
	round_start(snd);
}

/* Signs and posts one due delivery. */
static void post_start(struct webhook_sender *snd, const struct webhook_due *d)
{
	const struct conf *c = *snd->conf;
	struct webhook_flight *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return; /* stays pending: the next round finds it again */
	f->snd = snd;
	f->delivery_id = d->delivery_id;
	f->attempts = d->attempts;
	snprintf(f->webhook_id, sizeof(f->webhook_id), "%s", d->webhook_id);
	snprintf(f->msg_id, sizeof(f->msg_id), "%s", d->msg_id);
	snprintf(f->event_type, sizeof(f->event_type), "%s", d->event_type);

	/* a fresh timestamp and signature per attempt, the same id (Standard Webhooks §"Retries") */
	int64_t ts = (int64_t)time(NULL);
	char sig[WEBHOOK_SIGNATURE_SIZE], err[256];
	const char *why;
	size_t len = strlen(d->payload);
	if (webhook_sign(d->secret, d->msg_id, ts, d->payload, len, sig, &why) != WEBHOOK_SIGN_OK) {
		attempt_end(snd, f, 0, why, NULL, 0);
		free(f);
		return;
	}
	/* the Standard Webhooks names, and the same values under Svix's, which is what Resend sends
	 * (and what applications written for Resend read) */
	char h_id[2][64], h_ts[2][48], h_sig[2][80];
	const char *names[2] = {"webhook", "svix"};
	for (int i = 0; i < 2; i++) {
		snprintf(h_id[i], sizeof(h_id[i]), "%s-id: %s", names[i], d->msg_id);
		snprintf(h_ts[i], sizeof(h_ts[i]), "%s-timestamp: %" PRId64, names[i], ts);
		snprintf(h_sig[i], sizeof(h_sig[i]), "%s-signature: %s", names[i], sig);
	}
	const char *headers[] =
		{"Content-Type: application/json", h_id[0], h_ts[0], h_sig[0], h_id[1], h_ts[1], h_sig[1]};
	const struct http_client_opts o = {
		.timeout_ms = c->webhook_timeout * 1000,
		.allow_private = c->webhook_allow_private,
	};
	if (http_client_post(snd->http, d->endpoint, headers, sizeof(headers) / sizeof(headers[0]),
			     d->payload, len, &o, flight_done, f, err, sizeof(err)) != 0) {
		attempt_end(snd, f, 0, err, NULL, 0);
		free(f);
		return;
	}
	f->next = snd->flights;
	if (snd->flights != NULL)
		snd->flights->prev = f;
	snd->flights = f;
	snd->n_flights++;
}

/* ---- rounds ---- */

/* Worker thread: everything a round does with the store. */
static void job_work(void *arg)
{
	struct webhook_job *j = arg;
	if (j->n_outcomes > 0 && webhooks_store_record(j->store, j->outcomes, j->n_outcomes, j->now_ms,
						       j->err, sizeof(j->err)) != 0) {
		/* the outcomes go back to the loop and come again with the next round; until then these
		 * deliveries stay busy, so none is posted twice for a failing disk */
		j->record_failed = true;
		return;
	}
	outcomes_count(j->metrics, j->outcomes, j->n_outcomes);
	/* a backlog (after a restart, or a burst) is worked off in batches, each its own transaction;
	 * a few per round, so that the round still ends soon and posts what it found */
	int r = 1;
	for (int batch = 0; r == 1 && batch < FANOUT_BATCHES_PER_ROUND; batch++) {
		unsigned created = 0;
		r = webhooks_store_fanout(j->store, j->now_ms, FANOUT_BATCH, &created, j->err, sizeof(j->err));
		j->created += created;
	}
	if (r < 0)
		return;
	if (j->prune_before > 0 &&
	    webhooks_store_prune(j->store, j->prune_before, j->err, sizeof(j->err)) != 0)
		return;
	webhooks_store_due(j->store, j->now_ms, j->busy, j->n_busy, j->per_endpoint, j->room, &j->due,
			   &j->n_due, j->err, sizeof(j->err));
}

static void job_free(struct webhook_job *j)
{
	free(j->outcomes);
	free(j->busy);
	webhook_dues_free(j->due, j->n_due);
	free(j);
}

/* Loop thread: the round's results. */
static void job_done(void *arg)
{
	struct webhook_job *j = arg;
	struct webhook_sender *snd = j->snd;
	snd->job_running = false;
	if (snd->stopped) {
		/* outcomes this job could not record are lost: those deliveries are posted again */
		job_free(j);
		sender_unref(snd);
		return;
	}
	if (j->err[0] != '\0') {
		if (!snd->failing)
			log_error("event=webhook_outbox_failed error=\"%s\"", j->err);
		snd->failing = true;
	} else if (snd->failing) {
		log_info("event=webhook_outbox_recovered");
		snd->failing = false;
	}
	if (j->record_failed) {
		for (size_t i = 0; i < j->n_outcomes; i++) {
			struct webhook_outcome *o = outcome_add(snd);
			if (o != NULL)
				*o = j->outcomes[i];
		}
	}
	for (size_t i = 0; i < j->n_due; i++)
		post_start(snd, &j->due[i]);
	job_free(j);
	sender_unref(snd);
	if (snd->again) {
		snd->again = false;
		round_start(snd);
	}
}

static void round_start(struct webhook_sender *snd)
{
	if (snd->stopped || *snd->held)
		return;
	if (snd->job_running) {
		snd->again = true;
		return;
	}
	const struct conf *c = *snd->conf;
	struct webhook_job *j = calloc(1, sizeof(*j));
	if (j == NULL)
		return;
	j->snd = snd;
	j->store = snd->store;
	j->metrics = snd->metrics;
	j->now_ms = date_now_ms();
	j->per_endpoint = c->webhook_max_concurrency;
	if (snd->n_flights < WEBHOOK_SENDER_MAX_FLIGHTS)
		j->room = (unsigned)(WEBHOOK_SENDER_MAX_FLIGHTS - snd->n_flights);
	if (snd->n_flights > 0) {
		j->busy = calloc(snd->n_flights, sizeof(*j->busy));
		if (j->busy == NULL) {
			free(j);
			return;
		}
		for (struct webhook_flight *f = snd->flights; f != NULL; f = f->next) {
			j->busy[j->n_busy].delivery_id = f->delivery_id;
			memcpy(j->busy[j->n_busy].webhook_id, f->webhook_id, sizeof(f->webhook_id));
			j->n_busy++;
		}
	}
	/* the outcomes travel with the job (taken, not shared) */
	j->outcomes = snd->outcomes, j->n_outcomes = snd->n_outcomes;
	snd->outcomes = NULL, snd->n_outcomes = snd->cap_outcomes = 0;
	if (j->now_ms - snd->last_prune_ms >= PRUNE_INTERVAL_MS) {
		/* finished deliveries are kept as long as the message records ([api] retention) */
		j->prune_before = j->now_ms - (int64_t)c->api_retention * 1000;
		snd->last_prune_ms = j->now_ms;
	}
	snd->job_running = true;
	snd->refs++;
	worker_pool_submit(snd->workers, job_work, job_done, j);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	round_start(arg);
}

/* ---- the API ---- */

struct webhook_sender *webhook_sender_start(struct event_base *base, struct worker_pool *workers,
					    struct conf *const *conf, const bool *held, struct metrics *metrics,
					    char *error, size_t error_size)
{
	struct webhook_sender *snd = calloc(1, sizeof(*snd));
	if (snd == NULL) {
		snprintf(error, error_size, "out of memory");
		return NULL;
	}
	snd->base = base;
	snd->workers = workers;
	snd->conf = conf;
	snd->held = held;
	snd->metrics = metrics;
	snd->refs = 1;
	snd->last_prune_ms = 0; /* the first round prunes */
	char err[256];
	snd->store = webhooks_store_open((*conf)->data_dir, err, sizeof(err));
	if (snd->store == NULL) {
		snprintf(error, error_size, "webhooks: %s", err);
		free(snd);
		return NULL;
	}
	snd->http = http_client_new(base, err, sizeof(err));
	struct timeval tv = {.tv_sec = 0, .tv_usec = WEBHOOK_SENDER_TICK_MS * 1000};
	snd->tick = snd->http != NULL ? event_new(base, -1, EV_PERSIST, tick_cb, snd) : NULL;
	if (snd->tick == NULL || event_add(snd->tick, &tv) != 0) {
		snprintf(error, error_size, "webhooks: %s",
			 snd->http == NULL ? err : "cannot start the timer");
		if (snd->tick != NULL)
			event_free(snd->tick);
		http_client_free(snd->http);
		webhooks_store_close(snd->store);
		free(snd);
		return NULL;
	}
	return snd;
}

void webhook_sender_kick(struct webhook_sender *snd)
{
	round_start(snd);
}

struct webhooks_store *webhook_sender_store(struct webhook_sender *snd)
{
	return snd->store;
}

void webhook_sender_stop(struct webhook_sender *snd)
{
	if (snd == NULL)
		return;
	snd->stopped = true;
	event_free(snd->tick);
	/* in flight: dropped without their callbacks; pending in the store, posted after the restart */
	http_client_free(snd->http);
	while (snd->flights != NULL) {
		struct webhook_flight *f = snd->flights;
		flight_unlink(snd, f);
		free(f);
	}
	char err[256];
	if (snd->n_outcomes > 0) {
		if (webhooks_store_record(snd->store, snd->outcomes, snd->n_outcomes, date_now_ms(), err,
					  sizeof(err)) != 0)
			log_error("event=webhook_outbox_failed error=\"%s\"", err);
		else
			outcomes_count(snd->metrics, snd->outcomes, snd->n_outcomes);
	}
	snd->n_outcomes = 0;
	webhooks_store_close(snd->store);
	snd->store = NULL;
	sender_unref(snd);
}
