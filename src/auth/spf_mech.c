/* spf_mech.c — the mechanisms of RFC 7208 §5 for the evaluation of spf.c: all, include, a, mx,
 * ptr, ip4, ip6 and exists, each counted (§4.6.4), its target expanded (§7.3) and its questions
 * asked and answered; and the PTR names of <ip> with their validation, which "ptr" and %{p} share. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "auth/spf_eval.h"

/* §5.3, §5.4, §5.5: addresses are looked up with the type of the connection */
static int spf_addr_rrtype(const struct spf_eval *e)
{
	return e->ip.family == AF_INET6 ? DNS_RRTYPE_AAAA : DNS_RRTYPE_A;
}

static bool spf_addr_in(const struct dns_addr *ip, const struct dns_addr *net, unsigned bits)
{
	if (ip->family != net->family || bits > (ip->family == AF_INET6 ? 128u : 32u))
		return false;
	size_t full = bits / 8;
	unsigned rest = bits % 8;
	if (memcmp(ip->bytes, net->bytes, full) != 0)
		return false;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return rest == 0 || (ip->bytes[full] & mask) == (net->bytes[full] & mask);
}

static bool spf_answer_has(const struct spf_eval *e, const struct dns_result *a, unsigned cidr4, unsigned cidr6)
{
	for (size_t i = 0; i < a->count; i++)
		if (spf_addr_in(&e->ip, &a->addrs[i], e->ip.family == AF_INET6 ? cidr6 : cidr4))
			return true;
	return false;
}

/* Whether name is domain or a name under it (§5.5), without case. */
static bool spf_name_under(const char *name, const char *domain)
{
	size_t n = strlen(name), d = strlen(domain);
	if (n < d || strcasecmp(name + n - d, domain) != 0)
		return false;
	return n == d || name[n - d - 1] == '.';
}

static void spf_ask_ptr(struct spf_eval *e)
{
	/* §5.5: the name of <ip> in in-addr.arpa or ip6.arpa, which is what this expands to (§7.4) */
	static const char reverse[] = "%{ir}.%{v}.arpa";
	struct spf_macro_env env = {.ip = &e->ip};
	char name[DNS_HOST_SIZE];
	const char *err;

	spf_macro_expand_domain(reverse, sizeof(reverse) - 1, &env, name, &err);
	spf_ask(e, SPF_WAIT_PTR, name, DNS_RRTYPE_PTR);
}

static void spf_ask_validate(struct spf_eval *e, size_t i)
{
	e->ptr_index = i;
	spf_ask(e, SPF_WAIT_PTR_ADDR, e->ptrs.names[i], spf_addr_rrtype(e));
}

/* §7.3 %{p}: "If the <domain> is present in the list of validated domains, it SHOULD be used.
 * Otherwise, if a subdomain of the <domain> is present, it SHOULD be used. Otherwise, any name
 * from the list can be used. If there are no validated domain names or if a DNS error occurs, the
 * string "unknown" is used." Returns whether *name_r (NULL for "unknown") is known; if not, the
 * next question has been asked. Names are validated lazily, in that order of preference. */
bool spf_p_ready(struct spf_eval *e, const char *domain, const char **name_r)
{
	if (!e->ptrs.fetched) {
		spf_ask_ptr(e);
		return false;
	}
	for (int pass = 0; pass < 3; pass++) {
		for (size_t i = 0; i < e->ptrs.n; i++) {
			const char *n = e->ptrs.names[i];
			bool same = strcasecmp(n, domain) == 0;
			if ((pass == 0 && !same) || (pass == 1 && (same || !spf_name_under(n, domain))))
				continue;
			if (e->ptrs.valid[i] < 0) {
				spf_ask_validate(e, i);
				return false;
			}
			if (e->ptrs.valid[i] > 0) {
				*name_r = n;
				return true;
			}
		}
	}
	*name_r = NULL;
	return true;
}

