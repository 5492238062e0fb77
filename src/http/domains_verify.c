/* domains_verify.c — runs a domain's DNS check for the API: made on a worker (the keys are files),
 * asked on the loop (net/dns_drive answers domain_dns_check_step's questions through the server's
 * resolver), stored on a worker. The answer to POST /domains/{id}/verify has gone out before the
 * first question: a check may take as long as DNS does. */
#include "http/domains_verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "conf/conf.h"
#include "events/webhook_sender.h"
#include "events/webhooks_store.h"
#include "http/api.h"
#include "net/dns_drive.h"
#include "server/server.h"
#include "util/date.h"
#include "util/log.h"
#include "util/worker.h"

struct domain_verify {
	struct domain_verify *next, **pprev; /* on the API's list while its questions run */
	struct server *srv;
	struct webhooks_store *webhooks; /* where domain.updated goes */
	struct users_domain dom;        /* as it was before the check (its status too) */
	struct domain_keys keys;
	char return_path[ADDR_DOMAIN_MAX + 80];
	struct domain_dns *dd;
	struct dns_drive *drive;
	bool exceeded;
	/* the stored outcome */
	const char *status;
	char err[256];
	bool failed;
	unsigned events; /* domain.updated deliveries queued */
};

const char *http_domain_status(const struct domain_dns *dd)
{
	size_t shown = 0, verified = 0;
	for (size_t i = 0; i < domain_dns_count(dd); i++) {
		const struct domain_rec *r = domain_dns_rec(dd, i);
		if (!http_domain_rec_shown(r->kind))
			continue;
		shown++;
		verified += r->status == DOMAIN_REC_VERIFIED;
	}
	if (shown > 0 && verified == shown)
		return "verified";
	return verified > 0 ? "partially_verified" : "failed";
}

struct domain_verify *http_domain_verify_new(const struct conf *cf, const struct users_domain *d, char *err,
					     size_t err_size)
{
	struct domain_verify *v = calloc(1, sizeof(*v));
	if (v == NULL) {
		snprintf(err, err_size, "out of memory");
		return NULL;
	}
	v->dom = *d;
	if (domain_keys_load(cf->data_dir, d->name, &v->keys, err, err_size) != 0) {
		free(v);
		return NULL;
	}
	struct domain_dns_input in;
	http_domain_input(cf, d, &v->keys, &in, v->return_path, sizeof(v->return_path));
	if ((v->dd = domain_dns_new(&in)) == NULL) {
		snprintf(err, err_size, "out of memory");
		http_domain_verify_free(v);
		return NULL;
	}
	return v;
}

void http_domain_verify_free(struct domain_verify *v)
{
	if (v == NULL)
		return;
	domain_dns_free(v->dd);
	domain_keys_clear(&v->keys);
	free(v);
}

static void verify_unlink(struct domain_verify *v)
{
	if (v->pprev == NULL)
		return;
	*v->pprev = v->next;
	if (v->next != NULL)
		v->next->pprev = v->pprev;
	v->pprev = NULL;
	v->next = NULL;
}

/* domain.updated in Resend's shape ({type, created_at, data: the domain with its records}) for every
 * webhook that asked for it: the status has changed. */
static void verify_announce(struct domain_verify *v, const struct users_domain_check *c, size_t n)
{
	char err[256], at[40];
	struct users_domain d = v->dom;
	snprintf(d.status, sizeof(d.status), "%s", v->status);
	json_t *data = http_domain_json(&d);
	json_t *recs = http_domain_records_of(v->dd, d.name, c, n); /* the records just checked */
	int64_t now = date_now_ms();
	date_rfc3339_ms_format(now, at, sizeof(at));
	char *payload = NULL;
	if (data != NULL && recs != NULL) {
		json_object_set_new(data, "records", recs), recs = NULL;
		json_t *body = json_pack("{s:s, s:s, s:O}", "type", "domain.updated", "created_at", at, "data", data);
		payload = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
		json_decref(body);
	}
	json_decref(data);
	json_decref(recs);
	if (payload == NULL || v->webhooks == NULL ||
	    webhooks_store_enqueue(v->webhooks, "domain.updated", d.id, payload, now, &v->events, err, sizeof(err)) != 0)
		log_error("event=api_domain_event_error domain=%s error=\"%s\"", d.name,
			  payload == NULL ? "out of memory" : v->webhooks == NULL ? "no webhook store" : err);
	free(payload);
}

/* The worker's half: the records' outcome and the domain's status, in one transaction. */
static void verify_store_work(void *arg)
{
	struct domain_verify *v = arg;
	size_t n = domain_dns_count(v->dd);
	struct users_domain_check *c = calloc(n > 0 ? n : 1, sizeof(*c));
	const char *e = "out of memory";
	v->status = v->exceeded ? "failed" : http_domain_status(v->dd);
	v->failed = c == NULL;
	for (size_t i = 0; c != NULL && i < n; i++) {
		const struct domain_rec *r = domain_dns_rec(v->dd, i);
		snprintf(c[i].kind, sizeof(c[i].kind), "%s", domain_rec_kind_str(r->kind));
		snprintf(c[i].name, sizeof(c[i].name), "%s", r->name);
		snprintf(c[i].status, sizeof(c[i].status), "%s", domain_rec_status_str(r->status));
		c[i].problem = r->problem; /* borrowed: not freed below */
	}
	/* what sending needs: the SPF records receivers check (the domain's and the return path's, RFC
	 * 7208 §2.4 checks MAIL FROM) and a published key for the signature */
	bool ready = !v->exceeded && domain_dns_kind_verified(v->dd, DOMAIN_REC_SPF) &&
		     domain_dns_kind_verified(v->dd, DOMAIN_REC_RETURN_SPF) &&
		     domain_dns_kind_verified(v->dd, DOMAIN_REC_DKIM);
	v->dom.ready = ready;
	if (c != NULL && users_domain_checks_store(v->srv->users, v->dom.name, v->status, ready, date_now_ms(), c, n,
						   &e) != RESULT_OK)
		v->failed = true;
	if (v->failed)
		snprintf(v->err, sizeof(v->err), "%s", e);
	else if (strcmp(v->status, v->dom.status) != 0)
		verify_announce(v, c, n);
	free(c);
}

