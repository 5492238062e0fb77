/* domains_dkim.c — a domain's DKIM keys over the API, mailwerk's own (Resend rotates its keys
 * itself): GET /domains/{id}/dkim-keys lists them with the TXT record each must publish, POST makes
 * a new one ({selector?, algorithm?: "rsa"|"ed25519", bits?, activate?}), POST
 * /domains/{id}/dkim-keys/{selector}/activate makes one sign. A rotation (RFC 6376 §3.1) is the
 * three steps of `mailwerk dkim`: a new selector, its record published while the old key still
 * signs, then activated. The same key store (keys/dkim_store.h): read on a worker (the public
 * halves), changed by the signer process, which alone holds the private keys and makes them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "auth/dkim_key.h"
#include "conf/conf.h"
#include "http/api.h"
#include "http/job_answer.h"
#include "http/session.h"
#include "keys/dkim_store.h"
#include "mailbox/users.h"
#include "server/server.h"
#include "server/signer_client.h"
#include "util/log.h"
#include "util/worker.h"

enum dk_kind {
	DK_LIST = 0,
	DK_CREATE,
	DK_ACTIVATE,
};

struct dk_job {
	struct server *srv;
	uint64_t session_id;
	enum dk_kind kind;
	char *data_dir;
	char domain_key[ADDR_DOMAIN_MAX + 1]; /* the path's id or name */
	char selector[DKIM_SELECTOR_MAX + 1]; /* "" on create: one is chosen */
	enum dkim_key_type type;
	unsigned bits;
	bool activate;
	bool changed;                         /* create, activate: the signer has done its part */
	char name[ADDR_DOMAIN_MAX + 1];       /* the domain's name, once found */
	struct http_job_answer ans;
};

/* One key as the API shows it: the record to publish at name (relative to the domain, as the
 * domain's records[] are). */
static json_t *key_json(const struct dkim_store_key *k)
{
	const char *err;
	char *txt = dkim_key_record_format(k->pkey, &err);
	char name[DKIM_SELECTOR_MAX + 16];
	snprintf(name, sizeof(name), "%s._domainkey", k->selector);
	json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:b, s:s, s:s, s:o}", "object", "dkim_key", "selector", k->selector,
			      "algorithm", k->type == DKIM_KEY_ED25519 ? "ed25519" : "rsa", "bits", (json_int_t)k->bits,
			      "active", k->active, "type", "TXT", "name", name, "value",
			      txt != NULL ? json_string(txt) : json_null());
	free(txt);
	return o;
}

struct dk_collect {
	json_t *list;
	const char *only; /* a selector, or NULL for all */
};

static void dk_collect_one(const struct dkim_store_key *k, void *arg)
{
	struct dk_collect *c = arg;
	if (c->only == NULL || strcmp(c->only, k->selector) == 0)
		json_array_append_new(c->list, key_json(k));
}

/* The domain's keys (one selector's when only); NULL with the job failed. */
static json_t *dk_keys(struct dk_job *j, const char *domain, const char *only)
{
	struct dk_collect c = {json_array(), only};
	char err[256];
	if (c.list == NULL || dkim_store_list(j->data_dir, domain, dk_collect_one, NULL, &c, err, sizeof(err)) != 0) {
		json_decref(c.list);
		http_job_fail(&j->ans, 503, "internal_server_error", "The domain's keys cannot be read.");
		return NULL;
	}
	return c.list;
}

/* A selector of this month not taken yet: "mw202612" (as the domain's first key is named), then
 * "mw202612b", "mw202612c", ... */
