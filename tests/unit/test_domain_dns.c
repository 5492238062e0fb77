/* test_domain_dns.c — the records a domain needs (domain_dns_new) and their check over the fake zone:
 * everything right, each record missing or wrong in turn, failed lookups, a domain without keys,
 * the addresses found from the host name, the question budget, and hostile answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/dkim_key.h"
#include "domains/domain_dns.h"
#include "fake_dns.h"
#include "test_util.h"

#define DOM "example.org"
#define HOST "mx.example.net"
#define RP "bounces.example.org"
#define IP4 "192.0.2.1"
#define REV4 "1.2.0.192.in-addr.arpa"
#define NOW 1700000000 /* 2023-11-14 22:13:20 UTC */

static EVP_PKEY *key1, *key2; /* key2 is never published: a record of it is "another key" */
static char *key1_txt, *key2_txt;

static int group_setup(void **state)
{
	const char *err;
	if (dkim_key_generate(DKIM_KEY_ED25519, 0, &key1, &err) != DKIM_KEY_OK ||
	    dkim_key_generate(DKIM_KEY_ED25519, 0, &key2, &err) != DKIM_KEY_OK)
		return -1;
	key1_txt = dkim_key_record_format(key1, &err);
	key2_txt = dkim_key_record_format(key2, &err);
	return key1_txt != NULL && key2_txt != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
	EVP_PKEY_free(key1);
	EVP_PKEY_free(key2);
	free(key1_txt);
	free(key2_txt);
	return 0;
}

/* ---- building ---- */

struct setup {
	const char *domain, *hostname, *return_path;
	const char *ips[DOMAIN_DNS_IPS_MAX + 1];
	size_t nips;
	struct domain_dns_key keys[2];
	size_t nkeys;
};

static struct setup setup_default(void)
{
	struct setup s = {.domain = DOM, .hostname = HOST, .return_path = RP, .ips = {IP4}, .nips = 1};
	s.keys[0] = (struct domain_dns_key){.selector = "s1", .pkey = key1, .type = DKIM_KEY_ED25519, .bits = 256};
	s.nkeys = 1;
	return s;
}

static struct domain_dns *build(const struct setup *s)
{
	struct domain_dns_input in = {
		.domain = s->domain,
		.hostname = s->hostname,
		.return_path = s->return_path,
		.ips = s->ips,
		.nips = s->nips,
		.keys = s->keys,
		.nkeys = s->nkeys,
		.now = NOW,
	};
	return domain_dns_new(&in);
}

/* The first record of kind (and, when name is not NULL, of that name). */
static const struct domain_rec *find(const struct domain_dns *d, enum domain_rec_kind k, const char *name)
{
	for (size_t i = 0; i < domain_dns_count(d); i++) {
		const struct domain_rec *r = domain_dns_rec(d, i);
		if (r->kind == k && (name == NULL || strcmp(r->name, name) == 0))
			return r;
	}
	return NULL;
}

