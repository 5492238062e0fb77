/* test_spf_record.c — RFC 7208 §4.5 record selection and the grammar of one record (§4.6.1, §5,
 * §6, §7.1): what parses into which terms, and the errors anywhere in a record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include "auth/spf_record.h"
#include "test_util.h"

/* Parses s from a heap copy of exactly its length (so that ASan sees any read past it). The
 * record owns its own copy, so it outlives the input. */
static struct spf_record *parse(const char *s, size_t len, enum spf_record_error want, size_t *at_r)
{
	struct spf_record *rec = NULL;
	const char *err = NULL;
	size_t at = 0;
	char buf[256];
	char *copy = test_dup(s, len);
	enum spf_record_error e = spf_record_parse(copy, len, &rec, &err, &at);
	free(copy);
	if (e != want)
		fail_msg("\"%s\": got %s (%s), want %s", test_escape(s, len, buf, sizeof(buf)), spf_record_error_str(e),
			 err ? err : "", spf_record_error_str(want));
	if (e != SPF_RECORD_OK) {
		assert_null(rec);
		assert_non_null(err);
	}
	if (at_r != NULL)
		*at_r = at;
	return rec;
}

static struct spf_record *ok(const char *s)
{
	return parse(s, strlen(s), SPF_RECORD_OK, NULL);
}

static void test_is_spf(void **state)
{
	assert_true(spf_record_is_spf("v=spf1", 6));
	assert_true(spf_record_is_spf("v=spf1 -all", 11));
	assert_true(spf_record_is_spf("V=SpF1 -all", 11));
	assert_false(spf_record_is_spf("v=spf10", 7));
	assert_false(spf_record_is_spf("v=spf1mx", 8)); /* strings joined without a space (§3.3) */
	assert_false(spf_record_is_spf(" v=spf1", 7));
	assert_false(spf_record_is_spf("v=spf1\t-all", 11));
	assert_false(spf_record_is_spf("v=spf", 5));
	assert_false(spf_record_is_spf("v=spf3 -all", 11));
	assert_false(spf_record_is_spf("", 0));
	assert_false(spf_record_is_spf("v=sp\0f1", 7));
	assert_false(spf_record_is_spf("spf2.0/pra -all", 15));
}

