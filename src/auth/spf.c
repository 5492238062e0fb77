/* spf.c — RFC 7208 check_host() as a state machine on the auth_dns.h step protocol: the request and
 * initial processing (§4.3), the records and their selection (§4.4, §4.5), the include stack,
 * redirect= (§6.1), the explanation (§6.2) and the limits of §4.6.4. The mechanisms themselves
 * (§5) are in spf_mech.c; the state both share is in spf_eval.h. */
#include "auth/spf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "auth/spf_eval.h"
#include "auth/spf_macro.h"
#include "auth/spf_record.h"

#define SPF_STRINGIFY_(x) #x
#define SPF_STRINGIFY(x) SPF_STRINGIFY_(x)

const char *spf_result_str(enum spf_result r)
{
	switch (r) {
	case SPF_RESULT_NONE: return "none";
	case SPF_RESULT_NEUTRAL: return "neutral";
	case SPF_RESULT_PASS: return "pass";
	case SPF_RESULT_FAIL: return "fail";
	case SPF_RESULT_SOFTFAIL: return "softfail";
	case SPF_RESULT_TEMPERROR: return "temperror";
	case SPF_RESULT_PERMERROR: return "permerror";
	}
	return "?";
}

const char *spf_identity_str(enum spf_identity i)
{
	switch (i) {
	case SPF_IDENTITY_MAILFROM: return "mailfrom";
	case SPF_IDENTITY_HELO: return "helo";
	}
	return "?";
}

/* Text from DNS or the peer, made fit for a log line or a header comment: printable US-ASCII
 * without parentheses or backslashes, cut at size. */
const char *spf_clean(const char *s, size_t len, char *buf, size_t size)
{
	size_t n = len < size - 1 ? len : size - 1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		buf[i] = c < 0x20 || c > 0x7e || c == '(' || c == ')' || c == '\\' ? '?' : (char)c;
	}
	buf[n] = '\0';
	return buf;
}

void spf_problem(struct spf_eval *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(e->problem, sizeof(e->problem), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n < sizeof(e->problem))
		return;
	/* cut short: not inside a UTF-8 sequence (the "§" of the messages) */
	size_t len = strlen(e->problem), lead = len;
	while (lead > 0 && ((unsigned char)e->problem[lead - 1] & 0xc0) == 0x80)
		lead--;
	if (lead > 0 && (unsigned char)e->problem[lead - 1] >= 0xc0) {
		unsigned char c = (unsigned char)e->problem[lead - 1];
		size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
		if (len - (lead - 1) < need)
			e->problem[lead - 1] = '\0';
	}
}

void spf_finish(struct spf_eval *e, enum spf_result r)
{
	e->result = r;
	e->phase = SPF_PHASE_DONE;
}

struct spf_frame *spf_top(struct spf_eval *e)
{
	return &e->frames[e->depth - 1];
}

static enum spf_result spf_qualifier_result(enum spf_qualifier q)
{
	switch (q) {
	case SPF_QUALIFIER_PASS: return SPF_RESULT_PASS;
	case SPF_QUALIFIER_FAIL: return SPF_RESULT_FAIL;
	case SPF_QUALIFIER_SOFTFAIL: return SPF_RESULT_SOFTFAIL;
	case SPF_QUALIFIER_NEUTRAL: return SPF_RESULT_NEUTRAL;
	}
	return SPF_RESULT_NEUTRAL;
}

void spf_ask(struct spf_eval *e, enum spf_wait w, const char *name, int rrtype)
{
	snprintf(e->q.name, sizeof(e->q.name), "%s", name);
	e->q.rrtype = rrtype;
	e->wait = w;
}

/* §4.3: the <domain> to check must be a multi-label host name (RFC 1123 §2.1 labels, at most 253
 * octets, dns_host_valid) whose top label is not all digits: neither an address nor a literal. */
static bool spf_domain_valid(const char *d)
{
	const char *top = strrchr(d, '.');

	if (top == NULL || !dns_host_valid(d))
		return false;
	for (top++; *top != '\0'; top++)
		if (*top < '0' || *top > '9')
			return true;
	return false;
}

