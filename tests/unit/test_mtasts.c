/* test_mtasts.c — RFC 8461 policy texts (§3.2), _mta-sts TXT records and the choice among them
 * (§3.1), and MX pattern matching (§4.1); hostile octets, limits and repeated keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "delivery/mtasts.h"
#include "test_util.h"

/* Parses s (len octets) from an exact-size heap copy and checks the error. */
static void policy_len(const char *s, size_t len, enum mtasts_error want, struct mtasts_policy *p)
{
	char esc[512];
	const char *err = NULL;
	char *copy = test_dup(s, len);
	enum mtasts_error e = mtasts_policy_parse(copy, len, p, &err);
	free(copy);
	if (e != want)
		fail_msg("\"%s\": got %s (%s), want %s", test_escape(s, len, esc, sizeof(esc)), mtasts_error_str(e),
			 err != NULL ? err : "", mtasts_error_str(want));
	if (e != MTASTS_OK)
		assert_non_null(err);
}

static void policy(const char *s, enum mtasts_error want, struct mtasts_policy *p)
{
	policy_len(s, strlen(s), want, p);
}

static void txt_len(const char *s, size_t len, enum mtasts_error want, struct mtasts_txt *r)
{
	char esc[512];
	const char *err = NULL;
	char *copy = test_dup(s, len);
	enum mtasts_error e = mtasts_txt_parse(copy, len, r, &err);
	free(copy);
	if (e != want)
		fail_msg("\"%s\": got %s (%s), want %s", test_escape(s, len, esc, sizeof(esc)), mtasts_error_str(e),
			 err != NULL ? err : "", mtasts_error_str(want));
	if (e != MTASTS_OK) {
		assert_non_null(err);
		assert_string_equal(r->id, "");
	}
}

static void txt(const char *s, enum mtasts_error want, struct mtasts_txt *r)
{
	txt_len(s, strlen(s), want, r);
}

static void test_policy_example(void **state)
{
	struct mtasts_policy p;
	/* the example of §3.2, with CRLF line ends */
	policy("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\n"
	       "mx: backupmx.example.com\r\nmax_age: 604800\r\n",
	       MTASTS_OK, &p);
	assert_int_equal(p.mode, MTASTS_MODE_ENFORCE);
	assert_int_equal(p.max_age, 604800);
	assert_false(p.max_age_capped);
	assert_int_equal(p.mx_count, 3);
	assert_string_equal(p.mx[0], "mail.example.com");
	assert_string_equal(p.mx[1], "*.example.net");
	assert_string_equal(p.mx[2], "backupmx.example.com");
	assert_int_equal(p.duplicates, 0);
	assert_int_equal(p.unknown, 0);

	/* LF only, no end on the last line, mode testing */
	policy("version: STSv1\nmode: testing\nmx: mx.example.com\nmax_age: 86400", MTASTS_OK, &p);
	assert_int_equal(p.mode, MTASTS_MODE_TESTING);
	assert_int_equal(p.max_age, 86400);
	/* mixed line ends */
	policy("version: STSv1\r\nmode: enforce\nmx: mx.example.com\r\nmax_age: 1\n", MTASTS_OK, &p);
	assert_int_equal(p.max_age, 1);
}