static void test_terms(void **state)
{
	struct spf_record *r = ok("v=spf1 +a -mx:mail.example.com/24 ~ptr ?ip4:192.0.2.0/24 ip6:2001:db8::/32 "
				  "include:_spf.example.com exists:%{i}.x.example.com all");
	assert_int_equal(r->nterms, 8);
	static const enum spf_mech mechs[] = {SPF_MECH_A, SPF_MECH_MX, SPF_MECH_PTR, SPF_MECH_IP4,
					      SPF_MECH_IP6, SPF_MECH_INCLUDE, SPF_MECH_EXISTS, SPF_MECH_ALL};
	static const enum spf_qualifier quals[] = {SPF_QUALIFIER_PASS, SPF_QUALIFIER_FAIL, SPF_QUALIFIER_SOFTFAIL,
						   SPF_QUALIFIER_NEUTRAL, SPF_QUALIFIER_PASS, SPF_QUALIFIER_PASS,
						   SPF_QUALIFIER_PASS, SPF_QUALIFIER_PASS};
	for (size_t i = 0; i < 8; i++) {
		assert_int_equal(r->terms[i].mech, mechs[i]);
		assert_int_equal(r->terms[i].qualifier, quals[i]);
	}
	assert_null(r->terms[0].domain.text);
	assert_int_equal(r->terms[0].cidr4, 32);
	assert_int_equal(r->terms[0].cidr6, 128);
	assert_int_equal(r->terms[1].domain.len, 16);
	assert_memory_equal(r->terms[1].domain.text, "mail.example.com", 16);
	assert_int_equal(r->terms[1].cidr4, 24);
	assert_int_equal(r->terms[1].cidr6, 128);
	assert_int_equal(r->terms[3].net.family, AF_INET);
	assert_memory_equal(r->terms[3].net.bytes, "\xc0\x00\x02\x00", 4);
	assert_int_equal(r->terms[3].cidr4, 24);
	assert_int_equal(r->terms[4].net.family, AF_INET6);
	assert_int_equal(r->terms[4].cidr6, 32);
	assert_int_equal(r->terms[4].net.bytes[1], 0x01);
	assert_true(r->terms[6].domain.uses_p == false);
	assert_int_equal(r->terms[2].text_len, 4);
	assert_memory_equal(r->terms[2].text, "~ptr", 4);
	assert_true(r->has_all);
	assert_null(r->redirect.text);
	assert_null(r->exp.text);
	assert_string_equal(r->text, "v=spf1 +a -mx:mail.example.com/24 ~ptr ?ip4:192.0.2.0/24 ip6:2001:db8::/32 "
				     "include:_spf.example.com exists:%{i}.x.example.com all");
	spf_record_free(r);

	/* names are case-insensitive (RFC 5234 §2.3); many spaces, a trailing one */
	r = ok("V=SPF1   A:Example.COM//64   MX/0  Include:x.example  EXISTS:%{P}.example.com   ALL ");
	assert_int_equal(r->nterms, 5);
	assert_int_equal(r->terms[0].cidr6, 64);
	assert_int_equal(r->terms[0].cidr4, 32);
	assert_int_equal(r->terms[1].cidr4, 0);
	assert_int_equal(r->terms[2].mech, SPF_MECH_INCLUDE);
	assert_true(r->terms[3].domain.uses_p);
	spf_record_free(r);

	/* the empty record; dual CIDR lengths */
	r = ok("v=spf1");
	assert_int_equal(r->nterms, 0);
	assert_false(r->has_all);
	spf_record_free(r);
	r = ok("v=spf1 a/24//64 mx:%{d}/0//0 a:foo:bar/baz.example.com ip6:::ffff:1.2.3.4/128 ip4:0.0.0.0/0");
	assert_int_equal(r->terms[0].cidr4, 24);
	assert_int_equal(r->terms[0].cidr6, 64);
	assert_int_equal(r->terms[1].cidr4, 0);
	assert_int_equal(r->terms[1].cidr6, 0);
	assert_int_equal(r->terms[1].domain.len, 4);
	/* a domain-spec may hold ':' and '/' (§7.1 macro-literal) */
	assert_int_equal(r->terms[2].domain.len, 23);
	assert_int_equal(r->terms[2].cidr4, 32);
	assert_int_equal(r->terms[3].net.bytes[10], 0xff);
	spf_record_free(r);
}

static void test_modifiers(void **state)
{
	struct spf_record *r = ok("v=spf1 exp=explain.%{d} mx REDIRECT=_spf.example.com moo.cow-far_out=man:dog/cat "
				  "default=pass x=%{c}%{r}%{t} y=");
	assert_int_equal(r->nterms, 1);
	assert_int_equal(r->redirect.len, 16);
	assert_memory_equal(r->redirect.text, "_spf.example.com", 16);
	assert_memory_equal(r->exp.text, "explain.%{d}", 12);
	assert_false(r->has_all);
	spf_record_free(r);

	r = ok("v=spf1 redirect=%{p}.example.com -all exp=%{p}.explain.example.com");
	assert_true(r->has_all);
	assert_true(r->redirect.uses_p);
	assert_true(r->exp.uses_p);
	spf_record_free(r);

	size_t at;
	const char *dup = "v=spf1 exp=a.example.com -all exp=b.example.com";
	assert_null(parse(dup, strlen(dup), SPF_RECORD_DUPLICATE, &at));
	assert_int_equal(at, 30);
	dup = "v=spf1 redirect=a.example.com redirect=a.example.com";
	assert_null(parse(dup, strlen(dup), SPF_RECORD_DUPLICATE, &at));
	assert_int_equal(at, 30);
	/* unknown modifiers may repeat (§6: "no matter where, or how often") */
	spf_record_free(ok("v=spf1 foo=1 foo=2 -all"));
}

