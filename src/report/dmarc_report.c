/* dmarc_report.c — DMARC aggregate report rows and the <feedback> XML document of RFC 9990 §3.1.1:
 * filling a row from a DMARC evaluation, checking it, the grouping key, and the document built with
 * every string escaped. The message around the document is in dmarc_report_mail.c. */
#include "report/dmarc_report.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/sha.h>

#include "report/report_xml.h"

#ifndef MAILWERK_VERSION
#define MAILWERK_VERSION "unknown"
#endif

/* RFC 9990 §6.1 */
#define DMARC_REPORT_NS "urn:ietf:params:xml:ns:dmarc-2.0"

const char *dmarc_report_override_str(enum dmarc_report_override o)
{
	/* §3.1.6, the schema's PolicyOverrideType */
	switch (o) {
	case DMARC_REPORT_OVERRIDE_NONE: return "none";
	case DMARC_REPORT_OVERRIDE_LOCAL_POLICY: return "local_policy";
	case DMARC_REPORT_OVERRIDE_MAILING_LIST: return "mailing_list";
	case DMARC_REPORT_OVERRIDE_OTHER: return "other";
	case DMARC_REPORT_OVERRIDE_POLICY_TEST_MODE: return "policy_test_mode";
	case DMARC_REPORT_OVERRIDE_TRUSTED_FORWARDER: return "trusted_forwarder";
	}
	return "?";
}

const char *dmarc_report_scope_str(enum dmarc_report_scope s)
{
	switch (s) {
	case DMARC_REPORT_SCOPE_MFROM: return "mfrom";
	case DMARC_REPORT_SCOPE_HELO: return "helo";
	}
	return "?";
}

const char *dmarc_report_error_str(enum dmarc_report_error e)
{
	switch (e) {
	case DMARC_REPORT_OK: return "ok";
	case DMARC_REPORT_INVALID: return "invalid";
	case DMARC_REPORT_TOO_BIG: return "too_big";
	case DMARC_REPORT_NOMEM: return "nomem";
	}
	return "?";
}

/* ---- rows ---- */

/* Copies s into a field of size octets, cut to fit. */
static void field_set(char *field, size_t size, const char *s)
{
	size_t n = s != NULL ? strnlen(s, size - 1) : 0;
	if (n > 0)
		memcpy(field, s, n);
	field[n] = '\0';
}

bool dmarc_report_row_fill(struct dmarc_report_row *r, const struct dmarc_outcome *o)
{
	memset(r, 0, sizeof(*r));
	if (!o->has_record || o->policy_domain[0] == '\0')
		return false;
	const struct dmarc_record *rec = &o->record;
	/* RFC 9990 §3.4: rua says where reports go; only mailto: is a method we have (§3.5.2) */
	for (size_t i = 0; i < rec->rua_count && r->rua_count < DMARC_REPORT_RUA_MAX; i++) {
		const char *addr = dmarc_uri_addr(rec, &rec->rua[i]);
		if (addr == NULL || strlen(addr) >= DMARC_REPORT_ADDR_SIZE)
			continue;
		field_set(r->rua[r->rua_count++], DMARC_REPORT_ADDR_SIZE, addr);
	}
	if (r->rua_count == 0)
		return false;
	r->count = 1;
	field_set(r->header_from, sizeof(r->header_from), o->author_domain);
	field_set(r->policy_domain, sizeof(r->policy_domain), o->policy_domain);
	field_set(r->org_domain, sizeof(r->org_domain), o->org_domain);
	r->published = (struct dmarc_report_policy){
		.p = rec->p, .sp = rec->sp, .np = rec->np,
		.adkim = rec->adkim, .aspf = rec->aspf,
		.testing = rec->testing, .psd = rec->psd, .fo = rec->fo,
	};
	r->policy = o->policy;
	r->disposition = o->disposition;
	r->dkim_aligned = o->dkim_aligned;
	r->spf_aligned = o->spf_aligned;
	return true;
}

