/* pool.c — remote delivery connections: destinations, limits, MX failover, reuse. Loop thread. */
#include "delivery/pool.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "conf/conf.h"
#include "delivery/client.h"
#include "delivery/host_tls.h"
#include "delivery/mtasts_cache.h"
#include "delivery/mx.h"
#include "delivery/tlsrpt_note.h"
#include "util/log.h"
#include "net/dns.h"
#include "util/loopq.h"
#include "util/metrics.h"

/* How long a connection waits, parked, for the next message to its destination (Postfix's
 * connection cache keeps them 2 s too). */
#define POOL_IDLE_MS 2000

/* RFC 8461 §5.1: an attempt this close to max_queue_lifetime may be the last, so a failure under an
 * MTA-STS policy looks for a new policy first */
#define POOL_STS_RECHECK_MARGIN_S 300

/* A destination: the domain of the jobs, or the smarthost for all of them. */
struct pool_dest {
	struct pool_dest *next;
	char name[DNS_HOST_SIZE];
	struct remote_job *wait_head; /* jobs waiting for a connection, oldest first */
	struct remote_job *wait_tail;
	struct pool_conn *parked; /* idle connections, the last parked first */
	unsigned conns;
};

/* What the configuration says, shared by the connections started under it: a reload makes new
 * settings, and the old ones live on until their last connection ends. */
struct pool_settings {
	unsigned refs;
	struct dns *dns;
	SSL_CTX *tls_ctx;
	char *helo;
	unsigned port;
	enum delivery_tls_policy tls;
	enum conf_tls_policy global_tls; /* [delivery] tls, for the per-host decision */
	struct conf_tls_domain *overrides; /* [tls_policy], copied */
	size_t override_count;
	char *relay_host; /* NULL: MX delivery */
	char *auth_user;  /* NULL: no AUTH */
	char *auth_pass;
	unsigned max_conns, max_per_dest;
	struct delivery_timeouts timeouts; /* [delivery] *_timeout */
	unsigned sts_budget_ms;  /* [delivery] mta_sts_budget */
	unsigned sts_recheck_ms; /* [delivery] mta_sts_fetch_timeout: a recheck waits for its fetch */
	unsigned max_lifetime;   /* [delivery] max_queue_lifetime, seconds */
};

/* One connection's life: resolving, then one job after another on one host. */
struct pool_conn {
	struct pool_conn *prev, *next;
	struct delivery_pool *p;
	struct pool_settings *set;
	struct pool_dest *dest;
	struct remote_job *job;
	struct mx_query *mxq;
	struct mx_result *mx;
	size_t host_i, addr_i;
	bool plain;  /* this address again, without TLS: the handshake failed (opportunistic TLS only) */
	struct host_tls *htls; /* MX delivery: the current host's TLS policy (host_tls.h) */
	uint64_t tlsa_id;      /* the TLSA lookup for the current host under way, 0: none */
	/* MX delivery: the destination's MTA-STS policy (RFC 8461), asked beside the MX lookup */
	struct mtasts_lookup *stsq;       /* under way, NULL: answered (or not asked) */
	enum tls_decide_sts_state sts_state;
	struct mtasts_policy *sts;        /* the policy known, NULL: none */
	char sts_id[40];                  /* its id, for logs and TLS reports */
	bool sts_failed;   /* a host failed this attempt because of the policy (skipped, or TLS not verified) */
	bool sts_rechecked; /* §5.1's look for a new policy was made for this attempt */
	/* RFC 8689 §4.2.1, for a REQUIRETLS job: hosts refused for REQUIRETLS alone, and for anything else */
	bool rtls_refused, rtls_other;
	bool verified;         /* TLS came up authenticated (PKIX or DANE) on this connection */
	bool fresh;  /* the client was started for a new connection, whose first result is to come */
	struct pool_conn *park_next; /* in dest->parked while client is parked */
	bool parked;
	struct delivery_client *client;
	const char **rcpts;   /* the recipients of the attempt in progress */
	size_t *rcpt_of;      /* for each, its index in job->rcpts */
	unsigned *rcpt_notify; /* for each, its RFC 3461 NOTIFY and ORCPT, passed on to a server with DSN */
	const char **rcpt_orcpt;
	size_t rcpt_count, rcpt_cap;
	struct sockaddr_storage ss;
	socklen_t ss_len;
	char last_relay[DNS_HOST_SIZE + 64]; /* where the connection goes, for jobs that reuse it */
	char last_mta[DNS_HOST_SIZE];
};

struct delivery_pool {
	struct event_base *base;
	struct loopq *inbox;
	struct pool_settings *set; /* for connections started from now on */
	struct metrics *metrics;   /* NULL: not counted */
	struct mtasts_cache *mtasts; /* NULL: MTA-STS is not consulted */
	bool closing;
	delivery_pool_done_fn *done;
	void *done_arg;
	unsigned conns;
	bool servicing, service_again; /* pool_service is not re-entered from a failure inside it */
	struct pool_dest *dests;
	struct pool_conn *conn_list;
};

static void pool_conn_try(struct pool_conn *c);
static void pool_host_prepare(struct pool_conn *c);
static bool pool_sts_recheck(struct pool_conn *c);
static bool pool_conn_send(struct pool_conn *c, struct delivery_client *dc, struct remote_job *job);
static void pool_on_idle_gone(struct delivery_client *dc, void *arg);
static void pool_settings_unref(struct pool_settings *s);
static void pool_service(struct delivery_pool *p);

unsigned delivery_pool_conns(const struct delivery_pool *p)
{
	return p->conns;
}

void remote_job_free(struct remote_job *j)
{
	if (j == NULL)
		return;
	for (size_t i = 0; i < j->rcpt_count; i++) {
		free(j->rcpts[i].addr);
		free(j->rcpts[i].dsn_orcpt);
	}
	free(j->rcpts);
	free(j->dsn_envid);
	free(j->sender);
	free(j->domain);
	free(j->data);
	tlsrpt_sessions_free(&j->tlsrpt);
	free(j);
}

