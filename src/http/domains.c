/* domains.c — POST /domains, GET /domains[/{id}], PATCH and DELETE /domains/{id}, POST
 * /domains/{id}/verify, in the shapes of Resend's SDK (CreateDomainResponseSuccess,
 * GetDomainResponseSuccess, ListDomainsResponseSuccess, ...). A domain made here is a local domain as
 * `mailwerk domain add` makes one, with a DKIM key as `mailwerk dkim keygen` makes one; its records[]
 * and their check are domains/domain_dns.h's, the same that `mailwerk dns records` and `dns check`
 * print. Storage (fsync) and key generation run on a worker; the check runs on the loop
 * (net/dns_drive), and its outcome is stored on a worker again.
 *
 * Where Resend's answer depends on its hosted service, this one says what a self-hosted server has:
 * region "self-hosted"; ttl "Auto"; record names relative to the domain ("@" for the domain itself),
 * values as they are published (TXT text unquoted). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

#include "auth/dkim_key.h"
#include "conf/conf.h"
#include "domains/domain_dns.h"
#include "http/api.h"
#include "http/domains_verify.h"
#include "http/json.h"
#include "http/session.h"
#include "keys/dkim_store.h"
#include "mailbox/users.h"
#include "server/server.h"
#include "server/signer_client.h"
#include "util/date.h"
#include "util/log.h"
#include "util/worker.h"

enum dom_kind {
	DOM_CREATE = 0,
	DOM_LIST,
	DOM_GET,
	DOM_UPDATE,
	DOM_DELETE,
	DOM_VERIFY,
};

struct dom_job {
	struct server *srv;
	struct http_api *api;
	uint64_t session_id;
	enum dom_kind kind;
	char key[ADDR_DOMAIN_MAX + 1]; /* {id}, or the name to create */
	int sending, receiving;        /* create, update: -1 unchanged */
	char return_path[64];          /* create: the custom return path label, "" for [api] return_path_label */
	unsigned limit;                /* list */
	char after[USERS_DOMAIN_ID_LEN + 1], before[USERS_DOMAIN_ID_LEN + 1];
	struct domain_verify *verify;  /* verify: the check to run */
	bool need_key, key_made;       /* create: the signer is to make the domain's first key; it has */
	char name[ADDR_DOMAIN_MAX + 1]; /* create: the domain's name as stored */
	/* the answer */
	unsigned status;
	const char *err_name;
	char err[512];
	json_t *body;
};

void http_domain_input(const struct conf *cf, const struct users_domain *d, const struct domain_keys *ks,
		       struct domain_dns_input *in, char *return_path, size_t rp_size)
{
	snprintf(return_path, rp_size, "%s.%s", d->return_path[0] != '\0' ? d->return_path : cf->api_return_path_label,
		 d->name);
	*in = (struct domain_dns_input){
		.domain = d->name,
		.hostname = cf->hostname,
		.return_path = return_path,
		.keys = ks->k,
		.nkeys = ks->n,
		.now = (int64_t)time(NULL),
	};
	domain_dns_sts_id(cf, in->sts_id, sizeof(in->sts_id));
}

/* Resend's record kinds: the return path's MX and SPF are its "SPF" records (its "send"
 * subdomain), the domain's MX is "Receiving". The host name's address and PTR are not the
 * domain's records (they are `dns check`'s), nor are the recommended ones. */
static const char *dom_record_label(enum domain_rec_kind k)
{
	switch (k) {
	case DOMAIN_REC_MX: return "Receiving";
	case DOMAIN_REC_SPF:
	case DOMAIN_REC_RETURN_MX:
	case DOMAIN_REC_RETURN_SPF: return "SPF";
	case DOMAIN_REC_DKIM: return "DKIM";
	case DOMAIN_REC_DMARC: return "DMARC";
	default: return NULL;
	}
}

bool http_domain_rec_shown(enum domain_rec_kind k)
{
	return dom_record_label(k) != NULL;
}

/* "s1._domainkey" for "s1._domainkey.example.org" in example.org; "@" for the domain itself. */
static void dom_relative(const char *name, const char *domain, char *out, size_t size)
{
	size_t n = strlen(name), d = strlen(domain);
	if (strcasecmp(name, domain) == 0)
		snprintf(out, size, "@");
	else if (n > d + 1 && name[n - d - 1] == '.' && strcasecmp(name + n - d, domain) == 0)
		snprintf(out, size, "%.*s", (int)(n - d - 1), name);
	else
		snprintf(out, size, "%s", name);
}

