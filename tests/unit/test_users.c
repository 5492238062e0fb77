/* test_users.c — accounts and local domains (src/mailbox/users.c) against a real SQLite file in a
 * fresh temporary directory per test, and the crypt(3) hashing. Every hash is computed at run time, so
 * no secret or precomputed hash lives in the tree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "mailbox/users.h"
#include "mailbox/users_db.h"
#include "util/addr.h"

struct fixture {
	char dir[256];
	struct users *u;
};

struct names {
	char list[16][ADDR_TEXT_MAX + 1];
	size_t count;
};

static int fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	const char *tmp = getenv("TMPDIR");
	snprintf(f->dir, sizeof(f->dir), "%s/test_users.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	const char *err = NULL;
	f->u = users_open(f->dir, &err);
	if (!f->u)
		fail_msg("users_open: %s", err);
	*state = f;
	return 0;
}

static void fixture_remove_files(const char *dir)
{
	static const char *const files[] = { "mailwerk.db", "mailwerk.db-wal", "mailwerk.db-shm" };
	char path[512];
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;
	users_close(f->u);
	fixture_remove_files(f->dir);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void names_add(const char *name, void *arg)
{
	struct names *n = arg;
	assert_true(n->count < sizeof(n->list) / sizeof(n->list[0]));
	assert_true(strlen(name) < sizeof(n->list[0]));
	strcpy(n->list[n->count++], name);
}

/* A fresh hash of password with the given crypt prefix, computed now. */
static void hash_make(const char *prefix, const char *password, char out[USERS_HASH_MAX])
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	assert_non_null(crypt_gensalt_rn(prefix, 0, NULL, 0, salt, (int)sizeof(salt)));
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	assert_non_null(cd);
	const char *h = crypt_r(password, salt, cd);
	assert_non_null(h);
	assert_true(h[0] != '*');
	assert_true(strlen(h) < USERS_HASH_MAX);
	strcpy(out, h);
	free(cd);
}

static void domain_add_ok(struct users *u, const char *d)
{
	const char *err = NULL;
	if (users_domain_add(u, d, &err) != RESULT_OK)
		fail_msg("users_domain_add(%s): %s", d, err);
}

static void user_add_ok(struct users *u, const char *address, const char *password)
{
	char hash[USERS_HASH_MAX];
	assert_int_equal(users_hash_password(password, hash), RESULT_OK);
	const char *err = NULL;
	if (users_user_add(u, address, hash, &err) != RESULT_OK)
		fail_msg("users_user_add(%s): %s", address, err);
}

static void test_domain_add_list_del(void **state)
{
	struct fixture *f = *state;
	const char *err = NULL;
	domain_add_ok(f->u, "Example.ORG");
	domain_add_ok(f->u, "b.example");

	struct names n = { 0 };
	assert_int_equal(users_domain_list(f->u, names_add, &n, &err), RESULT_OK);
	assert_int_equal(n.count, 2);
	assert_string_equal(n.list[0], "b.example");
	assert_string_equal(n.list[1], "example.org"); /* stored lower-case */

	/* case-insensitive everywhere (RFC 5321 §2.4) */
	assert_int_equal(users_domain_is_local(f->u, "EXAMPLE.org"), RESULT_OK);
	assert_int_equal(users_domain_is_local(f->u, "example.net"), RESULT_PERMFAIL);
	assert_int_equal(users_domain_is_local(f->u, ""), RESULT_PERMFAIL);
	assert_int_equal(users_domain_add(f->u, "example.ORG", &err), RESULT_PERMFAIL);
	assert_non_null(strstr(err, "already exists"));

	assert_int_equal(users_domain_del(f->u, "EXAMPLE.ORG", &err), RESULT_OK);
	assert_int_equal(users_domain_is_local(f->u, "example.org"), RESULT_PERMFAIL);
	assert_int_equal(users_domain_del(f->u, "example.org", &err), RESULT_PERMFAIL);
	assert_non_null(strstr(err, "no such domain"));

	n.count = 0;
	assert_int_equal(users_domain_list(f->u, names_add, &n, &err), RESULT_OK);
	assert_int_equal(n.count, 1);
	assert_string_equal(n.list[0], "b.example");
}

static void test_domain_invalid(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = { "", "[192.0.2.1]", "a..b", "-a.example", "a b.example", "a@b.example" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *err = NULL;
		if (users_domain_add(f->u, bad[i], &err) != RESULT_PERMFAIL)
			fail_msg("domain \"%s\" was accepted", bad[i]);
		assert_non_null(err);
	}
}

