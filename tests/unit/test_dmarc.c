/* test_dmarc.c — DMARC evaluation scenarios over the fake zone: the tree walk's question order and
 * limits, record choice (author, Organizational Domain, PSD; multiple and non-DMARC records), p / sp /
 * np with the existence test, alignment short-cuts, t=y, DNS failures, question budgets, IDN, and the
 * message-level combination of several Author Domains. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/dmarc.h"
#include "fake_dns.h"
#include "test_util.h"

/* The question log must be exactly want (NULL-terminated). */
static void expect_log(const struct fake_dns *z, const char *const *want)
{
	size_t n = 0;
	while (want[n] != NULL)
		n++;
	for (size_t i = 0; i < n || i < fake_dns_log_count(z); i++) {
		const char *got = fake_dns_log(z, i), *w = i < n ? want[i] : NULL;
		if (got == NULL || w == NULL || strcmp(got, w) != 0)
			fail_msg("question %zu: \"%s\", want \"%s\"", i + 1, got != NULL ? got : "(none)", w != NULL ? w : "(none)");
	}
}

#define LOG(...) ((const char *const[]){ __VA_ARGS__, NULL })

static struct dmarc_outcome out;
static char reason[512];

/* Evaluates one Author Domain over z; the outcome is kept in out (reason copied). */
static const struct dmarc_outcome *run(struct fake_dns *z, const char *author, const char *spf,
				       const char *const *dkim, size_t ndkim)
{
	struct dmarc_input in = {
		.author_domain = author,
		.spf_pass = spf != NULL,
		.spf_domain = spf,
		.dkim_pass_domains = dkim,
		.dkim_pass_count = ndkim,
	};
	struct dmarc_eval *e = dmarc_eval_new(&in);
	assert_non_null(e);
	fake_dns_log_clear(z);
	unsigned asked = fake_dns_run(z, dmarc_eval_step, e);
	memcpy(&out, dmarc_eval_outcome(e), sizeof(out));
	snprintf(reason, sizeof(reason), "%s", out.reason);
	out.reason = reason;
	dmarc_eval_free(e);
	assert_int_equal(asked, out.queries);
	assert_true(out.queries <= DMARC_QUERIES_MAX);
	assert_true(reason[0] != '\0');
	return &out;
}

static void txt(struct fake_dns *z, const char *name, const char *text)
{
	fake_dns_add(z, name, DNS_RRTYPE_TXT, text);
}

static void expect(const struct dmarc_outcome *o, enum dmarc_result r, enum dmarc_policy policy,
		   enum dmarc_policy disposition)
{
	if (o->result != r || o->policy != policy || o->disposition != disposition)
		fail_msg("%s policy=%s disposition=%s (%s); want %s %s %s", dmarc_result_str(o->result),
			 dmarc_policy_str(o->policy), dmarc_policy_str(o->disposition), o->reason, dmarc_result_str(r),
			 dmarc_policy_str(policy), dmarc_policy_str(disposition));
}