/* §3.1.3's order of preference: 0 is best. */
static int dkim_rank(const struct dmarc_report_row *r, const char *domain, enum dkim_result result)
{
	if (result != DKIM_RESULT_PASS)
		return 3;
	if (strcasecmp(domain, r->header_from) == 0)
		return 0;
	/* relaxed alignment: the same Organizational Domain; without one known, a domain that holds
	 * the other stands in for it */
	const char *org = r->org_domain[0] != '\0' ? r->org_domain : NULL;
	if (org != NULL ? dmarc_domain_within(domain, org)
			: dmarc_domain_within(domain, r->header_from) || dmarc_domain_within(r->header_from, domain))
		return 1;
	return 2;
}

void dmarc_report_row_add_dkim(struct dmarc_report_row *r, const char *domain, const char *selector,
			       enum dkim_result result)
{
	struct dmarc_report_dkim d = { .result = result };
	field_set(d.domain, sizeof(d.domain), domain);
	field_set(d.selector, sizeof(d.selector), selector);
	int rank = dkim_rank(r, d.domain, result);
	size_t at = r->dkim_count;
	while (at > 0 && dkim_rank(r, r->dkim[at - 1].domain, r->dkim[at - 1].result) > rank)
		at--;
	if (at >= DMARC_REPORT_DKIM_MAX)
		return; /* worse than every kept one */
	size_t keep = r->dkim_count < DMARC_REPORT_DKIM_MAX ? r->dkim_count : DMARC_REPORT_DKIM_MAX - 1;
	memmove(&r->dkim[at + 1], &r->dkim[at], (keep - at) * sizeof(r->dkim[0]));
	r->dkim[at] = d;
	r->dkim_count = keep + 1;
}

static bool terminated(const char *field, size_t size)
{
	return memchr(field, '\0', size) != NULL;
}

#define ROW_TERMINATED(r, f) terminated((r)->f, sizeof((r)->f))

enum dmarc_report_error dmarc_report_row_check(const struct dmarc_report_row *r, const char **error_r)
{
	if (r->count == 0) {
		*error_r = "the row counts no message";
		return DMARC_REPORT_INVALID;
	}
	if (!ROW_TERMINATED(r, source_ip) || !ROW_TERMINATED(r, header_from) || !ROW_TERMINATED(r, envelope_from) ||
	    !ROW_TERMINATED(r, envelope_to) || !ROW_TERMINATED(r, policy_domain) || !ROW_TERMINATED(r, org_domain) ||
	    !ROW_TERMINATED(r, spf_domain)) {
		*error_r = "a field of the row is not terminated";
		return DMARC_REPORT_INVALID;
	}
	if (!dns_host_valid(r->policy_domain)) {
		*error_r = "the policy domain is not a host name";
		return DMARC_REPORT_INVALID;
	}
	const struct dmarc_report_policy *p = &r->published;
	if (p->p > DMARC_POLICY_REJECT || p->sp > DMARC_POLICY_REJECT || p->np > DMARC_POLICY_REJECT ||
	    r->policy > DMARC_POLICY_REJECT || r->disposition > DMARC_POLICY_REJECT || p->adkim > DMARC_ALIGN_STRICT ||
	    p->aspf > DMARC_ALIGN_STRICT || p->psd > DMARC_PSD_N ||
	    (p->fo & ~(unsigned)(DMARC_FO_0 | DMARC_FO_1 | DMARC_FO_D | DMARC_FO_S)) != 0 ||
	    r->override > DMARC_REPORT_OVERRIDE_TRUSTED_FORWARDER || r->spf_scope > DMARC_REPORT_SCOPE_HELO ||
	    r->spf_result > SPF_RESULT_PERMERROR) {
		*error_r = "a value of the row is out of range";
		return DMARC_REPORT_INVALID;
	}
	if (r->dkim_count > DMARC_REPORT_DKIM_MAX) {
		*error_r = "too many DKIM results in the row";
		return DMARC_REPORT_INVALID;
	}
	for (size_t i = 0; i < r->dkim_count; i++) {
		if (!ROW_TERMINATED(r, dkim[i].domain) || !ROW_TERMINATED(r, dkim[i].selector) ||
		    r->dkim[i].result > DKIM_RESULT_PERMERROR) {
			*error_r = "a DKIM result of the row is not terminated or out of range";
			return DMARC_REPORT_INVALID;
		}
	}
	if (r->rua_count == 0 || r->rua_count > DMARC_REPORT_RUA_MAX) {
		*error_r = "the row has no rua address, or too many";
		return DMARC_REPORT_INVALID;
	}
	for (size_t i = 0; i < r->rua_count; i++) {
		if (!ROW_TERMINATED(r, rua[i]) || r->rua[i][0] == '\0') {
			*error_r = "a rua address of the row is empty or not terminated";
			return DMARC_REPORT_INVALID;
		}
		/* the store keeps the list as lines; a mailbox never holds control characters */
		for (const char *c = r->rua[i]; *c != '\0'; c++) {
			if ((unsigned char)*c < 0x20 || *c == 0x7f) {
				*error_r = "a rua address of the row holds a control character";
				return DMARC_REPORT_INVALID;
			}
		}
	}
	return DMARC_REPORT_OK;
}

