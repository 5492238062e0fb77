/* test_routes.c — inbound routes (src/mailbox/routes.c) and how the recipient resolution and
 * expansion (src/mailbox/recipients.c) take them: the route address parser on ordinary and hostile
 * input, get/set/del by id and by address, newest-first pages, the resolution order of users.h
 * (at each name the route first; a more specific name wins), a domain whose receiving is off, and
 * the expansion of routed addresses with and without mailbox. */
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
	assert_non_null(f);
	const char *err;
	const char *tmp = getenv("TMPDIR");
	snprintf(f->dir, sizeof(f->dir), "%s/test_routes.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	f->u = users_open(f->dir, &err);
	assert_non_null(f->u);
	assert_int_equal(users_domain_add(f->u, "example.org", &err), RESULT_OK);
	assert_int_equal(users_domain_add(f->u, "other.example", &err), RESULT_OK);
	char hash[USERS_HASH_MAX];
	assert_int_equal(users_hash_password("pw", hash), RESULT_OK);
	assert_int_equal(users_user_add(f->u, "alice@example.org", hash, &err), RESULT_OK);
	assert_int_equal(users_user_add(f->u, "bob@example.org", hash, &err), RESULT_OK);
	assert_int_equal(users_user_add(f->u, "a+b@example.org", hash, &err), RESULT_OK);
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

static void route_add_ok(struct fixture *f, const char *address, bool mailbox, struct users_route *r)
{
	const char *err = NULL;
	struct users_route tmp;
	if (users_route_add(f->u, address, mailbox, r != NULL ? r : &tmp, &err) != RESULT_OK)
		fail_msg("users_route_add(%s): %s", address, err != NULL ? err : "");
}

/* RESULT_PERMFAIL with a reason that says why. */
static void route_add_refused(struct fixture *f, const char *address, const char *why)
{
	const char *err = NULL;
	enum result r = users_route_add(f->u, address, false, NULL, &err);
	if (r != RESULT_PERMFAIL)
		fail_msg("users_route_add(%.80s): %d, want PERMFAIL", address, r);
	assert_non_null(err);
	if (strstr(err, why) == NULL)
		fail_msg("users_route_add(%.80s): \"%s\" lacks \"%s\"", address, err, why);
}

static bool uuid_shaped(const char *s)
{
	if (strlen(s) != USERS_ROUTE_ID_LEN)
		return false;
	for (size_t i = 0; i < USERS_ROUTE_ID_LEN; i++)
		if (i == 8 || i == 13 || i == 18 || i == 23 ? s[i] != '-' : strchr("0123456789abcdef", s[i]) == NULL)
			return false;
	return true;
}

/* ---- the route address ---- */

static void test_add_forms(void **state)
{
	struct fixture *f = *state;
	struct users_route r;
	route_add_ok(f, "app@example.org", false, &r);
	assert_true(uuid_shaped(r.id));
	assert_string_equal(r.address, "app@example.org");
	assert_string_equal(r.domain, "example.org");
	assert_false(r.mailbox);
	assert_true(r.created_ms > 1700000000000LL);
	/* the domain folded (RFC 5321 §2.4), the local part kept */
	route_add_ok(f, "Hooks@EXAMPLE.Org", true, &r);
	assert_string_equal(r.address, "Hooks@example.org");
	assert_string_equal(r.domain, "example.org");
	assert_true(r.mailbox);
	/* the whole domain: "*@domain", or "@domain" as the catch-all alias is written */
	route_add_ok(f, "*@Other.EXAMPLE", false, &r);
	assert_string_equal(r.address, "*@other.example");
	assert_string_equal(r.domain, "other.example");
	route_add_refused(f, "@other.example", "already routed");
	route_add_refused(f, "*@OTHER.example", "*@other.example is already routed");
	route_add_refused(f, "app@EXAMPLE.ORG", "app@example.org is already routed");
	/* a quoted local part and UTF-8 (RFC 6531) are addresses too */
	route_add_ok(f, "\"x y\"@example.org", false, &r);
	assert_string_equal(r.address, "\"x y\"@example.org");
	route_add_ok(f, "j\xc3\xb6rg@example.org", false, &r);
	assert_string_equal(r.address, "j\xc3\xb6rg@example.org");
	/* "**" is a local part, not the wildcard */
	route_add_ok(f, "**@example.org", false, &r);
	assert_string_equal(r.address, "**@example.org");
	/* a user's or an alias's address may be routed: the route comes first at that name */
	route_add_ok(f, "alice@example.org", false, NULL);
}

static void test_add_hostile(void **state)
{
	struct fixture *f = *state;
	static const char *const not_addresses[] = {
		"", "@", "*", "*@", "noat", "example.org", "a@", "@@example.org", "*@@example.org", "a@@example.org",
		"a b@example.org", "a@exa mple.org", "<a@example.org>", "a@example.org>", " a@example.org",
		"a@example.org ", "*x@", "*@.example.org", "*@example..org", "a@-example.org", "a@example.org\n",
		/* address literals (RFC 5321 §4.1.3) name no local domain */
		"a@[192.0.2.1]", "*@[192.0.2.1]", "@[192.0.2.1]", "a@[IPv6:2001:db8::1]",
		/* ill-formed UTF-8 */
		"\xc3@example.org", "a@ex\xffmple.org", "*@ex\xc3.org",
	};
	for (size_t i = 0; i < sizeof(not_addresses) / sizeof(not_addresses[0]); i++)
		route_add_refused(f, not_addresses[i], "expected local@domain or *@domain");
	/* over the RFC 5321 §4.5.3.1 limits: a local part of 65 octets, a domain of over 255 */
	char big[600];
	memset(big, 'a', 65);
	snprintf(big + 65, sizeof(big) - 65, "@example.org");
	route_add_refused(f, big, "expected local@domain");
	memset(big, 'a', 64);
	snprintf(big + 64, sizeof(big) - 64, "@example.org");
	route_add_ok(f, big, false, NULL);
	size_t n = (size_t)snprintf(big, sizeof(big), "*@");
	for (int i = 0; i < 5; i++) { /* five labels of 60 octets */
		memset(big + n, 'a' + i, 60);
		big[n + 60] = '.';
		n += 61;
	}
	snprintf(big + n, sizeof(big) - n, "example.org");
	route_add_refused(f, big, "expected local@domain");
	/* a domain that is not local, however it is written */
	route_add_refused(f, "x@nowhere.example", "domain nowhere.example is not local");
	route_add_refused(f, "*@NOWHERE.example", "domain nowhere.example is not local");
	route_add_refused(f, "x@sub.example.org", "not local");
	route_add_refused(f, "*@b\xc3\xbc" "cher.example", "not local");
	/* nothing was stored by a refusal */
	struct users_route *list;
	size_t count;
	bool more;
	const char *err;
	assert_int_equal(users_route_page(f->u, 100, NULL, NULL, &list, &count, &more, &err), RESULT_OK);
	assert_int_equal(count, 1);
	free(list);
}

/* ---- get, set, del ---- */

static void test_get_set_del(void **state)
{
	struct fixture *f = *state;
	const char *err = NULL;
	struct users_route a, w, got;
	route_add_ok(f, "app@example.org", false, &a);
	route_add_ok(f, "*@other.example", false, &w);
	/* by id, by the address (domain in any case), the wildcard in either spelling */
	assert_int_equal(users_route_get(f->u, a.id, &got, &err), RESULT_OK);
	assert_string_equal(got.address, "app@example.org");
	assert_int_equal(got.created_ms, a.created_ms);
	assert_int_equal(users_route_get(f->u, "app@Example.ORG", &got, &err), RESULT_OK);
	assert_string_equal(got.id, a.id);
	assert_int_equal(users_route_get(f->u, "*@OTHER.example", &got, &err), RESULT_OK);
	assert_string_equal(got.id, w.id);
	assert_string_equal(got.address, "*@other.example");
	assert_int_equal(users_route_get(f->u, "@other.example", &got, &err), RESULT_OK);
	assert_string_equal(got.id, w.id);
	/* the local part is exact here */
	assert_int_equal(users_route_get(f->u, "APP@example.org", &got, &err), RESULT_PERMFAIL);
	assert_non_null(strstr(err, "no such route"));
	static const char *const missing[] = {"", "x", "@", "nobody@example.org", "00000000-0000-4000-8000-000000000000",
					      "' OR 1=1 --", "%"};
	for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++)
		assert_int_equal(users_route_get(f->u, missing[i], &got, &err), RESULT_PERMFAIL);
	/* mailbox switched by address and by id */
	assert_int_equal(users_route_set_mailbox(f->u, "app@example.org", true, &err), RESULT_OK);
	assert_int_equal(users_route_get(f->u, a.id, &got, &err), RESULT_OK);
	assert_true(got.mailbox);
	assert_int_equal(users_route_set_mailbox(f->u, a.id, false, &err), RESULT_OK);
	assert_int_equal(users_route_get(f->u, a.id, &got, &err), RESULT_OK);
	assert_false(got.mailbox);
	assert_int_equal(users_route_set_mailbox(f->u, "nobody@example.org", true, &err), RESULT_PERMFAIL);
	/* deleted by address, then by id; a second delete finds nothing */
	assert_int_equal(users_route_del(f->u, "*@other.example", &err), RESULT_OK);
	assert_int_equal(users_route_get(f->u, w.id, &got, &err), RESULT_PERMFAIL);
	assert_int_equal(users_route_del(f->u, "@other.example", &err), RESULT_PERMFAIL);
	assert_non_null(strstr(err, "no such route"));
	assert_int_equal(users_route_del(f->u, a.id, &err), RESULT_OK);
	assert_int_equal(users_route_del(f->u, a.id, &err), RESULT_PERMFAIL);
	/* the address may be routed again, under a new id */
	struct users_route again;
	route_add_ok(f, "app@example.org", false, &again);
	assert_string_not_equal(again.id, a.id);
	/* a domain that goes takes its routes with it */
	assert_int_equal(users_domain_del(f->u, "other.example", &err), RESULT_OK);
	route_add_ok(f, "app2@example.org", false, NULL);
	assert_int_equal(users_domain_add(f->u, "other.example", &err), RESULT_OK);
	route_add_ok(f, "*@other.example", false, NULL);
	assert_int_equal(users_domain_del(f->u, "other.example", &err), RESULT_OK);
	assert_int_equal(users_route_get(f->u, "*@other.example", &got, &err), RESULT_PERMFAIL);
}