/* ---- destinations ---- */

static struct pool_dest *pool_dest_get(struct delivery_pool *p, const char *name)
{
	for (struct pool_dest *d = p->dests; d != NULL; d = d->next)
		if (strcmp(d->name, name) == 0)
			return d;
	struct pool_dest *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return NULL;
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->next = p->dests;
	p->dests = d;
	return d;
}

static void pool_dest_forget_idle(struct delivery_pool *p)
{
	for (struct pool_dest **pp = &p->dests; *pp != NULL;) {
		struct pool_dest *d = *pp;
		if (d->conns == 0 && d->wait_head == NULL && d->parked == NULL) {
			*pp = d->next;
			free(d);
			continue;
		}
		pp = &d->next;
	}
}

static struct remote_job *pool_dest_pop(struct pool_dest *d)
{
	struct remote_job *j = d->wait_head;
	if (j != NULL) {
		d->wait_head = j->next;
		if (d->wait_head == NULL)
			d->wait_tail = NULL;
		j->next = NULL;
	}
	return j;
}

/* ---- jobs ---- */

static void pool_rcpt_set(struct remote_rcpt *r, enum result res, bool remote, const char *status, const char *text)
{
	r->result = res;
	r->remote = remote;
	snprintf(r->status, sizeof(r->status), "%s", status);
	snprintf(r->text, sizeof(r->text), "%s", text);
}

/* Every recipient without a final result gets res with this reason, unless it already has a
 * temporary reply of its own from an earlier host. */
static void pool_job_fail_pending(struct remote_job *j, enum result res, const char *status, const char *text)
{
	for (size_t i = 0; i < j->rcpt_count; i++) {
		struct remote_rcpt *r = &j->rcpts[i];
		if (r->result == RESULT_TEMPFAIL && (r->text[0] == '\0' || res == RESULT_PERMFAIL))
			pool_rcpt_set(r, res, false, status, text);
	}
}

static void pool_job_done(struct delivery_pool *p, struct remote_job *j)
{
	for (size_t i = 0; i < j->rcpt_count; i++)
		if (j->rcpts[i].result == RESULT_TEMPFAIL && j->rcpts[i].text[0] == '\0')
			pool_rcpt_set(&j->rcpts[i], RESULT_TEMPFAIL, false, "4.4.1", "no host could be reached");
	p->done(p->done_arg, j);
}

/* RFC 8689 §4.2.1: a REQUIRETLS message that no MX host can take as it requires (not authenticated,
 * not verified, REQUIRETLS not offered) is not to be sent otherwise: every host was tried, each was
 * refused for REQUIRETLS alone, so it fails now (5.7.30) with a report that returns none of it
 * (bounce.h withhold_content). A host that failed for another reason (unreachable, a 4xx), or an
 * MTA-STS policy still being fetched, keeps it a deferral: that host may yet take it. */
static void pool_requiretls_final(struct pool_conn *c)
{
	struct remote_job *j = c->job;
	if (!j->requiretls || !c->rtls_refused || c->rtls_other || c->sts_state == TLS_DECIDE_STS_PENDING)
		return;
	for (size_t i = 0; i < j->rcpt_count; i++) {
		struct remote_rcpt *r = &j->rcpts[i];
		if (r->result != RESULT_TEMPFAIL)
			continue;
		char why[sizeof(r->text) + 160];
		snprintf(why, sizeof(why), "5.7.30 no MX host of %s meets the message's REQUIRETLS (RFC 8689 §4.2.1); last: %s",
			 j->domain, r->text);
		pool_rcpt_set(r, RESULT_PERMFAIL, false, "5.7.30", why);
	}
	log_info("queue_id=%s event=requiretls_unmet domain=%s", j->id, j->domain);
}

/* ---- connections ---- */

static void pool_conn_end(struct pool_conn *c)
{
	struct delivery_pool *p = c->p;
	if (c->job != NULL)
		pool_job_done(p, c->job);
	if (c->mxq != NULL)
		mx_cancel(c->mxq);
	if (c->tlsa_id != 0 && c->set != NULL)
		dns_cancel(c->set->dns, c->tlsa_id);
	if (c->stsq != NULL)
		mtasts_lookup_cancel(p->mtasts, c->stsq);
	free(c->sts);
	host_tls_free(c->htls);
	c->dest->conns--;
	p->conns--;
	if (c->set != NULL)
		pool_settings_unref(c->set);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		p->conn_list = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	free(c->mx);
	free(c->rcpts);
	free(c->rcpt_of);
	free(c->rcpt_notify);
	free(c->rcpt_orcpt);
	free(c);
	pool_service(p);
}

static void pool_job_init(struct remote_job *j)
{
	for (size_t i = 0; i < j->rcpt_count; i++)
		j->rcpts[i].result = RESULT_TEMPFAIL; /* until a host says otherwise */
	snprintf(j->tls, sizeof(j->tls), "none");
}

/* The recipients still without a final result, for the next attempt; false when none is left (or
 * memory ran out: they stay temporary failures). */
static bool pool_conn_rcpts(struct pool_conn *c)
{
	struct remote_job *j = c->job;
	c->rcpt_count = 0;
	if (j->rcpt_count > c->rcpt_cap) {
		const char **r = realloc(c->rcpts, j->rcpt_count * sizeof(*r));
		if (r != NULL)
			c->rcpts = r;
		size_t *o = realloc(c->rcpt_of, j->rcpt_count * sizeof(*o));
		if (o != NULL)
			c->rcpt_of = o;
		unsigned *nt = realloc(c->rcpt_notify, j->rcpt_count * sizeof(*nt));
		if (nt != NULL)
			c->rcpt_notify = nt;
		const char **oc = realloc(c->rcpt_orcpt, j->rcpt_count * sizeof(*oc));
		if (oc != NULL)
			c->rcpt_orcpt = oc;
		if (r == NULL || o == NULL || nt == NULL || oc == NULL)
			return false;
		c->rcpt_cap = j->rcpt_count;
	}
	for (size_t i = 0; i < j->rcpt_count; i++)
		if (j->rcpts[i].result == RESULT_TEMPFAIL) {
			c->rcpts[c->rcpt_count] = j->rcpts[i].addr;
			c->rcpt_notify[c->rcpt_count] = j->rcpts[i].dsn_notify;
			c->rcpt_orcpt[c->rcpt_count] = j->rcpts[i].dsn_orcpt;
			c->rcpt_of[c->rcpt_count++] = i;
		}
	return c->rcpt_count > 0;
}

