/* report_scheduler.c — recording DMARC evaluations and sending the aggregate reports on schedule (RFC 9990). */
#include "report/report_scheduler.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf/conf.h"
#include "server/signer_client.h"
#include "net/dns_drive.h"
#include "queue/queue.h"
#include "report/dmarc_report.h"
#include "report/dmarc_report_dest.h"
#include "report/report_store.h"
#include "server/server.h"
#include "util/log.h"
#include "util/worker.h"

/* A standby worker (an upgrade, server.h) asks again this often until it is alone: the worker it
 * started beside takes the same rows at the same moment, and one report is enough. */
#define REPORT_STANDBY_RETRY_SECONDS 5

/* One report of a run. */
struct report_job {
	char policy_domain[DNS_HOST_SIZE];
	char org_domain[DNS_HOST_SIZE];
	char rua[DMARC_REPORT_RUA_MAX][DMARC_REPORT_ADDR_SIZE];
	size_t rua_count;
	struct dmarc_report_row *rows;
	size_t count;
	uint64_t messages;
	int64_t begin, end;
	uint64_t first_id;
	/* from the destination check */
	char allowed[DMARC_REPORT_RUA_MAX][DMARC_REPORT_ADDR_SIZE];
	size_t allowed_count;
	bool keep;               /* a DNS failure: try again next run */
	struct queue_msg *msg;   /* built on the worker, handed to the queue on the loop */
	struct dkim_draft *draft; /* its hashes, signed by the signer process on the way */
	bool done;               /* queued, or nowhere to go: its rows may go */
};

struct report_run {
	struct report_scheduler *r;
	struct conf *conf; /* a reference: the worker steps read it while a reload may replace the server's */
	time_t end;
	struct report_job *jobs;
	size_t count, cap;
	size_t next;                     /* the job whose destinations are being checked */
	struct dmarc_report_dests *dests;
	struct dns_drive *drive;
	size_t storing;                  /* queue stores not answered yet */
	bool failed;                     /* the store failed to read: nothing more this run */
	struct report_store_take_stats stats;
};

struct report_scheduler {
	struct server *srv;
	struct report_store *store;
	struct event *timer;
	struct report_run *run; /* at most one at a time */
	bool stopping;
};

struct record_job {
	struct report_scheduler *r;
	struct dmarc_report_row *rows;
	size_t n;
};

static void run_free(struct report_run *run)
{
	if (run == NULL)
		return;
	conf_free(run->conf);
	dns_drive_cancel(run->drive);
	dmarc_report_dests_free(run->dests);
	for (size_t i = 0; i < run->count; i++) {
		free(run->jobs[i].rows);
		queue_msg_free(run->jobs[i].msg);
		dkim_draft_free(run->jobs[i].draft);
	}
	free(run->jobs);
	free(run);
}

/* ---- recording ---- */

static void record_work(void *arg)
{
	struct record_job *j = arg;
	const char *err;
	if (report_store_add(j->r->store, j->rows, j->n, &err) != RESULT_OK)
		log_warn("event=dmarc_record_failed error=\"%s\"", err);
}

static void record_done(void *arg)
{
	struct record_job *j = arg;
	free(j->rows);
	free(j);
}

void report_scheduler_record(struct report_scheduler *r, const struct dmarc_report_row *rows, size_t n)
{
	if (r == NULL || r->stopping || n == 0)
		return;
	struct record_job *j = calloc(1, sizeof(*j));
	if (j == NULL || (j->rows = malloc(n * sizeof(*rows))) == NULL) {
		free(j);
		return;
	}
	memcpy(j->rows, rows, n * sizeof(*rows));
	j->r = r;
	j->n = n;
	worker_pool_submit(r->srv->workers, record_work, record_done, j);
}

/* ---- a run: 1. take (worker) ---- */

static bool take_collect(void *arg, const struct report_store_batch *b)
{
	struct report_run *run = arg;
	if (run->count == run->cap) {
		size_t cap = run->cap ? run->cap * 2 : 8;
		struct report_job *grown = realloc(run->jobs, cap * sizeof(*grown));
		if (grown == NULL)
			return false;
		run->jobs = grown;
		run->cap = cap;
	}
	struct report_job *j = &run->jobs[run->count];
	memset(j, 0, sizeof(*j));
	if ((j->rows = malloc(b->count * sizeof(*b->rows))) == NULL)
		return false;
	memcpy(j->rows, b->rows, b->count * sizeof(*b->rows));
	snprintf(j->policy_domain, sizeof(j->policy_domain), "%s", b->policy_domain);
	snprintf(j->org_domain, sizeof(j->org_domain), "%s", b->count > 0 ? b->rows[b->count - 1].org_domain : "");
	for (size_t i = 0; i < b->rua_count && i < DMARC_REPORT_RUA_MAX; i++)
		snprintf(j->rua[j->rua_count++], sizeof(j->rua[0]), "%s", b->rua[i]);
	j->count = b->count;
	j->messages = b->messages;
	j->begin = b->begin;
	j->end = b->end;
	j->first_id = b->first_id;
	run->count++;
	return false; /* the rows stay until the report is queued (step 5) */
}