static void test_policy_whitespace(void **state)
{
	struct mtasts_policy p;
	/* field-delim = ":" *WSP: no space needed after the colon, tabs allowed; trailing WSP dropped */
	policy("version:STSv1\nmode:\tenforce \t\nmx:mx.example.com  \nmax_age:   3600\t\n", MTASTS_OK, &p);
	assert_int_equal(p.mode, MTASTS_MODE_ENFORCE);
	assert_int_equal(p.max_age, 3600);
	assert_string_equal(p.mx[0], "mx.example.com");
	/* no WSP before the colon, none at the start of a line */
	policy("version : STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\n", MTASTS_SYNTAX, &p);
	assert_int_equal(p.line, 1);
	policy("version: STSv1\n mode: enforce\nmx: a.example\nmax_age: 1\n", MTASTS_SYNTAX, &p);
	assert_int_equal(p.line, 2);
	policy("version: STSv1\n\tmode: enforce\nmx: a.example\nmax_age: 1\n", MTASTS_SYNTAX, &p);
	/* lenient: blank and WSP-only lines are skipped */
	policy("\nversion: STSv1\n\r\nmode: enforce\n  \t\nmx: a.example\n\nmax_age: 1\n\n\n", MTASTS_OK, &p);
	/* a value with inner WSP is not a mode or a pattern */
	policy("version: STSv1\nmode: enforce now\nmx: a.example\nmax_age: 1\n", MTASTS_MODE, &p);
	policy("version: STSv1\nmode: enforce\nmx: a.example b.example\nmax_age: 1\n", MTASTS_MX, &p);
	assert_int_equal(p.line, 3);
	/* a line without a colon */
	policy("version: STSv1\nmode enforce\nmx: a.example\nmax_age: 1\n", MTASTS_SYNTAX, &p);
	/* a bare CR is no line end */
	policy("version: STSv1\rmode: enforce\nmx: a.example\nmax_age: 1\n", MTASTS_SYNTAX, &p);
	policy("version: STSv1\nmode: enforce\r\rmx: a.example\nmax_age: 1\n", MTASTS_SYNTAX, &p);
}

static void test_policy_fields(void **state)
{
	struct mtasts_policy p;
	/* version: exactly STSv1, case-sensitive */
	policy("version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n", MTASTS_VERSION, &p);
	policy("version: stsv1\nmode: enforce\nmx: a.example\nmax_age: 1\n", MTASTS_VERSION, &p);
	policy("version: \nmode: enforce\nmx: a.example\nmax_age: 1\n", MTASTS_VERSION, &p);
	policy("mode: enforce\nmx: a.example\nmax_age: 1\n", MTASTS_VERSION, &p);
	assert_int_equal(p.line, 0);
	/* keys are case-sensitive: "Version" is an unknown key, so the version is missing */
	policy("Version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\n", MTASTS_VERSION, &p);
	/* fields in any order: the ABNF sets none (see mtasts.h) */
	policy("mode: enforce\nmx: a.example\nversion: STSv1\nmax_age: 1\n", MTASTS_OK, &p);
	/* mode: the three words, lower case */
	policy("version: STSv1\nmode: none\nmax_age: 1\n", MTASTS_OK, &p);
	assert_int_equal(p.mode, MTASTS_MODE_NONE);
	assert_int_equal(p.mx_count, 0);
	policy("version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 1\n", MTASTS_MODE, &p);
	policy("version: STSv1\nmode: report\nmx: a.example\nmax_age: 1\n", MTASTS_MODE, &p); /* a draft's word */
	policy("version: STSv1\nmode:\nmx: a.example\nmax_age: 1\n", MTASTS_MODE, &p);
	policy("version: STSv1\nmx: a.example\nmax_age: 1\n", MTASTS_MODE, &p);
	/* max_age: 1*10 DIGIT */
	policy("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 0\n", MTASTS_OK, &p);
	assert_int_equal(p.max_age, 0);
	policy("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 0000604800\n", MTASTS_OK, &p);
	assert_int_equal(p.max_age, 604800);
	policy("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n", MTASTS_MAX_AGE, &p);
	policy("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: +5\n", MTASTS_MAX_AGE, &p);
	policy("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1e6\n", MTASTS_MAX_AGE, &p);
	policy("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400s\n", MTASTS_MAX_AGE, &p);
	policy("version: STSv1\nmode: enforce\nmx: a.example\nmax_age:\n", MTASTS_MAX_AGE, &p);
	policy("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 12345678901\n", MTASTS_MAX_AGE, &p);
	policy("version: STSv1\nmode: enforce\nmx: a.example\n", MTASTS_MAX_AGE, &p);
	/* mx needed unless mode none */
	policy("version: STSv1\nmode: enforce\nmax_age: 1\n", MTASTS_NO_MX, &p);
	policy("version: STSv1\nmode: testing\nmax_age: 1\n", MTASTS_NO_MX, &p);
	/* an empty text, a text of blank lines */
	policy("", MTASTS_VERSION, &p);
	policy("\n\r\n \n", MTASTS_VERSION, &p);
}