/* The client's TLS policy on this connection: the smarthost's setting, or the MX host's decision. */
static enum delivery_tls_policy pool_conn_tls(const struct pool_conn *c)
{
	return c->htls != NULL ? c->htls->client_tls : c->set->tls;
}

static bool pool_addr_8bit(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

/* The message fields of a client job for c's current job. */
static void pool_client_job(struct pool_conn *c, struct delivery_job *cj);

/* TLS-RPT (RFC 8460): the outcome of a new connection's TLS (r), or of a host its policy skipped
 * (r NULL), into the job's sessions, committed with its results (tlsrpt_note.h). MX delivery only. */
static void pool_tlsrpt_note(struct pool_conn *c, const struct delivery_result *r)
{
	if (c->htls == NULL)
		return;
	const struct tls_decision *d = &c->htls->decision;
	struct tlsrpt_note n = {
		.domain = c->job->domain,
		.mx_host = c->mx->targets[c->host_i].host,
		.htls = c->htls,
		.client_tls = c->plain ? DELIVERY_TLS_NONE : pool_conn_tls(c),
		.peer = r != NULL ? (const struct sockaddr *)&c->ss : NULL,
		.r = r,
		.now = time(NULL),
	};
	/* RFC 8460 §4.4: a session under an MTA-STS policy reports it as "sts", with the policy's lines
	 * and its mx patterns; mode testing reports what it found and did not enforce (RFC 8461 §5) */
	char lines[MTASTS_MX_MAX + 3][MTASTS_MX_SIZE + 8];
	const char *strings[MTASTS_MX_MAX + 3], *mx[MTASTS_MX_MAX];
	const struct mtasts_policy *sts = c->sts;
	if (d->policy == TLS_DECIDE_POLICY_STS && sts != NULL) {
		size_t k = 0;
		snprintf(lines[k++], sizeof(lines[0]), "version: STSv1");
		snprintf(lines[k++], sizeof(lines[0]), "mode: %s", mtasts_mode_str(sts->mode));
		for (size_t i = 0; i < sts->mx_count && i < MTASTS_MX_MAX; i++) {
			snprintf(lines[k++], sizeof(lines[0]), "mx: %s", sts->mx[i]);
			mx[i] = sts->mx[i];
		}
		snprintf(lines[k++], sizeof(lines[0]), "max_age: %u", (unsigned)sts->max_age);
		for (size_t i = 0; i < k; i++)
			strings[i] = lines[i];
		n.policy_type = TLSRPT_POLICY_STS;
		n.policy_strings = strings;
		n.policy_string_count = k;
		n.mx_hosts = mx;
		n.mx_host_count = sts->mx_count < MTASTS_MX_MAX ? sts->mx_count : MTASTS_MX_MAX;
		if (d->sts_testing_mismatch)
			n.sts_failure = TLSRPT_RESULT_VALIDATION_FAILURE;
		else if (d->sts_testing_verify && r != NULL && r->tls && !r->tls_verified)
			n.sts_failure = TLSRPT_RESULT_VALIDATION_FAILURE; /* which check failed is not kept */
	} else if (c->sts_state == TLS_DECIDE_STS_FAILED && sts == NULL && d->policy == TLS_DECIDE_POLICY_NONE) {
		/* §4.3.3: a policy was published (its TXT record) but could not be fetched */
		n.policy_type = TLSRPT_POLICY_STS;
		n.sts_failure = TLSRPT_RESULT_STS_POLICY_FETCH_ERROR;
	}
	if (!tlsrpt_note_add(&c->job->tlsrpt, &n))
		log_warn("queue_id=%s event=tlsrpt_record_failed error=\"out of memory\"", c->job->id);
}

static void pool_on_client(struct delivery_client *dc, const struct delivery_result *r, void *arg)
{
	struct pool_conn *c = arg;
	struct delivery_pool *p = c->p;
	struct remote_job *j = c->job;
	c->client = NULL;

	/* the first result of a connection says whether TLS came up on it (a failed connect or
	 * handshake counts as without); later messages on the same connection are not new ones */
	if (c->fresh) {
		metrics_outbound_count(p->metrics, r->tls);
		pool_tlsrpt_note(c, r);
		c->fresh = false;
		c->verified = r->tls && r->tls_verified && pool_conn_tls(c) != DELIVERY_TLS_OPPORTUNISTIC &&
			      pool_conn_tls(c) != DELIVERY_TLS_ENCRYPT;
	}
	if (r->tls) {
		snprintf(j->tls, sizeof(j->tls), "%s", r->tls_version);
		snprintf(j->cipher, sizeof(j->cipher), "%s", r->tls_cipher);
	} else {
		snprintf(j->tls, sizeof(j->tls), "none");
		j->cipher[0] = '\0';
	}
	for (size_t k = 0; k < r->rcpt_count && k < c->rcpt_count; k++) {
		const struct delivery_rcpt_result *rr = &r->rcpts[k];
		struct remote_rcpt *jr = &j->rcpts[c->rcpt_of[k]];
		const char *status = rr->enh[0] ? rr->enh : rr->result == RESULT_PERMFAIL ? "5.0.0" : "4.0.0";
		pool_rcpt_set(jr, rr->result, rr->remote, status, rr->text);
		jr->dsn_passed = rr->result == RESULT_OK && r->dsn;
	}
	bool pending = false;
	for (size_t i = 0; i < j->rcpt_count; i++)
		pending = pending || j->rcpts[i].result == RESULT_TEMPFAIL;
	if (r->error == DELIVERY_ERR_REQUIRETLS)
		c->rtls_refused = true;
	else if (pending && r->error != DELIVERY_ERR_NONE)
		c->rtls_other = true;
	/* TLS required by the MTA-STS policy that did not come up verified (RFC 8461 §4.2) */
	if (pending && r->next_mx && c->htls != NULL && c->htls->decision.reason == TLS_DECIDE_REASON_STS_ENFORCE &&
	    !(r->tls && r->tls_verified))
		c->sts_failed = true;

	if (pending && !p->closing && r->error == DELIVERY_ERR_TLS_HANDSHAKE && pool_conn_tls(c) == DELIVERY_TLS_OPPORTUNISTIC &&
	    !c->plain) {
		/* opportunistic TLS: a failed handshake is retried on the same host in clear */
		log_warn("queue_id=%s event=tls_fallback relay=%s error=\"%s\"", j->id, j->relay, r->error_text);
		c->plain = true;
		pool_conn_try(c);
		return;
	}
	if (pending && !p->closing && r->next_mx) {
		/* RFC 5321 §5.1: the next address of this host, then the next host */
		c->plain = false;
		if (++c->addr_i < c->mx->targets[c->host_i].addr_count) {
			pool_conn_try(c);
			return;
		}
		c->addr_i = 0;
		if (++c->host_i < c->mx->count) {
			pool_host_prepare(c);
			return;
		}
		if (pool_sts_recheck(c))
			return; /* this client quits; the job goes on with c after the recheck */
	}
	pool_requiretls_final(c);
	/* copied first: once done, the job belongs to the runner's thread, which may free it at once */
	snprintf(c->last_relay, sizeof(c->last_relay), "%s", j->relay);
	snprintf(c->last_mta, sizeof(c->last_mta), "%s", j->mta);
	pool_job_done(p, j);
	c->job = NULL;
	if (!r->reusable || p->closing || c->set != p->set) {
		pool_conn_end(c);
		return;
	}
	/* the next message to this destination on the same connection: one waiting now, or one that
	 * comes while the connection is parked */
	struct remote_job *next = pool_dest_pop(c->dest);
	if (next != NULL) {
		if (pool_conn_send(c, dc, next))
			return;
		pool_conn_end(c);
		return;
	}
	if (delivery_client_park(dc, POOL_IDLE_MS, pool_on_idle_gone, c)) {
		c->client = dc;
		c->parked = true;
		c->park_next = c->dest->parked;
		c->dest->parked = c;
		return;
	}
	pool_conn_end(c);
}

/* Starts job on c's connection. false when that failed: job is reported, c is to be ended. */
static bool pool_conn_send(struct pool_conn *c, struct delivery_client *dc, struct remote_job *job)
{
	struct delivery_job cj;
	char err[256] = "out of memory";
	pool_job_init(job);
	c->job = job;
	c->rtls_refused = c->rtls_other = false;
	c->sts_failed = c->sts_rechecked = false;
	snprintf(job->relay, sizeof(job->relay), "%s", c->last_relay);
	snprintf(job->mta, sizeof(job->mta), "%s", c->last_mta);
	if (pool_conn_rcpts(c)) {
		pool_client_job(c, &cj);
		if (delivery_client_send(dc, &cj, err, sizeof(err))) {
			c->client = dc;
			return true;
		}
	}
	c->client = NULL;
	pool_job_fail_pending(job, RESULT_TEMPFAIL, "4.3.0", err);
	return false;
}

static void pool_unpark(struct pool_conn *c)
{
	for (struct pool_conn **pp = &c->dest->parked; *pp != NULL; pp = &(*pp)->park_next)
		if (*pp == c) {
			*pp = c->park_next;
			break;
		}
	c->parked = false;
	c->park_next = NULL;
}

/* The parked connection's client went (idle time over, or closed by the server). */
static void pool_on_idle_gone(struct delivery_client *dc, void *arg)
{
	struct pool_conn *c = arg;
	(void)dc;
	pool_unpark(c);
	c->client = NULL; /* it quits and frees itself */
	pool_conn_end(c);
}

/* Drops a parked connection now, for a slot or after a reload. */
static void pool_conn_drop_parked(struct pool_conn *c)
{
	pool_unpark(c);
	delivery_client_cancel(c->client);
	c->client = NULL;
	pool_conn_end(c);
}

static void pool_client_job(struct pool_conn *c, struct delivery_job *cj)
{
	struct delivery_pool *p = c->p;
	struct remote_job *j = c->job;
	bool utf8 = pool_addr_8bit(j->sender);
	for (size_t i = 0; i < j->rcpt_count; i++)
		utf8 = utf8 || pool_addr_8bit(j->rcpts[i].addr);
	*cj = (struct delivery_job){
		.base = p->base,
		.tls_ctx = c->set->tls_ctx,
		.addr = (const struct sockaddr *)&c->ss,
		.addr_len = c->ss_len,
		.host = c->mx->targets[c->host_i].host,
		.helo_name = c->set->helo,
		.tls = c->plain ? DELIVERY_TLS_NONE : pool_conn_tls(c),
		.dane_tlsa = c->htls != NULL ? c->htls->dane : NULL,
		.dane_tlsa_count = c->htls != NULL ? c->htls->dane_count : 0,
		.dane_names = c->htls != NULL ? c->htls->decision.names : NULL,
		.dane_name_count = c->htls != NULL ? c->htls->decision.name_count : 0,
		.auth_user = c->set->auth_user,
		.auth_pass = c->set->auth_pass,
		.sender = j->sender,
		.rcpts = c->rcpts,
		.rcpt_count = c->rcpt_count,
		.msg = (const unsigned char *)j->data,
		.msg_len = j->size,
		.needs_smtputf8 = utf8, /* RFC 6531 §3.4: an address with UTF-8 needs the extension */
		.dsn_ret = j->dsn_ret,
		.dsn_envid = j->dsn_envid,
		.rcpt_notify = c->rcpt_notify,
		.rcpt_orcpt = c->rcpt_orcpt,
		.requiretls = j->requiretls,
		.timeouts = c->set->timeouts,
		.log_id = j->id,
		.done = pool_on_client,
		.done_arg = c,
	};
}

/* Connects to the current address of the current host with the recipients still pending. */
static void pool_conn_try(struct pool_conn *c)
{
	struct remote_job *j = c->job;
	const struct mx_target *t = &c->mx->targets[c->host_i];
	const struct dns_addr *a = &t->addrs[c->addr_i];
	char ip[INET6_ADDRSTRLEN + 1], err[256];

	memset(&c->ss, 0, sizeof(c->ss));
	if (a->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&c->ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)c->set->port);
		memcpy(&sin->sin_addr, a->bytes, 4);
		c->ss_len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&c->ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)c->set->port);
		memcpy(&sin6->sin6_addr, a->bytes, 16);
		c->ss_len = sizeof(*sin6);
	}
	dns_addr_str(a, ip, sizeof(ip));
	snprintf(j->relay, sizeof(j->relay), a->family == AF_INET ? "%s[%s]:%u" : "%s[IPv6:%s]:%u", t->host, ip,
		 c->set->port);
	snprintf(j->mta, sizeof(j->mta), "%s", t->host);
	struct delivery_job cj;
	if (!pool_conn_rcpts(c)) {
		pool_conn_end(c);
		return;
	}
	pool_client_job(c, &cj);
	c->fresh = true; /* before the start: its result must find it set, however soon it comes */
	if ((c->client = delivery_client_start(&cj, err, sizeof(err))) == NULL) {
		c->fresh = false; /* no connection was made */
		pool_job_fail_pending(j, RESULT_TEMPFAIL, "4.3.0", err);
		pool_conn_end(c);
	}
}

