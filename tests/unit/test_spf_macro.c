/* test_spf_macro.c — RFC 7208 §7 macros: the examples of §7.4, every letter, transformers and
 * delimiters, URL escaping, the §7.3 rules for queried names, and hostile macro-strings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include "auth/spf_macro.h"
#include "test_util.h"

static struct dns_addr addr(const char *s)
{
	struct dns_addr a = {0};
	a.family = strchr(s, ':') != NULL ? AF_INET6 : AF_INET;
	assert_int_equal(inet_pton(a.family, s, a.bytes), 1);
	return a;
}

/* The values of RFC 7208 §7.4. */
static struct dns_addr env_ip;
static struct spf_macro_env env74(const char *ip)
{
	env_ip = addr(ip);
	struct spf_macro_env env = {
		.sender = "strong-bad@email.example.com",
		.local = "strong-bad",
		.sender_domain = "email.example.com",
		.domain = "email.example.com",
		.ip = &env_ip,
		.ptr_name = "mx.example.org",
		.helo = "mx.example.org",
		.receiver = "receiver.example.net",
		.now = 1234567890,
	};
	return env;
}

/* The expansion of s as a domain (on a heap copy of exactly its length), or NULL with *err. */
static const char *domain(const struct spf_macro_env *env, const char *s, enum spf_macro_error want)
{
	static char out[DNS_HOST_SIZE];
	const char *err = NULL;
	char *copy = test_dup(s, strlen(s));
	enum spf_macro_error e = spf_macro_expand_domain(copy, strlen(s), env, out, &err);
	free(copy);
	if (e != want)
		fail_msg("\"%s\": got %s (%s), want %s", s, spf_macro_error_str(e), err ? err : "", spf_macro_error_str(want));
	if (e != SPF_MACRO_OK) {
		assert_non_null(err);
		assert_string_equal(out, "");
	}
	return out;
}

static const char *text(const struct spf_macro_env *env, const char *s)
{
	static char out[SPF_EXPLANATION_SIZE];
	const char *err = NULL;
	char *copy = test_dup(s, strlen(s));
	enum spf_macro_error e = spf_macro_expand_text(copy, strlen(s), env, out, sizeof(out), &err);
	free(copy);
	if (e != SPF_MACRO_OK)
		fail_msg("\"%s\": %s", s, err);
	return out;
}

static void test_rfc7208_examples(void **state)
{
	struct spf_macro_env env = env74("192.0.2.3");
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"%{s}", "strong-bad@email.example.com"},
		{"%{o}", "email.example.com"},
		{"%{d}", "email.example.com"},
		{"%{d4}", "email.example.com"},
		{"%{d3}", "email.example.com"},
		{"%{d2}", "example.com"},
		{"%{d1}", "com"},
		{"%{dr}", "com.example.email"},
		{"%{d2r}", "example.email"},
		{"%{l}", "strong-bad"},
		{"%{l-}", "strong.bad"},
		{"%{lr}", "strong-bad"},
		{"%{lr-}", "bad.strong"},
		{"%{l1r-}", "strong"},
		{"%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"},
		{"%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"},
		{"%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"},
		{"%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"},
		{"%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"},
		{"%{p}", "mx.example.org"},
		{"%{p2}", "example.org"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = domain(&env, cases[i].in, SPF_MACRO_OK);
		if (strcmp(got, cases[i].out) != 0)
			fail_msg("%s: got %s, want %s", cases[i].in, got, cases[i].out);
	}
	env = env74("2001:db8::cb01");
	assert_string_equal(domain(&env, "%{ir}.%{v}._spf.%{d2}", SPF_MACRO_OK),
			    "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com");
}

static void test_letters(void **state)
{
	struct spf_macro_env env = env74("192.0.2.3");
	assert_string_equal(text(&env, "%{c} %{r} %{t} %{h} %{v} %{i}"),
			    "192.0.2.3 receiver.example.net 1234567890 mx.example.org in-addr 192.0.2.3");
	env = env74("2001:DB8::CB01");
	assert_string_equal(text(&env, "%{c} %{v}"), "2001:db8::cb01 ip6");
	/* §7.3: %{p} is "unknown" when nothing validated; %{r} too when the receiver has no name */
	env.ptr_name = NULL;
	env.receiver = "";
	assert_string_equal(text(&env, "%{p} %{r}"), "unknown unknown");
	env.receiver = NULL;
	env.sender = NULL;
	assert_string_equal(text(&env, "%{r}[%{s}]"), "unknown[]");
	/* a negative time still expands to digits and a sign */
	env.now = -5;
	assert_string_equal(text(&env, "%{t}"), "-5");
}

