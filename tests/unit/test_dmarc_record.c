/* test_dmarc_record.c — RFC 9989 §4.7/§4.8 policy records: the v rule, lenient reading, policy
 * defaults and the §4.10.1 fallback, reporting URIs, historic tags, hostile octets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/dmarc_record.h"
#include "test_util.h"

/* Parses s (len octets) from an exact-size heap copy and checks the error. */
static void parse_len(const char *s, size_t len, enum dmarc_record_error want, struct dmarc_record *r)
{
	char esc[512];
	const char *err = NULL;
	char *copy = test_dup(s, len);
	enum dmarc_record_error e = dmarc_record_parse(copy, len, r, &err);
	free(copy);
	if (e != want)
		fail_msg("\"%s\": got %s (%s), want %s", test_escape(s, len, esc, sizeof(esc)), dmarc_record_error_str(e),
			 err != NULL ? err : "", dmarc_record_error_str(want));
	if (e != DMARC_RECORD_OK)
		assert_non_null(err);
}

static void parse(const char *s, enum dmarc_record_error want, struct dmarc_record *r)
{
	parse_len(s, strlen(s), want, r);
}

static void test_version_rule(void **state)
{
	struct dmarc_record r;
	/* §4.7 v: first, "DMARC1" exactly (case-sensitive), else the record is ignored */
	parse("v=DMARC1; p=reject", DMARC_RECORD_OK, &r);
	assert_int_equal(r.p, DMARC_POLICY_REJECT);
	parse("v=dmarc1; p=reject", DMARC_RECORD_NOT_DMARC, &r);
	parse("v=DMARC1x; p=reject", DMARC_RECORD_NOT_DMARC, &r);
	parse("v=DMARC2; p=reject", DMARC_RECORD_NOT_DMARC, &r);
	parse("p=reject; v=DMARC1", DMARC_RECORD_NOT_DMARC, &r);
	parse("v=DMARC1 p=reject", DMARC_RECORD_NOT_DMARC, &r); /* no separator: v's value is "DMARC1 p=reject" */
	parse("", DMARC_RECORD_NOT_DMARC, &r);
	parse(";", DMARC_RECORD_NOT_DMARC, &r);
	parse("v=spf1 -all", DMARC_RECORD_NOT_DMARC, &r);
	parse("=x; v=DMARC1; p=reject", DMARC_RECORD_NOT_DMARC, &r); /* a broken spec before v: v is not first */
	/* §4.8 equals = *WSP "=" *WSP, dmarc-sep = *WSP ";" *WSP */
	parse("v = DMARC1 ; p = quarantine ;", DMARC_RECORD_OK, &r);
	assert_int_equal(r.p, DMARC_POLICY_QUARANTINE);
	parse(" v=DMARC1;p=none", DMARC_RECORD_OK, &r);
	parse("V=DMARC1; P=reject", DMARC_RECORD_OK, &r);
	assert_int_equal(r.p, DMARC_POLICY_REJECT);
	parse("v=DMARC1", DMARC_RECORD_NO_POLICY, &r);
	parse("v=DMARC1;", DMARC_RECORD_NO_POLICY, &r);
}

static void test_policies(void **state)
{
	struct dmarc_record r;
	parse("v=DMARC1; p=Reject; adkim=S; aspf=s", DMARC_RECORD_OK, &r);
	assert_int_equal(r.p, DMARC_POLICY_REJECT);
	assert_true(r.p_given);
	/* §4.7: sp and np default to p */
	assert_int_equal(r.sp, DMARC_POLICY_REJECT);
	assert_int_equal(r.np, DMARC_POLICY_REJECT);
	assert_false(r.sp_given);
	assert_int_equal(r.adkim, DMARC_ALIGN_STRICT);
	assert_int_equal(r.aspf, DMARC_ALIGN_STRICT);
	assert_int_equal(r.psd, DMARC_PSD_U);
	assert_false(r.testing);
	assert_int_equal(r.warnings, 0);

	parse("v=DMARC1; p=reject; sp=none", DMARC_RECORD_OK, &r);
	assert_int_equal(r.sp, DMARC_POLICY_NONE);
	assert_int_equal(r.np, DMARC_POLICY_NONE); /* np absent: sp */
	parse("v=DMARC1; p=none; np=REJECT", DMARC_RECORD_OK, &r);
	assert_int_equal(r.sp, DMARC_POLICY_NONE);
	assert_int_equal(r.np, DMARC_POLICY_REJECT);
	assert_true(r.np_given);
	parse("v=DMARC1; p=quarantine; sp=reject; np=none", DMARC_RECORD_OK, &r);
	assert_int_equal(r.p, DMARC_POLICY_QUARANTINE);
	assert_int_equal(r.sp, DMARC_POLICY_REJECT);
	assert_int_equal(r.np, DMARC_POLICY_NONE);

	parse("v=DMARC1; p=reject; t=y; psd=n", DMARC_RECORD_OK, &r);
	assert_true(r.testing);
	assert_int_equal(r.psd, DMARC_PSD_N);
	parse("v=DMARC1; p=reject; t=N; psd=Y", DMARC_RECORD_OK, &r);
	assert_false(r.testing);
	assert_int_equal(r.psd, DMARC_PSD_Y);
	parse("v=DMARC1; p=reject; psd=u", DMARC_RECORD_OK, &r);
	assert_int_equal(r.psd, DMARC_PSD_U);

	/* bad optional values: defaults, and a warning each (§4.8) */
	parse("v=DMARC1; p=reject; t=yes; psd=x; adkim=relaxed; aspf=; fo=2", DMARC_RECORD_OK, &r);
	assert_false(r.testing);
	assert_int_equal(r.psd, DMARC_PSD_U);
	assert_int_equal(r.adkim, DMARC_ALIGN_RELAXED);
	assert_int_equal(r.aspf, DMARC_ALIGN_RELAXED);
	assert_int_equal(r.fo, DMARC_FO_0);
	unsigned want = DMARC_WARN_T_INVALID | DMARC_WARN_PSD_INVALID | DMARC_WARN_ADKIM_INVALID |
			DMARC_WARN_ASPF_INVALID | DMARC_WARN_FO_INVALID | DMARC_WARN_FO_WITHOUT_RUF;
	assert_int_equal(r.warnings, want);
}