static void test_records(void **state)
{
	struct setup s = setup_default();
	s.ips[1] = "2001:DB8::1"; /* kept in its canonical spelling */
	s.nips = 2;
	struct domain_dns *d = build(&s);
	assert_non_null(d);
	static const enum domain_rec_kind order[] = {
		DOMAIN_REC_ADDRESS, DOMAIN_REC_ADDRESS, DOMAIN_REC_MX, DOMAIN_REC_SPF, DOMAIN_REC_DKIM,
		DOMAIN_REC_RETURN_MX, DOMAIN_REC_RETURN_SPF, DOMAIN_REC_DMARC, DOMAIN_REC_PTR, DOMAIN_REC_PTR,
		DOMAIN_REC_MTA_STS, DOMAIN_REC_MTA_STS_HOST, DOMAIN_REC_TLS_RPT,
	};
	assert_int_equal(domain_dns_count(d), sizeof(order) / sizeof(order[0]));
	for (size_t i = 0; i < domain_dns_count(d); i++) {
		const struct domain_rec *r = domain_dns_rec(d, i);
		assert_int_equal(r->kind, order[i]);
		assert_int_equal(r->status, DOMAIN_REC_NOT_STARTED);
		assert_non_null(r->comment);
		assert_non_null(r->value);
		assert_true(r->needed == (r->kind != DOMAIN_REC_MTA_STS && r->kind != DOMAIN_REC_MTA_STS_HOST &&
					  r->kind != DOMAIN_REC_TLS_RPT));
	}
	assert_null(domain_dns_rec(d, domain_dns_count(d)));

	const struct domain_rec *r = domain_dns_rec(d, 1);
	assert_string_equal(r->name, HOST);
	assert_string_equal(r->type, "AAAA");
	assert_string_equal(r->value, "2001:db8::1");
	r = find(d, DOMAIN_REC_MX, NULL);
	assert_string_equal(r->name, DOM);
	assert_string_equal(r->value, HOST);
	assert_int_equal(r->priority, 10);
	r = find(d, DOMAIN_REC_SPF, NULL);
	assert_string_equal(r->value, "v=spf1 ip4:192.0.2.1 ip6:2001:db8::1 -all");
	assert_string_equal(find(d, DOMAIN_REC_RETURN_SPF, NULL)->value, r->value);
	assert_string_equal(find(d, DOMAIN_REC_RETURN_SPF, NULL)->name, RP);
	assert_string_equal(find(d, DOMAIN_REC_RETURN_MX, NULL)->name, RP);
	r = find(d, DOMAIN_REC_DKIM, NULL);
	assert_string_equal(r->name, "s1._domainkey." DOM);
	assert_string_equal(r->value, key1_txt);
	assert_string_equal(find(d, DOMAIN_REC_DMARC, NULL)->value,
			    "v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@" DOM);
	assert_string_equal(find(d, DOMAIN_REC_DMARC, NULL)->name, "_dmarc." DOM);
	r = find(d, DOMAIN_REC_PTR, NULL);
	assert_string_equal(r->name, REV4);
	assert_string_equal(r->value, HOST);
	assert_string_equal(domain_dns_rec(d, 9)->name,
			    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
	assert_string_equal(find(d, DOMAIN_REC_MTA_STS, NULL)->value, "v=STSv1; id=20231114221320");
	assert_string_equal(find(d, DOMAIN_REC_MTA_STS, NULL)->name, "_mta-sts." DOM);
	assert_string_equal(find(d, DOMAIN_REC_TLS_RPT, NULL)->value, "v=TLSRPTv1; rua=mailto:tls-reports@" DOM);
	assert_string_equal(find(d, DOMAIN_REC_TLS_RPT, NULL)->name, "_smtp._tls." DOM);
	domain_dns_free(d);

	/* without addresses: SPF names the host, no ADDRESS or PTR records (yet) */
	s.nips = 0;
	d = build(&s);
	assert_non_null(d);
	assert_string_equal(find(d, DOMAIN_REC_SPF, NULL)->value, "v=spf1 a:" HOST " -all");
	assert_null(find(d, DOMAIN_REC_ADDRESS, NULL));
	assert_null(find(d, DOMAIN_REC_PTR, NULL));
	domain_dns_free(d);
}

static void test_records_refused(void **state)
{
	struct setup s = setup_default();
	s.ips[0] = "192.0.2.300";
	assert_null(build(&s));
	s = setup_default();
	s.nips = DOMAIN_DNS_IPS_MAX + 1;
	for (size_t i = 0; i < s.nips; i++)
		s.ips[i] = IP4;
	assert_null(build(&s));
	s = setup_default();
	s.hostname = NULL;
	assert_null(build(&s));
}

static void test_strings(void **state)
{
	assert_string_equal(domain_rec_kind_str(DOMAIN_REC_MX), "mx");
	assert_string_equal(domain_rec_kind_str(DOMAIN_REC_RETURN_MX), "return_mx");
	assert_string_equal(domain_rec_kind_str(DOMAIN_REC_TLS_RPT), "tls_rpt");
	assert_string_equal(domain_rec_status_str(DOMAIN_REC_NOT_STARTED), "not_started");
	assert_string_equal(domain_rec_status_str(DOMAIN_REC_VERIFIED), "verified");
	assert_string_equal(domain_rec_status_str(DOMAIN_REC_FAILED), "failed");
	assert_string_equal(domain_rec_status_str(DOMAIN_REC_TEMPFAIL), "temporary_failure");
}

/* ---- checking ---- */

/* What a right zone holds; the names in skip (NULL-terminated "name TYPE") are left out. */
static struct fake_dns *zone(const char *const *skip)
{
	static const struct {
		const char *name;
		int type;
		const char *data;
	} all[] = {
		{HOST, DNS_RRTYPE_A, IP4},
		{DOM, DNS_RRTYPE_MX, "10 " HOST},
		{DOM, DNS_RRTYPE_TXT, "v=spf1 ip4:" IP4 " -all"},
		{"s1._domainkey." DOM, DNS_RRTYPE_TXT, NULL}, /* key1's record */
		{RP, DNS_RRTYPE_MX, "10 " HOST},
		{RP, DNS_RRTYPE_TXT, "v=spf1 ip4:" IP4 " -all"},
		{"_dmarc." DOM, DNS_RRTYPE_TXT, "v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@" DOM},
		{REV4, DNS_RRTYPE_PTR, HOST},
		{"_mta-sts." DOM, DNS_RRTYPE_TXT, "v=STSv1; id=1"},
		{"mta-sts." DOM, DNS_RRTYPE_A, IP4},
		{"_smtp._tls." DOM, DNS_RRTYPE_TXT, "v=TLSRPTv1; rua=mailto:tls@" DOM},
	};
	struct fake_dns *z = fake_dns_new();
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		char key[300];
		snprintf(key, sizeof(key), "%s %s", all[i].name, dns_rrtype_str(all[i].type));
		bool skipped = false;
		for (size_t j = 0; skip != NULL && skip[j] != NULL; j++)
			skipped = skipped || strcmp(skip[j], key) == 0;
		if (!skipped)
			fake_dns_add(z, all[i].name, all[i].type, all[i].data != NULL ? all[i].data : key1_txt);
	}
	return z;
}

#define SKIP(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* Runs the check of d over z to its end. */
static void check(struct domain_dns *d, struct fake_dns *z)
{
	fake_dns_log_clear(z);
	unsigned asked = fake_dns_run(z, domain_dns_check_step, d);
	assert_true(asked <= DOMAIN_DNS_QUESTIONS_MAX);
	struct auth_query q;
	assert_int_equal(domain_dns_check_step(d, NULL, &q), AUTH_STEP_DONE); /* over stays over */
	/* each record judged, with its sentence */
	for (size_t i = 0; i < domain_dns_count(d); i++) {
		const struct domain_rec *r = domain_dns_rec(d, i);
		if (r->status == DOMAIN_REC_VERIFIED) {
			assert_non_null(r->found);
		} else {
			assert_non_null(r->problem);
			for (const char *p = r->problem; *p != '\0'; p++)
				assert_true((unsigned char)*p >= 0x20);
		}
	}
}

