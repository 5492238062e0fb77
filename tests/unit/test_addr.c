/* test_addr.c — table-driven tests of src/util/addr.c: paths, mailboxes, domains, address literals,
 * the RFC 5321 §4.5.3.1 limits and RFC 6531 UTF-8, with hostile and length-delimited input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/addr.h"

/* a string literal and its length, so that embedded NULs count */
#define S(lit) lit, sizeof(lit) - 1

#define U ADDR_ALLOW_UTF8
#define NUL ADDR_ALLOW_NULL
#define PM ADDR_ALLOW_POSTMASTER

/* A valid domain of n octets: labels of 62 'a's separated by dots, never ending in a dot. */
static char *test_domain(size_t n)
{
	char *d = malloc(n + 1);
	assert_non_null(d);
	memset(d, 'a', n);
	for (size_t i = 62; i + 1 < n; i += 63)
		d[i] = '.';
	d[n] = '\0';
	return d;
}

struct path_case {
	const char *in;
	size_t len;
	unsigned flags;
	enum addr_error want;
	const char *text;  /* on success */
	size_t local_len;  /* on success */
	size_t consumed;   /* on success; 0 means the whole input */
	bool is_null;
	bool is_literal;
	bool is_utf8;
};

#define BAD(lit, fl, w) { .in = lit, .len = sizeof(lit) - 1, .flags = fl, .want = w }
#define GOOD(lit, fl, txt, ll) \
	{ .in = lit, .len = sizeof(lit) - 1, .flags = fl, .want = ADDR_OK, .text = txt, .local_len = ll }
#define GOODX(lit, fl, txt, ll, ...) \
	{ .in = lit, .len = sizeof(lit) - 1, .flags = fl, .want = ADDR_OK, .text = txt, .local_len = ll, __VA_ARGS__ }

