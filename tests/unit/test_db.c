/* test_db.c — the SQLite helper (src/db/db.c) against real files in a fresh temporary directory per
 * test: migrations by user_version, refusals, the statement cache, read-only opening; and db_page's
 * newest-first pages (after and before cursors, more, limits, a fill out of memory) on a table in memory. */
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

/* ---- db_page ---- */

/* One row of a page: its rowid and a heap copy of its name, as a fill that allocates does. */
struct page_item {
	int64_t rowid;
	char *name;
};

static bool page_fill(sqlite3_stmt *st, void *elem)
{
	struct page_item *it = elem;
	it->rowid = sqlite3_column_int64(st, 0);
	it->name = strdup((const char *)sqlite3_column_text(st, 1));
	return it->name != NULL;
}

/* A fill that runs out of memory at its third row, after allocating part of it. */
static unsigned fills_left;
static bool page_fill_fails(sqlite3_stmt *st, void *elem)
{
	bool ok = page_fill(st, elem);
	return ok && fills_left-- > 0;
}

/* An element larger than db_page's swap buffer, the rowid at both ends. */
struct page_big {
	int64_t head;
	char pad[1500];
	int64_t tail;
};

static bool page_fill_big(sqlite3_stmt *st, void *elem)
{
	struct page_big *b = elem;
	b->head = b->tail = sqlite3_column_int64(st, 0);
	memset(b->pad, (int)(b->head & 0x7f), sizeof(b->pad));
	return true;
}

/* items with rowids 1..10 but 5 */
static sqlite3 *page_db(void)
{
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "CREATE TABLE items(name TEXT NOT NULL);"
				      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10)"
				      " INSERT INTO items(rowid, name) SELECT i, 'item' || i FROM n;"
				      "DELETE FROM items WHERE rowid = 5;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	return db;
}

static void page_free(struct page_item *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i].name);
	free(list);
}

/* The page's rowids as "10 9 8" and whether there is more, after checking each name. */
static void page_expect(sqlite3 *db, int64_t after, int64_t before, unsigned limit, const char *want, bool more_want)
{
	void *list = NULL;
	size_t n = 99;
	bool more = !more_want;
	assert_int_equal(db_page(db, "SELECT rowid, name FROM items", after, before, limit, sizeof(struct page_item),
				 page_fill, &list, &n, &more),
			 SQLITE_OK);
	assert_non_null(list);
	struct page_item *it = list;
	char got[256] = "";
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof(name), "item%lld", (long long)it[i].rowid);
		assert_string_equal(it[i].name, name);
		o += (size_t)snprintf(got + o, sizeof(got) - o, "%s%lld", i ? " " : "", (long long)it[i].rowid);
	}
	if (strcmp(got, want) != 0 || more != more_want)
		fail_msg("after %lld before %lld limit %u: \"%s\" more %d, want \"%s\" more %d", (long long)after,
			 (long long)before, limit, got, more, want, more_want);
	page_free(list, n);
}

static void test_page_cursors(void **state)
{
	(void)state;
	sqlite3 *db = page_db();
	/* the first page, newest first */
	page_expect(db, 0, 0, 3, "10 9 8", true);
	page_expect(db, 0, 0, 9, "10 9 8 7 6 4 3 2 1", false); /* exactly all: nothing beyond */
	page_expect(db, 0, 0, 100, "10 9 8 7 6 4 3 2 1", false);
	page_expect(db, 0, 0, 1, "10", true);
	/* after: the older rows; a cursor whose row is gone still has its place */
	page_expect(db, 8, 0, 3, "7 6 4", true);
	page_expect(db, 4, 0, 3, "3 2 1", false);
	page_expect(db, 5, 0, 2, "4 3", true);
	page_expect(db, 1, 0, 3, "", false);
	page_expect(db, 1000, 0, 2, "10 9", true);
	/* before: the newer rows nearest the cursor, still newest first */
	page_expect(db, 0, 3, 3, "7 6 4", true);
	page_expect(db, 0, 3, 4, "8 7 6 4", true);
	page_expect(db, 0, 6, 4, "10 9 8 7", false);
	page_expect(db, 0, 1, 100, "10 9 8 7 6 4 3 2", false);
	page_expect(db, 0, 9, 3, "10", false);
	page_expect(db, 0, 10, 3, "", false);
	page_expect(db, 0, -5, 2, "2 1", true);
	/* limit 0: no rows, but it tells whether there are any */
	page_expect(db, 0, 0, 0, "", true);
	page_expect(db, 1, 0, 0, "", false);
	sqlite3_close(db);
}

