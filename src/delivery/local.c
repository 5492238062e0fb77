/* local.c — local delivery: Return-Path and Delivered-To (RFC 5321 §4.4) in front of the stored
 * message, into the user's Maildir; a failure is deferred on the retry schedule, never dropped. */
#include "delivery/local.h"

#include <errno.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf/conf.h"
#include "mailbox/maildir.h"
#include "mailbox/users.h"
#include "queue/bounce.h"
#include "queue/queue.h"
#include "queue/scheduler.h"
#include "util/log.h"

/* Recipients per pass: one results transaction each. */
#define DELIVERY_BATCH 256
/* Even with nothing due, look again this often: `mailwerk queue flush` from another process and
 * new local domains are noticed within this time. */
#define DELIVERY_POLL_SECONDS 2

struct delivery_local {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool kicked;
	bool stopping;
	/* copies of what the thread needs from the configuration it started with */
	char *data_dir;
	char *hostname;
	char *delims;
	unsigned schedule[CONF_RETRY_MAX];
	size_t schedule_count;
	unsigned max_lifetime;
	struct queue *queue;
	struct users *users;
};

/* Delivers one recipient of a message; fills *res (error strings static or from users/maildir) and,
 * when the recipient is now failed for good, its DSN status in status_r. */
static void delivery_one(struct delivery_local *d, const struct queue_due_msg *m, const struct queue_due_rcpt *r,
			 const char *data, size_t size, int64_t now, struct queue_rcpt_result *res, char *errbuf,
			 size_t errsize, const char **status_r)
{
	struct users_rcpt who;
	const char *err = NULL;
	char path[4096], name[MAILDIR_NAME_MAX + 1];
	enum result rr = users_rcpt_resolve(d->users, r->addr, d->delims, &who, &err);

	res->id = m->id;
	res->idx = r->idx;
	res->error = NULL;
	if (rr == RESULT_OK && who.kind != USERS_RCPT_USER) {
		/* aliases were expanded when the message was queued; this one appeared since */
		rr = RESULT_PERMFAIL;
		err = "the address became an alias after the message was queued";
	}
	uint64_t quota = 0;
	if (rr == RESULT_OK)
		rr = users_user_quota(d->users, who.address, &quota, &err);
	if (rr == RESULT_OK && maildir_path(d->data_dir, who.address, path, sizeof(path)) != 0) {
		rr = RESULT_PERMFAIL;
		err = "the mailbox path is too long";
	}
	if (rr == RESULT_OK) {
		/* RFC 5321 §4.4: the final delivery adds Return-Path; Delivered-To marks this hop, as
		 * qmail and Postfix do, so a forwarding loop can be seen */
		char head[2 * ADDR_TEXT_MAX + 64];
		int n = snprintf(head, sizeof(head), "Return-Path: <%s>\r\nDelivered-To: %s\r\n", m->sender, r->addr);
		struct iovec parts[2] = {{head, (size_t)n}, {(void *)data, size}};
		rr = maildir_deliver(path, d->hostname, parts, 2, quota, name, &err);
	}
	switch (rr) {
	case RESULT_OK:
		res->state = QUEUE_RCPT_DELIVERED;
		res->next_attempt = 0;
		log_info("queue_id=%s event=delivered rcpt=%s mailbox=%s file=%s", m->id, r->addr, who.address, name);
		return;
	case RESULT_TEMPFAIL:
		res->state = QUEUE_RCPT_DEFERRED;
		res->next_attempt = scheduler_next_attempt(d->schedule, d->schedule_count, r->attempts + 1, now);
		/* RFC 3463: X.2.2 mailbox full; X.3.0 other mail system problem */
		*status_r = err != NULL && strstr(err, "quota") != NULL ? "4.2.2" : "4.3.0";
		if (now - m->arrival >= d->max_lifetime) {
			/* RFC 5321 §4.5.4.1: given up after the queue lifetime; the DSN keeps the 4.x.x */
			res->state = QUEUE_RCPT_FAILED;
			res->next_attempt = 0;
		}
		break;
	case RESULT_PERMFAIL:
		res->state = QUEUE_RCPT_FAILED;
		res->next_attempt = 0;
		*status_r = "5.1.1"; /* RFC 3463: bad destination mailbox address */
		break;
	}
	snprintf(errbuf, errsize, "%s", err != NULL ? err : "unknown error");
	res->error = errbuf;
	log_warn("queue_id=%s event=%s rcpt=%s attempts=%u error=\"%s\"", m->id,
		 res->state == QUEUE_RCPT_DEFERRED ? "deferred" : "failed", r->addr, r->attempts + 1, errbuf);
}