static void test_check_all_right(void **state)
{
	struct fake_dns *z = zone(NULL);
	struct setup s = setup_default();
	struct domain_dns *d = build(&s);
	check(d, z);
	for (size_t i = 0; i < domain_dns_count(d); i++) {
		const struct domain_rec *r = domain_dns_rec(d, i);
		if (r->status != DOMAIN_REC_VERIFIED)
			fail_msg("%s %s: %s", domain_rec_kind_str(r->kind), r->name, r->problem);
	}
	assert_int_equal(domain_dns_needed_bad(d), 0);
	assert_int_equal(domain_dns_recommended_missing(d), 0);
	assert_true(domain_dns_kind_verified(d, DOMAIN_REC_DKIM));
	assert_true(domain_dns_kind_verified(d, DOMAIN_REC_RETURN_SPF));
	assert_string_equal(find(d, DOMAIN_REC_MX, NULL)->found, "MX of " DOM " points at " HOST);
	assert_string_equal(find(d, DOMAIN_REC_SPF, NULL)->found, "SPF of " DOM " authorizes " IP4 " (0 of 10 lookups)");
	assert_string_equal(find(d, DOMAIN_REC_RETURN_SPF, NULL)->found,
			    "SPF of " RP " authorizes " IP4 " (0 of 10 lookups)");
	assert_string_equal(find(d, DOMAIN_REC_PTR, NULL)->found, "PTR of " IP4 " names " HOST ", which resolves back to it");
	assert_string_equal(find(d, DOMAIN_REC_DMARC, NULL)->found,
			    "DMARC of " DOM ": p=quarantine (record at _dmarc." DOM ")");
	assert_null(find(d, DOMAIN_REC_DMARC, NULL)->note);
	/* the questions, in the order of the records */
	static const char *const want[] = {
		HOST " A", DOM " MX", DOM " TXT", "s1._domainkey." DOM " TXT", RP " MX", RP " TXT", "_dmarc." DOM " TXT", "_dmarc.org TXT",
		REV4 " PTR", "_mta-sts." DOM " TXT", "mta-sts." DOM " A", "_smtp._tls." DOM " TXT",
	};
	assert_int_equal(fake_dns_log_count(z), sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < fake_dns_log_count(z); i++)
		assert_string_equal(fake_dns_log(z, i), want[i]);
	domain_dns_free(d);
	fake_dns_free(z);
}

struct bad_case {
	const char *const *skip;
	const char *name, *data; /* added to the zone */
	int type;
	enum domain_rec_kind kind;
	enum domain_rec_status status;
	const char *problem; /* its start */
};

static void test_check_each_wrong(void **state)
{
	const struct bad_case cases[] = {
		{SKIP(DOM " MX"), NULL, NULL, 0, DOMAIN_REC_MX, DOMAIN_REC_FAILED, "MX of " DOM ": missing"},
		{SKIP(DOM " MX"), DOM, "10 other.example", DNS_RRTYPE_MX, DOMAIN_REC_MX, DOMAIN_REC_FAILED,
		 "MX of " DOM " does not point at " HOST " (it names 10 other.example)"},
		{SKIP(DOM " MX"), DOM, "0 .", DNS_RRTYPE_MX, DOMAIN_REC_MX, DOMAIN_REC_FAILED, "MX of " DOM " is a null MX"},
		{SKIP(DOM " TXT"), NULL, NULL, 0, DOMAIN_REC_SPF, DOMAIN_REC_FAILED, "SPF of " DOM ": missing"},
		{SKIP(DOM " TXT"), DOM, "v=spf1 ip4:192.0.2.99 -all", DNS_RRTYPE_TXT, DOMAIN_REC_SPF, DOMAIN_REC_FAILED,
		 "SPF of " DOM " does not authorize " IP4 " (result fail: "},
		{SKIP(DOM " TXT"), DOM, "v=spf1 ip4:" IP4 " bogus:x -all", DNS_RRTYPE_TXT, DOMAIN_REC_SPF,
		 DOMAIN_REC_FAILED, "SPF of " DOM " is broken: "},
		{NULL, DOM, "v=spf1 -all", DNS_RRTYPE_TXT, DOMAIN_REC_SPF, DOMAIN_REC_FAILED, "SPF of " DOM " is broken: "},
		{SKIP("s1._domainkey." DOM " TXT"), NULL, NULL, 0, DOMAIN_REC_DKIM, DOMAIN_REC_FAILED,
		 "DKIM s1._domainkey." DOM ": missing"},
		{SKIP("s1._domainkey." DOM " TXT"), "s1._domainkey." DOM, NULL /* key2 */, DNS_RRTYPE_TXT,
		 DOMAIN_REC_DKIM, DOMAIN_REC_FAILED, "DKIM s1._domainkey." DOM ": does not match our private key"},
		{SKIP("s1._domainkey." DOM " TXT"), "s1._domainkey." DOM, "v=DKIM1; k=ed25519; p=!!", DNS_RRTYPE_TXT,
		 DOMAIN_REC_DKIM, DOMAIN_REC_FAILED, "DKIM s1._domainkey." DOM ": malformed"},
		{SKIP(RP " MX"), NULL, NULL, 0, DOMAIN_REC_RETURN_MX, DOMAIN_REC_FAILED, "MX of " RP ": missing"},
		{SKIP(RP " MX"), RP, "10 " DOM, DNS_RRTYPE_MX, DOMAIN_REC_RETURN_MX, DOMAIN_REC_FAILED,
		 "MX of " RP " does not point at " HOST},
		{SKIP(RP " TXT"), NULL, NULL, 0, DOMAIN_REC_RETURN_SPF, DOMAIN_REC_FAILED, "SPF of " RP ": missing"},
		{SKIP(RP " TXT"), RP, "v=spf1 ~all", DNS_RRTYPE_TXT, DOMAIN_REC_RETURN_SPF, DOMAIN_REC_FAILED,
		 "SPF of " RP " does not authorize " IP4 " (result softfail: "},
		{SKIP("_dmarc." DOM " TXT"), NULL, NULL, 0, DOMAIN_REC_DMARC, DOMAIN_REC_FAILED, "DMARC of " DOM ": missing"},
		{NULL, "_dmarc." DOM, "v=DMARC1; p=none", DNS_RRTYPE_TXT, DOMAIN_REC_DMARC, DOMAIN_REC_FAILED,
		 "DMARC of " DOM ": several records at _dmarc." DOM},
		{SKIP("_dmarc." DOM " TXT"), "_dmarc." DOM, "v=DMARC1; p=bogus", DNS_RRTYPE_TXT, DOMAIN_REC_DMARC,
		 DOMAIN_REC_FAILED, "DMARC record at _dmarc." DOM " is malformed: "},
		{SKIP(REV4 " PTR"), NULL, NULL, 0, DOMAIN_REC_PTR, DOMAIN_REC_FAILED, "PTR of " IP4 ": missing"},
		{SKIP(REV4 " PTR"), REV4, "host.isp.example", DNS_RRTYPE_PTR, DOMAIN_REC_PTR, DOMAIN_REC_FAILED,
		 "PTR of " IP4 ": does not name the server (it names host.isp.example)"},
		/* the way back: one item (the address), though the PTR depends on it */
		{SKIP(HOST " A"), NULL, NULL, 0, DOMAIN_REC_ADDRESS, DOMAIN_REC_FAILED,
		 "PTR of " IP4 " names " HOST ", but " HOST " does not resolve to " IP4},
		{SKIP(HOST " A", REV4 " PTR"), NULL, NULL, 0, DOMAIN_REC_ADDRESS, DOMAIN_REC_FAILED,
		 HOST " does not resolve to " IP4},
		{SKIP(HOST " A"), HOST, "198.51.100.7", DNS_RRTYPE_A, DOMAIN_REC_ADDRESS, DOMAIN_REC_FAILED,
		 "PTR of " IP4 " names " HOST ", but " HOST " does not resolve to " IP4},
		/* failed lookups */
		{SKIP(DOM " TXT"), "timeout", DOM, 0, DOMAIN_REC_SPF, DOMAIN_REC_TEMPFAIL, "SPF of " DOM ": the lookups failed"},
		{SKIP(DOM " MX"), "timeout", DOM, 0, DOMAIN_REC_MX, DOMAIN_REC_TEMPFAIL, "MX of " DOM ": the lookup failed"},
		{SKIP("s1._domainkey." DOM " TXT"), "timeout", "s1._domainkey." DOM, 0, DOMAIN_REC_DKIM,
		 DOMAIN_REC_TEMPFAIL, "DKIM s1._domainkey." DOM ": the lookup failed"},
		{SKIP("_dmarc." DOM " TXT"), "timeout", "_dmarc." DOM, 0, DOMAIN_REC_DMARC, DOMAIN_REC_TEMPFAIL,
		 "DMARC of " DOM ": "},
		{SKIP(REV4 " PTR"), "timeout", REV4, 0, DOMAIN_REC_PTR, DOMAIN_REC_TEMPFAIL, "PTR of " IP4 ": the lookup failed"},
		{SKIP(HOST " A", REV4 " PTR"), "timeout", HOST, 0, DOMAIN_REC_ADDRESS, DOMAIN_REC_TEMPFAIL,
		 "address of " HOST ": the lookup failed"},
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		const struct bad_case *k = &cases[c];
		struct fake_dns *z = zone(k->skip);
		if (k->name != NULL && strcmp(k->name, "timeout") == 0)
			fake_dns_timeout(z, k->data);
		else if (k->name != NULL)
			fake_dns_add(z, k->name, k->type, k->data != NULL ? k->data : key2_txt);
		struct setup s = setup_default();
		struct domain_dns *d = build(&s);
		check(d, z);
		const struct domain_rec *bad = find(d, k->kind, NULL);
		if (bad->status != k->status || bad->problem == NULL ||
		    strncmp(bad->problem, k->problem, strlen(k->problem)) != 0)
			fail_msg("case %zu: %s is %s \"%s\", want %s \"%s...\"", c, domain_rec_kind_str(k->kind),
				 domain_rec_status_str(bad->status), bad->problem != NULL ? bad->problem : "",
				 domain_rec_status_str(k->status), k->problem);
		/* the others are right, but a PTR missing its way back, or itself missing */
		for (size_t i = 0; i < domain_dns_count(d); i++) {
			const struct domain_rec *r = domain_dns_rec(d, i);
			bool ptr_too = r->kind == DOMAIN_REC_PTR && k->skip != NULL && k->skip[1] != NULL;
			if (r != bad && !ptr_too && r->status != DOMAIN_REC_VERIFIED)
				fail_msg("case %zu: %s %s is %s: %s", c, domain_rec_kind_str(r->kind), r->name,
					 domain_rec_status_str(r->status), r->problem);
		}
		assert_int_equal(domain_dns_needed_bad(d), k->skip != NULL && k->skip[1] != NULL ? 2 : 1);
		assert_false(domain_dns_kind_verified(d, k->kind));
		domain_dns_free(d);
		fake_dns_free(z);
	}
}

