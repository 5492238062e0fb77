/* domain_dns_check.c — the check behind `dns check` and the API's verify: one record after the
 * other, one question at a time, judged with the evaluators inbound mail gets (spf_eval for SPF,
 * dmarc_walk for DMARC, the key comparison for DKIM); their questions and answers are passed
 * through. Every sentence it writes names the record, so that it reads alone in a list. */
#include "delivery/mtasts.h"
#include "domains/domain_dns_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "auth/dmarc_walk.h"
#include "auth/spf.h"

void domain_dns_check_clear(struct domain_dns *d)
{
	spf_eval_free(d->spf);
	d->spf = NULL;
	dmarc_walk_free(d->walk);
	d->walk = NULL;
}

static bool check_failed(const struct dns_result *a)
{
	return a->status == DNS_STATUS_TEMPFAIL || a->status == DNS_STATUS_BOGUS;
}

static const char *check_why(const struct dns_result *a)
{
	return a->why != NULL && a->why[0] != '\0' ? a->why : dns_status_str(a->status);
}

/* Puts the question in q_r; false when name is longer than a question holds (so it cannot exist). */
static bool check_ask(struct auth_query *q_r, const char *name, int rrtype)
{
	size_t len = strlen(name);
	if (len == 0 || len >= sizeof(q_r->name))
		return false;
	memcpy(q_r->name, name, len + 1);
	q_r->rrtype = rrtype;
	return true;
}

static bool check_addr_eq(const struct dns_addr *a, const struct dns_addr *b)
{
	return a->family == b->family && memcmp(a->bytes, b->bytes, a->family == AF_INET ? 4 : 16) == 0;
}

static const char *check_label(enum domain_rec_kind k)
{
	switch (k) {
	case DOMAIN_REC_ADDRESS: return "address of";
	case DOMAIN_REC_MX:
	case DOMAIN_REC_RETURN_MX: return "MX of";
	case DOMAIN_REC_SPF:
	case DOMAIN_REC_RETURN_SPF: return "SPF of";
	case DOMAIN_REC_DKIM: return "DKIM";
	case DOMAIN_REC_DMARC: return "DMARC at";
	case DOMAIN_REC_PTR: return "PTR at";
	case DOMAIN_REC_MTA_STS: return "MTA-STS at";
	case DOMAIN_REC_TLS_RPT: return "TLS-RPT at";
	case DOMAIN_REC_MTA_STS_HOST: return "MTA-STS policy host";
	case DOMAIN_REC_TLSA:
	case DOMAIN_REC_TLSA_NEXT: return "TLSA at";
	}
	return "record";
}

static void check_too_long(struct domain_rec *r)
{
	domain_dns_verdict(r, DOMAIN_REC_FAILED, "%s %s: the name is longer than the 253 octets DNS allows",
			   check_label(r->kind), r->name);
}

/* Ends the check where it is: the records not judged yet are TEMPFAIL, so the domain is not ready. */
static void check_stop(struct domain_dns *d, const char *why)
{
	domain_dns_check_clear(d);
	for (size_t i = d->cur; i < d->n; i++) {
		struct domain_rec *r = &d->items[i].rec;
		if (r->status == DOMAIN_REC_NOT_STARTED)
			domain_dns_verdict(r, DOMAIN_REC_TEMPFAIL, "%s %s: not checked (%s)", check_label(r->kind), r->name,
					   why);
	}
	d->done = true;
}

/* ---- nips 0: the host name's addresses are the ones we send from ---- */

static void check_discover_take(struct domain_dns *d, const struct dns_result *answer)
{
	int fam = answer->rrtype == DNS_RRTYPE_AAAA ? AF_INET6 : AF_INET;
	if (check_failed(answer) && d->lookup_why[0] == '\0')
		snprintf(d->lookup_why, sizeof(d->lookup_why), "%s", check_why(answer));
	for (size_t i = 0; i < answer->count && d->nips < DOMAIN_DNS_IPS_MAX; i++) {
		const struct dns_addr *a = &answer->addrs[i];
		bool dup = a->family != fam;
		for (size_t j = 0; j < d->nips && !dup; j++)
			dup = check_addr_eq(&d->addrs[j], a);
		if (dup || inet_ntop(fam, a->bytes, d->ips[d->nips], sizeof(d->ips[d->nips])) == NULL)
			continue;
		d->addrs[d->nips++] = *a;
	}
}

