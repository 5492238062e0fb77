/* runner.c — the delivery runner thread: due work in, outcomes recorded, nothing dropped. */
#include "delivery/runner.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "conf/conf.h"
#include "delivery/dsn.h"
#include "delivery/local.h"
#include "delivery/operator.h"
#include "delivery/pool.h"
#include "events/tlsrpt_sessions.h"
#include "inbound/inbound_store.h"
#include "util/throttle.h"
#include "mailbox/users.h"
#include "queue/queue.h"
#include "queue/scheduler.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/date.h"

/* Local recipients per pass: one results transaction each. */
#define RUNNER_BATCH 256
/* Even with nothing due, look again this often: new local domains are noticed within this time. */
#define RUNNER_POLL_SECONDS 2
/* How often an idle runner asks whether another process changed the queue (`mailwerk queue flush`). */
#define RUNNER_WATCH_MS 100
/* Jobs handed to the pool per connection it may open, in total and per domain: enough that a
 * connection finds the next message waiting when it finishes one, few enough to bound memory. */
#define RUNNER_JOBS_PER_CONNECTION 8
/* Message bytes handed to the pool at most (each job holds its copy): beyond this, only one job. */
#define RUNNER_BYTES_MAX ((size_t)256 << 20)

/* A destination domain with jobs in the pool, or held back. */
struct runner_domain {
	char *name;
	unsigned jobs;
	bool held;
	struct throttle_bucket *bucket; /* NULL: no [throttle] rate for it */
};

/* A bounce the operator asked for, waiting for the thread's next pass. */
struct runner_bounce {
	struct runner_bounce *next;
	char id[QUEUE_ID_LEN + 1];
	delivery_runner_bounce_fn *done;
	void *arg;
};

struct runner_throttle {
	char *domain;
	struct throttle_bucket bucket;
};

/* What the thread takes from the configuration; a reload hands it a new one. */
struct runner_settings {
	char *hostname;
	char *delims;
	unsigned schedule[CONF_RETRY_MAX];
	size_t schedule_count;
	unsigned max_lifetime;
	unsigned delay_warning;
	bool hold;              /* [delivery] hold: deliver nothing, keep everything queued */
	bool checked;           /* [smtp] checks: our MX's Authentication-Results can be trusted */
	unsigned tlsrpt_period; /* [tlsrpt] reports: its report_interval; 0: TLS sessions not recorded */
	unsigned job_window;    /* jobs in the pool at most */
	unsigned domain_window; /* jobs per domain in the pool at most */
	struct runner_throttle *throttles;
	size_t throttle_count;
};

struct delivery_runner {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool kicked;                  /* under lock */
	bool stopping;                /* under lock */
	struct remote_job *done_head; /* under lock: finished jobs to record */
	struct remote_job *done_tail;
	struct runner_settings *next_set; /* under lock: from a reload, to take at the next pass */
	struct runner_bounce *bounces;    /* under lock: asked by the operator, newest first */
	/* the thread's own */
	char *data_dir;
	struct runner_settings *set;
	struct queue *queue;
	struct users *users;
	struct inbound_store *inbound; /* routed recipients' copies */
	struct delivery_pool *pool;
	struct metrics *metrics; /* NULL: not counted */
	unsigned jobs;
	size_t bytes; /* of the messages in those jobs */
	struct runner_domain *domains;
	size_t domain_count;
};

/* ---- a batch of outcomes, recorded in one transaction ---- */

struct batch {
	struct queue_rcpt_result *res;
	size_t n, cap;
	int64_t *arrivals; /* per result: its message's arrival, for the latency once recorded */
	size_t caparr;
	char **strs; /* copies the results point to */
	size_t nstrs, capstrs;
	struct queue_msg **add;
	size_t nadd, capadd;
	struct tlsrpt_sessions tls; /* the TLS sessions of the batch's attempts (TLS-RPT), merged */
	unsigned tls_period;        /* [tlsrpt] report_interval; 0: none recorded */
};

static bool batch_grow(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return true;
	size_t ncap = *cap ? *cap * 2 : 64;
	while (ncap < need)
		ncap *= 2;
	void *g = realloc(*p, ncap * elem);
	if (g == NULL)
		return false;
	*p = g;
	*cap = ncap;
	return true;
}

static const char *batch_str(struct batch *b, const char *s)
{
	if (s == NULL || !batch_grow((void **)&b->strs, &b->capstrs, b->nstrs + 1, sizeof(char *)))
		return NULL;
	char *copy = strdup(s);
	if (copy != NULL)
		b->strs[b->nstrs++] = copy;
	return copy;
}

static void batch_reset(struct batch *b)
{
	for (size_t i = 0; i < b->nstrs; i++)
		free(b->strs[i]);
	for (size_t i = 0; i < b->nadd; i++)
		queue_msg_free(b->add[i]);
	b->n = b->nstrs = b->nadd = 0;
	tlsrpt_sessions_clear(&b->tls);
}

