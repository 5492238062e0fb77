/* mtasts_cache.c — the outbound MTA-STS policy cache: lookups within a budget, background checks
 * (TXT, then a fetch when the id is new), the store's rows, the refresh timer (mtasts_cache.h). */
#include "delivery/mtasts_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/rand.h>

#include "delivery/mtasts_fetch.h"
#include "delivery/mtasts_rules.h"
#include "delivery/mtasts_store.h"
#include "net/dns.h"
#include "net/http_client.h"
#include "util/log.h"
#include "util/worker.h"

#define BUCKETS 1024
#define REFRESH_PER_TICK 8

struct sts_job;

struct sts_entry {
	struct sts_entry *hnext;
	char domain[DNS_HOST_SIZE];
	struct mtasts_entry e; /* present: a valid policy is held */
	enum mtasts_mode mode;
	uint32_t max_age;
	char *mx; /* the patterns, each ended by '\n' */
	int64_t refresh_at;
	char failed_id[MTASTS_ID_MAX + 1]; /* the id whose fetch failed last, at failed_at */
	int64_t failed_at;
	struct sts_job *job;
};

/* One check of a domain: the TXT record, then maybe a fetch. Lookups wait on it. */
struct sts_job {
	struct mtasts_cache *c;
	struct sts_entry *en;
	uint64_t dns_id;
	struct mtasts_fetch *fetch;
	bool recheck, refresh;
	enum mtasts_txt_state txt;
	char txt_id[MTASTS_ID_MAX + 1];
	struct mtasts_lookup *waiters;
};

struct mtasts_lookup {
	struct mtasts_lookup *next, *prev; /* among its job's waiters */
	struct mtasts_cache *c;
	struct sts_job *job; /* NULL: answered by the timer alone (busy) */
	struct event *timer;
	mtasts_done_fn *done;
	void *arg;
	bool recheck;
	char domain[DNS_HOST_SIZE];
	char start_id[MTASTS_ID_MAX + 1]; /* the cached policy's id when the lookup began */
	const char *busy_reason;
};

/* A store write on its way to a worker (one at a time, in order). */
struct sts_write {
	struct sts_write *next;
	struct mtasts_cache *c;
	bool put;
	struct mtasts_store_row row;
	char *mx, *policy;
	enum result res;
	char error[256];
};

struct mtasts_cache {
	struct mtasts_cache_opts o;
	char data_dir[1024], ca_file[1024];
	struct event_base *base;
	struct dns *dns;
	struct http_client *http;
	struct mtasts_store *store;
	struct event *tick;
	struct sts_entry *buckets[BUCKETS];
	size_t count;
	unsigned running;
	bool stopped;
	struct sts_write *wq_head, *wq_tail;
	bool writing;
};

/* ---- entries ---- */

static unsigned bucket_of(const char *d)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (; *d; d++) {
		h ^= (unsigned char)*d;
		h *= 16777619u;
	}
	return h % BUCKETS;
}

static struct sts_entry *entry_find(struct mtasts_cache *c, const char *domain)
{
	for (struct sts_entry *e = c->buckets[bucket_of(domain)]; e != NULL; e = e->hnext)
		if (strcmp(e->domain, domain) == 0)
			return e;
	return NULL;
}

static void entry_remove(struct mtasts_cache *c, struct sts_entry *en)
{
	struct sts_entry **p = &c->buckets[bucket_of(en->domain)];
	while (*p != en)
		p = &(*p)->hnext;
	*p = en->hnext;
	c->count--;
	free(en->mx);
	free(en);
}

static void store_delete(struct mtasts_cache *c, const char *domain);