/* RFC 5321 §5.1: when we are among the MX hosts, only the more preferred ones may be tried; when we
 * are the most preferred, the mail would come back to us. Returns false in that case. */
static bool pool_mx_trim_self(const struct pool_settings *set, struct mx_result *mx)
{
	for (size_t i = 0; i < mx->count; i++)
		if (!mx->targets[i].implicit && strcasecmp(mx->targets[i].host, set->helo) == 0) {
			size_t keep = 0;
			while (keep < mx->count && mx->targets[keep].pref < mx->targets[i].pref)
				keep++;
			mx->count = keep;
			return keep > 0;
		}
	return true;
}

static void pool_on_mx(void *arg, const struct mx_result *r)
{
	struct pool_conn *c = arg;
	struct remote_job *j = c->job;
	c->mxq = NULL;
	if (r->status != MX_STATUS_OK) {
		/* a temporary DNS failure defers, never bounces; null MX and the like fail at once */
		pool_job_fail_pending(j, r->result, r->enhanced[0] ? r->enhanced : "4.4.3", r->reason);
		pool_conn_end(c);
		return;
	}
	if ((c->mx = malloc(sizeof(*c->mx))) == NULL) {
		pool_job_fail_pending(j, RESULT_TEMPFAIL, "4.3.0", "out of memory");
		pool_conn_end(c);
		return;
	}
	*c->mx = *r;
	if (c->set->relay_host == NULL && !pool_mx_trim_self(c->set, c->mx)) {
		char why[DNS_HOST_SIZE + 96];
		snprintf(why, sizeof(why), "mail for %s loops back to myself (%s is its best MX host)", j->domain, c->set->helo);
		pool_job_fail_pending(j, RESULT_TEMPFAIL, "4.4.6", why); /* RFC 3463 X.4.6: routing loop */
		pool_conn_end(c);
		return;
	}
	c->host_i = c->addr_i = 0;
	if (c->stsq == NULL)
		pool_host_prepare(c);
	/* else the MTA-STS answer comes within [delivery] mta_sts_budget, and goes on from there */
}