static void test_policy_max_age_cap(void **state)
{
	struct mtasts_policy p;
	/* §3.2's maximum is kept as it is */
	policy("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557600\n", MTASTS_OK, &p);
	assert_int_equal(p.max_age, MTASTS_MAX_AGE_MAX);
	assert_false(p.max_age_capped);
	/* larger values, up to ten digits, are capped (see mtasts.h) */
	policy("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557601\n", MTASTS_OK, &p);
	assert_int_equal(p.max_age, MTASTS_MAX_AGE_MAX);
	assert_true(p.max_age_capped);
	policy("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 9999999999\n", MTASTS_OK, &p);
	assert_int_equal(p.max_age, MTASTS_MAX_AGE_MAX);
	assert_true(p.max_age_capped);
	policy("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 4294967296\n", MTASTS_OK, &p); /* 2^32 */
	assert_int_equal(p.max_age, MTASTS_MAX_AGE_MAX);
}

static void test_policy_duplicates(void **state)
{
	struct mtasts_policy p;
	/* §3.2: of a repeated non-mx field the first counts, the rest are ignored whatever they hold */
	policy("version: STSv1\nmode: testing\nmode: enforce\nmx: a.example\nmax_age: 10\nmax_age: 99\n"
	       "version: STSv9\nmode: bogus\n",
	       MTASTS_OK, &p);
	assert_int_equal(p.mode, MTASTS_MODE_TESTING);
	assert_int_equal(p.max_age, 10);
	assert_int_equal(p.duplicates, 4);
	/* ... so a bad first value is not rescued by a good later one */
	policy("version: STSv1\nmode: bogus\nmode: enforce\nmx: a.example\nmax_age: 1\n", MTASTS_MODE, &p);
	assert_int_equal(p.line, 2);
	/* mx repeats: every pattern counts, a repeated one is kept once (case-insensitively) */
	policy("version: STSv1\nmode: enforce\nmx: a.example\nmx: b.example\nmx: A.Example\nmx: a.example.\n"
	       "max_age: 1\n",
	       MTASTS_OK, &p);
	assert_int_equal(p.mx_count, 2);
	assert_string_equal(p.mx[0], "a.example");
	assert_string_equal(p.mx[1], "b.example");
}

static void test_policy_unknown(void **state)
{
	struct mtasts_policy p;
	/* §3.2: unknown keys are ignored, with any text value (UTF-8, '=' and ';' allowed) */
	policy("version: STSv1\nmode: enforce\nfoo: bar\nmx: a.example\nx-note: caf\xc3\xa9 = ; ok\n"
	       "max_age: 1\nA.b_c-1: \n",
	       MTASTS_OK, &p);
	assert_int_equal(p.unknown, 3);
	/* ... but a key must still be a key */
	policy("version: STSv1\nmode: enforce\n_foo: bar\nmx: a.example\nmax_age: 1\n", MTASTS_SYNTAX, &p);
	policy("version: STSv1\nmode: enforce\nfoo bar: x\nmx: a.example\nmax_age: 1\n", MTASTS_SYNTAX, &p);
	policy("version: STSv1\nmode: enforce\n: x\nmx: a.example\nmax_age: 1\n", MTASTS_SYNTAX, &p);
	policy("version: STSv1\nmode: enforce\nabcdefghijklmnopqrstuvwxyz0123456: x\nmx: a.example\nmax_age: 1\n",
	       MTASTS_SYNTAX, &p); /* 33 octets */
	policy("version: STSv1\nmode: enforce\nabcdefghijklmnopqrstuvwxyz012345: x\nmx: a.example\nmax_age: 1\n",
	       MTASTS_OK, &p); /* 32 */
	/* ... and its value text: no ill-formed UTF-8 */
	policy("version: STSv1\nmode: enforce\nfoo: \xff\xfe\nmx: a.example\nmax_age: 1\n", MTASTS_SYNTAX, &p);
	/* a byte-order mark makes the first line no key */
	policy("\xef\xbb\xbfversion: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\n", MTASTS_SYNTAX, &p);
	/* an HTML page served as text/plain is not a policy */
	policy("<html><body>Not Found</body></html>\n", MTASTS_SYNTAX, &p);
}