/* The _mta-sts TXT record must carry the id of the policy served; the policy host must be ours. */
static void test_check_mta_sts_id(void **state)
{
	struct setup s = setup_default();
	struct domain_dns_input in = {
		.domain = s.domain, .hostname = s.hostname, .return_path = s.return_path, .ips = s.ips,
		.nips = s.nips, .keys = s.keys, .nkeys = s.nkeys, .now = NOW, .sts_id = "abc123",
	};
	struct domain_dns *d = domain_dns_new(&in);
	assert_string_equal(find(d, DOMAIN_REC_MTA_STS, NULL)->value, "v=STSv1; id=abc123");
	const struct domain_rec *h = find(d, DOMAIN_REC_MTA_STS_HOST, NULL);
	assert_string_equal(h->name, "mta-sts." DOM);
	assert_string_equal(h->type, "CNAME");
	assert_string_equal(h->value, HOST ".");
	/* the zone's id=1 is not ours */
	struct fake_dns *z = zone(SKIP("mta-sts." DOM " A"));
	fake_dns_add(z, "mta-sts." DOM, DNS_RRTYPE_A, "192.0.2.99");
	check(d, z);
	assert_string_equal(find(d, DOMAIN_REC_MTA_STS, NULL)->problem,
			    "MTA-STS at _mta-sts." DOM ": id=1, but the policy served has id=abc123 (publish the new id)");
	assert_string_equal(find(d, DOMAIN_REC_MTA_STS_HOST, NULL)->problem,
			    "MTA-STS policy host mta-sts." DOM ": resolves, but not to this server");
	domain_dns_free(d);
	fake_dns_free(z);
	/* ours, once; two v=STSv1 records are no policy at all (RFC 8461 §3.1) */
	d = domain_dns_new(&in);
	z = zone(SKIP("_mta-sts." DOM " TXT"));
	fake_dns_add(z, "_mta-sts." DOM, DNS_RRTYPE_TXT, "v=STSv1; id=abc123");
	check(d, z);
	assert_string_equal(find(d, DOMAIN_REC_MTA_STS, NULL)->found, "MTA-STS at _mta-sts." DOM ", id=abc123 (the policy served)");
	assert_int_equal(find(d, DOMAIN_REC_MTA_STS_HOST, NULL)->status, DOMAIN_REC_VERIFIED);
	domain_dns_free(d);
	fake_dns_add(z, "_mta-sts." DOM, DNS_RRTYPE_TXT, "v=STSv1; id=other");
	d = domain_dns_new(&in);
	check(d, z);
	assert_int_equal(find(d, DOMAIN_REC_MTA_STS, NULL)->status, DOMAIN_REC_FAILED);
	domain_dns_free(d);
	fake_dns_free(z);
}