static void test_domain_del_refused_with_users(void **state)
{
	struct fixture *f = *state;
	const char *err = NULL;
	domain_add_ok(f->u, "example.org");
	user_add_ok(f->u, "a@example.org", "pw-a");
	user_add_ok(f->u, "b@example.org", "pw-b");
	assert_int_equal(users_domain_del(f->u, "example.org", &err), RESULT_PERMFAIL);
	assert_non_null(strstr(err, "2 users"));
	assert_int_equal(users_domain_is_local(f->u, "example.org"), RESULT_OK);

	assert_int_equal(users_user_del(f->u, "a@example.org", &err), RESULT_OK);
	assert_int_equal(users_domain_del(f->u, "example.org", &err), RESULT_PERMFAIL);
	assert_non_null(strstr(err, "1 user or alias;"));
	assert_int_equal(users_user_del(f->u, "b@example.org", &err), RESULT_OK);
	assert_int_equal(users_domain_del(f->u, "example.org", &err), RESULT_OK);
}

static void test_user_add_list_del(void **state)
{
	struct fixture *f = *state;
	const char *err = NULL;
	domain_add_ok(f->u, "example.org");
	domain_add_ok(f->u, "a.example");
	user_add_ok(f->u, "Bob@EXAMPLE.org", "secret-1");
	user_add_ok(f->u, "alice@example.org", "secret-2");
	user_add_ok(f->u, "zed@a.example", "secret-3");

	struct names n = { 0 };
	assert_int_equal(users_user_list(f->u, names_add, &n, &err), RESULT_OK);
	assert_int_equal(n.count, 3);
	/* ordered by domain, then address; local part kept as given, domain folded */
	assert_string_equal(n.list[0], "zed@a.example");
	assert_string_equal(n.list[1], "Bob@example.org");
	assert_string_equal(n.list[2], "alice@example.org");

	char hash[USERS_HASH_MAX];
	assert_int_equal(users_user_hash(f->u, "Bob@example.org", hash, sizeof(hash), NULL, &err), RESULT_OK);
	assert_true(users_check_password("secret-1", hash));
	/* case-insensitive fallback on the local part, domain always */
	assert_int_equal(users_user_hash(f->u, "bob@Example.Org", hash, sizeof(hash), NULL, &err), RESULT_OK);
	assert_true(users_check_password("secret-1", hash));
	char canonical[ADDR_TEXT_MAX + 1];
	assert_int_equal(users_user_hash(f->u, "ALICE@example.org", hash, sizeof(hash), canonical, &err), RESULT_OK);
	assert_true(users_check_password("secret-2", hash));
	assert_string_equal(canonical, "alice@example.org"); /* the address as stored names the mailbox */
	assert_int_equal(users_user_hash(f->u, "carol@example.org", hash, sizeof(hash), NULL, &err), RESULT_PERMFAIL);
	assert_string_equal(hash, "");
	assert_int_equal(users_user_hash(f->u, "no-at-sign", hash, sizeof(hash), NULL, &err), RESULT_PERMFAIL);
	assert_int_equal(users_user_hash(f->u, "Bob@example.org", hash, 10, NULL, &err), RESULT_TEMPFAIL);

	assert_int_equal(users_user_del(f->u, "BOB@example.org", &err), RESULT_OK);
	assert_int_equal(users_user_del(f->u, "Bob@example.org", &err), RESULT_PERMFAIL);
	assert_non_null(strstr(err, "no such user"));
	n.count = 0;
	assert_int_equal(users_user_list(f->u, names_add, &n, &err), RESULT_OK);
	assert_int_equal(n.count, 2);
}

static void test_user_duplicate(void **state)
{
	struct fixture *f = *state;
	const char *err = NULL;
	char hash[USERS_HASH_MAX];
	domain_add_ok(f->u, "example.org");
	user_add_ok(f->u, "bob@example.org", "pw");
	assert_int_equal(users_hash_password("other", hash), RESULT_OK);
	assert_int_equal(users_user_add(f->u, "bob@example.org", hash, &err), RESULT_PERMFAIL);
	assert_non_null(strstr(err, "already exists"));
	assert_int_equal(users_user_add(f->u, "bob@EXAMPLE.ORG", hash, &err), RESULT_PERMFAIL);
	/* differing only in case would make the case-insensitive lookup ambiguous */
	assert_int_equal(users_user_add(f->u, "Bob@example.org", hash, &err), RESULT_PERMFAIL);
	assert_non_null(strstr(err, "bob@example.org already exists"));
	/* the first account is untouched */
	assert_int_equal(users_user_hash(f->u, "bob@example.org", hash, sizeof(hash), NULL, &err), RESULT_OK);
	assert_true(users_check_password("pw", hash));
}

