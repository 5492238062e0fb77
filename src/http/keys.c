/* keys.c — POST /api-keys, GET /api-keys, DELETE /api-keys/{id} in Resend's shapes. Writes fsync,
 * so all three run on a worker thread (keys/api_keys.h). Resend's domain_id names one of its
 * domain objects: here the id of one (GET /domains), or its name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/api.h"
#include "http/json.h"
#include "http/session.h"
#include "mailbox/users.h"
#include "server/server.h"
#include "util/worker.h"
#include "util/date.h"

enum keys_kind {
	KEYS_CREATE = 0,
	KEYS_LIST,
	KEYS_DELETE,
};

struct keys_job {
	struct server *srv;
	struct http_api *api;
	uint64_t session_id;
	enum keys_kind kind;
	char id[API_KEY_ID_LEN * 2 + 1];
	char *name, *domain;
	enum api_key_permission perm;
	unsigned status;
	const char *err_name;
	char err[256];
	json_t *body;
};

static json_t *time_or_null(int64_t ms)
{
	if (ms == 0)
		return json_null();
	char t[40];
	date_rfc3339_ms_format(ms, t, sizeof(t));
	return json_string(t);
}

static void keys_work(void *arg)
{
	struct keys_job *j = arg;
	char err[256];
	switch (j->kind) {
	case KEYS_CREATE: {
		char token[API_KEY_TOKEN_LEN + 1];
		struct api_key k;
		bool bad;
		/* domain_id: a domain's id (GET /domains) names it; a name stays as it is */
		struct users_domain d;
		const char *e;
		const char *domain = j->domain[0] != '\0' && users_domain_get(j->srv->users, j->domain, &d, &e) == RESULT_OK
					     ? d.name
					     : j->domain;
		if (api_keys_create(j->api->keys, j->name, j->perm, domain, token, &k, &bad, err, sizeof(err)) != 0) {
			j->status = bad ? 422 : 503;
			j->err_name = bad ? "validation_error" : "internal_server_error";
			snprintf(j->err, sizeof(j->err), "%s", err);
			break;
		}
		j->body = json_pack("{s:s, s:s}", "id", k.id, "token", token);
		explicit_bzero(token, sizeof(token));
		break;
	}
	case KEYS_LIST: {
		struct api_key *keys;
		size_t n;
		if (api_keys_list(j->api->keys, &keys, &n, err, sizeof(err)) != 0) {
			j->status = 503, j->err_name = "internal_server_error";
			snprintf(j->err, sizeof(j->err), "%s", err);
			break;
		}
		json_t *data = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(data, json_pack("{s:s, s:s, s:o, s:o, s:s, s:o}", "id", keys[i].id, "name",
							      keys[i].name, "created_at", time_or_null(keys[i].created_at),
							      "last_used_at", time_or_null(keys[i].last_used_at),
							      "permission", api_key_permission_str(keys[i].permission),
							      "domain", keys[i].domain[0] ? json_string(keys[i].domain)
										  : json_null()));
		free(keys);
		j->body = json_pack("{s:s, s:b, s:o}", "object", "list", "has_more", 0, "data", data);
		break;
	}
	case KEYS_DELETE: {
		int r = api_keys_revoke(j->api->keys, j->id, err, sizeof(err));
		if (r == 1) {
			j->body = json_pack("{s:s, s:s, s:b}", "object", "api_key", "id", j->id, "deleted", 1);
		} else if (r == 0) {
			j->status = 404, j->err_name = "not_found";
			snprintf(j->err, sizeof(j->err), "API key not found.");
		} else {
			j->status = 503, j->err_name = "internal_server_error";
			snprintf(j->err, sizeof(j->err), "%s", err);
		}
		break;
	}
	}
}

static void keys_done(void *arg)
{
	struct keys_job *j = arg;
	struct http_session *s = http_session_find(j->srv, j->session_id);
	if (s != NULL) {
		if (j->status != 0)
			http_respond_json(s, j->status, http_error_json(j->status, j->err_name, j->err), NULL);
		else
			http_respond_json(s, j->kind == KEYS_CREATE ? 201 : 200, j->body, NULL), j->body = NULL;
	}
	json_decref(j->body);
	free(j->name);
	free(j->domain);
	free(j);
}

static struct keys_job *keys_job_new(struct http_call *c, enum keys_kind kind)
{
	struct keys_job *j = calloc(1, sizeof(*j));
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

void http_keys_create(struct http_call *c)
{
	char err[256];
	json_t *doc = http_json_load(c->s->body != NULL ? c->s->body : "", c->s->body_len, HTTP_JSON_MAX_DEPTH, err,
				     sizeof(err));
	if (doc == NULL) {
		http_respond_error(c->s, 400, "validation_error", "%s", err);
		return;
	}
	const json_t *name = json_object_get(doc, "name"), *perm = json_object_get(doc, "permission"),
		     *domain = json_object_get(doc, "domain_id");
	enum api_key_permission p = API_KEY_FULL_ACCESS;
	const char *problem = NULL, *problem_name = "validation_error";
	if (!json_is_object(doc))
		problem = "The request body must be a JSON object.";
	else if (name == NULL)
		problem = "Missing `name` field.", problem_name = "missing_required_field";
	else if (!json_is_string(name))
		problem = "The `name` field must be a string.";
	else if (perm != NULL && !json_is_null(perm) &&
		 (!json_is_string(perm) || !api_key_permission_parse(json_string_value(perm), &p)))
		problem = "The `permission` field must be `full_access` or `sending_access`.";
	else if (domain != NULL && !json_is_null(domain) && !json_is_string(domain))
		problem = "The `domain_id` field must be a string.";
	if (problem != NULL) {
		json_decref(doc);
		http_respond_error(c->s, 422, problem_name, "%s", problem);
		return;
	}
	struct keys_job *j = keys_job_new(c, KEYS_CREATE);
	if (j == NULL) {
		json_decref(doc);
		return;
	}
	j->perm = p;
	j->name = strdup(json_string_value(name));
	j->domain = strdup(json_is_string(domain) ? json_string_value(domain) : "");
	json_decref(doc);
	if (j->name == NULL || j->domain == NULL) {
		http_respond_error(c->s, 500, "internal_server_error", "Out of memory.");
		free(j->name), free(j->domain), free(j);
		return;
	}
	worker_pool_submit(c->s->srv->workers, keys_work, keys_done, j);
}

void http_keys_list(struct http_call *c)
{
	struct keys_job *j = keys_job_new(c, KEYS_LIST);
	if (j != NULL)
		worker_pool_submit(c->s->srv->workers, keys_work, keys_done, j);
}

void http_keys_delete(struct http_call *c)
{
	struct keys_job *j = keys_job_new(c, KEYS_DELETE);
	if (j != NULL)
		worker_pool_submit(c->s->srv->workers, keys_work, keys_done, j);
}
