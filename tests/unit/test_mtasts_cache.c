/* test_mtasts_cache.c — the MTA-STS cache's store rows (delivery/mtasts_store.h) and the promises of
 * its lookup handles (delivery/mtasts_cache.h) on a real event loop, against a resolver that never
 * answers (a bound UDP socket nobody reads): an answer within the budget while the check goes on,
 * no callback from within mtasts_lookup, none after mtasts_lookup_cancel or mtasts_cache_stop, the
 * bound on checks running at once, and the cache loaded again from the store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include <event2/event.h>

#include "delivery/mtasts_cache.h"
#include "delivery/mtasts_store.h"
#include "net/dns.h"
#include "util/date.h"

struct ctx {
	char dir[256];
	int sink; /* the resolver that never answers */
	char resolver[64];
	struct event_base *base;
	struct dns *dns;
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	const char *tmp = getenv("TMPDIR");
	snprintf(c->dir, sizeof(c->dir), "%s/test_mtasts_cache.XXXXXX", tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	assert_non_null(mkdtemp(c->dir));
	c->sink = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(c->sink, (struct sockaddr *)&sin, sizeof(sin)), 0);
	socklen_t len = sizeof(sin);
	assert_int_equal(getsockname(c->sink, (struct sockaddr *)&sin, &len), 0);
	snprintf(c->resolver, sizeof(c->resolver), "127.0.0.1@%u", ntohs(sin.sin_port));
	c->base = event_base_new();
	char err[256];
	c->dns = dns_new(c->base, c->resolver, NULL, NULL, err, sizeof(err));
	if (c->dns == NULL)
		fail_msg("dns_new: %s", err);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	dns_free(c->dns);
	event_base_free(c->base);
	close(c->sink);
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->dir);
	assert_int_equal(system(cmd), 0);
	free(c);
	return 0;
}

static const char POLICY[] = "version: STSv1\r\nmode: enforce\r\nmx: mx.example.org\r\nmx: *.example.net\r\nmax_age: 86400\r\n";

struct seen {
	unsigned n;
	char domain[64];
	struct mtasts_answer a;
	char id[40];
	bool policy;
	enum mtasts_mode mode;
	size_t mx_count;
	bool match;
};

static bool store_count_row(void *arg, const struct mtasts_store_row *r)
{
	(*(unsigned *)arg)++;
	return true;
}

static bool store_check_row(void *arg, const struct mtasts_store_row *r)
{
	assert_string_equal(r->domain, "example.org");
	assert_string_equal(r->id, "id2");
	assert_string_equal(r->mode, "testing");
	assert_string_equal(r->mx, "mx.example.org\n");
	assert_int_equal(r->policy_len, 3);
	assert_int_equal(r->expires - r->fetched, 100);
	return true;
}

static void test_store_rows(void **state)
{
	struct ctx *c = *state;
	const char *err = NULL;
	struct mtasts_store *s = mtasts_store_open(c->dir, &err);
	if (s == NULL)
		fail_msg("%s", err);
	struct mtasts_store_row r = {.fetched = 1000, .expires = 1100, .mx = "mx.example.org\n", .policy = "abc",
				     .policy_len = 3};
	snprintf(r.domain, sizeof(r.domain), "example.org");
	snprintf(r.id, sizeof(r.id), "id1");
	snprintf(r.mode, sizeof(r.mode), "enforce");
	assert_int_equal(mtasts_store_put(s, &r, &err), RESULT_OK);
	/* the same domain again replaces */
	snprintf(r.id, sizeof(r.id), "id2");
	snprintf(r.mode, sizeof(r.mode), "testing");
	assert_int_equal(mtasts_store_put(s, &r, &err), RESULT_OK);
	unsigned n = 0;
	assert_int_equal(mtasts_store_each(s, 0, store_count_row, &n, &err), RESULT_OK);
	assert_int_equal(n, 1);
	assert_int_equal(mtasts_store_each(s, 0, store_check_row, NULL, &err), RESULT_OK);
	snprintf(r.domain, sizeof(r.domain), "example.net");
	assert_int_equal(mtasts_store_put(s, &r, &err), RESULT_OK);
	n = 0;
	assert_int_equal(mtasts_store_each(s, 1, store_count_row, &n, &err), RESULT_OK);
	assert_int_equal(n, 1); /* the limit */
	assert_int_equal(mtasts_store_delete(s, "example.net", &err), RESULT_OK);
	assert_int_equal(mtasts_store_delete(s, "nowhere.example", &err), RESULT_OK);
	n = 0;
	assert_int_equal(mtasts_store_each(s, 0, store_count_row, &n, &err), RESULT_OK);
	assert_int_equal(n, 1);
	mtasts_store_close(s);
}