/* Makes room for one more entry: the one without a check that expires first goes (memory bound). */
static bool entry_make_room(struct mtasts_cache *c)
{
	if (c->count < MTASTS_CACHE_ENTRIES)
		return true;
	struct sts_entry *victim = NULL;
	for (size_t b = 0; b < BUCKETS; b++)
		for (struct sts_entry *e = c->buckets[b]; e != NULL; e = e->hnext)
			if (e->job == NULL && (victim == NULL || !e->e.present || e->e.expires < victim->e.expires) &&
			    !(victim != NULL && !victim->e.present))
				victim = e;
	if (victim == NULL)
		return false;
	if (victim->e.present)
		store_delete(c, victim->domain);
	entry_remove(c, victim);
	return true;
}

static struct sts_entry *entry_get(struct mtasts_cache *c, const char *domain)
{
	struct sts_entry *en = entry_find(c, domain);
	if (en != NULL || !entry_make_room(c))
		return en;
	if ((en = calloc(1, sizeof(*en))) == NULL)
		return NULL;
	snprintf(en->domain, sizeof(en->domain), "%s", domain);
	unsigned b = bucket_of(domain);
	en->hnext = c->buckets[b];
	c->buckets[b] = en;
	c->count++;
	return en;
}

static double jitter(void)
{
	uint32_t v = 0;
	if (RAND_bytes((unsigned char *)&v, sizeof(v)) != 1)
		return 0.5;
	return (double)v / 4294967296.0;
}

/* Takes a parsed policy into en, valid from fetched on. */
static bool entry_set(struct sts_entry *en, const char *id, const struct mtasts_policy *p, int64_t fetched)
{
	size_t len = 1;
	for (size_t i = 0; i < p->mx_count; i++)
		len += strlen(p->mx[i]) + 1;
	char *mx = malloc(len);
	if (mx == NULL)
		return false;
	size_t at = 0;
	for (size_t i = 0; i < p->mx_count; i++)
		at += (size_t)sprintf(mx + at, "%s\n", p->mx[i]);
	mx[at] = '\0';
	free(en->mx);
	en->mx = mx;
	en->mode = p->mode;
	en->max_age = p->max_age; /* capped at MTASTS_MAX_AGE_MAX by the parser */
	en->e.present = true;
	snprintf(en->e.id, sizeof(en->e.id), "%s", id);
	en->e.fetched = fetched;
	en->e.expires = fetched + (int64_t)p->max_age;
	en->refresh_at = mtasts_rules_refresh_at(&en->e, jitter());
	return true;
}

static void entry_clear(struct sts_entry *en)
{
	en->e.present = false;
	free(en->mx);
	en->mx = NULL;
}

/* The policy en holds, as a struct mtasts_policy. */
static void entry_policy(const struct sts_entry *en, struct mtasts_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->mode = en->mode;
	p->max_age = en->max_age;
	for (const char *s = en->mx != NULL ? en->mx : ""; *s != '\0' && p->mx_count < MTASTS_MX_MAX;) {
		const char *nl = strchr(s, '\n');
		size_t n = nl != NULL ? (size_t)(nl - s) : strlen(s);
		if (n > 0 && n < MTASTS_MX_SIZE) {
			memcpy(p->mx[p->mx_count], s, n);
			p->mx[p->mx_count++][n] = '\0';
		}
		s += n + (nl != NULL);
	}
}

/* ---- the store, in order, off the loop ---- */

static void write_next(struct mtasts_cache *c);

static void write_run(void *arg)
{
	struct sts_write *w = arg;
	const char *err = "";
	w->row.mx = w->mx;
	w->row.policy = w->policy;
	w->res = w->put ? mtasts_store_put(w->c->store, &w->row, &err) : mtasts_store_delete(w->c->store, w->row.domain, &err);
	if (w->res != RESULT_OK)
		snprintf(w->error, sizeof(w->error), "%s", err);
}

static void write_free(struct sts_write *w)
{
	free(w->mx);
	free(w->policy);
	free(w);
}