static void verify_store_done(void *arg)
{
	struct domain_verify *v = arg;
	if (v->failed)
		log_error("event=api_domain_check_error domain=%s error=\"%s\"", v->dom.name, v->err);
	else
		log_info("event=api_domain_checked domain=%s id=%s status=%s was=%s needed_bad=%u", v->dom.name,
			 v->dom.id, v->status, v->dom.status, domain_dns_needed_bad(v->dd));
	struct http_api *a = v->srv->http_api;
	if (v->events > 0 && a != NULL)
		webhook_sender_kick(a->webhooks);
	http_domain_verify_free(v);
}

static void verify_drive_done(void *arg, bool exceeded)
{
	struct domain_verify *v = arg;
	v->drive = NULL;
	v->exceeded = exceeded;
	verify_unlink(v);
	worker_pool_submit(v->srv->workers, verify_store_work, verify_store_done, v);
}

void http_domains_verify_start(struct http_api *a, struct domain_verify *v)
{
	if (v == NULL)
		return;
	v->srv = a->srv;
	v->webhooks = webhook_sender_store(a->webhooks);
	v->drive = dns_drive_start(a->srv->dns, domain_dns_check_step, v->dd, verify_drive_done, v);
	if (v->drive == NULL) {
		log_error("event=api_domain_check_error domain=%s reason=out_of_memory", v->dom.name);
		http_domain_verify_free(v);
		return;
	}
	v->next = a->verifies;
	if (v->next != NULL)
		v->next->pprev = &v->next;
	a->verifies = v;
	v->pprev = &a->verifies;
}

void http_domains_verify_cancel_all(struct http_api *a)
{
	while (a->verifies != NULL) {
		struct domain_verify *v = a->verifies;
		verify_unlink(v);
		dns_drive_cancel(v->drive);
		http_domain_verify_free(v);
	}
}

/* ---- the periodic re-check ---- */

#define RECHECK_MAX 256 /* domains one round checks; the rest wait for the next */

struct recheck_job {
	struct server *srv;
	struct domain_verify *v[RECHECK_MAX];
	size_t n;
};

/* Worker: a check for every domain whose status came from a check (or one cut short by a stop). */
static void recheck_work(void *arg)
{
	struct recheck_job *j = arg;
	char after[USERS_DOMAIN_ID_LEN + 1] = "";
	bool more = true;
	while (more && j->n < RECHECK_MAX) {
		struct users_domain *list;
		size_t n;
		const char *e;
		if (users_domain_page(j->srv->users, 100, after[0] ? after : NULL, NULL, &list, &n, &more, &e) !=
		    RESULT_OK) {
			log_error("event=api_domain_recheck_error error=\"%s\"", e);
			return;
		}
		for (size_t i = 0; i < n && j->n < RECHECK_MAX; i++) {
			char err[256];
			if (strcmp(list[i].status, "not_started") == 0)
				continue;
			if ((j->v[j->n] = http_domain_verify_new(j->srv->conf, &list[i], err, sizeof(err))) != NULL)
				j->n++;
			else
				log_error("event=api_domain_check_error domain=%s error=\"%s\"", list[i].name, err);
		}
		if (n > 0)
			memcpy(after, list[n - 1].id, sizeof(after));
		free(list);
	}
}

static void recheck_done(void *arg)
{
	struct recheck_job *j = arg;
	struct http_api *a = j->srv->http_api;
	for (size_t i = 0; i < j->n; i++) {
		if (a != NULL)
			http_domains_verify_start(a, j->v[i]);
		else
			http_domain_verify_free(j->v[i]); /* the API stopped meanwhile */
	}
	free(j);
}

static void recheck_arm(struct http_api *a, unsigned seconds)
{
	struct timeval tv = {(time_t)seconds, 0};
	evtimer_add(a->domain_timer, &tv);
}

static void recheck_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct server *srv = arg;
	struct http_api *a = srv->http_api;
	unsigned every = srv->conf->api_domain_recheck;
	if (a == NULL)
		return;
	struct recheck_job *j = every > 0 ? calloc(1, sizeof(*j)) : NULL;
	if (j != NULL) {
		j->srv = srv;
		worker_pool_submit(srv->workers, recheck_work, recheck_done, j);
	}
	/* 0 (off) looks again in a minute: a reload may turn it on */
	recheck_arm(a, every > 0 ? every : 60);
}

int http_domains_recheck_start(struct server *srv, struct http_api *a)
{
	a->domain_timer = evtimer_new(srv->base, recheck_tick, srv);
	if (a->domain_timer == NULL)
		return -1;
	unsigned every = srv->conf->api_domain_recheck;
	recheck_arm(a, every > 0 ? every : 60);
	return 0;
}

void http_domains_recheck_stop(struct http_api *a)
{
	if (a->domain_timer != NULL)
		event_free(a->domain_timer);
	a->domain_timer = NULL;
}