static void test_escapes_and_transformers(void **state)
{
	struct spf_macro_env env = env74("192.0.2.3");
	/* §7.1: %% %_ %- */
	assert_string_equal(text(&env, "100%% %_x%-y"), "100%  x%20y");
	/* §7.3: upper case letters are URL-escaped (RFC 3986 unreserved kept) */
	env.local = "~jack&jill=up-a_b3.c";
	assert_string_equal(text(&env, "%{L}"), "~jack%26jill%3Dup-a_b3.c");
	env.local = "a b/c";
	assert_string_equal(text(&env, "%{L}|%{l}"), "a%20b%2Fc|a b/c");
	/* several delimiters; every part joined with "." */
	env.local = "foo-bar+zip+quux";
	assert_string_equal(text(&env, "%{l2r+-}"), "bar.foo");
	assert_string_equal(text(&env, "%{l+-}"), "foo.bar.zip.quux");
	assert_string_equal(text(&env, "%{l=,/_}"), "foo-bar+zip+quux");
	/* more parts asked than there are: all; huge counts do not overflow */
	assert_string_equal(text(&env, "%{d99999999999999999999}"), "email.example.com");
	assert_string_equal(text(&env, "%{d007}"), "email.example.com");
	assert_string_equal(text(&env, "%{dR}"), "com.example.email");
	/* empty parts stay */
	env.domain = "a..b.";
	assert_string_equal(text(&env, "%{dr}"), ".b..a");
	assert_string_equal(text(&env, "%{d1}"), "");
}

static void test_syntax(void **state)
{
	static const struct {
		const char *s;
		enum spf_macro_ctx ctx;
		enum spf_macro_error want;
	} cases[] = {
		{"%", SPF_MACRO_DOMAIN, SPF_MACRO_SYNTAX},
		{"a%", SPF_MACRO_DOMAIN, SPF_MACRO_SYNTAX},
		{"%x", SPF_MACRO_DOMAIN, SPF_MACRO_SYNTAX},
		{"%(ir)", SPF_MACRO_DOMAIN, SPF_MACRO_SYNTAX},
		{"%{", SPF_MACRO_DOMAIN, SPF_MACRO_SYNTAX},
		{"%{d", SPF_MACRO_DOMAIN, SPF_MACRO_SYNTAX},
		{"%{}", SPF_MACRO_DOMAIN, SPF_MACRO_SYNTAX},
		{"%{a}", SPF_MACRO_DOMAIN, SPF_MACRO_SYNTAX},
		{"%{d0}", SPF_MACRO_DOMAIN, SPF_MACRO_SYNTAX},
		{"%{d00}", SPF_MACRO_DOMAIN, SPF_MACRO_SYNTAX},
		{"%{dx}", SPF_MACRO_DOMAIN, SPF_MACRO_SYNTAX},
		{"%{d2rr}", SPF_MACRO_DOMAIN, SPF_MACRO_SYNTAX},
		{"%{dr2}", SPF_MACRO_DOMAIN, SPF_MACRO_SYNTAX},
		{"%{d.x}", SPF_MACRO_DOMAIN, SPF_MACRO_SYNTAX},
		{"a b", SPF_MACRO_DOMAIN, SPF_MACRO_SYNTAX},
		{"a b", SPF_MACRO_MODIFIER, SPF_MACRO_SYNTAX},
		{"a\x01", SPF_MACRO_EXPLAIN, SPF_MACRO_SYNTAX},
		{"caf\xc3\xa9", SPF_MACRO_EXPLAIN, SPF_MACRO_SYNTAX},
		{"\xef\xbb\xbf" "Explanation", SPF_MACRO_EXPLAIN, SPF_MACRO_SYNTAX},
		{"tab\there", SPF_MACRO_EXPLAIN, SPF_MACRO_SYNTAX},
		{"%{c}", SPF_MACRO_DOMAIN, SPF_MACRO_LETTER},
		{"%{R}", SPF_MACRO_DOMAIN, SPF_MACRO_LETTER},
		{"x.%{t}", SPF_MACRO_DOMAIN, SPF_MACRO_LETTER},
		{"%{c}%{r}%{t}", SPF_MACRO_MODIFIER, SPF_MACRO_OK},
		{"%{c} %{R} %{t10r.-+,/_=}", SPF_MACRO_EXPLAIN, SPF_MACRO_OK},
		{"", SPF_MACRO_DOMAIN, SPF_MACRO_OK},
		{"%%%_%-", SPF_MACRO_DOMAIN, SPF_MACRO_OK},
		{"!\"#$&'()*+,-./:;<=>?@[]^`{|}~", SPF_MACRO_DOMAIN, SPF_MACRO_OK},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[128];
		const char *err = NULL;
		size_t len = strlen(cases[i].s);
		char *copy = test_dup(cases[i].s, len);
		enum spf_macro_error e = spf_macro_check(copy, len, cases[i].ctx, NULL, &err);
		free(copy);
		if (e != cases[i].want)
			fail_msg("\"%s\" (%s): got %s (%s), want %s", test_escape(cases[i].s, len, buf, sizeof(buf)),
				 spf_macro_ctx_str(cases[i].ctx), spf_macro_error_str(e), err ? err : "",
				 spf_macro_error_str(cases[i].want));
		if (e != SPF_MACRO_OK)
			assert_non_null(err);
	}
	/* a NUL octet is an octet like the others, and not allowed */
	const char *err;
	assert_int_equal(spf_macro_check("a\0b", 3, SPF_MACRO_DOMAIN, NULL, &err), SPF_MACRO_SYNTAX);
	assert_int_equal(spf_macro_check("%{\0}", 4, SPF_MACRO_DOMAIN, NULL, &err), SPF_MACRO_SYNTAX);
}