static const struct path_case path_cases[] = {
	/* accepted */
	GOOD("<a@b>", 0, "a@b", 1),
	GOOD("<user@example.com>", 0, "user@example.com", 4),
	GOOD("<first.last+tag@ex-ample.co.uk>", 0, "first.last+tag@ex-ample.co.uk", 14),
	GOOD("<!#$%&'*+-/=?^_`{|}~@x>", 0, "!#$%&'*+-/=?^_`{|}~@x", 19),
	GOOD("<a@localhost>", 0, "a@localhost", 1),
	GOOD("<a@1.2.3.4>", 0, "a@1.2.3.4", 1),
	GOOD("<a@x-1.y--z.c0m>", 0, "a@x-1.y--z.c0m", 1),
	GOOD("<UPPER@EXAMPLE.COM>", 0, "UPPER@EXAMPLE.COM", 5),
	GOODX("<>", NUL, "", 0, .is_null = true),
	GOODX("<>", NUL | U | PM, "", 0, .is_null = true),
	/* source routes are dropped (RFC 5321 §4.1.2, Appendix C) */
	GOOD("<@x.org:a@a>", 0, "a@a", 1),
	GOOD("<@a.example,@b.example:user@c.example>", 0, "user@c.example", 4),
	/* quoted local parts */
	GOOD("<\"john doe\"@example.com>", 0, "\"john doe\"@example.com", 10),
	GOOD("<\"a\\\"b\"@x>", 0, "\"a\\\"b\"@x", 6),
	GOOD("<\"a\\\\b\"@x>", 0, "\"a\\\\b\"@x", 6),
	GOOD("<\"a@b\"@x>", 0, "\"a@b\"@x", 5),
	GOOD("<\"a>b\"@x>", 0, "\"a>b\"@x", 5),
	GOOD("<\"\"@x>", 0, "\"\"@x", 2),
	GOOD("<\" \"@x>", 0, "\" \"@x", 3),
	GOOD("<\"\\ \"@x>", 0, "\"\\ \"@x", 4),
	/* address literals (RFC 5321 §4.1.3) */
	GOODX("<a@[192.0.2.1]>", 0, "a@[192.0.2.1]", 1, .is_literal = true),
	GOODX("<a@[0.0.0.0]>", 0, "a@[0.0.0.0]", 1, .is_literal = true),
	GOODX("<a@[255.255.255.255]>", 0, "a@[255.255.255.255]", 1, .is_literal = true),
	GOODX("<a@[001.002.003.004]>", 0, "a@[001.002.003.004]", 1, .is_literal = true),
	GOODX("<a@[IPv6:2001:db8::1]>", 0, "a@[IPv6:2001:db8::1]", 1, .is_literal = true),
	GOODX("<a@[ipv6:::1]>", 0, "a@[ipv6:::1]", 1, .is_literal = true),
	GOODX("<a@[IPv6:::ffff:192.0.2.1]>", 0, "a@[IPv6:::ffff:192.0.2.1]", 1, .is_literal = true),
	GOODX("<a@[IPv6:1:2:3:4:5:6:7:8]>", 0, "a@[IPv6:1:2:3:4:5:6:7:8]", 1, .is_literal = true),
	GOODX("<a@[x-tag:any@thing]>", 0, "a@[x-tag:any@thing]", 1, .is_literal = true),
	/* the grammar makes this a General-address-literal with the tag "2001", not an IPv6 literal */
	GOODX("<a@[2001:db8::1]>", 0, "a@[2001:db8::1]", 1, .is_literal = true),
	/* <Postmaster> (RFC 5321 §4.1.1.3) */
	GOOD("<Postmaster>", PM, "Postmaster", 10),
	GOOD("<pOsTmAsTeR>", PM | U, "pOsTmAsTeR", 10),
	GOOD("<postmaster@x>", PM, "postmaster@x", 10),
	GOOD("<Postmaster.x@y>", PM, "Postmaster.x@y", 12),
	/* what follows the path is the caller's */
	GOODX("<a@b> SIZE=10", 0, "a@b", 1, .consumed = 5),
	GOODX("<a@b>>", 0, "a@b", 1, .consumed = 5),
	GOODX("<a@b>\0x", 0, "a@b", 1, .consumed = 5),
	GOODX("<>junk", NUL, "", 0, .consumed = 2, .is_null = true),
	/* RFC 6531 §3.3 UTF-8 */
	GOODX("<用户@例子.广告>", U, "用户@例子.广告", 6, .is_utf8 = true),
	GOODX("<ü@b>", U, "ü@b", 2, .is_utf8 = true),
	GOODX("<\"ü x\"@b>", U, "\"ü x\"@b", 6, .is_utf8 = true),
	GOODX("<a@bücher.de>", U, "a@bücher.de", 1, .is_utf8 = true),
	GOODX("<a@\xc3\xbc>", U, "a@\xc3\xbc", 1, .is_utf8 = true),
	GOODX("<\xf0\x9f\x98\x80@x>", U, "\xf0\x9f\x98\x80@x", 4, .is_utf8 = true),
	GOODX("<\xf4\x8f\xbf\xbf@x>", U, "\xf4\x8f\xbf\xbf@x", 4, .is_utf8 = true),
	GOODX("<\xed\x9f\xbf@x>", U, "\xed\x9f\xbf@x", 3, .is_utf8 = true),
	GOODX("<\xee\x80\x80@x>", U, "\xee\x80\x80@x", 3, .is_utf8 = true),
	GOODX("<\xc2\x80@x>", U, "\xc2\x80@x", 2, .is_utf8 = true),

	/* rejected: structure */
	BAD("", NUL | PM | U, ADDR_ERR_SYNTAX),
	BAD("<", NUL | PM | U, ADDR_ERR_SYNTAX),
	BAD(">", NUL, ADDR_ERR_SYNTAX),
	BAD("<>", 0, ADDR_ERR_SYNTAX),
	BAD("<>", PM | U, ADDR_ERR_SYNTAX),
	BAD("<@>", 0, ADDR_ERR_SYNTAX),
	BAD("<@>", NUL | PM | U, ADDR_ERR_SYNTAX),
	BAD("<a>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@>", 0, ADDR_ERR_SYNTAX),
	BAD("<@a>", 0, ADDR_ERR_SYNTAX),
	BAD("< @a>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@ >", 0, ADDR_ERR_SYNTAX),
	BAD("< a@b>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@b >", 0, ADDR_ERR_SYNTAX),
	BAD("<a @b>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@ b>", 0, ADDR_ERR_SYNTAX),
	BAD(" <a@b>", 0, ADDR_ERR_SYNTAX),
	BAD("< >", NUL, ADDR_ERR_SYNTAX),
	BAD("a@b", 0, ADDR_ERR_SYNTAX),
	BAD("<a@b", 0, ADDR_ERR_SYNTAX),
	BAD("<a@b@c>", 0, ADDR_ERR_SYNTAX),
	BAD("<<a@b>>", 0, ADDR_ERR_SYNTAX),
	BAD("<a(comment)@b>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@b(comment)>", 0, ADDR_ERR_SYNTAX),
	BAD("<a,b@c>", 0, ADDR_ERR_SYNTAX),
	BAD("<a;b@c>", 0, ADDR_ERR_SYNTAX),
	BAD("<a\\b@c>", 0, ADDR_ERR_SYNTAX),
	/* rejected: source routes are "@domain" lists only */
	BAD("<whatever:a@a>", 0, ADDR_ERR_SYNTAX),
	BAD("<@x.org:>", 0, ADDR_ERR_SYNTAX),
	BAD("<@x.org>", 0, ADDR_ERR_SYNTAX),
	BAD("<@x.org,a@b>", 0, ADDR_ERR_SYNTAX),
	BAD("<@x.org,:a@b>", 0, ADDR_ERR_SYNTAX),
	BAD("<@x.org:@y.org:a@b>", 0, ADDR_ERR_SYNTAX),
	BAD("<@[1.2.3.4]:a@b>", 0, ADDR_ERR_SYNTAX),
	BAD("<@:a@b>", 0, ADDR_ERR_SYNTAX),
	BAD("<@x.org: a@b>", 0, ADDR_ERR_SYNTAX),
	BAD("<@x.org:Postmaster>", PM, ADDR_ERR_SYNTAX),
	/* rejected: domains */
	BAD("<a@b.>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@.b>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@b..c>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@-b>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@b->", 0, ADDR_ERR_SYNTAX),
	BAD("<a@b-.c>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@b.-c>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@b_c>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@b/c>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@*.c>", 0, ADDR_ERR_SYNTAX),
	/* rejected: local parts */
	BAD("<.a@b>", 0, ADDR_ERR_SYNTAX),
	BAD("<a.@b>", 0, ADDR_ERR_SYNTAX),
	BAD("<a..b@c>", 0, ADDR_ERR_SYNTAX),
	BAD("<\"a@b>", 0, ADDR_ERR_SYNTAX),
	BAD("<\"a\"b@c>", 0, ADDR_ERR_SYNTAX),
	BAD("<a\"b\"@c>", 0, ADDR_ERR_SYNTAX),
	BAD("<\"a\".b@c>", 0, ADDR_ERR_SYNTAX),
	BAD("<\"a\\\x01\"@b>", 0, ADDR_ERR_SYNTAX),
	BAD("<\"a\tb\"@c>", 0, ADDR_ERR_SYNTAX),
	BAD("<\"a\r\nb\"@c>", 0, ADDR_ERR_SYNTAX),
	BAD("<\"a\x7f\"@c>", 0, ADDR_ERR_SYNTAX),
	BAD("<\"a\\", 0, ADDR_ERR_SYNTAX),
	BAD("<\"a\\\"@b>", 0, ADDR_ERR_SYNTAX),
	/* rejected: address literals */
	BAD("<a@[1.2.3]>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@[1.2.3.256]>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@[1.2.3.4.5]>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@[1.2.3.1234]>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@[1.2.3.]>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@[1..2.3]>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@[a.b.c.d]>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@[]>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@[1.2.3.4>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@[1.2.3.4", 0, ADDR_ERR_SYNTAX),
	BAD("<a@[ 1.2.3.4]>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@[1.2.3.4]x>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@[1.2.3.4].com>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@[[1.2.3.4]]>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@[IPv6:2001:db8::g]>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@[IPv6:1:2:3:4:5:6:7:8:9]>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@[IPv6:1::2::3]>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@[IPv6:]>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@[IPv6:192.0.2.1]>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@[IPv6:::1%eth0]>", 0, ADDR_ERR_SYNTAX),
	
	BAD("<a@[tag-:x]>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@[tag:]>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@[:x]>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@[t_g:x]>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@[tag:a\\b]>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@[IPv6:::1:]>", 0, ADDR_ERR_SYNTAX),
	/* rejected: Postmaster only as the whole path and only with the flag */
	BAD("<Postmaster>", 0, ADDR_ERR_SYNTAX),
	BAD("<Postmaster>", NUL | U, ADDR_ERR_SYNTAX),
	BAD("<Postmasterx>", PM, ADDR_ERR_SYNTAX),
	BAD("<Postmaster", PM, ADDR_ERR_SYNTAX),
	BAD("<Postmaste>", PM, ADDR_ERR_SYNTAX),
	BAD("< Postmaster>", PM, ADDR_ERR_SYNTAX),
	/* rejected: embedded NULs in the length-delimited input */
	BAD("<a\0@b>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@b\0>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@b\0.c>", 0, ADDR_ERR_SYNTAX),
	BAD("<\"a\0\"@b>", 0, ADDR_ERR_SYNTAX),
	BAD("<\"a\\\0\"@b>", 0, ADDR_ERR_SYNTAX),
	BAD("<\0>", NUL, ADDR_ERR_SYNTAX),
	BAD("\0<a@b>", 0, ADDR_ERR_SYNTAX),
	BAD("<a@[1.2\0.3.4]>", 0, ADDR_ERR_SYNTAX),
	BAD("<Postmaster\0>", PM, ADDR_ERR_SYNTAX),
	/* rejected: 8-bit without ADDR_ALLOW_UTF8 */
	BAD("<ü@b>", NUL | PM, ADDR_ERR_UTF8),
	BAD("<a@ü.b>", 0, ADDR_ERR_UTF8),
	BAD("<\"ü\"@b>", 0, ADDR_ERR_UTF8),
	BAD("<\"\\\xc3\xbc\"@b>", 0, ADDR_ERR_UTF8),
	BAD("<a@[1.2.3.\xc3\xbc]>", 0, ADDR_ERR_UTF8),
	BAD("<\xff@b>", 0, ADDR_ERR_UTF8),
	BAD("<@\xc3\xbc.x:a@b>", 0, ADDR_ERR_UTF8),
	/* rejected: invalid UTF-8 even with ADDR_ALLOW_UTF8 (RFC 3629 §4) */
	BAD("<\xc0\xaf@x>", U, ADDR_ERR_UTF8),
	BAD("<\xc1\xbf@x>", U, ADDR_ERR_UTF8),
	BAD("<\xe0\x80\xaf@x>", U, ADDR_ERR_UTF8),
	BAD("<\xe0\x9f\xbf@x>", U, ADDR_ERR_UTF8),
	BAD("<\xf0\x80\x80\xaf@x>", U, ADDR_ERR_UTF8),
	BAD("<\xf0\x8f\xbf\xbf@x>", U, ADDR_ERR_UTF8),
	BAD("<\xed\xa0\x80@x>", U, ADDR_ERR_UTF8),
	BAD("<\xed\xbf\xbf@x>", U, ADDR_ERR_UTF8),
	BAD("<\xf4\x90\x80\x80@x>", U, ADDR_ERR_UTF8),
	BAD("<\xf5\x80\x80\x80@x>", U, ADDR_ERR_UTF8),
	BAD("<\xf8\x88\x80\x80\x80@x>", U, ADDR_ERR_UTF8),
	BAD("<\xfe@x>", U, ADDR_ERR_UTF8),
	BAD("<\xff@x>", U, ADDR_ERR_UTF8),
	BAD("<\x80@x>", U, ADDR_ERR_UTF8),
	BAD("<a\xbf@x>", U, ADDR_ERR_UTF8),
	BAD("<\xc3@x>", U, ADDR_ERR_UTF8),
	BAD("<\xe4\xb8@x>", U, ADDR_ERR_UTF8),
	BAD("<a@\xc3>", U, ADDR_ERR_UTF8),
	BAD("<a@b.\xf0\x9f\x98>", U, ADDR_ERR_UTF8),
	BAD("<\xc3", U, ADDR_ERR_UTF8),
	BAD("<\"\xc3\"@x>", U, ADDR_ERR_UTF8),
	BAD("<\"\xed\xa0\x80\"@x>", U, ADDR_ERR_UTF8),
	/* UTF-8 is allowed in atext, qtext and sub-domains only */
	BAD("<a@[1.2.3.\xc3\xbc]>", U, ADDR_ERR_SYNTAX),
	BAD("<\"\\\xc3\xbc\"@b>", U, ADDR_ERR_SYNTAX),
	BAD("<@\xc3\xbc.x:a@b>", U, ADDR_ERR_UTF8),
};

