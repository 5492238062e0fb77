/* control_cmd.c — what the control socket's requests do (control_msg.h): the status of the worker
 * (read on the loop thread, the queue's numbers on a worker thread), holding and releasing queued
 * messages on the commands' own queue connection, and bouncing them through the delivery runner,
 * which knows the attempts in flight. */
#include "server/control_int.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "acme/acme.h"
#include "delivery/operator.h"
#include "delivery/pool.h"
#include "delivery/runner.h"
#include "queue/queue.h"
#include "server/server.h"
#include "util/loopq.h"

json_t *control_json_time(int64_t t)
{
	char buf[32];
	time_t tt = (time_t)t;
	struct tm tm;
	if (t == 0 || gmtime_r(&tt, &tm) == NULL || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return json_null();
	return json_string(buf);
}

/* Open sessions by the role of the listener they came in on; closing ones no longer count. */
static json_t *control_sessions_json(const struct server *srv, json_int_t *total_r)
{
	json_int_t counts[CONF_LISTEN_COUNT] = {0};
	*total_r = 0;
	for (size_t i = 0; i < SERVER_SESSION_BUCKETS; i++)
		for (const struct server_conn *c = srv->sessions[i]; c != NULL; c = c->hnext)
			if (!c->closing && c->role < CONF_LISTEN_COUNT) {
				counts[c->role]++;
				(*total_r)++;
			}
	json_t *o = json_object();
	for (int role = 0; role < CONF_LISTEN_COUNT; role++)
		json_object_set_new(o, conf_listener_str(role), json_integer(counts[role]));
	return o;
}

/* In the order of the roles (the list holds the newest first). */
static json_t *control_listeners_json(const struct server *srv)
{
	json_t *a = json_array();
	for (int role = 0; role < CONF_LISTEN_COUNT; role++)
		for (const struct server_listener *l = srv->listeners; l != NULL; l = l->next)
			if (l->role == (enum conf_listener)role)
				json_array_append_new(a, json_pack("{s:s, s:s}", "role", conf_listener_str(l->role),
								   "address", l->addr.text));
	return a;
}

/* How the last upgrade the parent told of ended: null when none. */
static json_t *control_upgrade_json(const struct control *ctl)
{
	const struct parent_upgrade_outcome *o = &ctl->upgrade;
	if (o->seq == 0)
		return json_null();
	json_t *u = json_pack("{s:I, s:s, s:o}", "seq", (json_int_t)o->seq, "result", o->done ? "done" : "failed", "at",
			      control_json_time(ctl->upgrade_at));
	if (u != NULL && !o->done)
		json_object_set_new(u, "reason", json_string(o->reason));
	return u;
}

/* Everything status shows but the queue: loop thread, where the sessions and listeners live. */
static json_t *control_status_loop(const struct control *ctl)
{
	const struct server *srv = ctl->srv;
	int64_t now = (int64_t)time(NULL);
	json_int_t total;
	json_t *sessions = control_sessions_json(srv, &total);
	json_t *st = json_pack("{s:s, s:I, s:I, s:o, s:I, s:o, s:I, s:{s:I, s:I}, s:b, s:o, s:o}",
			 "version", MAILWERK_VERSION, "pid", (json_int_t)getpid(), "parent_pid", (json_int_t)srv->parent,
			 "started", control_json_time(ctl->started), "uptime_seconds", (json_int_t)(now - ctl->started),
			 "sessions", sessions, "sessions_total", total, "delivery", "connections",
			 (json_int_t)(srv->remote != NULL ? delivery_pool_conns(srv->remote) : 0), "max_connections",
			 (json_int_t)srv->conf->out_max_connections, "sandbox", ctl->sandbox, "listeners",
			 control_listeners_json(srv), "last_reload", control_json_time(ctl->last_reload));
	if (st != NULL)
		json_object_set_new(st, "upgrade", control_upgrade_json(ctl));
	return st;
}

struct control_job *control_job_new(struct control *ctl, uint64_t conn_id, const struct control_request *req)
{
	struct control_job *j = calloc(1, sizeof(*j));
	if (j == NULL)
		return NULL;
	j->ctl = ctl;
	j->conn_id = conn_id;
	j->req = *req;
	j->loopq = ctl->srv->loopq;
	if (req->type == CONTROL_REQ_STATUS &&
	    ((j->status = control_status_loop(ctl)) == NULL || control_status_loop_add(j) != 0)) {
		control_job_free(j);
		return NULL;
	}
	return j;
}

void control_job_free(struct control_job *j)
{
	if (j == NULL)
		return;
	json_decref(j->status);
	conf_free(j->conf);
	free(j->body);
	free(j);
}

static void control_job_fail(struct control_job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void control_job_fail(struct control_job *j, const char *fmt, ...)
{
	char buf[CONTROL_ERROR_MAX + 1];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* one printable sentence, whatever a database error said (control_reply_parse) */
	for (char *p = buf; *p != '\0'; p++)
		if ((unsigned char)*p < ' ' || (unsigned char)*p > '~')
			*p = '?';
	free(j->body);
	j->reply = CONTROL_REPLY_ERROR;
	j->body = strdup(buf[0] != '\0' ? buf : "failed");
}

/* The answer is obj (taken). */
static void control_job_ok(struct control_job *j, json_t *obj)
{
	j->body = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;
	json_decref(obj);
	j->reply = CONTROL_REPLY_OK;
	if (j->body == NULL)
		control_job_fail(j, "out of memory");
}

static void control_status_work(struct control_job *j)
{
	struct queue_counts c;
	const char *err;
	int64_t now = (int64_t)time(NULL);
	if (queue_counts_read(j->ctl->queue, now, &c, &err) != RESULT_OK) {
		control_job_fail(j, "cannot read the queue: %s", err);
		return;
	}
	json_t *q = json_pack("{s:I, s:I, s:I, s:I, s:o}", "messages", (json_int_t)c.messages, "held", (json_int_t)c.held,
			      "recipients_due", (json_int_t)c.rcpts_due, "recipients_deferred", (json_int_t)c.rcpts_deferred,
			      "oldest_age_seconds",
			      c.messages > 0 ? json_integer((json_int_t)(now - c.oldest_arrival)) : json_null());
	if (q == NULL || json_object_set_new(j->status, "queue", q) != 0 || control_status_work_add(j) != 0) {
		control_job_fail(j, "out of memory");
		return;
	}
	control_job_ok(j, json_incref(j->status));
}

static void control_hold_work(struct control_job *j, bool hold)
{
	unsigned n;
	const char *err;
	enum result r = queue_hold(j->ctl->queue, j->req.all ? NULL : j->req.queue_id, hold, &n, &err);
	if (r == RESULT_PERMFAIL)
		control_job_fail(j, "no message %s in the queue", j->req.queue_id);
	else if (r != RESULT_OK)
		control_job_fail(j, "%s", err);
	else
		control_job_ok(j, json_pack("{s:s, s:I}", hold ? "held" : "released", j->req.all ? "*" : j->req.queue_id,
					    "messages", (json_int_t)n));
	j->changed = r == RESULT_OK && n > 0;
}

/* The runner's thread: the bounce is done (or refused); the answer goes back to the loop. */
static void control_bounce_answer(void *arg, enum result r, unsigned n, const char *err)
{
	struct control_job *j = arg;
	const char *id = j->req.queue_id;
	if (r == RESULT_OK)
		control_job_ok(j, json_pack("{s:s, s:I}", "bounced", id, "recipients", (json_int_t)n));
	else if (r == RESULT_PERMFAIL && strcmp(err, "no such message in the queue") == 0)
		control_job_fail(j, "no message %s in the queue", id);
	else if (r == RESULT_TEMPFAIL && strcmp(err, DELIVERY_BOUNCE_IN_FLIGHT) == 0)
		control_job_fail(j,
				 "message %s is being delivered now: not bounced, as the attempt under way may still "
				 "deliver it; try again once the attempt has ended (queue hold %s first keeps a new "
				 "one from starting)",
				 id, id);
	else
		control_job_fail(j, "%s", err);
	j->changed = r == RESULT_OK;
	loopq_post(j->loopq, control_job_done, j);
}

void control_job_bounce_start(struct control_job *j)
{
	struct server *srv = j->ctl->srv;
	if (srv->delivery == NULL) {
		/* a standby has no runner yet: delivery stays the old worker's until that one is gone */
		control_job_fail(j, "%s",
				 srv->standby ? "delivery moves to this worker once the one before it has drained; try again then"
					      : "the server is stopping");
		loopq_post(j->loopq, control_job_done, j);
		return;
	}
	delivery_runner_bounce(srv->delivery, j->req.queue_id, control_bounce_answer, j);
}

void control_job_acme(struct control_job *j)
{
	char err[300];
	bool revoke = j->req.type == CONTROL_REQ_ACME_REVOKE;
	if (acme_renew_now(j->ctl->srv->acme, revoke, err, sizeof(err)) != 0)
		control_job_fail(j, "%s", err);
	else
		control_job_ok(j, json_pack("{s:s}", "started", revoke ? "revoke" : "renew"));
	loopq_post(j->loopq, control_job_done, j);
}

void control_job_work(void *arg)
{
	struct control_job *j = arg;
	pthread_mutex_lock(&j->ctl->queue_mu);
	switch (j->req.type) {
	case CONTROL_REQ_STATUS:
		control_status_work(j);
		break;
	case CONTROL_REQ_HOLD:
	case CONTROL_REQ_RELEASE:
		control_hold_work(j, j->req.type == CONTROL_REQ_HOLD);
		break;
	default:
		control_job_fail(j, "unknown request type");
		break;
	}
	pthread_mutex_unlock(&j->ctl->queue_mu);
}
