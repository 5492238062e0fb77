/* test_recipients.c — what a local address delivers to: resolution order, plus-addressing with
 * several delimiters, catch-alls, alias expansion (dedupe, loops, depth), hostile targets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailbox/users.h"

struct fixture {
	char dir[256];
	struct users *u;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *err;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_recipients.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->u = users_open(f->dir, &err);
	assert_non_null(f->u);
	assert_int_equal(users_domain_add(f->u, "example.org", &err), RESULT_OK);
	assert_int_equal(users_domain_add(f->u, "catch.example", &err), RESULT_OK);
	char hash[USERS_HASH_MAX];
	assert_int_equal(users_hash_password("pw", hash), RESULT_OK);
	assert_int_equal(users_user_add(f->u, "alice@example.org", hash, &err), RESULT_OK);
	assert_int_equal(users_user_add(f->u, "bob@example.org", hash, &err), RESULT_OK);
	assert_int_equal(users_user_add(f->u, "a+b@example.org", hash, &err), RESULT_OK); /* a user with a '+' */
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char path[512];
	users_close(f->u);
	for (const char *const *n = (const char *const[]){"mailwerk.db", "mailwerk.db-wal", "mailwerk.db-shm", NULL}; *n;
	     n++) {
		snprintf(path, sizeof(path), "%s/%s", f->dir, *n);
		unlink(path);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static enum result resolve(struct fixture *f, const char *address, const char *delims, struct users_rcpt *r)
{
	const char *err;
	return users_rcpt_resolve(f->u, address, delims, r, &err);
}

static void test_resolution_order(void **state)
{
	struct fixture *f = *state;
	struct users_rcpt r;
	const char *err;
	assert_int_equal(resolve(f, "Alice@EXAMPLE.ORG", "+", &r), RESULT_OK);
	assert_int_equal(r.kind, USERS_RCPT_USER);
	assert_string_equal(r.address, "alice@example.org");
	/* a real user whose name contains the delimiter wins over plus-addressing */
	assert_int_equal(resolve(f, "a+b@example.org", "+", &r), RESULT_OK);
	assert_string_equal(r.address, "a+b@example.org");
	assert_int_equal(resolve(f, "alice+x+y@example.org", "+", &r), RESULT_OK);
	assert_string_equal(r.address, "alice@example.org");
	assert_int_equal(resolve(f, "alice-x@example.org", "+-", &r), RESULT_OK);
	assert_int_equal(resolve(f, "alice-x@example.org", "+", &r), RESULT_PERMFAIL);
	assert_int_equal(resolve(f, "alice+x@example.org", "", &r), RESULT_PERMFAIL); /* turned off */
	assert_int_equal(resolve(f, "+x@example.org", "+", &r), RESULT_PERMFAIL);
	assert_int_equal(resolve(f, "nobody@example.org", "+", &r), RESULT_PERMFAIL);
	/* an alias, then the catch-all only for what is neither user nor alias */
	assert_int_equal(users_alias_add(f->u, "team@example.org", "alice@example.org, bob@example.org", &err), RESULT_OK);
	assert_int_equal(resolve(f, "team+news@example.org", "+", &r), RESULT_OK);
	assert_int_equal(r.kind, USERS_RCPT_ALIAS);
	assert_string_equal(r.targets, "alice@example.org,bob@example.org");
	assert_int_equal(users_alias_add(f->u, "@catch.example", "bob@example.org", &err), RESULT_OK);
	assert_int_equal(resolve(f, "anything@catch.example", "+", &r), RESULT_OK);
	assert_string_equal(r.address, "@catch.example");
	assert_int_equal(resolve(f, "anything@CATCH.example", "+", &r), RESULT_OK);
}

static void test_hostile_input(void **state)
{
	struct fixture *f = *state;
	struct users_rcpt r;
	const char *err;
	static const char *const bad_addresses[] = {"", "@", "noat", "@example.org", "x@", "x@@example.org"};
	for (size_t i = 0; i < sizeof(bad_addresses) / sizeof(bad_addresses[0]); i++)
		assert_int_equal(resolve(f, bad_addresses[i], "+", &r), RESULT_PERMFAIL);
	char big[600];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big + 400, "@example.org", 12);
	assert_int_equal(resolve(f, big, "+", &r), RESULT_PERMFAIL);
	assert_int_equal(users_alias_add(f->u, "x@example.org", "", &err), RESULT_PERMFAIL);
	assert_int_equal(users_alias_add(f->u, "x@example.org", " , ,", &err), RESULT_PERMFAIL);
	assert_int_equal(users_alias_add(f->u, "x@example.org", "a@b,not an address", &err), RESULT_PERMFAIL);
	assert_int_equal(users_alias_add(f->u, "x@nowhere.example", "a@b", &err), RESULT_PERMFAIL);
	assert_int_equal(users_alias_add(f->u, "alice@example.org", "a@b", &err), RESULT_PERMFAIL); /* a user */
	assert_int_equal(users_alias_add(f->u, "x y@example.org", "a@b", &err), RESULT_PERMFAIL);
	assert_int_equal(users_alias_del(f->u, "missing@example.org", &err), RESULT_PERMFAIL);
}