static void test_check_recommended_and_notes(void **state)
{
	struct fake_dns *z = zone(SKIP("_mta-sts." DOM " TXT", "_smtp._tls." DOM " TXT", "_dmarc." DOM " TXT"));
	fake_dns_add(z, "_smtp._tls." DOM, DNS_RRTYPE_TXT, "v=TLSRPTv2; something else");
	fake_dns_add(z, "_dmarc." DOM, DNS_RRTYPE_TXT, "v=DMARC1; p=none");
	struct setup s = setup_default();
	struct domain_dns *d = build(&s);
	check(d, z);
	assert_int_equal(domain_dns_needed_bad(d), 0);
	assert_int_equal(domain_dns_recommended_missing(d), 2);
	assert_string_equal(find(d, DOMAIN_REC_MTA_STS, NULL)->problem, "MTA-STS at _mta-sts." DOM ": missing");
	assert_string_equal(find(d, DOMAIN_REC_TLS_RPT, NULL)->problem, "TLS-RPT at _smtp._tls." DOM ": missing");
	const struct domain_rec *r = find(d, DOMAIN_REC_DMARC, NULL);
	assert_int_equal(r->status, DOMAIN_REC_VERIFIED);
	assert_non_null(r->note);
	assert_non_null(strstr(r->note, "p=none only monitors"));
	assert_false(domain_dns_kind_verified(d, DOMAIN_REC_MTA_STS));
	domain_dns_free(d);
	fake_dns_free(z);
}

/* ---- TLSA of our MX host (RFC 7672) ---- */

static const unsigned char cur_key[32] = {0x11, 0x22, 0x33, [31] = 0x44};
static const unsigned char next_key[32] = {0x55, 0x66, [31] = 0x77};

/* Runs the check answering TLSA questions with tlsa, the rest from z. */
static void check_with_tlsa(struct domain_dns *d, struct fake_dns *z, const struct dns_result *tlsa)
{
	struct auth_query q;
	const struct dns_result *a = NULL;
	for (int i = 0; i < 1000; i++) {
		if (domain_dns_check_step(d, a, &q) == AUTH_STEP_DONE)
			return;
		a = q.rrtype == DNS_RRTYPE_TLSA ? tlsa : fake_dns_answer(z, &q);
		if (q.rrtype == DNS_RRTYPE_TLSA)
			assert_string_equal(q.name, "_25._tcp." HOST);
	}
	fail_msg("the check did not end");
}

static void test_records_tlsa(void **state)
{
	struct setup s = setup_default();
	struct domain_dns_input in = {
		.domain = s.domain, .hostname = s.hostname, .return_path = s.return_path, .ips = s.ips,
		.nips = s.nips, .keys = s.keys, .nkeys = s.nkeys, .now = NOW, .tlsa_current = cur_key,
		.tlsa_next = next_key,
	};
	struct domain_dns *d = domain_dns_new(&in);
	const struct domain_rec *r = find(d, DOMAIN_REC_TLSA, NULL);
	assert_non_null(r);
	assert_string_equal(r->name, "_25._tcp." HOST);
	assert_string_equal(r->type, "TLSA");
	assert_string_equal(r->value, "3 1 1 112233000000000000000000000000000000000000000000000000000000"
				      "0044");
	assert_false(r->needed);
	r = find(d, DOMAIN_REC_TLSA_NEXT, NULL);
	assert_string_equal(r->value, "3 1 1 556600000000000000000000000000000000000000000000000000000000"
				      "0077");
	domain_dns_free(d);
	/* without keys given: no TLSA records (the API's /domains) */
	d = build(&s);
	assert_null(find(d, DOMAIN_REC_TLSA, NULL));
	assert_null(find(d, DOMAIN_REC_TLSA_NEXT, NULL));
	domain_dns_free(d);
}