/* The DSN for the recipients of m that failed for good in this pass (RFC 3464), as a message to
 * queue from <> to the original sender; NULL when none is due (null sender) or out of memory. */
static struct queue_msg *delivery_bounce(struct delivery_local *d, const struct queue_due_msg *m,
					 const struct queue_rcpt_result *res, const char *const *status, size_t n,
					 const char *data, size_t size, int64_t now)
{
	if (!bounce_wanted(m->sender))
		return NULL;
	struct bounce_rcpt *failed = calloc(n ? n : 1, sizeof(*failed));
	char (*diag)[160] = calloc(n ? n : 1, sizeof(*diag));
	size_t nf = 0;
	for (size_t i = 0; failed != NULL && diag != NULL && i < n; i++) {
		if (res[i].state != QUEUE_RCPT_FAILED)
			continue;
		/* RFC 3464 §2.3.6: a diagnostic type of our own, as the error is not an SMTP reply */
		snprintf(diag[nf], sizeof(diag[nf]), "X-Mailwerk; %s", res[i].error != NULL ? res[i].error : "failed");
		failed[nf] = (struct bounce_rcpt){
			.addr = m->rcpts[i].addr,
			.action = BOUNCE_ACTION_FAILED,
			.status = status[i],
			.diagnostic = diag[nf],
			.last_attempt = (time_t)now,
		};
		nf++;
	}
	struct queue_msg *b = NULL;
	if (nf == 0)
		goto out;
	struct bounce_report rep = {
		.hostname = d->hostname,
		.queue_id = m->id,
		.sender = m->sender,
		.arrival = (time_t)m->arrival,
		.now = (time_t)now,
		.kind = BOUNCE_KIND_FAILURE,
		.rcpts = failed,
		.rcpt_count = nf,
		.original = data,
		.original_len = size,
	};
	if (RAND_bytes(rep.random, sizeof(rep.random)) != 1 || (b = calloc(1, sizeof(*b))) == NULL)
		goto out;
	queue_id_new(b->id);
	b->data = bounce_compose(&rep, &b->size);
	b->sender = strdup(""); /* RFC 5321 §4.5.5: notifications go out with the null reverse-path */
	b->client_ip = strdup("");
	b->rcpts = calloc(1, sizeof(char *));
	if (b->rcpts != NULL)
		b->rcpts[0] = strdup(m->sender);
	b->rcpt_count = 1;
	b->arrival = now;
	if (b->data == NULL || b->sender == NULL || b->client_ip == NULL || b->rcpts == NULL || b->rcpts[0] == NULL) {
		queue_msg_free(b);
		b = NULL;
		goto out;
	}
	log_info("queue_id=%s event=bounce dsn_id=%s to=%s failed=%zu", m->id, b->id, m->sender, nf);
out:
	free(failed);
	free(diag);
	return b;
}

/* One pass: everything due now, up to a batch. Returns the number of recipients handled. */
static size_t delivery_pass(struct delivery_local *d)
{
	struct queue_due_msg *msgs;
	size_t count, handled = 0;
	const char *err;
	int64_t now = time(NULL);

	if (queue_local_due(d->queue, now, DELIVERY_BATCH, &msgs, &count, &err) != RESULT_OK) {
		log_error("event=delivery_scan_failed error=\"%s\"", err);
		return 0;
	}
	size_t total = 0;
	for (size_t i = 0; i < count; i++)
		total += msgs[i].rcpt_count;
	struct queue_rcpt_result *res = calloc(total ? total : 1, sizeof(*res));
	char (*errs)[128] = calloc(total ? total : 1, sizeof(*errs));
	const char **status = calloc(total ? total : 1, sizeof(*status));
	struct queue_msg **bounces = calloc(count ? count : 1, sizeof(*bounces));
	size_t nbounces = 0;
	if (res == NULL || errs == NULL || status == NULL || bounces == NULL) {
		free(res);
		free(errs);
		free(status);
		free(bounces);
		queue_due_free(msgs, count);
		return 0;
	}
	for (size_t i = 0; i < count; i++) {
		char *data = NULL;
		size_t size = 0;
		enum result r = queue_msg_data(d->queue, msgs[i].id, &data, &size, &err);
		if (r != RESULT_OK)
			continue; /* deleted meanwhile (queue delete), or a read error: the next pass sees */
		size_t first = handled;
		for (size_t j = 0; j < msgs[i].rcpt_count; j++, handled++)
			delivery_one(d, &msgs[i], &msgs[i].rcpts[j], data, size, now, &res[handled], errs[handled],
				     sizeof(errs[handled]), &status[handled]);
		struct queue_msg *b = delivery_bounce(d, &msgs[i], res + first, status + first, handled - first, data,
						      size, now);
		if (b != NULL)
			bounces[nbounces++] = b;
		free(data);
	}
	if (handled > 0 && queue_rcpt_results(d->queue, res, handled, bounces, nbounces, &err) != RESULT_OK)
		/* the mail is in the mailboxes but not marked: it will be delivered again (at-least-once) */
		log_error("event=delivery_record_failed error=\"%s\"", err);
	for (size_t i = 0; i < nbounces; i++)
		queue_msg_free(bounces[i]);
	free(bounces);
	free(status);
	free(res);
	free(errs);
	queue_due_free(msgs, count);
	return handled;
}

