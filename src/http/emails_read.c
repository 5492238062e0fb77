/* emails_read.c — GET /emails/{id}, GET /emails (newest first, Resend's cursors), PATCH
 * /emails/{id} (reschedule) and POST /emails/{id}/cancel. The records are read (and the two
 * changes written) on a worker thread through the API's own queue.db connection; the answers are
 * Resend's shapes plus mailwerk's "recipients", the history of each recipient. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "events/events.h"
#include "http/api.h"
#include "http/email_req.h"
#include "http/json.h"
#include "http/job_answer.h"
#include "http/parse.h"
#include "http/session.h"
#include "queue/queue.h"
#include "server/server.h"
#include "util/date.h"
#include "util/header.h"
#include "util/utf8.h"
#include "util/worker.h"

enum read_kind {
	READ_GET = 0,
	READ_LIST,
	READ_UPDATE,
	READ_CANCEL,
};

struct read_job {
	struct server *srv;
	struct http_api *api;
	uint64_t session_id;
	enum read_kind kind;
	char id[API_KEY_ID_LEN * 2 + 1];
	unsigned limit;
	char after[EMAIL_ID_LEN * 2 + 1], before[EMAIL_ID_LEN * 2 + 1];
	int64_t at;
	/* the list's filter, pointing into the buffers below */
	struct email_filter filter;
	char domain[256], recipient[320], tag[520], search[256];
	/* the answer */
	struct http_job_answer ans;
};

static json_t *json_of_text(const char *text)
{
	if (text == NULL)
		return json_null();
	json_t *v = json_loads(text, 0, NULL);
	return v != NULL ? v : json_null();
}

static json_t *tags_of(const struct email_record *r)
{
	json_t *tags = json_of_text(r->tags_json);
	if (json_is_array(tags))
		return tags;
	json_decref(tags);
	return json_array();
}

/* Resend's ListEmail fields (GetEmailResponseSuccess without html, text, tags, object), and the
 * tags (mailwerk's addition: the list can be told apart by them, and filtered). */
static json_t *email_summary(const struct email_view *v)
{
	const struct email_record *r = &v->rec;
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(r->id));
	json_object_set_new(o, "to", json_of_text(r->to_json));
	json_object_set_new(o, "from", json_string(r->from != NULL ? r->from : ""));
	json_object_set_new(o, "created_at", http_json_time(r->created_at));
	json_object_set_new(o, "subject", json_string(r->subject != NULL ? r->subject : ""));
	json_object_set_new(o, "bcc", json_of_text(r->bcc_json));
	json_object_set_new(o, "cc", json_of_text(r->cc_json));
	json_object_set_new(o, "reply_to", json_of_text(r->reply_to_json));
	json_object_set_new(o, "last_event", json_string(email_event_type_str(v->last_event)));
	json_object_set_new(o, "scheduled_at", r->scheduled_at > 0 ? http_json_time(r->scheduled_at * 1000) : json_null());
	json_object_set_new(o, "message_id", r->message_id != NULL ? json_string(r->message_id) : json_null());
	json_object_set_new(o, "tags", tags_of(r));
	return o;
}

/* mailwerk's addition: each recipient, its state and its events with the receivers' replies. */
static json_t *recipients_json(const struct email_view *v)
{
	json_t *a = json_array();
	for (size_t i = 0; i < v->rcpt_count; i++) {
		const struct email_rcpt_view *rv = &v->rcpts[i];
		json_t *events = json_array();
		for (size_t k = 0; k < rv->event_count; k++) {
			const struct email_event *e = &rv->events[k];
			json_t *ev = json_pack("{s:s, s:o}", "type", email_event_type_str(e->type), "created_at",
					       http_json_time(e->at_ms));
			json_t *detail = e->detail_json != NULL ? json_loads(e->detail_json, 0, NULL) : NULL;
			if (json_is_object(detail))
				json_object_update(ev, detail);
			json_decref(detail);
			json_array_append_new(events, ev);
		}
		json_array_append_new(a, json_pack("{s:s, s:s, s:o}", "email", rv->addr != NULL ? rv->addr : "", "state",
						   email_event_type_str(rv->state), "events", events));
	}
	return a;
}

/* One field's value unfolded (RFC 5322 §2.2.3), as a JSON string: an octet that is not part of
 * well-formed UTF-8 (8-bit text of a submitted message) shows as U+FFFD rather than spoil the JSON. */
static json_t *field_value_json(const char *value, size_t len)
{
	char *out = malloc(len * 3 + 1);
	if (out == NULL)
		return NULL;
	size_t o = 0, i = 0;
	while (i < len && (value[i] == ' ' || value[i] == '\t'))
		i++;
	while (i < len) {
		unsigned char ch = (unsigned char)value[i];
		if (ch == '\r' || ch == '\n') {
			i++;
			continue;
		}
		size_t n = utf8_len((const unsigned char *)value + i, len - i);
		if (n == 0) {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3, i++;
			continue;
		}
		memcpy(out + o, value + i, n);
		o += n, i += n;
	}
	json_t *j = json_stringn(out, o);
	free(out);
	return j;
}

