/* test_db.c — the SQLite helper (src/db/db.c) against real files in a fresh temporary directory per
 * test: migrations by user_version, refusals, the statement cache, read-only opening. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "db/db.h"

struct fixture {
	char dir[256];
	char path[320];
	char error[DB_ERROR_SIZE];
};

/* Each step leaves a trace in applied, so a test can count the steps that ran. */
static const char *const steps_v2[] = {
	"CREATE TABLE applied(v INTEGER NOT NULL); INSERT INTO applied VALUES(1);"
	"CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL);",
	"ALTER TABLE items ADD COLUMN size INTEGER NOT NULL DEFAULT 0; INSERT INTO applied VALUES(2);",
};
static const struct db_schema schema_v2 = { steps_v2, 2 };

/* version 3 fails half-way: its first statement must not survive */
static const char *const steps_v3_broken[] = {
	steps_v2[0],
	steps_v2[1],
	"CREATE TABLE extra(x); INSERT INTO applied VALUES(3); INSERT INTO no_such_table VALUES(1);",
};
static const struct db_schema schema_v3_broken = { steps_v3_broken, 3 };

static int fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	const char *tmp = getenv("TMPDIR");
	snprintf(f->dir, sizeof(f->dir), "%s/test_db.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/test.db", f->dir);
	*state = f;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;
	static const char *const suffixes[] = { "", "-wal", "-shm" };
	char path[400];
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", f->path, suffixes[i]);
		unlink(path);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static struct db *open_with(struct fixture *f, const struct db_schema *schema)
{
	const struct db_opts o = { .sync = DB_SYNC_FULL, .foreign_keys = true, .schema = schema };
	f->error[0] = '\0';
	return db_open(f->path, &o, f->error, sizeof(f->error));
}

/* A file at version 2, closed again. */
static void file_at_v2(struct fixture *f)
{
	struct db *db = open_with(f, &schema_v2);
	if (db == NULL)
		fail_msg("db_open: %s", f->error);
	db_close(db);
}

static int64_t query_int(struct db *db, const char *sql)
{
	int64_t v = -1;
	assert_int_equal(db_int64(db, sql, &v), SQLITE_OK);
	return v;
}