static void test_alignment(void **state)
{
	struct fake_dns *z = fake_dns_new();
	txt(z, "_dmarc.example.com", "v=DMARC1; p=reject");
	txt(z, "_dmarc.strict.example", "v=DMARC1; p=reject; aspf=s; adkim=S");
	fake_dns_add(z, "mail.example.com", DNS_RRTYPE_A, "192.0.2.1");

	/* every identifier is the Author Domain: one question (§4.10.2, no walk) */
	const char *d1[] = { "Example.COM" };
	expect(run(z, "example.com", "example.com", d1, 1), DMARC_RESULT_PASS, DMARC_POLICY_REJECT, DMARC_POLICY_NONE);
	assert_true(out.spf_aligned && out.dkim_aligned);
	assert_string_equal(out.dkim_aligned_domain, "example.com");
	assert_string_equal(out.org_domain, "");
	expect_log(z, LOG("_dmarc.example.com TXT"));

	/* relaxed: the same Organizational Domain */
	expect(run(z, "example.com", "mail.example.com", NULL, 0), DMARC_RESULT_PASS, DMARC_POLICY_REJECT, DMARC_POLICY_NONE);
	assert_string_equal(out.org_domain, "example.com");
	expect_log(z, LOG("_dmarc.example.com TXT", "_dmarc.com TXT", "_dmarc.mail.example.com TXT"));
	/* an identifier outside the Organizational Domain needs no walk of its own */
	expect(run(z, "example.com", "other.com", NULL, 0), DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, DMARC_POLICY_REJECT);
	expect_log(z, LOG("_dmarc.example.com TXT", "_dmarc.com TXT"));
	/* ... and one under another top-level name not even the author's */
	const char *third[] = { "mailer.example.net" };
	expect(run(z, "example.com", "bounces.example.org", third, 1), DMARC_RESULT_FAIL, DMARC_POLICY_REJECT,
	       DMARC_POLICY_REJECT);
	expect_log(z, LOG("_dmarc.example.com TXT"));
	/* the Organizational Domain itself aligns with its subdomains */
	expect(run(z, "mail.example.com", "example.com", NULL, 0), DMARC_RESULT_PASS, DMARC_POLICY_REJECT, DMARC_POLICY_NONE);
	assert_string_equal(out.policy_domain, "example.com");
	assert_int_equal(out.source, DMARC_SOURCE_ORG);
	expect_log(z, LOG("_dmarc.mail.example.com TXT", "_dmarc.example.com TXT", "_dmarc.com TXT"));

	/* strict: equal only, and no walk beyond the author's record */
	const char *d2[] = { "strict.example" };
	expect(run(z, "strict.example", "mail.strict.example", d2, 1), DMARC_RESULT_PASS, DMARC_POLICY_REJECT,
	       DMARC_POLICY_NONE);
	assert_false(out.spf_aligned);
	assert_true(out.dkim_aligned);
	expect_log(z, LOG("_dmarc.strict.example TXT"));
	const char *d3[] = { "sub.strict.example" };
	expect(run(z, "strict.example", "STRICT.example", d3, 1), DMARC_RESULT_PASS, DMARC_POLICY_REJECT, DMARC_POLICY_NONE);
	assert_true(out.spf_aligned);
	assert_false(out.dkim_aligned);
	expect(run(z, "strict.example", "mail.strict.example", d3, 1), DMARC_RESULT_FAIL, DMARC_POLICY_REJECT,
	       DMARC_POLICY_REJECT);
	expect_log(z, LOG("_dmarc.strict.example TXT"));

	/* no SPF pass, no DKIM: fail */
	expect(run(z, "example.com", NULL, NULL, 0), DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, DMARC_POLICY_REJECT);
	expect_log(z, LOG("_dmarc.example.com TXT"));
	/* identifiers that are not domain names are left out */
	const char *bad[] = { "exa mple.com", "", NULL };
	expect(run(z, "example.com", "-x.example.com", bad, 3), DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, DMARC_POLICY_REJECT);

	/* several DKIM domains: the ones decided without DNS first, then walks, stop at the first aligned */
	const char *d4[] = { "other.example", "a.example.com", "b.example.com" };
	expect(run(z, "example.com", NULL, d4, 3), DMARC_RESULT_PASS, DMARC_POLICY_REJECT, DMARC_POLICY_NONE);
	assert_string_equal(out.dkim_aligned_domain, "a.example.com");
	expect_log(z, LOG("_dmarc.example.com TXT", "_dmarc.com TXT", "_dmarc.a.example.com TXT"));
	const char *d5[] = { "a.example.com", "example.com" };
	expect(run(z, "example.com", NULL, d5, 2), DMARC_RESULT_PASS, DMARC_POLICY_REJECT, DMARC_POLICY_NONE);
	assert_string_equal(out.dkim_aligned_domain, "example.com");
	expect_log(z, LOG("_dmarc.example.com TXT", "_dmarc.com TXT"));
	fake_dns_free(z);
}

static void test_relaxed_walks(void **state)
{
	struct fake_dns *z = fake_dns_new();
	/* B.4.1 as one message: the DKIM walk reuses _dmarc.example.com and _dmarc.com */
	txt(z, "_dmarc.example.com", "v=DMARC1; p=none");
	txt(z, "_dmarc.signing.example.com", "v=DMARC1; p=none");
	const char *d[] = { "signing.example.com" };
	expect(run(z, "example.com", "example.com", d, 1), DMARC_RESULT_PASS, DMARC_POLICY_NONE, DMARC_POLICY_NONE);
	assert_true(out.spf_aligned && out.dkim_aligned);
	expect_log(z, LOG("_dmarc.example.com TXT", "_dmarc.com TXT", "_dmarc.signing.example.com TXT"));
	fake_dns_free(z);

	/* psd=n below the apex: its own Organizational Domain (§5.1.8), so d=example.com does not align */
	z = fake_dns_new();
	txt(z, "_dmarc.example.com", "v=DMARC1; p=none");
	txt(z, "_dmarc.dept.example.com", "v=DMARC1; p=reject; psd=n");
	const char *apex[] = { "example.com" };
	expect(run(z, "a.dept.example.com", NULL, apex, 1), DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, DMARC_POLICY_REJECT);
	assert_string_equal(out.org_domain, "dept.example.com");
	assert_string_equal(out.policy_domain, "dept.example.com");
	/* sp and np are both p here: the author's existence does not matter, so it is not asked */
	expect_log(z, LOG("_dmarc.a.dept.example.com TXT", "_dmarc.dept.example.com TXT"));
	const char *dept[] = { "x.dept.example.com" };
	expect(run(z, "a.dept.example.com", NULL, dept, 1), DMARC_RESULT_PASS, DMARC_POLICY_REJECT, DMARC_POLICY_NONE);
	expect_log(z, LOG("_dmarc.a.dept.example.com TXT", "_dmarc.dept.example.com TXT", "_dmarc.x.dept.example.com TXT"));
	/* an identifier below with psd=n of its own is another organization */
	txt(z, "_dmarc.team.dept.example.com", "v=DMARC1; p=none; psd=n");
	const char *team[] = { "team.dept.example.com" };
	expect(run(z, "dept.example.com", "mail.team.dept.example.com", team, 1), DMARC_RESULT_FAIL, DMARC_POLICY_REJECT,
	       DMARC_POLICY_REJECT);
	fake_dns_free(z);
}