static void test_page(void **state)
{
	struct fixture *f = *state;
	const char *err = NULL;
	struct users_route r[5];
	char addr[64];
	for (int i = 0; i < 5; i++) {
		snprintf(addr, sizeof(addr), "r%d@example.org", i);
		route_add_ok(f, addr, i % 2 == 0, &r[i]);
	}
	struct users_route *list;
	size_t n;
	bool more;
	/* newest first */
	assert_int_equal(users_route_page(f->u, 2, NULL, NULL, &list, &n, &more, &err), RESULT_OK);
	assert_int_equal(n, 2);
	assert_true(more);
	assert_string_equal(list[0].id, r[4].id);
	assert_string_equal(list[1].id, r[3].id);
	assert_string_equal(list[0].address, "r4@example.org");
	assert_true(list[0].mailbox);
	assert_false(list[1].mailbox);
	free(list);
	/* after: older ones */
	assert_int_equal(users_route_page(f->u, 2, r[3].id, NULL, &list, &n, &more, &err), RESULT_OK);
	assert_int_equal(n, 2);
	assert_true(more);
	assert_string_equal(list[0].id, r[2].id);
	assert_string_equal(list[1].id, r[1].id);
	free(list);
	assert_int_equal(users_route_page(f->u, 2, r[1].id, NULL, &list, &n, &more, &err), RESULT_OK);
	assert_int_equal(n, 1);
	assert_false(more);
	assert_string_equal(list[0].id, r[0].id);
	free(list);
	/* before: newer ones, still newest first */
	assert_int_equal(users_route_page(f->u, 2, NULL, r[0].id, &list, &n, &more, &err), RESULT_OK);
	assert_int_equal(n, 2);
	assert_true(more);
	assert_string_equal(list[0].id, r[2].id);
	assert_string_equal(list[1].id, r[1].id);
	free(list);
	assert_int_equal(users_route_page(f->u, 10, NULL, r[4].id, &list, &n, &more, &err), RESULT_OK);
	assert_int_equal(n, 0);
	assert_false(more);
	free(list);
	/* the wildcard is shown as "*@domain" in a page too */
	route_add_ok(f, "@other.example", false, NULL);
	assert_int_equal(users_route_page(f->u, 1, NULL, NULL, &list, &n, &more, &err), RESULT_OK);
	assert_string_equal(list[0].address, "*@other.example");
	free(list);
	/* a cursor that is not a route's id */
	list = (struct users_route *)&list;
	assert_int_equal(users_route_page(f->u, 2, "r1@example.org", NULL, &list, &n, &more, &err), RESULT_PERMFAIL);
	assert_non_null(strstr(err, "cursor"));
	assert_null(list);
	assert_int_equal(n, 0);
	assert_int_equal(users_route_page(f->u, 2, NULL, "", &list, &n, &more, &err), RESULT_PERMFAIL);
}