/* Logs a failed write and frees it. */
static void write_finish(struct sts_write *w)
{
	if (w->res != RESULT_OK) {
		char err[LOG_VALUE_SIZE(256)];
		log_warn("event=mta_sts_store domain=%s reason=store_error error=%s", w->row.domain,
			 log_safe(err, sizeof(err), w->error, (unsigned)strlen(w->error)));
	}
	write_free(w);
}

static void write_done(void *arg)
{
	struct sts_write *w = arg;
	struct mtasts_cache *c = w->c;
	write_finish(w);
	c->writing = false;
	write_next(c);
}

static void write_next(struct mtasts_cache *c)
{
	while (!c->writing && c->wq_head != NULL) {
		struct sts_write *w = c->wq_head;
		c->wq_head = w->next;
		if (c->wq_head == NULL)
			c->wq_tail = NULL;
		if (c->o.workers != NULL && !c->stopped) {
			c->writing = true;
			worker_pool_submit(c->o.workers, write_run, write_done, w);
			return;
		}
		/* the CLI, or the last writes at a stop: here and now */
		write_run(w);
		write_finish(w);
	}
}

static void write_queue(struct mtasts_cache *c, struct sts_write *w)
{
	w->c = c;
	if (c->wq_tail != NULL)
		c->wq_tail->next = w;
	else
		c->wq_head = w;
	c->wq_tail = w;
	write_next(c);
}

static void store_delete(struct mtasts_cache *c, const char *domain)
{
	struct sts_write *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return; /* the row stays until the next change; at load it is judged again */
	snprintf(w->row.domain, sizeof(w->row.domain), "%s", domain);
	write_queue(c, w);
}

static void store_put(struct mtasts_cache *c, const struct sts_entry *en, const char *text, size_t len)
{
	struct sts_write *w = calloc(1, sizeof(*w));
	if (w == NULL || (w->mx = strdup(en->mx != NULL ? en->mx : "")) == NULL || (w->policy = malloc(len + 1)) == NULL) {
		if (w != NULL)
			write_free(w);
		return;
	}
	memcpy(w->policy, text, len);
	w->policy[len] = '\0';
	w->put = true;
	snprintf(w->row.domain, sizeof(w->row.domain), "%s", en->domain);
	snprintf(w->row.id, sizeof(w->row.id), "%s", en->e.id);
	w->row.fetched = en->e.fetched;
	w->row.expires = en->e.expires;
	snprintf(w->row.mode, sizeof(w->row.mode), "%s", mtasts_mode_str(en->mode));
	w->row.policy_len = len;
	write_queue(c, w);
}

/* ---- answers ---- */

struct sts_outcome {
	enum tls_decide_sts_state state; /* with a valid policy held; without one NONE unless PENDING/FAILED */
	const char *reason;
	const char *why;
	bool fetched_now; /* the policy held was fetched by this check */
	bool txt_checked;
	const char *txt_id;
};

static void lookup_free(struct mtasts_lookup *l)
{
	if (l->timer != NULL)
		event_free(l->timer);
	free(l);
}

static void lookup_unlink(struct mtasts_lookup *l)
{
	if (l->job == NULL)
		return;
	if (l->prev != NULL)
		l->prev->next = l->next;
	else
		l->job->waiters = l->next;
	if (l->next != NULL)
		l->next->prev = l->prev;
	l->job = NULL;
	l->next = l->prev = NULL;
}

