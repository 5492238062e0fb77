/* test_login_penalty.c — the arithmetic of failed logins (src/server/login_penalty.c): Dovecot's
 * delay shape, the per-account counts with their good clients and bounded table, and the set of
 * bans as store refreshes see it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "mailbox/users.h"
#include "server/login_penalty.h"

static void test_delay_shape(void **state)
{
	(void)state;
	/* the defaults: 2, 4, 8, 15, 15 … s */
	static const unsigned want[] = {0, 2000, 4000, 8000, 15000, 15000, 15000};
	for (unsigned n = 0; n < sizeof(want) / sizeof(want[0]); n++)
		assert_int_equal(login_delay_ms(n, 2000, 15000), want[n]);
	assert_int_equal(login_delay_ms(1000000, 2000, 15000), 15000);
	assert_int_equal(login_delay_ms(UINT_MAX, 2000, 15000), 15000);
	/* a small scale, as tests run it */
	assert_int_equal(login_delay_ms(1, 100, 400), 100);
	assert_int_equal(login_delay_ms(2, 100, 400), 200);
	assert_int_equal(login_delay_ms(3, 100, 400), 400);
	assert_int_equal(login_delay_ms(4, 100, 400), 400);
	/* the largest values the configuration allows, and more: no overflow */
	assert_int_equal(login_delay_ms(40, 60000, 300000), 300000);
	assert_int_equal(login_delay_ms(UINT_MAX, UINT_MAX, UINT_MAX), UINT_MAX);
	assert_int_equal(login_delay_ms(2, UINT_MAX / 2 + 1, UINT_MAX), UINT_MAX);
	/* a delay of 0 turns it off; a maximum under the start is the maximum */
	assert_int_equal(login_delay_ms(5, 0, 15000), 0);
	assert_int_equal(login_delay_ms(1, 2000, 1000), 1000);
	assert_int_equal(login_delay_ms(1, 2000, 0), 0);
}

static void test_accounts_count_across_clients(void **state)
{
	(void)state;
	struct login_accounts *a = login_accounts_new();
	assert_non_null(a);
	time_t now = 1000000;
	bool good;
	assert_int_equal(login_accounts_fail(a, 42, 1, now, false, &good), 1);
	assert_false(good);
	assert_int_equal(login_accounts_fail(a, 42, 2, now, false, &good), 2);
	assert_int_equal(login_accounts_fail(a, 42, 3, now, true, &good), 2); /* a repeat: not again */
	assert_int_equal(login_accounts_fail(a, 43, 1, now, false, &good), 1); /* another account */
	/* a success does not lower the count (the failures may be an attacker's) and makes the client good */
	assert_int_equal(login_accounts_success(a, 42, 7, now + 1, &good), 2);
	assert_false(good);
	assert_int_equal(login_accounts_success(a, 42, 7, now + 2, &good), 2);
	assert_true(good);
	assert_int_equal(login_accounts_fail(a, 42, 7, now + 3, false, &good), 3);
	assert_true(good);
	assert_int_equal(login_accounts_fail(a, 42, 8, now + 3, false, &good), 4);
	assert_false(good);
	/* the window: the count and the good clients are forgotten */
	assert_int_equal(login_accounts_fail(a, 42, 7, now + 4 + LOGIN_ACCOUNT_WINDOW, false, &good), 1);
	assert_false(good);
	/* only LOGIN_ACCOUNT_GOOD good clients: the oldest makes room */
	for (uint64_t c = 100; c < 100 + LOGIN_ACCOUNT_GOOD + 1; c++)
		login_accounts_success(a, 44, c, now + (time_t)c, &good);
	login_accounts_fail(a, 44, 100, now + 200, false, &good);
	assert_false(good);
	login_accounts_fail(a, 44, 100 + LOGIN_ACCOUNT_GOOD, now + 200, false, &good);
	assert_true(good);
	login_accounts_fail(a, 44, 0, now + 200, false, &good); /* client 0: none, never good */
	assert_false(good);
	login_accounts_free(a);
}

/* Names sprayed at the table push out the stalest of the probed slots, not the account under
 * attack, and never make the table grow. */
static void test_accounts_table_is_bounded(void **state)
{
	(void)state;
	struct login_accounts *a = login_accounts_new();
	time_t now = 1000000;
	bool good;
	const uint64_t target = 5;
	login_accounts_fail(a, target, 1, now, false, &good);
	login_accounts_fail(a, target, 2, now, false, &good);
	/* keys that probe the same slots, all older than the target's last failure */
	for (uint64_t i = 1; i < LOGIN_ACCOUNT_PROBES; i++)
		login_accounts_fail(a, target + i * LOGIN_ACCOUNT_SLOTS, 3, now - 100, false, &good);
	for (uint64_t i = LOGIN_ACCOUNT_PROBES; i < LOGIN_ACCOUNT_PROBES + 50; i++)
		assert_int_equal(login_accounts_fail(a, target + i * LOGIN_ACCOUNT_SLOTS, 3, now - 50, false, &good), 1);
	assert_int_equal(login_accounts_fail(a, target, 3, now, true, &good), 2);
	/* an idle slot is taken before a busy one */
	assert_int_equal(login_accounts_fail(a, 9, 1, now - 10 * LOGIN_ACCOUNT_WINDOW, false, &good), 1);
	assert_int_equal(login_accounts_fail(a, 9 + LOGIN_ACCOUNT_SLOTS, 1, now, false, &good), 1);
	assert_int_equal(login_accounts_fail(a, 9, 1, now, true, &good), 0); /* it was the one taken */
	/* millions of made-up names cost nothing more */
	for (uint64_t k = 1; k < 200000; k++)
		login_accounts_fail(a, k * 2654435761u, 3, now, false, &good);
	login_accounts_free(a);
}