static void test_discovery(void **state)
{
	struct fake_dns *z = fake_dns_new();
	/* no record anywhere: none, after the whole walk */
	expect(run(z, "a.mail.example.com", "a.mail.example.com", NULL, 0), DMARC_RESULT_NONE, DMARC_POLICY_NONE,
	       DMARC_POLICY_NONE);
	assert_false(out.has_record);
	expect_log(z, LOG("_dmarc.a.mail.example.com TXT", "_dmarc.mail.example.com TXT", "_dmarc.example.com TXT",
			  "_dmarc.com TXT"));

	/* TXT records at _dmarc that are not DMARC records are passed over; the walk goes on */
	txt(z, "_dmarc.a.mail.example.com", "v=spf1 -all");
	txt(z, "_dmarc.a.mail.example.com", "v=dmarc1; p=none");
	txt(z, "_dmarc.a.mail.example.com", "v=DMARC1x; p=none");
	txt(z, "_dmarc.example.com", "v = DMARC1 ; p = Reject");
	expect(run(z, "a.mail.example.com", NULL, NULL, 0), DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, DMARC_POLICY_REJECT);
	assert_string_equal(out.policy_domain, "example.com");
	assert_int_equal(out.source, DMARC_SOURCE_ORG);

	/* multiple DMARC records at one name: all discarded (§4.10 step 2) */
	txt(z, "_dmarc.mail.example.com", "v=DMARC1; p=none");
	txt(z, "_dmarc.mail.example.com", "v=DMARC1; p=quarantine");
	expect(run(z, "mail.example.com", NULL, NULL, 0), DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, DMARC_POLICY_REJECT);
	assert_string_equal(out.policy_domain, "example.com");
	txt(z, "_dmarc.example.com", "v=DMARC1; p=none");
	expect(run(z, "mail.example.com", NULL, NULL, 0), DMARC_RESULT_NONE, DMARC_POLICY_NONE, DMARC_POLICY_NONE);
	expect(run(z, "example.com", NULL, NULL, 0), DMARC_RESULT_NONE, DMARC_POLICY_NONE, DMARC_POLICY_NONE);
	fake_dns_free(z);

	/* a record split in the middle of a tag, joined (§4.5) */
	z = fake_dns_new();
	txt(z, "_dmarc.example.org", "v=DMARC1; p=rej" "ect; rua=mailto:d@exam" "ple.org");
	expect(run(z, "example.org", NULL, NULL, 0), DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, DMARC_POLICY_REJECT);
	assert_true(out.has_record);
	assert_int_equal(out.record.rua_count, 1);
	assert_string_equal(dmarc_uri_addr(&out.record, &out.record.rua[0]), "d@example.org");
	fake_dns_free(z);
}

static void test_policy_choice(void **state)
{
	struct fake_dns *z = fake_dns_new();
	txt(z, "_dmarc.example.com", "v=DMARC1; p=none; sp=quarantine; np=reject");
	fake_dns_add(z, "www.example.com", DNS_RRTYPE_A, "192.0.2.1");
	fake_dns_add(z, "mx.example.com", DNS_RRTYPE_MX, "10 mail.example.com");
	fake_dns_add(z, "_report._dmarc.ent.example.com", DNS_RRTYPE_TXT, "v=DMARC1;");
	fake_dns_add(z, "alias.example.com", DNS_RRTYPE_CNAME, "gone.example.net");

	/* p for the domain itself */
	expect(run(z, "example.com", NULL, NULL, 0), DMARC_RESULT_FAIL, DMARC_POLICY_NONE, DMARC_POLICY_NONE);
	assert_int_equal(out.source, DMARC_SOURCE_DOMAIN);
	/* np for a subdomain that does not exist (NXDOMAIN) */
	expect(run(z, "nx.example.com", NULL, NULL, 0), DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, DMARC_POLICY_REJECT);
	expect_log(z, LOG("_dmarc.nx.example.com TXT", "_dmarc.example.com TXT", "_dmarc.com TXT", "nx.example.com CNAME"));
	/* sp for one that exists; NODATA counts as existing (RFC 9989 Appendix A.4) */
	expect(run(z, "www.example.com", NULL, NULL, 0), DMARC_RESULT_FAIL, DMARC_POLICY_QUARANTINE, DMARC_POLICY_QUARANTINE);
	expect(run(z, "mx.example.com", NULL, NULL, 0), DMARC_RESULT_FAIL, DMARC_POLICY_QUARANTINE, DMARC_POLICY_QUARANTINE);
	/* a CNAME to nowhere is still a name that exists */
	expect(run(z, "alias.example.com", NULL, NULL, 0), DMARC_RESULT_FAIL, DMARC_POLICY_QUARANTINE,
	       DMARC_POLICY_QUARANTINE);
	/* _dmarc.<author> answering NODATA proves the author exists: no extra question */
	expect(run(z, "ent.example.com", NULL, NULL, 0), DMARC_RESULT_FAIL, DMARC_POLICY_QUARANTINE, DMARC_POLICY_QUARANTINE);
	expect_log(z, LOG("_dmarc.ent.example.com TXT", "_dmarc.example.com TXT", "_dmarc.com TXT"));
	/* a subdomain's existence test failing: the policy is unknown → temperror; with a pass it does not matter */
	fake_dns_timeout(z, "slow.example.com");
	expect(run(z, "slow.example.com", NULL, NULL, 0), DMARC_RESULT_TEMPERROR, DMARC_POLICY_QUARANTINE, DMARC_POLICY_NONE);
	const char *d[] = { "example.com" };
	expect(run(z, "slow.example.com", NULL, d, 1), DMARC_RESULT_PASS, DMARC_POLICY_QUARANTINE, DMARC_POLICY_NONE);
	fake_dns_free(z);

	/* sp and np agreeing: no existence question */
	z = fake_dns_new();
	txt(z, "_dmarc.example.com", "v=DMARC1; p=reject");
	expect(run(z, "nx.example.com", NULL, NULL, 0), DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, DMARC_POLICY_REJECT);
	expect_log(z, LOG("_dmarc.nx.example.com TXT", "_dmarc.example.com TXT", "_dmarc.com TXT"));
	fake_dns_free(z);
}