/* Calls l's done with what the cache holds now, then frees l. */
static void lookup_answer(struct mtasts_lookup *l, const struct sts_outcome *o)
{
	struct mtasts_cache *c = l->c;
	struct sts_entry *en = entry_find(c, l->domain);
	int64_t now = (int64_t)time(NULL);
	struct mtasts_policy *p = NULL;
	struct mtasts_answer a = {
		.domain = l->domain,
		.state = TLS_DECIDE_STS_NONE,
		.id = "",
		.txt_checked = o->txt_checked,
		.txt_id = o->txt_id != NULL ? o->txt_id : "",
		.reason = o->reason,
		.why = o->why != NULL ? o->why : "",
	};
	if (en != NULL && mtasts_entry_valid(&en->e, now) && (p = malloc(sizeof(*p))) != NULL) {
		entry_policy(en, p);
		a.policy = p;
		a.state = o->state;
		a.id = en->e.id;
		a.fetched = en->e.fetched;
		a.expires = en->e.expires;
		a.from_cache = !o->fetched_now;
	} else if (o->state == TLS_DECIDE_STS_PENDING || o->state == TLS_DECIDE_STS_FAILED) {
		a.state = o->state;
	}
	/* §5.1: a new id published since the message's policy was cached */
	a.id_changed = l->recheck && o->txt_checked && a.txt_id[0] != '\0' && strcmp(a.txt_id, l->start_id) != 0;
	l->done(l->arg, &a);
	free(p);
	lookup_free(l);
}

static void lookup_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mtasts_lookup *l = arg;
	if (l->job == NULL) {
		struct sts_outcome o = {.state = TLS_DECIDE_STS_POLICY, .reason = l->busy_reason};
		lookup_answer(l, &o);
		return;
	}
	/* the budget is spent: the cached policy (or none) while the check goes on */
	lookup_unlink(l);
	struct sts_outcome o = {.state = TLS_DECIDE_STS_PENDING, .reason = "pending"};
	lookup_answer(l, &o);
}

/* ---- checks ---- */

static void job_end(struct sts_job *j, const struct sts_outcome *o)
{
	struct mtasts_cache *c = j->c;
	struct sts_entry *en = j->en;
	struct mtasts_lookup *w = j->waiters;
	char txt_id[MTASTS_ID_MAX + 1];
	snprintf(txt_id, sizeof(txt_id), "%s", j->txt_id);
	struct sts_outcome out = *o;
	out.txt_id = txt_id;
	for (struct mtasts_lookup *l = w; l != NULL; l = l->next)
		l->job = NULL;
	if (j->fetch != NULL)
		mtasts_fetch_cancel(j->fetch);
	if (j->dns_id != 0)
		dns_cancel(c->dns, j->dns_id);
	en->job = NULL;
	c->running--;
	free(j);
	/* an entry that holds nothing worth keeping goes (a failure marker is worth keeping) */
	if (!en->e.present && en->failed_at == 0)
		entry_remove(c, en);
	while (w != NULL) {
		struct mtasts_lookup *next = w->next;
		w->next = w->prev = NULL;
		lookup_answer(w, &out);
		w = next;
	}
}