static void check_path_case(const struct path_case *c, size_t i)
{
	char esc[1024];
	char *in = test_dup(c->in, c->len);
	struct addr a;
	size_t consumed = 12345;
	const char *err = NULL;

	enum addr_error e = addr_parse_path(in, c->len, c->flags, &a, &consumed, &err);
	if (e != c->want)
		fail_msg("path case %zu \"%s\" flags %u: got %d (%s), want %d", i,
			 test_escape(c->in, c->len, esc, sizeof(esc)), c->flags, e, err ? err : "-", c->want);
	if (e != ADDR_OK) {
		assert_non_null(err);
		assert_true(strlen(err) > 0);
		assert_int_equal(consumed, 0);
		assert_string_equal(a.text, "");
		assert_false(a.is_null);
		free(in);
		return;
	}
	size_t text_len = strlen(a.text);
	if (strcmp(a.text, c->text) != 0)
		fail_msg("path case %zu \"%s\": text \"%s\", want \"%s\"", i, test_escape(c->in, c->len, esc, sizeof(esc)),
			 a.text, c->text);
	assert_int_equal(consumed, c->consumed ? c->consumed : c->len);
	assert_int_equal(a.local_len, c->local_len);
	assert_int_equal(a.domain_off, c->local_len < text_len && a.text[c->local_len] == '@' ? c->local_len + 1 : text_len);
	assert_int_equal(a.is_null, c->is_null);
	assert_int_equal(a.is_literal, c->is_literal);
	assert_int_equal(a.is_utf8, c->is_utf8);

	/* the same text is a valid bare mailbox, unless it is the null path or a bare Postmaster */
	if (!a.is_null && a.domain_off < text_len) {
		struct addr m;
		assert_int_equal(addr_parse_mailbox(a.text, text_len, c->flags, &m, NULL), ADDR_OK);
		assert_string_equal(m.text, a.text);
		assert_int_equal(m.local_len, a.local_len);
		assert_int_equal(m.domain_off, a.domain_off);
		assert_int_equal(m.is_literal, a.is_literal);
		assert_int_equal(m.is_utf8, a.is_utf8);
		assert_int_equal(addr_parse_domain(addr_domain(&a), strlen(addr_domain(&a)), c->flags, NULL), ADDR_OK);
	}
	free(in);
}