static void test_user_nonlocal_domain(void **state)
{
	struct fixture *f = *state;
	const char *err = NULL;
	char hash[USERS_HASH_MAX];
	assert_int_equal(users_hash_password("pw", hash), RESULT_OK);
	assert_int_equal(users_user_add(f->u, "bob@Example.ORG", hash, &err), RESULT_PERMFAIL);
	assert_string_equal(err, "domain example.org is not local; add it with: mailwerk domain add example.org");
	struct names n = { 0 };
	assert_int_equal(users_user_list(f->u, names_add, &n, &err), RESULT_OK);
	assert_int_equal(n.count, 0);
}

static void test_user_invalid(void **state)
{
	struct fixture *f = *state;
	const char *err = NULL;
	char hash[USERS_HASH_MAX];
	domain_add_ok(f->u, "example.org");
	assert_int_equal(users_hash_password("pw", hash), RESULT_OK);
	assert_int_equal(users_user_add(f->u, "example.org", hash, &err), RESULT_PERMFAIL);
	assert_int_equal(users_user_add(f->u, "@example.org", hash, &err), RESULT_PERMFAIL);
	assert_int_equal(users_user_add(f->u, "a b@example.org", hash, &err), RESULT_PERMFAIL);
	assert_int_equal(users_user_add(f->u, "bob@[192.0.2.1]", hash, &err), RESULT_PERMFAIL);
	/* local parts that could not name a Maildir directory as they are */
	assert_int_equal(users_user_add(f->u, "a/b@example.org", hash, &err), RESULT_PERMFAIL);
	assert_int_equal(users_user_add(f->u, "\"../x\"@example.org", hash, &err), RESULT_PERMFAIL);
	assert_int_equal(users_user_add(f->u, "x/@example.org", hash, &err), RESULT_PERMFAIL);
	/* only verifiable hashes are stored: not a plain password, not a truncated hash */
	assert_int_equal(users_user_add(f->u, "bob@example.org", "hunter2", &err), RESULT_PERMFAIL);
	assert_non_null(strstr(err, "$y$"));
	assert_int_equal(users_user_add(f->u, "bob@example.org", NULL, &err), RESULT_PERMFAIL);
	assert_int_equal(users_user_set_hash(f->u, "bob@example.org", "x", &err), RESULT_PERMFAIL);
}

static void test_user_set_hash(void **state)
{
	struct fixture *f = *state;
	const char *err = NULL;
	char hash[USERS_HASH_MAX];
	domain_add_ok(f->u, "example.org");
	user_add_ok(f->u, "bob@example.org", "old password");
	assert_int_equal(users_hash_password("new password", hash), RESULT_OK);
	assert_int_equal(users_user_set_hash(f->u, "BOB@example.org", hash, &err), RESULT_OK);
	assert_int_equal(users_user_hash(f->u, "bob@example.org", hash, sizeof(hash), NULL, &err), RESULT_OK);
	assert_true(users_check_password("new password", hash));
	assert_false(users_check_password("old password", hash));
	assert_int_equal(users_user_set_hash(f->u, "carol@example.org", hash, &err), RESULT_PERMFAIL);
	assert_non_null(strstr(err, "no such user"));
}

static void test_user_admin_flag(void **state)
{
	struct fixture *f = *state;
	const char *err = NULL;
	bool admin = true;
	domain_add_ok(f->u, "example.org");
	user_add_ok(f->u, "bob@example.org", "pw");
	/* new accounts may not sign in to the dashboard until they are made admins */
	assert_int_equal(users_user_admin(f->u, "bob@example.org", &admin, &err), RESULT_OK);
	assert_false(admin);
	assert_int_equal(users_user_set_admin(f->u, "BOB@EXAMPLE.ORG", true, &err), RESULT_OK);
	assert_int_equal(users_user_admin(f->u, "bob@example.org", &admin, &err), RESULT_OK);
	assert_true(admin);
	assert_int_equal(users_user_set_admin(f->u, "bob@example.org", false, &err), RESULT_OK);
	assert_int_equal(users_user_admin(f->u, "Bob@example.org", &admin, &err), RESULT_OK);
	assert_false(admin);
	assert_int_equal(users_user_set_admin(f->u, "carol@example.org", true, &err), RESULT_PERMFAIL);
	assert_non_null(strstr(err, "no such user"));
	admin = true;
	assert_int_equal(users_user_admin(f->u, "carol@example.org", &admin, &err), RESULT_PERMFAIL);
	assert_false(admin);
}

