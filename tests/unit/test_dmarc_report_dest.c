/* test_dmarc_report_dest.c — RFC 9990 §4, verifying external report destinations over the fake
 * zone: which addresses need the check and the name asked, authorization by a v=DMARC1 record,
 * refusals (no record, other TXT records, DNS failure, names too long), the rua override of step 9
 * and its host rule, and one question per destination domain. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fake_dns.h"
#include "report/dmarc_report_dest.h"
#include "test_util.h"

static void expect_classify(const char *pd, const char *org, const char *addr, enum dmarc_report_dest_status want,
			    const char *want_name)
{
	char name[DNS_HOST_SIZE];
	const char *err = NULL;
	enum dmarc_report_dest_status got = dmarc_report_dest_classify(pd, org, addr, name, &err);
	if (got != want)
		fail_msg("%s for %s (org %s): %s (%s), want %s", addr, pd, org != NULL ? org : "-",
			 dmarc_report_dest_status_str(got), err != NULL ? err : "", dmarc_report_dest_status_str(want));
	if (want == DMARC_REPORT_DEST_CHECK && want_name != NULL)
		assert_string_equal(name, want_name);
	if (want == DMARC_REPORT_DEST_INVALID)
		assert_non_null(err);
}

static void test_classify(void **state)
{
	/* within the organization: no question */
	expect_classify("example.com", "example.com", "dmarc@example.com", DMARC_REPORT_DEST_INTERNAL, NULL);
	expect_classify("example.com", NULL, "dmarc@reports.Example.COM", DMARC_REPORT_DEST_INTERNAL, NULL);
	expect_classify("Example.com", "", "dmarc@example.com", DMARC_REPORT_DEST_INTERNAL, NULL);
	/* a record at a subdomain, reports to its Organizational Domain */
	expect_classify("news.example.com", "example.com", "dmarc@example.com", DMARC_REPORT_DEST_INTERNAL, NULL);
	expect_classify("news.example.com", "example.com", "x@other.example.com", DMARC_REPORT_DEST_INTERNAL, NULL);
	/* the same without the Organizational Domain known: the policy domain stands for it */
	expect_classify("news.example.com", "", "dmarc@example.com", DMARC_REPORT_DEST_CHECK,
			"news.example.com._report._dmarc.example.com");
	/* a PSD's record: the names below it are other organizations */
	expect_classify("bank", "foo.bank", "reports@foo.bank", DMARC_REPORT_DEST_CHECK, "bank._report._dmarc.foo.bank");
	expect_classify("bank", "foo.bank", "reports@sub.bank", DMARC_REPORT_DEST_CHECK, "bank._report._dmarc.sub.bank");
	expect_classify("bank", "foo.bank", "reports@bank", DMARC_REPORT_DEST_INTERNAL, NULL);
	expect_classify("sub.example.com", "Example.COM", "r@example.com", DMARC_REPORT_DEST_INTERNAL, NULL);
	/* §4's example */
	expect_classify("blue.example.com", "example.com", "reports@red.example.net", DMARC_REPORT_DEST_CHECK,
			"blue.example.com._report._dmarc.red.example.net");
	/* a look-alike is not within */
	expect_classify("example.com", "example.com", "r@notexample.com", DMARC_REPORT_DEST_CHECK,
			"example.com._report._dmarc.notexample.com");
	/* step 4: too long to ask */
	char pd[DNS_HOST_SIZE];
	snprintf(pd, sizeof(pd), "%.63s.%.63s.%.63s.example", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
		 "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc");
	expect_classify(pd, "", "reports@reports-under-a-rather-long-name.example.net", DMARC_REPORT_DEST_INVALID, NULL);
	expect_classify(pd, "", "reports@reports.example.net", DMARC_REPORT_DEST_CHECK, NULL);
	/* not usable addresses */
	expect_classify("example.com", "", "r\xc3\xa9ports@example.net", DMARC_REPORT_DEST_INVALID, NULL);
	expect_classify("example.com", "", "x@[192.0.2.1]", DMARC_REPORT_DEST_INVALID, NULL);
	expect_classify("example.com", "", "nobody", DMARC_REPORT_DEST_INVALID, NULL);
	expect_classify("example.com", "", "a@b@c", DMARC_REPORT_DEST_INVALID, NULL);
	expect_classify("example.com", "", NULL, DMARC_REPORT_DEST_INVALID, NULL);
	expect_classify("not a domain", "", "a@example.com", DMARC_REPORT_DEST_INVALID, NULL);
	for (int s = DMARC_REPORT_DEST_INTERNAL; s <= DMARC_REPORT_DEST_INVALID; s++)
		assert_string_not_equal(dmarc_report_dest_status_str((enum dmarc_report_dest_status)s), "?");
}