static void test_psd(void **state)
{
	struct fake_dns *z = fake_dns_new();
	txt(z, "_dmarc.bank.example", "v=DMARC1; p=reject; np=reject; sp=quarantine; psd=y");
	txt(z, "_dmarc.giant.bank.example", "v=DMARC1; p=none");
	fake_dns_add(z, "small.bank.example", DNS_RRTYPE_A, "192.0.2.7");
	/* the Organizational Domain's own record wins over the PSD's (§4.10.1 note) */
	expect(run(z, "mail.giant.bank.example", NULL, NULL, 0), DMARC_RESULT_FAIL, DMARC_POLICY_NONE, DMARC_POLICY_NONE);
	assert_string_equal(out.policy_domain, "giant.bank.example");
	assert_string_equal(out.org_domain, "giant.bank.example");
	/* without one, the PSD's record applies (sp / np) */
	expect(run(z, "small.bank.example", NULL, NULL, 0), DMARC_RESULT_FAIL, DMARC_POLICY_QUARANTINE,
	       DMARC_POLICY_QUARANTINE);
	assert_int_equal(out.source, DMARC_SOURCE_PSD);
	assert_string_equal(out.policy_domain, "bank.example");
	assert_string_equal(out.org_domain, "small.bank.example");
	expect(run(z, "x.nothere.bank.example", NULL, NULL, 0), DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, DMARC_POLICY_REJECT);
	assert_string_equal(out.org_domain, "nothere.bank.example");
	/* B.4.3: relaxed across two registrants under one PSD does not align */
	const char *d[] = { "mail.mega.bank.example" };
	expect(run(z, "giant.bank.example", "mail.giant.bank.example", d, 1), DMARC_RESULT_PASS, DMARC_POLICY_NONE,
	       DMARC_POLICY_NONE);
	assert_true(out.spf_aligned);
	assert_false(out.dkim_aligned);
	/* the PSD itself as Author Domain: p of its own record; psd=y at the start is not step 2's, so
	 * step 3 makes it its own Organizational Domain */
	expect(run(z, "bank.example", "mail.bank.example", NULL, 0), DMARC_RESULT_FAIL, DMARC_POLICY_REJECT,
	       DMARC_POLICY_REJECT);
	assert_string_equal(out.org_domain, "bank.example");
	expect_log(z, LOG("_dmarc.bank.example TXT", "_dmarc.mail.bank.example TXT"));
	fake_dns_free(z);
}

static void test_testing_and_fallbacks(void **state)
{
	struct fake_dns *z = fake_dns_new();
	txt(z, "_dmarc.r.example", "v=DMARC1; p=reject; t=y");
	txt(z, "_dmarc.q.example", "v=DMARC1; p=quarantine; t=y");
	txt(z, "_dmarc.n.example", "v=DMARC1; p=none; t=y");
	txt(z, "_dmarc.pct.example", "v=DMARC1; p=reject; pct=0");
	txt(z, "_dmarc.rua.example", "v=DMARC1; rua=mailto:agg@rua.example");
	txt(z, "_dmarc.norua.example", "v=DMARC1; sp=reject");
	txt(z, "_dmarc.empty.example", "v=DMARC1; p=quarantine");
	txt(z, "_dmarc.sub.empty.example", "v=DMARC1; adkim=s");
	/* §4.7 t=y: one level down */
	expect(run(z, "r.example", NULL, NULL, 0), DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, DMARC_POLICY_QUARANTINE);
	assert_true(out.testing);
	expect(run(z, "q.example", NULL, NULL, 0), DMARC_RESULT_FAIL, DMARC_POLICY_QUARANTINE, DMARC_POLICY_NONE);
	expect(run(z, "n.example", NULL, NULL, 0), DMARC_RESULT_FAIL, DMARC_POLICY_NONE, DMARC_POLICY_NONE);
	/* pct is not applied, and pct=0 is not t=y */
	expect(run(z, "pct.example", NULL, NULL, 0), DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, DMARC_POLICY_REJECT);
	assert_false(out.testing);
	assert_int_equal(out.record.pct, 0);
	/* §4.10.1: no p but a valid rua → p=none; neither → no DMARC processing */
	expect(run(z, "rua.example", NULL, NULL, 0), DMARC_RESULT_FAIL, DMARC_POLICY_NONE, DMARC_POLICY_NONE);
	expect(run(z, "norua.example", NULL, NULL, 0), DMARC_RESULT_NONE, DMARC_POLICY_NONE, DMARC_POLICY_NONE);
	assert_true(out.has_record);
	expect_log(z, LOG("_dmarc.norua.example TXT"));
	/* an unusable record at the author is the applicable one: its parent's is not used instead */
	expect(run(z, "sub.empty.example", NULL, NULL, 0), DMARC_RESULT_NONE, DMARC_POLICY_NONE, DMARC_POLICY_NONE);
	assert_string_equal(out.policy_domain, "sub.empty.example");
	fake_dns_free(z);
}