/* The records of what was found: ADDRESS (verified: we found them there) first, PTRs before the
 * recommended ones, as domain_dns_new would have put them. */
static bool check_discover_records(struct domain_dns *d)
{
	if (d->nips == 0) {
		struct domain_dns_item *it = domain_dns_insert(
			d, 0, DOMAIN_REC_ADDRESS, true, "A", strdup(d->hostname), NULL,
			strdup("the server's address, which the MX name must resolve to"));
		if (it == NULL)
			return false;
		if (d->lookup_why[0] != '\0')
			domain_dns_verdict(&it->rec, DOMAIN_REC_TEMPFAIL, "address of %s: the lookup failed (%s)",
					   d->hostname, d->lookup_why);
		else
			domain_dns_verdict(&it->rec, DOMAIN_REC_FAILED,
					   "address of %s: missing (so nobody can reach the server)", d->hostname);
		return true;
	}
	for (size_t i = 0; i < d->nips; i++) {
		struct domain_dns_item *it = domain_dns_address_insert(d, i, i);
		if (it == NULL)
			return false;
		domain_dns_verdict(&it->rec, DOMAIN_REC_VERIFIED, "%s resolves to %s", d->hostname, d->ips[i]);
	}
	size_t at = 0;
	while (at < d->n && d->items[at].rec.kind != DOMAIN_REC_MTA_STS && d->items[at].rec.kind != DOMAIN_REC_TLS_RPT)
		at++;
	for (size_t i = 0; i < d->nips; i++)
		if (domain_dns_ptr_insert(d, at + i, i) == NULL)
			return false;
	return true;
}

static enum auth_step check_discover(struct domain_dns *d, const struct dns_result *answer, struct auth_query *q_r)
{
	if (answer != NULL)
		check_discover_take(d, answer);
	while (d->sub < 2)
		if (check_ask(q_r, d->hostname, d->sub++ == 0 ? DNS_RRTYPE_A : DNS_RRTYPE_AAAA))
			return AUTH_STEP_QUERY;
	if (!check_discover_records(d))
		check_stop(d, "out of memory");
	return AUTH_STEP_DONE;
}

/* ---- one record ---- */

/* With the addresses given: the host name must resolve to each. One question per family answers
 * every ADDRESS record of it. */
static enum auth_step check_address(struct domain_dns *d, struct domain_dns_item *it, const struct dns_result *answer,
				    struct auth_query *q_r)
{
	int fam = it->addr.family;
	if (d->sub++ == 0) {
		if (check_ask(q_r, d->hostname, fam == AF_INET6 ? DNS_RRTYPE_AAAA : DNS_RRTYPE_A))
			return AUTH_STEP_QUERY;
		check_too_long(&it->rec);
		return AUTH_STEP_DONE;
	}
	for (size_t i = d->cur; i < d->n; i++) {
		struct domain_dns_item *a = &d->items[i];
		if (a->rec.kind != DOMAIN_REC_ADDRESS || a->addr.family != fam || a->rec.status != DOMAIN_REC_NOT_STARTED)
			continue;
		bool found = false;
		for (size_t j = 0; j < answer->count && !found; j++)
			found = check_addr_eq(&answer->addrs[j], &a->addr);
		if (found)
			domain_dns_verdict(&a->rec, DOMAIN_REC_VERIFIED, "%s resolves to %s", d->hostname, a->ip);
		else if (check_failed(answer))
			domain_dns_verdict(&a->rec, DOMAIN_REC_TEMPFAIL, "address of %s: the lookup failed (%s)",
					   d->hostname, check_why(answer));
		else
			domain_dns_verdict(&a->rec, DOMAIN_REC_FAILED, "%s does not resolve to %s", d->hostname, a->ip);
	}
	return AUTH_STEP_DONE;
}

