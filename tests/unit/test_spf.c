/* test_spf.c — the check_host() evaluator (RFC 7208) against a fake zone: initial processing
 * (§4.3), record selection (§4.5), every mechanism (§5) and modifier (§6), the limits of §4.6.4,
 * %{p} (§7.3), explanations (§6.2), the questions asked, and the step protocol itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include "auth/spf.h"
#include "auth/spf_macro.h"
#include "auth/spf_record.h"
#include "fake_dns.h"
#include "test_util.h"

struct outcome {
	enum spf_result result;
	char problem[SPF_PROBLEM_SIZE];
	char explanation[512];
	bool has_explanation;
	unsigned asked, lookups, voids;
	char domain[600], sender[1100];
};

static struct dns_addr addr(const char *s)
{
	struct dns_addr a = {0};
	a.family = strchr(s, ':') != NULL ? AF_INET6 : AF_INET;
	assert_int_equal(inet_pton(a.family, s, a.bytes), 1);
	return a;
}

static struct outcome run_req(struct fake_dns *z, const struct spf_request *req)
{
	struct outcome o = {0};
	struct spf_eval *e = spf_eval_new(req);
	assert_non_null(e);
	fake_dns_log_clear(z);
	o.asked = fake_dns_run(z, spf_eval_step, e);
	assert_true(o.asked <= 1000);
	o.result = spf_eval_result(e);
	snprintf(o.problem, sizeof(o.problem), "%s", spf_eval_problem(e));
	const char *exp = spf_eval_explanation(e);
	o.has_explanation = exp != NULL;
	snprintf(o.explanation, sizeof(o.explanation), "%s", exp != NULL ? exp : "");
	o.lookups = spf_eval_lookups(e);
	o.voids = spf_eval_void_lookups(e);
	snprintf(o.domain, sizeof(o.domain), "%s", spf_eval_domain(e));
	snprintf(o.sender, sizeof(o.sender), "%s", spf_eval_sender(e));
	/* a problem is always one sentence of printable text */
	assert_true(o.problem[0] != '\0');
	for (const char *p = o.problem; *p != '\0'; p++)
		assert_true((unsigned char)*p >= 0x20);
	spf_eval_free(e);
	return o;
}

static struct outcome run(struct fake_dns *z, const char *ip, const char *mail_from)
{
	struct spf_request req = {
		.ip = addr(ip),
		.mail_from = mail_from,
		.helo = "mail.example.org",
		.receiver = "mx.receiver.example",
		.identity = SPF_IDENTITY_MAILFROM,
		.now = 1700000000,
		.default_explanation = "default for %{d}",
	};
	return run_req(z, &req);
}

/* A zone holding one SPF record at example.com. */
static struct fake_dns *zone1(const char *record)
{
	struct fake_dns *z = fake_dns_new();
	fake_dns_add(z, "example.com", DNS_RRTYPE_TXT, record);
	return z;
}

static enum spf_result result1(const char *record, const char *ip)
{
	struct fake_dns *z = zone1(record);
	struct outcome o = run(z, ip, "user@example.com");
	fake_dns_free(z);
	return o.result;
}

static void assert_log(struct fake_dns *z, const char *const *want, size_t n)
{
	char all[4096] = "";
	for (size_t i = 0; i < fake_dns_log_count(z); i++)
		snprintf(all + strlen(all), sizeof(all) - strlen(all), "[%s]", fake_dns_log(z, i));
	if (fake_dns_log_count(z) != n)
		fail_msg("asked %zu questions, want %zu: %s", fake_dns_log_count(z), n, all);
	for (size_t i = 0; i < n; i++)
		if (strcmp(fake_dns_log(z, i), want[i]) != 0)
			fail_msg("question %zu: %s, want %s (all: %s)", i, fake_dns_log(z, i), want[i], all);
}

