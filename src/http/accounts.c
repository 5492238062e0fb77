/* accounts.c — mail users and aliases over the API, mailwerk's own (what `mailwerk user` and
 * `mailwerk alias` do; Resend hosts no mailboxes): GET/POST /users, PATCH/DELETE /users/{address},
 * GET/POST /aliases, DELETE /aliases/{address}. A user made without a password gets one made here,
 * shown once in the answer, as the CLI prints it. Passwords are hashed (yescrypt) and the store
 * written on a worker. A full-access key is an administrator's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "http/api.h"
#include "http/job_answer.h"
#include "http/session.h"
#include "mailbox/users.h"
#include "server/server.h"
#include "util/log.h"
#include "util/worker.h"

/* a password a person types: long enough for a passphrase, not for a denial of service through
 * the hash */
#define ACCOUNT_PASSWORD_MIN 8
#define ACCOUNT_PASSWORD_MAX 256

enum acc_kind {
	ACC_USERS = 0,
	ACC_USER_CREATE,
	ACC_USER_UPDATE,
	ACC_USER_DELETE,
	ACC_ALIASES,
	ACC_ALIAS_CREATE,
	ACC_ALIAS_DELETE,
};

struct acc_job {
	struct server *srv;
	uint64_t session_id;
	enum acc_kind kind;
	char address[ADDR_TEXT_MAX + 1];
	char password[ACCOUNT_PASSWORD_MAX + 1]; /* "" when none given */
	bool generated;
	int admin;         /* -1: unchanged */
	int64_t quota;     /* -1: unchanged; 0: none */
	char targets[USERS_TARGETS_MAX];
	struct http_job_answer ans;
};

/* A store error: the request's fault (422) or the store's (503). */
static void acc_result(struct acc_job *j, enum result r, const char *e, unsigned permfail_status)
{
	if (r == RESULT_PERMFAIL)
		http_job_fail(&j->ans, permfail_status, permfail_status == 404 ? "not_found" : "validation_error", "%s", e);
	else if (r != RESULT_OK)
		http_job_fail(&j->ans, 503, "internal_server_error", "The accounts cannot be read or changed now.");
}

static json_t *user_json(struct users *u, const char *address)
{
	bool admin = false;
	uint64_t quota = 0;
	const char *e;
	users_user_admin(u, address, &admin, &e);
	users_user_quota(u, address, &quota, &e);
	return json_pack("{s:s, s:s, s:b, s:o}", "object", "user", "address", address, "admin", admin, "quota",
			 quota > 0 ? json_integer((json_int_t)quota) : json_null());
}

struct acc_list {
	struct users *u;
	json_t *data;
};

static void user_add_to(const char *address, void *arg)
{
	struct acc_list *l = arg;
	json_array_append_new(l->data, user_json(l->u, address));
}

static void alias_add_to(const char *address, const char *targets, void *arg)
{
	struct acc_list *l = arg;
	json_t *t = json_array();
	char *copy = strdup(targets), *save = NULL;
	for (char *x = copy != NULL ? strtok_r(copy, ",", &save) : NULL; x != NULL; x = strtok_r(NULL, ",", &save))
		json_array_append_new(t, json_string(x));
	free(copy);
	json_array_append_new(l->data, json_pack("{s:s, s:s, s:o}", "object", "alias", "address", address, "targets", t));
}