static void test_policy_mx_values(void **state)
{
	struct mtasts_policy p;
	static const char *const good[] = {
		"mail.example.com", "MAIL.Example.COM", "*.example.com", "*.com", "localhost", "mx-1.example",
		"a.b.c.d.e.f.example", "xn--bcher-kva.example", "mail.example.com.", "1mail.example",
		"mail.123example",
	};
	static const char *const bad[] = {
		"",                 /* empty */
		"192.0.2.1",        /* IPv4 */
		"[192.0.2.1]",      /* address literal */
		"2001:db8::1",      /* IPv6 */
		"[IPv6:2001:db8::1]",
		"mail.example.123", /* all-numeric last label */
		"10",
		"*",                /* a bare wildcard */
		"*.",
		"*example.com",     /* '*' not a whole label */
		"m*.example.com",
		"mail.*.example.com",
		"*.*.example.com",
		"**.example.com",
		".example.com",     /* empty label */
		"mail..example.com",
		"mail.example.com..",
		"-mail.example.com", /* hyphen at a label's end */
		"mail-.example.com",
		"mail_1.example.com", /* '_' is not in RFC 5321's Domain */
		"mail.example.com/x",
		"mail@example.com",
		"caf\xc3\xa9.example",  /* U-labels: the A-label is the pattern */
	};
	char text[512];
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(text, sizeof(text), "version: STSv1\nmode: enforce\nmx: %s\nmax_age: 1\n", good[i]);
		policy(text, MTASTS_OK, &p);
		assert_int_equal(p.mx_count, 1);
	}
	policy("version: STSv1\nmode: enforce\nmx: MAIL.Example.COM.\nmax_age: 1\n", MTASTS_OK, &p);
	assert_string_equal(p.mx[0], "mail.example.com"); /* lower case, no trailing dot */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "version: STSv1\nmode: enforce\nmx: %s\nmax_age: 1\n", bad[i]);
		policy(text, MTASTS_MX, &p);
		assert_int_equal(p.line, 3);
		assert_int_equal(p.mx_count, 0);
	}
	/* one bad pattern among good ones spoils the policy: we do not enforce half a list */
	policy("version: STSv1\nmode: enforce\nmx: a.example\nmx: 192.0.2.1\nmx: b.example\nmax_age: 1\n", MTASTS_MX, &p);
	policy("version: STSv1\nmode: testing\nmx: a.example\nmx:\nmax_age: 1\n", MTASTS_MX, &p);
	/* 253 octets is the longest name, 254 too long; with "*." 255 */
	char name[300];
	memset(name, 'a', sizeof(name));
	for (size_t i = 63; i < sizeof(name); i += 64)
		name[i] = '.';
	name[253] = '\0';
	snprintf(text, sizeof(text), "version: STSv1\nmode: enforce\nmx: *.%s\nmax_age: 1\n", name);
	policy(text, MTASTS_OK, &p);
	assert_int_equal(strlen(p.mx[0]), 255);
	name[253] = 'a';
	name[254] = '\0';
	snprintf(text, sizeof(text), "version: STSv1\nmode: enforce\nmx: %s\nmax_age: 1\n", name);
	policy(text, MTASTS_MX, &p);
	/* a 64-octet label */
	policy("version: STSv1\nmode: enforce\nmx: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example\n"
	       "max_age: 1\n",
	       MTASTS_MX, &p);
}

