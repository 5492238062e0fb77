/* suppressions.c — /suppressions in Resend's shapes: add (one, or a batch), list with cursors and
 * an origin filter, get and remove by id or address. mailwerk's additions: an optional "domain"
 * on add (an entry for one sending domain; without it, every domain, as Resend's per-account
 * list), "domain" in the entries, and the origin "unsubscribe". The store work runs on a worker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "events/suppressions.h"
#include "http/api.h"
#include "http/json.h"
#include "http/job_answer.h"
#include "http/session.h"
#include "queue/queue.h"
#include "server/server.h"
#include "util/addr.h"
#include "util/worker.h"
#include "util/date.h"

#define SUPPRESSION_BATCH_MAX 1000

enum supp_kind {
	SUPP_ADD = 0,
	SUPP_LIST,
	SUPP_GET,
	SUPP_REMOVE,
	SUPP_BATCH_ADD,
	SUPP_BATCH_REMOVE,
};

struct supp_job {
	struct server *srv;
	struct http_api *api;
	uint64_t session_id;
	enum supp_kind kind;
	char param[512];
	char domain[256];
	char **items; /* addresses (or ids, for a batch remove by ids) */
	size_t n;
	unsigned limit;
	char after[64], before[64];
	int origin;
	struct http_job_answer ans;
};

static json_t *entry_json(const struct suppression *s, bool object)
{
	char t[40];
	date_rfc3339_ms_format(s->created_at, t, sizeof(t));
	json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:s, s:o}", "id", s->id, "email", s->email, "origin",
			      suppression_origin_str(s->origin), "source_id",
			      s->source_id[0] ? json_string(s->source_id) : json_null(), "created_at", t, "domain",
			      s->domain[0] ? json_string(s->domain) : json_null());
	if (object)
		json_object_set_new(o, "object", json_string("suppression"));
	return o;
}

static void supp_work(void *arg)
{
	struct supp_job *j = arg;
	pthread_mutex_lock(&j->api->reader_mu);
	struct db *db = queue_db(j->api->reader);
	int64_t now = date_now_ms();
	struct suppression s;
	bool existed;
	switch (j->kind) {
	case SUPP_ADD:
		if (suppression_add(db, j->domain, j->items[0], SUPPRESSION_MANUAL, NULL, now, &s, &existed) != SQLITE_OK)
			http_job_fail(&j->ans, 503, "internal_server_error", "The suppression could not be stored.");
		else
			j->ans.body = json_pack("{s:s, s:s}", "object", "suppression", "id", s.id);
		break;
	case SUPP_BATCH_ADD: {
		json_t *data = json_array();
		sqlite3_exec(db_sqlite(db), "BEGIN IMMEDIATE", NULL, NULL, NULL);
		bool ok = true;
		for (size_t i = 0; ok && i < j->n; i++) {
			ok = suppression_add(db, j->domain, j->items[i], SUPPRESSION_MANUAL, NULL, now, &s, &existed) ==
			     SQLITE_OK;
			if (ok)
				json_array_append_new(data, json_pack("{s:s, s:s}", "object", "suppression", "id", s.id));
		}
		if (ok && sqlite3_exec(db_sqlite(db), "COMMIT", NULL, NULL, NULL) == SQLITE_OK) {
			j->ans.body = json_pack("{s:o}", "data", data);
		} else {
			sqlite3_exec(db_sqlite(db), "ROLLBACK", NULL, NULL, NULL);
			json_decref(data);
			http_job_fail(&j->ans, 503, "internal_server_error", "The suppressions could not be stored.");
		}
		break;
	}
	case SUPP_GET: {
		int r = suppression_get(db, j->param, &s);
		if (r == 1)
			j->ans.body = entry_json(&s, true);
		else
			http_job_fail(&j->ans, r == 0 ? 404 : 500, r == 0 ? "not_found" : "internal_server_error", "%s",
				  r == 0 ? "Suppression not found." : "The suppression list cannot be read.");
		break;
	}
	case SUPP_REMOVE:
	case SUPP_BATCH_REMOVE: {
		json_t *data = json_array();
		size_t n = j->kind == SUPP_REMOVE ? 1 : j->n;
		int removed = 0;
		for (size_t i = 0; i < n; i++) {
			const char *key = j->kind == SUPP_REMOVE ? j->param : j->items[i];
			int got = suppression_get(db, key, &s);
			int r = got == 1 ? suppression_remove(db, key) : got;
			if (r < 0) {
				removed = -1;
				break;
			}
			removed += r;
			json_array_append_new(data, json_pack("{s:s, s:s, s:b}", "object", "suppression", "id",
							      got == 1 ? s.id : key, "deleted", r > 0));
		}
		if (removed < 0) {
			json_decref(data);
			http_job_fail(&j->ans, 503, "internal_server_error", "The suppression list could not be changed.");
		} else if (j->kind == SUPP_REMOVE) {
			if (removed == 0)
				http_job_fail(&j->ans, 404, "not_found", "Suppression not found.");
			else
				j->ans.body = json_incref(json_array_get(data, 0));
			json_decref(data);
		} else {
			j->ans.body = json_pack("{s:o}", "data", data);
		}
		break;
	}
	case SUPP_LIST: {
		struct suppression *v;
		size_t n;
		bool more;
		int r = suppression_list(db, j->limit, j->after[0] ? j->after : NULL, j->before[0] ? j->before : NULL,
					 j->origin, &v, &n, &more);
		if (r == 1) {
			json_t *data = json_array();
			for (size_t i = 0; i < n; i++)
				json_array_append_new(data, entry_json(&v[i], false));
			free(v);
			j->ans.body = json_pack("{s:s, s:b, s:o}", "object", "list", "has_more", more, "data", data);
		} else {
			http_job_fail(&j->ans, r == 0 ? 422 : 500, r == 0 ? "validation_error" : "internal_server_error", "%s",
				  r == 0 ? "The cursor is not the id of a suppression." : "The suppression list cannot be read.");
		}
		break;
	}
	}
	pthread_mutex_unlock(&j->api->reader_mu);
}