static void test_reopen_persists(void **state)
{
	struct fixture *f = *state;
	const char *err = NULL;
	domain_add_ok(f->u, "example.org");
	user_add_ok(f->u, "bob@example.org", "pw");
	users_close(f->u);
	f->u = users_open(f->dir, &err);
	assert_non_null(f->u);
	assert_int_equal(users_domain_is_local(f->u, "example.org"), RESULT_OK);
	char hash[USERS_HASH_MAX];
	assert_int_equal(users_user_hash(f->u, "bob@example.org", hash, sizeof(hash), NULL, &err), RESULT_OK);
	assert_true(users_check_password("pw", hash));
}

static void test_open_newer_schema_refused(void **state)
{
	struct fixture *f = *state;
	const char *err = NULL;
	users_close(f->u);
	f->u = NULL;
	char path[512];
	snprintf(path, sizeof(path), "%s/mailwerk.db", f->dir);
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_null(users_open(f->dir, &err));
	assert_non_null(strstr(err, "newer"));
}

static void test_open_missing_dir(void **state)
{
	(void)state;
	const char *err = NULL;
	assert_null(users_open("/nonexistent/mailwerk-test", &err));
	assert_non_null(err);
}

static void test_hash_round_trip(void **state)
{
	(void)state;
	char h1[USERS_HASH_MAX], h2[USERS_HASH_MAX];
	assert_int_equal(users_hash_password("correct horse battery staple", h1), RESULT_OK);
	assert_memory_equal(h1, "$y$", 3);
	assert_true(users_check_password("correct horse battery staple", h1));
	assert_false(users_check_password("correct horse battery stapl", h1));
	assert_false(users_check_password("Correct horse battery staple", h1));
	assert_false(users_check_password("", h1));
	assert_false(users_check_password(NULL, h1));
	assert_true(users_hash_importable(h1));
	/* a fresh salt each time */
	assert_int_equal(users_hash_password("correct horse battery staple", h2), RESULT_OK);
	assert_string_not_equal(h1, h2);
	assert_true(users_check_password("correct horse battery staple", h2));
}

static void test_hash_imported_schemes(void **state)
{
	(void)state;
	static const char *const prefixes[] = { "$6$", "$2b$", "$y$" };
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		char h[USERS_HASH_MAX];
		hash_make(prefixes[i], "imported secret", h);
		if (!users_hash_importable(h))
			fail_msg("%s hash not importable: %s", prefixes[i], h);
		assert_true(users_check_password("imported secret", h));
		assert_false(users_check_password("imported secreT", h));
		/* a cut-off hash would never verify: refused on import */
		char cut[USERS_HASH_MAX];
		strcpy(cut, h);
		cut[strlen(cut) - 5] = '\0';
		assert_false(users_hash_importable(cut));
		/* a locked copy ("!" prefix, as usermod -L writes it) never matches */
		char locked[USERS_HASH_MAX + 1];
		snprintf(locked, sizeof(locked), "!%s", h);
		assert_false(users_check_password("imported secret", locked));
		assert_false(users_hash_importable(locked));
	}
}

static void test_hash_import_stored(void **state)
{
	struct fixture *f = *state;
	const char *err = NULL;
	char h[USERS_HASH_MAX], got[USERS_HASH_MAX];
	domain_add_ok(f->u, "example.org");
	hash_make("$2b$", "from another server", h);
	assert_int_equal(users_user_add(f->u, "bob@example.org", h, &err), RESULT_OK);
	assert_int_equal(users_user_hash(f->u, "bob@example.org", got, sizeof(got), NULL, &err), RESULT_OK);
	assert_string_equal(got, h);
	assert_true(users_check_password("from another server", got));
}

