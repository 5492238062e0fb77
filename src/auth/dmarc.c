/* dmarc.c — RFC 9989 §5.3 evaluation: policy discovery, Identifier Alignment, result and
 * disposition for one Author Domain, and the §11.5 combination over a message's Author Domains. */
#include "auth/dmarc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *dmarc_result_str(enum dmarc_result r)
{
	switch (r) {
	case DMARC_RESULT_NONE: return "none";
	case DMARC_RESULT_PASS: return "pass";
	case DMARC_RESULT_FAIL: return "fail";
	case DMARC_RESULT_TEMPERROR: return "temperror";
	case DMARC_RESULT_PERMERROR: return "permerror";
	}
	return "?";
}

enum dmarc_phase {
	DMARC_PHASE_AUTHOR, /* the Author Domain's walk */
	DMARC_PHASE_SPF,
	DMARC_PHASE_DKIM,
	DMARC_PHASE_EXIST,  /* sp or np: does the Author Domain exist? */
	DMARC_PHASE_DONE,
};

/* What one identifier's alignment came to. */
enum dmarc_ident {
	DMARC_IDENT_NO = 0,
	DMARC_IDENT_YES,
	DMARC_IDENT_WALK,   /* relaxed, and only the identifier's own walk can tell */
	DMARC_IDENT_DNS,    /* unknown: a DNS question failed */
	DMARC_IDENT_BUDGET, /* unknown: the question budget ran out */
};

struct dmarc_eval {
	struct dmarc_cache *cache;
	bool own_cache;
	unsigned budget;
	enum dmarc_phase phase;
	struct dmarc_walk *author; /* kept to the end: its nodes hold the records */
	struct dmarc_walk *walk;   /* an identifier's walk in progress */
	bool author_checked, exist_asked;
	const struct dmarc_record *rec; /* the applicable record */
	bool spf_pass;
	char spf[DNS_HOST_SIZE];
	size_t dkim_count, dkim_next;
	char dkim[DMARC_DKIM_MAX][DNS_HOST_SIZE];
	bool dkim_walk[DMARC_DKIM_MAX]; /* which ones need their own walk */
	bool dkim_checked;
	bool unknown_dns, unknown_budget; /* some identifier could not be decided */
	const char *unknown_why;
	int exists; /* the Author Domain: -1 not known, 0 NXDOMAIN, 1 exists */
	struct dmarc_outcome out;
	char reason[400];
};

/* ---- the outcome ---- */

static void eval_finish(struct dmarc_eval *e, enum dmarc_result result, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void eval_finish(struct dmarc_eval *e, enum dmarc_result result, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->reason, sizeof(e->reason), fmt, ap);
	va_end(ap);
	e->out.result = result;
	e->out.reason = e->reason;
	if (result != DMARC_RESULT_FAIL)
		e->out.disposition = DMARC_POLICY_NONE;
	e->phase = DMARC_PHASE_DONE;
	dmarc_walk_free(e->walk);
	e->walk = NULL;
}

/* RFC 9989 §4.7 t=y: "one level below the specified policy" */
static enum dmarc_policy policy_testing(enum dmarc_policy p)
{
	return p == DMARC_POLICY_REJECT ? DMARC_POLICY_QUARANTINE : DMARC_POLICY_NONE;
}