const char *dmarc_report_row_disposition(const struct dmarc_report_row *r)
{
	/* the schema's ActionDispositionType: "pass" is "No action, passing DMARC w/enforcing policy" */
	if ((r->dkim_aligned || r->spf_aligned) && r->disposition == DMARC_POLICY_NONE && r->policy != DMARC_POLICY_NONE)
		return "pass";
	return dmarc_policy_str(r->disposition);
}

enum dmarc_report_override dmarc_report_row_reason(const struct dmarc_report_row *r)
{
	if (r->override != DMARC_REPORT_OVERRIDE_NONE)
		return r->override;
	/* §3.1.1.9: "If alignment fails and the policy applied does not match the DMARC Policy Domain's
	 * configured policy, the "reason" element MUST be included." */
	if (r->dkim_aligned || r->spf_aligned || r->disposition == r->policy)
		return DMARC_REPORT_OVERRIDE_NONE;
	return r->published.testing ? DMARC_REPORT_OVERRIDE_POLICY_TEST_MODE : DMARC_REPORT_OVERRIDE_LOCAL_POLICY;
}

/* ---- the grouping key ---- */

struct key_buf {
	size_t len;
	unsigned char b[8192]; /* more than every keyed field of a row together */
};

static void key_str(struct key_buf *k, const char *s)
{
	size_t n = strlen(s);
	k->b[k->len++] = (unsigned char)(n >> 8);
	k->b[k->len++] = (unsigned char)n;
	memcpy(k->b + k->len, s, n);
	k->len += n;
}

static void key_byte(struct key_buf *k, unsigned v)
{
	k->b[k->len++] = (unsigned char)v;
}

static void row_digest(const struct dmarc_report_row *r, unsigned char md[SHA256_DIGEST_LENGTH])
{
	/* length-prefixed fields: no two different rows serialize alike */
	struct key_buf k;
	k.len = 0;
	key_str(&k, r->policy_domain);
	key_byte(&k, (unsigned)r->rua_count);
	for (size_t i = 0; i < r->rua_count; i++)
		key_str(&k, r->rua[i]);
	key_str(&k, r->source_ip);
	key_str(&k, dmarc_report_row_disposition(r));
	key_byte(&k, dmarc_report_row_reason(r));
	key_byte(&k, (unsigned)r->dkim_aligned << 1 | (unsigned)r->spf_aligned);
	key_str(&k, r->header_from);
	key_str(&k, r->envelope_from);
	key_str(&k, r->envelope_to);
	key_str(&k, r->spf_domain);
	if (r->spf_domain[0] != '\0') {
		key_byte(&k, r->spf_scope);
		key_byte(&k, r->spf_result);
	}
	key_byte(&k, (unsigned)r->dkim_count);
	for (size_t i = 0; i < r->dkim_count; i++) {
		key_str(&k, r->dkim[i].domain);
		key_str(&k, r->dkim[i].selector);
		key_byte(&k, r->dkim[i].result);
	}
	SHA256(k.b, k.len, md);
}