static void test_policy_mode_none(void **state)
{
	struct mtasts_policy p;
	/* mode none retires a policy: its mx lines are not used, so a bad one does not spoil it */
	policy("version: STSv1\nmode: none\nmx: 192.0.2.1\nmx:\nmax_age: 1\n", MTASTS_OK, &p);
	assert_int_equal(p.mode, MTASTS_MODE_NONE);
	policy("mx: 192.0.2.1\nversion: STSv1\nmode: none\nmax_age: 86400\n", MTASTS_OK, &p); /* mode after mx */
	policy("version: STSv1\nmode: none\nmx: a.example\nmax_age: 1\n", MTASTS_OK, &p);
	assert_int_equal(p.mx_count, 1);
	/* but the rest must still be right */
	policy("version: STSv1\nmode: none\n", MTASTS_MAX_AGE, &p);
	policy("version: STSv1\nmode: none\nmax_age: 1\n\x01\n", MTASTS_SYNTAX, &p);
}

static void test_policy_too_many_mx(void **state)
{
	struct mtasts_policy p;
	char *text = malloc(8192);
	assert_non_null(text);
	size_t o = (size_t)sprintf(text, "version: STSv1\nmode: enforce\nmax_age: 1\n");
	for (int i = 0; i < MTASTS_MX_MAX; i++)
		o += (size_t)sprintf(text + o, "mx: mx%d.example.com\n", i);
	policy(text, MTASTS_OK, &p);
	assert_int_equal(p.mx_count, MTASTS_MX_MAX);
	/* a repeat of a kept one is no new pattern */
	sprintf(text + o, "mx: MX0.example.com\n");
	policy(text, MTASTS_OK, &p);
	sprintf(text + o, "mx: mx%d.example.com\n", MTASTS_MX_MAX);
	policy(text, MTASTS_TOO_MANY_MX, &p);
	assert_int_equal(p.line, 4 + MTASTS_MX_MAX);
	free(text);
}

static void test_policy_hostile(void **state)
{
	struct mtasts_policy p;
	/* embedded NULs: anywhere, they make the text no policy */
	static const char nul_mx[] = "version: STSv1\nmode: enforce\nmx: a.example\0.evil\nmax_age: 1\n";
	policy_len(nul_mx, sizeof(nul_mx) - 1, MTASTS_SYNTAX, &p);
	static const char nul_mode[] = "version: STSv1\nmode: enforce\0\nmx: a.example\nmax_age: 1\n";
	policy_len(nul_mode, sizeof(nul_mode) - 1, MTASTS_SYNTAX, &p);
	static const char nul_unknown[] = "version: STSv1\nmode: enforce\nx: \0\nmx: a.example\nmax_age: 1\n";
	policy_len(nul_unknown, sizeof(nul_unknown) - 1, MTASTS_SYNTAX, &p);
	static const char nul_age[] = "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\0";
	policy_len(nul_age, sizeof(nul_age) - 1, MTASTS_SYNTAX, &p);
	/* a max_age at the very end of the buffer, no line end: read without running past it */
	static const char age_end[] = "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1234";
	policy_len(age_end, sizeof(age_end) - 1, MTASTS_OK, &p);
	assert_int_equal(p.max_age, 1234);

	/* a long line is fine when it is an unknown key's (no line limit below the 64 KiB of the text) */
	size_t big = MTASTS_POLICY_MAX;
	char *text = malloc(big + 1);
	assert_non_null(text);
	static const char head[] = "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\nx: ";
	memcpy(text, head, sizeof(head) - 1);
	memset(text + sizeof(head) - 1, 'y', big - (sizeof(head) - 1));
	policy_len(text, big, MTASTS_OK, &p);
	assert_int_equal(p.unknown, 1);
	/* one octet more than 64 KiB is refused whole, whatever it holds */
	text[big] = '\n';
	policy_len(text, big + 1, MTASTS_TOO_LONG, &p);
	/* an overlong mx line */
	memcpy(text, "version: STSv1\nmode: enforce\nmax_age: 1\nmx: ", 44);
	memset(text + 44, 'a', 60000);
	policy_len(text, 44 + 60000, MTASTS_MX, &p);
	free(text);

	/* the same text reads the same: no state kept between calls */
	struct mtasts_policy a, b;
	const char *err;
	static const char t[] = "version: STSv1\nmode: testing\nmx: *.a.example\nmax_age: 5\n";
	assert_int_equal(mtasts_policy_parse(t, sizeof(t) - 1, &a, &err), MTASTS_OK);
	assert_int_equal(mtasts_policy_parse(t, sizeof(t) - 1, &b, &err), MTASTS_OK);
	assert_memory_equal(&a, &b, sizeof(a));
}