static struct dmarc_report_dests *run(struct fake_dns *z, const char *pd, const char *org, const char *const *addrs,
				      size_t n, unsigned want_questions)
{
	struct dmarc_report_dests *d = dmarc_report_dests_new(pd, org, addrs, n);
	assert_non_null(d);
	fake_dns_log_clear(z);
	unsigned asked = fake_dns_run(z, dmarc_report_dests_step, d);
	if (asked != want_questions)
		fail_msg("%u questions, want %u", asked, want_questions);
	/* done stays done */
	struct auth_query q;
	assert_int_equal(dmarc_report_dests_step(d, NULL, &q), AUTH_STEP_DONE);
	return d;
}

static void expect_status(const struct dmarc_report_dests *d, size_t i, enum dmarc_report_dest_status want)
{
	const char *why = NULL;
	enum dmarc_report_dest_status got = dmarc_report_dests_status(d, i, &why);
	if (got != want)
		fail_msg("destination %zu: %s (%s), want %s", i, dmarc_report_dest_status_str(got), why != NULL ? why : "",
			 dmarc_report_dest_status_str(want));
	assert_non_null(why);
}

static void expect_allowed(const struct dmarc_report_dests *d, const char *const *want)
{
	const char *const *got;
	size_t n = dmarc_report_dests_allowed(d, &got), w = 0;
	while (want[w] != NULL)
		w++;
	for (size_t i = 0; i < n || i < w; i++) {
		const char *g = i < n ? got[i] : "(none)", *x = i < w ? want[i] : "(none)";
		if (strcmp(g, x) != 0)
			fail_msg("allowed %zu: %s, want %s", i, g, x);
	}
}

#define LIST(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void test_verify(void **state)
{
	struct fake_dns *z = fake_dns_new();
	fake_dns_add(z, "example.com._report._dmarc.reports.example.net", DNS_RRTYPE_TXT, "v=DMARC1;");
	fake_dns_add(z, "example.com._report._dmarc.spf-only.example", DNS_RRTYPE_TXT, "v=spf1 -all");
	fake_dns_add(z, "example.com._report._dmarc.lenient.example", DNS_RRTYPE_TXT, "some text");
	fake_dns_add(z, "example.com._report._dmarc.lenient.example", DNS_RRTYPE_TXT, "v=DMARC1; foo=bar");
	fake_dns_add(z, "example.com._report._dmarc.lower.example", DNS_RRTYPE_TXT, "v=dmarc1");
	fake_dns_timeout(z, "example.com._report._dmarc.slow.example");
	const char *const addrs[] = {
		"dmarc@example.com",          /* internal */
		"agg@reports.example.net",    /* authorized */
		"x@noauth.example",           /* nothing there */
		"agg2@Reports.Example.NET",   /* same domain: no second question */
		"y@spf-only.example",         /* a TXT record that is not DMARC */
		"z@lenient.example",          /* one of two records is DMARC */
		"w@lower.example",            /* v=DMARC1 is case-sensitive (RFC 9989 §4.7) */
		"t@slow.example",             /* DNS fails */
	};
	struct dmarc_report_dests *d = run(z, "example.com", "example.com", addrs, 8, 6);
	assert_int_equal(dmarc_report_dests_count(d), 8);
	expect_status(d, 0, DMARC_REPORT_DEST_INTERNAL);
	expect_status(d, 1, DMARC_REPORT_DEST_VERIFIED);
	expect_status(d, 2, DMARC_REPORT_DEST_UNVERIFIED);
	expect_status(d, 3, DMARC_REPORT_DEST_VERIFIED);
	expect_status(d, 4, DMARC_REPORT_DEST_UNVERIFIED);
	expect_status(d, 5, DMARC_REPORT_DEST_VERIFIED);
	expect_status(d, 6, DMARC_REPORT_DEST_UNVERIFIED);
	expect_status(d, 7, DMARC_REPORT_DEST_TEMPFAIL);
	assert_true(dmarc_report_dests_tempfail(d));
	/* the domain part comes out lower-cased, the local part as it was */
	expect_allowed(d, LIST("dmarc@example.com", "agg@reports.example.net", "agg2@reports.example.net",
			       "z@lenient.example"));
	assert_string_equal(fake_dns_log(z, 0), "example.com._report._dmarc.reports.example.net TXT");
	dmarc_report_dests_free(d);

	/* only internal ones: no question at all */
	d = run(z, "example.com", "", LIST("a@example.com", "b@sub.example.com"), 2, 0);
	expect_allowed(d, LIST("a@example.com", "b@sub.example.com"));
	assert_false(dmarc_report_dests_tempfail(d));
	dmarc_report_dests_free(d);
	fake_dns_free(z);
}

