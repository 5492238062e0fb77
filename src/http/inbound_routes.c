/* inbound_routes.c — /inbound/routes, mailwerk's own resource (Resend routes inbound mail by the
 * domain's receiving capability alone): which addresses of the local domains deliver to the
 * applications. POST {address: "a@b" | "*@b", mailbox?: bool} makes one, GET lists (Resend's
 * cursors) or shows one, PATCH {mailbox} changes it, DELETE removes it. The same store as `mailwerk
 * route` (mailbox/users.h); its work runs on a worker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/api.h"
#include "http/json.h"
#include "http/job_answer.h"
#include "http/session.h"
#include "mailbox/users.h"
#include "server/server.h"
#include "util/worker.h"

enum route_kind {
	ROUTE_CREATE = 0,
	ROUTE_LIST,
	ROUTE_GET,
	ROUTE_UPDATE,
	ROUTE_DELETE,
};

struct route_job {
	struct server *srv;
	uint64_t session_id;
	enum route_kind kind;
	char key[ADDR_TEXT_MAX + 1]; /* the id of the path, or the address to create */
	bool mailbox;
	unsigned limit;
	char after[64], before[64];
	struct http_job_answer ans;
};

static json_t *http_route_json(const struct users_route *r)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:b, s:o}", "object", "inbound_route", "id", r->id, "address", r->address,
			 "domain", r->domain, "mailbox", r->mailbox, "created_at", http_json_time(r->created_ms));
}

static void route_work(void *arg)
{
	struct route_job *j = arg;
	struct users *u = j->srv->users;
	struct users_route r;
	const char *e = NULL;
	enum result res = RESULT_OK;
	switch (j->kind) {
	case ROUTE_CREATE:
		res = users_route_add(u, j->key, j->mailbox, &r, &e);
		if (res == RESULT_PERMFAIL)
			/* refused: an existing route is a conflict, anything else the request's fault */
			http_job_fail(&j->ans, strstr(e, "already routed") != NULL ? 409 : 422, "validation_error", "%s", e);
		break;
	case ROUTE_GET:
		res = users_route_get(u, j->key, &r, &e);
		break;
	case ROUTE_UPDATE:
		res = users_route_set_mailbox(u, j->key, j->mailbox, &e);
		if (res == RESULT_OK)
			res = users_route_get(u, j->key, &r, &e);
		break;
	case ROUTE_DELETE:
		res = users_route_get(u, j->key, &r, &e);
		if (res == RESULT_OK)
			res = users_route_del(u, r.id, &e);
		if (res == RESULT_OK)
			j->ans.body = json_pack("{s:s, s:s, s:b}", "object", "inbound_route", "id", r.id, "deleted", 1);
		break;
	case ROUTE_LIST: {
		struct users_route *list;
		size_t n;
		bool more;
		res = users_route_page(u, j->limit, j->after[0] ? j->after : NULL, j->before[0] ? j->before : NULL, &list,
				       &n, &more, &e);
		if (res == RESULT_PERMFAIL) {
			http_job_fail(&j->ans, 422, "validation_error", "The cursor is not the id of a route.");
		} else if (res == RESULT_OK) {
			json_t *data = json_array();
			for (size_t i = 0; i < n; i++)
				json_array_append_new(data, http_route_json(&list[i]));
			free(list);
			j->ans.body = json_pack("{s:s, s:b, s:o}", "object", "list", "has_more", more, "data", data);
		}
		return;
	}
	}
	if (j->ans.status != 0)
		return;
	if (res == RESULT_PERMFAIL)
		http_job_fail(&j->ans, 404, "not_found", "Route not found.");
	else if (res != RESULT_OK)
		http_job_fail(&j->ans, 503, "internal_server_error", "The routes cannot be read or changed now.");
	else if (j->ans.body == NULL)
		j->ans.body = http_route_json(&r);
}