static void job_fetched(void *arg, const struct mtasts_fetch_result *r)
{
	struct sts_job *j = arg;
	struct mtasts_cache *c = j->c;
	struct sts_entry *en = j->en;
	j->fetch = NULL;
	int64_t now = (int64_t)time(NULL);
	enum mtasts_keep keep = mtasts_rules_after_fetch(&en->e, r->error == MTASTS_FETCH_OK ? r->policy : NULL, now);
	struct sts_outcome o = {.txt_checked = true};
	char why[LOG_VALUE_SIZE(200)];
	log_safe(why, sizeof(why), r->why, (unsigned)strnlen(r->why, 200));
	switch (keep) {
	case MTASTS_KEEP_STORE:
		if (!entry_set(en, j->txt_id, r->policy, now)) {
			o = (struct sts_outcome){.state = TLS_DECIDE_STS_FAILED, .reason = "fetch_failed", .why = "out of memory",
						 .txt_checked = true};
			break;
		}
		en->failed_id[0] = '\0';
		en->failed_at = 0;
		store_put(c, en, r->text, r->text_len);
		o.state = TLS_DECIDE_STS_POLICY;
		o.reason = "fetched";
		o.fetched_now = true;
		log_info("event=mta_sts_fetch domain=%s result=ok id=%s mode=%s max_age=%u mx=%zu elapsed_ms=%u%s",
			 en->domain, en->e.id, mtasts_mode_str(en->mode), (unsigned)en->max_age, r->policy->mx_count,
			 r->elapsed_ms, r->policy->max_age_capped ? " max_age_capped=yes" : "");
		break;
	case MTASTS_KEEP_CLEAR:
		/* RFC 8461 §5: mode none retires the policy; the cache forgets it */
		if (en->e.present)
			store_delete(c, en->domain);
		entry_clear(en);
		en->failed_at = 0;
		o.state = TLS_DECIDE_STS_NONE;
		o.reason = "mode_none";
		log_info("event=mta_sts_fetch domain=%s result=ok id=%s mode=none elapsed_ms=%u", en->domain, j->txt_id,
			 r->elapsed_ms);
		break;
	case MTASTS_KEEP_KEEP:
	case MTASTS_KEEP_DROP:
		if (keep == MTASTS_KEEP_DROP && en->e.present) {
			store_delete(c, en->domain);
			entry_clear(en);
		}
		snprintf(en->failed_id, sizeof(en->failed_id), "%s", j->txt_id);
		en->failed_at = now;
		o.state = TLS_DECIDE_STS_FAILED;
		o.reason = "fetch_failed";
		o.why = r->why;
		log_warn("event=mta_sts_fetch domain=%s result=failed reason=%s status=%ld id=%s cached=%s elapsed_ms=%u "
			 "error=%s",
			 en->domain, mtasts_fetch_error_str(r->error), r->status, j->txt_id,
			 keep == MTASTS_KEEP_KEEP ? "kept" : "none", r->elapsed_ms, why);
		break;
	}
	job_end(j, &o);
}

static void job_fetch(struct sts_job *j)
{
	struct mtasts_cache *c = j->c;
	struct mtasts_fetch_opts fo = {
		.dns = c->dns,
		.http = c->http,
		.ca_file = c->ca_file,
		.allow_private = c->o.allow_private,
		.timeout_ms = c->o.fetch_timeout_ms,
	};
	char err[256];
	if ((j->fetch = mtasts_fetch_start(&fo, j->en->domain, job_fetched, j, err, sizeof(err))) == NULL) {
		struct mtasts_fetch_result r = {.error = MTASTS_FETCH_HTTP, .why = err};
		job_fetched(j, &r);
	}
}

static void job_txt_cb(void *arg, uint64_t id, const struct dns_result *r)
{
	struct sts_job *j = arg;
	struct sts_entry *en = j->en;
	j->dns_id = 0;
	struct mtasts_txt txt;
	const char *err = "";
	/* RFC 8461 §3.1: only records beginning with v=STSv1 count; two or more mean no policy */
	if (r->status == DNS_STATUS_OK && mtasts_txt_select(r->txts, r->count, &txt, &err) == MTASTS_OK) {
		j->txt = MTASTS_TXT_ONE;
		snprintf(j->txt_id, sizeof(j->txt_id), "%s", txt.id);
	} else if (r->status == DNS_STATUS_OK || r->status == DNS_STATUS_NXDOMAIN || r->status == DNS_STATUS_NODATA) {
		j->txt = MTASTS_TXT_NONE;
	} else {
		j->txt = MTASTS_TXT_ERROR;
		err = r->why;
	}
	int64_t now = (int64_t)time(NULL);
	enum mtasts_next next = mtasts_rules_after_txt(&en->e, j->txt, j->txt_id, now);
	/* a refresh fetches the policy again even under the same id: only a fetch renews max_age */
	if (j->refresh && j->txt == MTASTS_TXT_ONE)
		next = MTASTS_NEXT_FETCH;
	if (next == MTASTS_NEXT_FETCH && !j->recheck && !j->refresh && en->failed_at != 0 &&
	    strcmp(en->failed_id, j->txt_id) == 0 && now < en->failed_at + MTASTS_CACHE_RETRY_S) {
		/* this id's fetch failed a moment ago: as if it had failed again */
		struct sts_outcome o = {.state = TLS_DECIDE_STS_FAILED, .reason = "fetch_failed",
					.why = "the last fetch for this id failed; not tried again yet", .txt_checked = true};
		job_end(j, &o);
		return;
	}
	if (next == MTASTS_NEXT_FETCH) {
		job_fetch(j);
		return;
	}
	if (next == MTASTS_NEXT_NONE && en->e.present) {
		/* expired: §3.2 max_age is how long it may be used */
		store_delete(j->c, en->domain);
		entry_clear(en);
	}
	struct sts_outcome o = {
		.state = TLS_DECIDE_STS_POLICY,
		.reason = j->txt == MTASTS_TXT_ONE ? "cached" : j->txt == MTASTS_TXT_NONE ? "txt_none" : "txt_error",
		.why = err,
		.txt_checked = true,
	};
	job_end(j, &o);
}

