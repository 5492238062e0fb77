/* test_dmarc_from.c — Author Domains from RFC 5322 From fields (display names, quoted strings,
 * comments, routes, groups, obsolete forms, several fields) and the domain normal form (IDN). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/dmarc_from.h"
#include "test_util.h"

/* Parses a whole message from an exact-size heap copy. */
static enum dmarc_from_error parse_msg(const char *msg, struct dmarc_from *r)
{
	const char *err = NULL;
	char *copy = test_dup(msg, strlen(msg));
	enum dmarc_from_error e = dmarc_from_parse(copy, strlen(msg), r, &err);
	free(copy);
	if (e != DMARC_FROM_OK)
		assert_non_null(err);
	return e;
}

/* One From field value; checks the error and the domains found (space-separated in want). */
static void check_from(const char *value, enum dmarc_from_error want_err, const char *want)
{
	char msg[2048], esc[1024];
	struct dmarc_from r;
	snprintf(msg, sizeof(msg), "Received: from x\r\nFrom:%s\r\nSubject: s\r\n\r\nFrom: body@ignored.example\r\n", value);
	enum dmarc_from_error e = parse_msg(msg, &r);
	char got[1024] = "";
	for (size_t i = 0; i < r.count; i++)
		snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", i ? " " : "", r.domains[i]);
	if (e != want_err || strcmp(got, want) != 0)
		fail_msg("From:%s → %s [%s], want %s [%s]", test_escape(value, strlen(value), esc, sizeof(esc)),
			 dmarc_from_error_str(e), got, dmarc_from_error_str(want_err), want);
	assert_int_equal(r.fields, 1);
}

static void test_mailboxes(void **state)
{
	check_from(" a@example.com", DMARC_FROM_OK, "example.com");
	check_from(" A@Example.COM", DMARC_FROM_OK, "example.com");
	check_from(" John Doe <john@example.com>", DMARC_FROM_OK, "example.com");
	check_from("<john@example.com>", DMARC_FROM_OK, "example.com");
	check_from(" \"Doe, John\" <john@example.com>", DMARC_FROM_OK, "example.com");
	check_from(" \"a \\\"b\\\" , c\" <x@y.example>", DMARC_FROM_OK, "y.example");
	check_from(" \"quoted local\"@q.example", DMARC_FROM_OK, "q.example");
	check_from(" =?utf-8?q?J=C3=B6rg?= <j@x.example>", DMARC_FROM_OK, "x.example");
	check_from(" J\xc3\xb6rg M\xc3\xbcller <j@x.example>", DMARC_FROM_OK, "x.example");
	check_from(" Dr. J. Doe <j@x.example>", DMARC_FROM_OK, "x.example"); /* obs-phrase: dots */
	/* comments, nested, with quoted pairs, anywhere CFWS may be */
	check_from(" (comment (nested) \\) ) john@x.example (another)", DMARC_FROM_OK, "x.example");
	check_from(" john(c)@(c)x.example", DMARC_FROM_OK, "x.example");
	check_from(" John <john@x.example> (work)", DMARC_FROM_OK, "x.example");
	/* obsolete: CFWS around dots, a source route, empty list elements */
	check_from(" john . doe @ x . example", DMARC_FROM_OK, "x.example");
	check_from(" <@a.example,@b.example:john@c.example>", DMARC_FROM_OK, "c.example");
	check_from(" Name <,@a.example, ,@b.example:john@c.example>", DMARC_FROM_OK, "c.example");
	check_from(" a@x.example,,b@y.example,", DMARC_FROM_OK, "x.example y.example");
	check_from(" ,a@x.example", DMARC_FROM_OK, "x.example");
	/* folded lines, CRLF and bare LF */
	check_from(" John\r\n <j@x.example>", DMARC_FROM_OK, "x.example");
	check_from("\r\n\tj@x.example", DMARC_FROM_OK, "x.example");
	check_from(" John\n <j@x.example>", DMARC_FROM_OK, "x.example");
	/* the leniency: "@" in an unquoted display name before an angle address */
	check_from(" ceo@bank.example <x@evil.example>", DMARC_FROM_OK, "evil.example");
}