static void spf_env(const struct spf_eval *e, const char *domain, const char *ptr_name, struct spf_macro_env *env)
{
	env->sender = e->sender;
	env->local = e->local;
	env->sender_domain = e->sender_domain;
	env->domain = domain;
	env->ip = &e->ip;
	env->ptr_name = ptr_name;
	env->helo = e->helo;
	env->receiver = e->receiver;
	env->now = e->now;
}

/* The target-name of a term, redirect= or exp= (§4.8): its domain-spec expanded (§7.3) into
 * e->target, or the current <domain> when it has none. Returns 1 when done, 0 when a question for
 * %{p} was asked, -1 when the expansion cannot be a DNS name (*why_r says why). */
int spf_target(struct spf_eval *e, const struct spf_domain_spec *spec, const char **why_r)
{
	const struct spf_frame *f = spf_top(e);
	const char *p = NULL;
	struct spf_macro_env env;

	if (spec->text == NULL) {
		snprintf(e->target, sizeof(e->target), "%s", f->domain);
		return 1;
	}
	if (spec->uses_p && !spf_p_ready(e, f->domain, &p))
		return 0;
	spf_env(e, f->domain, p, &env);
	return spf_macro_expand_domain(spec->text, spec->len, &env, e->target, why_r) == SPF_MACRO_OK ? 1 : -1;
}

static void spf_frame_done(struct spf_eval *e, enum spf_result r);

/* A new check_host() for an include (on top) or a redirect (in place of the current one). */
void spf_frame_start(struct spf_eval *e, const char *domain, bool redirect)
{
	char clean[DNS_HOST_SIZE];

	/* §4.3 for the recursive check_host(): a name that is not multi-label gives "none", which
	 * include (§5.2) and redirect= (§6.1) turn into a permerror */
	if (strchr(domain, '.') == NULL) {
		spf_problem(e, "%s%s is not a multi-label domain name (%s)", redirect ? "redirect=" : "include:",
			    SPF_CLEAN(domain, clean), redirect ? "§6.1" : "§5.2");
		spf_finish(e, SPF_RESULT_PERMERROR);
		return;
	}
	if (redirect) {
		spf_record_free(spf_top(e)->rec);
	} else if (e->depth >= SPF_DEPTH_MAX) { /* cannot happen: every include is counted first */
		spf_problem(e, "includes nested too deep (§4.6.4)");
		spf_finish(e, SPF_RESULT_PERMERROR);
		return;
	} else {
		e->depth++;
	}
	struct spf_frame *f = spf_top(e);
	memset(f, 0, sizeof(*f));
	snprintf(f->domain, sizeof(f->domain), "%s", domain);
	f->redirected = redirect;
	e->phase = SPF_PHASE_RECORD;
}

void spf_matched(struct spf_eval *e)
{
	struct spf_frame *f = spf_top(e);
	const struct spf_term *t = &f->rec->terms[f->term];
	char term[96], dom[DNS_HOST_SIZE];

	if (e->depth == 1) {
		spf_clean(t->text, t->text_len, term, sizeof(term));
		if (f->redirected)
			spf_problem(e, "mechanism %s of %s matched", term, SPF_CLEAN(f->domain, dom));
		else
			spf_problem(e, "mechanism %s matched", term);
	}
	spf_frame_done(e, spf_qualifier_result(t->qualifier));
}

void spf_next_term(struct spf_eval *e)
{
	spf_top(e)->term++;
	e->phase = SPF_PHASE_TERM;
	e->mstep = SPF_MSTEP_BEGIN;
}

/* The innermost check_host() has its result. For an include it goes back to the including record
 * (§5.2); errors end the whole evaluation. */