json_t *http_domain_records_of(const struct domain_dns *dd, const char *domain,
			       const struct users_domain_check *checks, size_t nchecks)
{
	json_t *out = json_array();
	for (size_t i = 0; out != NULL && i < domain_dns_count(dd); i++) {
		const struct domain_rec *r = domain_dns_rec(dd, i);
		const char *label = dom_record_label(r->kind);
		if (label == NULL || r->value == NULL)
			continue;
		const char *status = "not_started", *problem = NULL;
		for (size_t k = 0; k < nchecks; k++)
			if (strcmp(checks[k].kind, domain_rec_kind_str(r->kind)) == 0 &&
			    strcasecmp(checks[k].name, r->name) == 0)
				status = checks[k].status, problem = checks[k].problem;
		char rel[ADDR_DOMAIN_MAX + 80];
		dom_relative(r->name, domain, rel, sizeof(rel));
		json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "record", label, "name", rel, "type", r->type,
				      "ttl", "Auto", "status", status, "value", r->value);
		if (o != NULL && strcmp(r->type, "MX") == 0)
			json_object_set_new(o, "priority", json_integer(r->priority));
		/* mailwerk's: what the last check found wrong, as `mailwerk dns check` says it */
		if (o != NULL && problem != NULL && strcmp(status, "verified") != 0)
			json_object_set_new(o, "problem", json_string(problem));
		json_array_append_new(out, o);
	}
	return out;
}

json_t *http_domain_records_json(const struct conf *cf, const struct users_domain *d,
				 const struct users_domain_check *checks, size_t nchecks, char *err, size_t err_size)
{
	struct domain_keys ks;
	char rp[ADDR_DOMAIN_MAX + 80];
	struct domain_dns_input in;
	if (domain_keys_load(cf->data_dir, d->name, &ks, err, err_size) != 0)
		return NULL;
	http_domain_input(cf, d, &ks, &in, rp, sizeof(rp));
	struct domain_dns *dd = domain_dns_new(&in);
	json_t *out = dd != NULL ? http_domain_records_of(dd, d->name, checks, nchecks) : NULL;
	domain_dns_free(dd);
	domain_keys_clear(&ks);
	if (out == NULL)
		snprintf(err, err_size, "out of memory");
	return out;
}

static json_t *dom_time_json(int64_t ms)
{
	char t[40];
	date_rfc3339_ms_format(ms, t, sizeof(t));
	return json_string(t);
}

bool http_domain_can_send(const struct users_domain *d)
{
	return d->sending && (!d->verify_first || d->ready);
}

/* Resend's Domain (the list's items); the single answers add object and records. */
json_t *http_domain_json(const struct users_domain *d)
{
	return json_pack("{s:s, s:s, s:s, s:o, s:s, s:{s:s, s:s}, s:b, s:b}", "id", d->id, "name", d->name, "status",
			 d->status, "created_at", dom_time_json(d->created_ms), "region", "self-hosted", "capabilities",
			 "sending", http_domain_can_send(d) ? "enabled" : "disabled", "receiving", d->receiving ? "enabled" : "disabled",
			 "open_tracking", 0, "click_tracking", 0);
}

static void dom_fail(struct dom_job *j, unsigned status, const char *name, const char *message)
{
	j->status = status;
	j->err_name = name;
	snprintf(j->err, sizeof(j->err), "%s", message);
}

static void dom_db_fail(struct dom_job *j, const char *err)
{
	log_error("event=api_domain_error error=\"%s\"", err);
	dom_fail(j, 503, "internal_server_error", "The domains cannot be read or changed now; try again later.");
}

/* The full answer for d (object, records). */
static void dom_answer_full(struct dom_job *j, const struct users_domain *d)
{
	struct users *u = j->srv->users;
	struct users_domain_check *checks;
	size_t n;
	const char *e;
	char err[256];
	if (users_domain_checks(u, d->name, &checks, &n, &e) != RESULT_OK) {
		dom_db_fail(j, e);
		return;
	}
	json_t *recs = http_domain_records_json(j->srv->conf, d, checks, n, err, sizeof(err));
	users_domain_checks_free(checks, n);
	if (recs == NULL) {
		dom_db_fail(j, err);
		return;
	}
	j->body = http_domain_json(d);
	json_object_set_new(j->body, "object", json_string("domain"));
	json_object_set_new(j->body, "records", recs);
}

static void dom_created(struct dom_job *j, const struct users_domain *d);

/* POST /domains on the worker: the local domain, then its DKIM key unless one signs already (a
 * domain given back to the API after `mailwerk domain add` + `dkim keygen` keeps its key). The
 * signer makes the key between two rounds of this (dom_done); the second only answers. */
