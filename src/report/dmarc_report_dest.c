/* dmarc_report_dest.c — RFC 9990 §4: which rua destinations may receive a policy domain's
 * aggregate reports, asking "<policy domain>._report._dmarc.<destination>" for those outside its
 * organization (see dmarc_report_dest.h for the rules). */
#include "report/dmarc_report_dest.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/dmarc_record.h"
#include "auth/dmarc_walk.h"

/* RFC 9990 §4 step 2 */
#define REPORT_LABELS "._report._dmarc."

const char *dmarc_report_dest_status_str(enum dmarc_report_dest_status s)
{
	switch (s) {
	case DMARC_REPORT_DEST_INTERNAL: return "internal";
	case DMARC_REPORT_DEST_CHECK: return "check";
	case DMARC_REPORT_DEST_VERIFIED: return "verified";
	case DMARC_REPORT_DEST_UNVERIFIED: return "unverified";
	case DMARC_REPORT_DEST_TEMPFAIL: return "tempfail";
	case DMARC_REPORT_DEST_FOREIGN_OVERRIDE: return "foreign_override";
	case DMARC_REPORT_DEST_INVALID: return "invalid";
	}
	return "?";
}

static void lower_copy(char *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
	out[n] = '\0';
}

/* An ASCII mailbox at a host name, its domain lower-cased, into out (DMARC_REPORT_ADDR_SIZE);
 * *domain_r points at its domain in out. */
static bool addr_normalize(const char *addr, char *out, const char **domain_r)
{
	struct addr a;
	const char *err;
	if (addr == NULL || addr_parse_mailbox(addr, strlen(addr), 0, &a, &err) != ADDR_OK || a.is_literal)
		return false;
	size_t len = strlen(a.text);
	if (len >= DMARC_REPORT_ADDR_SIZE)
		return false;
	memcpy(out, a.text, a.domain_off);
	lower_copy(out + a.domain_off, a.text + a.domain_off, len - a.domain_off);
	*domain_r = out + a.domain_off;
	return dns_host_valid(*domain_r);
}

/* Whether domain shares the policy domain's organization (see the header). */
static bool internal(const char *policy_domain, const char *org_domain, const char *domain)
{
	if (org_domain == NULL || org_domain[0] == '\0')
		return dmarc_domain_within(domain, policy_domain);
	if (dmarc_domain_within(policy_domain, org_domain))
		return dmarc_domain_within(domain, org_domain);
	/* a record above the Organizational Domain: a PSD's, whose names below are other
	 * organizations (RFC 9989 §4.10.2 step 2) */
	return strcmp(domain, policy_domain) == 0;
}

static enum dmarc_report_dest_status classify(const char *policy_domain, const char *org_domain, const char *domain,
					      char *name_r, const char **error_r)
{
	if (internal(policy_domain, org_domain, domain))
		return DMARC_REPORT_DEST_INTERNAL;
	/* steps 1-3: the destination host, "_report._dmarc", the policy domain in front */
	size_t p = strlen(policy_domain), d = strlen(domain), l = sizeof(REPORT_LABELS) - 1;
	if (p + l + d >= DNS_HOST_SIZE) {
		/* step 4: "a positive determination ... cannot be made" */
		*error_r = "the verification name would be longer than DNS allows";
		return DMARC_REPORT_DEST_INVALID;
	}
	memcpy(name_r, policy_domain, p);
	memcpy(name_r + p, REPORT_LABELS, l);
	memcpy(name_r + p + l, domain, d + 1);
	return DMARC_REPORT_DEST_CHECK;
}

enum dmarc_report_dest_status dmarc_report_dest_classify(const char *policy_domain, const char *org_domain,
							 const char *addr, char *name_r, const char **error_r)
{
	char pd[DNS_HOST_SIZE], norm[DMARC_REPORT_ADDR_SIZE];
	const char *domain;
	name_r[0] = '\0';
	if (policy_domain == NULL || strlen(policy_domain) >= sizeof(pd)) {
		*error_r = "the policy domain is not a host name";
		return DMARC_REPORT_DEST_INVALID;
	}
	lower_copy(pd, policy_domain, strlen(policy_domain));
	if (!dns_host_valid(pd)) {
		*error_r = "the policy domain is not a host name";
		return DMARC_REPORT_DEST_INVALID;
	}
	if (!addr_normalize(addr, norm, &domain)) {
		*error_r = "not an ASCII mailbox at a host name";
		return DMARC_REPORT_DEST_INVALID;
	}
	char org[DNS_HOST_SIZE] = "";
	if (org_domain != NULL && strlen(org_domain) < sizeof(org))
		lower_copy(org, org_domain, strlen(org_domain));
	return classify(pd, org, domain, name_r, error_r);
}