static void batch_free(struct batch *b)
{
	batch_reset(b);
	free(b->res);
	free(b->arrivals);
	free(b->strs);
	free(b->add);
	tlsrpt_sessions_free(&b->tls);
}

/* The metrics of a batch that is recorded: an outcome counts once it is in the queue, so a batch
 * that failed to record (and is tried again) is not counted twice. */
static void batch_count(struct delivery_runner *d, const struct batch *b, enum metrics_route route)
{
	if (d->metrics == NULL)
		return;
	double now = (double)date_now_ms() / 1000;
	for (size_t i = 0; i < b->n; i++) {
		enum queue_rcpt_state st = b->res[i].state;
		enum metrics_outcome o = st == QUEUE_RCPT_DELIVERED ? METRICS_OUTCOME_DELIVERED
					 : st == QUEUE_RCPT_FAILED  ? METRICS_OUTCOME_FAILED
								    : METRICS_OUTCOME_DEFERRED;
		metrics_delivery_count(d->metrics, route, o);
		if (o == METRICS_OUTCOME_DELIVERED)
			metrics_observe(d->metrics, METRICS_HIST_DELIVERY_LATENCY, now - (double)b->arrivals[i]);
	}
}

static void batch_commit(struct delivery_runner *d, struct batch *b, enum metrics_route route)
{
	const char *err;
	bool tls_lost = false;
	if (b->n > 0 && queue_rcpt_results_tls(d->queue, b->res, b->n, b->add, b->nadd, &b->tls, b->tls_period,
					       &tls_lost, &err) != RESULT_OK)
		/* not recorded, so due again: delivered ones go again (at-least-once), nothing is lost */
		log_error("event=delivery_record_failed error=\"%s\"", err);
	else
		batch_count(d, b, route);
	if (tls_lost)
		log_warn("event=tlsrpt_record_failed sessions=%zu error=\"the counters could not be written\"", b->tls.n);
	batch_reset(b);
}

/* What happened to one recipient in one attempt. */
struct outcome {
	const char *addr;
	unsigned idx;
	unsigned attempts; /* before this one */
	bool warned;
	enum result result;
	const char *status;     /* RFC 3463, for failures */
	const char *text;       /* the reply or our reason, for failures */
	const char *remote_mta; /* the host whose reply text is, or NULL when the text is ours */
	unsigned notify;        /* RFC 3461 NOTIFY as queued (0: not given) */
	const char *orcpt;      /* RFC 3461 ORCPT "type;address", or NULL */
	bool dsn_passed;        /* delivered to a server that offers DSN, with NOTIFY passed on */
};

/* Turns the outcomes of one message into results and, for the sender, at most one failure report,
 * one delay warning and one success report (RFC 3464), all added to b. Each recipient is in a report
 * only when its NOTIFY asks for that kind (RFC 3461 §4.1, queue_notify_wants). */