static void dom_create(struct dom_job *j)
{
	struct users *u = j->srv->users;
	const struct conf *cf = j->srv->conf;
	const char *e;
	struct users_domain d;
	if (j->key_made) {
		if (users_domain_get(u, j->name, &d, &e) != RESULT_OK)
			dom_db_fail(j, e);
		else
			dom_created(j, &d);
		return;
	}
	enum result r = users_domain_add(u, j->key, &e);
	if (r == RESULT_PERMFAIL) {
		dom_fail(j, users_domain_get(u, j->key, &d, &e) == RESULT_OK ? 409 : 422, "validation_error", e);
		if (j->status == 409)
			snprintf(j->err, sizeof(j->err), "The domain %s exists already.", d.name);
		return;
	}
	if (r != RESULT_OK || users_domain_get(u, j->key, &d, &e) != RESULT_OK) {
		dom_db_fail(j, e);
		return;
	}
	if (users_domain_update(u, d.name, j->return_path, j->sending, j->receiving, cf->api_verify_before_sending ? 1 : 0,
				&e) != RESULT_OK ||
	    users_domain_get(u, d.name, &d, &e) != RESULT_OK) {
		dom_db_fail(j, e);
		return;
	}
	struct domain_keys ks;
	char err[256];
	if (domain_keys_load(cf->data_dir, d.name, &ks, err, sizeof(err)) != 0) {
		dom_db_fail(j, err);
		return;
	}
	size_t have = ks.n;
	domain_keys_clear(&ks);
	snprintf(j->name, sizeof(j->name), "%s", d.name);
	if (have == 0) {
		j->need_key = true; /* made by the signer (dom_done), then the answer (dom_created) */
		return;
	}
	dom_created(j, &d);
}

/* The answer to POST /domains, once the domain has its key. */
static void dom_created(struct dom_job *j, const struct users_domain *d)
{
	log_info("event=api_domain_created domain=%s id=%s", d->name, d->id);
	dom_answer_full(j, d);
	if (j->body != NULL)
		json_object_del(j->body, "object"); /* CreateDomainResponseSuccess has none */
}

static void dom_list(struct dom_job *j)
{
	struct users_domain *list;
	size_t n;
	bool more;
	const char *e;
	enum result r = users_domain_page(j->srv->users, j->limit, j->after[0] ? j->after : NULL,
					  j->before[0] ? j->before : NULL, &list, &n, &more, &e);
	if (r == RESULT_PERMFAIL) {
		dom_fail(j, 422, "validation_error", "The cursor is not the id of a domain.");
		return;
	}
	if (r != RESULT_OK) {
		dom_db_fail(j, e);
		return;
	}
	json_t *data = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(data, http_domain_json(&list[i]));
	free(list);
	j->body = json_pack("{s:s, s:b, s:o}", "object", "list", "has_more", more, "data", data);
}

static void dom_work(void *arg)
{
	struct dom_job *j = arg;
	struct users *u = j->srv->users;
	struct users_domain d;
	const char *e;
	if (j->kind == DOM_CREATE) {
		dom_create(j);
		return;
	}
	if (j->kind == DOM_LIST) {
		dom_list(j);
		return;
	}
	enum result r = users_domain_get(u, j->key, &d, &e);
	if (r == RESULT_PERMFAIL) {
		dom_fail(j, 404, "not_found", "Domain not found.");
		return;
	}
	if (r != RESULT_OK) {
		dom_db_fail(j, e);
		return;
	}
	switch (j->kind) {
	case DOM_GET:
		dom_answer_full(j, &d);
		break;
	case DOM_UPDATE:
		if (users_domain_update(u, d.name, NULL, j->sending, j->receiving, -1, &e) != RESULT_OK)
			dom_db_fail(j, e);
		else
			j->body = json_pack("{s:s, s:s}", "object", "domain", "id", d.id);
		break;
	case DOM_DELETE:
		r = users_domain_del(u, d.name, &e);
		if (r == RESULT_PERMFAIL)
			dom_fail(j, 409, "validation_error", e); /* users or aliases still there */
		else if (r != RESULT_OK)
			dom_db_fail(j, e);
		else
			j->body = json_pack("{s:s, s:s, s:b}", "object", "domain", "id", d.id, "deleted", 1);
		if (r == RESULT_OK)
			log_info("event=api_domain_deleted domain=%s id=%s", d.name, d.id);
		break;
	case DOM_VERIFY:
		if (users_domain_set_status(u, d.name, "pending", &e) != RESULT_OK) {
			dom_db_fail(j, e);
			break;
		}
		if ((j->verify = http_domain_verify_new(j->srv->conf, &d, j->err, sizeof(j->err))) == NULL) {
			dom_db_fail(j, j->err);
			break;
		}
		j->body = json_pack("{s:s, s:s}", "object", "domain", "id", d.id);
		break;
	default:
		break;
	}
}