static const char *gone_log[8];
static bool gone_expired[8];
static size_t gone_n;

static void record_gone(const struct login_ban *b, bool expired, void *arg)
{
	(void)arg;
	static char names[8][NET_CLIENT_KEY_SIZE];
	assert_true(gone_n < 8);
	snprintf(names[gone_n], sizeof(names[gone_n]), "%s", b->client);
	gone_log[gone_n] = names[gone_n];
	gone_expired[gone_n++] = expired;
}

static struct users_ban row(const char *client, int64_t since, int64_t until, unsigned failures)
{
	struct users_ban r;
	memset(&r, 0, sizeof(r));
	snprintf(r.client, sizeof(r.client), "%s", client);
	r.since = since;
	r.until = until;
	r.failures = failures;
	return r;
}

static void test_bans_follow_the_store(void **state)
{
	(void)state;
	struct login_bans *b = login_bans_new();
	time_t now = 1000000;
	gone_n = 0;
	/* a new ban holds at once and until its end */
	assert_non_null(login_bans_add(b, "192.0.2.1", now, now + 3600, 10));
	assert_non_null(login_bans_find(b, "192.0.2.1", now + 3599));
	assert_null(login_bans_find(b, "192.0.2.1", now + 3600));
	assert_null(login_bans_find(b, "192.0.2.2", now));
	/* a refresh that read before it was written does not take its absence for an unban */
	login_bans_sync(b, NULL, 0, 5, now, record_gone, NULL);
	assert_int_equal(gone_n, 0);
	assert_non_null(login_bans_find(b, "192.0.2.1", now));
	/* written before refresh 6 read: refresh 6 finds it */
	login_bans_written(b, "192.0.2.1", now, 6);
	struct users_ban rows[3] = {row("192.0.2.1", now, now + 3600, 10), row("2001:db8::/64", now - 10, now + 60, 12),
				    row("192.0.2.3", now - 7200, now, 10)};
	login_bans_sync(b, rows, 3, 6, now, record_gone, NULL);
	assert_int_equal(gone_n, 0);
	assert_non_null(login_bans_find(b, "2001:db8::/64", now)); /* another process's, or the last run's */
	assert_null(login_bans_find(b, "192.0.2.3", now));        /* over: not taken */
	assert_int_equal(login_bans_count(b), 2);
	/* the operator lifted 192.0.2.1: refresh 7 does not find it */
	login_bans_sync(b, &rows[1], 1, 7, now + 1, record_gone, NULL);
	assert_int_equal(gone_n, 1);
	assert_string_equal(gone_log[0], "192.0.2.1");
	assert_false(gone_expired[0]);
	/* a ban that ends goes at the next refresh, as expired, even if the store still has it */
	login_bans_sync(b, &rows[1], 1, 8, now + 60, record_gone, NULL);
	assert_int_equal(gone_n, 2);
	assert_string_equal(gone_log[1], "2001:db8::/64");
	assert_true(gone_expired[1]);
	assert_int_equal(login_bans_count(b), 0);
	/* a ban whose write failed (never written) holds until it ends, then goes */
	assert_non_null(login_bans_add(b, "192.0.2.4", now, now + 100, 10));
	login_bans_sync(b, NULL, 0, 9, now + 50, record_gone, NULL);
	assert_int_equal(gone_n, 2);
	login_bans_sync(b, NULL, 0, 10, now + 100, record_gone, NULL);
	assert_int_equal(gone_n, 3);
	assert_true(gone_expired[2]);
	/* a written() for an older ban of the same client changes nothing */
	assert_non_null(login_bans_add(b, "192.0.2.5", now + 200, now + 300, 10));
	login_bans_written(b, "192.0.2.5", now, 11);
	login_bans_sync(b, NULL, 0, 11, now + 200, record_gone, NULL);
	assert_int_equal(gone_n, 3);
	login_bans_free(b);
}

/* Rows the program did not write are skipped; the set never passes LOGIN_BANS_MAX. */
static void test_bans_hostile_rows_and_bound(void **state)
{
	(void)state;
	struct login_bans *b = login_bans_new();
	time_t now = 1000000;
	gone_n = 0;
	struct users_ban rows[2];
	rows[0] = row("", now, now + 10, 1);
	memset(rows[1].client, 'a', sizeof(rows[1].client) - 1); /* longer than any key */
	rows[1].client[sizeof(rows[1].client) - 1] = '\0';
	rows[1].since = now;
	rows[1].until = now + 10;
	rows[1].failures = 1;
	login_bans_sync(b, rows, 2, 1, now, record_gone, NULL);
	assert_int_equal(login_bans_count(b), 0);
	assert_null(login_bans_add(b, rows[1].client, now, now + 10, 1));
	char key[NET_CLIENT_KEY_SIZE];
	size_t added = login_bans_count(b);
	for (unsigned i = 0; i < LOGIN_BANS_MAX + 10; i++) {
		snprintf(key, sizeof(key), "10.%u.%u.%u", i >> 16, (i >> 8) & 255, i & 255);
		if (login_bans_add(b, key, now, now + 10, 1) != NULL)
			added++;
	}
	assert_int_equal(added, LOGIN_BANS_MAX);
	assert_int_equal(login_bans_count(b), LOGIN_BANS_MAX);
	/* replacing a ban in force needs no room */
	assert_non_null(login_bans_add(b, "10.0.0.1", now, now + 20, 2));
	login_bans_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_delay_shape),
		cmocka_unit_test(test_accounts_count_across_clients),
		cmocka_unit_test(test_accounts_table_is_bounded),
		cmocka_unit_test(test_bans_follow_the_store),
		cmocka_unit_test(test_bans_hostile_rows_and_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
