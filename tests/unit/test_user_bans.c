/* test_user_bans.c — the auth_bans table (src/mailbox/bans.c) in a real mailwerk.db in a fresh
 * temporary directory: put, list in force, delete one or all, and rows it did not write. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "mailbox/users.h"

struct fixture {
	char dir[256];
	struct users *u;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	const char *tmp = getenv("TMPDIR");
	snprintf(f->dir, sizeof(f->dir), "%s/test_user_bans.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	const char *err = NULL;
	f->u = users_open(f->dir, &err);
	if (f->u == NULL)
		fail_msg("users_open: %s", err);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	users_close(f->u);
	static const char *const files[] = {"mailwerk.db", "mailwerk.db-wal", "mailwerk.db-shm"};
	char path[512];
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", f->dir, files[i]);
		unlink(path);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static struct users_ban ban(const char *client, int64_t since, int64_t until, unsigned failures)
{
	struct users_ban b;
	memset(&b, 0, sizeof(b));
	snprintf(b.client, sizeof(b.client), "%s", client);
	b.since = since;
	b.until = until;
	b.failures = failures;
	return b;
}

static void test_put_list_del(void **state)
{
	struct fixture *f = *state;
	const char *err;
	struct users_ban *v;
	size_t n;
	int64_t now = 2000000000;
	struct users_ban b1 = ban("192.0.2.1", now - 10, now + 3600, 10);
	struct users_ban b2 = ban("2001:db8::/64", now - 5, now + 60, 12);
	assert_int_equal(users_ban_put(f->u, &b1, &err), RESULT_OK);
	assert_int_equal(users_ban_put(f->u, &b2, &err), RESULT_OK);
	assert_int_equal(users_ban_list(f->u, now, USERS_BANS_MAX, &v, &n, &err), RESULT_OK);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].client, "192.0.2.1"); /* oldest first */
	assert_int_equal(v[0].since, now - 10);
	assert_int_equal(v[0].until, now + 3600);
	assert_int_equal(v[0].failures, 10);
	assert_string_equal(v[1].client, "2001:db8::/64");
	free(v);
	/* at most max; not those that ended */
	assert_int_equal(users_ban_list(f->u, now, 1, &v, &n, &err), RESULT_OK);
	assert_int_equal(n, 1);
	free(v);
	assert_int_equal(users_ban_list(f->u, now + 60, USERS_BANS_MAX, &v, &n, &err), RESULT_OK);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].client, "192.0.2.1");
	free(v);
	/* a new ban of the same client replaces its old one; ended ones are pruned by it */
	struct users_ban b3 = ban("192.0.2.1", now + 100, now + 200, 11);
	assert_int_equal(users_ban_put(f->u, &b3, &err), RESULT_OK);
	assert_int_equal(users_ban_list(f->u, 0, USERS_BANS_MAX, &v, &n, &err), RESULT_OK);
	assert_int_equal(n, 1); /* 2001:db8::/64 ended at now + 60 */
	assert_int_equal(v[0].failures, 11);
	free(v);
	assert_int_equal(users_ban_del(f->u, "192.0.2.2", &err), RESULT_PERMFAIL);
	assert_non_null(strstr(err, "no ban for 192.0.2.2"));
	assert_int_equal(users_ban_del(f->u, "192.0.2.1", &err), RESULT_OK);
	assert_int_equal(users_ban_del(f->u, "192.0.2.1", &err), RESULT_PERMFAIL);
	/* all: counts the ones in force */
	assert_int_equal(users_ban_put(f->u, &b1, &err), RESULT_OK);
	struct users_ban old = ban("192.0.2.9", now - 100, now - 50, 10);
	assert_int_equal(users_ban_put(f->u, &old, &err), RESULT_OK);
	unsigned gone = 99;
	assert_int_equal(users_ban_del_all(f->u, now, &gone, &err), RESULT_OK);
	assert_int_equal(gone, 1);
	assert_int_equal(users_ban_del_all(f->u, now, &gone, &err), RESULT_OK);
	assert_int_equal(gone, 0);
	assert_int_equal(users_ban_list(f->u, 0, USERS_BANS_MAX, &v, &n, &err), RESULT_OK);
	assert_int_equal(n, 0);
	free(v);
	/* nothing to put */
	struct users_ban empty = ban("", now, now + 1, 1);
	assert_int_equal(users_ban_put(f->u, &empty, &err), RESULT_PERMFAIL);
}

/* Rows another program wrote into the file: skipped or clamped, never read past. */
static void test_rows_it_did_not_write(void **state)
{
	struct fixture *f = *state;
	char path[512];
	snprintf(path, sizeof(path), "%s/mailwerk.db", f->dir);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	char sql[1024];
	char longname[200];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	snprintf(sql, sizeof(sql),
		 "INSERT INTO auth_bans VALUES ('%s', 1, 4000000000, 1);"
		 "INSERT INTO auth_bans VALUES ('', 1, 4000000000, 1);"
		 "INSERT INTO auth_bans VALUES (CAST(X'3139322e3000312e31' AS TEXT), 1, 4000000000, 1);"
		 "INSERT INTO auth_bans VALUES ('192.0.2.50', 2, 4000000000, -5);"
		 "INSERT INTO auth_bans VALUES ('192.0.2.51', 3, 4000000000, 99999999999);",
		 longname);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	struct users_ban *v;
	size_t n;
	const char *err;
	assert_int_equal(users_ban_list(f->u, 0, USERS_BANS_MAX, &v, &n, &err), RESULT_OK);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].client, "192.0.2.50");
	assert_int_equal(v[0].failures, 0);
	assert_string_equal(v[1].client, "192.0.2.51");
	assert_int_equal(v[1].failures, UINT32_MAX);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_list_del, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rows_it_did_not_write, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