static void test_path_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(path_cases) / sizeof(path_cases[0]); i++)
		check_path_case(&path_cases[i], i);
}

/* The outputs are optional. */
static void test_path_null_outputs(void **state)
{
	struct addr a;
	(void)state;
	assert_int_equal(addr_parse_path(S("<a@b>"), 0, &a, NULL, NULL), ADDR_OK);
	assert_int_equal(addr_parse_path(S("<a>"), 0, &a, NULL, NULL), ADDR_ERR_SYNTAX);
	assert_int_equal(addr_parse_mailbox(S("a"), 0, &a, NULL), ADDR_ERR_SYNTAX);
	assert_int_equal(addr_parse_domain(S("-"), 0, NULL), ADDR_ERR_SYNTAX);
}

/* Builds "<" local "@" domain ">" with a local part of local_n 'l's and a domain of domain_n octets. */
static char *test_path(size_t local_n, size_t domain_n, size_t *len_r)
{
	char *d = test_domain(domain_n);
	char *p = malloc(local_n + domain_n + 4);
	assert_non_null(p);
	p[0] = '<';
	memset(p + 1, 'l', local_n);
	p[1 + local_n] = '@';
	memcpy(p + 2 + local_n, d, domain_n);
	p[2 + local_n + domain_n] = '>';
	p[3 + local_n + domain_n] = '\0';
	*len_r = local_n + domain_n + 3;
	free(d);
	return p;
}