static bool dk_selector_new(struct dk_job *j, const char *domain, char *out, size_t size)
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	json_t *have = dk_keys(j, domain, NULL);
	if (have == NULL)
		return false;
	bool ok = false;
	/* "" first, then the letters b to z: mw202612, mw202612b, ... */
	static const char suffixes[] = "\0bcdefghijklmnopqrstuvwxyz";
	for (size_t n = 0; !ok && n < sizeof(suffixes) - 1; n++) {
		snprintf(out, size, "mw%04d%02d%.1s", tm.tm_year + 1900, tm.tm_mon + 1, &suffixes[n]);
		ok = true;
		size_t i;
		json_t *k;
		json_array_foreach(have, i, k)
		if (strcmp(json_string_value(json_object_get(k, "selector")), out) == 0)
			ok = false;
	}
	json_decref(have);
	if (!ok)
		http_job_fail(&j->ans, 409, "validation_error", "Every selector of this month is taken: give `selector`.");
	return ok;
}

/* On a worker: the domain, and either the answer (a list; a key read back after the signer made or
 * activated it) or what the signer is to do (a free selector to make, an existing one to activate). */
static void dk_work(void *arg)
{
	struct dk_job *j = arg;
	struct users_domain d;
	const char *e;
	enum result r = users_domain_get(j->srv->users, j->domain_key, &d, &e);
	if (r != RESULT_OK) {
		http_job_fail(&j->ans, r == RESULT_PERMFAIL ? 404 : 503, r == RESULT_PERMFAIL ? "not_found" : "internal_server_error", "%s",
			r == RESULT_PERMFAIL ? "Domain not found." : "The domain cannot be read.");
		return;
	}
	snprintf(j->name, sizeof(j->name), "%s", d.name);
	if (j->kind == DK_LIST) {
		json_t *keys = dk_keys(j, d.name, NULL);
		if (keys != NULL)
			j->ans.body = json_pack("{s:s, s:b, s:o}", "object", "list", "has_more", 0, "data", keys);
		return;
	}
	if (!j->changed) {
		if (j->kind == DK_CREATE && j->selector[0] == '\0' && !dk_selector_new(j, d.name, j->selector, sizeof(j->selector)))
			return;
		json_t *same = dk_keys(j, d.name, j->selector);
		size_t taken = same != NULL ? json_array_size(same) : 0;
		json_decref(same);
		if (same == NULL)
			return;
		if (j->kind == DK_CREATE && taken > 0)
			/* never a second key under a selector: the first may be published and signing */
			http_job_fail(&j->ans, 409, "validation_error", "The domain has a key of this selector already.");
		else if (j->kind == DK_ACTIVATE && taken == 0)
			http_job_fail(&j->ans, 404, "not_found", "The domain has no key of this selector.");
		return; /* the signer next (dk_done) */
	}
	json_t *one = dk_keys(j, d.name, j->selector);
	if (one != NULL && json_array_size(one) == 1)
		j->ans.body = json_incref(json_array_get(one, 0));
	else if (one != NULL)
		http_job_fail(&j->ans, 503, "internal_server_error", "The key was stored but cannot be read back.");
	json_decref(one);
}

static void dk_done(void *arg);

/* The signer made or activated the key: read it back on a worker. */
static void dk_changed(void *arg, enum signer_result r, bool active, const char *error)
{
	struct dk_job *j = arg;
	j->changed = true;
	if (r != SIGNER_SIGNED) {
		/* the sentences name files of the server: they go to the log, not to the client */
		log_warn("event=api_dkim_key_failed domain=%s selector=%s error=\"%s\"", j->name, j->selector, error);
		http_job_fail(&j->ans, 503, "internal_server_error", "The key cannot be stored now.");
		dk_done(j);
		return;
	}
	log_info("event=api_dkim_key_%s domain=%s selector=%s active=%s", j->kind == DK_CREATE ? "created" : "activated",
		 j->name, j->selector, active ? "yes" : "no");
	worker_pool_submit(j->srv->workers, dk_work, dk_done, j);
}