/* MX and RETURN_MX: one of the MX records names the server (RFC 5321 §5.1). */
static enum auth_step check_mx(struct domain_dns *d, struct domain_dns_item *it, const struct dns_result *answer,
			       struct auth_query *q_r)
{
	const char *name = it->rec.name;
	if (d->sub++ == 0) {
		if (check_ask(q_r, name, DNS_RRTYPE_MX))
			return AUTH_STEP_QUERY;
		check_too_long(&it->rec);
		return AUTH_STEP_DONE;
	}
	bool ours = false;
	for (size_t i = 0; i < answer->count && !ours; i++)
		ours = strcasecmp(answer->mx[i].exchange, d->hostname) == 0;
	if (ours)
		domain_dns_verdict(&it->rec, DOMAIN_REC_VERIFIED, "MX of %s points at %s", name, d->hostname);
	else if (check_failed(answer))
		domain_dns_verdict(&it->rec, DOMAIN_REC_TEMPFAIL, "MX of %s: the lookup failed (%s)", name, check_why(answer));
	else if (answer->count == 0)
		domain_dns_verdict(&it->rec, DOMAIN_REC_FAILED, "MX of %s: missing", name);
	else if (dns_mx_is_null(answer->mx, answer->count))
		domain_dns_verdict(&it->rec, DOMAIN_REC_FAILED, "MX of %s is a null MX (RFC 7505: it takes no mail)", name);
	else
		domain_dns_verdict(&it->rec, DOMAIN_REC_FAILED, "MX of %s does not point at %s (it names %u %s)", name,
				   d->hostname, (unsigned)answer->mx[0].pref, answer->mx[0].exchange);
	return AUTH_STEP_DONE;
}

static bool check_spf_start(struct domain_dns *d, const struct domain_dns_item *it)
{
	char sender[DNS_HOST_SIZE + 16];
	snprintf(sender, sizeof(sender), "postmaster@%s", it->rec.name);
	struct spf_request req = {
		.ip = d->addrs[d->ipi],
		.mail_from = sender,
		.helo = d->hostname,
		.receiver = d->hostname,
		.identity = SPF_IDENTITY_MAILFROM,
		.now = (time_t)d->now,
	};
	return (d->spf = spf_eval_new(&req)) != NULL;
}

/* The verdict of the first address SPF does not pass; false when it passed. */
static bool check_spf_verdict(struct domain_dns *d, struct domain_rec *r)
{
	const char *name = r->name, *ip = d->ips[d->ipi];
	enum spf_result res = spf_eval_result(d->spf);
	const char *problem = spf_eval_problem(d->spf);
	switch (res) {
	case SPF_RESULT_PASS:
		return false;
	case SPF_RESULT_NONE:
		domain_dns_verdict(r, DOMAIN_REC_FAILED, "SPF of %s: missing", name);
		break;
	case SPF_RESULT_PERMERROR:
		/* two records, more than 10 lookups, a syntax error: the problem names it */
		domain_dns_verdict(r, DOMAIN_REC_FAILED, "SPF of %s is broken: %s", name, problem);
		break;
	case SPF_RESULT_TEMPERROR:
		domain_dns_verdict(r, DOMAIN_REC_TEMPFAIL, "SPF of %s: the lookups failed (%s)", name, problem);
		break;
	default:
		domain_dns_verdict(r, DOMAIN_REC_FAILED, "SPF of %s does not authorize %s (result %s: %s)", name, ip,
				   spf_result_str(res), problem);
		break;
	}
	return true;
}

/* SPF and RETURN_SPF: check_host() (RFC 7208 §4) passes for every address we send from, with
 * postmaster@NAME as MAIL FROM. One record; the first address that does not pass is its problem. */