static void test_dns_failures(void **state)
{
	struct fake_dns *z = fake_dns_new();
	txt(z, "_dmarc.example.com", "v=DMARC1; p=reject");
	fake_dns_timeout(z, "_dmarc.example.com");
	fake_dns_timeout(z, "_dmarc.com");
	fake_dns_timeout(z, "_dmarc.slow.example.net");
	/* the policy cannot be found: temperror */
	expect(run(z, "slow.example.net", NULL, NULL, 0), DMARC_RESULT_TEMPERROR, DMARC_POLICY_NONE, DMARC_POLICY_NONE);
	expect_log(z, LOG("_dmarc.slow.example.net TXT"));
	/* the record is known but the Organizational Domain is not */
	expect(run(z, "example.com", "mail.example.com", NULL, 0), DMARC_RESULT_TEMPERROR, DMARC_POLICY_REJECT,
	       DMARC_POLICY_NONE);
	assert_true(strstr(out.reason, "_dmarc.com") != NULL);
	/* ... unless an identifier aligns without it */
	const char *d[] = { "example.com" };
	expect(run(z, "example.com", "mail.example.com", d, 1), DMARC_RESULT_PASS, DMARC_POLICY_REJECT, DMARC_POLICY_NONE);
	/* a failing walk of a subdomain under the Organizational Domain: temperror */
	fake_dns_free(z);
	z = fake_dns_new();
	txt(z, "_dmarc.example.com", "v=DMARC1; p=reject");
	fake_dns_timeout(z, "_dmarc.mail.example.com");
	expect(run(z, "example.com", "mail.example.com", NULL, 0), DMARC_RESULT_TEMPERROR, DMARC_POLICY_REJECT,
	       DMARC_POLICY_NONE);
	const char *d2[] = { "example.org" };
	expect(run(z, "example.com", "mail.example.com", d2, 1), DMARC_RESULT_TEMPERROR, DMARC_POLICY_REJECT,
	       DMARC_POLICY_NONE);
	fake_dns_free(z);
}

/* Answers every question with status s (BOGUS, which the fake zone does not make). */
static void test_bogus(void **state)
{
	struct dmarc_input in = { .author_domain = "example.com" };
	struct dmarc_eval *e = dmarc_eval_new(&in);
	struct auth_query q;
	struct dns_result res = { .status = DNS_STATUS_BOGUS, .rrtype = DNS_RRTYPE_TXT, .why = "signature expired" };
	assert_int_equal(dmarc_eval_step(e, NULL, &q), AUTH_STEP_QUERY);
	assert_string_equal(q.name, "_dmarc.example.com");
	assert_int_equal(q.rrtype, DNS_RRTYPE_TXT);
	assert_int_equal(dmarc_eval_step(e, &res, &q), AUTH_STEP_DONE);
	const struct dmarc_outcome *o = dmarc_eval_outcome(e);
	assert_int_equal(o->result, DMARC_RESULT_TEMPERROR);
	assert_true(strstr(o->reason, "signature expired") != NULL);
	/* stepping a finished evaluation is harmless */
	assert_int_equal(dmarc_eval_step(e, &res, &q), AUTH_STEP_DONE);
	dmarc_eval_free(e);
}