static void eval_conclude(struct dmarc_eval *e)
{
	struct dmarc_outcome *o = &e->out;
	const struct dmarc_record *r = e->rec;
	/* §4.10.1: p for the Author Domain's own record; for the Organizational Domain's or the PSD's,
	 * sp when the Author Domain exists and np when it does not */
	if (o->source == DMARC_SOURCE_DOMAIN)
		o->policy = r->p;
	else
		o->policy = e->exists == 0 ? r->np : r->sp;
	const char *test = r->testing ? " (t=y)" : "";

	if (o->spf_aligned || o->dkim_aligned) {
		eval_finish(e, DMARC_RESULT_PASS, "%s%s%s%s%s aligned with %s (policy %s at _dmarc.%s)",
			    o->spf_aligned ? "SPF " : "", o->spf_aligned ? e->spf : "",
			    o->spf_aligned && o->dkim_aligned ? " and " : "", o->dkim_aligned ? "DKIM d=" : "",
			    o->dkim_aligned ? o->dkim_aligned_domain : "", o->author_domain,
			    dmarc_policy_str(o->policy), o->policy_domain);
		return;
	}
	if (e->unknown_dns) {
		eval_finish(e, DMARC_RESULT_TEMPERROR, "no aligned identifier for %s yet, and DNS failed: %s",
			    o->author_domain, e->unknown_why != NULL ? e->unknown_why : "temporary failure");
		return;
	}
	if (e->unknown_budget) {
		eval_finish(e, DMARC_RESULT_PERMERROR, "no aligned identifier for %s within %u DNS questions",
			    o->author_domain, e->budget);
		return;
	}
	o->disposition = r->testing ? policy_testing(o->policy) : o->policy;
	eval_finish(e, DMARC_RESULT_FAIL, "no identifier aligned with %s; policy %s%s at _dmarc.%s%s, disposition %s",
		    o->author_domain, dmarc_policy_str(o->policy), test, o->policy_domain,
		    o->source == DMARC_SOURCE_DOMAIN ? "" : e->exists == 0 ? " (np: the domain does not exist)" : " (sp)",
		    dmarc_policy_str(o->disposition));
}

/* ---- alignment ---- */

static bool may_ask(const struct dmarc_eval *e)
{
	return e->out.queries < e->budget;
}

/* RFC 9989 §3.2.10, §4.10.2: what can be said of identifier id without its own walk. */
static enum dmarc_ident ident_quick(const struct dmarc_eval *e, const char *id, enum dmarc_align mode)
{
	if (strcmp(id, e->out.author_domain) == 0)
		return DMARC_IDENT_YES;
	if (mode == DMARC_ALIGN_STRICT)
		return DMARC_IDENT_NO; /* §3.2.10.2: "identical" (both in normal form: case ignored) */
	const struct dmarc_walk_result *aw = dmarc_walk_result(e->author);
	if (aw->org_rule == DMARC_ORG_UNKNOWN)
		return aw->status == DMARC_WALK_TEMPFAIL || aw->status == DMARC_WALK_NOMEM ? DMARC_IDENT_DNS
											: DMARC_IDENT_NO;
	/* an Organizational Domain is its domain or one of its parents: outside the author's one,
	 * the identifier cannot have the same */
	if (!dmarc_domain_within(id, aw->org_domain))
		return DMARC_IDENT_NO;
	if (strcmp(id, aw->org_domain) == 0)
		return DMARC_IDENT_YES;
	return DMARC_IDENT_WALK;
}

static enum dmarc_ident ident_walked(struct dmarc_eval *e, const struct dmarc_walk *w)
{
	const struct dmarc_walk_result *r = dmarc_walk_result(w);
	if (r->status != DMARC_WALK_OK) {
		e->unknown_why = r->why;
		return DMARC_IDENT_DNS;
	}
	return strcmp(r->org_domain, dmarc_walk_result(e->author)->org_domain) == 0 ? DMARC_IDENT_YES
										  : DMARC_IDENT_NO;
}

static void ident_unknown(struct dmarc_eval *e, enum dmarc_ident id)
{
	if (id == DMARC_IDENT_DNS) {
		e->unknown_dns = true;
		if (e->unknown_why == NULL)
			e->unknown_why = dmarc_walk_result(e->author)->why;
	} else if (id == DMARC_IDENT_BUDGET) {
		e->unknown_budget = true;
	}
}

/* Runs the identifier walk in progress; AUTH_STEP_DONE when it is over (or abandoned), with its
 * verdict in *id_r. */