static void test_no_valid_policy(void **state)
{
	struct dmarc_record r;
	/* §4.10.1: no valid p and a valid rua → act as p=none */
	parse("v=DMARC1; rua=mailto:d@example.com", DMARC_RECORD_OK, &r);
	assert_int_equal(r.p, DMARC_POLICY_NONE);
	assert_false(r.p_given);
	assert_true((r.warnings & DMARC_WARN_P_MISSING) != 0);
	assert_true((r.warnings & DMARC_WARN_P_NONE_BY_RUA) != 0);
	/* ... and with an invalid p, sp or np, all of them none */
	parse("v=DMARC1; p=rejected; sp=reject; rua=mailto:d@example.com", DMARC_RECORD_OK, &r);
	assert_int_equal(r.p, DMARC_POLICY_NONE);
	assert_int_equal(r.sp, DMARC_POLICY_NONE);
	parse("v=DMARC1; p=reject; sp=bogus; rua=mailto:d@example.com", DMARC_RECORD_OK, &r);
	assert_int_equal(r.p, DMARC_POLICY_NONE);
	assert_int_equal(r.np, DMARC_POLICY_NONE);
	assert_true((r.warnings & DMARC_WARN_SP_INVALID) != 0);
	/* without a valid rua: no DMARC processing */
	parse("v=DMARC1; p=reject; np=never", DMARC_RECORD_NO_POLICY, &r);
	parse("v=DMARC1; psd=y", DMARC_RECORD_NO_POLICY, &r);
	assert_int_equal(r.psd, DMARC_PSD_Y); /* still read: the tree walk needs it */
	parse("v=DMARC1; rua=mailto:not an address", DMARC_RECORD_NO_POLICY, &r);
	parse("v=DMARC1; p=; rua=", DMARC_RECORD_NO_POLICY, &r);
	/* any syntactically valid URI counts, not only mailto: */
	parse("v=DMARC1; rua=https://reports.example.net/dmarc", DMARC_RECORD_OK, &r);
}

static void test_lenient(void **state)
{
	struct dmarc_record r;
	/* §4.8: unknown tags ignored, broken specs skipped, the first of two kept */
	parse("v=DMARC1; p=reject; foo=bar; x=1", DMARC_RECORD_OK, &r);
	assert_int_equal(r.warnings, DMARC_WARN_UNKNOWN_TAG);
	parse("v=DMARC1; p=quarantine; 1bad; =; sp=none;;", DMARC_RECORD_OK, &r);
	assert_int_equal(r.p, DMARC_POLICY_QUARANTINE);
	assert_int_equal(r.sp, DMARC_POLICY_NONE);
	assert_true((r.warnings & DMARC_WARN_SKIPPED) != 0);
	parse("v=DMARC1; p=none; p=reject", DMARC_RECORD_OK, &r);
	assert_int_equal(r.p, DMARC_POLICY_NONE);
	assert_true((r.warnings & DMARC_WARN_SKIPPED) != 0);
	/* names without regard to case: the first spelling wins */
	parse("v=DMARC1; p=none; P=reject", DMARC_RECORD_OK, &r);
	assert_int_equal(r.p, DMARC_POLICY_NONE);
	/* a policy with trailing junk is not a policy */
	parse("v=DMARC1; p=reject now", DMARC_RECORD_NO_POLICY, &r);
	/* octets of all kinds */
	parse_len("v=DMARC1; p=re\0ject", 19, DMARC_RECORD_NO_POLICY, &r);
	parse_len("v=DMARC1\0; p=reject", 19, DMARC_RECORD_NOT_DMARC, &r);
	parse("v=DMARC1; p=reject; \xff\xfe=\x01", DMARC_RECORD_OK, &r);
	parse("v=DMARC1;\r\n p=reject", DMARC_RECORD_OK, &r);
	assert_int_equal(r.p, DMARC_POLICY_REJECT);
	/* more tags than tagval reads: the first ones still count */
	char big[2048] = "v=DMARC1; p=reject";
	for (int i = 0; i < 100; i++)
		snprintf(big + strlen(big), sizeof(big) - strlen(big), "; x%d=1", i);
	parse(big, DMARC_RECORD_OK, &r);
	assert_int_equal(r.p, DMARC_POLICY_REJECT);
	assert_true((r.warnings & DMARC_WARN_TOO_MANY_TAGS) != 0);
}