static void test_limits(void **state)
{
	struct fake_dns *z = fake_dns_new();
	/* more than 8 labels: at most 8 questions, 7 labels after the first (§4.10) */
	expect(run(z, "a.b.c.d.e.f.g.h.i.j.mail.example.com", NULL, NULL, 0), DMARC_RESULT_NONE, DMARC_POLICY_NONE,
	       DMARC_POLICY_NONE);
	expect_log(z, LOG("_dmarc.a.b.c.d.e.f.g.h.i.j.mail.example.com TXT", "_dmarc.g.h.i.j.mail.example.com TXT",
			  "_dmarc.h.i.j.mail.example.com TXT", "_dmarc.i.j.mail.example.com TXT", "_dmarc.j.mail.example.com TXT",
			  "_dmarc.mail.example.com TXT", "_dmarc.example.com TXT", "_dmarc.com TXT"));
	/* exactly 8 labels: the parent is next, as for fewer */
	expect(run(z, "a.b.c.d.e.f.example.com", NULL, NULL, 0), DMARC_RESULT_NONE, DMARC_POLICY_NONE, DMARC_POLICY_NONE);
	assert_int_equal(fake_dns_log_count(z), 8);
	assert_string_equal(fake_dns_log(z, 1), "_dmarc.b.c.d.e.f.example.com TXT");

	/* a name too long to be asked with "_dmarc." in front is skipped, not sent */
	char longname[DNS_HOST_SIZE];
	memset(longname, 'a', 250);
	longname[62] = longname[125] = longname[188] = '.';
	longname[250] = '\0';
	assert_int_equal(strlen(longname), 250);
	expect(run(z, longname, NULL, NULL, 0), DMARC_RESULT_NONE, DMARC_POLICY_NONE, DMARC_POLICY_NONE);
	assert_int_equal(fake_dns_log_count(z), 3);
	for (size_t i = 0; i < fake_dns_log_count(z); i++)
		assert_true(strlen(fake_dns_log(z, i)) <= DNS_HOST_SIZE - 1 + 4);

	/* the per-domain question budget: eight deep DKIM domains below the author's Organizational
	 * Domain, each its own organization (psd=n six names up), so that each walk costs 6 questions
	 * and aligns nowhere */
	txt(z, "_dmarc.example.com", "v=DMARC1; p=reject");
	const char *deep[DMARC_DKIM_MAX];
	char names[DMARC_DKIM_MAX][128];
	for (int i = 0; i < DMARC_DKIM_MAX; i++) {
		char rec[64];
		snprintf(names[i], sizeof(names[i]), "a.b.c.d.e.f.g.k%d.example.com", i);
		snprintf(rec, sizeof(rec), "_dmarc.k%d.example.com", i);
		txt(z, rec, "v=DMARC1; p=none; psd=n");
		deep[i] = names[i];
	}
	expect(run(z, "example.com", NULL, deep, DMARC_DKIM_MAX), DMARC_RESULT_PERMERROR, DMARC_POLICY_REJECT,
	       DMARC_POLICY_NONE);
	assert_int_equal(out.queries, DMARC_QUERIES_MAX);
	fake_dns_free(z);
}

static void test_names(void **state)
{
	struct fake_dns *z = fake_dns_new();
	/* RFC 9989 §5.3.1: U-labels become A-labels before any question */
	txt(z, "_dmarc.xn--bcher-kva.example", "v=DMARC1; p=quarantine");
	const char *d[] = { "XN--BCHER-KVA.example" };
	expect(run(z, "B\xc3\xbc" "cher.example", NULL, d, 1), DMARC_RESULT_PASS, DMARC_POLICY_QUARANTINE, DMARC_POLICY_NONE);
	expect_log(z, LOG("_dmarc.xn--bcher-kva.example TXT"));
	assert_string_equal(out.author_domain, "xn--bcher-kva.example");

	/* header.from is the Author Domain, not the Organizational or policy domain */
	txt(z, "_dmarc.example.com", "v=DMARC1; p=reject");
	expect(run(z, "News.Example.com.", NULL, NULL, 0), DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, DMARC_POLICY_REJECT);
	assert_string_equal(out.author_domain, "news.example.com");
	assert_string_equal(out.policy_domain, "example.com");
	assert_string_equal(out.org_domain, "example.com");

	/* an Author Domain that is not a domain name: permerror, no DNS */
	const char *bad[] = { "", "a..b", "exa_mple.com", "[192.0.2.1]", "x\xff.example" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		expect(run(z, bad[i], NULL, NULL, 0), DMARC_RESULT_PERMERROR, DMARC_POLICY_NONE, DMARC_POLICY_NONE);
		assert_int_equal(fake_dns_log_count(z), 0);
	}
	struct dmarc_input in = { .author_domain = NULL };
	struct dmarc_eval *e = dmarc_eval_new(&in);
	assert_int_equal(fake_dns_run(z, dmarc_eval_step, e), 0);
	assert_int_equal(dmarc_eval_outcome(e)->result, DMARC_RESULT_PERMERROR);
	dmarc_eval_free(e);
	fake_dns_free(z);
}