_Static_assert(2 * SHA256_DIGEST_LENGTH + 1 == DMARC_REPORT_KEY_SIZE, "key size");

void dmarc_report_row_key(const struct dmarc_report_row *r, char key_r[DMARC_REPORT_KEY_SIZE])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[SHA256_DIGEST_LENGTH];
	row_digest(r, md);
	for (size_t i = 0; i < sizeof(md); i++) {
		key_r[2 * i] = hex[md[i] >> 4];
		key_r[2 * i + 1] = hex[md[i] & 15];
	}
	key_r[2 * sizeof(md)] = '\0';
}

/* ---- Report-IDs ---- */

void dmarc_report_id_make(char id_r[DMARC_REPORT_ID_SIZE], int64_t begin, uint64_t serial)
{
	snprintf(id_r, DMARC_REPORT_ID_SIZE, "%" PRIu64 "x%" PRIu64, begin < 0 ? 0 : (uint64_t)begin, serial);
}

bool dmarc_report_id_valid(const char *id)
{
	size_t n = 0;
	/* §3.5.2 unique-id = 1*(ALPHA / DIGIT) */
	for (; id[n] != '\0'; n++) {
		char c = id[n];
		if (n >= DMARC_REPORT_ID_SIZE - 1 || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			return false;
	}
	return n > 0;
}

/* ---- grouping rows into records ---- */

struct group {
	size_t first;    /* index of its first row */
	uint64_t count;  /* messages, saturating */
	unsigned char md[SHA256_DIGEST_LENGTH];
};

/* Groups rows[0..n) by key; groups come out in the order of their first row. NULL when out of
 * memory. */
static struct group *rows_group(const struct dmarc_report_row *rows, size_t n, size_t *count_r)
{
	size_t slots = 16;
	while (slots < 2 * n)
		slots *= 2;
	struct group *g = calloc(n, sizeof(*g));
	size_t *table = malloc(slots * sizeof(*table)); /* group index + 1; 0 = empty */
	if (g == NULL || table == NULL) {
		free(g);
		free(table);
		return NULL;
	}
	memset(table, 0, slots * sizeof(*table));
	size_t ng = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char md[SHA256_DIGEST_LENGTH];
		row_digest(&rows[i], md);
		uint64_t h;
		memcpy(&h, md, sizeof(h));
		size_t s = (size_t)h & (slots - 1);
		while (table[s] != 0 && memcmp(g[table[s] - 1].md, md, sizeof(md)) != 0)
			s = (s + 1) & (slots - 1);
		if (table[s] == 0) {
			g[ng].first = i;
			memcpy(g[ng].md, md, sizeof(md));
			table[s] = ++ng;
		}
		struct group *grp = &g[table[s] - 1];
		grp->count = grp->count > UINT64_MAX - rows[i].count ? UINT64_MAX : grp->count + rows[i].count;
	}
	free(table);
	*count_r = ng;
	return g;
}

/* ---- the document ---- */

static void fo_text(unsigned fo, char out[8])
{
	/* RFC 9989 §4.7 fo: colon-separated options */
	size_t o = 0;
	static const enum dmarc_fo bits[] = { DMARC_FO_0, DMARC_FO_1, DMARC_FO_D, DMARC_FO_S };
	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
		if ((fo & bits[i]) == 0)
			continue;
		if (o > 0)
			out[o++] = ':';
		out[o++] = dmarc_fo_str(bits[i])[0];
	}
	out[o] = '\0';
}

static void put_metadata(struct report_xml *x, const struct dmarc_report_meta *m)
{
	report_xml_open(x, 1, "report_metadata");
	report_xml_elem(x, 2, "org_name", m->org_name);
	report_xml_elem(x, 2, "email", m->email);
	if (m->extra_contact_info != NULL)
		report_xml_elem(x, 2, "extra_contact_info", m->extra_contact_info);
	report_xml_elem(x, 2, "report_id", m->report_id);
	report_xml_open(x, 2, "date_range");
	report_xml_elem_i64(x, 3, "begin", m->begin);
	report_xml_elem_i64(x, 3, "end", m->end);
	report_xml_close(x, 2, "date_range");
	report_xml_elem(x, 2, "generator", m->generator != NULL ? m->generator : "mailwerk " MAILWERK_VERSION);
	report_xml_close(x, 1, "report_metadata");
}