static void test_historic(void **state)
{
	struct dmarc_record r;
	/* RFC 9989 Appendix C.5.2: pct, rf, ri removed; pct=0 is not t=y */
	parse("v=DMARC1; p=reject; pct=0", DMARC_RECORD_OK, &r);
	assert_int_equal(r.pct, 0);
	assert_false(r.testing);
	assert_int_equal(r.p, DMARC_POLICY_REJECT);
	assert_int_equal(r.warnings, DMARC_WARN_PCT);
	parse("v=DMARC1; p=quarantine; pct=50; rf=afrf; ri=86400", DMARC_RECORD_OK, &r);
	assert_int_equal(r.pct, 50);
	assert_int_equal(r.warnings, DMARC_WARN_PCT | DMARC_WARN_HISTORIC);
	parse("v=DMARC1; p=none; pct=101", DMARC_RECORD_OK, &r);
	assert_int_equal(r.pct, -1);
	parse("v=DMARC1; p=none; pct=abc", DMARC_RECORD_OK, &r);
	assert_int_equal(r.pct, -1);
	parse("v=DMARC1; p=none", DMARC_RECORD_OK, &r);
	assert_int_equal(r.pct, -1);
}

static void test_fo(void **state)
{
	struct dmarc_record r;
	parse("v=DMARC1; p=none; ruf=mailto:f@example.com; fo=1:d:s", DMARC_RECORD_OK, &r);
	assert_int_equal(r.fo, DMARC_FO_1 | DMARC_FO_D | DMARC_FO_S);
	assert_int_equal(r.warnings, 0);
	parse("v=DMARC1; p=none; ruf=mailto:f@example.com; fo=d", DMARC_RECORD_OK, &r);
	assert_int_equal(r.fo, DMARC_FO_D);
	const char *bad[] = { "0:1", "d:d", "1:", ":1", "x", "", "0 1", "\x10" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char rec[128];
		snprintf(rec, sizeof(rec), "v=DMARC1; p=none; ruf=mailto:f@example.com; fo=%s", bad[i]);
		parse(rec, DMARC_RECORD_OK, &r);
		if (r.fo != DMARC_FO_0 || (r.warnings & DMARC_WARN_FO_INVALID) == 0)
			fail_msg("fo=%s accepted", bad[i]);
	}
}