static void dom_done(void *arg);

static void dom_key_made(void *arg, enum signer_result r, bool active, const char *error)
{
	struct dom_job *j = arg;
	j->need_key = false;
	if (r != SIGNER_SIGNED) {
		dom_db_fail(j, error);
		dom_done(j);
		return;
	}
	j->key_made = true;
	worker_pool_submit(j->srv->workers, dom_work, dom_done, j);
}

static void dom_done(void *arg)
{
	struct dom_job *j = arg;
	if (j->need_key && j->status == 0) {
		/* as mailwerk init: RSA-2048, the selector naming the month so a rotation gets a new one;
		 * made by the signer, which alone holds the private keys */
		struct signer_make k = {.type = DKIM_KEY_RSA, .bits = 2048, .when_first = true};
		time_t now = time(NULL);
		struct tm tm;
		gmtime_r(&now, &tm);
		snprintf(k.domain, sizeof(k.domain), "%.253s", j->name);
		snprintf(k.selector, sizeof(k.selector), "mw%04d%02d", tm.tm_year + 1900, tm.tm_mon + 1);
		signer_client_make_key(j->srv->signer, &k, dom_key_made, j);
		return;
	}
	struct http_session *s = http_session_find(j->srv, j->session_id);
	if (j->verify != NULL)
		http_domains_verify_start(j->api, j->verify); /* the answer does not wait for DNS */
	if (s != NULL) {
		if (j->status != 0)
			http_respond_json(s, j->status, http_error_json(j->status, j->err_name, j->err), NULL);
		else if (j->body == NULL)
			http_respond_error(s, 500, "internal_server_error", "Out of memory.");
		else
			http_respond_json(s, j->kind == DOM_CREATE ? 201 : 200, j->body, NULL), j->body = NULL;
	}
	json_decref(j->body);
	free(j);
}

/* A job for the call; NULL (answered) when there is no memory or {id} cannot be a domain's. */
static struct dom_job *dom_job_new(struct http_call *c, enum dom_kind kind)
{
	bool with_id = kind != DOM_CREATE && kind != DOM_LIST;
	if (with_id && (c->param[0] == '\0' || strlen(c->param) > ADDR_DOMAIN_MAX)) {
		http_respond_error(c->s, 404, "not_found", "Domain not found.");
		return NULL;
	}
	struct dom_job *j = calloc(1, sizeof(*j));
	if (j == NULL) {
		http_respond_error(c->s, 500, "internal_server_error", "Out of memory.");
		return NULL;
	}
	j->srv = c->s->srv;
	j->api = c->api;
	j->session_id = c->s->conn.id;
	j->kind = kind;
	j->sending = j->receiving = -1;
	if (with_id)
		memcpy(j->key, c->param, strlen(c->param) + 1); /* its length checked above */
	return j;
}

static void dom_submit(struct http_call *c, struct dom_job *j)
{
	worker_pool_submit(c->s->srv->workers, dom_work, dom_done, j);
}

/* ---- checking requests ---- */

/* capabilities: {"sending": "enabled"|"disabled", "receiving": ...}, each optional. NULL when
 * right, else the sentence for the 422. */
static const char *dom_capabilities(const json_t *v, int *sending_r, int *receiving_r)
{
	if (v == NULL || json_is_null(v))
		return NULL;
	if (!json_is_object(v))
		return "The `capabilities` field must be an object.";
	const char *names[2] = {"sending", "receiving"};
	int *outs[2] = {sending_r, receiving_r};
	for (int i = 0; i < 2; i++) {
		const json_t *x = json_object_get(v, names[i]);
		const char *s = json_string_value(x);
		if (x == NULL || json_is_null(x))
			continue;
		if (s != NULL && strcmp(s, "enabled") == 0)
			*outs[i] = 1;
		else if (s != NULL && strcmp(s, "disabled") == 0)
			*outs[i] = 0;
		else
			return i == 0 ? "The `capabilities.sending` field must be `enabled` or `disabled`."
				      : "The `capabilities.receiving` field must be `enabled` or `disabled`.";
	}
	return NULL;
}

