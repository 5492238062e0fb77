/* webhooks.c — POST /webhooks, GET /webhooks[/{id}], PATCH and DELETE /webhooks/{id}, POST
 * /webhooks/{id}/signing-secret/rotate, in the shapes of Resend's SDK (CreateWebhookResponseSuccess,
 * ListWebhooksResponseSuccess, GetWebhookResponseSuccess, ...). Requests are checked here on the
 * loop; the store's work (fsync on writes) runs on a worker through the webhook sender's store
 * (events/webhooks_store.h), and the done callback finds the session by id. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "events/webhook_payload.h"
#include "events/webhook_sender.h"
#include "events/webhooks_store.h"
#include "http/api.h"
#include "http/json.h"
#include "http/job_answer.h"
#include "http/session.h"
#include "net/http_url.h"
#include "server/server.h"
#include "util/worker.h"


enum wh_kind {
	WH_CREATE = 0,
	WH_LIST,
	WH_GET,
	WH_UPDATE,
	WH_DELETE,
	WH_ROTATE,
};

struct wh_job {
	struct server *srv;
	struct webhooks_store *store;
	uint64_t session_id;
	enum wh_kind kind;
	char id[WEBHOOK_ID_LEN + 1];
	char *endpoint, *events_json; /* create, update (NULL: unchanged) */
	int enabled;                  /* update: -1 unchanged */
	unsigned limit;               /* list */
	char after[WEBHOOK_ID_LEN + 1], before[WEBHOOK_ID_LEN + 1];
	struct http_job_answer ans;
};

static json_t *events_of(const char *events_json)
{
	json_t *v = events_json != NULL ? json_loads(events_json, 0, NULL) : NULL;
	return json_is_array(v) ? v : (json_decref(v), json_null());
}

/* Resend's Webhook (the list's items); GetWebhookResponseSuccess adds object and signing_secret. */
static json_t *webhook_json(const struct webhook *w, bool full)
{
	json_t *o = json_object();
	if (full)
		json_object_set_new(o, "object", json_string("webhook"));
	json_object_set_new(o, "id", json_string(w->id));
	json_object_set_new(o, "created_at", http_json_time(w->created_at));
	json_object_set_new(o, "status", json_string(w->enabled ? "enabled" : "disabled"));
	json_object_set_new(o, "endpoint", json_string(w->endpoint != NULL ? w->endpoint : ""));
	json_object_set_new(o, "events", events_of(w->events_json));
	if (full)
		json_object_set_new(o, "signing_secret", json_string(w->secret));
	return o;
}

static void wh_not_found(struct wh_job *j)
{
	http_job_fail(&j->ans, 404, "not_found", "Webhook not found.");
}

static void wh_work(void *arg)
{
	struct wh_job *j = arg;
	char err[256];
	struct webhook w;
	char secret[WEBHOOK_SECRET_LEN + 1];
	int r;
	switch (j->kind) {
	case WH_CREATE:
		if (webhooks_store_create(j->store, j->endpoint, j->events_json, &w, err, sizeof(err)) != 0) {
			http_job_fail(&j->ans, 503, "internal_server_error", "%s",
				"The webhook could not be stored; try again later.");
			break;
		}
		j->ans.body = json_pack("{s:s, s:s, s:s}", "object", "webhook", "id", w.id, "signing_secret",
				    w.secret);
		webhook_clear(&w);
		break;
	case WH_GET:
		r = webhooks_store_get(j->store, j->id, &w, err, sizeof(err));
		if (r == 1)
			j->ans.body = webhook_json(&w, true), webhook_clear(&w);
		else if (r == 0)
			wh_not_found(j);
		else
			http_job_fail(&j->ans, 503, "internal_server_error", "The webhook cannot be read.");
		break;
	case WH_LIST: {
		struct webhook *list;
		size_t n;
		bool more;
		r = webhooks_store_list(j->store, j->limit, j->after[0] ? j->after : NULL,
					j->before[0] ? j->before : NULL, &list, &n, &more, err, sizeof(err));
		if (r == 1) {
			json_t *data = json_array();
			for (size_t i = 0; i < n; i++)
				json_array_append_new(data, webhook_json(&list[i], false));
			webhooks_free(list, n);
			j->ans.body = json_pack("{s:s, s:b, s:o}", "object", "list", "has_more", more, "data",
					    data);
		} else if (r == 0) {
			http_job_fail(&j->ans, 422, "validation_error", "The cursor is not the id of a webhook.");
		} else {
			http_job_fail(&j->ans, 503, "internal_server_error", "The webhooks cannot be read.");
		}
		break;
	}
	case WH_UPDATE:
	case WH_DELETE:
		r = j->kind == WH_UPDATE ? webhooks_store_update(j->store, j->id, j->endpoint, j->events_json,
								 j->enabled, err, sizeof(err))
					 : webhooks_store_delete(j->store, j->id, err, sizeof(err));
		if (r == 1 && j->kind == WH_UPDATE)
			j->ans.body = json_pack("{s:s, s:s}", "object", "webhook", "id", j->id);
		else if (r == 1)
			j->ans.body =
				json_pack("{s:s, s:s, s:b}", "object", "webhook", "id", j->id, "deleted", 1);
		else if (r == 0)
			wh_not_found(j);
		else
			http_job_fail(&j->ans, 503, "internal_server_error", "%s",
				"The change could not be stored; try again later.");
		break;
	case WH_ROTATE:
		r = webhooks_store_rotate(j->store, j->id, secret, err, sizeof(err));
		if (r == 1)
			j->ans.body = json_pack("{s:s, s:s, s:s}", "object", "webhook", "id", j->id,
					    "signing_secret", secret);
		else if (r == 0)
			wh_not_found(j);
		else
			http_job_fail(&j->ans, 503, "internal_server_error", "%s",
				"The new secret could not be stored; try again later.");
		break;
	}
}