static enum auth_step ident_walk_step(struct dmarc_eval *e, const struct dns_result *answer, struct auth_query *q_r,
				      enum dmarc_ident *id_r)
{
	enum auth_step s = dmarc_walk_step(e->walk, answer, q_r);
	if (s == AUTH_STEP_QUERY) {
		if (may_ask(e))
			return AUTH_STEP_QUERY;
		*id_r = DMARC_IDENT_BUDGET;
	} else {
		*id_r = ident_walked(e, e->walk);
	}
	dmarc_walk_free(e->walk);
	e->walk = NULL;
	return AUTH_STEP_DONE;
}

static bool ident_walk_start(struct dmarc_eval *e, const char *id)
{
	e->walk = dmarc_walk_new_cached(id, e->cache);
	if (e->walk == NULL) {
		e->unknown_dns = true;
		e->unknown_why = "out of memory";
		return false;
	}
	return true;
}

/* ---- the phases ---- */

/* Whether relaxed alignment of id with the Author Domain needs the author's Organizational Domain:
 * not when they are equal, and not when they differ in the top label already (an Organizational
 * Domain is its domain or a parent of it, so two domains under different top-level names never
 * share one). */
static bool needs_org(const struct dmarc_eval *e, const char *id)
{
	const char *a = strrchr(e->out.author_domain, '.'), *b = strrchr(id, '.');
	a = a != NULL ? a + 1 : e->out.author_domain;
	b = b != NULL ? b + 1 : id;
	return strcmp(id, e->out.author_domain) != 0 && strcmp(a, b) == 0;
}

/* After the first answer of the author's walk: does the walk have to go on? (§4.10.2: not when
 * every identifier is the Author Domain itself, nor under strict alignment; §4.10.1: not when the
 * record there has no usable policy.) */
static bool author_walk_needed(const struct dmarc_eval *e)
{
	const struct dmarc_node *n = dmarc_walk_result(e->author)->nodes[0];
	if (n->found != DMARC_FOUND_RECORD)
		return true; /* policy discovery goes on */
	if (n->record_error != DMARC_RECORD_OK)
		return false;
	const struct dmarc_record *r = n->record;
	if (e->spf_pass && e->spf[0] != '\0' && r->aspf == DMARC_ALIGN_RELAXED && needs_org(e, e->spf))
		return true;
	for (size_t i = 0; i < e->dkim_count; i++)
		if (r->adkim == DMARC_ALIGN_RELAXED && needs_org(e, e->dkim[i]))
			return true;
	return false;
}

/* §4.10.1 after the author's walk: which record applies, if any. */
static void author_done(struct dmarc_eval *e)
{
	const struct dmarc_walk_result *r = dmarc_walk_result(e->author);
	struct dmarc_outcome *o = &e->out;
	if (r->org_rule != DMARC_ORG_UNKNOWN)
		memcpy(o->org_domain, r->org_domain, sizeof(o->org_domain));
	if (r->status == DMARC_WALK_NOMEM) {
		eval_finish(e, DMARC_RESULT_TEMPERROR, "out of memory");
		return;
	}
	if (r->source == DMARC_SOURCE_NONE) {
		if (r->status == DMARC_WALK_TEMPFAIL)
			eval_finish(e, DMARC_RESULT_TEMPERROR, "DMARC policy discovery for %s failed: %s", o->author_domain,
				    r->why);
		else
			/* §4.10.1: "Mail Receivers MUST NOT apply the DMARC mechanism to the message" */
			eval_finish(e, DMARC_RESULT_NONE, "no DMARC policy record for %s", o->author_domain);
		return;
	}
	const struct dmarc_node *n = r->policy;
	e->rec = n->record;
	o->has_record = true;
	memcpy(&o->record, n->record, sizeof(o->record));
	memcpy(o->policy_domain, n->domain, sizeof(o->policy_domain));
	o->source = r->source;
	o->testing = n->record->testing;
	if (n->record_error != DMARC_RECORD_OK) {
		/* §4.10.1: no valid p (or a bad sp / np) and no valid rua: "no DMARC processing" */
		eval_finish(e, DMARC_RESULT_NONE, "the DMARC record at _dmarc.%s is not usable: %s", n->domain,
			    n->record_why != NULL ? n->record_why : "no policy");
		return;
	}
	e->phase = DMARC_PHASE_SPF;
}