static void test_check_tlsa(void **state)
{
	static const unsigned char other[32] = {0xab};
	static const unsigned char shorter[31] = {0x11, 0x22, 0x33};
	struct tcase {
		const char *what;
		enum dns_status status;
		bool secure, validating;
		struct dns_tlsa recs[3];
		size_t n;
		enum domain_rec_status cur, next;
		bool cur_needed;
		const char *cur_text; /* in found or problem */
		bool note;
	} cases[] = {
		{"match", DNS_STATUS_OK, true, true, {{3, 1, 1, cur_key, 32}}, 1, DOMAIN_REC_VERIFIED, DOMAIN_REC_FAILED,
		 false, "3 1 1 matches the key the SMTP listener serves", false},
		{"both", DNS_STATUS_OK, true, true, {{3, 1, 1, next_key, 32}, {3, 1, 1, cur_key, 32}}, 2,
		 DOMAIN_REC_VERIFIED, DOMAIN_REC_VERIFIED, false, "matches the key", false},
		{"mismatch", DNS_STATUS_OK, true, true, {{3, 1, 1, other, 32}}, 1, DOMAIN_REC_FAILED, DOMAIN_REC_FAILED,
		 true, "1 record (3 1 1 ab00000000000000...), none matching the key the SMTP listener serves, so DANE", false},
		{"only the next key", DNS_STATUS_OK, true, true, {{3, 1, 1, next_key, 32}}, 1, DOMAIN_REC_FAILED,
		 DOMAIN_REC_VERIFIED, true, "none matching", false},
		/* the right prefix, one octet short: not ours */
		{"short", DNS_STATUS_OK, true, true, {{3, 1, 1, shorter, 31}}, 1, DOMAIN_REC_FAILED, DOMAIN_REC_FAILED, true,
		 "none matching", false},
		/* PKIX usages only: senders use none of it (RFC 7672 §3.1.3), so not needed */
		{"pkix only", DNS_STATUS_OK, true, true, {{1, 1, 1, cur_key, 32}, {0, 0, 1, other, 32}}, 2,
		 DOMAIN_REC_FAILED, DOMAIN_REC_FAILED, false, "(none usable for SMTP)", false},
		{"dane-ta", DNS_STATUS_OK, true, true, {{2, 0, 1, other, 32}}, 1, DOMAIN_REC_VERIFIED, DOMAIN_REC_FAILED,
		 false, "does not compare", true},
		{"3 1 2", DNS_STATUS_OK, true, true, {{3, 1, 2, other, 32}}, 1, DOMAIN_REC_VERIFIED, DOMAIN_REC_FAILED,
		 false, "not checked", true},
		{"none, secure", DNS_STATUS_NODATA, true, true, {{0}}, 0, DOMAIN_REC_FAILED, DOMAIN_REC_FAILED, false,
		 "TLSA at _25._tcp." HOST ": missing", false},
		{"nxdomain, insecure", DNS_STATUS_NXDOMAIN, false, true, {{0}}, 0, DOMAIN_REC_FAILED, DOMAIN_REC_FAILED,
		 false, ": missing", true},
		{"match, unsigned", DNS_STATUS_OK, false, true, {{3, 1, 1, cur_key, 32}}, 1, DOMAIN_REC_VERIFIED,
		 DOMAIN_REC_FAILED, false, "matches", true},
		{"match, not validating", DNS_STATUS_OK, false, false, {{3, 1, 1, cur_key, 32}}, 1, DOMAIN_REC_VERIFIED,
		 DOMAIN_REC_FAILED, false, "matches", true},
		{"bogus", DNS_STATUS_BOGUS, false, true, {{0}}, 0, DOMAIN_REC_FAILED, DOMAIN_REC_FAILED, true,
		 "failed DNSSEC validation (signature expired), so DANE senders defer", false},
		{"servfail", DNS_STATUS_TEMPFAIL, false, true, {{0}}, 0, DOMAIN_REC_TEMPFAIL, DOMAIN_REC_TEMPFAIL, false,
		 "the lookup failed (signature expired)", false},
		/* OK with no records (a hostile answer that says OK and carries none) */
		{"ok, empty", DNS_STATUS_OK, true, true, {{0}}, 0, DOMAIN_REC_FAILED, DOMAIN_REC_FAILED, false, ": missing",
		 false},
	};
	struct fake_dns *z = zone(NULL);
	struct setup s = setup_default();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tcase *c = &cases[i];
		struct domain_dns_input in = {
			.domain = s.domain, .hostname = s.hostname, .return_path = s.return_path, .ips = s.ips,
			.nips = s.nips, .keys = s.keys, .nkeys = s.nkeys, .now = NOW, .tlsa_current = cur_key,
			.tlsa_next = next_key, .dnssec_validating = c->validating,
		};
		struct domain_dns *d = domain_dns_new(&in);
		struct dns_result a = {.status = c->status, .secure = c->secure, .rrtype = DNS_RRTYPE_TLSA,
				       .name = "_25._tcp." HOST, .why = "signature expired", .count = c->n,
				       .tlsas = c->n > 0 ? c->recs : NULL};
		check_with_tlsa(d, z, &a);
		const struct domain_rec *cur = find(d, DOMAIN_REC_TLSA, NULL), *next = find(d, DOMAIN_REC_TLSA_NEXT, NULL);
		print_message("case %s: %s / %s\n", c->what, cur->found != NULL ? cur->found : cur->problem,
			      cur->note != NULL ? cur->note : "-");
		assert_int_equal(cur->status, c->cur);
		assert_int_equal(next->status, c->next);
		assert_int_equal(cur->needed, c->cur_needed);
		assert_false(next->needed);
		/* the rest of the zone is right: a wrong TLSA is the only needed item wrong */
		assert_int_equal(domain_dns_needed_bad(d), c->cur_needed && c->cur != DOMAIN_REC_VERIFIED ? 1 : 0);
		const char *text = cur->status == DOMAIN_REC_VERIFIED ? cur->found : cur->problem;
		assert_non_null(strstr(text, c->cur_text));
		assert_int_equal(cur->note != NULL, c->note);
		assert_int_equal(cur->dnssec_bogus, c->status == DNS_STATUS_BOGUS);
		if (c->note && !c->secure)
			assert_non_null(strstr(cur->note, c->validating ? "the zone is not signed" : "no [dns] trust_anchor"));
		domain_dns_free(d);
	}
	fake_dns_free(z);
}

static void test_check_no_keys(void **state)
{
	struct fake_dns *z = zone(NULL);
	struct setup s = setup_default();
	s.nkeys = 0;
	struct domain_dns *d = build(&s);
	const struct domain_rec *r = find(d, DOMAIN_REC_DKIM, NULL);
	assert_non_null(r);
	assert_int_equal(r->status, DOMAIN_REC_FAILED); /* from the start */
	assert_null(r->value);
	assert_string_equal(r->name, "_domainkey." DOM);
	assert_non_null(strstr(r->problem, "mailwerk dkim keygen --domain " DOM " --selector s1"));
	check(d, z);
	assert_int_equal(r->status, DOMAIN_REC_FAILED);
	assert_int_equal(domain_dns_needed_bad(d), 1);
	assert_false(domain_dns_kind_verified(d, DOMAIN_REC_DKIM));
	for (size_t i = 0; i < fake_dns_log_count(z); i++)
		assert_null(strstr(fake_dns_log(z, i), "_domainkey"));
	domain_dns_free(d);
	fake_dns_free(z);
}