static enum auth_step check_spf(struct domain_dns *d, struct domain_dns_item *it, const struct dns_result *answer,
				struct auth_query *q_r)
{
	struct domain_rec *r = &it->rec;
	if (d->sub++ == 0) {
		if (d->nips == 0) {
			/* the ADDRESS record says why; this one stays unjudged */
			free(r->problem);
			r->problem = domain_dns_fmt("SPF of %s: not checked, as the server has no address", r->name);
			return AUTH_STEP_DONE;
		}
		if (strlen(r->name) >= DNS_HOST_SIZE) {
			check_too_long(r);
			return AUTH_STEP_DONE;
		}
		d->ipi = 0;
		d->spf_lookups = 0;
		if (!check_spf_start(d, it)) {
			domain_dns_verdict(r, DOMAIN_REC_TEMPFAIL, "SPF of %s: out of memory", r->name);
			return AUTH_STEP_DONE;
		}
	}
	for (;;) {
		if (spf_eval_step(d->spf, answer, q_r) == AUTH_STEP_QUERY)
			return AUTH_STEP_QUERY;
		answer = NULL;
		if (check_spf_verdict(d, r))
			return AUTH_STEP_DONE;
		if (spf_eval_lookups(d->spf) > d->spf_lookups)
			d->spf_lookups = spf_eval_lookups(d->spf);
		spf_eval_free(d->spf);
		d->spf = NULL;
		if (++d->ipi < d->nips) {
			if (!check_spf_start(d, it)) {
				domain_dns_verdict(r, DOMAIN_REC_TEMPFAIL, "SPF of %s: out of memory", r->name);
				return AUTH_STEP_DONE;
			}
			continue;
		}
		char ips[DOMAIN_DNS_IPS_MAX * (INET6_ADDRSTRLEN + 2)];
		size_t o = 0;
		for (size_t i = 0; i < d->nips; i++)
			o += (size_t)snprintf(ips + o, sizeof(ips) - o, "%s%s", i > 0 ? ", " : "", d->ips[i]);
		domain_dns_verdict(r, DOMAIN_REC_VERIFIED, "SPF of %s authorizes %s (%u of %d lookups)", r->name, ips,
				   d->spf_lookups, SPF_LOOKUP_LIMIT);
		return AUTH_STEP_DONE;
	}
}

/* DKIM: the key record at SELECTOR._domainkey (RFC 6376 §3.6.2.1) holds our public key. */
static enum auth_step check_dkim(struct domain_dns *d, struct domain_dns_item *it, const struct dns_result *answer,
				 struct auth_query *q_r)
{
	struct domain_rec *r = &it->rec;
	if (d->sub++ == 0) {
		if (check_ask(q_r, r->name, DNS_RRTYPE_TXT))
			return AUTH_STEP_QUERY;
		check_too_long(r);
		return AUTH_STEP_DONE;
	}
	struct dkim_key_record kr;
	const char *err;
	if (check_failed(answer))
		domain_dns_verdict(r, DOMAIN_REC_TEMPFAIL, "DKIM %s: the lookup failed (%s)", r->name, check_why(answer));
	else if (answer->count == 0)
		domain_dns_verdict(r, DOMAIN_REC_FAILED, "DKIM %s: missing", r->name);
	else if (dkim_key_record_parse(answer->txts[0].text, answer->txts[0].len, &kr, &err) != DKIM_KEY_OK)
		domain_dns_verdict(r, DOMAIN_REC_FAILED, "DKIM %s: malformed (%s)", r->name, err);
	else {
		if (dkim_key_record_matches(&kr, it->pkey))
			domain_dns_verdict(r, DOMAIN_REC_VERIFIED, "DKIM %s: the published key matches", r->name);
		else
			domain_dns_verdict(r, DOMAIN_REC_FAILED, "DKIM %s: does not match our private key", r->name);
		dkim_key_record_clear(&kr);
	}
	return AUTH_STEP_DONE;
}

static void check_dmarc_verdict(struct domain_dns *d, struct domain_rec *r)
{
	const struct dmarc_walk_result *w = dmarc_walk_result(d->walk);
	const struct dmarc_node *p = w->policy;
	const char *dom = d->domain;
	if (w->status == DMARC_WALK_BAD_DOMAIN)
		domain_dns_verdict(r, DOMAIN_REC_FAILED, "DMARC of %s: %s", dom, w->why != NULL ? w->why : "not a domain");
	else if (w->status != DMARC_WALK_OK)
		domain_dns_verdict(r, DOMAIN_REC_TEMPFAIL, "DMARC of %s: %s", dom,
				   w->why != NULL ? w->why : "the lookup failed");
	else if (w->count > 0 && w->nodes[0]->found == DMARC_FOUND_MULTIPLE)
		domain_dns_verdict(r, DOMAIN_REC_FAILED,
				   "DMARC of %s: several records at _dmarc.%s, so receivers ignore all of them; keep "
				   "exactly one", dom, dom);
	else if (p == NULL)
		domain_dns_verdict(r, DOMAIN_REC_FAILED, "DMARC of %s: missing", dom);
	else if (p->record_error != DMARC_RECORD_OK)
		domain_dns_verdict(r, DOMAIN_REC_FAILED, "DMARC record at _dmarc.%s is malformed: %s", p->domain,
				   p->record_why != NULL ? p->record_why : "no usable policy");
	else {
		/* RFC 9989 §4.10.1: the domain's own record gives p, an organizational one sp */
		const struct dmarc_record *rec = p->record;
		enum dmarc_policy pol = w->source == DMARC_SOURCE_DOMAIN ? rec->p : rec->sp;
		domain_dns_verdict(r, DOMAIN_REC_VERIFIED, "DMARC of %s: p=%s%s (record at _dmarc.%s)", dom,
				   dmarc_policy_str(pol), rec->testing ? " t=y" : "", p->domain);
		if (pol == DMARC_POLICY_NONE)
			r->note = strdup("p=none only monitors; quarantine or reject protects the domain");
	}
}