/* ptr (§5.5): the names of <ip> at or under the target that validate. */
static void spf_ptr_check(struct spf_eval *e)
{
	for (size_t i = 0; i < e->ptrs.n; i++) {
		if (!spf_name_under(e->ptrs.names[i], e->target))
			continue;
		if (e->ptrs.valid[i] < 0) {
			spf_ask_validate(e, i);
			return;
		}
		if (e->ptrs.valid[i] > 0) {
			spf_matched(e);
			return;
		}
	}
	spf_next_term(e);
}

/* The first move of a term (§5): no-DNS mechanisms decide at once, others expand their target and
 * ask. */
static void spf_term_start(struct spf_eval *e, const struct spf_term *t)
{
	const char *why = "";
	char text[96];

	switch (t->mech) {
	case SPF_MECH_ALL:
		spf_matched(e);
		return;
	case SPF_MECH_IP4:
	case SPF_MECH_IP6:
		/* §5.6; an IPv4 client never matches ip6, as it is evaluated as IPv4 (§5) */
		if (spf_addr_in(&e->ip, &t->net, t->mech == SPF_MECH_IP4 ? t->cidr4 : t->cidr6))
			spf_matched(e);
		else
			spf_next_term(e);
		return;
	default:
		break;
	}
	int r = spf_target(e, &t->domain, &why);
	if (r == 0)
		return;
	if (r < 0) {
		if (t->mech == SPF_MECH_INCLUDE) {
			spf_problem(e, "%s %s (§5.2)", spf_clean(t->text, t->text_len, text, sizeof(text)), why);
			spf_finish(e, SPF_RESULT_PERMERROR);
			return;
		}
		/* a target-name that cannot be asked names nothing: no match, as for a name that does not
		 * exist (§4.3, §4.8; RFC 7208 leaves this open, the suite accepts it) */
		spf_next_term(e);
		return;
	}
	switch (t->mech) {
	case SPF_MECH_A:
		spf_ask(e, SPF_WAIT_ADDR, e->target, spf_addr_rrtype(e));
		return;
	case SPF_MECH_EXISTS:
		/* §5.7: an A lookup, whatever the connection */
		spf_ask(e, SPF_WAIT_EXISTS, e->target, DNS_RRTYPE_A);
		return;
	case SPF_MECH_MX:
		spf_ask(e, SPF_WAIT_MX, e->target, DNS_RRTYPE_MX);
		return;
	case SPF_MECH_PTR:
		e->mstep = SPF_MSTEP_PTR_FETCH;
		if (!e->ptrs.fetched)
			spf_ask_ptr(e);
		return;
	case SPF_MECH_INCLUDE:
		spf_frame_start(e, e->target, false);
		return;
	default:
		return;
	}
}

void spf_mech_step(struct spf_eval *e)
{
	struct spf_frame *f = spf_top(e);

	if (f->term >= f->rec->nterms) {
		spf_record_end(e);
		return;
	}
	const struct spf_term *t = &f->rec->terms[f->term];
	if (e->mstep == SPF_MSTEP_BEGIN) {
		/* §4.6.4: the terms that query DNS are counted when they are evaluated */
		if (spf_mech_queries_dns(t->mech) && !spf_count_lookup(e, "", t->text, t->text_len))
			return;
		e->mstep = SPF_MSTEP_TARGET;
	}
	switch (e->mstep) {
	case SPF_MSTEP_TARGET:
		spf_term_start(e, t);
		return;
	case SPF_MSTEP_MX_NEXT:
		if (e->mx_next < e->mx_n)
			spf_ask(e, SPF_WAIT_MX_ADDR, e->mx[e->mx_next], spf_addr_rrtype(e));
		else
			spf_next_term(e);
		return;
	case SPF_MSTEP_PTR_FETCH:
		/* the PTR names are fetched by now (maybe for an earlier ptr or %{p}) */
		if (e->ptrs.found_none && !spf_count_void(e, e->target))
			return;
		e->mstep = SPF_MSTEP_PTR_CHECK;
		spf_ptr_check(e);
		return;
	case SPF_MSTEP_PTR_CHECK:
		spf_ptr_check(e);
		return;
	default:
		spf_problem(e, "internal: unexpected step");
		spf_finish(e, SPF_RESULT_TEMPERROR);
		return;
	}
}

