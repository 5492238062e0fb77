/* test_dashboard_login.c — the dashboard's sign-in body: the two forms taken, everything else
 * (unknown or mixed members, wrong types, empty or over-long values, broken JSON) refused, and no
 * secret left behind in a refused request. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "http/dashboard_login.h"

static int parse(const char *body, struct dashboard_login *r, const char **why)
{
	return dashboard_login_parse(body, strlen(body), r, why);
}

static void test_password_form(void **state)
{
	(void)state;
	struct dashboard_login r;
	const char *why = NULL;
	assert_int_equal(parse("{\"email\": \"boss@example.org\", \"password\": \"p\\u00e4ss word\"}", &r, &why), 0);
	assert_int_equal(r.kind, DASHBOARD_LOGIN_PASSWORD);
	assert_string_equal(r.email, "boss@example.org");
	assert_string_equal(r.password, "p\xc3\xa4ss word");
	assert_string_equal(r.api_key, "");
}

static void test_key_form(void **state)
{
	(void)state;
	struct dashboard_login r;
	const char *why = NULL;
	assert_int_equal(parse("{\"api_key\": \"re_abc\"}", &r, &why), 0);
	assert_int_equal(r.kind, DASHBOARD_LOGIN_API_KEY);
	assert_string_equal(r.api_key, "re_abc");
	assert_string_equal(r.password, "");
}

static void test_refused(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", "{", "[]", "\"x\"", "{}", "null",
		"{\"email\": \"a@b\"}",                                   /* no password */
		"{\"password\": \"x\"}",                                  /* no address */
		"{\"email\": \"a@b\", \"password\": \"\"}",               /* empty */
		"{\"email\": \"\", \"password\": \"x\"}",
		"{\"email\": 1, \"password\": \"x\"}",
		"{\"email\": \"a@b\", \"password\": [\"x\"]}",
		"{\"api_key\": \"\"}",
		"{\"api_key\": null}",
		"{\"api_key\": \"k\", \"email\": \"a@b\"}",               /* both forms */
		"{\"email\": \"a@b\", \"password\": \"x\", \"remember\": true}",
		"{\"email\": \"a@b\", \"password\": \"x\", \"password\": \"y\"}", /* duplicate key */
		"{\"email\": \"a@b\", \"password\": \"x\"} trailing",
		"{\"email\": \"a@b\", \"password\": \"x\\u0000y\"}",      /* NUL */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct dashboard_login r;
		const char *why = NULL;
		if (parse(bad[i], &r, &why) != -1)
			fail_msg("accepted: %s", bad[i]);
		assert_non_null(why);
		assert_string_equal(r.password, "");
		assert_string_equal(r.api_key, "");
	}
}

static void test_lengths(void **state)
{
	(void)state;
	char body[1024], pw[DASHBOARD_PASSWORD_MAX + 2];
	struct dashboard_login r;
	const char *why;
	memset(pw, 'p', sizeof(pw));
	pw[DASHBOARD_PASSWORD_MAX] = '\0'; /* exactly the most */
	snprintf(body, sizeof(body), "{\"email\": \"a@b\", \"password\": \"%s\"}", pw);
	assert_int_equal(parse(body, &r, &why), 0);
	assert_int_equal(strlen(r.password), DASHBOARD_PASSWORD_MAX);
	pw[DASHBOARD_PASSWORD_MAX] = 'p', pw[DASHBOARD_PASSWORD_MAX + 1] = '\0'; /* one more: refused, not cut */
	snprintf(body, sizeof(body), "{\"email\": \"a@b\", \"password\": \"%s\"}", pw);
	assert_int_equal(parse(body, &r, &why), -1);
	char key[DASHBOARD_API_KEY_MAX + 2];
	memset(key, 'k', sizeof(key));
	key[DASHBOARD_API_KEY_MAX + 1] = '\0';
	snprintf(body, sizeof(body), "{\"api_key\": \"%s\"}", key);
	assert_int_equal(parse(body, &r, &why), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_password_form),
		cmocka_unit_test(test_key_form),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_lengths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