static void test_uris(void **state)
{
	struct dmarc_record r;
	parse("v=DMARC1; p=none; rua=mailto:a@example.com , MAILTO:b%2Bx@example.net!10m,"
	      "https://r.example.org/x?y=1;ruf=mailto:%66@example.com!5",
	      DMARC_RECORD_OK, &r);
	assert_int_equal(r.rua_count, 3);
	assert_int_equal(r.rua_valid, 3);
	assert_string_equal(dmarc_uri_text(&r, &r.rua[0]), "mailto:a@example.com");
	assert_string_equal(dmarc_uri_addr(&r, &r.rua[0]), "a@example.com");
	/* §4.8 obs-dmarc-report-size dropped; the mailbox percent-decoded (RFC 6068 §2) */
	assert_string_equal(dmarc_uri_text(&r, &r.rua[1]), "MAILTO:b%2Bx@example.net");
	assert_string_equal(dmarc_uri_addr(&r, &r.rua[1]), "b+x@example.net");
	assert_string_equal(dmarc_uri_text(&r, &r.rua[2]), "https://r.example.org/x?y=1");
	assert_null(dmarc_uri_addr(&r, &r.rua[2]));
	assert_int_equal(r.ruf_count, 1);
	assert_string_equal(dmarc_uri_addr(&r, &r.ruf[0]), "f@example.com");
	assert_int_equal(r.warnings, 0);

	const char *bad[] = {
		"mailto:",              /* no address */
		"mailto:nobody",        /* no domain */
		"mailto:a@b@c.example", "mailto:a%2Cb@example.com", "mailto:a%00@example.com", "mailto:a@[192.0.2.1]",
		"example.com",          /* no scheme */
		"1mailto:a@example.com", "mailto:a@example.com!x", "mailto:a@exa!mple.com", "mailto:a b@example.com",
		"mailto:a@example.com%", "mailto:a@example.com%zz", ":x", "http:", "mailto:a\"@example.com",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char rec[256];
		snprintf(rec, sizeof(rec), "v=DMARC1; p=none; rua=%s", bad[i]);
		parse(rec, DMARC_RECORD_OK, &r);
		if (r.rua_count != 0 || r.rua_valid != 0 || (r.warnings & DMARC_WARN_URI_INVALID) == 0)
			fail_msg("rua=%s accepted", bad[i]);
	}
	/* the mailto address with a query part */
	parse("v=DMARC1; p=none; rua=mailto:d@example.com?subject=x", DMARC_RECORD_OK, &r);
	assert_string_equal(dmarc_uri_addr(&r, &r.rua[0]), "d@example.com");
	/* empty entries and junk between good ones */
	parse("v=DMARC1; p=none; rua=,mailto:a@example.com,,junk,", DMARC_RECORD_OK, &r);
	assert_int_equal(r.rua_count, 1);
	assert_true((r.warnings & DMARC_WARN_URI_INVALID) != 0);

	/* more than kept: counted as valid, dropped with a warning */
	char big[2048] = "v=DMARC1; rua=";
	for (int i = 0; i < 12; i++)
		snprintf(big + strlen(big), sizeof(big) - strlen(big), "%smailto:r%d@example.com", i ? "," : "", i);
	parse(big, DMARC_RECORD_OK, &r);
	assert_int_equal(r.rua_count, DMARC_URIS_MAX);
	assert_int_equal(r.rua_valid, 12);
	assert_true((r.warnings & DMARC_WARN_URI_DROPPED) != 0);
	assert_string_equal(dmarc_uri_addr(&r, &r.rua[7]), "r7@example.com");
	/* long URIs fill the text room */
	char lng[4096] = "v=DMARC1; p=none; rua=";
	for (int i = 0; i < 5; i++) {
		snprintf(lng + strlen(lng), sizeof(lng) - strlen(lng), "%shttps://example.com/", i ? "," : "");
		for (int k = 0; k < 300; k++)
			strcat(lng, "a");
	}
	parse(lng, DMARC_RECORD_OK, &r);
	assert_int_equal(r.rua_count, 3);
	assert_int_equal(r.rua_valid, 5);
	assert_true(r.text_len <= sizeof(r.text));
	for (size_t i = 0; i < r.rua_count; i++)
		assert_int_equal(strlen(dmarc_uri_text(&r, &r.rua[i])), 320);
}

static void test_joined_strings(void **state)
{
	struct dmarc_record r;
	/* RFC 9989 §4.5, Appendix B.2.5: character-strings joined without separators */
	parse("v=DMARC1; p=quarantine; rua=mailto:dmarc-feedback@example.com,mailto:tld-test@thirdparty.example.net; t=y",
	      DMARC_RECORD_OK, &r);
	assert_int_equal(r.p, DMARC_POLICY_QUARANTINE);
	assert_true(r.testing);
	assert_int_equal(r.rua_count, 2);
	assert_string_equal(dmarc_uri_addr(&r, &r.rua[1]), "tld-test@thirdparty.example.net");
}

static void test_strings(void **state)
{
	for (unsigned bit = 1; bit <= DMARC_WARN_TOO_MANY_TAGS; bit <<= 1)
		assert_string_not_equal(dmarc_record_warning_str((enum dmarc_record_warning)bit), "?");
	assert_string_equal(dmarc_policy_str(DMARC_POLICY_QUARANTINE), "quarantine");
	assert_string_equal(dmarc_align_str(DMARC_ALIGN_STRICT), "s");
	assert_string_equal(dmarc_psd_str(DMARC_PSD_N), "n");
	assert_string_equal(dmarc_fo_str(DMARC_FO_D), "d");
	assert_string_equal(dmarc_record_error_str(DMARC_RECORD_NO_POLICY), "no_policy");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_version_rule), cmocka_unit_test(test_policies), cmocka_unit_test(test_no_valid_policy),
		cmocka_unit_test(test_lenient),      cmocka_unit_test(test_historic), cmocka_unit_test(test_fo),
		cmocka_unit_test(test_uris),         cmocka_unit_test(test_joined_strings), cmocka_unit_test(test_strings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