static void test_walk_alone(void **state)
{
	struct fake_dns *z = fake_dns_new();
	txt(z, "_dmarc.example.com", "v=DMARC1; p=none; psd=n; pct=20");
	txt(z, "_dmarc.mail.example.com", "google-site-verification=x");
	txt(z, "_dmarc.mail.example.com", "v=DMARC1; p=none");
	txt(z, "_dmarc.mail.example.com", "v=DMARC1; p=reject");
	struct dmarc_walk *w = dmarc_walk_new("A.Mail.Example.COM");
	assert_non_null(w);
	assert_int_equal(fake_dns_run(z, dmarc_walk_step, w), 3);
	const struct dmarc_walk_result *r = dmarc_walk_result(w);
	assert_int_equal(r->status, DMARC_WALK_OK);
	assert_string_equal(r->domain, "a.mail.example.com");
	assert_int_equal(r->count, 3);
	assert_int_equal(r->nodes[0]->found, DMARC_FOUND_NONE);
	assert_int_equal(r->nodes[0]->status, DNS_STATUS_NXDOMAIN);
	assert_int_equal(r->nodes[1]->found, DMARC_FOUND_MULTIPLE);
	assert_int_equal(r->nodes[1]->other_txt, 1);
	assert_null(r->nodes[1]->record);
	assert_int_equal(r->nodes[2]->found, DMARC_FOUND_RECORD);
	assert_true((r->nodes[2]->record->warnings & DMARC_WARN_PCT) != 0);
	assert_int_equal(r->org_rule, DMARC_ORG_PSD_N);
	assert_string_equal(r->org_domain, "example.com");
	assert_int_equal(r->source, DMARC_SOURCE_ORG);
	assert_ptr_equal(r->policy, r->nodes[2]);
	assert_true(dmarc_walk_done(w));
	dmarc_walk_free(w);

	/* a bad start and a failing name */
	w = dmarc_walk_new("not a domain");
	assert_int_equal(fake_dns_run(z, dmarc_walk_step, w), 0);
	assert_int_equal(dmarc_walk_result(w)->status, DMARC_WALK_BAD_DOMAIN);
	assert_non_null(dmarc_walk_result(w)->why);
	dmarc_walk_free(w);
	fake_dns_timeout(z, "_dmarc.example.net");
	w = dmarc_walk_new("www.example.net");
	assert_int_equal(fake_dns_run(z, dmarc_walk_step, w), 2);
	assert_int_equal(dmarc_walk_result(w)->status, DMARC_WALK_TEMPFAIL);
	assert_int_equal(dmarc_walk_result(w)->org_rule, DMARC_ORG_UNKNOWN);
	assert_int_equal(dmarc_walk_result(w)->nodes[1]->found, DMARC_FOUND_TEMPFAIL);
	dmarc_walk_free(w);

	/* a cache shared by two walks: nothing asked twice */
	struct dmarc_cache *c = dmarc_cache_new();
	fake_dns_log_clear(z);
	w = dmarc_walk_new_cached("a.mail.example.com", c);
	fake_dns_run(z, dmarc_walk_step, w);
	dmarc_walk_free(w);
	w = dmarc_walk_new_cached("b.mail.example.com", c);
	fake_dns_run(z, dmarc_walk_step, w);
	assert_string_equal(dmarc_walk_result(w)->org_domain, "example.com");
	dmarc_walk_free(w);
	assert_non_null(dmarc_cache_find(c, "mail.example.com"));
	dmarc_cache_free(c);
	expect_log(z, LOG("_dmarc.a.mail.example.com TXT", "_dmarc.mail.example.com TXT", "_dmarc.example.com TXT",
			  "_dmarc.b.mail.example.com TXT"));

	assert_true(dmarc_domain_within("a.example.com", "example.com"));
	assert_true(dmarc_domain_within("example.com", "example.com"));
	assert_false(dmarc_domain_within("aexample.com", "example.com"));
	assert_false(dmarc_domain_within("example.com", "a.example.com"));
	fake_dns_free(z);
}

/* ---- whole messages ---- */

static struct dmarc_msg_outcome mout;

static const struct dmarc_msg_outcome *run_msg(struct fake_dns *z, const char *msg, const char *spf,
					       const char *const *dkim, size_t ndkim)
{
	struct dmarc_from from;
	const char *err;
	struct dmarc_msg_input in = {
		.from = &from,
		.spf_pass = spf != NULL,
		.spf_domain = spf,
		.dkim_pass_domains = dkim,
		.dkim_pass_count = ndkim,
	};
	in.from_error = dmarc_from_parse(msg, strlen(msg), &from, &err);
	struct dmarc_msg *m = dmarc_msg_new(&in);
	assert_non_null(m);
	fake_dns_log_clear(z);
	unsigned asked = fake_dns_run(z, dmarc_msg_step, m);
	memcpy(&mout, dmarc_msg_outcome(m), sizeof(mout));
	assert_int_equal(asked, mout.queries);
	assert_true(mout.queries <= DMARC_MSG_QUERIES_MAX);
	assert_non_null(mout.reason);
	snprintf(reason, sizeof(reason), "%s", mout.reason);
	mout.reason = reason;
	/* the decisive outcome's text, before it goes */
	static struct dmarc_outcome decisive;
	if (mout.decisive != NULL) {
		memcpy(&decisive, mout.decisive, sizeof(decisive));
		mout.decisive = &decisive;
	}
	for (size_t i = 0; i < mout.count; i++)
		mout.outcomes[i] = NULL;
	dmarc_msg_free(m);
	return &mout;
}