static void runner_record(struct delivery_runner *d, struct batch *b, const struct dsn_original *o,
			  const struct outcome *oc, size_t n, int64_t now)
{
	struct bounce_rcpt *failed = calloc(n, sizeof(*failed));
	struct bounce_rcpt *delayed = calloc(n, sizeof(*delayed));
	struct bounce_rcpt *succeeded = calloc(n, sizeof(*succeeded));
	char (*diag)[DELIVERY_REPLY_TEXT_MAX + 160] = calloc(n, sizeof(*diag));
	char (*mta)[DNS_HOST_SIZE + 8] = calloc(n, sizeof(*mta));
	size_t nf = 0, nd = 0, ns = 0;
	if (failed == NULL || delayed == NULL || succeeded == NULL || diag == NULL || mta == NULL ||
	    !batch_grow((void **)&b->res, &b->cap, b->n + n, sizeof(*b->res)) ||
	    !batch_grow((void **)&b->arrivals, &b->caparr, b->n + n, sizeof(*b->arrivals))) {
		/* not recorded: the recipients are due again */
		for (size_t i = 0; i < n; i++)
			queue_unclaim(d->queue, o->queue_id, oc[i].idx);
		goto out;
	}
	const char *id = batch_str(b, o->queue_id);
	for (size_t i = 0; i < n; i++) {
		const struct outcome *c = &oc[i];
		b->arrivals[b->n] = o->arrival;
		struct queue_rcpt_result *r = &b->res[b->n++];
		*r = (struct queue_rcpt_result){
			.id = id,
			.idx = c->idx,
			.state = QUEUE_RCPT_DELIVERED,
			.first = c->attempts == 0,
			.status = batch_str(b, c->status),
			.reply = batch_str(b, c->text),
			.mx = batch_str(b, c->remote_mta),
		};
		if (c->remote_mta != NULL)
			snprintf(mta[i], sizeof(mta[i]), "dns; %s", c->remote_mta);
		if (c->result == RESULT_OK) {
			/* RFC 3461 §5.2.3: delivered here, "delivered"; §5.2.2: handed to a server that does not
			 * offer DSN, "relayed". To a server that does, NOTIFY went on with the message
			 * (§5.2.1) and reporting is that server's job. */
			if (!queue_notify_wants(c->notify, QUEUE_NOTIFY_SUCCESS) || c->dsn_passed)
				continue;
			if (c->text != NULL && c->text[0] != '\0')
				snprintf(diag[i], sizeof(diag[i]), "smtp; %s", c->text);
			succeeded[ns++] = (struct bounce_rcpt){
				.addr = c->addr,
				.orcpt = c->orcpt,
				.action = c->remote_mta != NULL ? BOUNCE_ACTION_RELAYED : BOUNCE_ACTION_DELIVERED,
				.status = c->status != NULL && c->status[0] == '2' ? c->status : "2.0.0",
				.remote_mta = c->remote_mta != NULL ? mta[i] : NULL,
				.diagnostic = c->remote_mta != NULL && diag[i][0] != '\0' ? diag[i] : NULL,
				.last_attempt = (time_t)now,
			};
			continue;
		}
		r->error = batch_str(b, c->text);
		r->state = c->result == RESULT_PERMFAIL ? QUEUE_RCPT_FAILED : QUEUE_RCPT_DEFERRED;
		/* RFC 5321 §4.5.4.1: give up after the queue lifetime; the report keeps the 4.x.x */
		if (r->state == QUEUE_RCPT_DEFERRED && now - o->arrival >= d->set->max_lifetime)
			r->state = QUEUE_RCPT_FAILED;
		if (r->state == QUEUE_RCPT_DEFERRED)
			r->next_attempt = scheduler_next_attempt(d->set->schedule, d->set->schedule_count, c->attempts + 1, now);
		/* RFC 3464 §2.3.6: an SMTP reply is "smtp"; a reason of ours gets a type of our own */
		snprintf(diag[i], sizeof(diag[i]), "%s; %s", c->remote_mta != NULL ? "smtp" : "X-Mailwerk", c->text);
		struct bounce_rcpt br = {
			.addr = c->addr,
			.orcpt = c->orcpt,
			.status = c->status,
			.remote_mta = c->remote_mta != NULL ? mta[i] : NULL,
			.diagnostic = diag[i],
			.last_attempt = (time_t)now,
		};
		if (r->state == QUEUE_RCPT_FAILED) {
			br.action = BOUNCE_ACTION_FAILED;
			if (queue_notify_wants(c->notify, QUEUE_NOTIFY_FAILURE))
				failed[nf++] = br;
		} else if (d->set->delay_warning > 0 && !c->warned && now - o->arrival >= d->set->delay_warning &&
			   queue_notify_wants(c->notify, QUEUE_NOTIFY_DELAY)) {
			/* once per recipient, after [delivery] delay_warning_time (RFC 3464 §2.3.3 "delayed") */
			br.action = BOUNCE_ACTION_DELAYED;
			br.retry_until = (time_t)(o->arrival + d->set->max_lifetime);
			delayed[nd++] = br;
			r->warned = true;
		}
	}
	struct queue_msg *m[3] = {
		o->no_dsn ? NULL : dsn_message(d->set->hostname, o, BOUNCE_KIND_FAILURE, failed, nf, now),
		o->no_dsn ? NULL : dsn_message(d->set->hostname, o, BOUNCE_KIND_DELAY, delayed, nd, now),
		o->no_dsn ? NULL : dsn_message(d->set->hostname, o, BOUNCE_KIND_SUCCESS, succeeded, ns, now),
	};
	for (size_t i = 0; i < 3; i++) {
		if (m[i] == NULL)
			continue;
		if (batch_grow((void **)&b->add, &b->capadd, b->nadd + 1, sizeof(*b->add)))
			b->add[b->nadd++] = m[i];
		else
			queue_msg_free(m[i]);
	}
out:
	free(failed);
	free(delayed);
	free(succeeded);
	free(diag);
	free(mta);
}

/* ---- local recipients ---- */