static void test_hash_not_importable(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", "*", "!", "!!", "*LK*", "hunter2", "$y$", "$6$", "$2b$", "$2a$", "$5$", "$7$",
		"$1$abcdefgh$0123456789abcdefghijkl", /* MD5 crypt: not accepted even if libcrypt knows it */
		"$6$saltsalt$", "$6$salt salt$abc", "$6$a:b$abc",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (users_hash_importable(bad[i]))
			fail_msg("\"%s\" reported importable", bad[i]);
	}
	assert_false(users_hash_importable(NULL));
	/* a real MD5-crypt hash, if this libcrypt still builds them */
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	if (crypt_gensalt_rn("$1$", 0, NULL, 0, salt, (int)sizeof(salt))) {
		struct crypt_data *cd = calloc(1, sizeof(*cd));
		assert_non_null(cd);
		const char *h = crypt_r("pw", salt, cd);
		if (h && h[0] != '*')
			assert_false(users_hash_importable(h));
		free(cd);
	}
}

static void test_hash_disabled_never_match(void **state)
{
	(void)state;
	static const char *const hashes[] = { "*", "!", "", "*0", "!!" };
	static const char *const passwords[] = { "", "*", "!", "x", "password" };
	for (size_t i = 0; i < sizeof(hashes) / sizeof(hashes[0]); i++)
		for (size_t j = 0; j < sizeof(passwords) / sizeof(passwords[0]); j++)
			assert_false(users_check_password(passwords[j], hashes[i]));
	assert_false(users_check_password("x", NULL));
}

static void test_password_generate(void **state)
{
	(void)state;
	char a[USERS_PASSWORD_GEN_LEN + 1], b[USERS_PASSWORD_GEN_LEN + 1];
	assert_int_equal(users_password_generate(a, sizeof(a)), RESULT_OK);
	assert_int_equal(users_password_generate(b, sizeof(b)), RESULT_OK);
	assert_int_equal(strlen(a), USERS_PASSWORD_GEN_LEN);
	assert_string_not_equal(a, b);
	for (size_t i = 0; a[i]; i++)
		assert_null(strchr("0O1lIo", a[i]));
	char one[1];
	assert_int_equal(users_password_generate(one, sizeof(one)), RESULT_OK);
	assert_string_equal(one, "");
}

/* Kept statements: one borrower at a time (a second of the same text gets its own), given back
 * reset for the next, and more texts than the cache holds still work. */
static void test_statement_cache(void **state)
{
	struct fixture *f = *state;
	sqlite3_stmt *a = users_prepare(f->u, "SELECT ?1 + 1");
	sqlite3_stmt *b = users_prepare(f->u, "SELECT ?1 + 1");
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	sqlite3_bind_int(a, 1, 1);
	sqlite3_bind_int(b, 1, 10);
	assert_int_equal(sqlite3_step(a), SQLITE_ROW); /* a is on its row while b runs */
	assert_int_equal(sqlite3_step(b), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(a, 0), 2);
	assert_int_equal(sqlite3_column_int(b, 0), 11);
	users_done(f->u, b); /* not kept: finalized */
	users_done(f->u, a);
	sqlite3_stmt *again = users_prepare(f->u, "SELECT ?1 + 1");
	assert_ptr_equal(again, a);
	/* given back without bindings: ?1 is NULL */
	assert_int_equal(sqlite3_step(again), SQLITE_ROW);
	assert_int_equal(sqlite3_column_type(again, 0), SQLITE_NULL);
	users_done(f->u, again);
	for (int i = 0; i < USERS_STMT_CACHE * 2; i++) {
		char sql[64];
		snprintf(sql, sizeof(sql), "SELECT %d", i); /* one buffer, many texts */
		sqlite3_stmt *st = users_prepare(f->u, sql);
		assert_non_null(st);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(st, 0), i);
		users_done(f->u, st);
	}
	assert_null(users_prepare(f->u, "SELECT FROM nowhere"));
	users_done(f->u, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_domain_add_list_del, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_domain_invalid, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_domain_del_refused_with_users, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_user_add_list_del, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_user_duplicate, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_user_nonlocal_domain, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_user_invalid, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_user_set_hash, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_user_admin_flag, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_reopen_persists, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_open_newer_schema_refused, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_hash_import_stored, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_statement_cache, fixture_setup, fixture_teardown),
		cmocka_unit_test(test_open_missing_dir),
		cmocka_unit_test(test_hash_round_trip),
		cmocka_unit_test(test_hash_imported_schemes),
		cmocka_unit_test(test_hash_not_importable),
		cmocka_unit_test(test_hash_disabled_never_match),
		cmocka_unit_test(test_password_generate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
