/* tlsrpt_scheduler.c — sending the TLS reports (RFC 8460) of the sessions counted in queue.db. */
#include "report/tlsrpt_scheduler.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "conf/conf.h"
#include "db/db.h"
#include "events/tlsrpt_sessions.h"
#include "net/dns.h"
#include "net/http_client.h"
#include "net/http_url.h"
#include "queue/queue.h"
#include "report/tlsrpt.h"
#include "server/server.h"
#include "server/signer_client.h"
#include "util/gzip.h"
#include "util/log.h"
#include "util/worker.h"

#define TLSRPT_TICK_MAX 60          /* seconds between looks at what is due, at most */
#define TLSRPT_RUN_MAX 32           /* aggregates per run; the rest in the next */
#define TLSRPT_POST_TIMEOUT_MS 120000 /* an HTTPS report may take this long (Stalwart: 2 min too) */
#define TLSRPT_GIVE_UP 86400        /* §5.5: retried for up to 24 h after the first attempt */
#define TLSRPT_BACKOFF_MAX 3600
#define TLSRPT_STANDBY_RETRY 5

enum job_state {
	JOB_LOOKUP = 0,
	JOB_NO_RECORD, /* no usable _smtp._tls record: the counters go unreported */
	JOB_TEMPFAIL,  /* the lookup or the build failed: try again */
	JOB_READY,
};

struct tr_post;

struct tr_job {
	struct tlsrpt_run *run;
	struct tlsrpt_aggregate agg;
	enum job_state state;
	uint64_t dns_id;
	struct tlsrpt_record rec;
	bool took[TLSRPT_RUA_MAX]; /* this rua has the report (before, or in this run) */
	bool failed;               /* a rua failed in this run */
	char why[256];
	char report_id[TLSRPT_REPORT_ID_SIZE];
	uint64_t sessions;
	unsigned char *gz;
	size_t gz_len;
	struct queue_msg *msg;    /* the mail to the mailto: rua not yet done */
	struct dkim_draft *draft;
	char msg_id[QUEUE_ID_LEN + 1];
	struct tr_post *posts[TLSRPT_RUA_MAX]; /* HTTPS reports under way, by rua */
};

struct tlsrpt_run {
	struct tlsrpt_scheduler *s;
	struct conf *conf;
	int64_t now, before;
	struct tr_job *jobs;
	size_t n;
	unsigned pending; /* lookups, requests, signatures and stores not answered */
	bool failed;
};

struct tlsrpt_scheduler {
	struct server *srv;
	struct event *timer;
	struct http_client *http;
	struct db *db; /* queue.db, used by the worker steps only (one run at a time) */
	char path[4096];
	struct tlsrpt_run *run;
	bool stopping;
	/* for status (loop thread) */
	int64_t last_sent, last_failed;
	char last_sent_domain[DNS_HOST_SIZE];
	char last_error[300];
};

static void run_free(struct tlsrpt_run *run)
{
	if (run == NULL)
		return;
	for (size_t i = 0; i < run->n; i++) {
		struct tr_job *j = &run->jobs[i];
		if (j->dns_id != 0 && !run->s->stopping)
			dns_cancel(run->s->srv->dns, j->dns_id);
		/* their lookups were cancelled by the stop; their requests ended with the HTTP client */
		for (size_t k = 0; k < TLSRPT_RUA_MAX; k++)
			free(j->posts[k]);
		tlsrpt_aggregate_free(&j->agg);
		free(j->gz);
		queue_msg_free(j->msg);
		dkim_draft_free(j->draft);
	}
	free(run->jobs);
	conf_free(run->conf);
	free(run);
}

static void run_finished(struct tlsrpt_run *run)
{
	if (run->s->run == run)
		run->s->run = NULL;
	run_free(run);
}

/* The key a rua is remembered by in done_rua. */
static void rua_key(const struct tlsrpt_uri *u, char *out, size_t size)
{
	snprintf(out, size, "%s%s", u->kind == TLSRPT_URI_MAILTO ? "mailto:" : "", u->text);
}

static bool rua_done_before(const char *done, const char *key)
{
	size_t kl = strlen(key);
	for (const char *p = done; *p != '\0';) {
		const char *nl = strchr(p, '\n');
		size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);
		if (n == kl && memcmp(p, key, n) == 0)
			return true;
		p += n + (nl != NULL);
	}
	return false;
}