/* Keeps what a's policy says for the hosts of c's destination. */
static void pool_sts_keep(struct pool_conn *c, const struct mtasts_answer *a)
{
	c->sts_state = a->state;
	snprintf(c->sts_id, sizeof(c->sts_id), "%s", a->id != NULL ? a->id : "");
	if (a->policy == NULL) {
		free(c->sts);
		c->sts = NULL;
		return;
	}
	if (c->sts == NULL && (c->sts = malloc(sizeof(*c->sts))) == NULL) {
		c->sts_state = TLS_DECIDE_STS_FAILED; /* no policy in hand: the most cautious reading */
		return;
	}
	*c->sts = *a->policy;
}

static void pool_on_sts(void *arg, const struct mtasts_answer *a)
{
	struct pool_conn *c = arg;
	c->stsq = NULL;
	pool_sts_keep(c, a);
	log_info("queue_id=%s event=mta_sts domain=%s state=%s reason=%s mode=%s id=%s", c->job->id, c->job->domain,
		 tls_decide_sts_state_str(a->state), a->reason, a->policy != NULL ? mtasts_mode_str(a->policy->mode) : "-",
		 c->sts_id[0] ? c->sts_id : "-");
	if (c->mxq == NULL && c->mx != NULL)
		pool_host_prepare(c); /* the MX answer came first */
}

static void pool_on_sts_recheck(void *arg, const struct mtasts_answer *a)
{
	struct pool_conn *c = arg;
	struct remote_job *j = c->job;
	c->stsq = NULL;
	bool retry = a->id_changed && a->policy != NULL && a->state == TLS_DECIDE_STS_POLICY;
	log_info("queue_id=%s event=mta_sts_recheck domain=%s id_changed=%s id=%s action=%s", j->id, j->domain,
		 a->id_changed ? "yes" : "no", a->id != NULL && a->id[0] ? a->id : "-", retry ? "retry" : "fail");
	if (!retry) {
		pool_conn_end(c); /* the recipients keep their deferral; at the lifetime they fail */
		return;
	}
	/* a new policy: every host again under it, before anything fails */
	pool_sts_keep(c, a);
	c->sts_failed = false;
	c->host_i = c->addr_i = 0;
	c->plain = false;
	pool_host_prepare(c);
}