static void take_work(void *arg)
{
	struct report_run *run = arg;
	const char *err;
	if (report_store_take(run->r->store, run->end, take_collect, run, NULL, &err) != RESULT_OK) {
		log_warn("event=dmarc_report_failed step=read error=\"%s\"", err);
		run->failed = true;
	}
}

/* ---- 2. destinations (loop, DNS) ---- */

static void build_work(void *arg);
static void build_done(void *arg);
static void dests_next(struct report_run *run);

static void dests_done(void *arg, bool exceeded)
{
	struct report_run *run = arg;
	struct report_job *j = &run->jobs[run->next];
	const char *const *allowed;
	run->drive = NULL;
	size_t n = exceeded ? 0 : dmarc_report_dests_allowed(run->dests, &allowed);
	for (size_t i = 0; i < n && i < DMARC_REPORT_RUA_MAX; i++)
		snprintf(j->allowed[j->allowed_count++], sizeof(j->allowed[0]), "%s", allowed[i]);
	/* RFC 9990 §4: unverified destinations get nothing; one that failed for DNS may work later */
	j->keep = j->allowed_count == 0 && (exceeded || dmarc_report_dests_tempfail(run->dests));
	j->done = j->allowed_count == 0 && !j->keep;
	if (j->allowed_count == 0)
		log_info("event=dmarc_report_dropped domain=%s reason=%s", j->policy_domain,
			 j->keep ? "destination_tempfail" : "no_verified_destination");
	dmarc_report_dests_free(run->dests);
	run->dests = NULL;
	run->next++;
	dests_next(run);
}

static void dests_next(struct report_run *run)
{
	struct report_scheduler *r = run->r;
	while (run->next < run->count) {
		struct report_job *j = &run->jobs[run->next];
		const char *addrs[DMARC_REPORT_RUA_MAX];
		for (size_t i = 0; i < j->rua_count; i++)
			addrs[i] = j->rua[i];
		run->dests = dmarc_report_dests_new(j->policy_domain, j->org_domain, addrs, j->rua_count);
		if (run->dests != NULL &&
		    (run->drive = dns_drive_start(r->srv->dns, dmarc_report_dests_step, run->dests, dests_done, run)) != NULL)
			return;
		dmarc_report_dests_free(run->dests);
		run->dests = NULL;
		j->keep = true; /* out of memory: next run */
		run->next++;
	}
	worker_pool_submit(r->srv->workers, build_work, build_done, run);
}

/* ---- 3. build and sign (worker) ---- */

static struct queue_msg *build_one(struct report_job *j, const struct conf *c, const char *from)
{
	char id[DMARC_REPORT_ID_SIZE];
	char *xml = NULL, *msg = NULL;
	size_t xml_len, msg_len;
	const char *err;
	const char *to[DMARC_REPORT_RUA_MAX];
	for (size_t i = 0; i < j->allowed_count; i++)
		to[i] = j->allowed[i];
	dmarc_report_id_make(id, j->begin, j->first_id);
	struct dmarc_report_meta meta = {
		.org_name = c->hostname, .email = from, .report_id = id, .begin = j->begin, .end = j->end,
	};
	struct dmarc_report_mail mail = {
		.from = from, .to = to, .to_count = j->allowed_count, .receiver = c->hostname,
		.policy_domain = j->policy_domain, .report_id = id, .begin = j->begin, .end = j->end,
		.date = (int64_t)time(NULL),
	};
	if (dmarc_report_xml(&meta, j->rows, j->count, &xml, &xml_len, NULL, &err) != DMARC_REPORT_OK ||
	    dmarc_report_message(&mail, xml, xml_len, &msg, &msg_len, &err) != DMARC_REPORT_OK) {
		log_warn("event=dmarc_report_failed step=build domain=%s error=\"%s\"", j->policy_domain, err);
		free(xml);
		return NULL;
	}
	free(xml);
	/* RFC 9990 §3.5.2: the report itself must pass DMARC, so it is signed like our users' mail */
	const char *at = strrchr(from, '@');
	j->draft = signer_draft_new(c, at + 1, msg, msg_len, time(NULL), NULL, &err);
	if (j->draft == NULL)
		log_warn("event=dkim_sign_failed domain=%s error=\"%s\"", at + 1, err);
	struct queue_msg *m = calloc(1, sizeof(*m));
	char **rcpts = calloc(j->allowed_count, sizeof(*rcpts));
	if (m == NULL || rcpts == NULL) {
		free(m);
		free(rcpts);
		free(msg);
		return NULL;
	}
	m->data = msg;
	m->size = msg_len;
	m->rcpts = rcpts;
	queue_id_new(m->id);
	m->arrival = (int64_t)time(NULL);
	m->sender = strdup(from);
	m->client_ip = strdup("127.0.0.1");
	for (size_t i = 0; i < j->allowed_count; i++) {
		if ((rcpts[i] = strdup(j->allowed[i])) != NULL)
			m->rcpt_count++;
	}
	if (m->sender == NULL || m->client_ip == NULL || m->rcpt_count != j->allowed_count) {
		queue_msg_free(m);
		return NULL;
	}
	return m;
}