static struct sts_job *job_start(struct mtasts_cache *c, struct sts_entry *en, bool recheck, bool refresh)
{
	struct sts_job *j = calloc(1, sizeof(*j));
	if (j == NULL)
		return NULL;
	j->c = c;
	j->en = en;
	j->recheck = recheck;
	j->refresh = refresh;
	char name[DNS_HOST_SIZE + 16];
	snprintf(name, sizeof(name), "_mta-sts.%s", en->domain);
	if ((j->dns_id = dns_lookup(c->dns, name, DNS_RRTYPE_TXT, job_txt_cb, j)) == 0) {
		free(j);
		return NULL;
	}
	en->job = j;
	c->running++;
	return j;
}

/* ---- the API ---- */

static struct mtasts_lookup *lookup_start(struct mtasts_cache *c, const char *domain, unsigned budget_ms,
					  mtasts_done_fn *done, void *arg, bool recheck)
{
	char d[DNS_HOST_SIZE];
	size_t n = strlen(domain);
	if (n > 0 && domain[n - 1] == '.')
		n--;
	if (c->stopped || n == 0 || n >= sizeof(d))
		return NULL;
	for (size_t i = 0; i < n; i++)
		d[i] = (char)(domain[i] >= 'A' && domain[i] <= 'Z' ? domain[i] - 'A' + 'a' : domain[i]);
	d[n] = '\0';
	if (!dns_host_valid(d))
		return NULL;
	struct mtasts_lookup *l = calloc(1, sizeof(*l));
	if (l == NULL || (l->timer = evtimer_new(c->base, lookup_timer_cb, l)) == NULL) {
		free(l);
		return NULL;
	}
	l->c = c;
	l->done = done;
	l->arg = arg;
	l->recheck = recheck;
	snprintf(l->domain, sizeof(l->domain), "%s", d);
	struct sts_entry *en = entry_find(c, d);
	if (en != NULL && en->e.present)
		snprintf(l->start_id, sizeof(l->start_id), "%s", en->e.id);
	if (en == NULL || en->job == NULL) {
		if (c->running >= c->o.max_fetches || (en = entry_get(c, d)) == NULL || job_start(c, en, recheck, false) == NULL) {
			if (en != NULL && en->job == NULL && !en->e.present && en->failed_at == 0)
				entry_remove(c, en);
			/* no room for a check: what the cache holds, at once (after this call returns) */
			l->busy_reason = "busy";
			struct timeval zero = {0, 0};
			evtimer_add(l->timer, &zero);
			return l;
		}
	} else if (recheck) {
		en->job->recheck = true; /* the running check's fetch, if any, is the one to wait for */
	}
	l->job = en->job;
	l->next = en->job->waiters;
	if (l->next != NULL)
		l->next->prev = l;
	en->job->waiters = l;
	if (budget_ms > 0) {
		struct timeval tv = {.tv_sec = budget_ms / 1000, .tv_usec = (budget_ms % 1000) * 1000};
		evtimer_add(l->timer, &tv);
	}
	return l;
}