/* DMARC: the RFC 9989 §4.10 tree walk finds one valid record that applies to the domain. */
static enum auth_step check_dmarc(struct domain_dns *d, struct domain_dns_item *it, const struct dns_result *answer,
				  struct auth_query *q_r)
{
	if (d->sub++ == 0 && (d->walk = dmarc_walk_new(d->domain)) == NULL) {
		domain_dns_verdict(&it->rec, DOMAIN_REC_TEMPFAIL, "DMARC of %s: out of memory", d->domain);
		return AUTH_STEP_DONE;
	}
	if (dmarc_walk_step(d->walk, answer, q_r) == AUTH_STEP_QUERY)
		return AUTH_STEP_QUERY;
	check_dmarc_verdict(d, &it->rec);
	return AUTH_STEP_DONE;
}

/* PTR: the reverse name of the address names the server. The way back (the name resolves to the
 * address) is the ADDRESS record's, judged before. */
static enum auth_step check_ptr(struct domain_dns *d, struct domain_dns_item *it, const struct dns_result *answer,
				struct auth_query *q_r)
{
	struct domain_rec *r = &it->rec;
	if (d->sub++ == 0) {
		if (check_ask(q_r, r->name, DNS_RRTYPE_PTR))
			return AUTH_STEP_QUERY;
		check_too_long(r);
		return AUTH_STEP_DONE;
	}
	bool named = false;
	for (size_t i = 0; i < answer->count && !named; i++)
		named = strcasecmp(answer->ptrs[i].name, d->hostname) == 0;
	if (!named) {
		if (check_failed(answer))
			domain_dns_verdict(r, DOMAIN_REC_TEMPFAIL, "PTR of %s: the lookup failed (%s)", it->ip,
					   check_why(answer));
		else if (answer->count == 0)
			domain_dns_verdict(r, DOMAIN_REC_FAILED, "PTR of %s: missing", it->ip);
		else
			domain_dns_verdict(r, DOMAIN_REC_FAILED, "PTR of %s: does not name the server (it names %s)", it->ip,
					   answer->ptrs[0].name);
		return AUTH_STEP_DONE;
	}
	struct domain_dns_item *a = NULL;
	for (size_t i = 0; i < d->n && a == NULL; i++)
		if (d->items[i].rec.kind == DOMAIN_REC_ADDRESS && check_addr_eq(&d->items[i].addr, &it->addr))
			a = &d->items[i];
	if (a != NULL && a->rec.status == DOMAIN_REC_VERIFIED) {
		domain_dns_verdict(r, DOMAIN_REC_VERIFIED, "PTR of %s names %s, which resolves back to it", it->ip,
				   d->hostname);
		return AUTH_STEP_DONE;
	}
	domain_dns_verdict(r, DOMAIN_REC_VERIFIED, "PTR of %s names %s", it->ip, d->hostname);
	r->note = domain_dns_fmt("the way back is not confirmed: see the address record of %s", d->hostname);
	/* receivers check both ways (forward-confirmed reverse DNS): say so where the fix is */
	if (a != NULL && a->rec.status == DOMAIN_REC_FAILED)
		domain_dns_verdict(&a->rec, DOMAIN_REC_FAILED, "PTR of %s names %s, but %s does not resolve to %s", it->ip,
				   d->hostname, d->hostname, it->ip);
	return AUTH_STEP_DONE;
}

