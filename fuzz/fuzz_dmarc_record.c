/* fuzz_dmarc_record.c — libFuzzer harness for src/auth/dmarc_record.c, dmarc_walk.c and dmarc.c.
 * The input is read once as a TXT record (the invariants of dmarc_record.h checked on what parses),
 * then used as a hostile DNS zone for whole evaluations: the first octet picks the status of each
 * answer (2 bits per question: records, NXDOMAIN, NODATA, TEMPFAIL), the rest, cut at '|', gives
 * the TXT records every answer holds. The evaluator must end within its question budget with an
 * outcome that keeps the promises of dmarc.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/dmarc.h"

/* Not assert(): it must hold in every build. */
#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			__builtin_trap(); \
	} while (0)

#define FUZZ_TXT_MAX 8

static void fuzz_check_uris(const struct dmarc_record *r, const struct dmarc_uri *list, size_t n, size_t valid)
{
	FUZZ_CHECK(n <= DMARC_URIS_MAX && n <= valid);
	for (size_t i = 0; i < n; i++) {
		FUZZ_CHECK(list[i].uri < r->text_len);
		FUZZ_CHECK(memchr(r->text + list[i].uri, '\0', r->text_len - list[i].uri) != NULL);
		FUZZ_CHECK(strchr(dmarc_uri_text(r, &list[i]), ':') != NULL);
		if (list[i].addr != DMARC_URI_NO_ADDR) {
			FUZZ_CHECK(list[i].addr < r->text_len);
			FUZZ_CHECK(strchr(dmarc_uri_addr(r, &list[i]), '@') != NULL);
		}
	}
}

static void fuzz_check_record(const struct dmarc_record *r, enum dmarc_record_error e)
{
	FUZZ_CHECK(r->text_len <= sizeof(r->text));
	FUZZ_CHECK(r->p <= DMARC_POLICY_REJECT && r->sp <= DMARC_POLICY_REJECT && r->np <= DMARC_POLICY_REJECT);
	FUZZ_CHECK(r->psd <= DMARC_PSD_N && r->adkim <= DMARC_ALIGN_STRICT && r->aspf <= DMARC_ALIGN_STRICT);
	FUZZ_CHECK(r->pct >= -1 && r->pct <= 100);
	FUZZ_CHECK((r->warnings & ~((unsigned)DMARC_WARN_TOO_MANY_TAGS * 2 - 1)) == 0);
	FUZZ_CHECK((r->fo & (DMARC_FO_0 | DMARC_FO_1)) != (DMARC_FO_0 | DMARC_FO_1));
	fuzz_check_uris(r, r->rua, r->rua_count, r->rua_valid);
	fuzz_check_uris(r, r->ruf, r->ruf_count, r->ruf_valid);
	if (e == DMARC_RECORD_OK && (r->warnings & DMARC_WARN_P_NONE_BY_RUA) == 0) {
		FUZZ_CHECK(r->p_given);
		FUZZ_CHECK(r->sp_given || r->sp == r->p);
		FUZZ_CHECK(r->np_given || r->np == r->sp);
	}
	if ((r->warnings & DMARC_WARN_P_NONE_BY_RUA) != 0)
		FUZZ_CHECK(e == DMARC_RECORD_OK && r->rua_valid > 0 && r->p == DMARC_POLICY_NONE);
	if (e == DMARC_RECORD_NO_POLICY)
		FUZZ_CHECK(r->rua_valid == 0);
}

static void fuzz_record(const uint8_t *data, size_t size)
{
	/* an exact-size heap copy, so that ASan sees any read past the end */
	char *txt = malloc(size > 0 ? size : 1);
	if (txt == NULL)
		return;
	memcpy(txt, data, size);
	struct dmarc_record r, again;
	const char *err = NULL, *err2 = NULL;
	enum dmarc_record_error e = dmarc_record_parse(txt, size, &r, &err);
	FUZZ_CHECK(e <= DMARC_RECORD_NO_POLICY);
	FUZZ_CHECK(e == DMARC_RECORD_OK || err != NULL);
	if (e != DMARC_RECORD_NOT_DMARC)
		fuzz_check_record(&r, e);
	/* the same text reads the same */
	FUZZ_CHECK(dmarc_record_parse(txt, size, &again, &err2) == e);
	FUZZ_CHECK(memcmp(&r, &again, sizeof(r)) == 0);
	free(txt);
}

struct fuzz_zone {
	uint8_t statuses;
	unsigned asked;
	size_t ntxt;
	struct dns_txt txts[FUZZ_TXT_MAX];
	char *text; /* the NUL-terminated pieces */
};

