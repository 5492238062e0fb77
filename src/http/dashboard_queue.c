/* dashboard_queue.c — the queue's list, flush and delete for the dashboard, run on a worker with the
 * API's own connection to queue.db (one worker at a time, as the record readers use it). */
#include "http/dashboard_queue.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/api.h"
#include "http/session.h"
#include "queue/queue.h"
#include "server/server.h"
#include "util/date.h"
#include "util/worker.h"

/* the oldest messages listed; the page says when there are more */
#define DASHBOARD_QUEUE_LIST_MAX 500

enum queue_job_kind { QJ_LIST = 0, QJ_RETRY, QJ_DELETE };

struct queue_job {
	struct server *srv;
	struct http_api *api;
	uint64_t session_id;
	enum queue_job_kind kind;
	char id[QUEUE_ID_LEN + 1];
	const char *extra;
	unsigned status;
	json_t *body;
	size_t total; /* list: messages seen */
};

static json_t *unix_time_json(int64_t s)
{
	if (s <= 0)
		return json_null();
	char t[40];
	date_rfc3339_ms_format(s * 1000, t, sizeof(t));
	return json_string(t);
}

static void list_one(const struct queue_entry *e, void *arg)
{
	struct queue_job *j = arg;
	if (j->total++ >= DASHBOARD_QUEUE_LIST_MAX)
		return;
	json_t *rcpts = json_array();
	for (size_t i = 0; i < e->rcpt_count; i++) {
		const struct queue_rcpt_info *r = &e->rcpts[i];
		json_array_append_new(rcpts, json_pack("{s:s, s:s, s:i, s:o, s:o}", "address", r->addr != NULL ? r->addr : "",
						       "state", queue_rcpt_state_str(r->state), "attempts", (int)r->attempts,
						       "next_attempt", unix_time_json(r->next_attempt), "last_error",
						       r->last_error != NULL ? json_string(r->last_error) : json_null()));
	}
	json_array_append_new(json_object_get(j->body, "data"),
			      json_pack("{s:s, s:s, s:o, s:I, s:o}", "id", e->id, "sender", e->sender != NULL ? e->sender : "",
					"arrival", unix_time_json(e->arrival), "size", (json_int_t)e->size, "recipients",
					rcpts));
}

static void queue_work(void *arg)
{
	struct queue_job *j = arg;
	const char *err = NULL;
	enum result r;
	unsigned n = 0;
	pthread_mutex_lock(&j->api->reader_mu);
	switch (j->kind) {
	case QJ_LIST:
		j->body = json_pack("{s:s, s:[]}", "object", "list", "data");
		r = queue_list(j->api->reader, list_one, j, &err);
		if (r == RESULT_OK && j->body != NULL)
			json_object_set_new(j->body, "has_more", json_boolean(j->total > DASHBOARD_QUEUE_LIST_MAX));
		break;
	case QJ_RETRY:
		r = queue_flush(j->api->reader, &n, &err);
		if (r == RESULT_OK)
			j->body = json_pack("{s:i}", "retried", (int)n);
		break;
	case QJ_DELETE:
		r = queue_delete(j->api->reader, j->id, &err);
		if (r == RESULT_OK)
			j->body = json_pack("{s:s, s:s, s:b}", "object", "queued_message", "id", j->id, "deleted", 1);
		break;
	default:
		r = RESULT_TEMPFAIL;
	}
	pthread_mutex_unlock(&j->api->reader_mu);
	if (r == RESULT_PERMFAIL) {
		json_decref(j->body);
		j->body = http_error_json(404, "not_found", "No such message in the queue.");
		j->status = 404;
	} else if (r != RESULT_OK || j->body == NULL) {
		json_decref(j->body);
		j->body = http_error_json(503, "internal_server_error", "The queue cannot be read or changed just now.");
		j->status = 503;
	} else {
		j->status = 200;
	}
}

static void queue_done(void *arg)
{
	struct queue_job *j = arg;
	struct http_session *s = http_session_find(j->srv, j->session_id);
	if (s != NULL)
		http_respond_json(s, j->status, j->body, j->extra), j->body = NULL;
	json_decref(j->body);
	free(j);
}

void dashboard_queue(struct http_call *c, const char *rest, const char *extra)
{
	struct http_session *s = c->s;
	enum http_method m = s->req.method;
	enum queue_job_kind kind;
	const char *id = rest[0] == '/' ? rest + 1 : "";
	if (rest[0] == '\0' && m == HTTP_METHOD_GET) {
		kind = QJ_LIST;
	} else if (strcmp(rest, "/retry") == 0 && m == HTTP_METHOD_POST) {
		kind = QJ_RETRY;
	} else if (rest[0] == '/' && m == HTTP_METHOD_DELETE && queue_id_valid(id)) {
		kind = QJ_DELETE;
	} else if (rest[0] == '/' && m == HTTP_METHOD_DELETE) {
		http_respond_json(s, 404, http_error_json(404, "not_found", "No such message in the queue."), extra);
		return;
	} else {
		http_respond_json(s, 405, http_error_json(405, "method_not_allowed", "Method is not allowed for this path."),
				  extra);
		return;
	}
	struct queue_job *j = calloc(1, sizeof(*j));
	if (j == NULL) {
		http_respond_json(s, 500, http_error_json(500, "internal_server_error", "Out of memory."), extra);
		return;
	}
	*j = (struct queue_job){.srv = s->srv, .api = c->api, .session_id = s->conn.id, .kind = kind, .extra = extra};
	if (kind == QJ_DELETE)
		snprintf(j->id, sizeof(j->id), "%s", id);
	worker_pool_submit(s->srv->workers, queue_work, queue_done, j);
}