static enum auth_step phase_author(struct dmarc_eval *e, const struct dns_result *answer, struct auth_query *q_r)
{
	enum auth_step s = dmarc_walk_step(e->author, answer, q_r);
	if (s == AUTH_STEP_QUERY) {
		if (!e->author_checked && dmarc_walk_result(e->author)->count >= 1) {
			e->author_checked = true;
			if (!author_walk_needed(e))
				dmarc_walk_stop(e->author);
		}
		if (!dmarc_walk_done(e->author)) {
			if (may_ask(e))
				return AUTH_STEP_QUERY;
			eval_finish(e, DMARC_RESULT_PERMERROR, "DMARC policy discovery for %s needs more than %u DNS questions",
				    e->out.author_domain, e->budget);
			return AUTH_STEP_DONE;
		}
	}
	author_done(e);
	return AUTH_STEP_DONE;
}

static enum auth_step phase_spf(struct dmarc_eval *e, const struct dns_result *answer, struct auth_query *q_r)
{
	enum dmarc_ident id;
	if (e->walk == NULL) {
		if (!e->spf_pass || e->spf[0] == '\0') {
			e->phase = DMARC_PHASE_DKIM;
			return AUTH_STEP_DONE;
		}
		/* RFC 9989 §4.4.2 */
		id = ident_quick(e, e->spf, e->rec->aspf);
		if (id != DMARC_IDENT_WALK)
			goto decided;
		if (!ident_walk_start(e, e->spf)) {
			e->phase = DMARC_PHASE_DKIM;
			return AUTH_STEP_DONE;
		}
	}
	if (ident_walk_step(e, answer, q_r, &id) == AUTH_STEP_QUERY)
		return AUTH_STEP_QUERY;
decided:
	e->out.spf_aligned = id == DMARC_IDENT_YES;
	ident_unknown(e, id);
	e->phase = DMARC_PHASE_DKIM;
	return AUTH_STEP_DONE;
}

static void dkim_aligned(struct dmarc_eval *e, size_t i)
{
	e->out.dkim_aligned = true;
	memcpy(e->out.dkim_aligned_domain, e->dkim[i], sizeof(e->out.dkim_aligned_domain));
	e->phase = DMARC_PHASE_EXIST;
}

static enum auth_step phase_dkim(struct dmarc_eval *e, const struct dns_result *answer, struct auth_query *q_r)
{
	/* RFC 9989 §4.4.1: "a DMARC pass result if any DKIM-Authenticated Identifier aligns"; the
	 * ones decided without DNS first */
	if (!e->dkim_checked) {
		e->dkim_checked = true;
		for (size_t i = 0; i < e->dkim_count; i++) {
			enum dmarc_ident id = ident_quick(e, e->dkim[i], e->rec->adkim);
			if (id == DMARC_IDENT_YES) {
				dkim_aligned(e, i);
				return AUTH_STEP_DONE;
			}
			e->dkim_walk[i] = id == DMARC_IDENT_WALK;
			ident_unknown(e, id);
		}
	}
	for (;;) {
		if (e->walk == NULL) {
			while (e->dkim_next < e->dkim_count && !e->dkim_walk[e->dkim_next])
				e->dkim_next++;
			if (e->dkim_next == e->dkim_count)
				break;
			if (!ident_walk_start(e, e->dkim[e->dkim_next]))
				break;
		}
		enum dmarc_ident id;
		if (ident_walk_step(e, answer, q_r, &id) == AUTH_STEP_QUERY)
			return AUTH_STEP_QUERY;
		answer = NULL;
		if (id == DMARC_IDENT_YES) {
			dkim_aligned(e, e->dkim_next);
			return AUTH_STEP_DONE;
		}
		ident_unknown(e, id);
		e->dkim_next++;
	}
	e->phase = DMARC_PHASE_EXIST;
	return AUTH_STEP_DONE;
}

