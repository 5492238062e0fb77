/* test_dashboard_sessions.c — the dashboard's session table: tokens found only whole and exact,
 * CSRF tokens compared exactly, sessions ended by logout, idleness and age, and the table bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "http/dashboard_sessions.h"

static const int64_t T0 = 1800000000000LL;

static void test_start_find_end(void **state)
{
	(void)state;
	struct dashboard_sessions *d = dashboard_sessions_new();
	assert_non_null(d);
	char tok[DASHBOARD_TOKEN_LEN + 1], tok2[DASHBOARD_TOKEN_LEN + 1];
	const struct dashboard_session *s = dashboard_sessions_start(d, "boss@example.org", NULL, T0, tok);
	assert_non_null(s);
	assert_int_equal(strlen(tok), DASHBOARD_TOKEN_LEN);
	assert_int_equal(strspn(tok, "0123456789abcdef"), DASHBOARD_TOKEN_LEN);
	assert_string_equal(s->user, "boss@example.org");
	assert_string_equal(s->key_id, "");
	assert_string_not_equal(s->csrf, tok);
	char csrf[DASHBOARD_TOKEN_LEN + 1];
	snprintf(csrf, sizeof(csrf), "%s", s->csrf);

	struct api_key key = {.id = "0f7e1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b", .name = "ci"};
	const struct dashboard_session *k = dashboard_sessions_start(d, NULL, &key, T0, tok2);
	assert_non_null(k);
	assert_string_equal(k->key_id, key.id);
	assert_string_equal(k->rate_id, key.id);
	assert_string_not_equal(tok, tok2);
	/* one rate-limit bucket per account, not per session */
	char again[DASHBOARD_TOKEN_LEN + 1];
	const struct dashboard_session *s2 = dashboard_sessions_start(d, "boss@example.org", NULL, T0, again);
	assert_non_null(s2);
	assert_int_equal(strncmp(s2->rate_id, "dashboard-", 10), 0);
	assert_int_equal(strlen(s2->rate_id), 26);
	s = dashboard_sessions_find(d, tok, T0);
	assert_string_equal(s->rate_id, s2->rate_id);
	dashboard_sessions_end(d, again);

	s = dashboard_sessions_find(d, tok, T0 + 1000);
	assert_non_null(s);
	assert_string_equal(s->user, "boss@example.org");
	assert_true(dashboard_session_csrf_ok(s, csrf));
	assert_false(dashboard_session_csrf_ok(s, ""));
	assert_false(dashboard_session_csrf_ok(s, tok)); /* the cookie's token is not the CSRF token */
	char wrong[DASHBOARD_TOKEN_LEN + 2];
	snprintf(wrong, sizeof(wrong), "%s", csrf);
	wrong[5] = wrong[5] == 'a' ? 'b' : 'a';
	assert_false(dashboard_session_csrf_ok(s, wrong));
	snprintf(wrong, sizeof(wrong), "%sa", csrf);
	assert_false(dashboard_session_csrf_ok(s, wrong));

	/* a token found only whole: a prefix, a longer string or a changed octet is nobody */
	char t[DASHBOARD_TOKEN_LEN + 2];
	snprintf(t, sizeof(t), "%.*s", DASHBOARD_TOKEN_LEN - 1, tok);
	assert_null(dashboard_sessions_find(d, t, T0 + 1000));
	snprintf(t, sizeof(t), "%s0", tok);
	assert_null(dashboard_sessions_find(d, t, T0 + 1000));
	snprintf(t, sizeof(t), "%s", tok);
	t[0] = t[0] == '0' ? '1' : '0';
	assert_null(dashboard_sessions_find(d, t, T0 + 1000));
	assert_null(dashboard_sessions_find(d, "", T0 + 1000));

	dashboard_sessions_end(d, tok);
	assert_null(dashboard_sessions_find(d, tok, T0 + 2000));
	assert_non_null(dashboard_sessions_find(d, tok2, T0 + 2000)); /* the other one lives on */
	dashboard_sessions_free(d);
}

static void test_expiry(void **state)
{
	(void)state;
	struct dashboard_sessions *d = dashboard_sessions_new();
	char tok[DASHBOARD_TOKEN_LEN + 1];
	assert_non_null(dashboard_sessions_start(d, "a@example.org", NULL, T0, tok));
	/* used every hour: idleness never ends it, its age does */
	int64_t t = T0;
	for (int h = 1; h < DASHBOARD_SESSION_MAX_AGE / 3600; h++) {
		t = T0 + (int64_t)h * 3600 * 1000;
		const struct dashboard_session *s = dashboard_sessions_find(d, tok, t);
		assert_non_null(s);
		assert_int_equal(dashboard_session_max_age(s, t), DASHBOARD_SESSION_MAX_AGE - h * 3600);
	}
	assert_null(dashboard_sessions_find(d, tok, T0 + (int64_t)DASHBOARD_SESSION_MAX_AGE * 1000));

	assert_non_null(dashboard_sessions_start(d, "b@example.org", NULL, T0, tok));
	assert_non_null(dashboard_sessions_find(d, tok, T0 + (int64_t)DASHBOARD_SESSION_IDLE * 1000 - 1));
	/* idle from its last use */
	assert_null(dashboard_sessions_find(d, tok, T0 + (int64_t)DASHBOARD_SESSION_IDLE * 2000));
	dashboard_sessions_free(d);
}

static void test_bounded(void **state)
{
	(void)state;
	struct dashboard_sessions *d = dashboard_sessions_new();
	char first[DASHBOARD_TOKEN_LEN + 1], tok[DASHBOARD_TOKEN_LEN + 1], last[DASHBOARD_TOKEN_LEN + 1];
	assert_non_null(dashboard_sessions_start(d, "first@example.org", NULL, T0, first));
	for (int i = 1; i < DASHBOARD_SESSIONS_MAX; i++)
		assert_non_null(dashboard_sessions_start(d, "x@example.org", NULL, T0 + i, tok));
	assert_non_null(dashboard_sessions_find(d, first, T0 + DASHBOARD_SESSIONS_MAX));
	/* full: the next one pushes out the one used longest ago (not first, just used) */
	assert_non_null(dashboard_sessions_start(d, "last@example.org", NULL, T0 + DASHBOARD_SESSIONS_MAX + 1, last));
	assert_non_null(dashboard_sessions_find(d, first, T0 + DASHBOARD_SESSIONS_MAX + 2));
	assert_non_null(dashboard_sessions_find(d, last, T0 + DASHBOARD_SESSIONS_MAX + 2));
	dashboard_sessions_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_start_find_end),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