static const char *report_from(const struct conf *c, char *buf, size_t size)
{
	if (c->tlsrpt_report_from[0] != '\0')
		snprintf(buf, size, "%s", c->tlsrpt_report_from);
	else if (c->dmarc_report_from[0] != '\0')
		snprintf(buf, size, "%s", c->dmarc_report_from);
	else
		snprintf(buf, size, "tls-reports@%s", c->hostname);
	return buf;
}

/* ---- 1. what is due (worker) ---- */

static void due_work(void *arg)
{
	struct tlsrpt_run *run = arg;
	struct tlsrpt_scheduler *s = run->s;
	char err[512];
	if (s->db == NULL) {
		const struct db_opts o = {.create_mode = 0600, .sync = DB_SYNC_FULL, .foreign_keys = true};
		if ((s->db = db_open(s->path, &o, err, sizeof(err))) == NULL) {
			log_warn("event=tlsrpt_report_failed step=open error=\"%s\"", err);
			run->failed = true;
			return;
		}
	}
	struct tlsrpt_aggregate *v;
	size_t n;
	int rc = tlsrpt_sessions_due(s->db, run->before, run->now, TLSRPT_RUN_MAX, &v, &n);
	if (rc != SQLITE_OK) {
		log_warn("event=tlsrpt_report_failed step=read error=\"%s\"", sqlite3_errstr(rc));
		run->failed = true;
		return;
	}
	run->jobs = calloc(n > 0 ? n : 1, sizeof(*run->jobs));
	if (run->jobs == NULL) {
		for (size_t i = 0; i < n; i++)
			tlsrpt_aggregate_free(&v[i]);
		free(v);
		run->failed = true;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		run->jobs[i].agg = v[i];
		run->jobs[i].run = run;
	}
	run->n = n;
	free(v);
}

/* ---- 2. the _smtp._tls records (loop) ---- */

static void build_work(void *arg);
static void build_done(void *arg);
static void finish_work(void *arg);
static void finish_done(void *arg);

static void pending_over(struct tlsrpt_run *run, worker_fn *work, worker_fn *done)
{
	if (--run->pending > 0)
		return;
	if (run->s->stopping) {
		run_finished(run);
		return;
	}
	worker_pool_submit(run->s->srv->workers, work, done, run);
}

static void on_txt(void *arg, uint64_t id, const struct dns_result *r)
{
	struct tlsrpt_run *run = arg;
	struct tr_job *j = NULL;
	for (size_t i = 0; i < run->n && j == NULL; i++)
		if (run->jobs[i].dns_id == id)
			j = &run->jobs[i];
	if (j == NULL)
		return;
	j->dns_id = 0;
	if (r->status == DNS_STATUS_TEMPFAIL || r->status == DNS_STATUS_BOGUS) {
		j->state = JOB_TEMPFAIL;
		snprintf(j->why, sizeof(j->why), "the _smtp._tls lookup failed: %s", r->why);
	} else if (r->status != DNS_STATUS_OK) {
		j->state = JOB_NO_RECORD;
		snprintf(j->why, sizeof(j->why), "no _smtp._tls record");
	} else {
		const char *texts[64];
		size_t lens[64], n = 0;
		for (size_t i = 0; i < r->count && n < 64; i++, n++) {
			texts[n] = r->txts[i].text;
			lens[n] = r->txts[i].len;
		}
		const char *err;
		enum tlsrpt_record_error e = tlsrpt_record_select(texts, lens, n, &j->rec, &err);
		j->state = e == TLSRPT_RECORD_OK ? JOB_READY : JOB_NO_RECORD;
		if (e != TLSRPT_RECORD_OK)
			snprintf(j->why, sizeof(j->why), "%s", err);
	}
	pending_over(run, build_work, build_done);
}

