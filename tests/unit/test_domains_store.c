/* test_domains_store.c — what the API keeps of a domain (src/mailbox/domains.c) against a real
 * SQLite file in a fresh directory per test: ids made for every domain (also those of an older
 * schema, by the migration), lookups by id or name, Resend's cursors, capability changes, and the
 * outcome of a check replaced whole. */
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

static int fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	const char *tmp = getenv("TMPDIR");
	snprintf(f->dir, sizeof(f->dir), "%s/test_domains.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	*state = f;
	return 0;
}

static void fixture_open(struct fixture *f)
{
	const char *err = NULL;
	f->u = users_open(f->dir, &err);
	if (f->u == NULL)
		fail_msg("users_open: %s", err);
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;
	users_close(f->u);
	static const char *const files[] = {"mailwerk.db", "mailwerk.db-wal", "mailwerk.db-shm"};
	char path[512];
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", f->dir, files[i]);
		unlink(path);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static void add(struct users *u, const char *name)
{
	const char *err = NULL;
	if (users_domain_add(u, name, &err) != RESULT_OK)
		fail_msg("users_domain_add(%s): %s", name, err);
}

static bool is_uuid_v4(const char *s)
{
	if (strlen(s) != 36 || s[14] != '4' || strchr("89ab", s[19]) == NULL)
		return false;
	for (int i = 0; i < 36; i++)
		if (i == 8 || i == 13 || i == 18 || i == 23 ? s[i] != '-' : strchr("0123456789abcdef", s[i]) == NULL)
			return false;
	return true;
}

static void test_ids_and_lookups(void **state)
{
	struct fixture *f = *state;
	fixture_open(f);
	const char *err = NULL;
	add(f->u, "Shop.Example");
	struct users_domain d, by_id;
	assert_int_equal(users_domain_get(f->u, "SHOP.example", &d, &err), RESULT_OK);
	assert_string_equal(d.name, "shop.example");
	assert_true(is_uuid_v4(d.id));
	assert_true(d.created_ms > 1600000000000LL);
	assert_true(d.sending && d.receiving && !d.verify_first && !d.ready);
	assert_string_equal(d.status, "not_started");
	assert_string_equal(d.return_path, "");
	assert_int_equal(users_domain_get(f->u, d.id, &by_id, &err), RESULT_OK);
	assert_string_equal(by_id.name, "shop.example");
	assert_int_equal(users_domain_get(f->u, "other.example", &d, &err), RESULT_PERMFAIL);
	assert_int_equal(users_domain_get(f->u, "", &d, &err), RESULT_PERMFAIL);
	/* hostile keys are values, never SQL */
	assert_int_equal(users_domain_get(f->u, "' OR 1=1 --", &d, &err), RESULT_PERMFAIL);
}

/* domains of a v2 file (before ids) get ids and a creation time from the migration */
static void test_migration_gives_old_domains_ids(void **state)
{
	struct fixture *f = *state;
	char path[512];
	snprintf(path, sizeof(path), "%s/mailwerk.db", f->dir);
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "CREATE TABLE domains(name TEXT PRIMARY KEY);"
				      "CREATE TABLE users(address TEXT PRIMARY KEY, domain TEXT NOT NULL REFERENCES domains(name),"
				      " hash TEXT NOT NULL, created INTEGER NOT NULL);"
				      "CREATE INDEX users_address_nocase ON users(address COLLATE NOCASE);"
				      "CREATE INDEX users_domain ON users(domain);"
				      "CREATE TABLE aliases(address TEXT PRIMARY KEY, domain TEXT NOT NULL REFERENCES domains(name),"
				      " targets TEXT NOT NULL);"
				      "CREATE INDEX aliases_address_nocase ON aliases(address COLLATE NOCASE);"
				      "ALTER TABLE users ADD COLUMN quota INTEGER NOT NULL DEFAULT 0;"
				      "INSERT INTO domains VALUES ('a.example'), ('b.example');"
				      "PRAGMA user_version = 2;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	fixture_open(f);
	const char *err = NULL;
	struct users_domain a, b;
	assert_int_equal(users_domain_get(f->u, "a.example", &a, &err), RESULT_OK);
	assert_int_equal(users_domain_get(f->u, "b.example", &b, &err), RESULT_OK);
	assert_true(is_uuid_v4(a.id) && is_uuid_v4(b.id));
	assert_string_not_equal(a.id, b.id);
	assert_true(a.created_ms > 1600000000000LL);
	assert_int_equal(users_domain_is_local(f->u, "a.example"), RESULT_OK);
}

static void test_pages(void **state)
{
	struct fixture *f = *state;
	fixture_open(f);
	const char *err = NULL;
	const char *names[] = {"d0.example", "d1.example", "d2.example", "d3.example", "d4.example"};
	char ids[5][USERS_DOMAIN_ID_LEN + 1];
	for (int i = 0; i < 5; i++) {
		struct users_domain d;
		add(f->u, names[i]);
		assert_int_equal(users_domain_get(f->u, names[i], &d, &err), RESULT_OK);
		strcpy(ids[i], d.id);
	}
	struct users_domain *list;
	size_t n;
	bool more;
	/* newest first */
	assert_int_equal(users_domain_page(f->u, 2, NULL, NULL, &list, &n, &more, &err), RESULT_OK);
	assert_int_equal(n, 2);
	assert_true(more);
	assert_string_equal(list[0].name, "d4.example");
	assert_string_equal(list[1].name, "d3.example");
	free(list);
	assert_int_equal(users_domain_page(f->u, 2, ids[3], NULL, &list, &n, &more, &err), RESULT_OK);
	assert_int_equal(n, 2);
	assert_true(more);
	assert_string_equal(list[0].name, "d2.example");
	free(list);
	assert_int_equal(users_domain_page(f->u, 10, ids[1], NULL, &list, &n, &more, &err), RESULT_OK);
	assert_int_equal(n, 1);
	assert_false(more);
	assert_string_equal(list[0].name, "d0.example");
	free(list);
	/* before: the newer ones, still newest first */
	assert_int_equal(users_domain_page(f->u, 2, NULL, ids[1], &list, &n, &more, &err), RESULT_OK);
	assert_int_equal(n, 2);
	assert_true(more);
	assert_string_equal(list[0].name, "d3.example");
	assert_string_equal(list[1].name, "d2.example");
	free(list);
	assert_int_equal(users_domain_page(f->u, 2, "not-an-id", NULL, &list, &n, &more, &err), RESULT_PERMFAIL);
	assert_null(list);
}

static void test_update_and_checks(void **state)
{
	struct fixture *f = *state;
	fixture_open(f);
	const char *err = NULL;
	add(f->u, "c.example");
	struct users_domain d;
	assert_int_equal(users_domain_update(f->u, "c.example", NULL, 0, -1, 1, &err), RESULT_OK);
	assert_int_equal(users_domain_get(f->u, "c.example", &d, &err), RESULT_OK);
	assert_true(!d.sending && d.receiving && d.verify_first && !d.ready);
	assert_int_equal(users_domain_update(f->u, "none.example", NULL, 1, 1, -1, &err), RESULT_PERMFAIL);

	assert_int_equal(users_domain_set_status(f->u, "c.example", "pending", &err), RESULT_OK);
	struct users_domain_check c[2] = {
		{.kind = "mx", .name = "c.example", .status = "verified"},
		{.kind = "dkim", .name = "s1._domainkey.c.example", .status = "failed", .problem = (char *)"missing"},
	};
	assert_int_equal(users_domain_checks_store(f->u, "c.example", "partially_verified", true, 1234, c, 2, &err),
			 RESULT_OK);
	assert_int_equal(users_domain_get(f->u, "c.example", &d, &err), RESULT_OK);
	assert_string_equal(d.status, "partially_verified");
	assert_true(d.ready);
	assert_int_equal(d.checked_ms, 1234);
	struct users_domain_check *got;
	size_t n;
	assert_int_equal(users_domain_checks(f->u, "c.example", &got, &n, &err), RESULT_OK);
	assert_int_equal(n, 2);
	assert_string_equal(got[0].kind, "mx");
	assert_null(got[0].problem);
	assert_string_equal(got[1].problem, "missing");
	users_domain_checks_free(got, n);
	/* a new check replaces the old one whole */
	assert_int_equal(users_domain_checks_store(f->u, "c.example", "verified", true, 5678, c, 1, &err), RESULT_OK);
	assert_int_equal(users_domain_checks(f->u, "c.example", &got, &n, &err), RESULT_OK);
	assert_int_equal(n, 1);
	users_domain_checks_free(got, n);
	/* a domain deleted while it was checked: nothing is stored */
	assert_int_equal(users_domain_checks_store(f->u, "gone.example", "verified", true, 1, c, 1, &err),
			 RESULT_PERMFAIL);
	/* deleting the domain takes its check along */
	assert_int_equal(users_domain_del(f->u, "c.example", &err), RESULT_OK);
	assert_int_equal(users_domain_checks(f->u, "c.example", &got, &n, &err), RESULT_OK);
	assert_int_equal(n, 0);
	users_domain_checks_free(got, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ids_and_lookups, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_migration_gives_old_domains_ids, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_pages, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_update_and_checks, fixture_setup, fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