/* MTA-STS (RFC 8461 §3.1) and TLS-RPT (RFC 8460 §3): a TXT record that starts with the version. */
static enum auth_step check_txt_version(struct domain_dns *d, struct domain_dns_item *it,
					const struct dns_result *answer, struct auth_query *q_r)
{
	struct domain_rec *r = &it->rec;
	bool sts = r->kind == DOMAIN_REC_MTA_STS;
	const char *prefix = sts ? "v=STSv1" : "v=TLSRPTv1", *what = sts ? "MTA-STS" : "TLS-RPT";
	size_t plen = strlen(prefix);
	if (d->sub++ == 0) {
		if (check_ask(q_r, r->name, DNS_RRTYPE_TXT))
			return AUTH_STEP_QUERY;
		check_too_long(r);
		return AUTH_STEP_DONE;
	}
	bool found = false;
	for (size_t i = 0; i < answer->count && !found; i++)
		found = answer->txts[i].len >= plen && memcmp(answer->txts[i].text, prefix, plen) == 0;
	if (found && sts && d->sts_id[0] != '\0') {
		/* RFC 8461 §3.1: one v=STSv1 record, and its id the one of the policy we serve (senders
		 * fetch again only when the id changes) */
		struct mtasts_txt t;
		const char *err = "";
		enum mtasts_error e = mtasts_txt_select(answer->txts, answer->count, &t, &err);
		if (e != MTASTS_OK)
			domain_dns_verdict(r, DOMAIN_REC_FAILED, "MTA-STS at %s: %s", r->name, err);
		else if (strcmp(t.id, d->sts_id) != 0)
			domain_dns_verdict(r, DOMAIN_REC_FAILED,
					   "MTA-STS at %s: id=%s, but the policy served has id=%s (publish the new id)",
					   r->name, t.id, d->sts_id);
		else
			domain_dns_verdict(r, DOMAIN_REC_VERIFIED, "MTA-STS at %s, id=%s (the policy served)", r->name,
					   t.id);
		return AUTH_STEP_DONE;
	}
	if (found)
		domain_dns_verdict(r, DOMAIN_REC_VERIFIED, "%s at %s", what, r->name);
	else if (check_failed(answer))
		domain_dns_verdict(r, DOMAIN_REC_TEMPFAIL, "%s at %s: the lookup failed (%s)", what, r->name,
				   check_why(answer));
	else
		domain_dns_verdict(r, DOMAIN_REC_FAILED, "%s at %s: missing", what, r->name);
	return AUTH_STEP_DONE;
}

/* mta-sts.DOMAIN resolves (through its CNAME, if any) to an address; with our addresses known, to
 * one of them. */
static enum auth_step check_sts_host(struct domain_dns *d, struct domain_dns_item *it, const struct dns_result *answer,
				     struct auth_query *q_r)
{
	struct domain_rec *r = &it->rec;
	if (d->sub++ == 0) {
		if (check_ask(q_r, r->name, DNS_RRTYPE_A))
			return AUTH_STEP_QUERY;
		check_too_long(r);
		return AUTH_STEP_DONE;
	}
	if (check_failed(answer)) {
		domain_dns_verdict(r, DOMAIN_REC_TEMPFAIL, "MTA-STS policy host %s: the lookup failed (%s)", r->name,
				   check_why(answer));
		return AUTH_STEP_DONE;
	}
	if (answer->status != DNS_STATUS_OK || answer->count == 0) {
		domain_dns_verdict(r, DOMAIN_REC_FAILED, "MTA-STS policy host %s: missing", r->name);
		return AUTH_STEP_DONE;
	}
	for (size_t i = 0; i < answer->count; i++) {
		bool ours = d->nips == 0;
		for (size_t k = 0; k < d->nips && !ours; k++)
			ours = d->addrs[k].family == answer->addrs[i].family &&
			       memcmp(d->addrs[k].bytes, answer->addrs[i].bytes, 4) == 0;
		if (ours) {
			char text[64];
			inet_ntop(AF_INET, answer->addrs[i].bytes, text, sizeof(text));
			domain_dns_verdict(r, DOMAIN_REC_VERIFIED, "MTA-STS policy host %s resolves to %s", r->name, text);
			return AUTH_STEP_DONE;
		}
	}
	domain_dns_verdict(r, DOMAIN_REC_FAILED, "MTA-STS policy host %s: resolves, but not to this server", r->name);
	return AUTH_STEP_DONE;
}