/* One pass: everything due now, up to a batch. Returns the number of recipients handled. */
static size_t runner_local_pass(struct delivery_runner *d, struct batch *b)
{
	struct queue_due_msg *msgs;
	size_t count, handled = 0;
	const char *err;
	int64_t now = time(NULL);
	struct delivery_local ctx = {d->data_dir, d->set->hostname, d->set->delims, d->users, d->inbound, d->set->checked};

	if (queue_due(d->queue, QUEUE_ROUTE_LOCAL, now, RUNNER_BATCH, &msgs, &count, &err) != RESULT_OK) {
		log_error("event=delivery_scan_failed error=\"%s\"", err);
		return 0;
	}
	for (size_t i = 0; i < count; i++) {
		const struct queue_due_msg *m = &msgs[i];
		char *data = NULL;
		size_t size = 0;
		if (queue_msg_data(d->queue, m->id, &data, &size, &err) != RESULT_OK)
			continue; /* deleted meanwhile (queue delete), or a read error: the next pass sees */
		struct outcome *oc = calloc(m->rcpt_count, sizeof(*oc));
		char (*errs)[256] = calloc(m->rcpt_count, sizeof(*errs));
		if (oc == NULL || errs == NULL) {
			free(oc);
			free(errs);
			free(data);
			continue;
		}
		for (size_t j = 0; j < m->rcpt_count; j++) {
			const struct queue_due_rcpt *r = &m->rcpts[j];
			oc[j] = (struct outcome){.addr = r->addr, .idx = r->idx, .attempts = r->attempts, .warned = r->warned,
						 .notify = r->dsn_notify, .orcpt = r->dsn_orcpt};
			oc[j].result = delivery_local_one(&ctx, m->id, m->sender, r->addr, m->folder, data, size, errs[j],
							  sizeof(errs[j]), &oc[j].status);
			oc[j].text = errs[j];
			if (oc[j].result != RESULT_OK)
				log_warn("queue_id=%s event=%s rcpt=%s attempts=%u error=\"%s\"", m->id,
					 oc[j].result == RESULT_TEMPFAIL ? "deferred" : "failed", r->addr, r->attempts + 1,
					 errs[j]);
		}
		struct dsn_original o = {m->id, m->sender, m->arrival, data, size, m->no_dsn, m->dsn_envid,
					 m->dsn_ret == QUEUE_DSN_RET_FULL, m->requiretls};
		runner_record(d, b, &o, oc, m->rcpt_count, now);
		handled += m->rcpt_count;
		free(oc);
		free(errs);
		free(data);
	}
	batch_commit(d, b, METRICS_ROUTE_LOCAL);
	queue_due_free(msgs, count);
	return handled;
}

/* ---- remote recipients: domains, throttles, jobs ---- */

static struct runner_domain *runner_domain_get(struct delivery_runner *d, const char *name)
{
	for (size_t i = 0; i < d->domain_count; i++)
		if (strcmp(d->domains[i].name, name) == 0)
			return &d->domains[i];
	struct runner_domain *grown = realloc(d->domains, (d->domain_count + 1) * sizeof(*grown));
	if (grown == NULL)
		return NULL;
	d->domains = grown;
	struct runner_domain *dom = &d->domains[d->domain_count];
	*dom = (struct runner_domain){.name = strdup(name)};
	if (dom->name == NULL)
		return NULL;
	for (size_t i = 0; i < d->set->throttle_count; i++)
		if (strcasecmp(d->set->throttles[i].domain, name) == 0)
			dom->bucket = &d->set->throttles[i].bucket;
	d->domain_count++;
	return dom;
}

static void runner_domain_hold(struct delivery_runner *d, struct runner_domain *dom, bool hold)
{
	const char *err;
	if (dom->held == hold)
		return;
	if (queue_domain_hold(d->queue, dom->name, hold, &err) != RESULT_OK) {
		log_error("event=delivery_hold_failed domain=%s error=\"%s\"", dom->name, err);
		return;
	}
	dom->held = hold;
}

/* Releases domains that may take jobs again, forgets idle ones; returns the earliest time (ms) at
 * which a throttled domain may go on, 0 when none waits. */
static int64_t runner_domains_review(struct delivery_runner *d, int64_t now_ms)
{
	int64_t next = 0;
	for (size_t i = 0; i < d->domain_count;) {
		struct runner_domain *dom = &d->domains[i];
		int64_t ready = dom->bucket != NULL ? throttle_ready_ms(dom->bucket, now_ms) : now_ms;
		if (dom->held && dom->jobs < d->set->domain_window && ready <= now_ms)
			runner_domain_hold(d, dom, false);
		if (dom->held && dom->jobs < d->set->domain_window && (next == 0 || ready < next))
			next = ready;
		if (dom->jobs == 0 && !dom->held) {
			free(dom->name);
			d->domains[i] = d->domains[--d->domain_count];
			continue;
		}
		i++;
	}
	return next;
}