/* RFC 8461 §5.1: "a message delivery attempt MUST NOT be permanently failed until the sender has
 * first checked for the presence of a new policy". When this attempt failed because of the policy and
 * may be the last before max_queue_lifetime, the TXT record is asked again (the resolver keeps it no
 * longer than its TTL) and a new id is fetched and waited for; with a new policy the hosts are tried again under it. true when
 * the recheck was started: the job stays with c until it answers. maddy and Stalwart fail an enforce
 * mismatch at once without this look. */
static bool pool_sts_recheck(struct pool_conn *c)
{
	struct remote_job *j = c->job;
	if (!c->sts_failed || c->sts_rechecked || c->p->mtasts == NULL || c->p->closing)
		return false;
	int64_t now = (int64_t)time(NULL);
	if (now - j->arrival + POOL_STS_RECHECK_MARGIN_S < (int64_t)c->set->max_lifetime)
		return false;
	c->sts_rechecked = true;
	c->stsq = mtasts_recheck(c->p->mtasts, j->domain, c->set->sts_recheck_ms, pool_on_sts_recheck, c);
	return c->stsq != NULL;
}

/* What the TLS decision for the current host of c's job starts from. */
static struct host_tls_params pool_host_params(const struct pool_conn *c)
{
	const struct remote_job *j = c->job;
	const struct mx_target *t = &c->mx->targets[c->host_i];
	return (struct host_tls_params){
		.host = t->host,
		.literal = t->host[0] == '[',
		.validating = dns_validating(c->set->dns),
		.mx_secure = c->mx->mx_secure,
		.addr_secure = t->secure,
		.port = c->set->port,
		.requiretls = j->requiretls,
		.tls_required_no = j->tls_required_no,
		.global = c->set->global_tls,
		.override = conf_tls_override_lookup(c->set->overrides, c->set->override_count, j->domain),
		.sts_state = c->sts_state,
		.sts = c->sts,
	};
}

/* The TLS policy of the current host is known: connect, or skip the host as the policy says. */
static void pool_host_decided(struct pool_conn *c, const struct dns_result *tlsa)
{
	struct remote_job *j = c->job;
	const struct mx_target *t = &c->mx->targets[c->host_i];
	struct host_tls_params hp = pool_host_params(c);
	host_tls_free(c->htls);
	if ((c->htls = host_tls_decide(&hp, tlsa)) == NULL) {
		pool_job_fail_pending(j, RESULT_TEMPFAIL, "4.3.0", "out of memory");
		pool_conn_end(c);
		return;
	}
	const struct tls_decision *d = &c->htls->decision;
	log_info("queue_id=%s event=tls_policy host=%s action=%s reason=%s policy=%s tlsa=%zu sts=%s", j->id, t->host,
		 tls_decide_action_str(d->action), tls_decide_reason_str(d->reason), tls_decide_policy_str(d->policy),
		 c->htls->dane_count, c->sts_id[0] ? c->sts_id : "-");
	if (d->action != TLS_DECIDE_SKIP) {
		pool_conn_try(c);
		return;
	}
	/* a TLS-policy failure: the next MX host, and when none is left a deferral, never a bounce
	 * (a recipient fails only at max_queue_lifetime) */
	pool_tlsrpt_note(c, NULL);
	snprintf(j->relay, sizeof(j->relay), "%s", t->host);
	snprintf(j->mta, sizeof(j->mta), "%s", t->host);
	c->addr_i = 0;
	if (d->reason == TLS_DECIDE_REASON_STS_MX_MISMATCH)
		c->sts_failed = true;
	if (d->reason == TLS_DECIDE_REASON_REQUIRETLS_UNMET)
		c->rtls_refused = true;
	else
		c->rtls_other = true;
	const char *status = d->status != NULL ? d->status : "4.7.5";
	char why[320];
	snprintf(why, sizeof(why), "%s TLS policy for %s: %s", status, t->host, d->why);
	if (++c->host_i < c->mx->count) {
		pool_host_prepare(c);
		return;
	}
	pool_job_fail_pending(j, RESULT_TEMPFAIL, status, why);
	if (pool_sts_recheck(c))
		return;
	pool_requiretls_final(c);
	pool_conn_end(c);
}

static void pool_on_tlsa(void *arg, uint64_t id, const struct dns_result *r)
{
	struct pool_conn *c = arg;
	(void)id;
	c->tlsa_id = 0;
	pool_host_decided(c, r);
}

/* RFC 7672 §2.2: before connecting to an MX host, its TLSA records when its DNS is secure. */
static void pool_host_prepare(struct pool_conn *c)
{
	if (c->set->relay_host != NULL) {
		pool_conn_try(c); /* the smarthost: [relay] tls decides */
		return;
	}
	char name[DNS_HOST_SIZE + 16];
	struct host_tls_params hp = pool_host_params(c);
	if (!host_tls_wants_tlsa(&hp, name, sizeof(name))) {
		pool_host_decided(c, NULL);
		return;
	}
	if ((c->tlsa_id = dns_lookup(c->set->dns, name, DNS_RRTYPE_TLSA, pool_on_tlsa, c)) == 0) {
		struct dns_result failed = {.status = DNS_STATUS_TEMPFAIL, .rrtype = DNS_RRTYPE_TLSA, .why = "no lookup"};
		pool_host_decided(c, &failed);
	}
}