static const struct dns_result *fuzz_answer(struct fuzz_zone *z, const struct auth_query *q, struct dns_result *res)
{
	static const enum dns_status st[] = { DNS_STATUS_OK, DNS_STATUS_NXDOMAIN, DNS_STATUS_NODATA, DNS_STATUS_TEMPFAIL };
	/* questions are proper names: "_dmarc." prefixed or a bare host name, never too long */
	FUZZ_CHECK(strnlen(q->name, sizeof(q->name)) < sizeof(q->name));
	FUZZ_CHECK(q->rrtype == DNS_RRTYPE_TXT || q->rrtype == DNS_RRTYPE_CNAME);
	if (q->rrtype == DNS_RRTYPE_TXT)
		FUZZ_CHECK(strncmp(q->name, "_dmarc.", 7) == 0 && dns_host_valid(q->name + 7));
	else
		FUZZ_CHECK(dns_host_valid(q->name));
	memset(res, 0, sizeof(*res));
	res->status = st[(z->statuses >> (z->asked % 4 * 2)) & 3];
	z->asked++;
	res->rrtype = q->rrtype;
	res->name = q->name;
	res->canonname = q->name;
	res->why = res->status == DNS_STATUS_TEMPFAIL ? "fuzz" : "";
	if (res->status == DNS_STATUS_OK) {
		if (q->rrtype == DNS_RRTYPE_TXT && z->ntxt > 0) {
			res->count = z->ntxt;
			res->txts = z->txts;
		} else if (q->rrtype == DNS_RRTYPE_TXT) {
			res->status = DNS_STATUS_NODATA;
		} else {
			res->count = 1; /* a CNAME, read from raw by nobody */
		}
	}
	return res;
}

static void fuzz_check_outcome(const struct dmarc_outcome *o, unsigned asked)
{
	FUZZ_CHECK(o->result <= DMARC_RESULT_PERMERROR && o->reason != NULL);
	FUZZ_CHECK(o->queries == asked && o->queries <= DMARC_QUERIES_MAX);
	FUZZ_CHECK(o->disposition <= o->policy);
	if (o->result != DMARC_RESULT_FAIL)
		FUZZ_CHECK(o->disposition == DMARC_POLICY_NONE);
	if (o->result == DMARC_RESULT_PASS)
		FUZZ_CHECK(o->spf_aligned || o->dkim_aligned);
	else
		FUZZ_CHECK(!o->spf_aligned && !o->dkim_aligned);
	if (o->result == DMARC_RESULT_PASS || o->result == DMARC_RESULT_FAIL)
		FUZZ_CHECK(o->has_record && dns_host_valid(o->policy_domain));
	if (o->org_domain[0] != '\0')
		FUZZ_CHECK(dns_host_valid(o->org_domain) && dmarc_domain_within(o->author_domain, o->org_domain));
	if (o->has_record)
		FUZZ_CHECK(dmarc_domain_within(o->author_domain, o->policy_domain));
	if (o->dkim_aligned)
		FUZZ_CHECK(dns_host_valid(o->dkim_aligned_domain));
}

static void fuzz_eval(struct fuzz_zone *z, const char *author, const char *spf, const char *const *dkim, size_t ndkim)
{
	struct dmarc_input in = {
		.author_domain = author,
		.spf_pass = spf != NULL,
		.spf_domain = spf,
		.dkim_pass_domains = dkim,
		.dkim_pass_count = ndkim,
	};
	struct dmarc_eval *e = dmarc_eval_new(&in);
	if (e == NULL)
		return;
	struct auth_query q;
	struct dns_result res;
	unsigned asked = 0;
	z->asked = 0;
	enum auth_step s = dmarc_eval_step(e, NULL, &q);
	while (s == AUTH_STEP_QUERY) {
		FUZZ_CHECK(++asked <= DMARC_QUERIES_MAX);
		s = dmarc_eval_step(e, fuzz_answer(z, &q, &res), &q);
	}
	fuzz_check_outcome(dmarc_eval_outcome(e), asked);
	dmarc_eval_free(e);
}

static void fuzz_zone_eval(const uint8_t *data, size_t size)
{
	if (size == 0)
		return;
	struct fuzz_zone z = { .statuses = data[0] };
	z.text = malloc(size);
	if (z.text == NULL)
		return;
	/* the pieces between '|', each NUL-terminated in place of its separator */
	size_t n = size - 1, start = 0;
	memcpy(z.text, data + 1, n);
	z.text[n] = '\0';
	for (size_t i = 0; i <= n && z.ntxt < FUZZ_TXT_MAX; i++) {
		if (i == n || z.text[i] == '|') {
			z.text[i] = '\0';
			z.txts[z.ntxt].text = z.text + start;
			z.txts[z.ntxt].len = i - start;
			z.ntxt++;
			start = i + 1;
		}
	}
	const char *dkim[] = { "b.example.com", "mail.sub.a.b.example.com", "example.net" };
	fuzz_eval(&z, "a.b.example.com", "x.example.com", dkim, 3);
	fuzz_eval(&z, "sub.a.b.c.d.e.f.g.h.example.com", "a.b.c.d.e.f.g.h.example.com", dkim + 1, 1);
	fuzz_eval(&z, "example.com", NULL, dkim, 2);
	free(z.text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_record(data, size);
	fuzz_zone_eval(data, size);
	return 0;
}