static void spf_frame_done(struct spf_eval *e, enum spf_result r)
{
	struct spf_frame *f = spf_top(e);
	char dom[DNS_HOST_SIZE];

	if (r == SPF_RESULT_NONE && (e->depth > 1 || f->redirected)) {
		/* §5.2: include of a domain without a record is a permerror; §6.1 likewise */
		spf_problem(e, "%s%s has no SPF record (%s)", e->depth > 1 ? "include:" : "redirect=",
			    SPF_CLEAN(f->domain, dom), e->depth > 1 ? "§5.2" : "§6.1");
		r = SPF_RESULT_PERMERROR;
	}
	if (r == SPF_RESULT_TEMPERROR || r == SPF_RESULT_PERMERROR) {
		spf_finish(e, r);
		return;
	}
	if (e->depth == 1) {
		e->result = r;
		e->phase = r == SPF_RESULT_FAIL ? SPF_PHASE_EXP : SPF_PHASE_DONE;
		e->mstep = SPF_MSTEP_BEGIN;
		return;
	}
	spf_record_free(f->rec);
	f->rec = NULL;
	e->depth--;
	if (r == SPF_RESULT_PASS)
		spf_matched(e); /* the include matches: the including record ends with its qualifier */
	else
		spf_next_term(e); /* §5.2: fail, softfail and neutral of the included domain: no match */
}

/* §4.6.4: counts a DNS-querying term (prefix and text say which, for the message). */
bool spf_count_lookup(struct spf_eval *e, const char *prefix, const char *text, size_t len)
{
	char term[96];

	if (++e->lookups <= SPF_LOOKUP_LIMIT)
		return true;
	spf_problem(e, "more than %d DNS-querying terms (§4.6.4), at %s%s", SPF_LOOKUP_LIMIT, prefix,
		    spf_clean(text, len, term, sizeof(term)));
	spf_finish(e, SPF_RESULT_PERMERROR);
	return false;
}

bool spf_count_void(struct spf_eval *e, const char *name)
{
	char clean[DNS_HOST_SIZE];

	if (++e->voids <= SPF_VOID_LIMIT)
		return true;
	spf_problem(e, "more than %d void lookups (§4.6.4), the last for %s", SPF_VOID_LIMIT, SPF_CLEAN(name, clean));
	spf_finish(e, SPF_RESULT_PERMERROR);
	return false;
}

/* §5: "if the DNS server returns an error (RCODE other than 0 or 3) or the query times out, the
 * mechanism stops and the topmost check_host() returns "temperror"" */
void spf_dns_error(struct spf_eval *e, const struct dns_result *a, const char *section)
{
	char name[DNS_HOST_SIZE], why[128];

	spf_problem(e, "DNS lookup of %s %s failed: %s (%s)", SPF_CLEAN(e->q.name, name), dns_rrtype_str(e->q.rrtype),
		    a->why != NULL && a->why[0] != '\0' ? SPF_CLEAN(a->why, why) : dns_status_str(a->status), section);
	spf_finish(e, SPF_RESULT_TEMPERROR);
}

/* §4.4, §4.5: the record of the innermost frame's domain. */
static void spf_on_record(struct spf_eval *e, const struct dns_result *a)
{
	struct spf_frame *f = spf_top(e);
	char dom[DNS_HOST_SIZE], term[96];
	const struct dns_txt *txt = NULL;
	size_t found = 0;

	if (a->status == DNS_STATUS_TEMPFAIL) {
		spf_dns_error(e, a, "§4.4");
		return;
	}
	for (size_t i = 0; a->status == DNS_STATUS_OK && i < a->count; i++) {
		if (spf_record_is_spf(a->txts[i].text, a->txts[i].len)) {
			txt = &a->txts[i];
			found++;
		}
	}
	if (found == 0) {
		/* §4.5: "If no matching records are returned ... SPF processing MUST stop and return none" */
		spf_problem(e, "no SPF record at %s", SPF_CLEAN(f->domain, dom));
		spf_frame_done(e, SPF_RESULT_NONE);
		return;
	}
	if (found > 1) {
		spf_problem(e, "%s has %zu SPF records (§4.5: more than one is a permerror)", SPF_CLEAN(f->domain, dom), found);
		spf_finish(e, SPF_RESULT_PERMERROR);
		return;
	}
	const char *err = "";
	size_t at = 0;
	enum spf_record_error re = spf_record_parse(txt->text, txt->len, &f->rec, &err, &at);
	if (re != SPF_RECORD_OK) {
		size_t end = at;
		while (end < txt->len && txt->text[end] != ' ')
			end++;
		if (at < txt->len)
			spf_problem(e, "the SPF record of %s is invalid at \"%s\": %s", SPF_CLEAN(f->domain, dom),
				    spf_clean(txt->text + at, end - at, term, sizeof(term)), err);
		else
			spf_problem(e, "the SPF record of %s is invalid: %s", SPF_CLEAN(f->domain, dom), err);
		/* §4.6: syntax errors anywhere in the record give permerror before anything is evaluated */
		spf_finish(e, re == SPF_RECORD_NOMEM ? SPF_RESULT_TEMPERROR : SPF_RESULT_PERMERROR);
		return;
	}
	f->term = 0;
	e->phase = SPF_PHASE_TERM;
	e->mstep = SPF_MSTEP_BEGIN;
}

