/* fuzz_dmarc_from.c — libFuzzer harness for src/auth/dmarc_from.c. The input is read as a header
 * section (every From field), as one From field value, and as a domain to normalize; the results
 * must keep the promises of dmarc_from.h: at most DMARC_FROM_DOMAINS_MAX distinct domains, each a
 * host name in lower case, and a normal form that normalizes to itself. A message-level DMARC
 * evaluation over an empty zone must then end without DNS trouble. */
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

static void fuzz_check_from(const struct dmarc_from *r, enum dmarc_from_error e, const char *err, bool whole)
{
	FUZZ_CHECK(e <= DMARC_FROM_NO_DOMAIN);
	FUZZ_CHECK(e == DMARC_FROM_OK || err != NULL);
	FUZZ_CHECK(r->count <= DMARC_FROM_DOMAINS_MAX);
	FUZZ_CHECK(r->unusable <= r->mailboxes && r->count <= r->mailboxes - r->unusable);
	FUZZ_CHECK(!r->truncated || r->count == DMARC_FROM_DOMAINS_MAX);
	if (e == DMARC_FROM_OK && whole)
		FUZZ_CHECK(r->count >= 1);
	for (size_t i = 0; i < r->count; i++) {
		const char *d = r->domains[i];
		FUZZ_CHECK(strnlen(d, DNS_HOST_SIZE) < DNS_HOST_SIZE && dns_host_valid(d));
		for (const char *p = d; *p != '\0'; p++)
			FUZZ_CHECK(*p < 'A' || *p > 'Z');
		for (size_t k = 0; k < i; k++)
			FUZZ_CHECK(strcmp(r->domains[k], d) != 0);
		char again[DNS_HOST_SIZE];
		const char *why;
		FUZZ_CHECK(dmarc_from_domain(d, strlen(d), again, &why) == DMARC_FROM_OK && strcmp(again, d) == 0);
	}
}

/* Every TXT question: NXDOMAIN; every CNAME question: NXDOMAIN. DMARC applies nowhere. */
static void fuzz_msg(const struct dmarc_from *f, enum dmarc_from_error e)
{
	const char *dkim[] = { "example.com" };
	struct dmarc_msg_input in = {
		.from = f,
		.from_error = e,
		.spf_pass = true,
		.spf_domain = "example.com",
		.dkim_pass_domains = dkim,
		.dkim_pass_count = 1,
	};
	struct dmarc_msg *m = dmarc_msg_new(&in);
	if (m == NULL)
		return;
	struct auth_query q;
	struct dns_result res;
	unsigned asked = 0;
	enum auth_step s = dmarc_msg_step(m, NULL, &q);
	while (s == AUTH_STEP_QUERY) {
		FUZZ_CHECK(++asked <= DMARC_MSG_QUERIES_MAX);
		memset(&res, 0, sizeof(res));
		res.status = DNS_STATUS_NXDOMAIN;
		res.rrtype = q.rrtype;
		res.name = res.canonname = q.name;
		res.why = "";
		s = dmarc_msg_step(m, &res, &q);
	}
	const struct dmarc_msg_outcome *o = dmarc_msg_outcome(m);
	FUZZ_CHECK(o->queries == asked && o->reason != NULL);
	FUZZ_CHECK(o->count <= DMARC_FROM_DOMAINS_MAX);
	if (e != DMARC_FROM_OK)
		FUZZ_CHECK(o->result == DMARC_RESULT_PERMERROR && asked == 0);
	else
		FUZZ_CHECK(o->result == (f->truncated ? DMARC_RESULT_PERMERROR : DMARC_RESULT_NONE));
	dmarc_msg_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-size heap copy, so that ASan sees any read past the end */
	char *s = malloc(size > 0 ? size : 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);

	struct dmarc_from r;
	const char *err = NULL;
	enum dmarc_from_error e = dmarc_from_parse(s, size, &r, &err);
	fuzz_check_from(&r, e, err, true);
	FUZZ_CHECK(e != DMARC_FROM_NONE || r.fields == 0);
	fuzz_msg(&r, e);

	memset(&r, 0, sizeof(r));
	err = NULL;
	e = dmarc_from_value_parse(s, size, &r, &err);
	FUZZ_CHECK(e == DMARC_FROM_OK || e == DMARC_FROM_SYNTAX);
	fuzz_check_from(&r, e, err, false);

	char out[DNS_HOST_SIZE], again[DNS_HOST_SIZE];
	if (dmarc_from_domain(s, size, out, &err) == DMARC_FROM_OK) {
		FUZZ_CHECK(dns_host_valid(out));
		FUZZ_CHECK(dmarc_from_domain(out, strlen(out), again, &err) == DMARC_FROM_OK && strcmp(out, again) == 0);
	} else {
		FUZZ_CHECK(err != NULL);
	}
	free(s);
	return 0;
}