static void wh_done(void *arg)
{
	struct wh_job *j = arg;
	http_job_send(j->srv, j->session_id, &j->ans, j->kind == WH_CREATE ? 201 : 200);
	free(j->endpoint);
	free(j->events_json);
	free(j);
}

/* A job for the call; NULL (answered) when there is no memory or {id} cannot be a webhook's. */
static struct wh_job *wh_job_new(struct http_call *c, enum wh_kind kind)
{
	bool with_id = kind != WH_CREATE && kind != WH_LIST;
	if (with_id && strlen(c->param) != WEBHOOK_ID_LEN) {
		http_respond_error(c->s, 404, "not_found", "Webhook not found.");
		return NULL;
	}
	struct wh_job *j = calloc(1, sizeof(*j));
	if (j == NULL) {
		http_respond_error(c->s, 500, "internal_server_error", "Out of memory.");
		return NULL;
	}
	j->srv = c->s->srv;
	j->store = webhook_sender_store(c->api->webhooks);
	j->session_id = c->s->conn.id;
	j->kind = kind;
	j->enabled = -1;
	if (with_id)
		memcpy(j->id, c->param, WEBHOOK_ID_LEN + 1); /* its length checked above */
	return j;
}

static void wh_submit(struct http_call *c, struct wh_job *j)
{
	worker_pool_submit(c->s->srv->workers, wh_work, wh_done, j);
}

/* ---- checking requests ---- */

/* NULL when endpoint is an acceptable URL, else the sentence for the 422. */
static const char *endpoint_problem(const struct conf *conf, const json_t *v, char *buf, size_t size)
{
	if (!json_is_string(v))
		return "The `endpoint` field must be a string.";
	struct http_url u;
	const char *why;
	if (http_url_parse(json_string_value(v), json_string_length(v), &u, &why) != HTTP_URL_OK) {
		snprintf(buf, size, "The `endpoint` field must be an http or https URL: %s.", why);
		return buf;
	}
	/* an address written in the URL is judged now; a name when it is connected to (http_client.h) */
	if (!conf->webhook_allow_private && u.host_kind != HTTP_URL_HOST_NAME) {
		enum http_url_addr_class cls = http_url_addr_classify((const struct sockaddr *)&u.addr);
		if (cls != HTTP_URL_ADDR_PUBLIC) {
			snprintf(buf, size,
				 "The `endpoint` field names a %s address (%s); webhooks only go to public "
				 "addresses unless [webhooks] allow_private is on.",
				 http_url_addr_class_str(cls), u.host);
			return buf;
		}
	}
	return NULL;
}

/* The events as stored (a JSON array of distinct known names), or NULL with the sentence. */
static char *events_check(const json_t *v, const char **problem_r, char *buf, size_t size)
{
	*problem_r = NULL;
	if (!json_is_array(v) || json_array_size(v) == 0) {
		*problem_r = "The `events` field must be a non-empty array of event types.";
		return NULL;
	}
	json_t *out = json_array();
	size_t i;
	json_t *e;
	json_array_foreach(v, i, e) {
		if (!json_is_string(e) || !webhook_event_known(json_string_value(e))) {
			snprintf(buf, size,
				 "The `events` field holds %s%.60s%s, which is not an event type "
				 "(such as email.delivered).",
				 json_is_string(e) ? "\"" : "",
				 json_is_string(e) ? json_string_value(e) : "a value that is not a string",
				 json_is_string(e) ? "\"" : "");
			*problem_r = buf;
			json_decref(out);
			return NULL;
		}
		bool seen = false;
		size_t k;
		json_t *x;
		json_array_foreach(out, k, x)
			seen = seen || strcmp(json_string_value(x), json_string_value(e)) == 0;
		if (!seen)
			json_array_append(out, e);
	}
	char *text = json_dumps(out, JSON_COMPACT);
	json_decref(out);
	if (text == NULL)
		*problem_r = "Out of memory.";
	return text;
}