static void due_done(void *arg)
{
	struct tlsrpt_run *run = arg;
	struct tlsrpt_scheduler *s = run->s;
	if (s->stopping || run->failed || run->n == 0) {
		run_finished(run);
		return;
	}
	run->pending = 1; /* held until every lookup is started */
	for (size_t i = 0; i < run->n; i++) {
		struct tr_job *j = &run->jobs[i];
		char name[DNS_HOST_SIZE + 16];
		int k = snprintf(name, sizeof(name), "_smtp._tls.%s", j->agg.policy_domain);
		if (k <= 0 || (size_t)k >= sizeof(name) || !dns_host_valid(j->agg.policy_domain)) {
			j->state = JOB_NO_RECORD;
			snprintf(j->why, sizeof(j->why), "the policy domain is not a host name");
			continue;
		}
		run->pending++;
		if ((j->dns_id = dns_lookup(s->srv->dns, name, DNS_RRTYPE_TXT, on_txt, run)) == 0) {
			run->pending--;
			j->state = JOB_TEMPFAIL;
			snprintf(j->why, sizeof(j->why), "no lookup could be started");
		}
	}
	pending_over(run, build_work, build_done);
}

/* ---- 3. build (worker) ---- */

static void build_one(struct tlsrpt_run *run, struct tr_job *j)
{
	const struct conf *c = run->conf;
	char from[ADDR_TEXT_MAX + 1];
	report_from(c, from, sizeof(from));
	int64_t begin = j->agg.begin, end = j->agg.begin + (int64_t)c->tlsrpt_report_interval - 1;
	tlsrpt_report_id(j->report_id, begin, j->agg.policy_domain, c->hostname);
	for (size_t i = 0; i < j->agg.n; i++)
		j->sessions += j->agg.rows[i].count;
	struct tlsrpt_report_meta meta = {
		.organization = c->hostname, .contact = from, .report_id = j->report_id, .begin = begin, .end = end,
	};
	size_t len;
	char *json = tlsrpt_report_json(&meta, j->agg.policy_domain, j->agg.rows, j->agg.n, &len);
	if (json == NULL || !gzip_compress(json, len, &j->gz, &j->gz_len)) {
		free(json);
		j->state = JOB_TEMPFAIL;
		snprintf(j->why, sizeof(j->why), "out of memory while building the report");
		return;
	}
	free(json);
	const char *to[TLSRPT_RUA_MAX];
	size_t to_n = 0;
	for (size_t i = 0; i < j->rec.rua_count; i++) {
		char key[TLSRPT_URI_MAX + 8];
		rua_key(&j->rec.rua[i], key, sizeof(key));
		j->took[i] = rua_done_before(j->agg.done_rua, key);
		if (j->rec.rua[i].kind == TLSRPT_URI_MAILTO && !j->took[i])
			to[to_n++] = j->rec.rua[i].text;
	}
	if (to_n == 0)
		return;
	struct tlsrpt_report_mail mail = {
		.from = from, .to = to, .to_count = to_n, .submitter = c->hostname, .policy_domain = j->agg.policy_domain,
		.report_id = j->report_id, .begin = begin, .end = end, .date = (int64_t)time(NULL),
	};
	const char *err;
	size_t msg_len;
	char *msg = tlsrpt_report_message(&mail, j->gz, j->gz_len, &msg_len, &err);
	struct queue_msg *m = msg != NULL ? calloc(1, sizeof(*m)) : NULL;
	char **rcpts = m != NULL ? calloc(to_n, sizeof(*rcpts)) : NULL;
	if (rcpts == NULL) {
		free(m);
		free(msg);
		snprintf(j->why, sizeof(j->why), "%s", msg == NULL ? err : "out of memory");
		j->failed = true;
		return;
	}
	m->data = msg;
	m->size = msg_len;
	m->rcpts = rcpts;
	queue_id_new(m->id);
	m->arrival = (int64_t)time(NULL);
	m->sender = strdup(from);
	m->client_ip = strdup("127.0.0.1");
	/* RFC 8460 §5.3.1 with RFC 8689 §5: our own TLS-Required: No, so the outbound policy does not
	 * hold the report back for the failures it reports */
	m->tls_required_no = true;
	for (size_t i = 0; i < to_n; i++)
		if ((rcpts[i] = strdup(to[i])) != NULL)
			m->rcpt_count++;
	if (m->sender == NULL || m->client_ip == NULL || m->rcpt_count != to_n) {
		queue_msg_free(m);
		snprintf(j->why, sizeof(j->why), "out of memory");
		j->failed = true;
		return;
	}
	/* §3: report mail MUST be DKIM-signed (no l=), as our users' mail is */
	const char *at = strrchr(from, '@');
	j->draft = signer_draft_new(c, at + 1, m->data, m->size, time(NULL), NULL, &err);
	if (j->draft == NULL)
		log_warn("event=dkim_sign_failed domain=%s error=\"%s\"", at + 1, err);
	j->msg = m;
	memcpy(j->msg_id, m->id, sizeof(j->msg_id));
}