static void *delivery_main(void *arg)
{
	struct delivery_local *d = arg;
	pthread_mutex_lock(&d->lock);
	while (!d->stopping) {
		d->kicked = false;
		pthread_mutex_unlock(&d->lock);
		size_t handled = delivery_pass(d);
		int64_t next = 0;
		const char *err;
		if (handled < DELIVERY_BATCH && queue_local_next(d->queue, &next, &err) != RESULT_OK)
			log_error("event=delivery_scan_failed error=\"%s\"", err);
		pthread_mutex_lock(&d->lock);
		if (handled == DELIVERY_BATCH || d->kicked)
			continue; /* more is waiting */
		int64_t now = time(NULL);
		int64_t until = now + DELIVERY_POLL_SECONDS;
		if (next != 0 && next <= now)
			continue;
		if (next != 0 && next < until)
			until = next;
		struct timespec ts = {.tv_sec = (time_t)until};
		while (!d->kicked && !d->stopping && pthread_cond_timedwait(&d->wake, &d->lock, &ts) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

static void delivery_free(struct delivery_local *d)
{
	if (d->queue != NULL)
		queue_close(d->queue);
	if (d->users != NULL)
		users_close(d->users);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->wake);
	free(d->data_dir);
	free(d->hostname);
	free(d->delims);
	free(d);
}

struct delivery_local *delivery_local_start(const struct conf *c, char *error_r, size_t error_size)
{
	struct delivery_local *d = calloc(1, sizeof(*d));
	const char *err;
	if (d == NULL) {
		snprintf(error_r, error_size, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->wake, NULL);
	d->data_dir = strdup(c->data_dir);
	d->hostname = strdup(c->hostname);
	d->delims = strdup(c->recipient_delimiter);
	memcpy(d->schedule, c->retry_schedule, sizeof(d->schedule));
	d->schedule_count = c->retry_count;
	d->max_lifetime = c->max_queue_lifetime;
	if (d->data_dir == NULL || d->hostname == NULL || d->delims == NULL) {
		snprintf(error_r, error_size, "out of memory");
		delivery_free(d);
		return NULL;
	}
	if ((d->queue = queue_open(c->data_dir, &err)) == NULL || (d->users = users_open(c->data_dir, &err)) == NULL) {
		snprintf(error_r, error_size, "local delivery: %s", err);
		delivery_free(d);
		return NULL;
	}
	if (pthread_create(&d->thread, NULL, delivery_main, d) != 0) {
		snprintf(error_r, error_size, "cannot start the local delivery thread");
		delivery_free(d);
		return NULL;
	}
	return d;
}

void delivery_local_kick(struct delivery_local *d)
{
	pthread_mutex_lock(&d->lock);
	d->kicked = true;
	pthread_cond_signal(&d->wake);
	pthread_mutex_unlock(&d->lock);
}

void delivery_local_stop(struct delivery_local *d)
{
	if (d == NULL)
		return;
	pthread_mutex_lock(&d->lock);
	d->stopping = true;
	pthread_cond_signal(&d->wake);
	pthread_mutex_unlock(&d->lock);
	pthread_join(d->thread, NULL);
	delivery_free(d);
}