static void test_messages(void **state)
{
	struct fake_dns *z = fake_dns_new();
	txt(z, "_dmarc.good.example", "v=DMARC1; p=reject");
	txt(z, "_dmarc.bank.example", "v=DMARC1; p=reject");
	txt(z, "_dmarc.soft.example", "v=DMARC1; p=quarantine");
	const char *d[] = { "good.example" };

	run_msg(z, "From: Good <a@good.example>\r\n\r\nbody", NULL, d, 1);
	assert_int_equal(mout.result, DMARC_RESULT_PASS);
	assert_int_equal(mout.count, 1);
	assert_int_equal(mout.from_fields, 1);
	assert_string_equal(mout.decisive->author_domain, "good.example");
	/* several domains: the strictest failing policy (§11.5) */
	run_msg(z, "From: a@good.example, b@soft.example, c@bank.example\r\n\r\n", NULL, d, 1);
	assert_int_equal(mout.result, DMARC_RESULT_FAIL);
	assert_int_equal(mout.disposition, DMARC_POLICY_REJECT);
	assert_string_equal(mout.decisive->author_domain, "bank.example");
	assert_true(strstr(mout.reason, "3 Author Domains") != NULL);
	run_msg(z, "From: a@good.example, b@none.example\r\n\r\n", NULL, d, 1);
	assert_int_equal(mout.result, DMARC_RESULT_PASS);
	/* a second From field cannot take a failing domain out of view */
	run_msg(z, "From: a@good.example\r\nFrom: ceo@bank.example\r\n\r\n", NULL, d, 1);
	assert_int_equal(mout.result, DMARC_RESULT_FAIL);
	assert_int_equal(mout.from_fields, 2);
	assert_true(strstr(mout.reason, "2 From fields") != NULL);
	/* one name asked once for the whole message */
	run_msg(z, "From: a@x.good.example, b@y.good.example\r\n\r\n", "good.example", NULL, 0);
	assert_int_equal(mout.result, DMARC_RESULT_PASS);
	expect_log(z, LOG("_dmarc.x.good.example TXT", "_dmarc.good.example TXT", "_dmarc.example TXT",
			  "_dmarc.y.good.example TXT"));
	/* temperror beats pass but not fail */
	fake_dns_timeout(z, "_dmarc.slow.example");
	run_msg(z, "From: a@good.example, b@slow.example\r\n\r\n", NULL, d, 1);
	assert_int_equal(mout.result, DMARC_RESULT_TEMPERROR);
	run_msg(z, "From: a@bank.example, b@slow.example\r\n\r\n", NULL, d, 1);
	assert_int_equal(mout.result, DMARC_RESULT_FAIL);
	/* more domains than evaluated: incomplete unless one fails */
	run_msg(z, "From: a@good.example, b@d2.example, c@d3.example, d@d4.example, e@d5.example\r\n\r\n", NULL, d, 1);
	assert_int_equal(mout.result, DMARC_RESULT_PERMERROR);
	assert_int_equal(mout.count, DMARC_FROM_DOMAINS_MAX);
	assert_null(mout.decisive);
	run_msg(z, "From: a@bank.example, b@d2.example, c@d3.example, d@d4.example, e@d5.example\r\n\r\n", NULL, d, 1);
	assert_int_equal(mout.result, DMARC_RESULT_FAIL);
	/* no Author Domain: permerror without DNS */
	const char *none[] = { "Subject: x\r\n\r\n", "From: undisclosed:;\r\n\r\n", "From: Doe, John <a@good.example>\r\n\r\n",
			       "From: a@[192.0.2.1]\r\n\r\n" };
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
		run_msg(z, none[i], NULL, d, 1);
		assert_int_equal(mout.result, DMARC_RESULT_PERMERROR);
		assert_int_equal(mout.queries, 0);
		assert_int_equal(mout.count, 0);
	}
	/* nothing applies: none */
	run_msg(z, "From: a@nowhere.example\r\n\r\n", NULL, NULL, 0);
	assert_int_equal(mout.result, DMARC_RESULT_NONE);
	assert_string_equal(mout.decisive->author_domain, "nowhere.example");
	fake_dns_free(z);

	/* the message's question budget is shared: four deep domains, 8 questions each */
	z = fake_dns_new();
	run_msg(z, "From: a@a.b.c.d.e.f.g.h.one.example, a@a.b.c.d.e.f.g.h.two.example, "
		   "a@a.b.c.d.e.f.g.h.three.example, a@a.b.c.d.e.f.g.h.four.example\r\n\r\n",
		NULL, NULL, 0);
	assert_int_equal(mout.result, DMARC_RESULT_NONE);
	assert_int_equal(mout.queries, 29); /* _dmarc.example is asked once */
	fake_dns_free(z);

	struct dmarc_msg_input in = { .from = NULL };
	struct dmarc_msg *m = dmarc_msg_new(&in);
	assert_int_equal(dmarc_msg_step(m, NULL, NULL), AUTH_STEP_DONE);
	assert_int_equal(dmarc_msg_outcome(m)->result, DMARC_RESULT_PERMERROR);
	dmarc_msg_free(m);
}

static void test_strings(void **state)
{
	assert_string_equal(dmarc_result_str(DMARC_RESULT_TEMPERROR), "temperror");
	assert_string_equal(dmarc_result_str(DMARC_RESULT_PERMERROR), "permerror");
	assert_string_equal(dmarc_found_str(DMARC_FOUND_MULTIPLE), "multiple");
	assert_string_equal(dmarc_walk_status_str(DMARC_WALK_TEMPFAIL), "tempfail");
	assert_string_equal(dmarc_org_rule_str(DMARC_ORG_PSD_Y), "psd_y");
	assert_string_equal(dmarc_source_str(DMARC_SOURCE_PSD), "psd");
	assert_string_equal(dmarc_from_error_str(DMARC_FROM_NO_DOMAIN), "no_domain");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alignment),  cmocka_unit_test(test_relaxed_walks),
		cmocka_unit_test(test_discovery),  cmocka_unit_test(test_policy_choice),
		cmocka_unit_test(test_psd),        cmocka_unit_test(test_testing_and_fallbacks),
		cmocka_unit_test(test_dns_failures), cmocka_unit_test(test_bogus),
		cmocka_unit_test(test_limits),     cmocka_unit_test(test_names),
		cmocka_unit_test(test_walk_alone), cmocka_unit_test(test_messages),
		cmocka_unit_test(test_strings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