static enum auth_step phase_exist(struct dmarc_eval *e, const struct dns_result *answer, struct auth_query *q_r)
{
	if (answer != NULL) {
		/* RFC 9989 §3.2.13, RFC 8020: NXDOMAIN means the name does not exist; Appendix A.4: "if
		 * any RR exists for a domain, then the domain exists" (NODATA included) */
		if (answer->status == DNS_STATUS_NXDOMAIN) {
			e->exists = 0;
		} else if (answer->status == DNS_STATUS_OK || answer->status == DNS_STATUS_NODATA) {
			e->exists = 1;
		} else if (!e->out.spf_aligned && !e->out.dkim_aligned) {
			e->unknown_dns = true;
			e->unknown_why = "the Author Domain's existence could not be checked (DNS failure)";
		}
		eval_conclude(e);
		return AUTH_STEP_DONE;
	}
	const struct dmarc_node *n0 = dmarc_walk_result(e->author)->nodes[0];
	if (e->out.source == DMARC_SOURCE_DOMAIN || e->rec->sp == e->rec->np) {
		eval_conclude(e); /* p applies, or sp and np agree: existence does not matter */
		return AUTH_STEP_DONE;
	}
	if (n0->found != DMARC_FOUND_TOO_LONG && n0->status != DNS_STATUS_NXDOMAIN) {
		e->exists = 1; /* _dmarc.<author> exists, so its parent does */
		eval_conclude(e);
		return AUTH_STEP_DONE;
	}
	if (!may_ask(e)) {
		if (!e->out.spf_aligned && !e->out.dkim_aligned)
			e->unknown_budget = true;
		eval_conclude(e);
		return AUTH_STEP_DONE;
	}
	/* CNAME: answered by the name itself, never by the target of a chain */
	snprintf(q_r->name, sizeof(q_r->name), "%s", e->out.author_domain);
	q_r->rrtype = DNS_RRTYPE_CNAME;
	e->exist_asked = true;
	return AUTH_STEP_QUERY;
}

enum auth_step dmarc_eval_step(void *arg, const struct dns_result *answer, struct auth_query *q_r)
{
	struct dmarc_eval *e = arg;
	if (answer != NULL && e->phase != DMARC_PHASE_DONE)
		e->out.queries++;
	for (;;) {
		enum auth_step s = AUTH_STEP_DONE;
		switch (e->phase) {
		case DMARC_PHASE_AUTHOR: s = phase_author(e, answer, q_r); break;
		case DMARC_PHASE_SPF: s = phase_spf(e, answer, q_r); break;
		case DMARC_PHASE_DKIM: s = phase_dkim(e, answer, q_r); break;
		case DMARC_PHASE_EXIST: s = phase_exist(e, e->exist_asked ? answer : NULL, q_r); break;
		case DMARC_PHASE_DONE: return AUTH_STEP_DONE;
		}
		if (s == AUTH_STEP_QUERY)
			return s;
		answer = NULL;
	}
}

/* ---- construction ---- */