/* The start of a record's data in hex, for a sentence. */
static void check_tlsa_short(const struct dns_tlsa *t, char *out, size_t size)
{
	int n = snprintf(out, size, "%u %u %u ", t->usage, t->selector, t->mtype);
	for (size_t i = 0; i < t->len && i < 8 && n > 0 && (size_t)n + 3 < size; i++)
		n += snprintf(out + n, size - (size_t)n, "%02x", t->data[i]);
	if (t->len > 8 && n > 0 && (size_t)n + 4 < size)
		snprintf(out + n, size - (size_t)n, "...");
}

/* TLSA at _25._tcp.HOST (RFC 7672): a 3 1 1 record whose data is our key's SPKI SHA-256. Other
 * kinds a sender may use (DANE-TA(2), or DANE-EE with the whole certificate or SHA-512) are not
 * compared here: the check says so rather than judging them. PKIX-TA(0)/PKIX-EE(1) are unusable
 * for SMTP (§3.1.3). Once any record is published, the current key's is needed: a DANE sender
 * that finds records of which none matches defers the mail (§2.2). */
static enum auth_step check_tlsa(struct domain_dns *d, struct domain_dns_item *it, const struct dns_result *answer,
				 struct auth_query *q_r)
{
	struct domain_rec *r = &it->rec;
	bool next = r->kind == DOMAIN_REC_TLSA_NEXT;
	if (d->sub++ == 0) {
		if (check_ask(q_r, r->name, DNS_RRTYPE_TLSA))
			return AUTH_STEP_QUERY;
		check_too_long(r);
		return AUTH_STEP_DONE;
	}
	if (answer->status == DNS_STATUS_BOGUS) {
		/* §2.2: a bogus TLSA answer makes DANE senders defer, whatever it holds */
		r->needed = !next;
		r->dnssec_bogus = true;
		domain_dns_verdict(r, DOMAIN_REC_FAILED,
				   "TLSA at %s: the answer failed DNSSEC validation (%s), so DANE senders defer mail to "
				   "%s", r->name, check_why(answer), d->hostname);
		return AUTH_STEP_DONE;
	}
	if (check_failed(answer)) {
		domain_dns_verdict(r, DOMAIN_REC_TEMPFAIL, "TLSA at %s: the lookup failed (%s)", r->name, check_why(answer));
		return AUTH_STEP_DONE;
	}
	if (!answer->secure)
		r->note = domain_dns_fmt(
			"the answer was not DNSSEC-validated (%s): senders ignore TLSA records that are not in a "
			"signed zone (RFC 7672 §2.2)",
			d->validating ? "the zone is not signed, or its chain of trust is broken"
				      : "no [dns] trust_anchor is set, so this check cannot tell");
	if (answer->status != DNS_STATUS_OK || answer->count == 0 || answer->tlsas == NULL) {
		domain_dns_verdict(r, DOMAIN_REC_FAILED, "TLSA at %s: missing", r->name);
		return AUTH_STEP_DONE;
	}
	size_t unchecked = 0, usable = 0;
	char first[64] = "";
	for (size_t i = 0; i < answer->count; i++) {
		const struct dns_tlsa *t = &answer->tlsas[i];
		if (t->usage == 3 && t->selector == 1 && t->mtype == 1 && t->len == sizeof(it->tlsa) &&
		    memcmp(t->data, it->tlsa, sizeof(it->tlsa)) == 0) {
			domain_dns_verdict(r, DOMAIN_REC_VERIFIED, "TLSA at %s: 3 1 1 matches the %s", r->name,
					   next ? "next key (ready for the rollover)" : "key the SMTP listener serves");
			return AUTH_STEP_DONE;
		}
		if (t->usage == 2 || (t->usage == 3 && !(t->selector == 1 && t->mtype == 1)))
			unchecked++;
		if (t->usage == 2 || t->usage == 3)
			usable++;
		if (first[0] == '\0')
			check_tlsa_short(t, first, sizeof(first));
	}
	if (next) {
		domain_dns_verdict(r, DOMAIN_REC_FAILED,
				   "TLSA at %s: none for the next key yet (publish it before that key is used)", r->name);
		return AUTH_STEP_DONE;
	}
	if (unchecked > 0) {
		domain_dns_verdict(r, DOMAIN_REC_VERIFIED,
				   "TLSA at %s: %zu record%s of a kind this check does not compare (DANE-TA 2 x x, or "
				   "3 0 x / 3 1 2): not checked", r->name, unchecked, unchecked == 1 ? "" : "s");
		if (r->note == NULL)
			r->note = domain_dns_fmt("a 3 1 1 record for the current key is what mailwerk dns records "
						 "suggests, and what this check can verify");
		return AUTH_STEP_DONE;
	}
	/* only unusable ones (PKIX usages): senders encrypt without authentication (§2.2), no harm
	 * but no DANE either */
	r->needed = usable > 0;
	domain_dns_verdict(r, DOMAIN_REC_FAILED,
			   "TLSA at %s: %zu record%s (%s%s), none matching the key the SMTP listener serves%s", r->name,
			   answer->count, answer->count == 1 ? "" : "s", first, answer->count > 1 ? ", ..." : "",
			   usable > 0 ? ", so DANE senders defer mail to this server" : " (none usable for SMTP)");
	return AUTH_STEP_DONE;
}