/* RFC 1035 §2.3.1: a label of letters, digits and hyphens, at most 63 octets, a letter or digit at
 * either end (RFC 1123 §2.1 allows a leading digit). One label, so that the MX reads the domain
 * after it (events/feedback.h). */
static bool dom_label_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '-'))
			return false;
	return true;
}

/* ---- the handlers ---- */

void http_domains_create(struct http_call *c)
{
	json_t *doc = http_body_object(c, true);
	if (doc == NULL)
		return;
	const json_t *name = json_object_get(doc, "name"), *rp = json_object_get(doc, "custom_return_path");
	const char *problem = NULL, *err_name = "validation_error";
	int sending = -1, receiving = -1;
	if (name == NULL || json_is_null(name))
		problem = "Missing `name` field.", err_name = "missing_required_field";
	else if (!json_is_string(name) || json_string_length(name) == 0 || json_string_length(name) > ADDR_DOMAIN_MAX)
		problem = "The `name` field must be a domain name.";
	else if (rp != NULL && !json_is_null(rp) && !json_is_string(rp))
		problem = "The `custom_return_path` field must be a string.";
	else if (rp != NULL && json_is_string(rp) && !dom_label_ok(json_string_value(rp)))
		problem = "The `custom_return_path` field must be one DNS label (letters, digits and '-', at most 63, "
			  "not starting or ending with '-'): API mail from the domain then has the return path "
			  "bounces+ID@LABEL.DOMAIN.";
	else
		problem = dom_capabilities(json_object_get(doc, "capabilities"), &sending, &receiving);
	struct dom_job *j = problem == NULL ? dom_job_new(c, DOM_CREATE) : NULL;
	if (j != NULL) {
		snprintf(j->key, sizeof(j->key), "%s", json_string_value(name));
		if (json_is_string(rp) && strcasecmp(json_string_value(rp), c->s->conf->api_return_path_label) != 0)
			for (size_t i = 0; i < json_string_length(rp) && i + 1 < sizeof(j->return_path); i++)
				j->return_path[i] = (char)tolower((unsigned char)json_string_value(rp)[i]);
		j->sending = sending;
		j->receiving = receiving;
	}
	json_decref(doc);
	if (problem != NULL) {
		http_respond_error(c->s, 422, err_name, "%s", problem);
		return;
	}
	if (j != NULL)
		dom_submit(c, j);
}

void http_domains_list(struct http_call *c)
{
	unsigned n;
	char after[USERS_DOMAIN_ID_LEN + 1], before[USERS_DOMAIN_ID_LEN + 1];
	if (!http_page_parse(c, &n, after, sizeof(after), before, sizeof(before)))
		return;
	struct dom_job *j = dom_job_new(c, DOM_LIST);
	if (j == NULL)
		return;
	j->limit = n;
	memcpy(j->after, after, sizeof(after));
	memcpy(j->before, before, sizeof(before));
	dom_submit(c, j);
}

void http_domains_get(struct http_call *c)
{
	struct dom_job *j = dom_job_new(c, DOM_GET);
	if (j != NULL)
		dom_submit(c, j);
}

void http_domains_update(struct http_call *c)
{
	json_t *doc = http_body_object(c, true);
	if (doc == NULL)
		return;
	int sending = -1, receiving = -1;
	const char *problem = dom_capabilities(json_object_get(doc, "capabilities"), &sending, &receiving);
	/* open and click tracking would rewrite the mail; this server does neither */
	const char *track[2] = {"open_tracking", "click_tracking"};
	for (int i = 0; problem == NULL && i < 2; i++) {
		const json_t *v = json_object_get(doc, track[i]);
		if (v != NULL && !json_is_null(v) && !json_is_false(v))
			problem = i == 0 ? "Open tracking is not offered by this server: `open_tracking` must be false."
					 : "Click tracking is not offered by this server: `click_tracking` must be false.";
	}
	struct dom_job *j = problem == NULL ? dom_job_new(c, DOM_UPDATE) : NULL;
	json_decref(doc);
	if (problem != NULL) {
		http_respond_error(c->s, 422, "validation_error", "%s", problem);
		return;
	}
	if (j != NULL) {
		j->sending = sending;
		j->receiving = receiving;
		dom_submit(c, j);
	}
}

void http_domains_delete(struct http_call *c)
{
	struct dom_job *j = dom_job_new(c, DOM_DELETE);
	if (j != NULL)
		dom_submit(c, j);
}

void http_domains_verify(struct http_call *c)
{
	struct dom_job *j = dom_job_new(c, DOM_VERIFY);
	if (j != NULL)
		dom_submit(c, j);
}