/* RFC 5321 §4.5.3.1: local part 64, domain 255, path 256 octets. */
static void test_path_limits(void **state)
{
	static const struct {
		size_t local_n, domain_n;
		enum addr_error want;
	} cases[] = {
		{ 64, 1, ADDR_OK },
		{ 65, 1, ADDR_ERR_TOO_LONG },
		{ 1000, 1, ADDR_ERR_TOO_LONG },
		{ 64, 189, ADDR_OK },           /* path of exactly 256 octets, text of 254 */
		{ 64, 190, ADDR_ERR_TOO_LONG }, /* 257 */
		{ 1, 252, ADDR_OK },            /* 256 */
		{ 1, 253, ADDR_ERR_TOO_LONG },
		{ 1, 255, ADDR_ERR_TOO_LONG }, /* a valid domain, but the path is too long */
		{ 1, 256, ADDR_ERR_TOO_LONG },
		{ 1, 5000, ADDR_ERR_TOO_LONG },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len;
		char *p = test_path(cases[i].local_n, cases[i].domain_n, &len);
		struct addr a;
		size_t consumed;
		const char *err = NULL;
		enum addr_error e = addr_parse_path(p, len, 0, &a, &consumed, &err);
		if (e != cases[i].want)
			fail_msg("limit case %zu (local %zu, domain %zu): got %d (%s)", i, cases[i].local_n,
				 cases[i].domain_n, e, err ? err : "-");
		if (e == ADDR_OK) {
			assert_int_equal(consumed, len);
			assert_int_equal(strlen(a.text), len - 2);
			assert_int_equal(a.local_len, cases[i].local_n);
			assert_true(strlen(a.text) <= ADDR_TEXT_MAX);
		}
		free(p);
	}
}