static void supp_done(void *arg)
{
	struct supp_job *j = arg;
	http_job_send(j->srv, j->session_id, &j->ans, j->kind == SUPP_ADD ? 201 : 200);
	for (size_t i = 0; i < j->n; i++)
		free(j->items[i]);
	free(j->items);
	free(j);
}

static struct supp_job *supp_job_new(struct http_call *c, enum supp_kind kind)
{
	struct supp_job *j = calloc(1, sizeof(*j));
	if (j == NULL) {
		http_respond_error(c->s, 500, "internal_server_error", "Out of memory.");
		return NULL;
	}
	j->srv = c->s->srv;
	j->api = c->api;
	j->session_id = c->s->conn.id;
	j->kind = kind;
	j->origin = -1;
	snprintf(j->param, sizeof(j->param), "%.*s", (int)sizeof(j->param) - 1, c->param);
	return j;
}

/* An address a suppression is made for: a mailbox, lower-cased by the store. */
static bool address_ok(const char *s)
{
	struct addr a;
	const char *err;
	return addr_parse_mailbox(s, strlen(s), ADDR_ALLOW_UTF8, &a, &err) == ADDR_OK;
}

/* The body of an add ({email, domain?}) or a batch ({emails: [...], domain?} / {ids: [...]}). */
static bool body_read(struct http_call *c, struct supp_job *j, bool batch)
{
	char err[256];
	json_t *doc = http_json_load(c->s->body != NULL ? c->s->body : "", c->s->body_len, HTTP_JSON_MAX_DEPTH, err,
				     sizeof(err));
	if (doc == NULL) {
		http_respond_error(c->s, 400, "validation_error", "%s", err);
		return false;
	}
	const char *problem = NULL, *name = "validation_error";
	const json_t *domain = json_object_get(doc, "domain");
	const json_t *list = batch ? json_object_get(doc, "emails") : NULL;
	bool ids = false;
	if (batch && list == NULL && j->kind == SUPP_BATCH_REMOVE && (list = json_object_get(doc, "ids")) != NULL)
		ids = true;
	if (!json_is_object(doc)) {
		problem = "The request body must be a JSON object.";
	} else if (domain != NULL && !json_is_null(domain) &&
		   (!json_is_string(domain) ||
		    addr_parse_domain(json_string_value(domain), json_string_length(domain), ADDR_ALLOW_UTF8, &(const char *){0}) !=
			    ADDR_OK)) {
		problem = "The `domain` field must be a domain name.";
	} else if (!batch) {
		const json_t *e = json_object_get(doc, "email");
		if (e == NULL)
			problem = "Missing `email` field.", name = "missing_required_field";
		else if (!json_is_string(e) || !address_ok(json_string_value(e)))
			problem = "The `email` field must be an email address.";
		else if ((j->items = calloc(1, sizeof(char *))) != NULL && (j->items[0] = strdup(json_string_value(e))) != NULL)
			j->n = 1;
	} else if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > SUPPRESSION_BATCH_MAX) {
		problem = "The `emails` field must be an array of 1 to 1000 addresses.";
	} else if ((j->items = calloc(json_array_size(list), sizeof(char *))) != NULL) {
		for (size_t i = 0; i < json_array_size(list) && problem == NULL; i++) {
			const json_t *e = json_array_get(list, i);
			if (!json_is_string(e) || (!ids && !address_ok(json_string_value(e))))
				problem = ids ? "The `ids` field must hold strings." : "The `emails` field must hold email addresses.";
			else if ((j->items[j->n] = strdup(json_string_value(e))) != NULL)
				j->n++;
		}
	}
	if (problem == NULL && json_is_string(domain))
		snprintf(j->domain, sizeof(j->domain), "%s", json_string_value(domain));
	json_decref(doc);
	if (problem != NULL) {
		http_respond_error(c->s, 422, name, "%s", problem);
		return false;
	}
	if (j->n == 0 || j->items == NULL) {
		http_respond_error(c->s, 500, "internal_server_error", "Out of memory.");
		return false;
	}
	return true;
}

