/* webhooks_events.c — GET /webhooks/{id}/events, GET /webhooks/{id}/events/{event_id}, GET
 * /webhooks/{id}/events/{event_id}/attempts and POST /webhooks/{id}/events/{event_id}/replay, in
 * the shapes of the SDK's webhooks.events.* (ListWebhookEventsResponseSuccess,
 * GetWebhookEventResponseSuccess, ListWebhookEventAttemptsResponseSuccess,
 * ReplayWebhookEventResponseSuccess). The store's work runs on a worker (events/webhook_events.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events/webhook_events.h"
#include "events/webhook_sender.h"
#include "http/api.h"
#include "http/json.h"
#include "http/job_answer.h"
#include "http/session.h"
#include "server/server.h"
#include "util/date.h"
#include "util/worker.h"

enum whe_kind {
	WHE_LIST = 0,
	WHE_GET,
	WHE_ATTEMPTS,
	WHE_REPLAY,
};

struct whe_job {
	struct server *srv;
	struct webhooks_store *store;
	uint64_t session_id;
	enum whe_kind kind;
	char webhook[WEBHOOK_ID_LEN + 1];
	char event[WEBHOOK_MSG_ID_LEN + 1];
	unsigned limit;
	char after[64];
	struct http_job_answer ans;
};

/* Resend's WebhookEventLog; GetWebhookEventResponseSuccess adds object, next_attempt_at, payload. */
static json_t *event_json(const struct webhook_event_entry *e, bool full)
{
	json_t *o = json_pack("{s:s, s:s, s:o, s:s}", "id", e->id, "type", e->type, "created_at", http_json_time(e->created_at),
			      "status", e->status);
	if (full) {
		json_object_set_new(o, "object", json_string("webhook_event"));
		json_object_set_new(o, "next_attempt_at", e->next_attempt > 0 ? http_json_time(e->next_attempt) : json_null());
		json_t *payload = e->payload != NULL ? json_loads(e->payload, 0, NULL) : NULL;
		json_object_set_new(o, "payload", payload != NULL ? payload : json_null());
	}
	return o;
}

static void whe_work(void *arg)
{
	struct whe_job *j = arg;
	char err[256];
	int r = -1;
	bool more = false;
	const char *missing = j->kind == WHE_LIST ? "Webhook not found." : "Webhook event not found.";
	switch (j->kind) {
	case WHE_LIST: {
		struct webhook_event_entry *e;
		size_t n;
		r = webhook_events_list(j->store, j->webhook, j->limit, j->after[0] ? j->after : NULL, &e, &n, &more, err,
					sizeof(err));
		if (r == 1) {
			json_t *data = json_array();
			for (size_t i = 0; i < n; i++)
				json_array_append_new(data, event_json(&e[i], false));
			webhook_event_entries_free(e, n);
			j->ans.body = json_pack("{s:s, s:b, s:o}", "object", "list", "has_more", more, "data", data);
		}
		break;
	}
	case WHE_GET: {
		struct webhook_event_entry e;
		r = webhook_events_get(j->store, j->webhook, j->event, &e, err, sizeof(err));
		if (r == 1) {
			j->ans.body = event_json(&e, true);
			free(e.payload);
		}
		break;
	}
	case WHE_ATTEMPTS: {
		struct webhook_attempt_entry *a;
		size_t n;
		r = webhook_events_attempts(j->store, j->webhook, j->event, j->limit, j->after[0] ? j->after : NULL, &a, &n,
					    &more, err, sizeof(err));
		if (r == 1) {
			json_t *data = json_array();
			for (size_t i = 0; i < n; i++) {
				char id[24];
				snprintf(id, sizeof(id), "%lld", (long long)a[i].id);
				json_array_append_new(data, json_pack("{s:s, s:i, s:s, s:o}", "id", id, "http_status_code",
								      a[i].status, "response", a[i].response, "sent_at",
								      http_json_time(a[i].at)));
			}
			webhook_attempt_entries_free(a, n);
			j->ans.body = json_pack("{s:s, s:b, s:o}", "object", "list", "has_more", more, "data", data);
		}
		break;
	}
	case WHE_REPLAY: {
		char id[WEBHOOK_MSG_ID_LEN + 1];
		r = webhook_events_replay(j->store, j->webhook, j->event, date_now_ms(), id, err, sizeof(err));
		if (r == 1)
			j->ans.body = json_pack("{s:s, s:s}", "object", "webhook_event", "id", id);
		break;
	}
	}
	if (r == 0)
		http_job_fail(&j->ans, 404, "not_found", "%s", missing);
	else if (r == 2)
		http_job_fail(&j->ans, 422, "validation_error", "The `after` cursor names nothing here.");
	else if (r < 0)
		http_job_fail(&j->ans, 503, "internal_server_error", "The webhook's events cannot be read or changed now.");
}

static void whe_done(void *arg)
{
	struct whe_job *j = arg;
	/* a replay is due now: no need to wait for the sender's tick */
	if (j->kind == WHE_REPLAY && j->ans.status == 0 && j->srv->http_api != NULL)
		webhook_sender_kick(j->srv->http_api->webhooks);
	http_job_send(j->srv, j->session_id, &j->ans, 200);
	free(j);
}

static void whe_start(struct http_call *c, enum whe_kind kind)
{
	struct whe_job *j = calloc(1, sizeof(*j));
	if (j == NULL) {
		http_respond_error(c->s, 500, "internal_server_error", "Out of memory.");
		return;
	}
	j->srv = c->s->srv;
	j->store = webhook_sender_store(c->api->webhooks);
	j->session_id = c->s->conn.id;
	j->kind = kind;
	/* longer ids than ours name nothing: cut, they still find nothing */
	snprintf(j->webhook, sizeof(j->webhook), "%.*s", WEBHOOK_ID_LEN, c->param);
	snprintf(j->event, sizeof(j->event), "%.*s", WEBHOOK_MSG_ID_LEN, c->param2);
	if (strlen(c->param) > WEBHOOK_ID_LEN || strlen(c->param2) > WEBHOOK_MSG_ID_LEN) {
		free(j);
		http_respond_error(c->s, 404, "not_found", "Webhook event not found.");
		return;
	}
	if (kind == WHE_LIST || kind == WHE_ATTEMPTS) {
		char before[8];
		if (!http_page_parse(c, &j->limit, j->after, sizeof(j->after), before, sizeof(before))) {
			free(j);
			return;
		}
		if (before[0] != '\0') {
			free(j);
			http_respond_error(c->s, 422, "validation_error", "These lists page with `after` only.");
			return;
		}
	}
	worker_pool_submit(c->s->srv->workers, whe_work, whe_done, j);
}

void http_webhooks_events_list(struct http_call *c)
{
	whe_start(c, WHE_LIST);
}

void http_webhooks_events_get(struct http_call *c)
{
	whe_start(c, WHE_GET);
}

void http_webhooks_events_attempts(struct http_call *c)
{
	whe_start(c, WHE_ATTEMPTS);
}

void http_webhooks_events_replay(struct http_call *c)
{
	whe_start(c, WHE_REPLAY);
}