struct mtasts_lookup *mtasts_lookup(struct mtasts_cache *c, const char *domain, unsigned budget_ms,
				    mtasts_done_fn *done, void *arg)
{
	return lookup_start(c, domain, budget_ms, done, arg, false);
}

struct mtasts_lookup *mtasts_recheck(struct mtasts_cache *c, const char *domain, unsigned budget_ms,
				     mtasts_done_fn *done, void *arg)
{
	return lookup_start(c, domain, budget_ms, done, arg, true);
}

void mtasts_lookup_cancel(struct mtasts_cache *c, struct mtasts_lookup *l)
{
	(void)c;
	if (l == NULL)
		return;
	lookup_unlink(l);
	lookup_free(l);
}

unsigned mtasts_cache_fetches(const struct mtasts_cache *c)
{
	return c->running;
}

size_t mtasts_cache_size(const struct mtasts_cache *c)
{
	return c->count;
}

unsigned mtasts_cache_refresh_due(struct mtasts_cache *c, int64_t now)
{
	/* refreshes take at most half the slots, so that lookups for new domains still find one */
	unsigned cap = c->o.max_fetches / 2 > 0 ? c->o.max_fetches / 2 : 1, started = 0;
	for (size_t b = 0; b < BUCKETS && started < REFRESH_PER_TICK; b++) {
		for (struct sts_entry *e = c->buckets[b]; e != NULL && started < REFRESH_PER_TICK; e = e->hnext) {
			if (!e->e.present || e->job != NULL || e->refresh_at > now || c->running >= cap)
				continue;
			/* not again before the next refresh time, whatever this one gives */
			e->refresh_at = now + MTASTS_CACHE_RETRY_S;
			if (job_start(c, e, false, true) != NULL)
				started++;
		}
	}
	return started;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mtasts_cache *c = arg;
	mtasts_cache_refresh_due(c, (int64_t)time(NULL));
}

bool mtasts_cache_refresh_start(struct mtasts_cache *c)
{
	if (c->stopped)
		return false;
	if (c->tick != NULL)
		return true;
	struct timeval tv = {.tv_sec = MTASTS_CACHE_TICK_S, .tv_usec = 0};
	if ((c->tick = event_new(c->base, -1, EV_PERSIST, tick_cb, c)) == NULL || event_add(c->tick, &tv) != 0) {
		if (c->tick != NULL)
			event_free(c->tick);
		c->tick = NULL;
		return false;
	}
	return true;
}

struct load_state {
	struct mtasts_cache *c;
	int64_t now;
	size_t loaded, dropped;
	struct mtasts_policy p;
	char stale[64][DNS_HOST_SIZE]; /* rows to delete (expired or unreadable), a batch at a time */
	size_t nstale;
};

static bool load_row(void *arg, const struct mtasts_store_row *r)
{
	struct load_state *st = arg;
	const char *err;
	bool ok = mtasts_policy_parse(r->policy, r->policy_len, &st->p, &err) == MTASTS_OK &&
		  st->p.mode != MTASTS_MODE_NONE && dns_host_valid(r->domain) && r->expires > st->now &&
		  r->fetched <= st->now + 86400;
	struct sts_entry *en = ok && st->c->count < MTASTS_CACHE_ENTRIES ? entry_get(st->c, r->domain) : NULL;
	/* the expiry is the one the policy's own max_age gives, never later (a row edited by hand) */
	if (en != NULL && entry_set(en, r->id, &st->p, r->fetched)) {
		if (r->expires < en->e.expires)
			en->e.expires = r->expires;
		en->refresh_at = mtasts_rules_refresh_at(&en->e, jitter());
		st->loaded++;
	} else {
		if (en != NULL)
			entry_remove(st->c, en);
		st->dropped++;
		if (st->nstale < 64)
			snprintf(st->stale[st->nstale++], DNS_HOST_SIZE, "%s", r->domain);
	}
	return true;
}