/* Two keys and two addresses: a DKIM record each; one SPF record for both addresses. */
static void test_check_two_of_each(void **state)
{
	struct fake_dns *z = zone(SKIP(DOM " TXT"));
	fake_dns_add(z, DOM, DNS_RRTYPE_TXT, "v=spf1 ip4:" IP4 " -all");
	fake_dns_add(z, "s2._domainkey." DOM, DNS_RRTYPE_TXT, key2_txt);
	fake_dns_add(z, HOST, DNS_RRTYPE_AAAA, "2001:db8::1");
	fake_dns_add(z, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", DNS_RRTYPE_PTR, HOST);
	struct setup s = setup_default();
	s.keys[1] = (struct domain_dns_key){.selector = "s2", .pkey = key2, .type = DKIM_KEY_ED25519, .bits = 256};
	s.nkeys = 2;
	s.ips[1] = "2001:db8::1";
	s.nips = 2;
	struct domain_dns *d = build(&s);
	check(d, z);
	assert_true(domain_dns_kind_verified(d, DOMAIN_REC_DKIM));
	assert_true(domain_dns_kind_verified(d, DOMAIN_REC_ADDRESS));
	assert_true(domain_dns_kind_verified(d, DOMAIN_REC_PTR));
	/* the IPv6 address is not in the domain's SPF record (the return path's has the IPv4 one only too) */
	const struct domain_rec *r = find(d, DOMAIN_REC_SPF, NULL);
	assert_int_equal(r->status, DOMAIN_REC_FAILED);
	assert_non_null(strstr(r->problem, "does not authorize 2001:db8::1"));
	assert_int_equal(domain_dns_needed_bad(d), 2);
	domain_dns_free(d);
	fake_dns_free(z);

	/* both authorized: one verified SPF record naming both */
	z = zone(SKIP(DOM " TXT"));
	fake_dns_add(z, DOM, DNS_RRTYPE_TXT, "v=spf1 ip4:" IP4 " ip6:2001:db8::/32 -all");
	fake_dns_add(z, HOST, DNS_RRTYPE_AAAA, "2001:db8::1");
	d = build(&s);
	check(d, z);
	r = find(d, DOMAIN_REC_SPF, NULL);
	assert_int_equal(r->status, DOMAIN_REC_VERIFIED);
	assert_string_equal(r->found, "SPF of " DOM " authorizes " IP4 ", 2001:db8::1 (0 of 10 lookups)");
	domain_dns_free(d);
	fake_dns_free(z);
}

static void test_check_addresses_found(void **state)
{
	struct fake_dns *z = zone(SKIP(DOM " TXT", RP " TXT"));
	fake_dns_add(z, DOM, DNS_RRTYPE_TXT, "v=spf1 a:" HOST " -all");
	fake_dns_add(z, RP, DNS_RRTYPE_TXT, "v=spf1 a:" HOST " -all");
	struct setup s = setup_default();
	s.nips = 0;
	struct domain_dns *d = build(&s);
	size_t before = domain_dns_count(d);
	check(d, z);
	assert_int_equal(domain_dns_count(d), before + 2);
	const struct domain_rec *a = domain_dns_rec(d, 0);
	assert_int_equal(a->kind, DOMAIN_REC_ADDRESS);
	assert_int_equal(a->status, DOMAIN_REC_VERIFIED);
	assert_string_equal(a->value, IP4);
	const struct domain_rec *p = find(d, DOMAIN_REC_PTR, NULL);
	assert_non_null(p);
	assert_string_equal(p->name, REV4);
	assert_int_equal(p->status, DOMAIN_REC_VERIFIED);
	/* in the order of domain_dns_new: after DMARC, before MTA-STS */
	assert_int_equal(domain_dns_rec(d, before - 2)->kind, DOMAIN_REC_PTR);
	assert_int_equal(domain_dns_needed_bad(d), 0);
	assert_string_equal(fake_dns_log(z, 0), HOST " A");
	assert_string_equal(fake_dns_log(z, 1), HOST " AAAA");
	assert_string_equal(find(d, DOMAIN_REC_SPF, NULL)->found, "SPF of " DOM " authorizes " IP4 " (1 of 10 lookups)");
	domain_dns_free(d);
	fake_dns_free(z);

	/* none: one ADDRESS record says so; SPF cannot be judged */
	z = zone(SKIP(HOST " A"));
	d = build(&s);
	check(d, z);
	a = domain_dns_rec(d, 0);
	assert_int_equal(a->kind, DOMAIN_REC_ADDRESS);
	assert_int_equal(a->status, DOMAIN_REC_FAILED);
	assert_null(a->value);
	assert_string_equal(a->problem, "address of " HOST ": missing (so nobody can reach the server)");
	assert_null(find(d, DOMAIN_REC_PTR, NULL));
	assert_int_equal(find(d, DOMAIN_REC_SPF, NULL)->status, DOMAIN_REC_NOT_STARTED);
	assert_non_null(find(d, DOMAIN_REC_SPF, NULL)->problem);
	assert_int_equal(domain_dns_needed_bad(d), 3); /* the address, SPF, the return path's SPF */
	domain_dns_free(d);
	fake_dns_free(z);

	/* many: at most DOMAIN_DNS_IPS_MAX, duplicates once */
	z = zone(NULL);
	for (int i = 0; i < 40; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "198.51.100.%d", i % 20);
		fake_dns_add(z, HOST, DNS_RRTYPE_A, ip);
	}
	d = build(&s);
	check(d, z);
	size_t naddr = 0;
	for (size_t i = 0; i < domain_dns_count(d); i++)
		naddr += domain_dns_rec(d, i)->kind == DOMAIN_REC_ADDRESS;
	assert_int_equal(naddr, DOMAIN_DNS_IPS_MAX);
	domain_dns_free(d);
	fake_dns_free(z);
}

/* An SPF record whose every address costs 110 questions: the check stops at its budget, and what it
 * did not judge is a temporary failure. */