/* ---- the evaluator ---- */

struct dest {
	char addr[DMARC_REPORT_ADDR_SIZE]; /* normalized */
	const char *domain;                /* in addr */
	enum dmarc_report_dest_status status;
	const char *why;
	char name[DNS_HOST_SIZE];
	size_t override_count;
	char override[DMARC_URIS_MAX][DMARC_REPORT_ADDR_SIZE];
};

struct dmarc_report_dests {
	char policy_domain[DNS_HOST_SIZE];
	char org_domain[DNS_HOST_SIZE]; /* "" when unknown */
	size_t n;
	struct dest d[DMARC_REPORT_DEST_MAX];
	size_t asking; /* the dest whose question is out; SIZE_MAX for none */
	bool done;
	size_t allowed_count;
	const char *allowed[DMARC_REPORT_DEST_MAX];
};

struct dmarc_report_dests *dmarc_report_dests_new(const char *policy_domain, const char *org_domain,
						  const char *const *addrs, size_t n)
{
	if (policy_domain == NULL || strlen(policy_domain) >= DNS_HOST_SIZE)
		return NULL;
	struct dmarc_report_dests *ds = calloc(1, sizeof(*ds));
	if (ds == NULL)
		return NULL;
	lower_copy(ds->policy_domain, policy_domain, strlen(policy_domain));
	if (!dns_host_valid(ds->policy_domain)) {
		free(ds);
		return NULL;
	}
	if (org_domain != NULL && strlen(org_domain) < sizeof(ds->org_domain))
		lower_copy(ds->org_domain, org_domain, strlen(org_domain));
	ds->n = n < DMARC_REPORT_DEST_MAX ? n : DMARC_REPORT_DEST_MAX;
	ds->asking = SIZE_MAX;
	for (size_t i = 0; i < ds->n; i++) {
		struct dest *d = &ds->d[i];
		if (!addr_normalize(addrs[i], d->addr, &d->domain)) {
			d->addr[0] = '\0';
			d->domain = d->addr;
			d->status = DMARC_REPORT_DEST_INVALID;
			d->why = "not an ASCII mailbox at a host name";
			continue;
		}
		d->status = classify(ds->policy_domain, ds->org_domain, d->domain, d->name, &d->why);
		if (d->status == DMARC_REPORT_DEST_INTERNAL)
			d->why = "within the policy domain's organization";
	}
	return ds;
}

/* Step 9: the mailto: URIs of the authorizing record replace the destination if they all stay at
 * its host; a URI elsewhere forbids both. */
static void dest_override(struct dest *d, const struct dmarc_record *rec)
{
	size_t kept = 0;
	for (size_t i = 0; i < rec->rua_count; i++) {
		const char *a = dmarc_uri_addr(rec, &rec->rua[i]);
		if (a == NULL)
			continue; /* not mailto: we do not send by other means */
		const char *at = strrchr(a, '@');
		char host[DNS_HOST_SIZE];
		size_t hl = at != NULL ? strlen(at + 1) : 0;
		if (at == NULL || hl >= sizeof(host)) {
			d->status = DMARC_REPORT_DEST_FOREIGN_OVERRIDE;
			d->why = "the authorizing record's rua is not at the destination host";
			return;
		}
		lower_copy(host, at + 1, hl);
		/* "the overriding URI MUST use the same destination host from the first step" */
		if (strcmp(host, d->domain) != 0) {
			d->status = DMARC_REPORT_DEST_FOREIGN_OVERRIDE;
			d->why = "the authorizing record's rua is not at the destination host";
			return;
		}
		const char *dom;
		if (addr_normalize(a, d->override[kept], &dom))
			kept++;
	}
	d->override_count = kept;
}