static void test_txt(void **state)
{
	struct mtasts_txt r;
	/* §3.1's example */
	txt("v=STSv1; id=20160831085700Z;", MTASTS_OK, &r);
	assert_string_equal(r.id, "20160831085700Z");
	txt("v=STSv1; id=20160831085700Z", MTASTS_OK, &r);
	txt("v=STSv1;id=abc", MTASTS_OK, &r);
	assert_string_equal(r.id, "abc");
	txt("v=STSv1 ;\tid=abc ; ", MTASTS_OK, &r); /* sts-field-delim = *WSP ";" *WSP */
	txt("v=STSv1; id=abc ", MTASTS_OK, &r);     /* lenient: trailing WSP */
	/* id: 1 to 32 letters and digits */
	txt("v=STSv1; id=a", MTASTS_OK, &r);
	txt("v=STSv1; id=abcdefghijklmnopqrstuvwxyz012345", MTASTS_OK, &r);
	assert_int_equal(strlen(r.id), 32);
	txt("v=STSv1; id=abcdefghijklmnopqrstuvwxyz0123456", MTASTS_ID, &r); /* 33 */
	txt("v=STSv1; id=2019-01-01", MTASTS_ID, &r);
	txt("v=STSv1; id=abc_def", MTASTS_ID, &r);
	txt("v=STSv1; id=", MTASTS_SYNTAX, &r);
	txt("v=STSv1;", MTASTS_ID, &r);
	txt("v=STSv1", MTASTS_ID, &r);
	txt("v=STSv1; ID=abc", MTASTS_ID, &r); /* %s"id=": "ID" is an unknown field */
	/* v=STSv1 first, exactly */
	txt("id=abc; v=STSv1", MTASTS_VERSION, &r);
	txt("v=STSv2; id=abc", MTASTS_VERSION, &r);
	txt("v=stsv1; id=abc", MTASTS_VERSION, &r);
	txt("V=STSv1; id=abc", MTASTS_VERSION, &r);
	txt(" v=STSv1; id=abc", MTASTS_VERSION, &r);
	txt("v=STSv10; id=abc", MTASTS_VERSION, &r);
	txt("", MTASTS_VERSION, &r);
	txt("v=spf1 -all", MTASTS_VERSION, &r);
	/* unknown fields ignored; of two ids the first counts */
	txt("v=STSv1; foo=bar; id=abc; x.y-z_1=!\"#$%&'()*+,-./:<>?@[]^`{|}~", MTASTS_OK, &r);
	assert_string_equal(r.id, "abc");
	assert_int_equal(r.unknown, 2);
	txt("v=STSv1; id=first; id=second", MTASTS_OK, &r);
	assert_string_equal(r.id, "first");
	txt("v=STSv1; id=first; id=2-2", MTASTS_OK, &r); /* a later id is ignored, but must be a field */
	txt("v=STSv1; id=bad-1; id=good", MTASTS_ID, &r);
	txt("v=STSv1; v=STSv2; id=abc", MTASTS_OK, &r); /* a second v is an unknown field */
	/* the grammar: name=value fields separated by ';' */
	txt("v=STSv1 id=abc", MTASTS_SYNTAX, &r);
	txt("v=STSv1; id=abc foo=bar", MTASTS_SYNTAX, &r);
	txt("v=STSv1; id=abc;; foo=bar", MTASTS_SYNTAX, &r);
	txt("v=STSv1; foo; id=abc", MTASTS_SYNTAX, &r);
	txt("v=STSv1; foo=; id=abc", MTASTS_SYNTAX, &r);
	txt("v=STSv1; foo==x; id=abc", MTASTS_SYNTAX, &r);
	txt("v=STSv1; =x; id=abc", MTASTS_SYNTAX, &r);
	txt("v=STSv1; _x=1; id=abc", MTASTS_SYNTAX, &r);
	txt("v=STSv1; id = abc", MTASTS_SYNTAX, &r);
	txt("v=STSv1; caf\xc3\xa9=1; id=abc", MTASTS_SYNTAX, &r);
	txt("v=STSv1; x=caf\xc3\xa9; id=abc", MTASTS_SYNTAX, &r);
	/* hostile octets */
	static const char nul_id[] = "v=STSv1; id=abc\0def";
	txt_len(nul_id, sizeof(nul_id) - 1, MTASTS_SYNTAX, &r);
	static const char nul_v[] = "v=STSv1\0; id=abc";
	txt_len(nul_v, sizeof(nul_v) - 1, MTASTS_VERSION, &r);
	static const char id_end[] = "v=STSv1; id=abc"; /* the id at the very end of the buffer */
	txt_len(id_end, sizeof(id_end) - 1, MTASTS_OK, &r);
	assert_string_equal(r.id, "abc");
	txt("v=STSv1; id=abc\r\n", MTASTS_SYNTAX, &r);
}