/* Quoted local parts count with their quotes; a source route counts towards the 256-octet path. */
static void test_path_limits_quoted_and_route(void **state)
{
	char buf[600];
	struct addr a;
	size_t consumed;
	(void)state;

	/* "<" DQUOTE 62 x DQUOTE "@b>": a 64-octet local part */
	buf[0] = '<';
	buf[1] = '"';
	memset(buf + 2, 'x', 62);
	memcpy(buf + 64, "\"@b>", 4);
	assert_int_equal(addr_parse_path(buf, 68, 0, &a, &consumed, NULL), ADDR_OK);
	assert_int_equal(a.local_len, 64);
	/* 63 x: 65 octets */
	memset(buf + 2, 'x', 63);
	memcpy(buf + 65, "\"@b>", 4);
	assert_int_equal(addr_parse_path(buf, 69, 0, &a, &consumed, NULL), ADDR_ERR_TOO_LONG);

	/* "<@" route ":a@b>" with a route long enough to push the path to 257 octets */
	char *route = test_domain(250);
	int n = snprintf(buf, sizeof(buf), "<@%s:a@b>", route);
	assert_int_equal(n, 257);
	assert_int_equal(addr_parse_path(buf, (size_t)n, 0, &a, &consumed, NULL), ADDR_ERR_TOO_LONG);
	route[249] = '\0';
	n = snprintf(buf, sizeof(buf), "<@%s:a@b>", route);
	assert_int_equal(addr_parse_path(buf, (size_t)n, 0, &a, &consumed, NULL), ADDR_OK);
	assert_string_equal(a.text, "a@b");
	free(route);

	/* a 64-octet label is too long (RFC 1035 §2.3.4), 63 is fine */
	memset(buf, 0, sizeof(buf));
	buf[0] = '<';
	buf[1] = 'a';
	buf[2] = '@';
	memset(buf + 3, 'd', 63);
	buf[66] = '>';
	assert_int_equal(addr_parse_path(buf, 67, 0, &a, &consumed, NULL), ADDR_OK);
	memset(buf + 3, 'd', 64);
	buf[67] = '>';
	assert_int_equal(addr_parse_path(buf, 68, 0, &a, &consumed, NULL), ADDR_ERR_TOO_LONG);
}

/* Very long hostile input terminates and is rejected without reading past the end. */
static void test_path_huge(void **state)
{
	size_t n = 100000;
	char *p = malloc(n);
	struct addr a;
	size_t consumed;
	(void)state;
	assert_non_null(p);

	memset(p, 'a', n);
	p[0] = '<';
	assert_int_equal(addr_parse_path(p, n, U, &a, &consumed, NULL), ADDR_ERR_SYNTAX);
	p[1] = '"';
	assert_int_equal(addr_parse_path(p, n, U, &a, &consumed, NULL), ADDR_ERR_SYNTAX);
	memset(p, '.', n);
	p[0] = '<';
	p[1] = 'a';
	p[2] = '@';
	p[3] = 'b';
	assert_int_equal(addr_parse_path(p, n, U, &a, &consumed, NULL), ADDR_ERR_SYNTAX);
	memset(p, '@', n);
	p[0] = '<';
	assert_int_equal(addr_parse_path(p, n, U, &a, &consumed, NULL), ADDR_ERR_SYNTAX);
	for (size_t i = 1; i < n; i++)
		p[i] = i % 2 ? '@' : 'a';
	assert_int_equal(addr_parse_path(p, n, U, &a, &consumed, NULL), ADDR_ERR_SYNTAX);
	for (size_t i = 0; i < n; i += 2) {
		p[i] = '\xc3';
		p[i + 1] = '\xbc';
	}
	p[0] = '<';
	p[1] = 'a';
	assert_int_equal(addr_parse_path(p, n, U, &a, &consumed, NULL), ADDR_ERR_SYNTAX);
	assert_int_equal(addr_parse_path(p, n, 0, &a, &consumed, NULL), ADDR_ERR_UTF8);
	free(p);
}

struct mailbox_case {
	const char *in;
	size_t len;
	unsigned flags;
	enum addr_error want;
	size_t local_len;
};

#define MAILBOX(lit, fl, w, ll) { .in = lit, .len = sizeof(lit) - 1, .flags = fl, .want = w, .local_len = ll }