/* ---- resolution ---- */

static enum result resolve(struct fixture *f, const char *address, struct users_rcpt *r)
{
	const char *err;
	memset(r, 0, sizeof(*r));
	return users_rcpt_resolve(f->u, address, "+", r, &err);
}

static void test_resolution_order(void **state)
{
	struct fixture *f = *state;
	const char *err;
	struct users_rcpt r;
	struct users_route alice, team, wild;
	assert_int_equal(users_alias_add(f->u, "team@example.org", "bob@example.org", &err), RESULT_OK);
	assert_int_equal(users_alias_add(f->u, "@example.org", "bob@example.org", &err), RESULT_OK);
	/* without routes: user, alias, catch-all */
	assert_int_equal(resolve(f, "alice@example.org", &r), RESULT_OK);
	assert_int_equal(r.kind, USERS_RCPT_USER);
	assert_int_equal(resolve(f, "nobody@example.org", &r), RESULT_OK);
	assert_int_equal(r.kind, USERS_RCPT_ALIAS);
	assert_string_equal(r.address, "@example.org");
	/* at one name the route wins over the user and the alias */
	route_add_ok(f, "alice@example.org", false, &alice);
	route_add_ok(f, "team@example.org", true, &team);
	assert_int_equal(resolve(f, "alice@example.org", &r), RESULT_OK);
	assert_int_equal(r.kind, USERS_RCPT_ROUTE);
	assert_string_equal(r.route.id, alice.id);
	assert_string_equal(r.address, "alice@example.org");
	assert_int_equal(resolve(f, "team@example.org", &r), RESULT_OK);
	assert_int_equal(r.kind, USERS_RCPT_ROUTE);
	assert_true(r.route.mailbox);
	/* the address as given (received_for), whatever case matched the route */
	assert_int_equal(resolve(f, "ALICE@Example.ORG", &r), RESULT_OK);
	assert_int_equal(r.kind, USERS_RCPT_ROUTE);
	assert_string_equal(r.address, "ALICE@Example.ORG");
	/* then without the tag: the route of the name without it, the tag kept in the address */
	assert_int_equal(resolve(f, "alice+news@example.org", &r), RESULT_OK);
	assert_int_equal(r.kind, USERS_RCPT_ROUTE);
	assert_string_equal(r.route.id, alice.id);
	assert_string_equal(r.address, "alice+news@example.org");
	/* a user at the whole name is more specific than a route without the tag */
	route_add_ok(f, "a@example.org", false, NULL);
	assert_int_equal(resolve(f, "a+b@example.org", &r), RESULT_OK);
	assert_int_equal(r.kind, USERS_RCPT_USER);
	assert_string_equal(r.address, "a+b@example.org");
	assert_int_equal(resolve(f, "a+c@example.org", &r), RESULT_OK);
	assert_int_equal(r.kind, USERS_RCPT_ROUTE);
	/* the domain's route: after every name, before the catch-all alias */
	route_add_ok(f, "*@example.org", false, &wild);
	assert_int_equal(resolve(f, "nobody@example.org", &r), RESULT_OK);
	assert_int_equal(r.kind, USERS_RCPT_ROUTE);
	assert_string_equal(r.route.id, wild.id);
	assert_string_equal(r.route.address, "*@example.org");
	assert_string_equal(r.address, "nobody@example.org");
	assert_int_equal(resolve(f, "bob@example.org", &r), RESULT_OK);
	assert_int_equal(r.kind, USERS_RCPT_USER);
	assert_int_equal(resolve(f, "bob+x@example.org", &r), RESULT_OK);
	assert_int_equal(r.kind, USERS_RCPT_USER);
	assert_string_equal(r.address, "bob@example.org");
	/* the domain's route is not a name: "@example.org" itself is no recipient */
	assert_int_equal(resolve(f, "@example.org", &r), RESULT_PERMFAIL);
	assert_int_equal(resolve(f, "*@example.org", &r), RESULT_OK); /* "*" is a local part like any */
	assert_string_equal(r.route.id, wild.id);
	/* without routes, as a route with mailbox delivers besides */
	assert_int_equal(users_rcpt_resolve_unrouted(f->u, "alice+x@example.org", "+", &r, &err), RESULT_OK);
	assert_int_equal(r.kind, USERS_RCPT_USER);
	assert_string_equal(r.address, "alice@example.org");
	assert_int_equal(users_rcpt_resolve_unrouted(f->u, "team@example.org", "+", &r, &err), RESULT_OK);
	assert_int_equal(r.kind, USERS_RCPT_ALIAS);
	assert_string_equal(r.targets, "bob@example.org");
	assert_int_equal(users_rcpt_resolve_unrouted(f->u, "nobody@example.org", "+", &r, &err), RESULT_OK);
	assert_int_equal(r.kind, USERS_RCPT_ALIAS);
	assert_string_equal(r.address, "@example.org");
	/* a route of another domain does nothing here */
	route_add_ok(f, "*@other.example", false, NULL);
	assert_int_equal(users_alias_del(f->u, "@example.org", &err), RESULT_OK);
	assert_int_equal(users_route_del(f->u, wild.id, &err), RESULT_OK);
	assert_int_equal(resolve(f, "nobody@example.org", &r), RESULT_PERMFAIL);
	assert_int_equal(resolve(f, "nobody@other.example", &r), RESULT_OK);
	assert_int_equal(r.kind, USERS_RCPT_ROUTE);
}