static void build_work(void *arg)
{
	struct report_run *run = arg;
	const struct conf *c = run->conf;
	char from[ADDR_TEXT_MAX + 1];
	if (c->dmarc_report_from[0] != '\0')
		snprintf(from, sizeof(from), "%s", c->dmarc_report_from);
	else
		snprintf(from, sizeof(from), "dmarc-reports@%s", c->hostname);
	for (size_t i = 0; i < run->count; i++) {
		struct report_job *j = &run->jobs[i];
		if (j->allowed_count > 0)
			j->msg = build_one(j, c, from);
	}
}

/* ---- 4. queue (loop) ---- */

static void delete_work(void *arg);
static void delete_done(void *arg);

struct store_wait {
	struct report_run *run;
	struct report_job *job;
	char id[QUEUE_ID_LEN + 1];
};

static void run_deletes(struct report_run *run)
{
	worker_pool_submit(run->r->srv->workers, delete_work, delete_done, run);
}

/* One report's store (or signature) is answered: the run goes on once all are. */
static void wait_over(struct store_wait *w)
{
	struct report_run *run = w->run;
	free(w);
	if (--run->storing == 0) {
		if (run->r->stopping)
			run_free(run);
		else
			run_deletes(run);
	}
}

static void stored(void *arg, enum result res, const char *reason)
{
	struct store_wait *w = arg;
	if (res == RESULT_OK) {
		w->job->done = true;
		log_info("queue_id=%s event=dmarc_report_queued domain=%s messages=%llu rcpts=%zu", w->id,
			 w->job->policy_domain, (unsigned long long)w->job->messages, w->job->allowed_count);
	} else {
		log_warn("event=dmarc_report_failed step=queue domain=%s error=\"%s\"", w->job->policy_domain, reason);
	}
	wait_over(w);
}

/* Signed (or not: a broken key lets the report go unsigned, as our users' mail): to the queue. */
static void signed_done(void *arg, enum signer_result res, char *fields, const char *error)
{
	struct store_wait *w = arg;
	struct report_run *run = w->run;
	struct queue_msg *m = w->job->msg;
	w->job->msg = NULL;
	if (res == SIGNER_UNAVAILABLE || run->r->stopping) {
		/* not done: its rows stay for the next run */
		if (!run->r->stopping)
			log_warn("event=dmarc_report_failed step=sign domain=%s error=\"%s\"", w->job->policy_domain, error);
		queue_msg_free(m);
		free(fields);
		wait_over(w);
		return;
	}
	if (res == SIGNER_KEY_FAILED)
		log_warn("queue_id=%s event=dkim_sign_failed domain=%s error=\"%s\"", w->id, w->job->policy_domain, error);
	else if (fields[0] != '\0' && !queue_msg_prepend(m, fields, strlen(fields)))
		log_warn("queue_id=%s event=dkim_sign_failed domain=%s error=\"out of memory\"", w->id, w->job->policy_domain);
	free(fields);
	queue_msg_store(run->r->srv->queue, m, stored, w);
}