struct collected {
	char list[16][256];
	size_t n;
};

static void collect(const char *address, void *arg)
{
	struct collected *c = arg;
	assert_true(c->n < 16);
	snprintf(c->list[c->n++], 256, "%s", address);
}

static enum result expand(struct fixture *f, const char *const *a, size_t n, struct collected *c)
{
	const char *err;
	memset(c, 0, sizeof(*c));
	return users_rcpt_expand(f->u, a, n, "+", collect, c, &err);
}

static void test_expansion(void **state)
{
	struct fixture *f = *state;
	const char *err;
	struct collected c;
	assert_int_equal(users_alias_add(f->u, "team@example.org", "alice@example.org,far@remote.example", &err), RESULT_OK);
	assert_int_equal(users_alias_add(f->u, "all@example.org", "team@example.org,ALICE@example.org,bob@example.org", &err),
			 RESULT_OK);
	const char *in1[] = {"all@example.org", "alice@example.org", "elsewhere@remote.example", "bob+x@example.org"};
	assert_int_equal(expand(f, in1, 4, &c), RESULT_OK);
	/* each address once, case-insensitively; users kept as given (tag included); remote kept */
	assert_int_equal(c.n, 5);
	assert_string_equal(c.list[0], "alice@example.org");
	assert_string_equal(c.list[1], "far@remote.example");
	assert_string_equal(c.list[2], "bob@example.org");
	assert_string_equal(c.list[3], "elsewhere@remote.example");
	assert_string_equal(c.list[4], "bob+x@example.org");
	/* a loop, and a chain deeper than 8 levels, are refused */
	assert_int_equal(users_alias_add(f->u, "l1@example.org", "l2@example.org", &err), RESULT_OK);
	assert_int_equal(users_alias_add(f->u, "l2@example.org", "l1@example.org", &err), RESULT_OK);
	const char *in2[] = {"l1@example.org"};
	assert_int_equal(expand(f, in2, 1, &c), RESULT_PERMFAIL);
	for (int i = 0; i < 10; i++) {
		char from[64], to[64];
		snprintf(from, sizeof(from), "d%d@example.org", i);
		snprintf(to, sizeof(to), "d%d@example.org", i + 1);
		assert_int_equal(users_alias_add(f->u, from, i == 9 ? "alice@example.org" : to, &err), RESULT_OK);
	}
	const char *in3[] = {"d3@example.org"}, *in4[] = {"d0@example.org"};
	assert_int_equal(expand(f, in3, 1, &c), RESULT_OK); /* 7 levels */
	assert_int_equal(expand(f, in4, 1, &c), RESULT_PERMFAIL); /* 10 levels */
	/* an alias target that does not exist at a local domain fails the expansion */
	assert_int_equal(users_alias_add(f->u, "dead@example.org", "ghost@example.org", &err), RESULT_OK);
	const char *in5[] = {"dead@example.org"};
	assert_int_equal(expand(f, in5, 1, &c), RESULT_PERMFAIL);
}

static void test_quota(void **state)
{
	struct fixture *f = *state;
	const char *err;
	uint64_t q = 1;
	assert_int_equal(users_user_quota(f->u, "alice@example.org", &q, &err), RESULT_OK);
	assert_int_equal(q, 0);
	assert_int_equal(users_user_set_quota(f->u, "ALICE@example.org", 5000, &err), RESULT_OK);
	assert_int_equal(users_user_quota(f->u, "alice@example.org", &q, &err), RESULT_OK);
	assert_int_equal(q, 5000);
	assert_int_equal(users_user_set_quota(f->u, "ghost@example.org", 1, &err), RESULT_PERMFAIL);
	assert_int_equal(users_user_quota(f->u, "ghost@example.org", &q, &err), RESULT_PERMFAIL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_resolution_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expansion, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quota, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