static void build_work(void *arg)
{
	struct tlsrpt_run *run = arg;
	for (size_t i = 0; i < run->n; i++)
		if (run->jobs[i].state == JOB_READY)
			build_one(run, &run->jobs[i]);
}

/* ---- 4. send (loop) ---- */

#define TLSRPT_POST_ADDRS 8

/* One HTTPS report: its host's addresses from our resolver (A and AAAA, as the MTA-STS fetch
 * does), so libcurl asks no other resolver, then the POST. */
struct tr_post {
	struct tr_job *job;
	size_t rua;
	struct http_url url;
	uint64_t ids[2];
	unsigned lookups;
	char addrs[TLSRPT_POST_ADDRS][INET6_ADDRSTRLEN + 3];
	size_t naddrs;
	char why[200];
};

static void post_free(struct tr_post *p)
{
	p->job->posts[p->rua] = NULL;
	free(p);
}

static void rua_log(const struct tr_job *j, const char *rua, bool ok, const char *why)
{
	struct tlsrpt_scheduler *s = j->run->s;
	if (ok) {
		s->last_sent = (int64_t)time(NULL);
		snprintf(s->last_sent_domain, sizeof(s->last_sent_domain), "%s", j->agg.policy_domain);
	} else {
		s->last_failed = (int64_t)time(NULL);
		snprintf(s->last_error, sizeof(s->last_error), "%s: %s: %s", j->agg.policy_domain, rua, why);
	}
	if (ok)
		log_info("event=tlsrpt_report_sent domain=%s rua=\"%s\" report_id=%s sessions=%" PRIu64 " attempt=%u",
			 j->agg.policy_domain, rua, j->report_id, j->sessions, j->agg.attempts + 1);
	else
		log_warn("event=tlsrpt_report_failed domain=%s rua=\"%s\" report_id=%s attempt=%u error=\"%s\"",
			 j->agg.policy_domain, rua, j->report_id, j->agg.attempts + 1, why);
}

static void posted(void *arg, const struct http_client_result *r);

static void post_start(struct tr_post *p)
{
	struct tr_job *j = p->job;
	struct tlsrpt_run *run = j->run;
	static const char *const headers[] = {"Content-Type: application/tlsrpt+gzip"};
	char resolve[DNS_HOST_SIZE + 16 + TLSRPT_POST_ADDRS * (INET6_ADDRSTRLEN + 3)];
	struct http_client_opts o = {
		.timeout_ms = TLSRPT_POST_TIMEOUT_MS,
		/* the SSRF rule of webhooks: a rua is someone else's URL too */
		.allow_private = run->conf->webhook_allow_private,
		.private_setting = "[webhooks] allow_private",
		.ca_file = run->conf->tlsrpt_ca_file,
	};
	if (p->url.host_kind == HTTP_URL_HOST_NAME) {
		size_t len = (size_t)snprintf(resolve, sizeof(resolve), "%s:%u:", p->url.host, p->url.port);
		for (size_t i = 0; i < p->naddrs && len < sizeof(resolve); i++)
			len += (size_t)snprintf(resolve + len, sizeof(resolve) - len, "%s%s", i > 0 ? "," : "", p->addrs[i]);
		o.resolve = resolve;
	}
	char err[256];
	if (http_client_post(run->s->http, j->rec.rua[p->rua].text, headers, 1, (const char *)j->gz, j->gz_len, &o, posted, p,
			     err, sizeof(err)) == 0)
		return;
	rua_log(j, j->rec.rua[p->rua].text, false, err);
	j->failed = true;
	post_free(p);
	pending_over(run, finish_work, finish_done);
}

