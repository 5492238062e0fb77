/* test_mtasts_rules.c — the MTA-STS decisions of delivery/mtasts_rules.h: the policy host's
 * Content-Type, the cache rules after the TXT answer and after a fetch (RFC 8461 §3.3, §5.1), the
 * refresh time with its jitter, and the served side (policy text, id, Host field), with hostile
 * input where there is input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "delivery/mtasts_rules.h"

static void test_content_type(void **state)
{
	static const struct {
		const char *v;
		bool ok;
	} rows[] = {
		{"text/plain", true},
		{"TEXT/Plain", true},
		{"text/plain; charset=utf-8", true},
		{"text/plain;charset=us-ascii", true},
		{"  text/plain  ", true},
		{"text/plain ;x=y", true},
		{"text/html", false},
		{"text/plainx", false},
		{"text/plain-x", false},
		{"text/", false},
		{"", false},
		{"application/octet-stream", false},
		{"text /plain", false},
		{"xtext/plain", false},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (mtasts_content_type_ok(rows[i].v) != rows[i].ok)
			fail_msg("\"%s\": want %d", rows[i].v, rows[i].ok);
	assert_false(mtasts_content_type_ok(NULL));
}

#define NOW 1000000

static struct mtasts_entry entry(const char *id, int64_t fetched, int64_t expires)
{
	struct mtasts_entry e = {.present = true, .fetched = fetched, .expires = expires};
	snprintf(e.id, sizeof(e.id), "%s", id);
	return e;
}

static void test_after_txt(void **state)
{
	struct mtasts_entry valid = entry("abc", NOW - 100, NOW + 100);
	struct mtasts_entry expired = entry("abc", NOW - 200, NOW);
	struct mtasts_entry none = {0};
	const struct {
		const char *name;
		const struct mtasts_entry *cached;
		enum mtasts_txt_state txt;
		const char *id;
		enum mtasts_next want;
	} rows[] = {
		{"new domain, one record", &none, MTASTS_TXT_ONE, "abc", MTASTS_NEXT_FETCH},
		{"no cache pointer", NULL, MTASTS_TXT_ONE, "abc", MTASTS_NEXT_FETCH},
		{"same id, valid cache: used", &valid, MTASTS_TXT_ONE, "abc", MTASTS_NEXT_USE},
		{"id changed: fetch (§3.3)", &valid, MTASTS_TXT_ONE, "abd", MTASTS_NEXT_FETCH},
		{"ids compare exactly", &valid, MTASTS_TXT_ONE, "ABC", MTASTS_NEXT_FETCH},
		{"same id but expired: fetch", &expired, MTASTS_TXT_ONE, "abc", MTASTS_NEXT_FETCH},
		{"TXT gone, valid cache kept (§5.1)", &valid, MTASTS_TXT_NONE, NULL, MTASTS_NEXT_USE},
		{"TXT gone, expired cache: none", &expired, MTASTS_TXT_NONE, NULL, MTASTS_NEXT_NONE},
		{"TXT gone, nothing cached", &none, MTASTS_TXT_NONE, NULL, MTASTS_NEXT_NONE},
		{"TXT lookup failed, valid cache", &valid, MTASTS_TXT_ERROR, NULL, MTASTS_NEXT_USE},
		{"TXT lookup failed, nothing cached", &none, MTASTS_TXT_ERROR, NULL, MTASTS_NEXT_NONE},
		{"TXT lookup failed, expired", &expired, MTASTS_TXT_ERROR, NULL, MTASTS_NEXT_NONE},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		enum mtasts_next got = mtasts_rules_after_txt(rows[i].cached, rows[i].txt, rows[i].id, NOW);
		if (got != rows[i].want)
			fail_msg("%s: got %s, want %s", rows[i].name, mtasts_next_str(got), mtasts_next_str(rows[i].want));
	}
	/* an out-of-range state is read as an error: the cache, if valid, still applies */
	assert_int_equal(mtasts_rules_after_txt(&valid, (enum mtasts_txt_state)77, "abc", NOW), MTASTS_NEXT_USE);
}