static void pool_conn_start(struct delivery_pool *p, struct pool_dest *d, struct remote_job *j)
{
	struct pool_conn *c = calloc(1, sizeof(*c));
	pool_job_init(j);
	if (c == NULL) {
		pool_job_fail_pending(j, RESULT_TEMPFAIL, "4.3.0", "out of memory");
		pool_job_done(p, j);
		return;
	}
	c->p = p;
	c->dest = d;
	c->job = j;
	c->next = p->conn_list;
	if (c->next != NULL)
		c->next->prev = c;
	p->conn_list = c;
	d->conns++;
	p->conns++;
	c->set = p->set;
	c->set->refs++;
	c->mxq = c->set->relay_host != NULL ? mx_resolve_host(c->set->dns, c->set->relay_host, pool_on_mx, c)
					    : mx_resolve(c->set->dns, j->domain, pool_on_mx, c);
	/* RFC 8461 §5: the recipient domain's policy, beside its MX lookup; a smarthost is not the
	 * recipient's MX, and an address literal has no policy */
	if (c->mxq != NULL && c->set->relay_host == NULL && p->mtasts != NULL && j->domain[0] != '[')
		c->stsq = mtasts_lookup(p->mtasts, j->domain, c->set->sts_budget_ms, pool_on_sts, c);
	if (c->mxq == NULL) {
		pool_job_fail_pending(j, RESULT_TEMPFAIL, "4.3.0", "out of memory");
		pool_conn_end(c);
	}
}

/* At the total limit, a connection parked for another destination makes room. */
static bool pool_drop_one_parked(struct delivery_pool *p)
{
	for (struct pool_dest *d = p->dests; d != NULL; d = d->next)
		if (d->parked != NULL && d->wait_head == NULL) {
			pool_conn_drop_parked(d->parked);
			return true;
		}
	return false;
}

/* Starts connections for waiting jobs, as far as the limits allow. */
static void pool_service(struct delivery_pool *p)
{
	if (p->closing)
		return;
	if (p->servicing) {
		p->service_again = true;
		return;
	}
	p->servicing = true;
	do {
		p->service_again = false;
		const struct pool_settings *set = p->set;
		for (struct pool_dest *d = p->dests; d != NULL; d = d->next) {
			/* a parked connection to the destination first: no connect, no greeting, no TLS */
			/* a connection is reused only for a message that needs no more security than it
			 * has: REQUIRETLS wants an authenticated one (RFC 8689 §4.2.1) */
			while (d->wait_head != NULL && d->parked != NULL && (!d->wait_head->requiretls || d->parked->verified)) {
				struct pool_conn *c = d->parked;
				struct delivery_client *dc = c->client;
				pool_unpark(c);
				if (!pool_conn_send(c, dc, pool_dest_pop(d))) {
					delivery_client_cancel(dc);
					pool_conn_end(c);
				}
			}
			while (d->wait_head != NULL && d->conns < set->max_per_dest) {
				if (p->conns >= set->max_conns && !pool_drop_one_parked(p))
					break;
				pool_conn_start(p, d, pool_dest_pop(d));
			}
		}
	} while (p->service_again);
	pool_dest_forget_idle(p);
	p->servicing = false;
}

static void pool_on_post(void *arg)
{
	struct remote_job *j = arg;
	struct delivery_pool *p = j->pool;
	if (p->closing) {
		remote_job_free(j);
		return;
	}
	struct pool_dest *d = pool_dest_get(p, p->set->relay_host != NULL ? p->set->relay_host : j->domain);
	if (d == NULL) {
		pool_job_init(j);
		pool_job_fail_pending(j, RESULT_TEMPFAIL, "4.3.0", "out of memory");
		pool_job_done(p, j);
		return;
	}
	j->next = NULL;
	if (d->wait_tail != NULL)
		d->wait_tail->next = j;
	else
		d->wait_head = j;
	d->wait_tail = j;
	pool_service(p);
}

void delivery_pool_post(struct delivery_pool *p, struct remote_job *job)
{
	job->pool = p;
	loopq_post(p->inbox, pool_on_post, job);
}

/* ---- set-up ---- */

static void pool_settings_unref(struct pool_settings *s)
{
	if (s == NULL || --s->refs > 0)
		return;
	if (s->dns != NULL)
		dns_free(s->dns);
	if (s->tls_ctx != NULL)
		SSL_CTX_free(s->tls_ctx);
	free(s->helo);
	free(s->relay_host);
	for (size_t i = 0; i < s->override_count; i++)
		free(s->overrides[i].domain);
	free(s->overrides);
	free(s->auth_user);
	if (s->auth_pass != NULL)
		OPENSSL_cleanse(s->auth_pass, strlen(s->auth_pass));
	free(s->auth_pass);
	free(s);
}