static struct dmarc_eval *eval_new(const struct dmarc_input *in, struct dmarc_cache *cache, unsigned budget)
{
	struct dmarc_eval *e = calloc(1, sizeof(*e));
	if (e == NULL)
		return NULL;
	e->own_cache = cache == NULL;
	e->cache = cache != NULL ? cache : dmarc_cache_new();
	e->budget = budget;
	e->exists = -1;
	e->out.reason = "";
	if (e->cache == NULL) {
		free(e);
		return NULL;
	}
	const char *why = "no Author Domain";
	const char *author = in->author_domain != NULL ? in->author_domain : "";
	if (dmarc_from_domain(author, strlen(author), e->out.author_domain, &why) != DMARC_FROM_OK) {
		e->out.author_domain[0] = '\0';
		eval_finish(e, DMARC_RESULT_PERMERROR, "the Author Domain is not usable: %s", why);
		return e;
	}
	/* identifiers that are not domain names cannot align: left out */
	e->spf_pass = in->spf_pass && in->spf_domain != NULL &&
		      dmarc_from_domain(in->spf_domain, strlen(in->spf_domain), e->spf, &why) == DMARC_FROM_OK;
	for (size_t i = 0; i < in->dkim_pass_count && e->dkim_count < DMARC_DKIM_MAX; i++) {
		const char *d = in->dkim_pass_domains[i];
		char norm[DNS_HOST_SIZE];
		if (d == NULL || dmarc_from_domain(d, strlen(d), norm, &why) != DMARC_FROM_OK)
			continue;
		bool dup = false;
		for (size_t k = 0; k < e->dkim_count; k++)
			dup = dup || strcmp(e->dkim[k], norm) == 0;
		if (!dup)
			memcpy(e->dkim[e->dkim_count++], norm, sizeof(norm));
	}
	e->author = dmarc_walk_new_cached(e->out.author_domain, e->cache);
	if (e->author == NULL) {
		dmarc_eval_free(e);
		return NULL;
	}
	return e;
}

struct dmarc_eval *dmarc_eval_new(const struct dmarc_input *in)
{
	return eval_new(in, NULL, DMARC_QUERIES_MAX);
}

const struct dmarc_outcome *dmarc_eval_outcome(const struct dmarc_eval *e)
{
	return &e->out;
}

void dmarc_eval_free(struct dmarc_eval *e)
{
	if (e == NULL)
		return;
	dmarc_walk_free(e->walk);
	dmarc_walk_free(e->author);
	if (e->own_cache)
		dmarc_cache_free(e->cache);
	free(e);
}

/* ---- a whole message (RFC 9989 §5.3.1, §11.5) ---- */

struct dmarc_msg {
	struct dmarc_cache *cache;
	size_t count, cur;
	struct dmarc_eval *evals[DMARC_FROM_DOMAINS_MAX];
	bool started, done;
	bool truncated;
	struct dmarc_msg_outcome out;
	char reason[480];
};

static void msg_combine(struct dmarc_msg *m)
{
	struct dmarc_msg_outcome *o = &m->out;
	const struct dmarc_outcome *fail = NULL, *temp = NULL, *perm = NULL, *pass = NULL;
	for (size_t i = 0; i < m->count; i++) {
		const struct dmarc_outcome *x = o->outcomes[i];
		if (x->result == DMARC_RESULT_FAIL && (fail == NULL || x->disposition > fail->disposition))
			fail = x; /* "the most strict policy selected among the checks that fail" */
		else if (x->result == DMARC_RESULT_TEMPERROR && temp == NULL)
			temp = x;
		else if (x->result == DMARC_RESULT_PERMERROR && perm == NULL)
			perm = x;
		else if (x->result == DMARC_RESULT_PASS && pass == NULL)
			pass = x;
	}
	const struct dmarc_outcome *d;
	if (fail != NULL)
		o->result = DMARC_RESULT_FAIL, d = fail;
	else if (temp != NULL)
		o->result = DMARC_RESULT_TEMPERROR, d = temp;
	else if (perm != NULL || m->truncated)
		/* §11.5: "If not all Author Domains are processed, then the DMARC evaluation is incomplete." */
		o->result = DMARC_RESULT_PERMERROR, d = perm;
	else if (pass != NULL)
		o->result = DMARC_RESULT_PASS, d = pass;
	else
		o->result = DMARC_RESULT_NONE, d = m->count > 0 ? o->outcomes[0] : NULL;
	o->decisive = d;
	o->disposition = fail != NULL ? fail->disposition : DMARC_POLICY_NONE;
	char fields[64] = "";
	if (o->from_fields > 1)
		snprintf(fields, sizeof(fields), "%zu From fields; ", o->from_fields);
	if (d == NULL)
		snprintf(m->reason, sizeof(m->reason), "%smore than %d Author Domains: the evaluation is incomplete",
			 fields, DMARC_FROM_DOMAINS_MAX);
	else if (m->count == 1)
		snprintf(m->reason, sizeof(m->reason), "%s%s", fields, d->reason);
	else
		snprintf(m->reason, sizeof(m->reason), "%s%zu Author Domains%s; %s: %s", fields, m->count,
			 m->truncated ? " evaluated (more not)" : "", d->author_domain, d->reason);
	o->reason = m->reason;
	m->done = true;
}

