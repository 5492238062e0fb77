/* test_cookie.c — reading one cookie out of a Cookie field (RFC 6265 §5.4), as browsers send it and
 * as a hostile client might, and the dashboard's Set-Cookie line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "http/cookie.h"

struct cookie_case {
	const char *header;
	const char *name;
	int want;
	const char *value;
};

static const struct cookie_case cases[] = {
	{"mailwerk_session=abc", "mailwerk_session", 1, "abc"},
	{"a=1; mailwerk_session=abc; b=2", "mailwerk_session", 1, "abc"},
	{"a=1;mailwerk_session=abc", "mailwerk_session", 1, "abc"},
	{"  mailwerk_session = abc  ", "mailwerk_session", 1, "abc"},
	{"mailwerk_session=\"abc\"", "mailwerk_session", 1, "abc"},           /* §4.1.1 quoted value */
	{"mailwerk_session=first; mailwerk_session=second", "mailwerk_session", 1, "first"},
	{"xmailwerk_session=abc", "mailwerk_session", 0, ""},                   /* not a prefix match */
	{"mailwerk_sessionx=abc", "mailwerk_session", 0, ""},
	{"Mailwerk_Session=abc", "mailwerk_session", 0, ""},                    /* names are case-sensitive */
	{"mailwerk_session", "mailwerk_session", 0, ""},                        /* §5.2: no '=', ignored */
	{"junk; mailwerk_session=ok", "mailwerk_session", 1, "ok"},
	{"", "mailwerk_session", 0, ""},
	{";;;", "mailwerk_session", 0, ""},
	{"mailwerk_session=", "mailwerk_session", 1, ""},
	{"mailwerk_session=a b", "mailwerk_session", -1, ""},                   /* space inside */
	{"mailwerk_session=a\\b", "mailwerk_session", -1, ""},                  /* backslash */
	{"mailwerk_session=a,b", "mailwerk_session", -1, ""},                   /* comma */
	{"mailwerk_session=\"a", "mailwerk_session", -1, ""},                   /* unbalanced quote */
	{"mailwerk_session=a\x01", "mailwerk_session", -1, ""},                 /* control */
	{"mailwerk_session=\xc3\xa9", "mailwerk_session", -1, ""},              /* not ASCII */
	{"mailwerk_session=a=b", "mailwerk_session", 1, "a=b"},                 /* '=' is a cookie-octet */
};

static void test_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[64];
		int got = http_cookie_get(cases[i].header, cases[i].name, out, sizeof(out));
		if (got != cases[i].want)
			fail_msg("case %zu (%s): %d, want %d", i, cases[i].header, got, cases[i].want);
		if (got == 1)
			assert_string_equal(out, cases[i].value);
		else
			assert_string_equal(out, "");
	}
}

static void test_value_too_long(void **state)
{
	(void)state;
	char out[8];
	assert_int_equal(http_cookie_get("c=1234567", "c", out, sizeof(out)), 1);
	assert_string_equal(out, "1234567");
	assert_int_equal(http_cookie_get("c=12345678", "c", out, sizeof(out)), -1);
	assert_string_equal(out, "");
}

static void test_set_line(void **state)
{
	(void)state;
	char line[200];
	assert_true(http_cookie_set_line(line, sizeof(line), "s", "v", 60, false));
	assert_string_equal(line, "Set-Cookie: s=v; Path=/; Max-Age=60; HttpOnly; SameSite=Strict\r\n");
	assert_true(http_cookie_set_line(line, sizeof(line), "s", "", 0, true));
	assert_string_equal(line, "Set-Cookie: s=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict; Secure\r\n");
	assert_false(http_cookie_set_line(line, 20, "s", "v", 60, false));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_value_too_long),
		cmocka_unit_test(test_set_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
