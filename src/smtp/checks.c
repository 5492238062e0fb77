/* checks.c — SPF, DKIM and DMARC for one received message, and the Authentication-Results field.
 * SPF starts at once; DKIM hashes the body on a worker thread, then fetches its keys; when both are
 * done, DMARC walks the DNS for the author domain's policy. Every DNS question goes through
 * net/dns_drive.c, so the evaluators themselves stay pure. */
#include "smtp/checks.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "auth/authres.h"
#include "auth/dkim_verify.h"
#include "auth/dmarc.h"
#include "auth/spf.h"
#include "net/dns_drive.h"
#include "report/dmarc_report.h"
#include "report/report_scheduler.h"
#include "queue/queue.h"
#include "queue/spool.h"
#include "server/server.h"
#include "util/addr.h"
#include "util/worker.h"

struct smtp_checks {
	struct server *srv;
	smtp_checks_done_fn *done;
	void *arg;
	struct queue_msg *m;
	const char *msg; /* the content as received, inside m->data */
	size_t len;
	char hostname[DNS_HOST_SIZE];
	char mail_from[ADDR_TEXT_MAX + 1];
	unsigned dkim_max;
	enum conf_dmarc_action action;
	bool reports;                      /* [dmarc] reports: record the evaluation (RFC 9990) */
	char client_ip[DMARC_REPORT_IP_SIZE];
	char rcpt_domain[DNS_HOST_SIZE];   /* the first recipient's, for envelope_to */
	time_t now;

	struct spf_eval *spf;
	struct dns_drive *spf_drive;
	bool spf_done;

	struct dkim_verify *dkim;
	struct dns_drive *dkim_drive;
	bool dkim_hashing; /* on a worker thread: the struct is freed by the job's end */
	bool dkim_done;

	struct dmarc_from from;
	struct dmarc_msg *dmarc;
	struct dns_drive *dmarc_drive;

	struct event *deadline_ev;
	bool timed_out;
	bool cancelled;
};

const char *smtp_checks_verdict_str(enum smtp_checks_verdict v)
{
	switch (v) {
	case SMTP_CHECKS_ACCEPT: return "accept";
	case SMTP_CHECKS_QUARANTINE: return "quarantine";
	case SMTP_CHECKS_REJECT: return "reject";
	case SMTP_CHECKS_TEMPFAIL: return "tempfail";
	}
	return "?";
}

static void checks_free(struct smtp_checks *c)
{
	if (c->deadline_ev != NULL)
		event_free(c->deadline_ev);
	dns_drive_cancel(c->spf_drive);
	dns_drive_cancel(c->dkim_drive);
	dns_drive_cancel(c->dmarc_drive);
	spf_eval_free(c->spf);
	dkim_verify_free(c->dkim);
	dmarc_msg_free(c->dmarc);
	queue_msg_free(c->m);
	free(c);
}

/* ---- the outcome ---- */

/* Whether SPF or a DKIM signature ended in temperror: a DMARC failure may then be DNS trouble. */
static bool checks_had_temperror(const struct smtp_checks *c)
{
	if (!c->spf_done || spf_eval_result(c->spf) == SPF_RESULT_TEMPERROR || !c->dkim_done)
		return true;
	for (size_t i = 0; c->dkim != NULL && i < dkim_verify_count(c->dkim); i++)
		if (dkim_verify_result(c->dkim, i)->result == DKIM_RESULT_TEMPERROR)
			return true;
	return false;
}

static void checks_summary_add(struct smtp_checks_outcome *o, const char *method, const char *result)
{
	size_t n = strlen(o->summary);
	snprintf(o->summary + n, sizeof(o->summary) - n, "%s%s=%s", n > 0 ? " " : "", method, result);
}