/* mailwerk's addition: the header section as queued, field by field in order (repeated names,
 * such as Received, each kept), or null when none was kept. */
static json_t *headers_json(const char *h)
{
	if (h == NULL)
		return json_null();
	json_t *a = json_array();
	size_t pos = 0, len = strlen(h);
	struct header_field f;
	while (header_next(h, len, &pos, &f)) {
		json_t *value = field_value_json(f.value, f.value_len);
		json_t *name = json_stringn(f.name, f.name_len);
		if (value == NULL || name == NULL || f.name_len == 0) {
			json_decref(value);
			json_decref(name);
			continue;
		}
		json_array_append_new(a, json_pack("{s:o, s:o}", "name", name, "value", value));
	}
	return a;
}

static json_t *email_full(const struct email_view *v)
{
	const struct email_record *r = &v->rec;
	json_t *o = email_summary(v);
	json_object_set_new(o, "object", json_string("email"));
	json_object_set_new(o, "html", r->html != NULL ? json_string(r->html) : json_null());
	json_object_set_new(o, "text", r->text != NULL ? json_string(r->text) : json_null());
	json_object_set_new(o, "headers", headers_json(r->headers));
	json_object_set_new(o, "recipients", recipients_json(v));
	return o;
}

static void read_work(void *arg)
{
	struct read_job *j = arg;
	struct queue *q = j->api->reader;
	pthread_mutex_lock(&j->api->reader_mu);
	struct db *db = queue_db(q);
	switch (j->kind) {
	case READ_GET: {
		struct email_view v;
		int r = events_email_get(db, j->id, true, &v);
		if (r == 1) {
			j->ans.body = email_full(&v);
			email_view_free(&v);
		} else if (r == 0) {
			http_job_fail(&j->ans, 404, "not_found", "Email not found.");
		} else {
			http_job_fail(&j->ans, 500, "internal_server_error", "The email cannot be read.");
		}
		break;
	}
	case READ_LIST: {
		struct email_view *v;
		size_t n;
		bool more;
		int r = events_email_list(db, j->limit, j->after[0] ? j->after : NULL, j->before[0] ? j->before : NULL,
					  &j->filter, &v, &n, &more);
		if (r == 1) {
			json_t *data = json_array();
			for (size_t i = 0; i < n; i++)
				json_array_append_new(data, email_summary(&v[i]));
			j->ans.body = json_pack("{s:s, s:b, s:o}", "object", "list", "has_more", more, "data", data);
			email_views_free(v, n);
		} else if (r == 0) {
			http_job_fail(&j->ans, 422, "validation_error", "The cursor is not the id of an email.");
		} else {
			http_job_fail(&j->ans, 500, "internal_server_error", "The emails cannot be read.");
		}
		break;
	}
	case READ_UPDATE:
	case READ_CANCEL: {
		bool found;
		const char *err;
		enum result r = j->kind == READ_CANCEL ? queue_email_cancel(q, j->id, &found, &err)
						       : queue_email_reschedule(q, j->id, j->at, &found, &err);
		if (r == RESULT_OK)
			j->ans.body = json_pack("{s:s, s:s}", "object", "email", "id", j->id);
		else if (!found)
			http_job_fail(&j->ans, 404, "not_found", "Email not found.");
		else if (r == RESULT_PERMFAIL)
			http_job_fail(&j->ans, 422, "validation_error", "%s", err);
		else
			http_job_fail(&j->ans, 503, "internal_server_error", "The change could not be stored; try again later.");
		break;
	}
	}
	pthread_mutex_unlock(&j->api->reader_mu);
}

static void read_done(void *arg)
{
	struct read_job *j = arg;
	http_job_send(j->srv, j->session_id, &j->ans, 200);
	free(j);
}

static struct read_job *read_job_new(struct http_call *c, enum read_kind kind)
{
	struct read_job *j = calloc(1, sizeof(*j));
	if (j == NULL) {
		http_respond_error(c->s, 500, "internal_server_error", "Out of memory.");
		return NULL;
	}
	j->srv = c->s->srv;
	j->api = c->api;
	j->session_id = c->s->conn.id;
	j->kind = kind;
	snprintf(j->id, sizeof(j->id), "%.*s", (int)sizeof(j->id) - 1, c->param); /* longer is no id of ours */
	return j;
}

static void read_submit(struct http_call *c, struct read_job *j)
{
	worker_pool_submit(c->s->srv->workers, read_work, read_done, j);
}