/* user_version read without the helper, so the check does not rest on what it tests */
static int raw_user_version(const char *path)
{
	sqlite3 *raw = NULL;
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_open_v2(path, &raw, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(raw, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(raw);
	return v;
}

static void raw_exec(const char *path, const char *sql)
{
	sqlite3 *raw = NULL;
	assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
	assert_int_equal(sqlite3_exec(raw, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(raw);
}

static void test_fresh_open_migrates(void **state)
{
	struct fixture *f = *state;
	struct db *db = open_with(f, &schema_v2);
	if (db == NULL)
		fail_msg("db_open: %s", f->error);
	assert_int_equal(query_int(db, "PRAGMA user_version"), 2);
	assert_int_equal(query_int(db, "SELECT count(*) FROM applied"), 2);
	/* the column of step 2 is there */
	assert_int_equal(sqlite3_exec(db_sqlite(db), "INSERT INTO items(name, size) VALUES('a', 3)", NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(query_int(db, "PRAGMA foreign_keys"), 1);
	assert_int_equal(query_int(db, "PRAGMA synchronous"), 2); /* FULL */
	sqlite3_stmt *st = db_stmt(db, "PRAGMA journal_mode");
	assert_non_null(st);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_reset(st);
	db_close(db);
	assert_int_equal(raw_user_version(f->path), 2);

	/* created before SQLite could make it 0644 */
	struct stat sb;
	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0077, 0);
}

static void test_reopen_applies_none(void **state)
{
	struct fixture *f = *state;
	file_at_v2(f);
	/* step 1 would fail if it ran again (CREATE TABLE without IF NOT EXISTS) */
	struct db *db = open_with(f, &schema_v2);
	if (db == NULL)
		fail_msg("reopen: %s", f->error);
	assert_int_equal(query_int(db, "SELECT count(*) FROM applied"), 2);
	assert_int_equal(query_int(db, "PRAGMA user_version"), 2);
	db_close(db);

	/* and a second connection without a schema leaves it alone */
	db = open_with(f, NULL);
	assert_non_null(db);
	assert_int_equal(query_int(db, "PRAGMA user_version"), 2);
	db_close(db);
}

static void test_upgrade_runs_only_new_steps(void **state)
{
	struct fixture *f = *state;
	const struct db_schema v1 = { steps_v2, 1 };
	struct db *db = open_with(f, &v1);
	assert_non_null(db);
	assert_int_equal(query_int(db, "SELECT count(*) FROM applied"), 1);
	db_close(db);
	db = open_with(f, &schema_v2);
	assert_non_null(db);
	assert_int_equal(query_int(db, "SELECT count(*) FROM applied"), 2);
	assert_int_equal(query_int(db, "SELECT max(v) FROM applied"), 2);
	assert_int_equal(query_int(db, "PRAGMA user_version"), 2);
	db_close(db);
}

static void test_newer_refused(void **state)
{
	struct fixture *f = *state;
	file_at_v2(f);
	raw_exec(f->path, "PRAGMA user_version = 7");

	assert_null(open_with(f, &schema_v2));
	assert_non_null(strstr(f->error, "test.db"));
	assert_non_null(strstr(f->error, "newer"));
	assert_non_null(strstr(f->error, "7"));
	/* refused, not changed */
	assert_int_equal(raw_user_version(f->path), 7);
}

static void test_failing_step_rolls_back(void **state)
{
	struct fixture *f = *state;
	file_at_v2(f);

	assert_null(open_with(f, &schema_v3_broken));
	assert_non_null(strstr(f->error, "test.db"));
	assert_non_null(strstr(f->error, "version 3"));
	assert_non_null(strstr(f->error, "no_such_table")); /* SQLite's message, kept past the ROLLBACK */
	assert_int_equal(raw_user_version(f->path), 2);

	/* nothing of step 3 stayed, and the file still opens at version 2 */
	struct db *db = open_with(f, &schema_v2);
	assert_non_null(db);
	assert_int_equal(query_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'extra'"), 0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM applied"), 2);
	db_close(db);
}

static void test_stmt_cache(void **state)
{
	struct fixture *f = *state;
	struct db *db = open_with(f, &schema_v2);
	assert_non_null(db);
	assert_int_equal(sqlite3_exec(db_sqlite(db), "INSERT INTO items(id, name) VALUES(1, 'one'), (2, 'two')", NULL,
				      NULL, NULL),
			 SQLITE_OK);

	static const char sql[] = "SELECT name FROM items WHERE id = ?1";
	sqlite3_stmt *a = db_stmt(db, sql);
	assert_non_null(a);
	sqlite3_bind_int(a, 1, 1);
	assert_int_equal(sqlite3_step(a), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(a, 0), "one");
	/* left on its row on purpose: db_stmt resets it */

	/* the same text from another buffer is the same statement, reset and unbound */
	char copy[sizeof(sql)];
	memcpy(copy, sql, sizeof(sql));
	sqlite3_stmt *b = db_stmt(db, copy);
	assert_ptr_equal(a, b);
	assert_int_equal(sqlite3_step(b), SQLITE_DONE); /* ?1 is NULL again: no row */
	sqlite3_reset(b);
	sqlite3_bind_int(b, 1, 2);
	assert_int_equal(sqlite3_step(b), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(b, 0), "two");
	sqlite3_reset(b);

	/* the buffer reused for another text is another statement */
	snprintf(copy, sizeof(copy), "SELECT count(*) FROM items");
	sqlite3_stmt *c = db_stmt(db, copy);
	assert_non_null(c);
	assert_ptr_not_equal(c, a);
	assert_int_equal(sqlite3_step(c), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(c, 0), 2);
	sqlite3_reset(c);

	/* bounded: many more texts than it keeps; every one still works, the oldest are prepared again */
	for (int i = 0; i < DB_STMT_CACHE_MAX * 2; i++) {
		char q[64];
		snprintf(q, sizeof(q), "SELECT %d", i);
		assert_int_equal(query_int(db, q), i);
	}
	sqlite3_stmt *again = db_stmt(db, sql);
	assert_non_null(again);
	sqlite3_bind_int(again, 1, 1);
	assert_int_equal(sqlite3_step(again), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(again, 0), "one");
	sqlite3_reset(again);

	/* db_int64 leaves no read transaction behind: another connection can checkpoint the whole WAL */
	assert_int_equal(query_int(db, "SELECT count(*) FROM items"), 2);
	sqlite3 *raw = NULL;
	sqlite3_stmt *cp = NULL;
	assert_int_equal(sqlite3_open(f->path, &raw), SQLITE_OK);
	assert_int_equal(sqlite3_exec(raw, "INSERT INTO items(name) VALUES('three')", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(raw, "PRAGMA wal_checkpoint(TRUNCATE)", -1, &cp, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(cp), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(cp, 0), 0); /* not busy */
	sqlite3_finalize(cp);
	sqlite3_close(raw);
	assert_int_equal(query_int(db, "SELECT count(*) FROM items"), 3);

	/* one statement only: the second would never run */
	assert_null(db_stmt(db, "SELECT 1; SELECT 2"));
	assert_int_equal(db_errcode(db), SQLITE_MISUSE);
	assert_null(db_stmt(db, "SELECT FROM"));
	assert_int_equal(db_errcode(db) & 0xff, SQLITE_ERROR);
	int64_t v = 5;
	assert_int_equal(db_int64(db, "SELECT id FROM items WHERE id = 99", &v), SQLITE_DONE);
	assert_int_equal(v, 5);
	db_close(db); /* with statements in the cache: ASan sees any left behind */
}

static void test_read_only(void **state)
{
	struct fixture *f = *state;
	const struct db_opts ro = { .read_only = true, .schema = &schema_v2 };

	/* a missing file: refused, and not created */
	assert_null(db_open(f->path, &ro, f->error, sizeof(f->error)));
	assert_non_null(strstr(f->error, "cannot open test.db"));
	assert_non_null(strstr(f->error, "does it exist"));
	assert_int_equal(access(f->path, F_OK), -1);

	file_at_v2(f);
	struct db *db = db_open(f->path, &ro, f->error, sizeof(f->error));
	if (db == NULL)
		fail_msg("read-only open: %s", f->error);
	assert_int_equal(query_int(db, "SELECT count(*) FROM applied"), 2);
	assert_int_not_equal(sqlite3_exec(db_sqlite(db), "INSERT INTO applied VALUES(9)", NULL, NULL, NULL), SQLITE_OK);
	db_close(db);

	/* a file that needs a step is not upgraded behind a read-only open */
	assert_null(db_open(f->path, &(const struct db_opts){ .read_only = true, .schema = &schema_v3_broken }, f->error,
			    sizeof(f->error)));
	assert_non_null(strstr(f->error, "read-write"));
	assert_int_equal(raw_user_version(f->path), 2);
}

static void test_missing_directory(void **state)
{
	(void)state;
	char error[DB_ERROR_SIZE] = "";
	assert_null(db_open("/nonexistent/mailwerk-test/x.db", NULL, error, sizeof(error)));
	assert_non_null(strstr(error, "x.db"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fresh_open_migrates, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_reopen_applies_none, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_runs_only_new_steps, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_newer_refused, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_failing_step_rolls_back, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_stmt_cache, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_read_only, fixture_setup, fixture_teardown),
		cmocka_unit_test(test_missing_directory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