static struct remote_job *runner_job_new(const struct queue_due_msg *m, size_t first, size_t n, const char *data,
					 size_t size)
{
	struct remote_job *j = calloc(1, sizeof(*j));
	if (j == NULL)
		return NULL;
	snprintf(j->id, sizeof(j->id), "%s", m->id);
	j->sender = strdup(m->sender);
	j->domain = strdup(m->rcpts[first].domain);
	j->arrival = m->arrival;
	j->no_dsn = m->no_dsn;
	j->dsn_ret = m->dsn_ret;
	j->requiretls = m->requiretls;
	j->tls_required_no = m->tls_required_no;
	j->dsn_envid = m->dsn_envid != NULL ? strdup(m->dsn_envid) : NULL;
	j->data = malloc(size ? size : 1);
	j->size = size;
	j->rcpts = calloc(n, sizeof(*j->rcpts));
	if (j->sender == NULL || j->domain == NULL || j->data == NULL || j->rcpts == NULL ||
	    (m->dsn_envid != NULL && j->dsn_envid == NULL)) {
		remote_job_free(j);
		return NULL;
	}
	memcpy(j->data, data, size);
	for (size_t k = 0; k < n; k++) {
		const struct queue_due_rcpt *r = &m->rcpts[first + k];
		struct remote_rcpt *rr = &j->rcpts[j->rcpt_count];
		rr->addr = strdup(r->addr);
		if (rr->addr == NULL) {
			remote_job_free(j);
			return NULL;
		}
		rr->idx = r->idx;
		rr->attempts = r->attempts;
		rr->warned = r->warned;
		rr->dsn_notify = r->dsn_notify;
		j->rcpt_count++;
		if (r->dsn_orcpt != NULL && (rr->dsn_orcpt = strdup(r->dsn_orcpt)) == NULL) {
			remote_job_free(j);
			return NULL;
		}
	}
	return j;
}

/* Hands due remote recipients to the pool as jobs, one per (message, domain), within the windows
 * and rates. Returns the number of jobs handed over. */
static size_t runner_remote_dispatch(struct delivery_runner *d)
{
	if (d->pool == NULL || d->jobs >= d->set->job_window)
		return 0;
	struct queue_due_msg *msgs;
	size_t count, posted = 0;
	const char *err;
	int64_t now_ms = date_now_ms();
	size_t room = d->set->job_window - d->jobs;
	if (queue_due(d->queue, QUEUE_ROUTE_REMOTE, now_ms / 1000, room < RUNNER_BATCH ? room : RUNNER_BATCH, &msgs, &count,
		      &err) != RESULT_OK) {
		log_error("event=delivery_scan_failed error=\"%s\"", err);
		return 0;
	}
	for (size_t i = 0; i < count; i++) {
		const struct queue_due_msg *m = &msgs[i];
		char *data = NULL;
		size_t size = 0;
		bool have_data = queue_msg_data(d->queue, m->id, &data, &size, &err) == RESULT_OK;
		for (size_t first = 0, n; first < m->rcpt_count; first += n) {
			for (n = 1; first + n < m->rcpt_count && strcmp(m->rcpts[first + n].domain, m->rcpts[first].domain) == 0; n++)
				;
			struct runner_domain *dom = runner_domain_get(d, m->rcpts[first].domain);
			struct remote_job *j = NULL;
			bool go = have_data && dom != NULL && d->jobs < d->set->job_window && dom->jobs < d->set->domain_window &&
				  (d->jobs == 0 || d->bytes + size <= RUNNER_BYTES_MAX);
			/* a throttled domain spends a token per message; without one it waits, queued */
			if (go && dom->bucket != NULL && !throttle_take(dom->bucket, now_ms))
				go = false;
			if (go)
				j = runner_job_new(m, first, n, data, size);
			if (j == NULL) {
				for (size_t k = 0; k < n; k++)
					queue_unclaim(d->queue, m->id, m->rcpts[first + k].idx);
				if (dom != NULL && have_data)
					runner_domain_hold(d, dom, true);
				continue;
			}
			dom->jobs++;
			d->jobs++;
			d->bytes += size;
			if (dom->jobs >= d->set->domain_window)
				runner_domain_hold(d, dom, true);
			delivery_pool_post(d->pool, j);
			posted++;
		}
		free(data);
	}
	queue_due_free(msgs, count);
	return posted;
}

static void runner_log_remote(const struct remote_job *j, const struct remote_rcpt *r)
{
	char text[600];
	log_safe(text, sizeof(text), r->text, (unsigned)strlen(r->text));
	if (r->result == RESULT_OK)
		log_info("queue_id=%s event=delivered rcpt=%s relay=%s tls=%s%s%s reply=%s", j->id, r->addr, j->relay,
			 j->tls, j->cipher[0] ? " cipher=" : "", j->cipher, text);
	else
		log_warn("queue_id=%s event=%s rcpt=%s relay=%s attempts=%u error=%s", j->id,
			 r->result == RESULT_TEMPFAIL ? "deferred" : "failed", r->addr, j->relay[0] ? j->relay : "none",
			 r->attempts + 1, text);
}