/* The end of a record without a match: redirect= (§6.1) or the default neutral (§4.7). */
void spf_record_end(struct spf_eval *e)
{
	const struct spf_frame *f = spf_top(e);

	/* §5.1: redirect= is ignored when the record has "all" (which always matches anyway) */
	if (f->rec->redirect.text != NULL && !f->rec->has_all) {
		e->phase = SPF_PHASE_REDIRECT;
		e->mstep = SPF_MSTEP_BEGIN;
		return;
	}
	if (e->depth == 1)
		spf_problem(e, "no mechanism matched: the default result (§4.7)");
	spf_frame_done(e, SPF_RESULT_NEUTRAL);
}

static void spf_redirect(struct spf_eval *e)
{
	const struct spf_domain_spec *spec = &spf_top(e)->rec->redirect;
	const char *why = "";
	char text[96];

	if (e->mstep == SPF_MSTEP_BEGIN) {
		if (!spf_count_lookup(e, "redirect=", spec->text, spec->len))
			return;
		e->mstep = SPF_MSTEP_TARGET;
	}
	int r = spf_target(e, spec, &why);
	if (r == 0)
		return;
	if (r < 0) {
		/* §6.1: "if the <target-name> is malformed, the result is a permerror rather than none" */
		spf_problem(e, "redirect=%s %s (§6.1)", spf_clean(spec->text, spec->len, text, sizeof(text)), why);
		spf_finish(e, SPF_RESULT_PERMERROR);
		return;
	}
	spf_frame_start(e, e->target, true);
}

/* §6.2: an explanation that cannot be used gives way to the default one. */
static void spf_exp_default(struct spf_eval *e)
{
	struct spf_macro_info info;
	const char *err;
	size_t len = strlen(e->default_exp);

	memcpy(e->exp_src, e->default_exp, len + 1);
	e->exp_src_len = len;
	if (spf_macro_check(e->exp_src, len, SPF_MACRO_EXPLAIN, &info, &err) != SPF_MACRO_OK) {
		/* a default that is no explain-string is used as it is written */
		spf_clean(e->exp_src, len, e->explanation, sizeof(e->explanation));
		e->has_explanation = true;
		e->phase = SPF_PHASE_DONE;
		return;
	}
	e->exp_uses_p = info.uses_p;
	e->mstep = SPF_MSTEP_EXP_TEXT;
}

/* §6.2: the TXT record at the exp= target. "If there are any DNS processing errors (any RCODE
 * other than 0), or if no records are returned, or if more than one record is returned, or if
 * there are syntax errors in the explanation string, then proceed as if no exp modifier was
 * given." Non-ASCII text is a syntax error: explanations are US-ASCII. */
static void spf_on_exp(struct spf_eval *e, const struct dns_result *a)
{
	struct spf_macro_info info;
	const char *err;

	if (a->status != DNS_STATUS_OK || a->count != 1 || a->txts[0].len > SPF_EXP_SOURCE_MAX ||
	    spf_macro_check(a->txts[0].text, a->txts[0].len, SPF_MACRO_EXPLAIN, &info, &err) != SPF_MACRO_OK) {
		spf_exp_default(e);
		return;
	}
	memcpy(e->exp_src, a->txts[0].text, a->txts[0].len);
	e->exp_src[a->txts[0].len] = '\0';
	e->exp_src_len = a->txts[0].len;
	e->exp_uses_p = info.uses_p;
	e->mstep = SPF_MSTEP_EXP_TEXT;
}