static void test_several(void **state)
{
	check_from(" a@x.example, b@x.example", DMARC_FROM_OK, "x.example");
	check_from(" a@x.example, B@X.EXAMPLE, c@y.example", DMARC_FROM_OK, "x.example y.example");
	check_from(" team: a@x.example, Bob <b@y.example>;", DMARC_FROM_OK, "x.example y.example");
	check_from(" team: a@x.example;, c@z.example", DMARC_FROM_OK, "x.example z.example");
	check_from(" team:, a@x.example,;", DMARC_FROM_OK, "x.example");
	check_from(" a@d1.example, a@d2.example, a@d3.example, a@d4.example", DMARC_FROM_OK,
		   "d1.example d2.example d3.example d4.example");

	struct dmarc_from r;
	assert_int_equal(parse_msg("From: a@d1.example, a@d2.example, a@d3.example, a@d4.example, a@d5.example, "
				   "a@d1.example\r\n\r\n",
				   &r),
			 DMARC_FROM_OK);
	assert_int_equal(r.count, DMARC_FROM_DOMAINS_MAX);
	assert_true(r.truncated);
	assert_int_equal(r.mailboxes, 6);

	/* RFC 5322 §3.6: one From field; several are counted, their domains all kept */
	assert_int_equal(parse_msg("From: a@x.example\r\nTo: b@z.example\r\nfrom : c@y.example\r\n\r\n", &r), DMARC_FROM_OK);
	assert_int_equal(r.fields, 2);
	assert_int_equal(r.count, 2);
	assert_string_equal(r.domains[1], "y.example");
	assert_int_equal(parse_msg("From: a@x.example\r\nFROM: A@X.example\r\n\r\n", &r), DMARC_FROM_OK);
	assert_int_equal(r.fields, 2);
	assert_int_equal(r.count, 1);
}

static void test_unusable(void **state)
{
	/* no domain DMARC can look up */
	check_from(" undisclosed-recipients:;", DMARC_FROM_NO_DOMAIN, "");
	check_from(" a@[192.0.2.1]", DMARC_FROM_NO_DOMAIN, "");
	check_from(" a@exa_mple.com", DMARC_FROM_NO_DOMAIN, "");
	check_from(" a@-x.example", DMARC_FROM_NO_DOMAIN, "");
	check_from(" a@b\xfc" "cher.example", DMARC_FROM_NO_DOMAIN, ""); /* Latin-1, not UTF-8 */
	check_from(" a@[192.0.2.1], b@x.example", DMARC_FROM_OK, "x.example");

	struct dmarc_from r;
	assert_int_equal(parse_msg("From: a@[IPv6:2001:db8::1], a@x_y.example\r\n\r\n", &r), DMARC_FROM_NO_DOMAIN);
	assert_int_equal(r.mailboxes, 2);
	assert_int_equal(r.unusable, 2);
	/* no From field at all, or only in the body */
	assert_int_equal(parse_msg("Sender: a@x.example\r\n\r\nFrom: b@y.example\r\n", &r), DMARC_FROM_NONE);
	assert_int_equal(parse_msg("", &r), DMARC_FROM_NONE);
	assert_int_equal(parse_msg("From: a@x.example", &r), DMARC_FROM_OK); /* no line end, no body */
	assert_string_equal(r.domains[0], "x.example");
}

static void test_syntax(void **state)
{
	const char *bad[] = {
		" John Doe",          " <a@b.example",      " a@b.example>",       " (unclosed a@b.example",
		" \"unclosed <a@b.example>", " a@",            " @b.example",         " Doe, John <j@x.example>",
		" a@b.example c@d.example", " g: a@b.example", " g: h: a@b.example;;", " <>",
		" a@b.example.",      " a@.example",        " a@b..example",       " a@[1.2.3.4",
		" a@[1.[2]",          " a) @b.example",     " <a@b.example> <c@d.example>", " : a@b.example;",
		" a@b.example;",      " a\\@b.example",     " a@b\x01.example",    "",
		" g: a@b.example, c;", " <@a.example a@b.example>",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char msg[512], esc[512];
		struct dmarc_from r;
		snprintf(msg, sizeof(msg), "From:%s\r\n\r\n", bad[i]);
		enum dmarc_from_error e = parse_msg(msg, &r);
		if (e != DMARC_FROM_SYNTAX)
			fail_msg("From:%s → %s, want syntax", test_escape(bad[i], strlen(bad[i]), esc, sizeof(esc)),
				 dmarc_from_error_str(e));
	}
	/* a broken field does not hide a good one's domain from the caller */
	struct dmarc_from r;
	assert_int_equal(parse_msg("From: a@x.example\r\nFrom: Doe, John <j@y.example>\r\n\r\n", &r), DMARC_FROM_SYNTAX);
	assert_int_equal(r.fields, 2);
	assert_string_equal(r.domains[0], "x.example");
	/* a NUL inside the value */
	const char nul[] = "From: a@x.exa\0mple\r\n\r\n";
	const char *err;
	assert_int_equal(dmarc_from_parse(nul, sizeof(nul) - 1, &r, &err), DMARC_FROM_SYNTAX);
}