/* Two routes that differ only in case: nobody rather than a guess. */
static void test_resolution_case(void **state)
{
	struct fixture *f = *state;
	struct users_rcpt r;
	struct users_route lower, upper;
	route_add_ok(f, "app@example.org", false, &lower);
	assert_int_equal(resolve(f, "APP@example.org", &r), RESULT_OK);
	assert_string_equal(r.route.id, lower.id);
	route_add_ok(f, "App@example.org", false, &upper);
	assert_int_equal(resolve(f, "app@example.org", &r), RESULT_OK);
	assert_string_equal(r.route.id, lower.id);
	assert_int_equal(resolve(f, "App@example.org", &r), RESULT_OK);
	assert_string_equal(r.route.id, upper.id);
	assert_int_equal(resolve(f, "APP@example.org", &r), RESULT_PERMFAIL);
}

/* A domain whose receiving capability is off has no routes (users_domain_update). */
static void test_receiving_off(void **state)
{
	struct fixture *f = *state;
	const char *err;
	struct users_rcpt r;
	route_add_ok(f, "alice@example.org", false, NULL);
	route_add_ok(f, "app@example.org", false, NULL);
	route_add_ok(f, "*@other.example", false, NULL);
	assert_int_equal(users_domain_update(f->u, "example.org", NULL, -1, 0, -1, &err), RESULT_OK);
	assert_int_equal(resolve(f, "alice@example.org", &r), RESULT_OK);
	assert_int_equal(r.kind, USERS_RCPT_USER);
	assert_int_equal(resolve(f, "app@example.org", &r), RESULT_PERMFAIL);
	/* the other domain's are untouched, and the routes are kept for when it is on again */
	assert_int_equal(resolve(f, "x@other.example", &r), RESULT_OK);
	assert_int_equal(r.kind, USERS_RCPT_ROUTE);
	struct users_route got;
	assert_int_equal(users_route_get(f->u, "app@example.org", &got, &err), RESULT_OK);
	/* a switch of something else leaves receiving as it is */
	assert_int_equal(users_domain_update(f->u, "example.org", NULL, 1, -1, -1, &err), RESULT_OK);
	assert_int_equal(resolve(f, "app@example.org", &r), RESULT_PERMFAIL);
	assert_int_equal(users_domain_update(f->u, "example.org", NULL, -1, 1, -1, &err), RESULT_OK);
	assert_int_equal(resolve(f, "app@example.org", &r), RESULT_OK);
	assert_int_equal(r.kind, USERS_RCPT_ROUTE);
	/* the domain's route goes off with its domain too */
	assert_int_equal(users_domain_update(f->u, "other.example", NULL, -1, 0, -1, &err), RESULT_OK);
	assert_int_equal(resolve(f, "x@other.example", &r), RESULT_PERMFAIL);
}