static void test_errors(void **state)
{
	static const struct {
		const char *s;
		size_t at; /* offset of the term at fault */
	} bad[] = {
		{"v=spf1 ip4:1.2.3.4 -all moo", 24},
		{"v=spf1 moo.cow/far_out=man:dog/cat", 7},
		{"v=spf1 moo.cow:far_out=man:dog/cat", 7},
		{"v=spf1 redirect:t2.example.com", 7},
		{"v=spf1 1up=foo", 7},
		{"v=spf1 =all", 7},
		{"v=spf1 -", 7},
		{"v=spf1 -all.", 7},
		{"v=spf1 -all:foobar", 7},
		{"v=spf1 -all/8", 7},
		{"v=spf1 ptr/0", 7},
		{"v=spf1 ptr:", 7},
		{"v=spf1 a:", 7},
		{"v=spf1 a/33", 7},
		{"v=spf1 a//129", 7},
		{"v=spf1 a/24/64", 7},
		{"v=spf1 a/032", 7},
		{"v=spf1 a/", 7},
		{"v=spf1 a:foo-bar", 7},
		{"v=spf1 a:museum", 7},
		{"v=spf1 a:museum.", 7},
		{"v=spf1 a:abc.123", 7},
		{"v=spf1 a:111.222.33.44", 7},
		{"v=spf1 a:example.-com", 7},
		{"v=spf1 a:example.com-", 7},
		{"v=spf1 a:example.com:8080", 7},
		{"v=spf1 a:example.com..", 7},
		{"v=spf1 a:%{d}.", 7},
		{"v=spf1 a:%{x}.com", 7},
		{"v=spf1 a:%{r}.example.com", 7},
		{"v=spf1 mx:", 7},
		{"v=spf1 mx//33/", 7},
		{"v=spf1 include", 7},
		{"v=spf1 include:", 7},
		{"v=spf1 include:ip5.example.com/24", 7},
		{"v=spf1 exists", 7},
		{"v=spf1 exists:mail.example.com/24", 7},
		{"v=spf1 exists:%(ir).sbl.example.com", 7},
		{"v=spf1 exists:foo%.sbl.example.com", 7},
		{"v=spf1 ip4", 7},
		{"v=spf1 ip4:", 7},
		{"v=spf1 ip4:1.2.3", 7},
		{"v=spf1 ip4:1.2.3.4.5", 7},
		{"v=spf1 ip4:1.2.3.256", 7},
		{"v=spf1 ip4:01.2.3.4", 7},
		{"v=spf1 ip4:1.2.3.4:8080", 7},
		{"v=spf1 ip4:1.2.3.4/33", 7},
		{"v=spf1 ip4:1.2.3.4/032", 7},
		{"v=spf1 ip4:1.2.3.4//32", 7},
		{"v=spf1 ip4:1.2.3.4/", 7},
		{"v=spf1 ip4:1.2.3.4/-1", 7},
		{"v=spf1 ip4:::1", 7},
		{"v=spf1 ip6", 7},
		{"v=spf1 ip6::CAFE::BABE", 7},
		{"v=spf1 ip6:::1.1.1.1/129", 7},
		{"v=spf1 ip6:::1.1.1.1//33", 7},
		{"v=spf1 ip6:1.2.3.4", 7},
		{"v=spf1 ip6:fe80::1%eth0", 7},
		{"v=spf1 ip6:0000000000000000000000000000000000000000000000000000000000::1", 7},
		{"v=spf1 exp=", 7},
		{"v=spf1 exp=-all", 7},
		{"v=spf1 redirect=", 7},
		{"v=spf1 redirect=-all ?all", 7},
		{"v=spf1 foo=%abc", 7},
		{"v=spf1 foo=a b=%", 13},
		{"v=spf1 a:ctrl.example.com\rptr -all", 7},
		{"v=spf1 ip4:192.0.2.5\n include:x.example.com ~all", 7},
		{"v=spf1 a:\xef\xbb\xbfgarbage.example.net -all", 7},
		{"v=spf1 \x80" "a:example.net -all", 7},
		{"v=spf1 a:example.net \x96" "all", 21},
		{"v=spf1 -all\t", 7},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t at = 99, len = strlen(bad[i].s);
		char buf[256];
		assert_null(parse(bad[i].s, len, SPF_RECORD_SYNTAX, &at));
		if (at != bad[i].at)
			fail_msg("\"%s\": error at %zu, want %zu", test_escape(bad[i].s, len, buf, sizeof(buf)), at, bad[i].at);
	}
	/* a NUL octet inside (the suite's a-null) */
	assert_null(parse("v=spf1 a:foo.example.com\0", 25, SPF_RECORD_SYNTAX, NULL));
	assert_null(parse("v=spf1 -all\0", 12, SPF_RECORD_SYNTAX, NULL));
	/* not a record at all */
	assert_null(parse("v=spf10 -all", 12, SPF_RECORD_NOT_SPF, NULL));
	assert_null(parse("", 0, SPF_RECORD_NOT_SPF, NULL));
}