static void route_done(void *arg)
{
	struct route_job *j = arg;
	http_job_send(j->srv, j->session_id, &j->ans, j->kind == ROUTE_CREATE ? 201 : 200);
	free(j);
}

static struct route_job *route_job_new(struct http_call *c, enum route_kind kind)
{
	struct route_job *j = calloc(1, sizeof(*j));
	if (j == NULL) {
		http_respond_error(c->s, 500, "internal_server_error", "Out of memory.");
		return NULL;
	}
	j->srv = c->s->srv;
	j->session_id = c->s->conn.id;
	j->kind = kind;
	snprintf(j->key, sizeof(j->key), "%.*s", (int)sizeof(j->key) - 1, c->param);
	return j;
}

/* The body's "mailbox": absent leaves *mailbox_r; false when the request has been answered 422. */
static bool mailbox_read(struct http_call *c, const json_t *doc, bool *mailbox_r)
{
	const json_t *m = json_object_get(doc, "mailbox");
	if (m == NULL)
		return true;
	if (!json_is_boolean(m)) {
		http_respond_error(c->s, 422, "validation_error", "The `mailbox` field must be true or false.");
		return false;
	}
	*mailbox_r = json_is_true(m);
	return true;
}

void http_routes_create(struct http_call *c)
{
	json_t *doc = http_body_object(c, true);
	if (doc == NULL)
		return;
	const json_t *a = json_object_get(doc, "address");
	bool mailbox = false;
	if (a == NULL) {
		json_decref(doc);
		http_respond_error(c->s, 422, "missing_required_field", "Missing `address` field.");
		return;
	}
	if (!json_is_string(a) || json_string_length(a) == 0 || json_string_length(a) > ADDR_TEXT_MAX) {
		json_decref(doc);
		http_respond_error(c->s, 422, "validation_error",
				   "The `address` field must be an address (local@domain) or a domain's wildcard (*@domain).");
		return;
	}
	if (!mailbox_read(c, doc, &mailbox)) {
		json_decref(doc);
		return;
	}
	struct route_job *j = route_job_new(c, ROUTE_CREATE);
	if (j != NULL) {
		snprintf(j->key, sizeof(j->key), "%s", json_string_value(a));
		j->mailbox = mailbox;
		worker_pool_submit(c->s->srv->workers, route_work, route_done, j);
	}
	json_decref(doc);
}

void http_routes_list(struct http_call *c)
{
	struct route_job *j = route_job_new(c, ROUTE_LIST);
	if (j == NULL)
		return;
	if (!http_page_parse(c, &j->limit, j->after, sizeof(j->after), j->before, sizeof(j->before))) {
		free(j);
		return;
	}
	worker_pool_submit(c->s->srv->workers, route_work, route_done, j);
}

void http_routes_get(struct http_call *c)
{
	struct route_job *j = route_job_new(c, ROUTE_GET);
	if (j != NULL)
		worker_pool_submit(c->s->srv->workers, route_work, route_done, j);
}

void http_routes_update(struct http_call *c)
{
	json_t *doc = http_body_object(c, true);
	if (doc == NULL)
		return;
	bool mailbox = false;
	if (json_object_get(doc, "mailbox") == NULL) {
		json_decref(doc);
		http_respond_error(c->s, 422, "missing_required_field", "Missing `mailbox` field.");
		return;
	}
	bool ok = mailbox_read(c, doc, &mailbox);
	json_decref(doc);
	if (!ok)
		return;
	struct route_job *j = route_job_new(c, ROUTE_UPDATE);
	if (j != NULL) {
		j->mailbox = mailbox;
		worker_pool_submit(c->s->srv->workers, route_work, route_done, j);
	}
}

void http_routes_delete(struct http_call *c)
{
	struct route_job *j = route_job_new(c, ROUTE_DELETE);
	if (j != NULL)
		worker_pool_submit(c->s->srv->workers, route_work, route_done, j);
}