/* Records the jobs the pool finished. Returns how many. */
static size_t runner_remote_results(struct delivery_runner *d, struct batch *b)
{
	pthread_mutex_lock(&d->lock);
	struct remote_job *list = d->done_head;
	d->done_head = d->done_tail = NULL;
	pthread_mutex_unlock(&d->lock);
	size_t n = 0;
	int64_t now = time(NULL);
	for (struct remote_job *j = list; j != NULL; j = j->next, n++) {
		struct outcome *oc = calloc(j->rcpt_count, sizeof(*oc));
		if (oc == NULL) {
			for (size_t k = 0; k < j->rcpt_count; k++)
				queue_unclaim(d->queue, j->id, j->rcpts[k].idx);
			continue;
		}
		for (size_t k = 0; k < j->rcpt_count; k++) {
			const struct remote_rcpt *r = &j->rcpts[k];
			runner_log_remote(j, r);
			oc[k] = (struct outcome){
				.addr = r->addr,
				.idx = r->idx,
				.attempts = r->attempts,
				.warned = r->warned,
				.result = r->result,
				.status = r->status,
				.text = r->text,
				.remote_mta = r->remote && j->mta[0] ? j->mta : NULL,
				.notify = r->dsn_notify,
				.orcpt = r->dsn_orcpt,
				.dsn_passed = r->dsn_passed,
			};
		}
		struct dsn_original o = {j->id, j->sender, j->arrival, j->data, j->size, j->no_dsn, j->dsn_envid,
					 j->dsn_ret == QUEUE_DSN_RET_FULL, j->requiretls};
		/* TLS-RPT: the job's sessions go into the same transaction as its results; out of
		 * memory loses some counts, never results */
		b->tls_period = d->set->tlsrpt_period;
		if (b->tls_period > 0 && !tlsrpt_sessions_merge(&b->tls, &j->tlsrpt))
			log_warn("queue_id=%s event=tlsrpt_record_failed error=\"out of memory\"", j->id);
		runner_record(d, b, &o, oc, j->rcpt_count, now);
		free(oc);
	}
	batch_commit(d, b, METRICS_ROUTE_REMOTE);
	while (list != NULL) {
		struct remote_job *next = list->next;
		struct runner_domain *dom = runner_domain_get(d, list->domain);
		if (dom != NULL && dom->jobs > 0)
			dom->jobs--;
		d->jobs--;
		d->bytes -= list->size;
		remote_job_free(list);
		list = next;
	}
	return n;
}

/* ---- the operator's bounces ---- */

/* Does the bounces asked since the last pass, oldest first, on the runner's own connection: its
 * claims are the attempts in flight, and results recorded just before are no longer claimed.
 * Returns how many were done. */
static size_t runner_bounces(struct delivery_runner *d)
{
	pthread_mutex_lock(&d->lock);
	struct runner_bounce *list = NULL;
	while (d->bounces != NULL) { /* reversed into the order they came in */
		struct runner_bounce *r = d->bounces;
		d->bounces = r->next;
		r->next = list;
		list = r;
	}
	pthread_mutex_unlock(&d->lock);
	size_t n = 0;
	while (list != NULL) {
		struct runner_bounce *r = list;
		list = r->next;
		unsigned count = 0;
		const char *err = NULL;
		enum result rc = delivery_bounce_now(d->queue, d->set->hostname, r->id, &count, &err);
		if (rc == RESULT_TEMPFAIL && err != NULL && strcmp(err, DELIVERY_BOUNCE_IN_FLIGHT) == 0)
			log_info("queue_id=%s event=bounce_refused reason=in_flight", r->id);
		r->done(r->arg, rc, count, rc == RESULT_OK ? NULL : err);
		free(r);
		n++;
	}
	return n;
}

/* Something for the thread to do before it waits again. Under lock. */
static bool runner_woken(const struct delivery_runner *d)
{
	return d->kicked || d->stopping || d->done_head != NULL || d->next_set != NULL || d->bounces != NULL;
}

/* ---- settings ---- */

static void runner_settings_free(struct runner_settings *set)
{
	if (set == NULL)
		return;
	for (size_t i = 0; i < set->throttle_count; i++)
		free(set->throttles[i].domain);
	free(set->throttles);
	free(set->hostname);
	free(set->delims);
	free(set);
}