static void acc_work(void *arg)
{
	struct acc_job *j = arg;
	struct users *u = j->srv->users;
	const char *e = NULL;
	enum result r = RESULT_OK;
	char hash[USERS_HASH_MAX];
	switch (j->kind) {
	case ACC_USERS:
	case ACC_ALIASES: {
		struct acc_list l = {u, json_array()};
		r = j->kind == ACC_USERS ? users_user_list(u, user_add_to, &l, &e) : users_alias_list(u, alias_add_to, &l, &e);
		if (r == RESULT_OK)
			j->ans.body = json_pack("{s:s, s:b, s:o}", "object", "list", "has_more", 0, "data", l.data);
		else
			json_decref(l.data);
		acc_result(j, r, e, 422);
		return;
	}
	case ACC_USER_CREATE:
		if (j->password[0] == '\0') {
			r = users_password_generate(j->password, USERS_PASSWORD_GEN_LEN + 1);
			j->generated = true;
		}
		if (r == RESULT_OK)
			r = users_hash_password(j->password, hash);
		if (r == RESULT_OK)
			r = users_user_add(u, j->address, hash, &e);
		if (r == RESULT_OK && j->admin == 1)
			r = users_user_set_admin(u, j->address, true, &e);
		OPENSSL_cleanse(hash, sizeof(hash));
		acc_result(j, r, e != NULL ? e : "The password cannot be made.", strstr(e != NULL ? e : "", "exists") ? 409 : 422);
		if (r == RESULT_OK) {
			j->ans.body = user_json(u, j->address);
			if (j->generated) /* shown once, as the CLI prints it */
				json_object_set_new(j->ans.body, "password", json_string(j->password));
			log_info("event=api_user_added address=%s admin=%s", j->address, j->admin == 1 ? "yes" : "no");
		}
		break;
	case ACC_USER_UPDATE:
		if (j->password[0] != '\0' && (r = users_hash_password(j->password, hash)) == RESULT_OK)
			r = users_user_set_hash(u, j->address, hash, &e);
		OPENSSL_cleanse(hash, sizeof(hash));
		if (r == RESULT_OK && j->admin >= 0)
			r = users_user_set_admin(u, j->address, j->admin == 1, &e);
		if (r == RESULT_OK && j->quota >= 0)
			r = users_user_set_quota(u, j->address, (uint64_t)j->quota, &e);
		if (r == RESULT_OK) {
			char stored[ADDR_TEXT_MAX + 1];
			r = users_user_hash(u, j->address, hash, sizeof(hash), stored, &e);
			OPENSSL_cleanse(hash, sizeof(hash));
			if (r == RESULT_OK)
				j->ans.body = user_json(u, stored);
		}
		acc_result(j, r, e, 404);
		break;
	case ACC_USER_DELETE:
		r = users_user_del(u, j->address, &e);
		acc_result(j, r, e, 404);
		if (r == RESULT_OK)
			j->ans.body = json_pack("{s:s, s:s, s:b}", "object", "user", "address", j->address, "deleted", 1);
		break;
	case ACC_ALIAS_CREATE:
		r = users_alias_add(u, j->address, j->targets, &e);
		acc_result(j, r, e, 422);
		if (r == RESULT_OK) {
			struct acc_list l = {u, json_array()};
			alias_add_to(j->address, j->targets, &l);
			j->ans.body = json_incref(json_array_get(l.data, 0));
			json_decref(l.data);
		}
		break;
	case ACC_ALIAS_DELETE:
		r = users_alias_del(u, j->address, &e);
		acc_result(j, r, e, 404);
		if (r == RESULT_OK)
			j->ans.body = json_pack("{s:s, s:s, s:b}", "object", "alias", "address", j->address, "deleted", 1);
		break;
	}
	OPENSSL_cleanse(j->password, sizeof(j->password));
}

static void acc_done(void *arg)
{
	struct acc_job *j = arg;
	http_job_send(j->srv, j->session_id, &j->ans,
		      j->kind == ACC_USER_CREATE || j->kind == ACC_ALIAS_CREATE ? 201 : 200);
	OPENSSL_cleanse(j, sizeof(*j));
	free(j);
}

static struct acc_job *acc_job_new(struct http_call *c, enum acc_kind kind)
{
	struct acc_job *j = calloc(1, sizeof(*j));
	if (j == NULL) {
		http_respond_error(c->s, 500, "internal_server_error", "Out of memory.");
		return NULL;
	}
	j->srv = c->s->srv;
	j->session_id = c->s->conn.id;
	j->kind = kind;
	j->admin = -1, j->quota = -1;
	snprintf(j->address, sizeof(j->address), "%.*s", ADDR_TEXT_MAX, c->param);
	return j;
}

static void acc_submit(struct http_call *c, struct acc_job *j)
{
	worker_pool_submit(c->s->srv->workers, acc_work, acc_done, j);
}