static void test_info(void **state)
{
	struct spf_macro_info info;
	const char *err;

	assert_int_equal(spf_macro_check("%{p}.example.com", 16, SPF_MACRO_DOMAIN, &info, &err), SPF_MACRO_OK);
	assert_true(info.uses_p);
	assert_int_equal(info.tail, 4);
	assert_int_equal(spf_macro_check("x.%{d}", 6, SPF_MACRO_DOMAIN, &info, &err), SPF_MACRO_OK);
	assert_false(info.uses_p);
	assert_int_equal(info.tail, 6);
	assert_int_equal(spf_macro_check("a%%b", 4, SPF_MACRO_DOMAIN, &info, &err), SPF_MACRO_OK);
	assert_int_equal(info.tail, 3);
	assert_int_equal(spf_macro_check("%{P}", 4, SPF_MACRO_DOMAIN, &info, &err), SPF_MACRO_OK);
	assert_true(info.uses_p);
	assert_int_equal(spf_macro_check("plain", 5, SPF_MACRO_DOMAIN, &info, &err), SPF_MACRO_OK);
	assert_int_equal(info.tail, 0);
}

static void test_domain_names(void **state)
{
	struct spf_macro_env env = env74("192.0.2.3");
	char long_label[80];

	/* §7.3 and the suite: a trailing dot is dropped from names, one of them */
	assert_string_equal(domain(&env, "%{d}.", SPF_MACRO_OK), "email.example.com");
	assert_string_equal(domain(&env, "x.example.com..", SPF_MACRO_BAD_NAME), "");
	/* spaces and '%' from %_ %- and %% may be asked (the suite's macro-mania-in-domain) */
	assert_string_equal(domain(&env, "macro%%percent%_%_space%-url-space.example.com", SPF_MACRO_OK),
			    "macro%percent  space%20url-space.example.com");
	/* names that cannot be asked */
	domain(&env, "a..b.example.com", SPF_MACRO_BAD_NAME);
	domain(&env, ".example.com", SPF_MACRO_BAD_NAME);
	domain(&env, ".", SPF_MACRO_BAD_NAME);
	domain(&env, "", SPF_MACRO_BAD_NAME);
	memset(long_label, 'a', 64);
	strcpy(long_label + 64, ".example.com");
	domain(&env, long_label, SPF_MACRO_BAD_NAME);
	long_label[1] = '.';
	assert_string_equal(domain(&env, long_label, SPF_MACRO_OK), long_label);
	env.local = "back\\slash";
	domain(&env, "%{l}.example.com", SPF_MACRO_BAD_NAME);
	env.local = "caf\xc3\xa9";
	domain(&env, "%{l}.example.com", SPF_MACRO_BAD_NAME);
	env.local = "tab\tbed";
	domain(&env, "%{l}.example.com", SPF_MACRO_BAD_NAME);
	/* escaped, the same value is a fine label */
	assert_string_equal(domain(&env, "%{L}.example.com", SPF_MACRO_OK), "tab%09bed.example.com");
	/* %{h} of a HELO that is no name at all: %-escaped, then too long (the suite's
	 * invalid-domain-long-via-macro) */
	env.helo = "%%%%%%%%%%%%%%%%%%%%%%";
	domain(&env, "%{H}.bar", SPF_MACRO_BAD_NAME);
	env.helo = "[192.0.2.3]";
	assert_string_equal(domain(&env, "%{h}", SPF_MACRO_OK), "[192.0.2.3]");
}