static void supp_submit(struct http_call *c, struct supp_job *j)
{
	worker_pool_submit(c->s->srv->workers, supp_work, supp_done, j);
}

static void supp_with_body(struct http_call *c, enum supp_kind kind, bool batch)
{
	struct supp_job *j = supp_job_new(c, kind);
	if (j == NULL)
		return;
	if (!body_read(c, j, batch)) {
		for (size_t i = 0; i < j->n; i++)
			free(j->items[i]);
		free(j->items);
		free(j);
		return;
	}
	supp_submit(c, j);
}

void http_suppressions_add(struct http_call *c)
{
	supp_with_body(c, SUPP_ADD, false);
}

void http_suppressions_batch_add(struct http_call *c)
{
	supp_with_body(c, SUPP_BATCH_ADD, true);
}

void http_suppressions_batch_remove(struct http_call *c)
{
	supp_with_body(c, SUPP_BATCH_REMOVE, true);
}

void http_suppressions_get(struct http_call *c)
{
	struct supp_job *j = supp_job_new(c, SUPP_GET);
	if (j != NULL)
		supp_submit(c, j);
}

void http_suppressions_remove(struct http_call *c)
{
	struct supp_job *j = supp_job_new(c, SUPP_REMOVE);
	if (j != NULL)
		supp_submit(c, j);
}

void http_suppressions_list(struct http_call *c)
{
	char origin[32] = "";
	struct supp_job *j = supp_job_new(c, SUPP_LIST);
	if (j == NULL)
		return;
	if (!http_page_parse(c, &j->limit, j->after, sizeof(j->after), j->before, sizeof(j->before))) {
		free(j);
		return;
	}
	if (http_query_get(c->s->req.query, "origin", origin, sizeof(origin)) < 0) {
		free(j);
		http_respond_error(c->s, 422, "validation_error", "The query string is malformed.");
		return;
	}
	enum suppression_origin o;
	if (origin[0] != '\0') {
		if (!suppression_origin_parse(origin, &o)) {
			free(j);
			http_respond_error(c->s, 422, "validation_error",
					   "The `origin` parameter must be bounce, complaint, unsubscribe or manual.");
			return;
		}
		j->origin = (int)o;
	}
	supp_submit(c, j);
}