static const struct mailbox_case mailbox_cases[] = {
	MAILBOX("a@b", 0, ADDR_OK, 1),
	MAILBOX("user.name+tag@example.com", 0, ADDR_OK, 13),
	MAILBOX("\"x y\"@z", 0, ADDR_OK, 5),
	MAILBOX("a@[IPv6:::1]", 0, ADDR_OK, 1),
	MAILBOX("a@[192.0.2.1]", 0, ADDR_OK, 1),
	MAILBOX("ü@x", U, ADDR_OK, 2),
	MAILBOX("ü@x", NUL | PM, ADDR_ERR_UTF8, 0),
	MAILBOX("", NUL | PM | U, ADDR_ERR_SYNTAX, 0),
	MAILBOX("<a@b>", 0, ADDR_ERR_SYNTAX, 0),
	MAILBOX("a@b ", 0, ADDR_ERR_SYNTAX, 0),
	MAILBOX(" a@b", 0, ADDR_ERR_SYNTAX, 0),
	MAILBOX("a@b>", 0, ADDR_ERR_SYNTAX, 0),
	MAILBOX("a@b\0", 0, ADDR_ERR_SYNTAX, 0),
	MAILBOX("a@b\0c", 0, ADDR_ERR_SYNTAX, 0),
	MAILBOX("a@b\xc3\xbc", 0, ADDR_ERR_UTF8, 0),
	MAILBOX("@b", 0, ADDR_ERR_SYNTAX, 0),
	MAILBOX("a@", 0, ADDR_ERR_SYNTAX, 0),
	MAILBOX("a", 0, ADDR_ERR_SYNTAX, 0),
	MAILBOX("Postmaster", PM, ADDR_ERR_SYNTAX, 0),
	MAILBOX("a@b,c@d", 0, ADDR_ERR_SYNTAX, 0),
	MAILBOX("@x:a@b", 0, ADDR_ERR_SYNTAX, 0),
	MAILBOX("a@[1.2.3.4]]", 0, ADDR_ERR_SYNTAX, 0),
};

static void test_mailbox_table(void **state)
{
	char esc[256];
	(void)state;
	for (size_t i = 0; i < sizeof(mailbox_cases) / sizeof(mailbox_cases[0]); i++) {
		const struct mailbox_case *c = &mailbox_cases[i];
		char *in = test_dup(c->in, c->len);
		struct addr a;
		const char *err = NULL;
		enum addr_error e = addr_parse_mailbox(in, c->len, c->flags, &a, &err);
		if (e != c->want)
			fail_msg("mailbox case %zu \"%s\": got %d (%s), want %d", i,
				 test_escape(c->in, c->len, esc, sizeof(esc)), e, err ? err : "-", c->want);
		if (e == ADDR_OK) {
			assert_memory_equal(a.text, c->in, c->len);
			assert_int_equal(strlen(a.text), c->len);
			assert_int_equal(a.local_len, c->local_len);
			assert_int_equal(a.domain_off, c->local_len + 1);
			assert_false(a.is_null);
		} else {
			assert_non_null(err);
			assert_string_equal(a.text, "");
		}
		free(in);
	}
}

/* A bare mailbox must fit in a path: at most ADDR_TEXT_MAX octets. */
static void test_mailbox_limits(void **state)
{
	size_t len;
	struct addr a;
	(void)state;
	char *p = test_path(64, 189, &len); /* mailbox of 254 */
	assert_int_equal(addr_parse_mailbox(p + 1, len - 2, 0, &a, NULL), ADDR_OK);
	assert_int_equal(strlen(a.text), ADDR_TEXT_MAX);
	free(p);
	p = test_path(64, 190, &len);
	assert_int_equal(addr_parse_mailbox(p + 1, len - 2, 0, &a, NULL), ADDR_ERR_TOO_LONG);
	free(p);
	p = test_path(65, 2, &len);
	assert_int_equal(addr_parse_mailbox(p + 1, len - 2, 0, &a, NULL), ADDR_ERR_TOO_LONG);
	free(p);
}

struct domain_case {
	const char *in;
	size_t len;
	unsigned flags;
	enum addr_error want;
};

#define DOMAIN(lit, fl, w) { .in = lit, .len = sizeof(lit) - 1, .flags = fl, .want = w }