static void put_policy(struct report_xml *x, const struct dmarc_report_row *r)
{
	const struct dmarc_report_policy *p = &r->published;
	char fo[8];
	report_xml_open(x, 1, "policy_published");
	report_xml_elem(x, 2, "domain", r->policy_domain);
	/* §3.1.1.5: "treewalk" is RFC 9989's discovery (auth/dmarc_walk.h) */
	report_xml_elem(x, 2, "discovery_method", "treewalk");
	report_xml_elem(x, 2, "p", dmarc_policy_str(p->p));
	report_xml_elem(x, 2, "sp", dmarc_policy_str(p->sp));
	report_xml_elem(x, 2, "np", dmarc_policy_str(p->np));
	fo_text(p->fo, fo);
	if (fo[0] != '\0')
		report_xml_elem(x, 2, "fo", fo);
	report_xml_elem(x, 2, "adkim", dmarc_align_str(p->adkim));
	report_xml_elem(x, 2, "aspf", dmarc_align_str(p->aspf));
	report_xml_elem(x, 2, "testing", p->testing ? "y" : "n");
	report_xml_close(x, 1, "policy_published");
}

static void put_record(struct report_xml *x, const struct dmarc_report_row *r, uint64_t count)
{
	report_xml_open(x, 1, "record");
	/* §3.1.1.8 */
	report_xml_open(x, 2, "row");
	report_xml_elem(x, 3, "source_ip", r->source_ip);
	report_xml_elem_u64(x, 3, "count", count);
	/* §3.1.1.9: in this order */
	report_xml_open(x, 3, "policy_evaluated");
	report_xml_elem(x, 4, "disposition", dmarc_report_row_disposition(r));
	report_xml_elem(x, 4, "dkim", r->dkim_aligned ? "pass" : "fail");
	report_xml_elem(x, 4, "spf", r->spf_aligned ? "pass" : "fail");
	enum dmarc_report_override why = dmarc_report_row_reason(r);
	if (why != DMARC_REPORT_OVERRIDE_NONE) {
		report_xml_open(x, 4, "reason");
		report_xml_elem(x, 5, "type", dmarc_report_override_str(why));
		report_xml_close(x, 4, "reason");
	}
	report_xml_close(x, 3, "policy_evaluated");
	report_xml_close(x, 2, "row");
	/* §3.1.1.10: envelope_from "MAY exist but be empty if the message had a null reverse-path" */
	report_xml_open(x, 2, "identifiers");
	report_xml_elem(x, 3, "header_from", r->header_from);
	report_xml_elem(x, 3, "envelope_from", r->envelope_from);
	if (r->envelope_to[0] != '\0')
		report_xml_elem(x, 3, "envelope_to", r->envelope_to);
	report_xml_close(x, 2, "identifiers");
	/* §3.1.1.11: dkim elements first, then spf */
	report_xml_open(x, 2, "auth_results");
	for (size_t i = 0; i < r->dkim_count; i++) {
		report_xml_open(x, 3, "dkim");
		report_xml_elem(x, 4, "domain", r->dkim[i].domain);
		report_xml_elem(x, 4, "selector", r->dkim[i].selector);
		report_xml_elem(x, 4, "result", dkim_result_str(r->dkim[i].result));
		report_xml_close(x, 3, "dkim");
	}
	if (r->spf_domain[0] != '\0') {
		report_xml_open(x, 3, "spf");
		report_xml_elem(x, 4, "domain", r->spf_domain);
		/* §3.1.1.13: "The only valid value for the "scope" element is "mfrom"" */
		if (r->spf_scope == DMARC_REPORT_SCOPE_MFROM)
			report_xml_elem(x, 4, "scope", "mfrom");
		report_xml_elem(x, 4, "result", spf_result_str(r->spf_result));
		report_xml_close(x, 3, "spf");
	}
	report_xml_close(x, 2, "auth_results");
	report_xml_close(x, 1, "record");
}