struct mtasts_cache *mtasts_cache_new(const struct mtasts_cache_opts *o, char *error, size_t error_size)
{
	struct mtasts_cache *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		snprintf(error, error_size, "out of memory");
		return NULL;
	}
	c->o = *o;
	snprintf(c->data_dir, sizeof(c->data_dir), "%s", o->data_dir);
	snprintf(c->ca_file, sizeof(c->ca_file), "%s", o->ca_file != NULL ? o->ca_file : "");
	c->o.data_dir = c->data_dir;
	c->o.ca_file = c->ca_file;
	if (c->o.max_fetches == 0)
		c->o.max_fetches = 1;
	c->base = dns_base(o->dns);
	c->dns = dns_ref(o->dns);
	const char *err = NULL;
	if ((c->http = http_client_new(c->base, error, error_size)) == NULL)
		goto fail;
	if ((c->store = mtasts_store_open(c->data_dir, &err)) == NULL) {
		snprintf(error, error_size, "%s/%s: %s", c->data_dir, "reports.db", err);
		goto fail;
	}
	struct load_state *st = calloc(1, sizeof(*st));
	if (st == NULL) {
		snprintf(error, error_size, "out of memory");
		goto fail;
	}
	st->c = c;
	st->now = (int64_t)time(NULL);
	if (mtasts_store_each(c->store, MTASTS_CACHE_ENTRIES, load_row, st, &err) != RESULT_OK) {
		snprintf(error, error_size, "%s", err);
		free(st);
		goto fail;
	}
	for (size_t i = 0; i < st->nstale; i++)
		mtasts_store_delete(c->store, st->stale[i], &err); /* at start, before the loop runs */
	if (st->loaded > 0 || st->dropped > 0)
		log_info("event=mta_sts_cache_loaded policies=%zu dropped=%zu", st->loaded, st->dropped);
	free(st);
	if (o->refresh && !mtasts_cache_refresh_start(c)) {
		snprintf(error, error_size, "out of memory");
		goto fail;
	}
	return c;
fail:
	mtasts_cache_stop(c);
	mtasts_cache_free(c);
	return NULL;
}

void mtasts_cache_stop(struct mtasts_cache *c)
{
	if (c == NULL || c->stopped)
		return;
	c->stopped = true;
	if (c->tick != NULL)
		event_free(c->tick);
	c->tick = NULL;
	for (size_t b = 0; b < BUCKETS; b++) {
		for (struct sts_entry *e = c->buckets[b]; e != NULL; e = e->hnext) {
			struct sts_job *j = e->job;
			if (j == NULL)
				continue;
			while (j->waiters != NULL) {
				struct mtasts_lookup *l = j->waiters;
				lookup_unlink(l);
				lookup_free(l);
			}
			if (j->fetch != NULL)
				mtasts_fetch_cancel(j->fetch);
			if (j->dns_id != 0)
				dns_cancel(c->dns, j->dns_id);
			free(j);
			e->job = NULL;
		}
	}
	c->running = 0;
	http_client_free(c->http);
	c->http = NULL;
	if (c->dns != NULL)
		dns_free(c->dns);
	c->dns = NULL;
	/* writes not yet handed on are made now (the loop is stopping; a short wait is fine here) */
	write_next(c);
}

void mtasts_cache_free(struct mtasts_cache *c)
{
	if (c == NULL)
		return;
	mtasts_cache_stop(c);
	while (c->wq_head != NULL) {
		struct sts_write *w = c->wq_head;
		c->wq_head = w->next;
		write_free(w);
	}
	for (size_t b = 0; b < BUCKETS; b++) {
		while (c->buckets[b] != NULL) {
			struct sts_entry *e = c->buckets[b];
			c->buckets[b] = e->hnext;
			free(e->mx);
			free(e);
		}
	}
	mtasts_store_close(c->store);
	free(c);
}