/* RFC 9990: one row per evaluated author domain whose policy asks for aggregate reports. */
static void checks_record(struct smtp_checks *c, const struct dmarc_msg_outcome *d,
			  enum smtp_checks_verdict verdict)
{
	struct dmarc_report_row rows[DMARC_FROM_DOMAINS_MAX];
	size_t n = 0;
	const char *at = strrchr(c->mail_from, '@');
	for (size_t i = 0; i < d->count && n < DMARC_FROM_DOMAINS_MAX; i++) {
		struct dmarc_report_row *row = &rows[n];
		if (d->outcomes[i] == NULL || !dmarc_report_row_fill(row, d->outcomes[i]))
			continue;
		row->time = (int64_t)c->now;
		snprintf(row->source_ip, sizeof(row->source_ip), "%s", c->client_ip);
		snprintf(row->envelope_from, sizeof(row->envelope_from), "%s", at != NULL ? at + 1 : "");
		snprintf(row->envelope_to, sizeof(row->envelope_to), "%s", c->rcpt_domain);
		snprintf(row->spf_domain, sizeof(row->spf_domain), "%s", spf_eval_domain(c->spf));
		row->spf_scope = c->mail_from[0] != '\0' ? DMARC_REPORT_SCOPE_MFROM : DMARC_REPORT_SCOPE_HELO;
		row->spf_result = spf_eval_result(c->spf);
		for (size_t k = 0; c->dkim != NULL && k < dkim_verify_count(c->dkim); k++) {
			const struct dkim_sig_result *s = dkim_verify_result(c->dkim, k);
			if (s->domain[0] != '\0')
				dmarc_report_row_add_dkim(row, s->domain, s->selector, s->result);
		}
		/* §3.1.6: what we did, when it is not what the policy asked for */
		enum dmarc_policy done = verdict == SMTP_CHECKS_REJECT ? DMARC_POLICY_REJECT
					 : verdict == SMTP_CHECKS_QUARANTINE ? DMARC_POLICY_QUARANTINE
									     : DMARC_POLICY_NONE;
		if (row->disposition != done && !(row->published.testing)) {
			row->disposition = done;
			row->override = DMARC_REPORT_OVERRIDE_LOCAL_POLICY;
		}
		n++;
	}
	report_scheduler_record(c->srv->reports, rows, n);
}

static void checks_finish(struct smtp_checks *c)
{
	struct smtp_checks_outcome o = {.m = c->m, .verdict = SMTP_CHECKS_ACCEPT};
	c->m = NULL;
	evtimer_del(c->deadline_ev);
	/* c->dkim belongs to the worker until the hashing is done */
	size_t nsig = c->dkim_done && c->dkim != NULL ? dkim_verify_count(c->dkim) : 0;
	struct authres_method *m = calloc(nsig + 3, sizeof(*m));
	size_t n = 0;

	if (m != NULL) {
		/* RFC 8601 §2.7.2: spf with smtp.mailfrom, or smtp.helo for the null sender (RFC 7208 §2.4) */
		enum spf_result sr = c->spf_done ? spf_eval_result(c->spf) : SPF_RESULT_TEMPERROR;
		m[n] = (struct authres_method){.method = "spf", .result = spf_result_str(sr)};
		m[n].props[0] = c->mail_from[0] != '\0' ? (struct authres_prop){"smtp.mailfrom", c->mail_from}
							: (struct authres_prop){"smtp.helo", spf_eval_domain(c->spf)};
		if (!c->spf_done)
			m[n].reason = "DNS lookups took too long";
		else if (sr == SPF_RESULT_TEMPERROR || sr == SPF_RESULT_PERMERROR)
			m[n].reason = spf_eval_problem(c->spf);
		checks_summary_add(&o, "spf", spf_result_str(sr));
		n++;
		/* RFC 8601 §2.7.1: one dkim result per signature; "none" without any */
		if (!c->dkim_done) {
			nsig = 0;
			m[n++] = (struct authres_method){.method = "dkim", .result = "temperror",
							 .reason = "DNS lookups took too long"};
			checks_summary_add(&o, "dkim", "temperror");
		} else if (nsig == 0) {
			m[n++] = (struct authres_method){.method = "dkim", .result = "none"};
			checks_summary_add(&o, "dkim", "none");
		}
		for (size_t i = 0; i < nsig; i++) {
			const struct dkim_sig_result *r = dkim_verify_result(c->dkim, i);
			m[n] = (struct authres_method){.method = "dkim", .result = dkim_result_str(r->result)};
			if (r->result != DKIM_RESULT_PASS || r->body_length_limited)
				m[n].reason = r->reason;
			m[n].props[0] = (struct authres_prop){"header.d", r->domain};
			m[n].props[1] = (struct authres_prop){"header.s", r->selector};
			m[n].props[2] = (struct authres_prop){"header.b", r->b_prefix}; /* RFC 6008 */
			checks_summary_add(&o, "dkim", dkim_result_str(r->result));
			n++;
		}
		/* RFC 9989 §9.2 / RFC 8601 §2.7.1: header.from is the Author Domain that decided */
		const struct dmarc_msg_outcome *d = c->dmarc != NULL ? dmarc_msg_outcome(c->dmarc) : NULL;
		const char *dres = d != NULL && !c->timed_out ? dmarc_result_str(d->result) : "temperror";
		m[n] = (struct authres_method){.method = "dmarc", .result = dres};
		m[n].props[0] = (struct authres_prop){"header.from", d != NULL && d->decisive != NULL
									 ? d->decisive->author_domain
									 : c->from.count > 0 ? c->from.domains[0] : NULL};
		if (c->timed_out)
			m[n].reason = "DNS lookups took too long";
		else if (d == NULL)
			m[n].reason = "out of memory";
		else if (d->result != DMARC_RESULT_PASS)
			m[n].reason = d->reason;
		checks_summary_add(&o, "dmarc", dres);
		n++;
		if (d != NULL && !c->timed_out && d->result == DMARC_RESULT_FAIL && c->action == CONF_DMARC_ENFORCE) {
			const char *where = d->decisive != NULL ? d->decisive->policy_domain : "the author domain";
			if (d->disposition == DMARC_POLICY_REJECT && checks_had_temperror(c)) {
				/* a failure that DNS trouble may have caused is not final (RFC 9989 §5.3.6
				 * leaves it to the receiver; a permanent refusal would bounce good mail) */
				o.verdict = SMTP_CHECKS_TEMPFAIL;
				snprintf(o.reason, sizeof(o.reason),
					 "DMARC of %.150s fails while SPF or DKIM lookups failed; try again later", where);
			} else if (d->disposition == DMARC_POLICY_REJECT) {
				o.verdict = SMTP_CHECKS_REJECT;
				snprintf(o.reason, sizeof(o.reason), "Message rejected by the DMARC policy of %.200s", where);
			} else if (d->disposition == DMARC_POLICY_QUARANTINE) {
				o.verdict = SMTP_CHECKS_QUARANTINE;
			}
		}
		o.authres = authres_format(c->hostname, m, n);
		if (c->reports && d != NULL && !c->timed_out && o.verdict != SMTP_CHECKS_TEMPFAIL)
			checks_record(c, d, o.verdict);
	}
	free(m);
	c->done(c->arg, &o);
	free(o.authres);
	if (c->dkim_hashing)
		c->cancelled = true; /* the hashing job still runs (the deadline came first): its end frees */
	else
		checks_free(c);
}