static void post_addr(void *arg, uint64_t id, const struct dns_result *r)
{
	struct tr_post *p = arg;
	p->ids[p->ids[0] == id ? 0 : 1] = 0;
	if (r->status == DNS_STATUS_OK && !p->job->run->s->stopping)
		for (size_t i = 0; i < r->count && p->naddrs < TLSRPT_POST_ADDRS; i++) {
			char ip[INET6_ADDRSTRLEN + 1];
			dns_addr_str(&r->addrs[i], ip, sizeof(ip));
			snprintf(p->addrs[p->naddrs++], sizeof(p->addrs[0]), r->addrs[i].family == AF_INET6 ? "[%s]" : "%s", ip);
		}
	else if (r->status != DNS_STATUS_NXDOMAIN && r->status != DNS_STATUS_NODATA)
		snprintf(p->why, sizeof(p->why), "%s", r->why);
	if (--p->lookups > 0)
		return;
	struct tr_job *j = p->job;
	if (p->naddrs == 0 || j->run->s->stopping) {
		if (!j->run->s->stopping)
			rua_log(j, j->rec.rua[p->rua].text, false, p->why[0] ? p->why : "the host has no address");
		j->failed = true;
		struct tlsrpt_run *run = j->run;
		post_free(p);
		pending_over(run, finish_work, finish_done);
		return;
	}
	post_start(p);
}

static void posted(void *arg, const struct http_client_result *r)
{
	struct tr_post *p = arg;
	struct tr_job *j = p->job;
	struct tlsrpt_run *run = j->run;
	free(r->data);
	/* §5.4: a 2xx is a delivered report; anything else is tried again */
	bool ok = r->error == NULL && r->status >= 200 && r->status < 300;
	char why[300];
	if (!ok)
		snprintf(why, sizeof(why), "%s%s%ld", r->error != NULL ? r->error : "", r->error != NULL ? "; status " : "status ",
			 r->status);
	if (!run->s->stopping) {
		rua_log(j, j->rec.rua[p->rua].text, ok, ok ? NULL : why);
		j->took[p->rua] = j->took[p->rua] || ok;
		j->failed = j->failed || !ok;
	}
	post_free(p);
	pending_over(run, finish_work, finish_done);
}

static void mail_stored(void *arg, enum result res, const char *reason)
{
	struct tr_job *j = arg;
	struct tlsrpt_run *run = j->run;
	bool ok = res == RESULT_OK;
	for (size_t i = 0; i < j->rec.rua_count; i++)
		if (j->rec.rua[i].kind == TLSRPT_URI_MAILTO && !j->took[i]) {
			char key[TLSRPT_URI_MAX + 8];
			rua_key(&j->rec.rua[i], key, sizeof(key));
			if (!run->s->stopping)
				rua_log(j, key, ok, reason);
			j->took[i] = ok;
		}
	if (ok)
		log_info("queue_id=%s event=tlsrpt_report_queued domain=%s report_id=%s", j->msg_id, j->agg.policy_domain,
			 j->report_id);
	j->failed = j->failed || !ok;
	pending_over(run, finish_work, finish_done);
}

static void mail_signed(void *arg, enum signer_result res, char *fields, const char *error)
{
	struct tr_job *j = arg;
	struct tlsrpt_run *run = j->run;
	struct queue_msg *m = j->msg;
	j->msg = NULL;
	if (res == SIGNER_UNAVAILABLE || run->s->stopping) {
		/* an unsigned report would fail the receiver's check (§3): next time */
		if (!run->s->stopping)
			log_warn("event=tlsrpt_report_failed domain=%s step=sign error=\"%s\"", j->agg.policy_domain, error);
		j->failed = true;
		queue_msg_free(m);
		free(fields);
		pending_over(run, finish_work, finish_done);
		return;
	}
	if (res == SIGNER_KEY_FAILED)
		log_warn("queue_id=%s event=dkim_sign_failed domain=%s error=\"%s\"", j->msg_id, j->agg.policy_domain, error);
	else if (fields[0] != '\0' && !queue_msg_prepend(m, fields, strlen(fields)))
		log_warn("queue_id=%s event=dkim_sign_failed error=\"out of memory\"", j->msg_id);
	free(fields);
	queue_msg_store(run->s->srv->queue, m, mail_stored, j);
}