static void test_limits(void **state)
{
	char *big = malloc(SPF_RECORD_MAX + 2);
	assert_non_null(big);
	/* the longest record allowed, made of as many terms as fit */
	memcpy(big, "v=spf1", 6);
	size_t n = 6;
	while (n + 2 <= SPF_RECORD_MAX) {
		memcpy(big + n, " a", 2);
		n += 2;
	}
	struct spf_record *r = parse(big, n, SPF_RECORD_OK, NULL);
	assert_int_equal(r->nterms, (SPF_RECORD_MAX - 6) / 2);
	spf_record_free(r);
	big[n++] = 'a';
	assert_null(parse(big, n, n > SPF_RECORD_MAX ? SPF_RECORD_TOO_LONG : SPF_RECORD_OK, NULL));
	free(big);
}

static void test_domain_spec(void **state)
{
	static const struct {
		const char *s;
		bool valid;
	} cases[] = {
		{"example.com", true},
		{"example.com.", true},
		{"foo.example.xn--zckzah", true},
		{"x.1-2", true},
		{"x.1a", true},
		{"%{d}", true},
		{"%{d}.", false},
		{"%{d}.com", true},
		{"%{d}com", false},
		{"a.%%", true},
		{"a.%_", true},
		{"foo:bar/baz.example.com", true},
		{"com", false},
		{".com", true},
		{"a.123", false},
		{"a.-x", false},
		{"a.x-", false},
		{"a.x_y", false},
		{"", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *err = NULL;
		bool p = true;
		bool got = spf_domain_spec_valid(cases[i].s, strlen(cases[i].s), &p, &err);
		if (got != cases[i].valid)
			fail_msg("\"%s\": got %d (%s), want %d", cases[i].s, got, err ? err : "", cases[i].valid);
		if (got)
			assert_false(p);
	}
}

static void test_strings(void **state)
{
	assert_string_equal(spf_mech_str(SPF_MECH_EXISTS), "exists");
	assert_string_equal(spf_qualifier_str(SPF_QUALIFIER_SOFTFAIL), "~");
	assert_string_equal(spf_record_error_str(SPF_RECORD_DUPLICATE), "duplicate");
	assert_true(spf_mech_queries_dns(SPF_MECH_PTR));
	assert_false(spf_mech_queries_dns(SPF_MECH_IP6));
	assert_false(spf_mech_queries_dns(SPF_MECH_ALL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_is_spf),
		cmocka_unit_test(test_terms),
		cmocka_unit_test(test_modifiers),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_domain_spec),
		cmocka_unit_test(test_strings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