/* ---- DMARC, once SPF and DKIM are done ---- */

static void checks_dmarc_done(void *arg, bool exceeded)
{
	struct smtp_checks *c = arg;
	c->dmarc_drive = NULL;
	checks_finish(c);
}

static void checks_dmarc_start(struct smtp_checks *c)
{
	const char *err;
	enum dmarc_from_error fe = dmarc_from_parse(c->msg, c->len, &c->from, &err);
	size_t nsig = c->dkim != NULL ? dkim_verify_count(c->dkim) : 0, npass = 0;
	const char **pass = calloc(nsig + 1, sizeof(*pass));
	if (pass == NULL) {
		checks_finish(c);
		return;
	}
	for (size_t i = 0; i < nsig; i++) {
		const struct dkim_sig_result *r = dkim_verify_result(c->dkim, i);
		if (r->result == DKIM_RESULT_PASS)
			pass[npass++] = r->domain;
	}
	struct dmarc_msg_input in = {
		.from = &c->from,
		.from_error = fe,
		.spf_pass = spf_eval_result(c->spf) == SPF_RESULT_PASS,
		.spf_domain = spf_eval_domain(c->spf),
		.dkim_pass_domains = pass,
		.dkim_pass_count = npass,
	};
	c->dmarc = dmarc_msg_new(&in);
	free(pass);
	if (c->dmarc != NULL)
		c->dmarc_drive = dns_drive_start(c->srv->dns, dmarc_msg_step, c->dmarc, checks_dmarc_done, c);
	if (c->dmarc_drive == NULL) {
		dmarc_msg_free(c->dmarc);
		c->dmarc = NULL;
		checks_finish(c);
	}
}

static void checks_part_done(struct smtp_checks *c)
{
	if (c->spf_done && c->dkim_done)
		checks_dmarc_start(c);
}

/* ---- SPF ---- */

static void checks_spf_done(void *arg, bool exceeded)
{
	struct smtp_checks *c = arg;
	c->spf_drive = NULL;
	c->spf_done = true;
	checks_part_done(c);
}

/* ---- DKIM ---- */

static void checks_dkim_done(void *arg, bool exceeded)
{
	struct smtp_checks *c = arg;
	c->dkim_drive = NULL;
	c->dkim_done = true;
	checks_part_done(c);
}