/* ---- the handlers ---- */

void http_webhooks_create(struct http_call *c)
{
	json_t *doc = http_body_object(c, true);
	if (doc == NULL)
		return;
	const json_t *endpoint = json_object_get(doc, "endpoint"), *events = json_object_get(doc, "events");
	char buf[512];
	const char *problem = NULL, *name = "validation_error";
	char *events_json = NULL;
	if (endpoint == NULL)
		problem = "Missing `endpoint` field.", name = "missing_required_field";
	else if (events == NULL)
		problem = "Missing `events` field.", name = "missing_required_field";
	else if ((problem = endpoint_problem(c->s->conf, endpoint, buf, sizeof(buf))) == NULL)
		events_json = events_check(events, &problem, buf, sizeof(buf));
	struct wh_job *j = problem == NULL ? wh_job_new(c, WH_CREATE) : NULL;
	if (j != NULL) {
		j->endpoint = strdup(json_string_value(endpoint));
		j->events_json = events_json, events_json = NULL;
		if (j->endpoint == NULL)
			problem = "Out of memory.";
	}
	json_decref(doc);
	free(events_json);
	if (problem != NULL) {
		if (j != NULL)
			free(j->events_json), free(j);
		http_respond_error(c->s, 422, name, "%s", problem);
		return;
	}
	if (j != NULL)
		wh_submit(c, j);
}

void http_webhooks_list(struct http_call *c)
{
	unsigned n;
	char after[WEBHOOK_ID_LEN + 1], before[WEBHOOK_ID_LEN + 1];
	if (!http_page_parse(c, &n, after, sizeof(after), before, sizeof(before)))
		return;
	struct wh_job *j = wh_job_new(c, WH_LIST);
	if (j == NULL)
		return;
	j->limit = n;
	memcpy(j->after, after, sizeof(after));
	memcpy(j->before, before, sizeof(before));
	wh_submit(c, j);
}

void http_webhooks_get(struct http_call *c)
{
	struct wh_job *j = wh_job_new(c, WH_GET);
	if (j != NULL)
		wh_submit(c, j);
}

void http_webhooks_update(struct http_call *c)
{
	json_t *doc = http_body_object(c, true);
	if (doc == NULL)
		return;
	const json_t *endpoint = json_object_get(doc, "endpoint"), *events = json_object_get(doc, "events"),
		     *status = json_object_get(doc, "status");
	char buf[512];
	const char *problem = NULL;
	char *events_json = NULL;
	int enabled = -1;
	if (endpoint != NULL && !json_is_null(endpoint))
		problem = endpoint_problem(c->s->conf, endpoint, buf, sizeof(buf));
	if (problem == NULL && events != NULL && !json_is_null(events))
		events_json = events_check(events, &problem, buf, sizeof(buf));
	if (problem == NULL && status != NULL && !json_is_null(status)) {
		const char *st = json_string_value(status);
		if (st != NULL && strcmp(st, "enabled") == 0)
			enabled = 1;
		else if (st != NULL && strcmp(st, "disabled") == 0)
			enabled = 0;
		else
			problem = "The `status` field must be `enabled` or `disabled`.";
	}
	struct wh_job *j = problem == NULL ? wh_job_new(c, WH_UPDATE) : NULL;
	if (j != NULL) {
		j->enabled = enabled;
		j->events_json = events_json, events_json = NULL;
		if (endpoint != NULL && json_is_string(endpoint) &&
		    (j->endpoint = strdup(json_string_value(endpoint))) == NULL)
			problem = "Out of memory.";
	}
	json_decref(doc);
	free(events_json);
	if (problem != NULL) {
		if (j != NULL)
			free(j->events_json), free(j);
		http_respond_error(c->s, 422, "validation_error", "%s", problem);
		return;
	}
	if (j != NULL)
		wh_submit(c, j);
}

void http_webhooks_delete(struct http_call *c)
{
	struct wh_job *j = wh_job_new(c, WH_DELETE);
	if (j != NULL)
		wh_submit(c, j);
}

void http_webhooks_rotate(struct http_call *c)
{
	struct wh_job *j = wh_job_new(c, WH_ROTATE);
	if (j != NULL)
		wh_submit(c, j);
}