/* Steps 5-8 for dest d with the answer a. */
static void dest_answer(struct dest *d, const struct dns_result *a)
{
	switch (a->status) {
	case DNS_STATUS_OK:
		break;
	case DNS_STATUS_NXDOMAIN:
	case DNS_STATUS_NODATA:
		d->status = DMARC_REPORT_DEST_UNVERIFIED;
		d->why = "no record at the verification name";
		return;
	default:
		d->status = DMARC_REPORT_DEST_TEMPFAIL;
		d->why = "the verification question failed";
		return;
	}
	for (size_t i = 0; a->txts != NULL && i < a->count; i++) {
		struct dmarc_record rec;
		const char *why;
		/* step 6: "the "v=DMARC1" tag is mandatory and MUST appear first"; the rest need not
		 * make a usable policy (a bare "v=DMARC1" is the usual authorization) */
		if (dmarc_record_parse(a->txts[i].text, a->txts[i].len, &rec, &why) == DMARC_RECORD_NOT_DMARC)
			continue;
		d->status = DMARC_REPORT_DEST_VERIFIED;
		d->why = "authorized by the destination's record";
		dest_override(d, &rec);
		return;
	}
	/* step 7 */
	d->status = DMARC_REPORT_DEST_UNVERIFIED;
	d->why = "no v=DMARC1 record at the verification name";
}

static bool allowed_add(struct dmarc_report_dests *ds, const char *addr)
{
	for (size_t i = 0; i < ds->allowed_count; i++)
		if (strcmp(ds->allowed[i], addr) == 0)
			return true;
	if (ds->allowed_count >= DMARC_REPORT_DEST_MAX)
		return false;
	ds->allowed[ds->allowed_count++] = addr;
	return true;
}

static void dests_finish(struct dmarc_report_dests *ds)
{
	ds->done = true;
	ds->asking = SIZE_MAX;
	for (size_t i = 0; i < ds->n; i++) {
		struct dest *d = &ds->d[i];
		if (d->status == DMARC_REPORT_DEST_INTERNAL ||
		    (d->status == DMARC_REPORT_DEST_VERIFIED && d->override_count == 0)) {
			allowed_add(ds, d->addr);
		} else if (d->status == DMARC_REPORT_DEST_VERIFIED) {
			for (size_t j = 0; j < d->override_count; j++)
				allowed_add(ds, d->override[j]);
		}
	}
}

enum auth_step dmarc_report_dests_step(void *arg, const struct dns_result *answer, struct auth_query *q_r)
{
	struct dmarc_report_dests *ds = arg;
	if (ds->done)
		return AUTH_STEP_DONE;
	if (answer != NULL && ds->asking != SIZE_MAX) {
		/* the answer holds for every destination at the same domain (same name) */
		const char *name = ds->d[ds->asking].name;
		for (size_t i = 0; i < ds->n; i++)
			if (i != ds->asking && ds->d[i].status == DMARC_REPORT_DEST_CHECK && strcmp(ds->d[i].name, name) == 0)
				dest_answer(&ds->d[i], answer);
		dest_answer(&ds->d[ds->asking], answer);
		ds->asking = SIZE_MAX;
	}
	for (size_t i = 0; i < ds->n; i++) {
		if (ds->d[i].status != DMARC_REPORT_DEST_CHECK)
			continue;
		memcpy(q_r->name, ds->d[i].name, sizeof(q_r->name));
		q_r->rrtype = DNS_RRTYPE_TXT;
		ds->asking = i;
		return AUTH_STEP_QUERY;
	}
	dests_finish(ds);
	return AUTH_STEP_DONE;
}

size_t dmarc_report_dests_count(const struct dmarc_report_dests *ds)
{
	return ds->n;
}

enum dmarc_report_dest_status dmarc_report_dests_status(const struct dmarc_report_dests *ds, size_t i,
							const char **why_r)
{
	if (why_r != NULL)
		*why_r = ds->d[i].why;
	return ds->d[i].status;
}

size_t dmarc_report_dests_allowed(const struct dmarc_report_dests *ds, const char *const **addrs_r)
{
	*addrs_r = ds->allowed;
	return ds->allowed_count;
}

bool dmarc_report_dests_tempfail(const struct dmarc_report_dests *ds)
{
	for (size_t i = 0; i < ds->n; i++)
		if (ds->d[i].status == DMARC_REPORT_DEST_TEMPFAIL)
			return true;
	return false;
}

void dmarc_report_dests_free(struct dmarc_report_dests *ds)
{
	free(ds);
}