static void checks_dkim_work(void *arg)
{
	struct smtp_checks *c = arg;
	/* RFC 6376 §6.1: every signature is parsed and its body hash computed here, off the loop */
	/* the body of a large message is read from its spool, once */
	struct dkim_body_tail tail = {.read = c->m->body != NULL ? queue_spool_read : NULL, .arg = c->m->body};
	c->dkim = dkim_verify_new_tail(c->msg, c->len, &tail, c->dkim_max, c->now);
}

static void checks_dkim_hashed(void *arg)
{
	struct smtp_checks *c = arg;
	c->dkim_hashing = false;
	if (c->cancelled) {
		checks_free(c);
		return;
	}
	if (c->dkim != NULL) {
		/* the steps run here, on the loop: the one thread that uses the server's key cache */
		dkim_verify_key_cache_set(c->dkim, c->srv->dkim_keys);
		c->dkim_drive = dns_drive_start(c->srv->dns, dkim_verify_step, c->dkim, checks_dkim_done, c);
	}
	if (c->dkim_drive == NULL) {
		/* out of memory: reported as no signature checked rather than holding the message */
		dkim_verify_free(c->dkim);
		c->dkim = NULL;
		c->dkim_done = true;
		checks_part_done(c);
	}
}

/* ---- the deadline ---- */

/* RFC 7208 §4.6.4 lets a receiver bound the time SPF takes (at least 20 s); the whole of the checks
 * gets that bound, so a dead name server costs a message 20 s, not minutes. What is unfinished then
 * is reported as temperror, and no DMARC policy is applied on a guess. */
static void checks_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_checks *c = arg;
	c->timed_out = true;
	dns_drive_cancel(c->spf_drive);
	c->spf_drive = NULL;
	dns_drive_cancel(c->dkim_drive);
	c->dkim_drive = NULL;
	dns_drive_cancel(c->dmarc_drive);
	c->dmarc_drive = NULL;
	checks_finish(c);
}

/* ---- start and cancel ---- */

struct smtp_checks *smtp_checks_start(struct server *srv, const struct smtp_checks_input *in,
				      smtp_checks_done_fn *done, void *arg)
{
	struct smtp_checks *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->srv = srv;
	c->done = done;
	c->arg = arg;
	c->m = in->m;
	c->msg = in->m->data + in->content_off;
	c->len = in->m->size - in->content_off;
	c->dkim_max = in->conf->dkim_max_signatures;
	c->action = in->conf->dmarc_action;
	c->reports = in->conf->dmarc_reports;
	snprintf(c->client_ip, sizeof(c->client_ip), "%s", in->client_ip);
	const char *rcpt_at = in->m->rcpt_count > 0 ? strrchr(in->m->rcpts[0], '@') : NULL;
	snprintf(c->rcpt_domain, sizeof(c->rcpt_domain), "%s", rcpt_at != NULL ? rcpt_at + 1 : "");
	c->now = in->now;
	snprintf(c->hostname, sizeof(c->hostname), "%s", in->conf->hostname);
	snprintf(c->mail_from, sizeof(c->mail_from), "%s", in->mail_from);

	struct spf_request req = {
		.mail_from = in->mail_from,
		.helo = in->helo,
		.receiver = in->conf->hostname,
		.identity = SPF_IDENTITY_MAILFROM,
		.now = in->now,
	};
	if (inet_pton(AF_INET, in->client_ip, req.ip.bytes) == 1)
		req.ip.family = AF_INET;
	else if (inet_pton(AF_INET6, in->client_ip, req.ip.bytes) == 1)
		req.ip.family = AF_INET6;
	c->spf = spf_eval_new(&req);
	if (c->spf == NULL ||
	    (c->spf_drive = dns_drive_start(srv->dns, spf_eval_step, c->spf, checks_spf_done, c)) == NULL) {
		c->m = NULL; /* still the caller's */
		checks_free(c);
		return NULL;
	}
	struct timeval deadline = {.tv_sec = SMTP_CHECKS_DEADLINE};
	if ((c->deadline_ev = evtimer_new(srv->base, checks_deadline_cb, c)) == NULL) {
		c->m = NULL; /* still the caller's */
		checks_free(c);
		return NULL;
	}
	evtimer_add(c->deadline_ev, &deadline);
	c->dkim_hashing = true;
	worker_pool_submit(srv->workers, checks_dkim_work, checks_dkim_hashed, c);
	return c;
}

void smtp_checks_cancel(struct smtp_checks *c)
{
	if (c == NULL)
		return;
	if (c->dkim_hashing) {
		/* the worker still reads the message and writes c->dkim: its end frees */
		c->cancelled = true;
		dns_drive_cancel(c->spf_drive);
		c->spf_drive = NULL;
		return;
	}
	checks_free(c);
}