static void test_results(void **state)
{
	assert_int_equal(result1("v=spf1 +all", "192.0.2.1"), SPF_RESULT_PASS);
	assert_int_equal(result1("v=spf1 -all", "192.0.2.1"), SPF_RESULT_FAIL);
	assert_int_equal(result1("v=spf1 ~all", "192.0.2.1"), SPF_RESULT_SOFTFAIL);
	assert_int_equal(result1("v=spf1 ?all", "192.0.2.1"), SPF_RESULT_NEUTRAL);
	/* §4.7: nothing matched, no redirect */
	assert_int_equal(result1("v=spf1 ip4:198.51.100.0/24", "192.0.2.1"), SPF_RESULT_NEUTRAL);
	assert_int_equal(result1("v=spf1", "192.0.2.1"), SPF_RESULT_NEUTRAL);
	assert_int_equal(result1("v=spf1 ip4:192.0.2.0/24 -all", "192.0.2.1"), SPF_RESULT_PASS);
	assert_int_equal(result1("v=spf1 ip4:192.0.2.0/25 -all", "192.0.2.200"), SPF_RESULT_FAIL);
	assert_int_equal(result1("v=spf1 ip6:2001:db8::/32 -all", "2001:db8:1::1"), SPF_RESULT_PASS);
	assert_int_equal(result1("v=spf1 ip6:2001:db8::/33 -all", "2001:db8:8000::1"), SPF_RESULT_FAIL);
	assert_int_equal(result1("v=spf1 ip6:::/0 -all", "192.0.2.1"), SPF_RESULT_FAIL);
	assert_int_equal(result1("v=spf1 ip4:0.0.0.0/0 -all", "2001:db8::1"), SPF_RESULT_FAIL);
	/* §4.6: a syntax error after the deciding term still counts */
	assert_int_equal(result1("v=spf1 +all moo", "192.0.2.1"), SPF_RESULT_PERMERROR);

	/* §4.5 */
	struct fake_dns *z = zone1("v=spf1 -all");
	fake_dns_add(z, "example.com", DNS_RRTYPE_TXT, "google-site-verification=abc");
	fake_dns_add(z, "example.com", DNS_RRTYPE_TXT, "v=spf10 +all");
	assert_int_equal(run(z, "192.0.2.1", "a@example.com").result, SPF_RESULT_FAIL);
	fake_dns_add(z, "example.com", DNS_RRTYPE_TXT, "V=SPF1 +all");
	struct outcome o = run(z, "192.0.2.1", "a@example.com");
	assert_int_equal(o.result, SPF_RESULT_PERMERROR);
	assert_string_equal(o.problem, "example.com has 2 SPF records (§4.5: more than one is a permerror)");
	fake_dns_free(z);

	z = fake_dns_new();
	fake_dns_add(z, "example.com", DNS_RRTYPE_TXT, "v=spf2.0/pra -all");
	fake_dns_add(z, "nodata.example.com", DNS_RRTYPE_A, "192.0.2.1");
	o = run(z, "192.0.2.1", "a@example.com");
	assert_int_equal(o.result, SPF_RESULT_NONE);
	assert_string_equal(o.problem, "no SPF record at example.com");
	assert_int_equal(run(z, "192.0.2.1", "a@nodata.example.com").result, SPF_RESULT_NONE);
	assert_int_equal(run(z, "192.0.2.1", "a@nxdomain.example.com").result, SPF_RESULT_NONE);
	/* §4.4: a timeout is a temperror */
	fake_dns_timeout(z, "slow.example.com");
	o = run(z, "192.0.2.1", "a@slow.example.com");
	assert_int_equal(o.result, SPF_RESULT_TEMPERROR);
	assert_string_equal(o.problem, "DNS lookup of slow.example.com TXT failed: timed out ?test zone? (§4.4)");
	fake_dns_free(z);

	/* a record longer than the parser takes */
	char big[SPF_RECORD_MAX + 16] = "v=spf1";
	while (strlen(big) <= SPF_RECORD_MAX)
		strcat(big, " a");
	z = zone1(big);
	o = run(z, "192.0.2.1", "a@example.com");
	assert_int_equal(o.result, SPF_RESULT_PERMERROR);
	assert_string_equal(o.problem, "the SPF record of example.com is invalid: SPF record longer than 4096 octets");
	fake_dns_free(z);

	assert_string_equal(spf_result_str(SPF_RESULT_SOFTFAIL), "softfail");
	assert_string_equal(spf_result_str(SPF_RESULT_PERMERROR), "permerror");
	assert_string_equal(spf_identity_str(SPF_IDENTITY_HELO), "helo");
}

static void test_initial_processing(void **state)
{
	struct fake_dns *z = zone1("v=spf1 -all exp=exp.example.com");
	fake_dns_add(z, "exp.example.com", DNS_RRTYPE_TXT, "%{s} %{l} %{o} %{d} %{h}");
	fake_dns_add(z, "mail.example.com", DNS_RRTYPE_TXT, "v=spf1 -all exp=exp.example.com");

	/* §4.3: malformed, not multi-label, address literals: none, without a question */
	static const char *const bad[] = {
		"a@", "a@com", "a@example..com", "a@.example.com", "a@[192.0.2.1]", "a@192.0.2.1", "a@exa mple.com",
		"a@example.com..", "a@a123456789012345678901234567890123456789012345678901234567890123.com",
		"a@caf\xc3\xa9.example", "a@under_score.example", "a@-lead.example", "a@x.123",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct outcome o = run(z, "192.0.2.1", bad[i]);
		if (o.result != SPF_RESULT_NONE || o.asked != 0)
			fail_msg("%s: %s after %u questions", bad[i], spf_result_str(o.result), o.asked);
		assert_non_null(strstr(o.problem, "(§4.3)"));
	}

	struct outcome o = run(z, "192.0.2.1", "user@example.com.");
	assert_int_equal(o.result, SPF_RESULT_FAIL);
	assert_string_equal(o.domain, "example.com");
	assert_string_equal(o.explanation, "user@example.com. user example.com. example.com mail.example.org");
	/* §4.3: no local part: postmaster */
	o = run(z, "192.0.2.1", "@example.com");
	assert_string_equal(o.sender, "postmaster@example.com");
	assert_string_equal(o.explanation, "postmaster@example.com postmaster example.com example.com mail.example.org");
	/* a quoted local part may hold '@': the domain follows the last one */
	o = run(z, "192.0.2.1", "\"a@b\"@example.com");
	assert_string_equal(o.sender, "\"a@b\"@example.com");
	assert_string_equal(o.domain, "example.com");
	/* no '@' at all: the whole is the domain */
	o = run(z, "192.0.2.1", "example.com");
	assert_string_equal(o.sender, "postmaster@example.com");

	/* §2.4: a null MAIL FROM is checked as postmaster@<helo>; §2.3: so is the HELO identity */
	struct spf_request req = {.ip = addr("192.0.2.1"), .mail_from = "", .helo = "mail.example.com"};
	o = run_req(z, &req);
	assert_int_equal(o.result, SPF_RESULT_FAIL);
	assert_string_equal(o.domain, "mail.example.com");
	assert_string_equal(o.sender, "postmaster@mail.example.com");
	req.mail_from = "user@example.com";
	req.identity = SPF_IDENTITY_HELO;
	o = run_req(z, &req);
	assert_string_equal(o.domain, "mail.example.com");
	assert_string_equal(o.explanation,
			    "postmaster@mail.example.com postmaster mail.example.com mail.example.com mail.example.com");
	req.helo = "[192.0.2.1]";
	assert_int_equal(run_req(z, &req).result, SPF_RESULT_NONE);
	req.helo = NULL;
	req.mail_from = NULL;
	assert_int_equal(run_req(z, &req).result, SPF_RESULT_NONE);

	/* arguments longer than an SMTP line can carry */
	char big[SPF_INPUT_MAX + 2];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	req.identity = SPF_IDENTITY_MAILFROM;
	req.mail_from = big;
	req.helo = "mail.example.com";
	o = run_req(z, &req);
	assert_int_equal(o.result, SPF_RESULT_NONE);
	assert_int_equal(o.asked, 0);
	req.mail_from = "user@example.com";
	req.helo = big;
	assert_int_equal(run_req(z, &req).result, SPF_RESULT_NONE);
	big[SPF_INPUT_MAX] = '\0';
	assert_int_equal(run_req(z, &req).result, SPF_RESULT_FAIL);
	/* a request without a client address */
	req.helo = "mail.example.com";
	req.ip.family = 0;
	o = run_req(z, &req);
	assert_int_equal(o.result, SPF_RESULT_NONE);
	assert_string_equal(o.problem, "no client address to check");
	assert_int_equal(o.asked, 0);
	fake_dns_free(z);
}