/* Step 9: the authorizing record's rua replaces the destination, if it stays at the same host. */
static void test_override(void **state)
{
	struct fake_dns *z = fake_dns_new();
	fake_dns_add(z, "example.com._report._dmarc.same.example", DNS_RRTYPE_TXT,
		     "v=DMARC1; rua=mailto:inbox-7@same.example,mailto:Second@SAME.example,https://same.example/r");
	fake_dns_add(z, "example.com._report._dmarc.foreign.example", DNS_RRTYPE_TXT,
		     "v=DMARC1; rua=mailto:ok@foreign.example,mailto:victim@elsewhere.example");
	fake_dns_add(z, "example.com._report._dmarc.sub.example", DNS_RRTYPE_TXT, "v=DMARC1; rua=mailto:x@a.sub.example");
	fake_dns_add(z, "example.com._report._dmarc.nomailto.example", DNS_RRTYPE_TXT,
		     "v=DMARC1; rua=https://nomailto.example/r");
	const char *const addrs[] = {
		"old@same.example", "old@foreign.example", "old@sub.example", "keep@nomailto.example",
		"dmarc@example.com", "inbox-7@same.example",
	};
	struct dmarc_report_dests *d = run(z, "example.com", "example.com", addrs, 6, 4);
	expect_status(d, 0, DMARC_REPORT_DEST_VERIFIED);
	/* "MUST NOT generate a report to either the original or the override URI" */
	expect_status(d, 1, DMARC_REPORT_DEST_FOREIGN_OVERRIDE);
	/* the same host, not a host below it */
	expect_status(d, 2, DMARC_REPORT_DEST_FOREIGN_OVERRIDE);
	expect_status(d, 3, DMARC_REPORT_DEST_VERIFIED);
	expect_status(d, 4, DMARC_REPORT_DEST_INTERNAL);
	expect_status(d, 5, DMARC_REPORT_DEST_VERIFIED);
	expect_allowed(d, LIST("inbox-7@same.example", "Second@same.example", "keep@nomailto.example",
			       "dmarc@example.com"));
	assert_false(dmarc_report_dests_tempfail(d));
	dmarc_report_dests_free(d);
	fake_dns_free(z);
}

static void test_bounds(void **state)
{
	struct fake_dns *z = fake_dns_new();
	/* more than DMARC_REPORT_DEST_MAX addresses: the rest are not looked at */
	const char *addrs[DMARC_REPORT_DEST_MAX + 2];
	char buf[DMARC_REPORT_DEST_MAX + 2][64];
	for (size_t i = 0; i < DMARC_REPORT_DEST_MAX + 2; i++) {
		snprintf(buf[i], sizeof(buf[i]), "r%zu@example.com", i);
		addrs[i] = buf[i];
	}
	struct dmarc_report_dests *d = run(z, "example.com", NULL, addrs, DMARC_REPORT_DEST_MAX + 2, 0);
	assert_int_equal(dmarc_report_dests_count(d), DMARC_REPORT_DEST_MAX);
	const char *const *allowed;
	assert_int_equal(dmarc_report_dests_allowed(d, &allowed), DMARC_REPORT_DEST_MAX);
	dmarc_report_dests_free(d);
	/* duplicates count once; invalid ones are reported */
	d = run(z, "example.com", NULL, LIST("a@example.com", "a@EXAMPLE.com", "bad", "x@toolong-" "\xff" ".example"), 4,
		0);
	expect_status(d, 2, DMARC_REPORT_DEST_INVALID);
	expect_status(d, 3, DMARC_REPORT_DEST_INVALID);
	expect_allowed(d, LIST("a@example.com"));
	dmarc_report_dests_free(d);
	/* a policy domain that is not a host name gives no evaluator */
	assert_null(dmarc_report_dests_new("bad domain", NULL, addrs, 1));
	assert_null(dmarc_report_dests_new(NULL, NULL, addrs, 1));
	fake_dns_free(z);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_verify),
		cmocka_unit_test(test_override),
		cmocka_unit_test(test_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