/* ---- expansion ---- */

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
	assert_int_equal(users_alias_add(f->u, "team@example.org", "bob@example.org,far@remote.example", &err),
			 RESULT_OK);
	assert_int_equal(users_alias_add(f->u, "list@example.org", "app@example.org,alice@example.org", &err),
			 RESULT_OK);
	route_add_ok(f, "app@example.org", false, NULL);
	route_add_ok(f, "alice@example.org", false, NULL);
	/* a routed address is kept as given: the delivery takes it to the applications; the user's
	 * mailbox is not added without mailbox */
	const char *in1[] = {"app+tag@example.org", "Alice@example.org"};
	assert_int_equal(expand(f, in1, 2, &c), RESULT_OK);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.list[0], "app+tag@example.org");
	assert_string_equal(c.list[1], "Alice@example.org");
	/* an alias's target that is routed is kept too */
	const char *in2[] = {"list@example.org"};
	assert_int_equal(expand(f, in2, 1, &c), RESULT_OK);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.list[0], "app@example.org");
	assert_string_equal(c.list[1], "alice@example.org");
	/* a routed alias without mailbox: only the route */
	route_add_ok(f, "team@example.org", false, NULL);
	const char *in3[] = {"team@example.org"};
	assert_int_equal(expand(f, in3, 1, &c), RESULT_OK);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.list[0], "team@example.org");
	/* with mailbox: the route and the alias's targets */
	assert_int_equal(users_route_set_mailbox(f->u, "team@example.org", true, &err), RESULT_OK);
	assert_int_equal(expand(f, in3, 1, &c), RESULT_OK);
	assert_int_equal(c.n, 3);
	assert_string_equal(c.list[0], "team@example.org");
	assert_string_equal(c.list[1], "bob@example.org");
	assert_string_equal(c.list[2], "far@remote.example");
	/* a routed user with mailbox: once, the delivery of that address reaches the Maildir itself */
	assert_int_equal(users_route_set_mailbox(f->u, "alice@example.org", true, &err), RESULT_OK);
	const char *in4[] = {"alice+x@example.org", "alice@example.org"};
	assert_int_equal(expand(f, in4, 2, &c), RESULT_OK);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.list[0], "alice+x@example.org");
	assert_string_equal(c.list[1], "alice@example.org");
	/* the domain's route with mailbox and nobody else at that name: the route only */
	route_add_ok(f, "*@other.example", true, NULL);
	const char *in5[] = {"anyone@other.example"};
	assert_int_equal(expand(f, in5, 1, &c), RESULT_OK);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.list[0], "anyone@other.example");
	/* with a catch-all beside it, that too */
	assert_int_equal(users_alias_add(f->u, "@other.example", "bob@example.org", &err), RESULT_OK);
	assert_int_equal(expand(f, in5, 1, &c), RESULT_OK);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.list[1], "bob@example.org");
	/* receiving off: the alias expands as it would without routes */
	assert_int_equal(users_domain_update(f->u, "example.org", NULL, -1, 0, -1, &err), RESULT_OK);
	const char *in6[] = {"list@example.org"};
	assert_int_equal(expand(f, in6, 1, &c), RESULT_PERMFAIL); /* app@ is nobody without its route */
	assert_int_equal(expand(f, in3, 1, &c), RESULT_OK);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.list[0], "bob@example.org");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_add_forms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_hostile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_set_del, setup, teardown),
		cmocka_unit_test_setup_teardown(test_page, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolution_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolution_case, setup, teardown),
		cmocka_unit_test_setup_teardown(test_receiving_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expansion, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