static struct runner_settings *runner_settings_new(const struct conf *c)
{
	struct runner_settings *set = calloc(1, sizeof(*set));
	if (set == NULL)
		return NULL;
	set->hostname = strdup(c->hostname);
	set->delims = strdup(c->recipient_delimiter);
	set->checked = c->auth_checks;
	memcpy(set->schedule, c->retry_schedule, sizeof(set->schedule));
	set->schedule_count = c->retry_count;
	set->max_lifetime = c->max_queue_lifetime;
	set->delay_warning = c->delay_warning_time;
	set->hold = c->delivery_hold;
	set->tlsrpt_period = c->tlsrpt_reports ? c->tlsrpt_report_interval : 0;
	set->job_window = c->out_max_connections * RUNNER_JOBS_PER_CONNECTION;
	set->domain_window = c->out_max_per_domain * RUNNER_JOBS_PER_CONNECTION;
	set->throttles = calloc(c->throttle_count ? c->throttle_count : 1, sizeof(*set->throttles));
	if (set->hostname == NULL || set->delims == NULL || set->throttles == NULL) {
		runner_settings_free(set);
		return NULL;
	}
	int64_t now_ms = date_now_ms();
	for (size_t i = 0; i < c->throttle_count; i++) {
		struct runner_throttle *t = &set->throttles[set->throttle_count];
		if ((t->domain = strdup(c->throttles[i].domain)) == NULL) {
			runner_settings_free(set);
			return NULL;
		}
		throttle_init(&t->bucket, c->throttles[i].count, c->throttles[i].period, now_ms);
		set->throttle_count++;
	}
	return set;
}

/* Thread: takes new settings from a reload. A domain keeps what its bucket has spent when its rate
 * stays the same, so a reload is no way around a rate. */
static void runner_settings_take(struct delivery_runner *d, struct runner_settings *set)
{
	for (size_t i = 0; i < set->throttle_count; i++)
		for (size_t k = 0; k < d->set->throttle_count; k++)
			if (strcasecmp(set->throttles[i].domain, d->set->throttles[k].domain) == 0 &&
			    set->throttles[i].bucket.capacity == d->set->throttles[k].bucket.capacity &&
			    set->throttles[i].bucket.per_ms == d->set->throttles[k].bucket.per_ms)
				set->throttles[i].bucket = d->set->throttles[k].bucket;
	runner_settings_free(d->set);
	d->set = set;
	for (size_t i = 0; i < d->domain_count; i++) {
		struct runner_domain *dom = &d->domains[i];
		dom->bucket = NULL;
		for (size_t k = 0; k < set->throttle_count; k++)
			if (strcasecmp(set->throttles[k].domain, dom->name) == 0)
				dom->bucket = &set->throttles[k].bucket;
	}
}

/* ---- the thread ---- */

static void *runner_main(void *arg)
{
	struct delivery_runner *d = arg;
	struct batch b = {0};
	pthread_mutex_lock(&d->lock);
	while (!d->stopping) {
		d->kicked = false;
		struct runner_settings *set = d->next_set;
		d->next_set = NULL;
		pthread_mutex_unlock(&d->lock);
		if (set != NULL)
			runner_settings_take(d, set);
		const char *err;
		/* what finished is recorded even on hold; nothing new starts */
		bool hold = d->set->hold;
		size_t progress = runner_remote_results(d, &b);
		/* after the results: an attempt that has just ended is no longer in flight */
		progress += runner_bounces(d);
		size_t local = hold ? 0 : runner_local_pass(d, &b);
		int64_t throttle_next = hold ? 0 : runner_domains_review(d, date_now_ms());
		progress += local + (hold ? 0 : runner_remote_dispatch(d));
		int64_t next_local = 0, next_remote = 0;
		if (!hold && local < RUNNER_BATCH &&
		    queue_next_due(d->queue, QUEUE_ROUTE_LOCAL, &next_local, &err) != RESULT_OK)
			log_error("event=delivery_scan_failed error=\"%s\"", err);
		if (!hold && d->pool != NULL && d->jobs < d->set->job_window &&
		    queue_next_due(d->queue, QUEUE_ROUTE_REMOTE, &next_remote, &err) != RESULT_OK)
			log_error("event=delivery_scan_failed error=\"%s\"", err);
		pthread_mutex_lock(&d->lock);
		if (local == RUNNER_BATCH || runner_woken(d))
			continue; /* more is waiting */
		int64_t now = time(NULL);
		int64_t until_ms = (now + RUNNER_POLL_SECONDS) * 1000;
		int64_t next = next_local == 0 || (next_remote != 0 && next_remote < next_local) ? next_remote : next_local;
		if (next != 0 && next <= now && progress > 0)
			continue;
		if (next != 0 && next * 1000 < until_ms)
			until_ms = next <= now ? (now + 1) * 1000 : next * 1000; /* nothing moved: not a busy loop */
		if (throttle_next != 0 && throttle_next < until_ms)
			until_ms = throttle_next;
		/* wait in slices, looking between them for commits of other processes */
		uint64_t version = queue_data_version(d->queue);
		while (!runner_woken(d)) {
			int64_t slice = date_now_ms() + RUNNER_WATCH_MS;
			if (slice > until_ms)
				slice = until_ms;
			struct timespec ts = {.tv_sec = (time_t)(slice / 1000), .tv_nsec = (long)(slice % 1000) * 1000000};
			int rc = 0;
			while (!runner_woken(d) && (rc = pthread_cond_timedwait(&d->wake, &d->lock, &ts)) != ETIMEDOUT)
				;
			if (rc != ETIMEDOUT || slice >= until_ms)
				break;
			pthread_mutex_unlock(&d->lock);
			bool changed = queue_data_version(d->queue) != version;
			pthread_mutex_lock(&d->lock);
			if (changed)
				break;
		}
	}
	pthread_mutex_unlock(&d->lock);
	runner_remote_results(d, &b); /* what finished before the stop is recorded, not delivered twice */
	runner_bounces(d);            /* and bounces asked meanwhile are answered */
	batch_free(&b);
	return NULL;
}