/* The answers to the questions of spf_mech_step and spf_p_ready. */
void spf_mech_answer(struct spf_eval *e, enum spf_wait w, const struct dns_result *a)
{
	bool nothing = a->status == DNS_STATUS_NXDOMAIN || a->status == DNS_STATUS_NODATA;

	if (w == SPF_WAIT_PTR) {
		/* §5.5: a DNS error on the PTR lookup: no match (and %{p} is "unknown", §7.3) */
		e->ptrs.fetched = true;
		e->ptrs.found_none = nothing;
		/* §4.6.4: "all records other than the first 10 MUST be ignored" */
		for (size_t i = 0; a->status == DNS_STATUS_OK && i < a->count && i < SPF_PTR_LIMIT; i++) {
			/* dns_parse.h promises host names; what cannot be asked is skipped all the same */
			if (!spf_macro_name_ok(a->ptrs[i].name))
				continue;
			snprintf(e->ptrs.names[e->ptrs.n], DNS_HOST_SIZE, "%s", a->ptrs[i].name);
			e->ptrs.valid[e->ptrs.n++] = -1;
		}
		return;
	}
	if (w == SPF_WAIT_PTR_ADDR) {
		/* §5.5: validated when <ip> is among its addresses; a DNS error skips the name */
		bool ok = false;
		for (size_t i = 0; a->status == DNS_STATUS_OK && i < a->count && !ok; i++)
			ok = spf_addr_in(&e->ip, &a->addrs[i], e->ip.family == AF_INET6 ? 128 : 32);
		e->ptrs.valid[e->ptr_index] = ok ? 1 : 0;
		return;
	}
	if (e->phase != SPF_PHASE_TERM) /* cannot happen: the other questions belong to a term */
		return;
	const struct spf_term *t = &spf_top(e)->rec->terms[spf_top(e)->term];
	if (a->status == DNS_STATUS_TEMPFAIL) {
		spf_dns_error(e, a, "§5");
		return;
	}
	switch (w) {
	case SPF_WAIT_ADDR:
	case SPF_WAIT_EXISTS:
		/* §4.6.4: a void lookup; §5: NXDOMAIN is read as no records */
		if (nothing && !spf_count_void(e, e->target))
			return;
		if (a->status == DNS_STATUS_OK &&
		    (w == SPF_WAIT_EXISTS ? a->count > 0 : spf_answer_has(e, a, t->cidr4, t->cidr6)))
			spf_matched(e);
		else
			spf_next_term(e);
		return;
	case SPF_WAIT_MX:
		if (nothing && !spf_count_void(e, e->target))
			return;
		if (a->status == DNS_STATUS_OK && a->count > SPF_MX_LIMIT) {
			char clean[DNS_HOST_SIZE];
			/* §4.6.4: more than 10 address lookups for one mx "MUST produce a permerror" */
			spf_problem(e, "%s has %zu MX records, more than %d (§4.6.4)", SPF_CLEAN(e->target, clean), a->count,
				    SPF_MX_LIMIT);
			spf_finish(e, SPF_RESULT_PERMERROR);
			return;
		}
		e->mx_n = e->mx_next = 0;
		/* §5.4; a null MX (RFC 7505) names no host, nor does a name that cannot be asked */
		for (size_t i = 0; a->status == DNS_STATUS_OK && i < a->count; i++)
			if (spf_macro_name_ok(a->mx[i].exchange))
				snprintf(e->mx[e->mx_n++], DNS_HOST_SIZE, "%s", a->mx[i].exchange);
		e->mstep = SPF_MSTEP_MX_NEXT;
		return;
	case SPF_WAIT_MX_ADDR:
		if (a->status == DNS_STATUS_OK && spf_answer_has(e, a, t->cidr4, t->cidr6))
			spf_matched(e);
		else
			e->mx_next++;
		return;
	default:
		return;
	}
}