static void test_after_fetch(void **state)
{
	struct mtasts_entry valid = entry("abc", NOW - 100, NOW + 100);
	struct mtasts_entry expired = entry("abc", NOW - 200, NOW - 1);
	struct mtasts_entry none = {0};
	struct mtasts_policy enforce = {.mode = MTASTS_MODE_ENFORCE, .max_age = 86400, .mx_count = 1};
	struct mtasts_policy testing = {.mode = MTASTS_MODE_TESTING, .max_age = 86400, .mx_count = 1};
	struct mtasts_policy off = {.mode = MTASTS_MODE_NONE, .max_age = 86400};
	const struct {
		const char *name;
		const struct mtasts_entry *cached;
		const struct mtasts_policy *fetched;
		enum mtasts_keep want;
	} rows[] = {
		{"first policy stored", &none, &enforce, MTASTS_KEEP_STORE},
		{"testing stored too", &none, &testing, MTASTS_KEEP_STORE},
		{"a new policy replaces the cached one", &valid, &testing, MTASTS_KEEP_STORE},
		{"mode none clears (§5)", &valid, &off, MTASTS_KEEP_CLEAR},
		{"mode none with nothing cached", &none, &off, MTASTS_KEEP_CLEAR},
		{"failed fetch keeps the valid cache (§3.3)", &valid, NULL, MTASTS_KEEP_KEEP},
		{"failed fetch, expired cache: dropped", &expired, NULL, MTASTS_KEEP_DROP},
		{"failed fetch, nothing cached", &none, NULL, MTASTS_KEEP_DROP},
		{"failed fetch, no cache pointer", NULL, NULL, MTASTS_KEEP_DROP},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		enum mtasts_keep got = mtasts_rules_after_fetch(rows[i].cached, rows[i].fetched, NOW);
		if (got != rows[i].want)
			fail_msg("%s: got %s, want %s", rows[i].name, mtasts_keep_str(got), mtasts_keep_str(rows[i].want));
	}
}

static void test_entry_valid(void **state)
{
	struct mtasts_entry e = entry("a", NOW - 10, NOW + 10);
	assert_true(mtasts_entry_valid(&e, NOW));
	assert_true(mtasts_entry_valid(&e, NOW + 9));
	assert_false(mtasts_entry_valid(&e, NOW + 10)); /* max_age seconds, not one more */
	e.present = false;
	assert_false(mtasts_entry_valid(&e, NOW));
	assert_false(mtasts_entry_valid(NULL, NOW));
}

static void test_refresh_at(void **state)
{
	/* a week: a day before the end at most, and up to a tenth of that earlier with jitter */
	struct mtasts_entry week = entry("a", NOW, NOW + 7 * 86400);
	assert_int_equal(mtasts_rules_refresh_at(&week, 0), NOW + 6 * 86400);
	int64_t j = mtasts_rules_refresh_at(&week, 0.999);
	assert_true(j < NOW + 6 * 86400 && j >= NOW + 6 * 86400 - 8640);
	/* an hour: a quarter of it */
	struct mtasts_entry hour = entry("a", NOW, NOW + 3600);
	assert_int_equal(mtasts_rules_refresh_at(&hour, 0), NOW + 2700);
	/* a minute or less: not before fetched + 60 */
	struct mtasts_entry tiny = entry("a", NOW, NOW + 10);
	assert_int_equal(mtasts_rules_refresh_at(&tiny, 0.5), NOW + 60);
	/* the jitter given out of range is taken as none */
	assert_int_equal(mtasts_rules_refresh_at(&hour, -3), NOW + 2700);
	assert_int_equal(mtasts_rules_refresh_at(&hour, 7), NOW + 2700);
	/* a year capped policy: a day */
	struct mtasts_entry year = entry("a", NOW, NOW + MTASTS_MAX_AGE_MAX);
	assert_int_equal(mtasts_rules_refresh_at(&year, 0), NOW + MTASTS_MAX_AGE_MAX - 86400);
	/* expires before fetched (a row edited by hand) */
	struct mtasts_entry odd = entry("a", NOW, NOW - 5);
	assert_int_equal(mtasts_rules_refresh_at(&odd, 0), NOW + 60);
}