static void runner_free(struct delivery_runner *d)
{
	if (d->queue != NULL)
		queue_close(d->queue);
	if (d->users != NULL)
		users_close(d->users);
	inbound_store_close(d->inbound);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->wake);
	for (size_t i = 0; i < d->domain_count; i++)
		free(d->domains[i].name);
	free(d->domains);
	while (d->done_head != NULL) {
		struct remote_job *next = d->done_head->next;
		remote_job_free(d->done_head);
		d->done_head = next;
	}
	while (d->bounces != NULL) { /* only when the thread never ran: its last pass answers the rest */
		struct runner_bounce *next = d->bounces->next;
		d->bounces->done(d->bounces->arg, RESULT_TEMPFAIL, 0, "the server is stopping");
		free(d->bounces);
		d->bounces = next;
	}
	runner_settings_free(d->set);
	runner_settings_free(d->next_set);
	free(d->data_dir);
	free(d);
}

struct delivery_runner *delivery_runner_start(const struct conf *c, struct delivery_pool *pool, struct metrics *metrics,
					      char *error_r, size_t error_size)
{
	struct delivery_runner *d = calloc(1, sizeof(*d));
	const char *err;
	if (d == NULL) {
		snprintf(error_r, error_size, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->wake, NULL);
	d->pool = pool;
	d->metrics = metrics;
	d->data_dir = strdup(c->data_dir);
	d->set = runner_settings_new(c);
	if (d->data_dir == NULL || d->set == NULL) {
		snprintf(error_r, error_size, "out of memory");
		runner_free(d);
		return NULL;
	}
	if ((d->queue = queue_open(c->data_dir, &err)) == NULL || (d->users = users_open(c->data_dir, &err)) == NULL) {
		snprintf(error_r, error_size, "delivery: %s", err);
		runner_free(d);
		return NULL;
	}
	char ierr[512];
	if ((d->inbound = inbound_store_open(c->data_dir, ierr, sizeof(ierr))) == NULL) {
		snprintf(error_r, error_size, "delivery: %s", ierr);
		runner_free(d);
		return NULL;
	}
	if (pthread_create(&d->thread, NULL, runner_main, d) != 0) {
		snprintf(error_r, error_size, "cannot start the delivery thread");
		runner_free(d);
		return NULL;
	}
	return d;
}

int delivery_runner_reconfigure(struct delivery_runner *d, const struct conf *c)
{
	struct runner_settings *set = runner_settings_new(c);
	if (set == NULL)
		return -1;
	pthread_mutex_lock(&d->lock);
	runner_settings_free(d->next_set);
	d->next_set = set;
	pthread_cond_signal(&d->wake);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

void delivery_runner_kick(struct delivery_runner *d)
{
	pthread_mutex_lock(&d->lock);
	d->kicked = true;
	pthread_cond_signal(&d->wake);
	pthread_mutex_unlock(&d->lock);
}

void delivery_runner_bounce(struct delivery_runner *d, const char *id, delivery_runner_bounce_fn *done, void *arg)
{
	struct runner_bounce *r = calloc(1, sizeof(*r));
	if (r == NULL) {
		done(arg, RESULT_TEMPFAIL, 0, "out of memory");
		return;
	}
	snprintf(r->id, sizeof(r->id), "%s", id);
	r->done = done;
	r->arg = arg;
	pthread_mutex_lock(&d->lock);
	r->next = d->bounces;
	d->bounces = r;
	pthread_cond_signal(&d->wake);
	pthread_mutex_unlock(&d->lock);
}

void delivery_runner_job_done(struct delivery_runner *d, struct remote_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&d->lock);
	if (d->done_tail != NULL)
		d->done_tail->next = job;
	else
		d->done_head = job;
	d->done_tail = job;
	pthread_cond_signal(&d->wake);
	pthread_mutex_unlock(&d->lock);
}

void delivery_runner_stop(struct delivery_runner *d)
{
	if (d == NULL)
		return;
	pthread_mutex_lock(&d->lock);
	d->stopping = true;
	pthread_cond_signal(&d->wake);
	pthread_mutex_unlock(&d->lock);
	pthread_join(d->thread, NULL);
	runner_free(d);
}