void http_emails_get(struct http_call *c)
{
	struct read_job *j = read_job_new(c, READ_GET);
	if (j != NULL)
		read_submit(c, j);
}

/* GET /emails's filters (mailwerk's: Resend's list has none): status (the last event), domain
 * (the From domain), recipient, tag (NAME or NAME:VALUE; Resend's tag names and values hold no
 * colon), q (text in the id, From, Subject or recipients), since and until (ISO 8601). false when
 * one is malformed (answered). */
static bool filter_parse(struct http_call *c, struct read_job *j)
{
	const char *q = c->s->req.query;
	char status[32] = "", since[64] = "", until[64] = "";
	struct email_filter *f = &j->filter;
	*f = (struct email_filter){.status = -1};
	if (http_query_get(q, "status", status, sizeof(status)) < 0 ||
	    http_query_get(q, "domain", j->domain, sizeof(j->domain)) < 0 ||
	    http_query_get(q, "recipient", j->recipient, sizeof(j->recipient)) < 0 ||
	    http_query_get(q, "tag", j->tag, sizeof(j->tag)) < 0 || http_query_get(q, "q", j->search, sizeof(j->search)) < 0 ||
	    http_query_get(q, "since", since, sizeof(since)) < 0 || http_query_get(q, "until", until, sizeof(until)) < 0) {
		http_respond_error(c->s, 422, "validation_error", "The query string is malformed (or a value is too long).");
		return false;
	}
	if (status[0] != '\0' && (f->status = email_event_type_parse(status)) < 0) {
		http_respond_error(c->s, 422, "validation_error",
				   "The `status` parameter must be an event type: queued, scheduled, sent, delivered, "
				   "delivery_delayed, bounced, failed, canceled, suppressed or complained.");
		return false;
	}
	for (char *p = j->domain; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	f->domain = j->domain[0] != '\0' ? j->domain : NULL;
	f->recipient = j->recipient[0] != '\0' ? j->recipient : NULL;
	f->search = j->search[0] != '\0' ? j->search : NULL;
	if (j->tag[0] != '\0') {
		char *colon = strchr(j->tag, ':');
		if (colon != NULL)
			*colon = '\0';
		f->tag_name = j->tag;
		f->tag_value = colon != NULL ? colon + 1 : NULL;
	}
	const char *names[] = {"since", "until"};
	const char *texts[] = {since, until};
	int64_t *out[] = {&f->since_ms, &f->until_ms};
	for (int i = 0; i < 2; i++) {
		int64_t t;
		if (texts[i][0] == '\0')
			continue;
		if (!email_req_parse_time_ms(texts[i], &t)) {
			http_respond_error(c->s, 422, "validation_error",
					   "The `%s` parameter must be a date-time in ISO 8601 format.", names[i]);
			return false;
		}
		*out[i] = t;
	}
	return true;
}

void http_emails_list(struct http_call *c)
{
	unsigned n;
	char after[EMAIL_ID_LEN * 2 + 1], before[EMAIL_ID_LEN * 2 + 1];
	if (!http_page_parse(c, &n, after, sizeof(after), before, sizeof(before)))
		return;
	struct read_job *j = read_job_new(c, READ_LIST);
	if (j == NULL)
		return;
	if (!filter_parse(c, j)) {
		free(j);
		return;
	}
	j->limit = n;
	snprintf(j->after, sizeof(j->after), "%s", after);
	snprintf(j->before, sizeof(j->before), "%s", before);
	read_submit(c, j);
}

void http_emails_update(struct http_call *c)
{
	char err[256];
	json_t *doc = http_json_load(c->s->body != NULL ? c->s->body : "", c->s->body_len, HTTP_JSON_MAX_DEPTH, err,
				     sizeof(err));
	if (doc == NULL) {
		http_respond_error(c->s, 400, "validation_error", "%s", err);
		return;
	}
	const json_t *at = json_object_get(doc, "scheduled_at");
	int64_t t;
	if (!json_is_string(at)) {
		json_decref(doc);
		http_respond_error(c->s, 422, "missing_required_field", "Missing `scheduled_at` field.");
		return;
	}
	bool ok = email_req_parse_time(json_string_value(at), &t);
	json_decref(doc);
	if (!ok || t < date_now_ms() / 1000) {
		http_respond_error(c->s, 422, "validation_error",
				   "The `scheduled_at` field must be a date-time in ISO 8601 format, in the future.");
		return;
	}
	struct read_job *j = read_job_new(c, READ_UPDATE);
	if (j == NULL)
		return;
	j->at = t;
	read_submit(c, j);
}

void http_emails_cancel(struct http_call *c)
{
	struct read_job *j = read_job_new(c, READ_CANCEL);
	if (j != NULL)
		read_submit(c, j);
}