static void test_ipv4_mapped(void **state)
{
	struct fake_dns *z = zone1("v=spf1 exists:%{i}.%{v}.x.example.com ip6:::ffff:192.0.2.1 ip4:192.0.2.1 -all");
	fake_dns_add(z, "192.0.2.1.in-addr.x.example.com", DNS_RRTYPE_A, "127.0.0.2");
	/* §5: an IPv4-mapped address is IPv4: %{i} and %{v} too, and ip6 never matches it */
	struct outcome o = run(z, "::ffff:192.0.2.1", "a@example.com");
	assert_int_equal(o.result, SPF_RESULT_PASS);
	assert_string_equal(o.problem, "mechanism exists:%{i}.%{v}.x.example.com matched");
	fake_dns_free(z);
	assert_int_equal(result1("v=spf1 ip6:::ffff:192.0.2.1 ?all", "::ffff:192.0.2.1"), SPF_RESULT_NEUTRAL);
	assert_int_equal(result1("v=spf1 ip4:192.0.2.1 -all", "::ffff:192.0.2.1"), SPF_RESULT_PASS);
	/* ::192.0.2.1 (IPv4-compatible, deprecated) is no mapped address */
	assert_int_equal(result1("v=spf1 ip4:192.0.2.1 -all", "::192.0.2.1"), SPF_RESULT_FAIL);
}

static void test_a_and_mx(void **state)
{
	struct fake_dns *z = zone1("v=spf1 a mx -all");
	fake_dns_add(z, "example.com", DNS_RRTYPE_A, "192.0.2.10");
	fake_dns_add(z, "example.com", DNS_RRTYPE_AAAA, "2001:db8::10");
	fake_dns_add(z, "example.com", DNS_RRTYPE_MX, "10 mx1.example.com");
	fake_dns_add(z, "example.com", DNS_RRTYPE_MX, "20 mx2.example.com");
	fake_dns_add(z, "mx1.example.com", DNS_RRTYPE_A, "192.0.2.20");
	fake_dns_add(z, "mx2.example.com", DNS_RRTYPE_A, "192.0.2.30");
	fake_dns_add(z, "mx2.example.com", DNS_RRTYPE_AAAA, "2001:db8::30");

	assert_int_equal(run(z, "192.0.2.10", "a@example.com").result, SPF_RESULT_PASS);
	struct outcome o = run(z, "192.0.2.30", "a@example.com");
	assert_int_equal(o.result, SPF_RESULT_PASS);
	assert_string_equal(o.problem, "mechanism mx matched");
	assert_int_equal(o.lookups, 2);
	static const char *const q4[] = {"example.com TXT", "example.com A", "example.com MX", "mx1.example.com A",
					  "mx2.example.com A"};
	assert_log(z, q4, 5);
	/* §5.3, §5.4: IPv6 clients ask AAAA */
	o = run(z, "2001:db8::30", "a@example.com");
	assert_int_equal(o.result, SPF_RESULT_PASS);
	static const char *const q6[] = {"example.com TXT", "example.com AAAA", "example.com MX",
					  "mx1.example.com AAAA", "mx2.example.com AAAA"};
	assert_log(z, q6, 5);
	o = run(z, "192.0.2.99", "a@example.com");
	assert_int_equal(o.result, SPF_RESULT_FAIL);
	assert_int_equal(o.voids, 0);
	fake_dns_free(z);

	/* CIDR lengths on a and mx, for each family */
	z = zone1("v=spf1 a:h.example.com/24//64 -all");
	fake_dns_add(z, "h.example.com", DNS_RRTYPE_A, "192.0.2.10");
	fake_dns_add(z, "h.example.com", DNS_RRTYPE_AAAA, "2001:db8:0:1::10");
	assert_int_equal(run(z, "192.0.2.250", "a@example.com").result, SPF_RESULT_PASS);
	assert_int_equal(run(z, "192.0.3.10", "a@example.com").result, SPF_RESULT_FAIL);
	assert_int_equal(run(z, "2001:db8:0:1:ffff::1", "a@example.com").result, SPF_RESULT_PASS);
	assert_int_equal(run(z, "2001:db8:0:2::10", "a@example.com").result, SPF_RESULT_FAIL);
	fake_dns_free(z);

	/* RFC 7505 null MX: no host, no question */
	z = zone1("v=spf1 mx -all");
	fake_dns_add(z, "example.com", DNS_RRTYPE_MX, "0 .");
	o = run(z, "192.0.2.1", "a@example.com");
	assert_int_equal(o.result, SPF_RESULT_FAIL);
	assert_int_equal(o.asked, 2);
	fake_dns_free(z);

	/* §4.6.4: 10 MX names are fine, 11 a permerror */
	z = zone1("v=spf1 mx -all");
	char host[64];
	for (int i = 0; i < 10; i++) {
		snprintf(host, sizeof(host), "%d mx%d.example.com", i, i);
		fake_dns_add(z, "example.com", DNS_RRTYPE_MX, host);
	}
	fake_dns_add(z, "mx9.example.com", DNS_RRTYPE_A, "192.0.2.9");
	o = run(z, "192.0.2.9", "a@example.com");
	assert_int_equal(o.result, SPF_RESULT_PASS);
	assert_int_equal(o.asked, 12);
	fake_dns_add(z, "example.com", DNS_RRTYPE_MX, "99 mx10.example.com");
	o = run(z, "192.0.2.9", "a@example.com");
	assert_int_equal(o.result, SPF_RESULT_PERMERROR);
	assert_string_equal(o.problem, "example.com has 11 MX records, more than 10 (§4.6.4)");
	fake_dns_free(z);

	/* §5: a DNS error on an address lookup is a temperror; NXDOMAIN is no records */
	z = zone1("v=spf1 mx:m.example.com a:gone.example.com -all");
	fake_dns_add(z, "m.example.com", DNS_RRTYPE_MX, "10 slow.example.com");
	fake_dns_add(z, "m.example.com", DNS_RRTYPE_MX, "20 gone.example.com");
	fake_dns_timeout(z, "slow.example.com");
	o = run(z, "192.0.2.1", "a@example.com");
	assert_int_equal(o.result, SPF_RESULT_TEMPERROR);
	assert_string_equal(o.problem, "DNS lookup of slow.example.com A failed: timed out ?test zone? (§5)");
	fake_dns_free(z);

	/* a target that cannot be asked matches nothing, without a question */
	z = zone1("v=spf1 a:%{l}.example.com -all");
	o = run(z, "192.0.2.1", "a..b@example.com");
	assert_int_equal(o.result, SPF_RESULT_FAIL);
	assert_int_equal(o.asked, 1);
	fake_dns_free(z);
}