static enum dmarc_report_error xml_check_args(const struct dmarc_report_meta *m, const struct dmarc_report_row *rows,
					      size_t n, const char **error_r)
{
	if (m->org_name == NULL || m->email == NULL || m->report_id == NULL) {
		*error_r = "org_name, email and report_id are required (RFC 9990 §3.1.1.3)";
		return DMARC_REPORT_INVALID;
	}
	if (!dmarc_report_id_valid(m->report_id)) {
		*error_r = "the report id must be 1 to 64 letters and digits";
		return DMARC_REPORT_INVALID;
	}
	if (m->begin > m->end) {
		*error_r = "the date range ends before it begins";
		return DMARC_REPORT_INVALID;
	}
	if (n == 0) {
		/* §3.1.1.2: "There MUST be at least one "record" element" */
		*error_r = "a report needs at least one row";
		return DMARC_REPORT_INVALID;
	}
	for (size_t i = 0; i < n; i++) {
		if (dmarc_report_row_check(&rows[i], error_r) != DMARC_REPORT_OK)
			return DMARC_REPORT_INVALID;
		/* §3.1: "Each report MUST contain data for only one DMARC Policy Domain." */
		if (strcmp(rows[i].policy_domain, rows[0].policy_domain) != 0) {
			*error_r = "the rows are for more than one policy domain";
			return DMARC_REPORT_INVALID;
		}
	}
	return DMARC_REPORT_OK;
}

enum dmarc_report_error dmarc_report_xml(const struct dmarc_report_meta *meta, const struct dmarc_report_row *rows,
					 size_t n, char **xml_r, size_t *len_r, struct dmarc_report_xml_info *info_r,
					 const char **error_r)
{
	struct dmarc_report_xml_info info = { 0 };
	*xml_r = NULL;
	*len_r = 0;
	enum dmarc_report_error e = xml_check_args(meta, rows, n, error_r);
	if (e != DMARC_REPORT_OK)
		return e;
	size_t ngroups;
	struct group *groups = rows_group(rows, n, &ngroups);
	if (groups == NULL) {
		*error_r = "out of memory";
		return DMARC_REPORT_NOMEM;
	}
	/* §3.1: the final configuration observed: the latest row's (the last one of equal times) */
	size_t latest = 0;
	for (size_t i = 1; i < n; i++)
		if (rows[i].time >= rows[latest].time)
			latest = i;

	static const char tail[] = "</feedback>\n";
	struct report_xml x;
	report_xml_init(&x);
	report_xml_raw(&x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback xmlns=\"" DMARC_REPORT_NS "\">\n");
	/* §3.1.1.2: in this order; version "MUST have the value 1.0" */
	report_xml_elem(&x, 1, "version", "1.0");
	put_metadata(&x, meta);
	put_policy(&x, &rows[latest]);
	for (size_t i = 0; i < ngroups && !x.nomem; i++) {
		size_t before = x.len;
		put_record(&x, &rows[groups[i].first], groups[i].count);
		if (i > 0 && x.len + sizeof(tail) - 1 > DMARC_REPORT_XML_MAX) {
			x.len = before;
			for (size_t j = i; j < ngroups; j++) {
				info.records_dropped++;
				info.messages_dropped += groups[j].count;
			}
			break;
		}
		info.records++;
		info.messages += groups[i].count;
	}
	report_xml_raw(&x, tail);
	free(groups);
	if (x.nomem) {
		report_xml_free(&x);
		*error_r = "out of memory";
		return DMARC_REPORT_NOMEM;
	}
	if (x.len > DMARC_REPORT_XML_MAX) {
		/* only a first record with metadata of absurd size gets here */
		report_xml_free(&x);
		*error_r = "the report passes its size limit with its first record";
		return DMARC_REPORT_TOO_BIG;
	}
	*xml_r = x.buf;
	*len_r = x.len;
	if (info_r != NULL)
		*info_r = info;
	return DMARC_REPORT_OK;
}