static const struct domain_case domain_cases[] = {
	DOMAIN("example.com", 0, ADDR_OK),
	DOMAIN("localhost", 0, ADDR_OK),
	DOMAIN("a", 0, ADDR_OK),
	DOMAIN("1.2.3.4", 0, ADDR_OK),
	DOMAIN("xn--bcher-kva.de", 0, ADDR_OK),
	DOMAIN("[192.0.2.1]", 0, ADDR_OK),
	DOMAIN("[IPv6:2001:db8::1]", 0, ADDR_OK),
	DOMAIN("[IPV6:::]", 0, ADDR_OK),
	DOMAIN("bücher.de", U, ADDR_OK),
	DOMAIN("bücher.de", 0, ADDR_ERR_UTF8),
	DOMAIN("b\xc3.de", U, ADDR_ERR_UTF8),
	DOMAIN("", U, ADDR_ERR_SYNTAX),
	DOMAIN(".", 0, ADDR_ERR_SYNTAX),
	DOMAIN("exa mple.com", 0, ADDR_ERR_SYNTAX),
	DOMAIN("example.com ", 0, ADDR_ERR_SYNTAX),
	DOMAIN(" example.com", 0, ADDR_ERR_SYNTAX),
	DOMAIN("example.com.", 0, ADDR_ERR_SYNTAX),
	DOMAIN("ex_ample.com", 0, ADDR_ERR_SYNTAX),
	DOMAIN("a..b", 0, ADDR_ERR_SYNTAX),
	DOMAIN("-a", 0, ADDR_ERR_SYNTAX),
	DOMAIN("a-", 0, ADDR_ERR_SYNTAX),
	DOMAIN("a.b\0", 0, ADDR_ERR_SYNTAX),
	DOMAIN("a\0.b", 0, ADDR_ERR_SYNTAX),
	DOMAIN("<example.com>", 0, ADDR_ERR_SYNTAX),
	DOMAIN("a@b", 0, ADDR_ERR_SYNTAX),
	DOMAIN("[1.2.3.4", 0, ADDR_ERR_SYNTAX),
	DOMAIN("[1.2.3.4]x", 0, ADDR_ERR_SYNTAX),
	DOMAIN("[1.2.3.4].", 0, ADDR_ERR_SYNTAX),
	DOMAIN("[300.1.1.1]", 0, ADDR_ERR_SYNTAX),
	DOMAIN("[IPv6:::1", 0, ADDR_ERR_SYNTAX),
	DOMAIN("[", 0, ADDR_ERR_SYNTAX),
	DOMAIN("]", 0, ADDR_ERR_SYNTAX),
};

static void test_domain_table(void **state)
{
	char esc[256];
	(void)state;
	for (size_t i = 0; i < sizeof(domain_cases) / sizeof(domain_cases[0]); i++) {
		const struct domain_case *c = &domain_cases[i];
		char *in = test_dup(c->in, c->len);
		const char *err = NULL;
		enum addr_error e = addr_parse_domain(in, c->len, c->flags, &err);
		if (e != c->want)
			fail_msg("domain case %zu \"%s\": got %d (%s), want %d", i,
				 test_escape(c->in, c->len, esc, sizeof(esc)), e, err ? err : "-", c->want);
		if (e != ADDR_OK)
			assert_non_null(err);
		free(in);
	}
}

/* RFC 5321 §4.5.3.1.2: 255 octets accepted, 256 rejected; also for a general address literal. */
static void test_domain_limits(void **state)
{
	char lit[400];
	(void)state;
	char *d = test_domain(255);
	assert_int_equal(addr_parse_domain(d, 255, 0, NULL), ADDR_OK);
	free(d);
	d = test_domain(256);
	assert_int_equal(addr_parse_domain(d, 256, 0, NULL), ADDR_ERR_TOO_LONG);
	free(d);

	memcpy(lit, "[x:", 3);
	memset(lit + 3, 'y', 251);
	lit[254] = ']';
	assert_int_equal(addr_parse_domain(lit, 255, 0, NULL), ADDR_OK);
	memset(lit + 3, 'y', 252);
	lit[255] = ']';
	assert_int_equal(addr_parse_domain(lit, 256, 0, NULL), ADDR_ERR_TOO_LONG);
}

static void test_error_str(void **state)
{
	(void)state;
	assert_string_equal(addr_error_str(ADDR_OK), "ok");
	const char *s1 = addr_error_str(ADDR_ERR_SYNTAX), *s2 = addr_error_str(ADDR_ERR_TOO_LONG),
		   *s3 = addr_error_str(ADDR_ERR_UTF8);
	assert_true(strcmp(s1, s2) != 0 && strcmp(s2, s3) != 0 && strcmp(s1, s3) != 0);
	assert_non_null(addr_error_str((enum addr_error)42));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_table),
		cmocka_unit_test(test_path_null_outputs),
		cmocka_unit_test(test_path_limits),
		cmocka_unit_test(test_path_limits_quoted_and_route),
		cmocka_unit_test(test_path_huge),
		cmocka_unit_test(test_mailbox_table),
		cmocka_unit_test(test_mailbox_limits),
		cmocka_unit_test(test_domain_table),
		cmocka_unit_test(test_domain_limits),
		cmocka_unit_test(test_error_str),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