static void spf_exp(struct spf_eval *e)
{
	/* the fail came from the record checked first, or from where its redirect= led: its exp=
	 * applies (§6.2: not the one of an included record, nor of one that redirected) */
	const struct spf_frame *f = &e->frames[0];
	const char *why = "", *p = NULL;

	if (e->mstep == SPF_MSTEP_BEGIN) {
		if (f->rec->exp.text == NULL)
			spf_exp_default(e);
		else
			e->mstep = SPF_MSTEP_TARGET;
	}
	if (e->mstep == SPF_MSTEP_TARGET) {
		int r = spf_target(e, &f->rec->exp, &why);
		if (r == 0)
			return;
		if (r > 0) {
			/* not counted: §4.6.4 limits the terms of evaluation, and the suite's "exp-void" */
			spf_ask(e, SPF_WAIT_EXP, e->target, DNS_RRTYPE_TXT);
			return;
		}
		spf_exp_default(e);
	}
	if (e->phase != SPF_PHASE_EXP || e->mstep != SPF_MSTEP_EXP_TEXT)
		return;
	if (e->exp_uses_p && !spf_p_ready(e, f->domain, &p))
		return;
	struct spf_macro_env env;
	spf_env(e, f->domain, p, &env);
	spf_macro_expand_text(e->exp_src, e->exp_src_len, &env, e->explanation, sizeof(e->explanation), &why);
	e->has_explanation = true;
	e->phase = SPF_PHASE_DONE;
}

/* The answer to the question in e->q, for what e->wait said. */
static void spf_on_answer(struct spf_eval *e, enum spf_wait w, const struct dns_result *a)
{
	switch (w) {
	case SPF_WAIT_NONE:
		return;
	case SPF_WAIT_RECORD:
		spf_on_record(e, a);
		return;
	case SPF_WAIT_EXP:
		spf_on_exp(e, a);
		return;
	default:
		spf_mech_answer(e, w, a);
		return;
	}
}

static void spf_start(struct spf_eval *e)
{
	char dom[DNS_HOST_SIZE];

	if (e->bad_request != NULL) {
		spf_problem(e, "%s", e->bad_request);
		spf_finish(e, SPF_RESULT_NONE);
		return;
	}
	/* §4.3: "If the <domain> is malformed ... or is not a multi-label domain name ...
	 * check_host() immediately returns the result none" */
	if (!spf_domain_valid(e->domain)) {
		spf_problem(e, "%s is not a valid multi-label domain name (§4.3)",
			    e->domain[0] != '\0' ? SPF_CLEAN(e->domain, dom) : "the empty name");
		spf_finish(e, SPF_RESULT_NONE);
		return;
	}
	spf_frame_start(e, e->domain, false);
}

enum auth_step spf_eval_step(void *arg, const struct dns_result *answer, struct auth_query *q_r)
{
	struct spf_eval *e = arg;

	if (answer != NULL && e->wait != SPF_WAIT_NONE) {
		enum spf_wait w = e->wait;
		struct dns_result a = *answer;
		e->wait = SPF_WAIT_NONE;
		/* an answer of another type cannot be read; a DNSSEC failure cannot be used (RFC 4035
		 * §4.3): both are errors like a SERVFAIL */
		if (a.rrtype != e->q.rrtype || a.status == DNS_STATUS_BOGUS) {
			a.status = DNS_STATUS_TEMPFAIL;
			a.count = 0;
			if (a.why == NULL || a.why[0] == '\0')
				a.why = a.rrtype != e->q.rrtype ? "answer of another type" : "DNSSEC validation failed";
		}
		spf_on_answer(e, w, &a);
	}
	while (e->phase != SPF_PHASE_DONE && e->wait == SPF_WAIT_NONE) {
		switch (e->phase) {
		case SPF_PHASE_START: spf_start(e); break;
		case SPF_PHASE_RECORD: spf_ask(e, SPF_WAIT_RECORD, spf_top(e)->domain, DNS_RRTYPE_TXT); break;
		case SPF_PHASE_TERM: spf_mech_step(e); break;
		case SPF_PHASE_REDIRECT: spf_redirect(e); break;
		case SPF_PHASE_EXP: spf_exp(e); break;
		case SPF_PHASE_DONE: break;
		}
	}
	if (e->phase == SPF_PHASE_DONE)
		return AUTH_STEP_DONE;
	*q_r = e->q;
	return AUTH_STEP_QUERY;
}