static void test_domain_truncation(void **state)
{
	struct spf_macro_env env = env74("192.0.2.3");
	char want[DNS_HOST_SIZE];

	/* the suite's domain-name-truncation: 258 octets lose "foobar." */
	env.sender_domain = "somewhat.long.exp.example.com";
	const char *got = domain(&env, "foobar.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.example.com", SPF_MACRO_OK);
	assert_int_equal(strlen(got), 251);
	assert_true(strncmp(got, "somewhat.long.exp.example.com.somewhat.", 39) == 0);

	/* far past the expansion window: only the right end survives, cut at a label boundary */
	char spec[4096] = "";
	for (int i = 0; i < 200; i++)
		strcat(spec, "%{o}.");
	strcat(spec, "end.example");
	got = domain(&env, spec, SPF_MACRO_OK);
	assert_true(strlen(got) <= 253);
	assert_true(strlen(got) > 253 - 30);
	assert_true(strncmp(got, "somewhat.", 9) == 0);
	assert_true(strcmp(got + strlen(got) - 12, ".end.example") == 0);

	/* a last label that alone is longer than 253 octets cannot be shortened */
	char big[600];
	memset(big, 'x', 300);
	big[300] = '\0';
	env.local = big;
	domain(&env, "a.%{l}", SPF_MACRO_BAD_NAME);
	/* exactly 253 octets stay as they are */
	memset(want, 'a', 63);
	memcpy(want + 63, ".", 1);
	memset(want + 64, 'b', 63);
	memcpy(want + 127, ".", 1);
	memset(want + 128, 'c', 63);
	memcpy(want + 191, ".", 1);
	memset(want + 192, 'd', 61);
	want[253] = '\0';
	assert_string_equal(domain(&env, want, SPF_MACRO_OK), want);
	/* 254 octets lose their first label */
	char over[DNS_HOST_SIZE + 2];
	snprintf(over, sizeof(over), "e%s", want);
	over[1] = 'a';
	assert_string_equal(domain(&env, over, SPF_MACRO_OK), want + 64);
}

static void test_text(void **state)
{
	struct spf_macro_env env = env74("192.0.2.3");
	char out[16];
	const char *err;

	/* cut at the end, NUL-terminated */
	assert_int_equal(spf_macro_expand_text("%{s} and more", 13, &env, out, sizeof(out), &err), SPF_MACRO_OK);
	assert_string_equal(out, "strong-bad@emai");
	assert_int_equal(spf_macro_expand_text("x", 1, &env, out, 1, &err), SPF_MACRO_OK);
	assert_string_equal(out, "");
	/* letters bring no control octets or non-ASCII into an SMTP reply */
	env.local = "a\r\nb\xc3\xa9";
	assert_string_equal(text(&env, "[%{l}]"), "[a??b??]");
	/* a trailing dot stays in explanations (the suite's trailing-dot-exp) */
	assert_string_equal(text(&env, "This is a test."), "This is a test.");
	/* a syntax error leaves out empty */
	strcpy(out, "x");
	assert_int_equal(spf_macro_expand_text("100%", 4, &env, out, sizeof(out), &err), SPF_MACRO_SYNTAX);
	assert_string_equal(out, "");
}

static void test_name_ok(void **state)
{
	assert_true(spf_macro_name_ok("example.com"));
	assert_true(spf_macro_name_ok("foo:bar/baz.example.com"));
	assert_true(spf_macro_name_ok("com"));
	assert_false(spf_macro_name_ok(""));
	assert_false(spf_macro_name_ok("example.com."));
	assert_false(spf_macro_name_ok("a\\.b"));
	assert_false(spf_macro_name_ok("a.\x7f"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc7208_examples),
		cmocka_unit_test(test_letters),
		cmocka_unit_test(test_escapes_and_transformers),
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_info),
		cmocka_unit_test(test_domain_names),
		cmocka_unit_test(test_domain_truncation),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_name_ok),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