static void build_done(void *arg)
{
	struct tlsrpt_run *run = arg;
	struct tlsrpt_scheduler *s = run->s;
	if (s->stopping) {
		run_finished(run);
		return;
	}
	run->pending = 1;
	for (size_t i = 0; i < run->n; i++) {
		struct tr_job *j = &run->jobs[i];
		if (j->state != JOB_READY)
			continue;
		for (size_t k = 0; k < j->rec.rua_count; k++) {
			if (j->rec.rua[k].kind != TLSRPT_URI_HTTPS || j->took[k])
				continue;
			struct tr_post *p = calloc(1, sizeof(*p));
			const char *err = "out of memory";
			if (p != NULL && http_url_parse(j->rec.rua[k].text, strlen(j->rec.rua[k].text), &p->url, &err) == HTTP_URL_OK) {
				p->job = j;
				p->rua = k;
				j->posts[k] = p;
				run->pending++;
				if (p->url.host_kind != HTTP_URL_HOST_NAME) {
					post_start(p);
					continue;
				}
				p->lookups = 2;
				p->ids[0] = dns_lookup(s->srv->dns, p->url.host, DNS_RRTYPE_A, post_addr, p);
				p->ids[1] = dns_lookup(s->srv->dns, p->url.host, DNS_RRTYPE_AAAA, post_addr, p);
				if (p->ids[0] != 0 && p->ids[1] != 0)
					continue;
				/* a lookup that did not start: the other is cancelled, the rua fails */
				for (int q = 0; q < 2; q++)
					if (p->ids[q] != 0)
						dns_cancel(s->srv->dns, p->ids[q]);
				run->pending--;
				err = "no lookup could be started";
			}
			if (p != NULL && p->job != NULL)
				post_free(p);
			else
				free(p);
			rua_log(j, j->rec.rua[k].text, false, err);
			j->failed = true;
		}
		if (j->msg != NULL) {
			run->pending++;
			if (j->draft != NULL) {
				struct dkim_draft *d = j->draft;
				j->draft = NULL;
				signer_client_sign(s->srv->signer, d, mail_signed, j);
			} else {
				struct queue_msg *m = j->msg;
				j->msg = NULL;
				queue_msg_store(s->srv->queue, m, mail_stored, j);
			}
		}
	}
	pending_over(run, finish_work, finish_done);
}

/* ---- 5. what went (worker) ---- */

static void finish_one(struct tlsrpt_run *run, struct tr_job *j)
{
	struct tlsrpt_scheduler *s = run->s;
	unsigned interval = run->conf->tlsrpt_report_interval;
	bool all = j->state == JOB_READY && !j->failed;
	for (size_t i = 0; all && i < j->rec.rua_count; i++)
		all = j->took[i];
	int rc;
	if (all || j->state == JOB_NO_RECORD) {
		if (j->state == JOB_NO_RECORD)
			log_info("event=tlsrpt_report_dropped domain=%s reason=no_record error=\"%s\"", j->agg.policy_domain, j->why);
		rc = tlsrpt_sessions_delete(s->db, &j->agg);
	} else if (run->now >= j->agg.begin + (int64_t)interval + TLSRPT_GIVE_UP) {
		log_warn("event=tlsrpt_report_dropped domain=%s reason=retries_exhausted attempts=%u error=\"%s\"",
			 j->agg.policy_domain, j->agg.attempts + 1, j->why[0] ? j->why : "a destination failed");
		rc = tlsrpt_sessions_delete(s->db, &j->agg);
	} else {
		/* the rua that took it are not sent to again */
		char done[TLSRPT_RUA_MAX * (TLSRPT_URI_MAX + 9) + 1];
		size_t used = 0;
		done[0] = '\0';
		for (size_t i = 0; i < j->rec.rua_count; i++)
			if (j->took[i]) {
				char key[TLSRPT_URI_MAX + 8];
				rua_key(&j->rec.rua[i], key, sizeof(key));
				used += (size_t)snprintf(done + used, sizeof(done) - used, "%s%s", used ? "\n" : "", key);
			}
		int64_t backoff = interval < 300 ? interval : 300;
		for (unsigned a = 0; a < j->agg.attempts && backoff < TLSRPT_BACKOFF_MAX; a++)
			backoff *= 2;
		if (backoff > TLSRPT_BACKOFF_MAX)
			backoff = TLSRPT_BACKOFF_MAX;
		if (j->state == JOB_TEMPFAIL)
			log_warn("event=tlsrpt_report_failed domain=%s attempt=%u error=\"%s\"", j->agg.policy_domain,
				 j->agg.attempts + 1, j->why);
		log_info("event=tlsrpt_report_retry domain=%s attempt=%u next_in=%" PRId64, j->agg.policy_domain,
			 j->agg.attempts + 1, backoff);
		rc = tlsrpt_sessions_retry(s->db, &j->agg, run->now + backoff, done);
	}
	if (rc != SQLITE_OK)
		log_warn("event=tlsrpt_report_failed step=record domain=%s error=\"%s\"", j->agg.policy_domain, sqlite3_errstr(rc));
}