static void build_done(void *arg)
{
	struct report_run *run = arg;
	if (run->r->stopping) {
		run_free(run);
		return;
	}
	run->storing = 1; /* held until every store is started */
	for (size_t i = 0; i < run->count; i++) {
		struct report_job *j = &run->jobs[i];
		struct store_wait *w = j->msg != NULL ? calloc(1, sizeof(*w)) : NULL;
		if (w == NULL)
			continue;
		w->run = run;
		w->job = j;
		memcpy(w->id, j->msg->id, sizeof(w->id));
		run->storing++;
		if (j->draft != NULL) {
			struct dkim_draft *d = j->draft;
			j->draft = NULL;
			signer_client_sign(run->r->srv->signer, d, signed_done, w);
		} else {
			queue_msg_store(run->r->srv->queue, j->msg, stored, w);
			j->msg = NULL;
		}
	}
	if (--run->storing == 0)
		run_deletes(run);
}

/* ---- 5. delete what went out (worker) ---- */

static bool take_accept(void *arg, const struct report_store_batch *b)
{
	struct report_run *run = arg;
	for (size_t i = 0; i < run->count; i++)
		if (run->jobs[i].first_id == b->first_id && strcmp(run->jobs[i].policy_domain, b->policy_domain) == 0)
			return run->jobs[i].done;
	return false; /* rows that came in since step 1: the next run */
}

static void delete_work(void *arg)
{
	struct report_run *run = arg;
	const char *err;
	if (report_store_take(run->r->store, run->end, take_accept, run, &run->stats, &err) != RESULT_OK)
		log_warn("event=dmarc_report_failed step=delete error=\"%s\"", err);
}

static void run_finished(struct report_run *run)
{
	struct report_scheduler *r = run->r;
	if (r->run == run)
		r->run = NULL;
	run_free(run);
}

static void delete_done(void *arg)
{
	struct report_run *run = arg;
	if (!run->r->stopping)
		log_info("event=dmarc_reports reports=%zu messages=%llu", run->stats.accepted,
			 (unsigned long long)run->stats.messages);
	run_finished(run);
}

/* ---- the timer ---- */

static void take_done(void *arg)
{
	struct report_run *run = arg;
	if (run->r->stopping || run->failed || run->count == 0) {
		run_finished(run);
		return;
	}
	dests_next(run);
}

/* The next period's end: a multiple of the interval since the epoch, so a daily report covers one
 * UTC day (RFC 9990 §3.1.4 suggests whole days) and restarts do not shift the periods. */
static void timer_arm(struct report_scheduler *r)
{
	unsigned interval = r->srv->conf->dmarc_report_interval;
	time_t now = time(NULL);
	time_t next = (now / interval + 1) * (time_t)interval;
	struct timeval tv = {.tv_sec = next - now};
	evtimer_add(r->timer, &tv);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct report_scheduler *r = arg;
	if (r->srv->standby) {
		struct timeval tv = {.tv_sec = REPORT_STANDBY_RETRY_SECONDS};
		evtimer_add(r->timer, &tv);
		return;
	}
	timer_arm(r);
	if (!r->srv->conf->dmarc_reports || r->run != NULL)
		return; /* off, or the last run is still going: its rows are taken next time */
	struct report_run *run = calloc(1, sizeof(*run));
	if (run == NULL)
		return;
	unsigned interval = r->srv->conf->dmarc_report_interval;
	run->r = r;
	run->conf = conf_ref(r->srv->conf);
	run->end = time(NULL) / interval * (time_t)interval;
	r->run = run;
	worker_pool_submit(r->srv->workers, take_work, take_done, run);
}

struct report_scheduler *report_scheduler_new(struct server *srv, char *error_r, size_t error_size)
{
	const char *err;
	struct report_scheduler *r = calloc(1, sizeof(*r));
	if (r == NULL) {
		snprintf(error_r, error_size, "out of memory");
		return NULL;
	}
	r->srv = srv;
	if ((r->store = report_store_open(srv->conf->data_dir, &err)) == NULL) {
		snprintf(error_r, error_size, "%s", err);
		free(r);
		return NULL;
	}
	if ((r->timer = evtimer_new(srv->base, timer_cb, r)) == NULL) {
		snprintf(error_r, error_size, "out of memory");
		report_store_close(r->store);
		free(r);
		return NULL;
	}
	timer_arm(r);
	return r;
}

void report_scheduler_stop(struct report_scheduler *r)
{
	if (r == NULL)
		return;
	r->stopping = true;
	evtimer_del(r->timer);
	if (r->run != NULL && r->run->drive != NULL) {
		/* in the DNS step: nothing else holds the run */
		struct report_run *run = r->run;
		r->run = NULL;
		run_free(run);
	}
}

void report_scheduler_free(struct report_scheduler *r)
{
	if (r == NULL)
		return;
	if (r->timer != NULL)
		event_free(r->timer);
	report_store_close(r->store);
	free(r);
}