/* The fields of a user's body into j; NULL, or the sentence of a 422. */
static const char *user_fields(const json_t *doc, struct acc_job *j, bool create)
{
	const json_t *a = json_object_get(doc, "address"), *p = json_object_get(doc, "password");
	const json_t *adm = json_object_get(doc, "admin"), *q = json_object_get(doc, "quota");
	if (create && (!json_is_string(a) || json_string_length(a) == 0 || json_string_length(a) > ADDR_TEXT_MAX))
		return "The `address` field must be an address at a local domain.";
	if (p != NULL && (!json_is_string(p) || json_string_length(p) < ACCOUNT_PASSWORD_MIN ||
			  json_string_length(p) > ACCOUNT_PASSWORD_MAX || strlen(json_string_value(p)) != json_string_length(p)))
		return "The `password` field must be 8 to 256 characters.";
	if (adm != NULL && !json_is_boolean(adm))
		return "The `admin` field must be true or false.";
	if (q != NULL && !json_is_null(q) && (!json_is_integer(q) || json_integer_value(q) < 1))
		return "The `quota` field must be a number of octets, or null for none.";
	if (create)
		snprintf(j->address, sizeof(j->address), "%s", json_string_value(a));
	if (p != NULL)
		snprintf(j->password, sizeof(j->password), "%s", json_string_value(p));
	if (adm != NULL)
		j->admin = json_is_true(adm);
	if (q != NULL)
		j->quota = json_is_null(q) ? 0 : json_integer_value(q);
	return NULL;
}

static void acc_with_body(struct http_call *c, enum acc_kind kind)
{
	json_t *doc = http_body_object(c, true);
	if (doc == NULL)
		return;
	struct acc_job *j = acc_job_new(c, kind);
	const char *problem = NULL;
	if (j != NULL && kind == ACC_ALIAS_CREATE) {
		const json_t *a = json_object_get(doc, "address"), *t = json_object_get(doc, "targets");
		size_t o = 0;
		if (!json_is_string(a) || json_string_length(a) == 0 || json_string_length(a) > ADDR_TEXT_MAX)
			problem = "The `address` field must be an address, or @domain for the domain's catch-all.";
		else if (!json_is_array(t) || json_array_size(t) == 0)
			problem = "The `targets` field must be an array of addresses.";
		for (size_t i = 0; problem == NULL && i < json_array_size(t); i++) {
			const json_t *x = json_array_get(t, i);
			int n = json_is_string(x) ? snprintf(j->targets + o, sizeof(j->targets) - o, "%s%s", o > 0 ? "," : "",
							     json_string_value(x))
						  : -1;
			if (n < 0 || (size_t)n >= sizeof(j->targets) - o || strchr(json_string_value(x), ',') != NULL)
				problem = "The `targets` field must be an array of addresses (at most 4 KiB in all).";
			else
				o += (size_t)n;
		}
		if (problem == NULL)
			snprintf(j->address, sizeof(j->address), "%s", json_string_value(a));
	} else if (j != NULL) {
		problem = user_fields(doc, j, kind == ACC_USER_CREATE);
	}
	json_decref(doc);
	if (j == NULL)
		return;
	if (problem != NULL) {
		OPENSSL_cleanse(j, sizeof(*j));
		free(j);
		http_respond_error(c->s, 422, "validation_error", "%s", problem);
		return;
	}
	acc_submit(c, j);
}

static void acc_simple(struct http_call *c, enum acc_kind kind)
{
	struct acc_job *j = acc_job_new(c, kind);
	if (j != NULL)
		acc_submit(c, j);
}

void http_users_list(struct http_call *c)
{
	acc_simple(c, ACC_USERS);
}

void http_users_create(struct http_call *c)
{
	acc_with_body(c, ACC_USER_CREATE);
}

void http_users_update(struct http_call *c)
{
	acc_with_body(c, ACC_USER_UPDATE);
}

void http_users_delete(struct http_call *c)
{
	acc_simple(c, ACC_USER_DELETE);
}

void http_aliases_list(struct http_call *c)
{
	acc_simple(c, ACC_ALIASES);
}

void http_aliases_create(struct http_call *c)
{
	acc_with_body(c, ACC_ALIAS_CREATE);
}

void http_aliases_delete(struct http_call *c)
{
	acc_simple(c, ACC_ALIAS_DELETE);
}