static void test_include(void **state)
{
	static const struct {
		const char *inc; /* the record of inc.example.com, NULL for none */
		enum spf_result want;
	} cases[] = {
		{"v=spf1 +all", SPF_RESULT_FAIL},       /* pass: a match, qualifier "-" */
		{"v=spf1 -all", SPF_RESULT_SOFTFAIL},   /* fail: no match, on to ~all */
		{"v=spf1 ~all", SPF_RESULT_SOFTFAIL},
		{"v=spf1 ?all", SPF_RESULT_SOFTFAIL},
		{"v=spf1", SPF_RESULT_SOFTFAIL},
		{"v=spf1 moo", SPF_RESULT_PERMERROR},
		{"v=spf1 include:nothing.example.com", SPF_RESULT_PERMERROR},
		{NULL, SPF_RESULT_PERMERROR},           /* none: permerror (§5.2) */
		{"v=spf1 include:slow.example.com", SPF_RESULT_TEMPERROR},
		{"v=spf1 redirect=inc2.example.com", SPF_RESULT_FAIL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fake_dns *z = zone1("v=spf1 -include:inc.example.com ~all");
		if (cases[i].inc != NULL)
			fake_dns_add(z, "inc.example.com", DNS_RRTYPE_TXT, cases[i].inc);
		fake_dns_add(z, "inc2.example.com", DNS_RRTYPE_TXT, "v=spf1 ip4:192.0.2.0/24");
		fake_dns_timeout(z, "slow.example.com");
		struct outcome o = run(z, "192.0.2.1", "a@example.com");
		if (o.result != cases[i].want)
			fail_msg("include of \"%s\": %s (%s), want %s", cases[i].inc ? cases[i].inc : "(none)",
				 spf_result_str(o.result), o.problem, spf_result_str(cases[i].want));
		fake_dns_free(z);
	}

	struct fake_dns *z = zone1("v=spf1 include:inc.example.com -all");
	fake_dns_add(z, "inc.example.com", DNS_RRTYPE_TXT, "v=spf1 include:inc2.example.com -all");
	fake_dns_add(z, "inc2.example.com", DNS_RRTYPE_TXT, "v=spf1 a:%{d}");
	fake_dns_add(z, "inc2.example.com", DNS_RRTYPE_A, "192.0.2.1");
	/* %{d} is the included domain; the match reports the top-level term */
	struct outcome o = run(z, "192.0.2.1", "a@example.com");
	assert_int_equal(o.result, SPF_RESULT_PASS);
	assert_string_equal(o.problem, "mechanism include:inc.example.com matched");
	assert_int_equal(o.lookups, 3);
	fake_dns_free(z);

	z = zone1("v=spf1 include:inc.example.com -all");
	fake_dns_add(z, "inc.example.com", DNS_RRTYPE_TXT, "v=spf1 -all");
	o = run(z, "192.0.2.1", "a@example.com");
	assert_string_equal(o.problem, "mechanism -all matched");
	fake_dns_free(z);

	z = zone1("v=spf1 include:%{d1} -all");
	o = run(z, "192.0.2.1", "a@example.com");
	assert_int_equal(o.result, SPF_RESULT_PERMERROR);
	assert_string_equal(o.problem, "include:com is not a multi-label domain name (§5.2)");
	fake_dns_free(z);
	z = zone1("v=spf1 include:%{l}.example.com -all");
	o = run(z, "192.0.2.1", "a..b@example.com");
	assert_int_equal(o.result, SPF_RESULT_PERMERROR);
	fake_dns_free(z);
}

static void test_lookup_limit(void **state)
{
	char rec[512];
	struct fake_dns *z;
	struct outcome o;

	/* §4.6.4: ten DNS-querying terms are fine, the eleventh a permerror */
	for (int n = 9; n <= 11; n++) {
		snprintf(rec, sizeof(rec), "v=spf1");
		for (int i = 0; i < n; i++)
			strcat(rec, " a");
		strcat(rec, " ip4:192.0.2.1 -all");
		z = zone1(rec);
		fake_dns_add(z, "example.com", DNS_RRTYPE_A, "198.51.100.1");
		o = run(z, "192.0.2.1", "a@example.com");
		assert_int_equal(o.result, n <= 10 ? SPF_RESULT_PASS : SPF_RESULT_PERMERROR);
		assert_int_equal(o.lookups, (unsigned)n);
		if (n > 10)
			assert_string_equal(o.problem, "more than 10 DNS-querying terms (§4.6.4), at a");
		fake_dns_free(z);
	}
	/* includes and redirects count, across records; terms after the match do not */
	z = zone1("v=spf1 include:i1.example.com redirect=r.example.com");
	fake_dns_add(z, "i1.example.com", DNS_RRTYPE_TXT, "v=spf1 mx:example.com ?exists:%{d}");
	fake_dns_add(z, "example.com", DNS_RRTYPE_MX, "0 m.example.com");
	fake_dns_add(z, "r.example.com", DNS_RRTYPE_TXT, "v=spf1 ptr a:%{d} a ip4:192.0.2.1 a a a a a a a");
	fake_dns_add(z, "i1.example.com", DNS_RRTYPE_A, "127.0.0.2");
	fake_dns_add(z, "r.example.com", DNS_RRTYPE_A, "198.51.100.1");
	fake_dns_add(z, "1.2.0.192.in-addr.arpa", DNS_RRTYPE_PTR, "h.example.net");
	o = run(z, "192.0.2.1", "a@example.com");
	assert_int_equal(o.result, SPF_RESULT_PASS);
	assert_string_equal(o.problem, "mechanism ip4:192.0.2.1 of r.example.com matched");
	/* include, mx, exists, redirect, ptr, a, a */
	assert_int_equal(o.lookups, 7);
	fake_dns_free(z);
	/* a redirect loop stops at the limit */
	z = zone1("v=spf1 redirect=example.com");
	o = run(z, "192.0.2.1", "a@example.com");
	assert_int_equal(o.result, SPF_RESULT_PERMERROR);
	assert_string_equal(o.problem, "more than 10 DNS-querying terms (§4.6.4), at redirect=example.com");
	assert_int_equal(o.asked, 11);
	fake_dns_free(z);
}

static void test_void_limit(void **state)
{
	struct fake_dns *z = zone1("v=spf1 a:n1.example.com exists:n2.example.com mx:n3.example.com ?all");
	fake_dns_add(z, "n3.example.com", DNS_RRTYPE_MX, "10 n4.example.com");
	/* two void lookups are fine; the MX names' own lookups do not count */
	struct outcome o = run(z, "192.0.2.1", "a@example.com");
	assert_int_equal(o.result, SPF_RESULT_NEUTRAL);
	assert_int_equal(o.voids, 2);
	fake_dns_free(z);

	z = zone1("v=spf1 a:n1.example.com exists:n2.example.com ptr ?all");
	fake_dns_add(z, "n1.example.com", DNS_RRTYPE_TXT, "nodata for A");
	o = run(z, "192.0.2.1", "a@example.com");
	assert_int_equal(o.result, SPF_RESULT_PERMERROR);
	assert_string_equal(o.problem, "more than 2 void lookups (§4.6.4), the last for example.com");
	assert_int_equal(o.voids, 3);
	fake_dns_free(z);

	/* a DNS error is no void lookup (and ends in temperror anyway for a) */
	z = zone1("v=spf1 ptr ptr ptr ?all");
	fake_dns_timeout(z, "1.2.0.192.in-addr.arpa");
	o = run(z, "192.0.2.1", "a@example.com");
	assert_int_equal(o.result, SPF_RESULT_NEUTRAL);
	assert_int_equal(o.voids, 0);
	/* the PTR names are asked once for the three */
	assert_int_equal(o.asked, 2);
	fake_dns_free(z);
}

static void test_ptr(void **state)
{
	struct fake_dns *z = zone1("v=spf1 ptr -all");
	fake_dns_add(z, "1.2.0.192.in-addr.arpa", DNS_RRTYPE_PTR, "other.example.net");
	fake_dns_add(z, "1.2.0.192.in-addr.arpa", DNS_RRTYPE_PTR, "fake.example.com");
	fake_dns_add(z, "1.2.0.192.in-addr.arpa", DNS_RRTYPE_PTR, "slow.example.com");
	fake_dns_add(z, "1.2.0.192.in-addr.arpa", DNS_RRTYPE_PTR, "Mail.Example.COM");
	fake_dns_add(z, "fake.example.com", DNS_RRTYPE_A, "198.51.100.1");
	fake_dns_timeout(z, "slow.example.com");
	fake_dns_add(z, "mail.example.com", DNS_RRTYPE_A, "192.0.2.1");
	/* §5.5: only names under the target are validated; a DNS error skips a name */
	struct outcome o = run(z, "192.0.2.1", "a@example.com");
	assert_int_equal(o.result, SPF_RESULT_PASS);
	static const char *const q[] = {"example.com TXT", "1.2.0.192.in-addr.arpa PTR", "fake.example.com A",
					 "slow.example.com A", "mail.example.com A"};
	assert_log(z, q, 5);
	assert_int_equal(run(z, "192.0.2.2", "a@example.com").result, SPF_RESULT_FAIL);
	fake_dns_free(z);

	/* names that cannot be asked are skipped (dns_parse.c drops them already) */
	z = zone1("v=spf1 ptr -all");
	fake_dns_add(z, "1.2.0.192.in-addr.arpa", DNS_RRTYPE_PTR, "a..b.example.com");
	fake_dns_add(z, "1.2.0.192.in-addr.arpa", DNS_RRTYPE_PTR, "c.example.com");
	fake_dns_add(z, "c.example.com", DNS_RRTYPE_A, "192.0.2.1");
	assert_int_equal(run(z, "192.0.2.1", "a@example.com").result, SPF_RESULT_PASS);
	static const char *const qs[] = {"example.com TXT", "1.2.0.192.in-addr.arpa PTR", "c.example.com A"};
	assert_log(z, qs, 3);
	fake_dns_free(z);

	/* §4.6.4: names after the first 10 are ignored */
	z = zone1("v=spf1 ptr:example.org -all");
	char name[64];
	for (int i = 0; i < 11; i++) {
		snprintf(name, sizeof(name), "h%d.example.org", i);
		fake_dns_add(z, "1.2.0.192.in-addr.arpa", DNS_RRTYPE_PTR, name);
	}
	fake_dns_add(z, "h10.example.org", DNS_RRTYPE_A, "192.0.2.1");
	o = run(z, "192.0.2.1", "a@example.com");
	assert_int_equal(o.result, SPF_RESULT_FAIL);
	assert_int_equal(o.asked, 12);
	fake_dns_add(z, "h9.example.org", DNS_RRTYPE_A, "192.0.2.1");
	assert_int_equal(run(z, "192.0.2.1", "a@example.com").result, SPF_RESULT_PASS);
	fake_dns_free(z);

	/* IPv6: ip6.arpa nibbles, AAAA validation */
	z = zone1("v=spf1 ptr:example.net -all");
	fake_dns_add(z, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", DNS_RRTYPE_PTR,
		     "h.example.net");
	fake_dns_add(z, "h.example.net", DNS_RRTYPE_AAAA, "2001:db8::1");
	o = run(z, "2001:db8::1", "a@example.com");
	assert_int_equal(o.result, SPF_RESULT_PASS);
	static const char *const q6[] = {"example.com TXT",
					  "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa PTR",
					  "h.example.net AAAA"};
	assert_log(z, q6, 3);
	fake_dns_free(z);
}

static void test_p_macro(void **state)
{
	/* §7.3: <domain> itself first, then a name under it, then any validated one */
	struct fake_dns *z = zone1("v=spf1 -all exp=why.example.com");
	fake_dns_add(z, "why.example.com", DNS_RRTYPE_TXT, "from %{p}");
	fake_dns_add(z, "1.2.0.192.in-addr.arpa", DNS_RRTYPE_PTR, "a.example.net");
	fake_dns_add(z, "1.2.0.192.in-addr.arpa", DNS_RRTYPE_PTR, "b.example.net");
	fake_dns_add(z, "1.2.0.192.in-addr.arpa", DNS_RRTYPE_PTR, "mx.example.com");
	fake_dns_add(z, "1.2.0.192.in-addr.arpa", DNS_RRTYPE_PTR, "example.com");
	fake_dns_add(z, "b.example.net", DNS_RRTYPE_A, "192.0.2.1");
	fake_dns_add(z, "mx.example.com", DNS_RRTYPE_A, "192.0.2.1");
	struct outcome o = run(z, "192.0.2.1", "a@example.com");
	assert_string_equal(o.explanation, "from mx.example.com");
	fake_dns_add(z, "example.com", DNS_RRTYPE_A, "192.0.2.1");
	o = run(z, "192.0.2.1", "a@example.com");
	assert_string_equal(o.explanation, "from example.com");
	fake_dns_free(z);

	z = zone1("v=spf1 -all exp=why.example.com");
	fake_dns_add(z, "why.example.com", DNS_RRTYPE_TXT, "from %{p}");
	fake_dns_add(z, "1.2.0.192.in-addr.arpa", DNS_RRTYPE_PTR, "a.example.net");
	fake_dns_add(z, "1.2.0.192.in-addr.arpa", DNS_RRTYPE_PTR, "b.example.net");
	fake_dns_add(z, "b.example.net", DNS_RRTYPE_A, "192.0.2.1");
	o = run(z, "192.0.2.1", "a@example.com");
	assert_string_equal(o.explanation, "from b.example.net");
	o = run(z, "192.0.2.2", "a@example.com");
	assert_string_equal(o.explanation, "from unknown");
	fake_dns_free(z);

	/* nothing under the domain validates: the first name that does */
	z = zone1("v=spf1 exists:%{p}.a.example.com ptr:example.org exists:%{p}.b.example.com -all");
	fake_dns_add(z, "1.2.0.192.in-addr.arpa", DNS_RRTYPE_PTR, "h.example.net");
	fake_dns_add(z, "h.example.net", DNS_RRTYPE_A, "192.0.2.1");
	o = run(z, "192.0.2.1", "a@example.com");
	assert_int_equal(o.result, SPF_RESULT_FAIL);
	/* ptr and %{p} share the PTR names and their validation: asked once each */
	static const char *const q2[] = {"example.com TXT", "1.2.0.192.in-addr.arpa PTR", "h.example.net A",
					  "h.example.net.a.example.com A", "h.example.net.b.example.com A"};
	assert_log(z, q2, 5);
	fake_dns_free(z);
}

static void test_explanation(void **state)
{
	struct fake_dns *z = zone1("v=spf1 ip4:192.0.2.1 -all exp=%{d2}.why.example.net");
	fake_dns_add(z, "example.com.why.example.net", DNS_RRTYPE_TXT,
		     "%{i} (%{c}) may not send for %{o} to %{r} at %{t}; see %{L}%-");
	struct outcome o = run(z, "2001:db8::1", "a b@example.com");
	assert_int_equal(o.result, SPF_RESULT_FAIL);
	assert_string_equal(o.explanation,
			    "2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1 (2001:db8::1) may not send for "
			    "example.com to mx.receiver.example at 1700000000; see a%20b%20");
	/* §6.2: the exp lookup is not a term: not counted, never void */
	assert_int_equal(o.lookups, 0);
	/* only on fail */
	o = run(z, "192.0.2.1", "a@example.com");
	assert_int_equal(o.result, SPF_RESULT_PASS);
	assert_false(o.has_explanation);
	assert_int_equal(o.asked, 1);
	fake_dns_free(z);

	/* §6.2: anything wrong with exp= gives the default explanation, never an error */
	static const char *const broken[] = {"", "two", "bad %{x} macro", "caf\xc3\xa9", "slow", "nxdomain"};
	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		z = zone1("v=spf1 -all exp=why.example.com");
		if (strcmp(broken[i], "two") == 0) {
			fake_dns_add(z, "why.example.com", DNS_RRTYPE_TXT, "one");
			fake_dns_add(z, "why.example.com", DNS_RRTYPE_TXT, "two");
		} else if (strcmp(broken[i], "slow") == 0) {
			fake_dns_timeout(z, "why.example.com");
		} else if (strcmp(broken[i], "nxdomain") != 0) {
			fake_dns_add(z, "why.example.com", DNS_RRTYPE_TXT, broken[i]);
		}
		o = run(z, "192.0.2.1", "a@example.com");
		assert_int_equal(o.result, SPF_RESULT_FAIL);
		if (strcmp(broken[i], "") == 0)
			assert_string_equal(o.explanation, "");
		else
			assert_string_equal(o.explanation, "default for example.com");
		assert_int_equal(o.voids, 0);
		fake_dns_free(z);
	}
	/* a target that cannot be asked: no question */
	z = zone1("v=spf1 -all exp=%{l}.example.com");
	o = run(z, "192.0.2.1", "a..b@example.com");
	assert_string_equal(o.explanation, "default for example.com");
	assert_int_equal(o.asked, 1);
	fake_dns_free(z);

	/* §6.2: redirect= drops the exp= of the record that redirected; include ignores the target's */
	z = zone1("v=spf1 exp=why1.example.com include:inc.example.com redirect=r.example.com");
	fake_dns_add(z, "inc.example.com", DNS_RRTYPE_TXT, "v=spf1 -all exp=why2.example.com");
	fake_dns_add(z, "r.example.com", DNS_RRTYPE_TXT, "v=spf1 -all exp=why3.example.com");
	fake_dns_add(z, "why1.example.com", DNS_RRTYPE_TXT, "one");
	fake_dns_add(z, "why2.example.com", DNS_RRTYPE_TXT, "two");
	fake_dns_add(z, "why3.example.com", DNS_RRTYPE_TXT, "three %{d}");
	o = run(z, "192.0.2.1", "a@example.com");
	assert_string_equal(o.explanation, "three r.example.com");
	fake_dns_free(z);

	/* the built-in default, and a configured one that is no explain-string */
	z = zone1("v=spf1 -all");
	struct spf_request req = {.ip = addr("192.0.2.1"), .mail_from = "a@example.com", .helo = "h.example.com"};
	o = run_req(z, &req);
	assert_string_equal(o.explanation, "192.0.2.1 is not allowed to send mail for example.com (SPF)");
	req.default_explanation = "100% (\r\n) sure";
	o = run_req(z, &req);
	assert_string_equal(o.explanation, "100% ???? sure");
	/* a long explanation is cut */
	char longer[1200];
	memset(longer, 'x', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	req.default_explanation = longer;
	o = run_req(z, &req);
	assert_int_equal(strlen(o.explanation), SPF_EXPLANATION_SIZE - 1);
	fake_dns_free(z);
}

static void test_redirect(void **state)
{
	/* §5.1: ignored when "all" is there, wherever */
	assert_int_equal(result1("v=spf1 redirect=nowhere.example.com ?all", "192.0.2.1"), SPF_RESULT_NEUTRAL);

	struct fake_dns *z = zone1("v=spf1 ip4:198.51.100.1 redirect=r.%{d}");
	fake_dns_add(z, "r.example.com", DNS_RRTYPE_TXT, "v=spf1 a -all");
	fake_dns_add(z, "r.example.com", DNS_RRTYPE_A, "192.0.2.1");
	/* §6.1: the target becomes <domain> (a without a name looks at it) */
	struct outcome o = run(z, "192.0.2.1", "a@example.com");
	assert_int_equal(o.result, SPF_RESULT_PASS);
	assert_string_equal(o.problem, "mechanism a of r.example.com matched");
	assert_string_equal(o.domain, "example.com");
	fake_dns_free(z);

	/* §6.1: a target without a record, or malformed, is a permerror (not none) */
	z = zone1("v=spf1 redirect=none.example.com");
	o = run(z, "192.0.2.1", "a@example.com");
	assert_int_equal(o.result, SPF_RESULT_PERMERROR);
	assert_string_equal(o.problem, "redirect=none.example.com has no SPF record (§6.1)");
	fake_dns_free(z);
	z = zone1("v=spf1 redirect=%{l}.example.com");
	o = run(z, "192.0.2.1", "a..b@example.com");
	assert_int_equal(o.result, SPF_RESULT_PERMERROR);
	assert_int_equal(o.asked, 1);
	fake_dns_free(z);
	z = zone1("v=spf1 redirect=%{d1}");
	assert_int_equal(run(z, "192.0.2.1", "a@example.com").result, SPF_RESULT_PERMERROR);
	fake_dns_free(z);
	/* %{p} in the target: its PTR and address lookups come first */
	z = zone1("v=spf1 redirect=%{p}");
	fake_dns_add(z, "1.2.0.192.in-addr.arpa", DNS_RRTYPE_PTR, "h.example.net");
	fake_dns_add(z, "h.example.net", DNS_RRTYPE_A, "192.0.2.1");
	fake_dns_add(z, "h.example.net", DNS_RRTYPE_TXT, "v=spf1 +all");
	o = run(z, "192.0.2.1", "a@example.com");
	assert_int_equal(o.result, SPF_RESULT_PASS);
	static const char *const q[] = {"example.com TXT", "1.2.0.192.in-addr.arpa PTR", "h.example.net A",
					 "h.example.net TXT"};
	assert_log(z, q, 4);
	fake_dns_free(z);
	/* a redirect inside an include stays inside it */
	z = zone1("v=spf1 include:inc.example.com ~all");
	fake_dns_add(z, "inc.example.com", DNS_RRTYPE_TXT, "v=spf1 redirect=r.example.com");
	fake_dns_add(z, "r.example.com", DNS_RRTYPE_TXT, "v=spf1 -all");
	assert_int_equal(run(z, "192.0.2.1", "a@example.com").result, SPF_RESULT_SOFTFAIL);
	fake_dns_free(z);
}

/* A driver that answers the questions itself. */
static void test_step_protocol(void **state)
{
	struct spf_request req = {.ip = addr("192.0.2.1"), .mail_from = "a@example.com", .helo = "h.example.com"};
	struct spf_eval *e = spf_eval_new(&req);
	struct auth_query q;
	struct dns_txt txt = {"v=spf1 a -all", 13};
	struct dns_result r = {.status = DNS_STATUS_OK, .rrtype = DNS_RRTYPE_TXT, .count = 1, .txts = &txt, .why = ""};

	assert_int_equal(spf_eval_step(e, NULL, &q), AUTH_STEP_QUERY);
	assert_string_equal(q.name, "example.com");
	assert_int_equal(q.rrtype, DNS_RRTYPE_TXT);
	/* asked again without an answer: the same question */
	memset(&q, 0, sizeof(q));
	assert_int_equal(spf_eval_step(e, NULL, &q), AUTH_STEP_QUERY);
	assert_string_equal(q.name, "example.com");
	assert_int_equal(spf_eval_step(e, &r, &q), AUTH_STEP_QUERY);
	assert_int_equal(q.rrtype, DNS_RRTYPE_A);
	/* an answer of another type than asked cannot be read: temperror */
	assert_int_equal(spf_eval_step(e, &r, &q), AUTH_STEP_DONE);
	assert_int_equal(spf_eval_result(e), SPF_RESULT_TEMPERROR);
	assert_string_equal(spf_eval_problem(e), "DNS lookup of example.com A failed: answer of another type (§5)");
	assert_int_equal(spf_eval_step(e, &r, &q), AUTH_STEP_DONE);
	spf_eval_free(e);

	/* DNSSEC failure (RFC 4035 §4.3): bogus answers are errors */
	e = spf_eval_new(&req);
	assert_int_equal(spf_eval_step(e, NULL, &q), AUTH_STEP_QUERY);
	r.status = DNS_STATUS_BOGUS;
	assert_int_equal(spf_eval_step(e, &r, &q), AUTH_STEP_DONE);
	assert_int_equal(spf_eval_result(e), SPF_RESULT_TEMPERROR);
	assert_string_equal(spf_eval_problem(e), "DNS lookup of example.com TXT failed: DNSSEC validation failed (§4.4)");
	spf_eval_free(e);

	/* freed in the middle of an evaluation, with records held (LeakSanitizer watches) */
	struct fake_dns *z = zone1("v=spf1 include:inc.example.com -all");
	fake_dns_add(z, "inc.example.com", DNS_RRTYPE_TXT, "v=spf1 a -all");
	e = spf_eval_new(&req);
	assert_int_equal(spf_eval_step(e, NULL, &q), AUTH_STEP_QUERY);
	assert_int_equal(spf_eval_step(e, fake_dns_answer(z, &q), &q), AUTH_STEP_QUERY);
	assert_int_equal(spf_eval_step(e, fake_dns_answer(z, &q), &q), AUTH_STEP_QUERY);
	assert_string_equal(q.name, "inc.example.com");
	assert_int_equal(q.rrtype, DNS_RRTYPE_A);
	spf_eval_free(e);
	spf_eval_free(NULL);
	fake_dns_free(z);
}

static void test_problem_text(void **state)
{
	/* names from DNS in problems are printable, without parentheses */
	struct fake_dns *z = zone1("v=spf1 a:x(y).example.com -all");
	fake_dns_add(z, "x(y).example.com", DNS_RRTYPE_A, "192.0.2.1");
	struct outcome o = run(z, "192.0.2.1", "a@example.com");
	assert_int_equal(o.result, SPF_RESULT_PASS);
	assert_string_equal(o.problem, "mechanism a:x?y?.example.com matched");
	fake_dns_free(z);
	z = zone1("v=spf1 a:\x01.example.com -all");
	o = run(z, "192.0.2.1", "a@example.com");
	assert_int_equal(o.result, SPF_RESULT_PERMERROR);
	assert_string_equal(o.problem, "the SPF record of example.com is invalid at \"a:?.example.com\": an octet other "
				       "than a space or printable US-ASCII (§3.1, §4.6.1)");
	fake_dns_free(z);
}

/* A problem cut at SPF_PROBLEM_SIZE never ends inside the UTF-8 of a "§". */
static void test_problem_cut(void **state)
{
	char domain[DNS_HOST_SIZE], from[DNS_HOST_SIZE + 8];

	for (size_t n = 180; n <= 253; n++) {
		for (size_t i = 0; i < n; i++)
			domain[i] = i % 50 == 49 ? '.' : 'a';
		domain[n] = '\0';
		if (domain[n - 1] == '.')
			continue;
		struct fake_dns *z = fake_dns_new();
		fake_dns_add(z, domain, DNS_RRTYPE_TXT, "v=spf1 a:\x01.example.com -all");
		snprintf(from, sizeof(from), "a@%s", domain);
		struct outcome o = run(z, "192.0.2.1", from);
		assert_int_equal(o.result, SPF_RESULT_PERMERROR);
		for (const unsigned char *p = (const unsigned char *)o.problem; *p != '\0'; p++) {
			if (*p >= 0x80) {
				assert_int_equal(p[0], 0xc2);
				assert_int_equal(p[1], 0xa7);
				p++;
			}
		}
		fake_dns_free(z);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_results),
		cmocka_unit_test(test_initial_processing),
		cmocka_unit_test(test_ipv4_mapped),
		cmocka_unit_test(test_a_and_mx),
		cmocka_unit_test(test_include),
		cmocka_unit_test(test_lookup_limit),
		cmocka_unit_test(test_void_limit),
		cmocka_unit_test(test_ptr),
		cmocka_unit_test(test_p_macro),
		cmocka_unit_test(test_explanation),
		cmocka_unit_test(test_redirect),
		cmocka_unit_test(test_step_protocol),
		cmocka_unit_test(test_problem_text),
		cmocka_unit_test(test_problem_cut),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