static void test_txt_select(void **state)
{
	struct mtasts_txt r;
	const char *err;
	struct dns_txt one[] = {
		{ "v=spf1 -all", 11 },
		{ "google-site-verification=x", 26 },
		{ "v=STSv1; id=abc", 15 },
	};
	assert_int_equal(mtasts_txt_select(one, 3, &r, &err), MTASTS_OK);
	assert_string_equal(r.id, "abc");
	/* §3.1: two v=STSv1 records mean no policy, even when they agree */
	struct dns_txt two[] = {
		{ "v=STSv1; id=abc", 15 },
		{ "v=spf1 -all", 11 },
		{ "v=STSv1; id=abc", 15 },
	};
	assert_int_equal(mtasts_txt_select(two, 3, &r, &err), MTASTS_MULTIPLE);
	assert_string_equal(r.id, "");
	/* a second record we would read as MTA-STS counts even if it is broken */
	struct dns_txt broken[] = {
		{ "v=STSv1; id=abc", 15 },
		{ "v=STSv1 ; id=", 13 },
	};
	assert_int_equal(mtasts_txt_select(broken, 2, &r, &err), MTASTS_MULTIPLE);
	/* records not beginning with v=STSv1 do not count */
	struct dns_txt others[] = {
		{ "v=STSv10; id=abc", 16 },
		{ " v=STSv1; id=abc", 16 },
		{ "V=STSv1; id=abc", 15 },
		{ "v=STSv1; id=def", 15 },
	};
	assert_int_equal(mtasts_txt_select(others, 4, &r, &err), MTASTS_OK);
	assert_string_equal(r.id, "def");
	assert_int_equal(mtasts_txt_select(others, 3, &r, &err), MTASTS_NO_RECORD);
	assert_int_equal(mtasts_txt_select(NULL, 0, &r, &err), MTASTS_NO_RECORD);
	/* the one record is then read, and may be invalid */
	struct dns_txt bad[] = { { "v=STSv1; id=toolong_", 20 } };
	assert_int_equal(mtasts_txt_select(bad, 1, &r, &err), MTASTS_ID);

	assert_true(mtasts_txt_is_sts("v=STSv1", 7));
	assert_true(mtasts_txt_is_sts("v=STSv1;", 8));
	assert_true(mtasts_txt_is_sts("v=STSv1 ;", 9));
	assert_false(mtasts_txt_is_sts("v=STSv", 6));
	assert_false(mtasts_txt_is_sts("v=STSv1x", 8));
	assert_false(mtasts_txt_is_sts("v=STSv1\0", 8));
}