static void test_check_budget(void **state)
{
	struct fake_dns *z = zone(SKIP(DOM " TXT"));
	char spf[1024] = "v=spf1";
	for (int m = 0; m < 10; m++) {
		char name[64];
		snprintf(name, sizeof(name), "m%d.fan.example", m);
		snprintf(spf + strlen(spf), sizeof(spf) - strlen(spf), " mx:%s", name);
		for (int x = 0; x < 10; x++) {
			char mx[96], host[80];
			snprintf(host, sizeof(host), "x%d.%s", x, name);
			snprintf(mx, sizeof(mx), "%d %s", x, host);
			fake_dns_add(z, name, DNS_RRTYPE_MX, mx);
			fake_dns_add(z, host, DNS_RRTYPE_A, "203.0.113.9");
		}
	}
	strcat(spf, " +all");
	fake_dns_add(z, DOM, DNS_RRTYPE_TXT, spf);
	struct setup s = setup_default();
	s.nips = DOMAIN_DNS_IPS_MAX;
	for (size_t i = 0; i < s.nips; i++) {
		static char ips[DOMAIN_DNS_IPS_MAX][32];
		snprintf(ips[i], sizeof(ips[i]), "192.0.2.%zu", i + 1);
		s.ips[i] = ips[i];
	}
	struct domain_dns *d = build(&s);
	check(d, z);
	assert_int_equal(fake_dns_log_count(z), DOMAIN_DNS_QUESTIONS_MAX);
	const struct domain_rec *r = find(d, DOMAIN_REC_SPF, NULL);
	assert_int_equal(r->status, DOMAIN_REC_TEMPFAIL);
	assert_non_null(strstr(r->problem, "not checked (the check stopped after"));
	assert_int_equal(find(d, DOMAIN_REC_TLS_RPT, NULL)->status, DOMAIN_REC_TEMPFAIL);
	assert_true(domain_dns_needed_bad(d) > 0);
	domain_dns_free(d);
	fake_dns_free(z);
}

static void test_check_hostile(void **state)
{
	/* huge TXT records everywhere, many MX not ours, many PTR names */
	struct fake_dns *z = fake_dns_new();
	size_t big = 70000;
	char *junk = malloc(big);
	assert_non_null(junk);
	for (size_t i = 0; i < big; i++)
		junk[i] = (char)(i % 7 == 0 ? 0 : 'a' + i % 26);
	memcpy(junk, "v=spf1 ", 7);
	fake_dns_add_txt(z, DOM, junk, big);
	memcpy(junk, "v=DKIM1; p=", 11);
	fake_dns_add_txt(z, "s1._domainkey." DOM, junk, big);
	memcpy(junk, "v=DMARC1; p=reject; ", 20);
	fake_dns_add_txt(z, "_dmarc." DOM, junk, big);
	memcpy(junk, "v=STSv1", 7);
	fake_dns_add_txt(z, "_mta-sts." DOM, junk, big);
	for (int i = 0; i < 100; i++) {
		char mx[300];
		snprintf(mx, sizeof(mx), "%d mx%d.elsewhere.example", i, i);
		fake_dns_add(z, DOM, DNS_RRTYPE_MX, mx);
		fake_dns_add(z, RP, DNS_RRTYPE_MX, mx);
		fake_dns_add(z, REV4, DNS_RRTYPE_PTR, mx + 3);
	}
	struct setup s = setup_default();
	struct domain_dns *d = build(&s);
	check(d, z);
	assert_int_equal(find(d, DOMAIN_REC_MX, NULL)->status, DOMAIN_REC_FAILED);
	assert_int_equal(find(d, DOMAIN_REC_SPF, NULL)->status, DOMAIN_REC_FAILED);
	assert_int_equal(find(d, DOMAIN_REC_DKIM, NULL)->status, DOMAIN_REC_FAILED);
	assert_int_equal(find(d, DOMAIN_REC_PTR, NULL)->status, DOMAIN_REC_FAILED);
	domain_dns_free(d);
	fake_dns_free(z);
	free(junk);

	/* names at the 253-octet limit: the domain fits, the names made from it do not */
	char dom[254], host[254], rp[300];
	memset(dom, 'a', 253);
	dom[253] = '\0';
	for (int i = 63; i < 253; i += 64)
		dom[i] = '.';
	memcpy(host, dom, sizeof(host));
	host[0] = 'h';
	snprintf(rp, sizeof(rp), "bounces.%s", dom);
	z = fake_dns_new();
	fake_dns_add(z, dom, DNS_RRTYPE_MX, "10 x.example");
	fake_dns_add(z, host, DNS_RRTYPE_A, IP4);
	fake_dns_add(z, dom, DNS_RRTYPE_TXT, "v=spf1 ip4:" IP4 " -all");
	s = setup_default();
	s.domain = dom;
	s.hostname = host;
	s.return_path = rp;
	s.nips = 0;
	d = build(&s);
	assert_non_null(d);
	check(d, z);
	assert_int_equal(find(d, DOMAIN_REC_ADDRESS, NULL)->status, DOMAIN_REC_VERIFIED);
	assert_int_equal(find(d, DOMAIN_REC_SPF, NULL)->status, DOMAIN_REC_VERIFIED);
	const struct domain_rec *r = find(d, DOMAIN_REC_RETURN_MX, NULL);
	assert_int_equal(r->status, DOMAIN_REC_FAILED);
	assert_non_null(strstr(r->problem, "longer than the 253 octets"));
	assert_int_equal(find(d, DOMAIN_REC_DKIM, NULL)->status, DOMAIN_REC_FAILED);
	assert_int_equal(find(d, DOMAIN_REC_MTA_STS, NULL)->status, DOMAIN_REC_FAILED);
	assert_int_equal(find(d, DOMAIN_REC_DMARC, NULL)->status, DOMAIN_REC_FAILED);
	for (size_t i = 0; i < fake_dns_log_count(z); i++)
		assert_true(strlen(fake_dns_log(z, i)) < DNS_HOST_SIZE + 8);
	domain_dns_free(d);
	fake_dns_free(z);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_records),
		cmocka_unit_test(test_records_refused),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_check_all_right),
		cmocka_unit_test(test_check_each_wrong),
		cmocka_unit_test(test_check_recommended_and_notes),
		cmocka_unit_test(test_check_mta_sts_id),
		cmocka_unit_test(test_check_no_keys),
		cmocka_unit_test(test_records_tlsa),
		cmocka_unit_test(test_check_tlsa),
		cmocka_unit_test(test_check_two_of_each),
		cmocka_unit_test(test_check_addresses_found),
		cmocka_unit_test(test_check_budget),
		cmocka_unit_test(test_check_hostile),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