static void on_answer(void *arg, const struct mtasts_answer *a)
{
	struct seen *s = arg;
	s->n++;
	snprintf(s->domain, sizeof(s->domain), "%s", a->domain);
	s->a = *a;
	s->a.policy = NULL;
	snprintf(s->id, sizeof(s->id), "%s", a->id);
	s->policy = a->policy != NULL;
	if (a->policy != NULL) {
		s->mode = a->policy->mode;
		s->mx_count = a->policy->mx_count;
		s->match = mtasts_policy_mx_match(a->policy, "a.example.net");
	}
}

static void run_for(struct ctx *c, unsigned ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	event_base_loopexit(c->base, &tv);
	event_base_dispatch(c->base);
}

static struct mtasts_cache *cache_new(struct ctx *c, unsigned max_fetches)
{
	struct mtasts_cache_opts o = {
		.dns = c->dns, .data_dir = c->dir, .fetch_timeout_ms = 60000, .max_fetches = max_fetches,
	};
	char err[256];
	struct mtasts_cache *m = mtasts_cache_new(&o, err, sizeof(err));
	if (m == NULL)
		fail_msg("mtasts_cache_new: %s", err);
	return m;
}

static void test_budget_cancel_stop(void **state)
{
	struct ctx *c = *state;
	struct mtasts_cache *m = cache_new(c, 2);
	struct seen a = {0}, b = {0}, d = {0}, e = {0};
	/* not a domain: no handle, no callback */
	assert_null(mtasts_lookup(m, "not a domain", 100, on_answer, &a));
	assert_null(mtasts_lookup(m, "", 100, on_answer, &a));
	int64_t t0 = date_mono_ms();
	struct mtasts_lookup *la = mtasts_lookup(m, "Example.ORG.", 150, on_answer, &a);
	assert_non_null(la);
	assert_int_equal(a.n, 0); /* never from within */
	struct mtasts_lookup *lb = mtasts_lookup(m, "example.org", 150, on_answer, &b);
	assert_int_equal(mtasts_cache_fetches(m), 1); /* one check per domain, lookups share it */
	mtasts_lookup_cancel(m, lb);
	/* a second domain takes the second slot; a third finds none and answers from the cache */
	struct mtasts_lookup *ld = mtasts_lookup(m, "example.net", 0, on_answer, &d);
	assert_non_null(ld);
	struct mtasts_lookup *le = mtasts_lookup(m, "example.com", 5000, on_answer, &e);
	assert_non_null(le);
	assert_int_equal(mtasts_cache_fetches(m), 2);
	run_for(c, 400);
	int64_t t1 = date_mono_ms();
	/* the budget: "no policy known" while the TXT lookup still waits */
	assert_int_equal(a.n, 1);
	assert_string_equal(a.domain, "example.org");
	assert_int_equal(a.a.state, TLS_DECIDE_STS_PENDING);
	assert_string_equal(a.a.reason, "pending");
	assert_false(a.policy);
	assert_false(a.a.txt_checked);
	assert_true(t1 - t0 >= 150);
	assert_int_equal(b.n, 0); /* cancelled */
	assert_int_equal(e.n, 1); /* busy: at once, after the call */
	assert_string_equal(e.a.reason, "busy");
	assert_int_equal(e.a.state, TLS_DECIDE_STS_NONE);
	assert_int_equal(d.n, 0); /* budget 0: waits for the check */
	assert_int_equal(mtasts_cache_fetches(m), 2); /* the checks go on */
	/* a stop ends them: d never hears */
	mtasts_cache_stop(m);
	assert_int_equal(mtasts_cache_fetches(m), 0);
	run_for(c, 50);
	assert_int_equal(d.n, 0);
	assert_null(mtasts_lookup(m, "example.org", 100, on_answer, &a));
	mtasts_cache_free(m);
}

/* A standby worker's cache starts without the refresh timer and starts it when the worker takes
 * over; starting it twice is one timer; a stopped cache starts none. */