static void test_mx_match(void **state)
{
	/* §4.1: exact names, case-insensitive, the MX's trailing dot ignored */
	assert_true(mtasts_mx_match("mail.example.com", "mail.example.com"));
	assert_true(mtasts_mx_match("mail.example.com", "MAIL.Example.Com"));
	assert_true(mtasts_mx_match("mail.example.com", "mail.example.com."));
	assert_false(mtasts_mx_match("mail.example.com", "mail.example.com.."));
	assert_false(mtasts_mx_match("mail.example.com", "mail.example.co"));
	assert_false(mtasts_mx_match("mail.example.com", "xmail.example.com"));
	assert_false(mtasts_mx_match("mail.example.com", "example.com"));
	assert_false(mtasts_mx_match("mail.example.com", "a.mail.example.com"));
	/* a wildcard is exactly one leftmost label */
	assert_true(mtasts_mx_match("*.example.com", "mail.example.com"));
	assert_true(mtasts_mx_match("*.example.com", "MX1.EXAMPLE.COM."));
	assert_false(mtasts_mx_match("*.example.com", "example.com"));
	assert_false(mtasts_mx_match("*.example.com", "a.b.example.com"));
	assert_false(mtasts_mx_match("*.example.com", ".example.com"));
	assert_false(mtasts_mx_match("*.example.com", "mailexample.com"));
	assert_false(mtasts_mx_match("*.example.com", "mail.example.com.evil"));
	/* an MX name that is no host name matches nothing, not even itself */
	assert_false(mtasts_mx_match("*.example.com", "*.example.com"));
	assert_false(mtasts_mx_match("mail.example.com", ""));
	assert_false(mtasts_mx_match("mail.example.com", "."));
	assert_false(mtasts_mx_match("*.example.com", "ma il.example.com"));
	assert_false(mtasts_mx_match("*.example.com", "mail\n.example.com"));

	struct mtasts_policy p;
	policy("version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 1\n", MTASTS_OK, &p);
	assert_true(mtasts_policy_mx_match(&p, "mail.example.com"));
	assert_true(mtasts_policy_mx_match(&p, "mx2.example.net"));
	assert_false(mtasts_policy_mx_match(&p, "example.net"));
	assert_false(mtasts_policy_mx_match(&p, "evil.example"));
	policy("version: STSv1\nmode: none\nmax_age: 1\n", MTASTS_OK, &p);
	assert_false(mtasts_policy_mx_match(&p, "mail.example.com"));
}

static void test_strings(void **state)
{
	for (int e = MTASTS_OK; e <= MTASTS_MULTIPLE; e++)
		assert_string_not_equal(mtasts_error_str((enum mtasts_error)e), "?");
	for (int m = MTASTS_MODE_NONE; m <= MTASTS_MODE_ENFORCE; m++)
		assert_string_not_equal(mtasts_mode_str((enum mtasts_mode)m), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_example),    cmocka_unit_test(test_policy_whitespace),
		cmocka_unit_test(test_policy_fields),     cmocka_unit_test(test_policy_max_age_cap),
		cmocka_unit_test(test_policy_duplicates), cmocka_unit_test(test_policy_unknown),
		cmocka_unit_test(test_policy_mx_values),  cmocka_unit_test(test_policy_mode_none),
		cmocka_unit_test(test_policy_too_many_mx), cmocka_unit_test(test_policy_hostile),
		cmocka_unit_test(test_txt),               cmocka_unit_test(test_txt_select),
		cmocka_unit_test(test_mx_match),          cmocka_unit_test(test_strings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