/* Copies s into buf (size octets); false when it does not fit. */
static bool spf_copy(char *buf, size_t size, const char *s, size_t len)
{
	if (len >= size)
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return true;
}

struct spf_eval *spf_eval_new(const struct spf_request *req)
{
	struct spf_eval *e = calloc(1, sizeof(*e));
	if (e == NULL)
		return NULL;
	const char *helo = req->helo != NULL ? req->helo : "";
	const char *mail_from = req->mail_from != NULL ? req->mail_from : "";
	const char *dflt = req->default_explanation != NULL ? req->default_explanation : SPF_DEFAULT_EXPLANATION;
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	e->now = req->now;
	e->ip = req->ip;
	/* §5: "an IPv4-mapped IPv6 address ... MUST still be considered an IPv4 address" */
	if (e->ip.family == AF_INET6 && memcmp(e->ip.bytes, v4mapped, 12) == 0) {
		memmove(e->ip.bytes, e->ip.bytes + 12, 4);
		memset(e->ip.bytes + 4, 0, 12);
		e->ip.family = AF_INET;
	}
	spf_copy(e->receiver, sizeof(e->receiver), req->receiver != NULL ? req->receiver : "",
		 req->receiver != NULL ? strnlen(req->receiver, sizeof(e->receiver)) : 0);
	spf_copy(e->default_exp, sizeof(e->default_exp), dflt, strnlen(dflt, sizeof(e->default_exp) - 1));

	size_t helo_len = strnlen(helo, SPF_INPUT_MAX + 1), from_len = strnlen(mail_from, SPF_INPUT_MAX + 1);
	if (!spf_copy(e->helo, sizeof(e->helo), helo, helo_len) || from_len > SPF_INPUT_MAX) {
		e->bad_request = "the HELO or MAIL FROM argument is longer than " SPF_STRINGIFY(SPF_INPUT_MAX) " octets";
		return e;
	}
	if (e->ip.family != AF_INET && e->ip.family != AF_INET6) {
		e->bad_request = "no client address to check";
		return e;
	}
	/* §2.3, §2.4: the HELO identity, and a null MAIL FROM, are checked as postmaster@<helo>;
	 * §4.3: "If the <sender> has no local-part, substitute the string postmaster" */
	const char *local = "", *dom = helo;
	size_t local_len = 0, dom_len = helo_len;
	if (req->identity == SPF_IDENTITY_MAILFROM && from_len > 0) {
		const char *at = strrchr(mail_from, '@'); /* a quoted local part may hold '@' itself */
		dom = at != NULL ? at + 1 : mail_from;
		dom_len = from_len - (size_t)(dom - mail_from);
		if (at != NULL) {
			local = mail_from;
			local_len = (size_t)(at - mail_from);
		}
	}
	if (local_len == 0) {
		local = "postmaster";
		local_len = strlen(local);
	}
	spf_copy(e->local, sizeof(e->local), local, local_len);
	spf_copy(e->sender_domain, sizeof(e->sender_domain), dom, dom_len);
	snprintf(e->sender, sizeof(e->sender), "%s@%s", e->local, e->sender_domain);
	if (dom_len > 0 && dom[dom_len - 1] == '.')
		dom_len--;
	spf_copy(e->domain, sizeof(e->domain), dom, dom_len);
	return e;
}

enum spf_result spf_eval_result(const struct spf_eval *e)
{
	return e->result;
}

const char *spf_eval_domain(const struct spf_eval *e)
{
	return e->domain;
}

const char *spf_eval_sender(const struct spf_eval *e)
{
	return e->sender;
}

const char *spf_eval_explanation(const struct spf_eval *e)
{
	return e->result == SPF_RESULT_FAIL && e->has_explanation ? e->explanation : NULL;
}

const char *spf_eval_problem(const struct spf_eval *e)
{
	return e->problem;
}

unsigned spf_eval_lookups(const struct spf_eval *e)
{
	return e->lookups;
}

unsigned spf_eval_void_lookups(const struct spf_eval *e)
{
	return e->voids;
}

void spf_eval_free(struct spf_eval *e)
{
	if (e == NULL)
		return;
	for (size_t i = 0; i < e->depth; i++)
		spf_record_free(e->frames[i].rec);
	free(e);
}