static void test_policy_text(void **state)
{
	const char *mx[] = {"mx.example.org", "*.backup.example.org"};
	char buf[MTASTS_TEXT_MAX];
	size_t n = mtasts_policy_text(MTASTS_MODE_ENFORCE, 604800, mx, 2, buf, sizeof(buf));
	assert_string_equal(buf, "version: STSv1\r\nmode: enforce\r\nmx: mx.example.org\r\nmx: *.backup.example.org\r\n"
				 "max_age: 604800\r\n");
	assert_int_equal(n, strlen(buf));
	/* what we serve is what we would accept */
	struct mtasts_policy p;
	const char *err;
	assert_int_equal(mtasts_policy_parse(buf, n, &p, &err), MTASTS_OK);
	assert_int_equal(p.mode, MTASTS_MODE_ENFORCE);
	assert_int_equal(p.mx_count, 2);
	assert_true(mtasts_policy_mx_match(&p, "a.backup.example.org"));
	/* does not fit: 0, never a cut text */
	char small[40];
	assert_int_equal(mtasts_policy_text(MTASTS_MODE_TESTING, 1, mx, 2, small, sizeof(small)), 0);
	char tiny[8];
	assert_int_equal(mtasts_policy_text(MTASTS_MODE_TESTING, 1, mx, 0, tiny, sizeof(tiny)), 0);
	n = mtasts_policy_text(MTASTS_MODE_NONE, 86400, NULL, 0, buf, sizeof(buf));
	assert_int_equal(mtasts_policy_parse(buf, n, &p, &err), MTASTS_OK);
	assert_int_equal(p.mode, MTASTS_MODE_NONE);
}

static void test_policy_id(void **state)
{
	char a[MTASTS_ID_MAX + 1], b[MTASTS_ID_MAX + 1], c[MTASTS_ID_MAX + 1];
	mtasts_policy_id("mode: enforce", 13, a);
	mtasts_policy_id("mode: enforce", 13, b);
	mtasts_policy_id("mode: testing", 13, c);
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	assert_int_equal(strlen(a), 32);
	/* a valid TXT id (§3.1: 1*32 ALPHA / DIGIT) */
	char txt[64];
	snprintf(txt, sizeof(txt), "v=STSv1; id=%s", a);
	struct mtasts_txt t;
	const char *err;
	assert_int_equal(mtasts_txt_parse(txt, strlen(txt), &t, &err), MTASTS_OK);
	assert_string_equal(t.id, a);
	/* SHA-256("") starts e3b0c44298fc1c149afbf4c8996fb924 */
	mtasts_policy_id("", 0, a);
	assert_string_equal(a, "e3b0c44298fc1c149afbf4c8996fb924");
}

static void test_host_domain(void **state)
{
	static const struct {
		const char *host;
		const char *want; /* NULL: refused */
	} rows[] = {
		{"mta-sts.example.org", "example.org"},
		{"MTA-STS.Example.ORG", "example.org"},
		{"mta-sts.example.org:443", "example.org"},
		{"mta-sts.example.org.", "example.org"},
		{"mta-sts.example.org.:8443", "example.org"},
		{"mta-sts.a.b.example", "a.b.example"},
		{"example.org", NULL},
		{"mta-sts.", NULL},
		{"mta-sts", NULL},
		{"mta-sts.org", NULL},              /* one label: not a mail domain */
		{"mta-sts.example.org:", NULL},
		{"mta-sts.example.org:123456", NULL},
		{"mta-sts.example.org:44a", NULL},
		{"mta-sts.[127.0.0.1]", NULL},
		{"mta-sts.127.0.0.1", NULL},             /* an address, not a domain */
		{"mta-sts.example.123", NULL},
		{"mta-sts.exa mple.org", NULL},
		{"mta-sts.exam_ple.org", NULL},
		{"mta-sts..example.org", NULL},
		{"xmta-sts.example.org", NULL},
		{"mta-sts.-example.org", NULL},
		{"", NULL},
	};
	char d[DNS_HOST_SIZE];
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		bool ok = mtasts_host_domain(rows[i].host, strlen(rows[i].host), d, sizeof(d));
		if (ok != (rows[i].want != NULL))
			fail_msg("\"%s\": got %d", rows[i].host, ok);
		if (ok && strcmp(d, rows[i].want) != 0)
			fail_msg("\"%s\": got %s, want %s", rows[i].host, d, rows[i].want);
	}
	/* a NUL inside the value is not a shorter name */
	assert_false(mtasts_host_domain("mta-sts.example.org\0evil", 24, d, sizeof(d)));
	/* too small an output */
	assert_false(mtasts_host_domain("mta-sts.example.org", 19, d, 10));
	/* a name of 254 octets after the prefix */
	char big[300];
	memset(big, 'a', sizeof(big));
	memcpy(big, "mta-sts.", 8);
	for (size_t i = 20; i < 262; i += 20)
		big[i] = '.';
	assert_false(mtasts_host_domain(big, 262, d, sizeof(d)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_content_type), cmocka_unit_test(test_after_txt),
		cmocka_unit_test(test_after_fetch),  cmocka_unit_test(test_entry_valid),
		cmocka_unit_test(test_refresh_at),   cmocka_unit_test(test_policy_text),
		cmocka_unit_test(test_policy_id),    cmocka_unit_test(test_host_domain),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