struct dmarc_msg *dmarc_msg_new(const struct dmarc_msg_input *in)
{
	struct dmarc_msg *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->out.reason = "";
	const struct dmarc_from *f = in->from;
	m->out.from_fields = f != NULL ? f->fields : 0;
	if (f == NULL || in->from_error != DMARC_FROM_OK || f->count == 0) {
		/* RFC 9989 §5.3.1: "If zero ... domain is extracted ..., DMARC validation is not possible" */
		snprintf(m->reason, sizeof(m->reason), "no Author Domain (%s)",
			 dmarc_from_error_str(f == NULL ? DMARC_FROM_NONE : in->from_error == DMARC_FROM_OK
										? DMARC_FROM_NO_DOMAIN
										: in->from_error));
		m->out.result = DMARC_RESULT_PERMERROR;
		m->out.reason = m->reason;
		m->done = true;
		return m;
	}
	m->cache = dmarc_cache_new();
	if (m->cache == NULL) {
		free(m);
		return NULL;
	}
	m->truncated = f->truncated;
	for (size_t i = 0; i < f->count && i < DMARC_FROM_DOMAINS_MAX; i++) {
		struct dmarc_input ein = {
			.author_domain = f->domains[i],
			.spf_pass = in->spf_pass,
			.spf_domain = in->spf_domain,
			.dkim_pass_domains = in->dkim_pass_domains,
			.dkim_pass_count = in->dkim_pass_count,
		};
		m->evals[i] = eval_new(&ein, m->cache, DMARC_QUERIES_MAX);
		if (m->evals[i] == NULL) {
			dmarc_msg_free(m);
			return NULL;
		}
		m->out.outcomes[i] = dmarc_eval_outcome(m->evals[i]);
		m->count++;
	}
	m->out.count = m->count;
	return m;
}

enum auth_step dmarc_msg_step(void *arg, const struct dns_result *answer, struct auth_query *q_r)
{
	struct dmarc_msg *m = arg;
	if (m->done)
		return AUTH_STEP_DONE;
	while (m->cur < m->count) {
		struct dmarc_eval *e = m->evals[m->cur];
		if (answer == NULL && e->out.queries == 0) {
			/* the message's budget, shared in order */
			unsigned left = DMARC_MSG_QUERIES_MAX - m->out.queries;
			e->budget = left < DMARC_QUERIES_MAX ? left : DMARC_QUERIES_MAX;
		}
		if (dmarc_eval_step(e, answer, q_r) == AUTH_STEP_QUERY)
			return AUTH_STEP_QUERY;
		answer = NULL;
		m->out.queries += e->out.queries;
		m->cur++;
	}
	msg_combine(m);
	return AUTH_STEP_DONE;
}

const struct dmarc_msg_outcome *dmarc_msg_outcome(const struct dmarc_msg *m)
{
	return &m->out;
}

void dmarc_msg_free(struct dmarc_msg *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->count; i++)
		dmarc_eval_free(m->evals[i]);
	dmarc_cache_free(m->cache);
	free(m);
}