static void finish_work(void *arg)
{
	struct tlsrpt_run *run = arg;
	for (size_t i = 0; i < run->n; i++)
		finish_one(run, &run->jobs[i]);
}

static void finish_done(void *arg)
{
	run_finished(arg);
}

/* ---- the timer ---- */

static void timer_arm(struct tlsrpt_scheduler *s, unsigned seconds)
{
	struct timeval tv = {.tv_sec = seconds};
	evtimer_add(s->timer, &tv);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct tlsrpt_scheduler *s = arg;
	const struct conf *c = s->srv->conf;
	unsigned interval = c->tlsrpt_report_interval > 0 ? c->tlsrpt_report_interval : 86400;
	if (s->srv->standby) {
		/* the worker beside us sends; one report is enough */
		timer_arm(s, TLSRPT_STANDBY_RETRY);
		return;
	}
	timer_arm(s, interval < TLSRPT_TICK_MAX ? interval : TLSRPT_TICK_MAX);
	if (!c->tlsrpt_reports || s->run != NULL)
		return;
	struct tlsrpt_run *run = calloc(1, sizeof(*run));
	if (run == NULL)
		return;
	run->s = s;
	run->conf = conf_ref(s->srv->conf);
	run->now = (int64_t)time(NULL);
	/* only periods that have ended (§4.1: a report covers a whole period) */
	run->before = run->now / interval * (int64_t)interval;
	s->run = run;
	worker_pool_submit(s->srv->workers, due_work, due_done, run);
}

struct tlsrpt_scheduler *tlsrpt_scheduler_new(struct server *srv, char *error_r, size_t error_size)
{
	struct tlsrpt_scheduler *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		snprintf(error_r, error_size, "out of memory");
		return NULL;
	}
	s->srv = srv;
	snprintf(s->path, sizeof(s->path), "%s/queue.db", srv->conf->data_dir);
	if ((s->http = http_client_new(srv->base, error_r, error_size)) == NULL) {
		free(s);
		return NULL;
	}
	if ((s->timer = evtimer_new(srv->base, timer_cb, s)) == NULL) {
		snprintf(error_r, error_size, "out of memory");
		http_client_free(s->http);
		free(s);
		return NULL;
	}
	timer_arm(s, 1);
	return s;
}

void tlsrpt_scheduler_state(const struct tlsrpt_scheduler *s, struct tlsrpt_scheduler_state *st_r)
{
	*st_r = (struct tlsrpt_scheduler_state){
		.last_sent = s->last_sent,
		.last_sent_domain = s->last_sent_domain,
		.last_failed = s->last_failed,
		.last_error = s->last_error,
	};
}

void tlsrpt_scheduler_stop(struct tlsrpt_scheduler *s)
{
	if (s == NULL)
		return;
	s->stopping = true;
	evtimer_del(s->timer);
	/* the resolver may be gone by the free */
	for (size_t i = 0; s->run != NULL && i < s->run->n; i++) {
		struct tr_job *j = &s->run->jobs[i];
		if (j->dns_id != 0) {
			dns_cancel(s->srv->dns, j->dns_id);
			j->dns_id = 0;
		}
		for (size_t k = 0; k < TLSRPT_RUA_MAX; k++)
			for (int q = 0; j->posts[k] != NULL && q < 2; q++)
				if (j->posts[k]->ids[q] != 0) {
					dns_cancel(s->srv->dns, j->posts[k]->ids[q]);
					j->posts[k]->ids[q] = 0;
				}
	}
}

void tlsrpt_scheduler_free(struct tlsrpt_scheduler *s)
{
	if (s == NULL)
		return;
	if (s->timer != NULL)
		event_free(s->timer);
	http_client_free(s->http); /* running requests end without their callbacks */
	/* a run still waiting for DNS, HTTP, the signer or the queue: nothing will answer it now */
	run_free(s->run);
	db_close(s->db);
	free(s);
}