static SSL_CTX *pool_tls_ctx(const struct conf *c, char *error_r, size_t error_size)
{
	SSL_CTX *ctx = delivery_client_tls_ctx_new(error_r, error_size);
	bool relay = c->relay_host[0] != '\0';
	const char *file = relay ? c->relay_ca_file : c->delivery_ca_file;
	if (ctx == NULL || file[0] == '\0')
		return ctx;
	if (SSL_CTX_load_verify_locations(ctx, file, NULL) != 1) {
		snprintf(error_r, error_size, "%s: cannot load the CA certificates of %s", file,
			 relay ? "[relay] ca_file" : "[delivery] ca_file");
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static struct pool_settings *pool_settings_new(const struct conf *c, struct dns *dns, char *error_r,
					       size_t error_size)
{
	struct pool_settings *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		snprintf(error_r, error_size, "out of memory");
		return NULL;
	}
	s->refs = 1;
	s->max_conns = c->out_max_connections;
	s->max_per_dest = c->out_max_per_domain;
	/* RFC 5321 §4.5.3.2: per command; MAIL and RCPT share command_timeout, as their 5 minutes do */
	s->timeouts = (struct delivery_timeouts){
		.connect_ms = c->out_connect_timeout * 1000u,
		.tls_ms = c->out_tls_timeout * 1000u,
		.greeting_ms = c->out_greeting_timeout * 1000u,
		.command_ms = c->out_command_timeout * 1000u,
		.mail_ms = c->out_command_timeout * 1000u,
		.rcpt_ms = c->out_command_timeout * 1000u,
		.data_init_ms = c->out_data_init_timeout * 1000u,
		.data_block_ms = c->out_data_timeout * 1000u,
		.data_end_ms = c->out_data_end_timeout * 1000u,
		.quit_ms = 0, /* the client's short default */
	};
	s->sts_budget_ms = c->mta_sts_budget;
	s->sts_recheck_ms = c->mta_sts_fetch_timeout;
	s->max_lifetime = c->max_queue_lifetime;
	s->helo = strdup(c->hostname);
	bool ok = s->helo != NULL;
	if (c->relay_host[0] != '\0') {
		/* RFC 8314 §3: implicit TLS on 465; a smarthost's certificate is always verified */
		static const enum delivery_tls_policy relay_tls[] = {
			[CONF_RELAY_TLS_STARTTLS] = DELIVERY_TLS_REQUIRED,
			[CONF_RELAY_TLS_IMPLICIT] = DELIVERY_TLS_IMPLICIT,
			[CONF_RELAY_TLS_NONE] = DELIVERY_TLS_NONE,
		};
		s->relay_host = strdup(c->relay_host);
		s->port = c->relay_port;
		s->tls = relay_tls[c->relay_tls];
		ok = ok && s->relay_host != NULL;
		if (c->relay_auth_user[0] != '\0') {
			s->auth_user = strdup(c->relay_auth_user);
			s->auth_pass = strdup(c->relay_auth_password);
			ok = ok && s->auth_user != NULL && s->auth_pass != NULL;
		}
	} else {
		static const enum delivery_tls_policy mx_tls[] = {
			[CONF_TLS_OPPORTUNISTIC] = DELIVERY_TLS_OPPORTUNISTIC,
			[CONF_TLS_REQUIRED] = DELIVERY_TLS_REQUIRED,
			[CONF_TLS_NONE] = DELIVERY_TLS_NONE,
		};
		s->port = c->remote_port;
		s->tls = mx_tls[c->delivery_tls];
		s->global_tls = c->delivery_tls;
		if (c->tls_policy_count > 0) {
			s->overrides = calloc(c->tls_policy_count, sizeof(*s->overrides));
			ok = ok && s->overrides != NULL;
			for (size_t i = 0; ok && i < c->tls_policy_count; i++) {
				s->overrides[i].level = c->tls_policies[i].level;
				ok = (s->overrides[i].domain = strdup(c->tls_policies[i].domain)) != NULL;
				s->override_count += ok;
			}
		}
	}
	if (!ok) {
		snprintf(error_r, error_size, "out of memory");
		pool_settings_unref(s);
		return NULL;
	}
	if ((s->tls_ctx = pool_tls_ctx(c, error_r, error_size)) == NULL) {
		pool_settings_unref(s);
		return NULL;
	}
	s->dns = dns_ref(dns);
	return s;
}

struct delivery_pool *delivery_pool_new(struct event_base *base, const struct conf *c, struct dns *dns,
					struct metrics *metrics, delivery_pool_done_fn *done, void *arg, char *error_r,
					size_t error_size)
{
	struct delivery_pool *p = calloc(1, sizeof(*p));
	if (p == NULL) {
		snprintf(error_r, error_size, "out of memory");
		return NULL;
	}
	p->base = base;
	p->metrics = metrics;
	p->done = done;
	p->done_arg = arg;
	if ((p->set = pool_settings_new(c, dns, error_r, error_size)) == NULL) {
		free(p);
		return NULL;
	}
	if ((p->inbox = loopq_new(base)) == NULL) {
		snprintf(error_r, error_size, "out of memory");
		delivery_pool_free(p);
		return NULL;
	}
	return p;
}

void delivery_pool_set_mtasts(struct delivery_pool *p, struct mtasts_cache *cache)
{
	p->mtasts = cache;
}

int delivery_pool_reconfigure(struct delivery_pool *p, const struct conf *c, struct dns *dns, char *error_r,
			       size_t error_size)
{
	struct pool_settings *s = pool_settings_new(c, dns, error_r, error_size);
	if (s == NULL)
		return -1;
	/* connections in progress keep theirs and close after their job; a larger limit may start
	 * more now */
	pool_settings_unref(p->set);
	p->set = s;
	p->servicing = true; /* no service from inside the drops: once below */
	for (struct pool_dest *d = p->dests; d != NULL; d = d->next)
		while (d->parked != NULL)
			pool_conn_drop_parked(d->parked);
	p->servicing = false;
	pool_service(p);
	return 0;
}

void delivery_pool_free(struct delivery_pool *p)
{
	if (p == NULL)
		return;
	p->closing = true;
	if (p->inbox != NULL)
		loopq_free(p->inbox); /* runs what was posted: closing frees those jobs */
	while (p->conn_list != NULL) {
		struct pool_conn *c = p->conn_list;
		p->conn_list = c->next;
		if (c->client != NULL)
			delivery_client_cancel(c->client);
		if (c->mxq != NULL)
			mx_cancel(c->mxq);
		if (c->tlsa_id != 0)
			dns_cancel(c->set->dns, c->tlsa_id);
		if (c->stsq != NULL)
			mtasts_lookup_cancel(p->mtasts, c->stsq);
		free(c->sts);
		host_tls_free(c->htls);
		remote_job_free(c->job);
		pool_settings_unref(c->set);
		free(c->mx);
		free(c->rcpts);
		free(c->rcpt_of);
		free(c->rcpt_notify);
		free(c->rcpt_orcpt);
		free(c);
	}
	while (p->dests != NULL) {
		struct pool_dest *d = p->dests;
		p->dests = d->next;
		struct remote_job *j;
		while ((j = pool_dest_pop(d)) != NULL)
			remote_job_free(j);
		free(d);
	}
	pool_settings_unref(p->set);
	free(p);
}