static void check_domain(const char *in, const char *want)
{
	char out[DNS_HOST_SIZE];
	const char *err = NULL;
	enum dmarc_from_error e = dmarc_from_domain(in, strlen(in), out, &err);
	if (want == NULL) {
		if (e != DMARC_FROM_BAD_DOMAIN)
			fail_msg("\"%s\" accepted as \"%s\"", in, out);
		assert_non_null(err);
		return;
	}
	if (e != DMARC_FROM_OK)
		fail_msg("\"%s\": %s", in, err);
	assert_string_equal(out, want);
}

static void test_domain_form(void **state)
{
	check_domain("Example.COM", "example.com");
	check_domain("example.com.", "example.com");
	check_domain("xn--BCHER-kva.example", "xn--bcher-kva.example");
	/* RFC 9989 §5.3.1: U-labels become A-labels (RFC 3492 Punycode) */
	check_domain("b\xc3\xbc" "cher.example", "xn--bcher-kva.example");
	check_domain("B\xc3\xbc" "cher.example", "xn--bcher-kva.example");
	check_domain("m\xc3\xbc" "nchen.example", "xn--mnchen-3ya.example");
	check_domain("\xc3\xb1" "and\xc3\xba.example", "xn--and-6ma2c.example");
	check_domain("\xe4\xbe\x8b\xe3\x81\x88.\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88", "xn--r8jz45g.xn--zckzah");
	check_domain("\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80.example", "xn--e1afmkfd.example");
	check_domain("\xe3\x83\x89\xe3\x83\xa1\xe3\x82\xa4\xe3\x83\xb3\xe5\x90\x8d\xe4\xbe\x8b.jp", "xn--eckwd4c7cu47r2wf.jp");
	check_domain("a-\xc3\xbc.example", "xn--a--yka.example");
	/* 40 × "ü" encodes to 42 octets: a 46-octet label */
	char forty[128] = "";
	for (int i = 0; i < 40; i++)
		strcat(forty, "\xc3\xbc");
	strcat(forty, ".example");
	check_domain(forty, "xn--tdaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example");

	char out[DNS_HOST_SIZE];
	const char *err;
	assert_int_equal(dmarc_from_domain("example.com\0x", 13, out, &err), DMARC_FROM_BAD_DOMAIN);
	assert_int_equal(dmarc_from_domain("ex\0ample.com", 12, out, &err), DMARC_FROM_BAD_DOMAIN);
	check_domain("", NULL);
	check_domain(".", NULL);
	check_domain("a..example", NULL);
	check_domain(".example", NULL);
	check_domain("a_b.example", NULL);
	check_domain("a b.example", NULL);
	check_domain("exa\xc3mple.com", NULL);          /* a cut UTF-8 sequence */
	check_domain("\xc0\xaf.example", NULL);          /* overlong */
	check_domain("\xed\xa0\x80.example", NULL);      /* a surrogate */
	check_domain("\xf4\x90\x80\x80.example", NULL);  /* above U+10FFFF */
	char lab[128];
	memset(lab, 'a', 64);
	lab[64] = '\0';
	check_domain(lab, NULL);
	lab[63] = '\0';
	check_domain(lab, lab);
	/* a U-label whose A-label is longer than 63 octets */
	char many[512] = "";
	for (int i = 0; i < 60; i++)
		strcat(many, "\xe4\xbe\x8b");
	check_domain(many, NULL);
	/* 253 octets pass, 254 do not */
	char name[300] = "";
	while (strlen(name) < 240)
		strcat(name, "abcdefghi.");
	size_t n = strlen(name);
	memset(name + n, 'x', 253 - n);
	name[253] = '\0';
	check_domain(name, name);
	name[253] = 'x';
	name[254] = '\0';
	check_domain(name, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mailboxes), cmocka_unit_test(test_several),    cmocka_unit_test(test_unusable),
		cmocka_unit_test(test_syntax),    cmocka_unit_test(test_domain_form),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