static void test_refresh_start(void **state)
{
	struct ctx *c = *state;
	struct mtasts_cache *m = cache_new(c, 2);
	assert_true(mtasts_cache_refresh_start(m));
	assert_true(mtasts_cache_refresh_start(m));
	mtasts_cache_stop(m);
	assert_false(mtasts_cache_refresh_start(m));
	mtasts_cache_free(m);
}

static void test_loaded_from_store(void **state)
{
	struct ctx *c = *state;
	const char *err = NULL;
	struct mtasts_store *s = mtasts_store_open(c->dir, &err);
	assert_non_null(s);
	int64_t now = (int64_t)time(NULL);
	struct mtasts_store_row r = {.fetched = now - 10, .expires = now + 86390, .mx = "", .policy = POLICY,
				     .policy_len = sizeof(POLICY) - 1};
	snprintf(r.domain, sizeof(r.domain), "example.org");
	snprintf(r.id, sizeof(r.id), "abc");
	snprintf(r.mode, sizeof(r.mode), "enforce");
	assert_int_equal(mtasts_store_put(s, &r, &err), RESULT_OK);
	/* expired, and unreadable: both dropped at load, and deleted */
	snprintf(r.domain, sizeof(r.domain), "old.example");
	r.fetched = now - 1000;
	r.expires = now - 1;
	assert_int_equal(mtasts_store_put(s, &r, &err), RESULT_OK);
	snprintf(r.domain, sizeof(r.domain), "bad.example");
	r.expires = now + 1000;
	r.policy = "version: STSv2\r\n";
	r.policy_len = strlen(r.policy);
	assert_int_equal(mtasts_store_put(s, &r, &err), RESULT_OK);
	/* a row whose expiry lies beyond its own max_age is held to the max_age */
	snprintf(r.domain, sizeof(r.domain), "long.example");
	r.fetched = now;
	r.expires = now + 10 * 86400;
	r.policy = POLICY;
	r.policy_len = sizeof(POLICY) - 1;
	assert_int_equal(mtasts_store_put(s, &r, &err), RESULT_OK);

	struct mtasts_cache *m = cache_new(c, 4);
	assert_int_equal(mtasts_cache_size(m), 2);
	unsigned n = 0;
	assert_int_equal(mtasts_store_each(s, 0, store_count_row, &n, &err), RESULT_OK);
	assert_int_equal(n, 2);
	mtasts_store_close(s);
	/* the TXT lookup does not come back within the budget: the cached policy, valid, applies */
	struct seen a = {0}, l = {0};
	assert_non_null(mtasts_lookup(m, "example.org", 100, on_answer, &a));
	assert_non_null(mtasts_lookup(m, "long.example", 100, on_answer, &l));
	run_for(c, 300);
	assert_int_equal(a.n, 1);
	assert_true(a.policy);
	assert_int_equal(a.a.state, TLS_DECIDE_STS_PENDING);
	assert_true(a.a.from_cache);
	assert_string_equal(a.id, "abc");
	assert_int_equal(a.mode, MTASTS_MODE_ENFORCE);
	assert_int_equal(a.mx_count, 2);
	assert_true(a.match);
	assert_int_equal(l.a.expires - l.a.fetched, 86400);
	/* nothing fetched: the refresh scan starts nothing for a policy far from its end */
	assert_int_equal(mtasts_cache_refresh_due(m, now), 0);
	mtasts_cache_stop(m);
	mtasts_cache_free(m);

	/* near the end (a day before at most, with jitter): each is refreshed once, within half the slots */
	m = cache_new(c, 4);
	assert_int_equal(mtasts_cache_refresh_due(m, now + 86400 / 2), 0);
	assert_int_equal(mtasts_cache_refresh_due(m, now + 86400 - 60), 2);
	assert_int_equal(mtasts_cache_fetches(m), 2);
	assert_int_equal(mtasts_cache_refresh_due(m, now + 86400 - 60), 0); /* not twice */
	mtasts_cache_stop(m);
	mtasts_cache_free(m);
	m = cache_new(c, 2);
	assert_int_equal(mtasts_cache_refresh_due(m, now + 86400 - 60), 1); /* half of 2 */
	mtasts_cache_stop(m);
	mtasts_cache_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_store_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_budget_cancel_stop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loaded_from_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refresh_start, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