static enum auth_step check_rec(struct domain_dns *d, struct domain_dns_item *it, const struct dns_result *answer,
				struct auth_query *q_r)
{
	switch (it->rec.kind) {
	case DOMAIN_REC_ADDRESS: return check_address(d, it, answer, q_r);
	case DOMAIN_REC_MX:
	case DOMAIN_REC_RETURN_MX: return check_mx(d, it, answer, q_r);
	case DOMAIN_REC_SPF:
	case DOMAIN_REC_RETURN_SPF: return check_spf(d, it, answer, q_r);
	case DOMAIN_REC_DKIM: return check_dkim(d, it, answer, q_r);
	case DOMAIN_REC_DMARC: return check_dmarc(d, it, answer, q_r);
	case DOMAIN_REC_PTR: return check_ptr(d, it, answer, q_r);
	case DOMAIN_REC_MTA_STS:
	case DOMAIN_REC_TLS_RPT: return check_txt_version(d, it, answer, q_r);
	case DOMAIN_REC_MTA_STS_HOST: return check_sts_host(d, it, answer, q_r);
	case DOMAIN_REC_TLSA:
	case DOMAIN_REC_TLSA_NEXT: return check_tlsa(d, it, answer, q_r);
	}
	return AUTH_STEP_DONE;
}

enum auth_step domain_dns_check_step(void *arg, const struct dns_result *answer, struct auth_query *q_r)
{
	struct domain_dns *d = arg;
	if (d->done)
		return AUTH_STEP_DONE;
	if (!d->started) {
		d->started = true;
		d->discovering = d->nips == 0;
		answer = NULL;
	}
	for (;;) {
		if (d->discovering) {
			if (check_discover(d, answer, q_r) == AUTH_STEP_DONE) {
				d->discovering = false;
				d->sub = 0;
				answer = NULL;
				if (d->done)
					return AUTH_STEP_DONE;
				continue;
			}
		} else {
			if (d->cur >= d->n) {
				d->done = true;
				return AUTH_STEP_DONE;
			}
			struct domain_dns_item *it = &d->items[d->cur];
			/* decided before its turn: the DKIM placeholder, addresses found, one family's answer */
			if (d->sub == 0 && it->rec.status != DOMAIN_REC_NOT_STARTED) {
				d->cur++;
				continue;
			}
			if (check_rec(d, it, answer, q_r) == AUTH_STEP_DONE) {
				domain_dns_check_clear(d);
				d->cur++;
				d->sub = 0;
				answer = NULL;
				continue;
			}
		}
		if (++d->asked > DOMAIN_DNS_QUESTIONS_MAX) {
			char why[80];
			snprintf(why, sizeof(why), "the check stopped after %d questions", DOMAIN_DNS_QUESTIONS_MAX);
			check_stop(d, why);
			return AUTH_STEP_DONE;
		}
		return AUTH_STEP_QUERY;
	}
}