static void dk_done(void *arg)
{
	struct dk_job *j = arg;
	if (j->kind != DK_LIST && !j->changed && j->ans.status == 0) {
		/* the signer alone writes the private keys (server/signer.h) */
		if (j->kind == DK_CREATE) {
			struct signer_make k = {.type = j->type, .bits = j->bits, .when_first = !j->activate};
			snprintf(k.domain, sizeof(k.domain), "%.253s", j->name);
			snprintf(k.selector, sizeof(k.selector), "%s", j->selector);
			signer_client_make_key(j->srv->signer, &k, dk_changed, j);
		} else {
			signer_client_activate(j->srv->signer, j->name, j->selector, dk_changed, j);
		}
		return;
	}
	http_job_send(j->srv, j->session_id, &j->ans, j->kind == DK_CREATE ? 201 : 200);
	free(j->data_dir);
	free(j);
}

static struct dk_job *dk_job_new(struct http_call *c, enum dk_kind kind)
{
	struct dk_job *j = calloc(1, sizeof(*j));
	if (j == NULL || (j->data_dir = strdup(c->s->conf->data_dir)) == NULL) {
		free(j);
		http_respond_error(c->s, 500, "internal_server_error", "Out of memory.");
		return NULL;
	}
	j->srv = c->s->srv;
	j->session_id = c->s->conn.id;
	j->kind = kind;
	j->type = DKIM_KEY_RSA;
	snprintf(j->domain_key, sizeof(j->domain_key), "%.*s", ADDR_DOMAIN_MAX, c->param);
	return j;
}

static void dk_free(struct dk_job *j)
{
	free(j->data_dir);
	free(j);
}

void http_domains_dkim_list(struct http_call *c)
{
	struct dk_job *j = dk_job_new(c, DK_LIST);
	if (j != NULL)
		worker_pool_submit(c->s->srv->workers, dk_work, dk_done, j);
}

void http_domains_dkim_create(struct http_call *c)
{
	json_t *doc = http_body_object(c, false);
	if (doc == NULL)
		return;
	const json_t *sel = json_object_get(doc, "selector"), *alg = json_object_get(doc, "algorithm");
	const json_t *bits = json_object_get(doc, "bits"), *act = json_object_get(doc, "activate");
	const char *problem = NULL;
	if (sel != NULL && (!json_is_string(sel) || !dkim_store_selector_valid(json_string_value(sel))))
		problem = "The `selector` field must be DNS labels of letters, digits and '-' (at most 63 octets).";
	else if (alg != NULL && (!json_is_string(alg) || (strcmp(json_string_value(alg), "rsa") != 0 &&
							   strcmp(json_string_value(alg), "ed25519") != 0)))
		problem = "The `algorithm` field must be `rsa` or `ed25519`.";
	else if (bits != NULL && (!json_is_integer(bits) || json_integer_value(bits) < 2048 || json_integer_value(bits) > 4096))
		problem = "The `bits` field must be a number from 2048 to 4096.";
	else if (act != NULL && !json_is_boolean(act))
		problem = "The `activate` field must be true or false.";
	if (problem != NULL) {
		json_decref(doc);
		http_respond_error(c->s, 422, "validation_error", "%s", problem);
		return;
	}
	struct dk_job *j = dk_job_new(c, DK_CREATE);
	if (j != NULL) {
		if (sel != NULL)
			snprintf(j->selector, sizeof(j->selector), "%s", json_string_value(sel));
		if (alg != NULL && strcmp(json_string_value(alg), "ed25519") == 0)
			j->type = DKIM_KEY_ED25519;
		j->bits = bits != NULL && j->type == DKIM_KEY_RSA ? (unsigned)json_integer_value(bits) : 0;
		j->activate = json_is_true(act);
		worker_pool_submit(c->s->srv->workers, dk_work, dk_done, j);
	}
	json_decref(doc);
}

void http_domains_dkim_activate(struct http_call *c)
{
	struct dk_job *j = dk_job_new(c, DK_ACTIVATE);
	if (j == NULL)
		return;
	if (!dkim_store_selector_valid(c->param2)) {
		dk_free(j);
		http_respond_error(c->s, 404, "not_found", "The domain has no key of this selector.");
		return;
	}
	snprintf(j->selector, sizeof(j->selector), "%s", c->param2);
	worker_pool_submit(c->s->srv->workers, dk_work, dk_done, j);
}