static void test_page_empty_and_errors(void **state)
{
	(void)state;
	sqlite3 *db = page_db();
	assert_int_equal(sqlite3_exec(db, "DELETE FROM items", NULL, NULL, NULL), SQLITE_OK);
	page_expect(db, 0, 0, 10, "", false);
	page_expect(db, 3, 0, 10, "", false);
	page_expect(db, 0, 3, 10, "", false);
	sqlite3_close(db);

	/* an error from SQLite is given back, with the (empty) list to free */
	db = page_db();
	void *list = NULL;
	size_t n = 99;
	bool more = true;
	assert_int_equal(db_page(db, "SELECT rowid, name FROM no_such_table", 0, 0, 5, sizeof(struct page_item),
				 page_fill, &list, &n, &more),
			 SQLITE_ERROR);
	assert_int_equal(n, 0);
	assert_false(more);
	free(list);
	/* a fill out of memory at the third row: SQLITE_NOMEM, and what it put in the list, the part of
	 * the third row included, is within *n_r for the caller to free (LeakSanitizer sees the rest) */
	fills_left = 2;
	assert_int_equal(db_page(db, "SELECT rowid, name FROM items", 0, 0, 5, sizeof(struct page_item),
				 page_fill_fails, &list, &n, &more),
			 SQLITE_NOMEM);
	assert_int_equal(n, 3);
	assert_false(more);
	struct page_item *it = list;
	assert_int_equal(it[0].rowid, 10);
	assert_int_equal(it[1].rowid, 9);
	page_free(list, n);
	/* the same in a "before" page: not turned round, but all of it within *n_r */
	fills_left = 1;
	assert_int_equal(db_page(db, "SELECT rowid, name FROM items", 0, 2, 5, sizeof(struct page_item),
				 page_fill_fails, &list, &n, &more),
			 SQLITE_NOMEM);
	assert_int_equal(n, 2);
	page_free(list, n);
	sqlite3_close(db);
}

/* "before" pages are turned round element by element, whatever their size. */
static void test_page_big_elements(void **state)
{
	(void)state;
	sqlite3 *db = page_db();
	for (unsigned limit = 1; limit <= 6; limit++) {
		void *list = NULL;
		size_t n = 0;
		bool more = false;
		assert_int_equal(db_page(db, "SELECT rowid FROM items", 0, 2, limit, sizeof(struct page_big),
					 page_fill_big, &list, &n, &more),
				 SQLITE_OK);
		/* rows newer than 2: 3 4 6 7 8 9 10 */
		static const int64_t newer[] = {3, 4, 6, 7, 8, 9, 10};
		assert_int_equal(n, limit);
		assert_int_equal(more, limit < 7);
		struct page_big *b = list;
		for (size_t i = 0; i < n; i++) {
			int64_t want = newer[n - 1 - i];
			assert_int_equal(b[i].head, want);
			assert_int_equal(b[i].tail, want);
			assert_int_equal((unsigned char)b[i].pad[0], want);
			assert_int_equal((unsigned char)b[i].pad[sizeof(b[i].pad) - 1], want);
		}
		free(list);
	}
	sqlite3_close(db);
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
		cmocka_unit_test(test_page_cursors),
		cmocka_unit_test(test_page_empty_and_errors),
		cmocka_unit_test(test_page_big_elements),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
