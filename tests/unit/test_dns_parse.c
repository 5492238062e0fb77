/* test_dns_parse.c — the pure DNS helpers: rdata parsers fed truncated and hostile records, the
 * RFC 5321 §5.1 MX order with a scripted random source, the RFC 7505 null-MX test, address literals
 * and the [dns] resolver setting. Then the lifecycle promises of dns.h (timeout, cancel, free with
 * lookups outstanding, free from inside a callback) against a local UDP socket that never answers;
 * answers themselves are tested end to end in tests/integration/test_resolve.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <event2/event.h>

#include "net/dns.h"
#include "net/dns_parse.h"

/* ---- names ---- */

static enum dns_parse_error name(const char *wire, size_t len, char *text, size_t *used)
{
	const char *err = NULL;
	enum dns_parse_error e = dns_name_parse((const uint8_t *)wire, len, used, text, DNS_NAME_TEXT_SIZE, &err);
	if (e != DNS_PARSE_OK)
		assert_non_null(err);
	return e;
}

static void test_name_basic(void **state)
{
	(void)state;
	char text[DNS_NAME_TEXT_SIZE];
	size_t used;

	assert_int_equal(name("\x02mx\x07" "example\x03org\x00trailing", 21, text, &used), DNS_PARSE_OK);
	assert_string_equal(text, "mx.example.org");
	assert_int_equal(used, 16);
	assert_int_equal(name("\x00", 1, text, &used), DNS_PARSE_OK);
	assert_string_equal(text, ".");
	assert_int_equal(used, 1);
	/* RFC 1035 §5.1 escapes for octets a host name cannot have */
	assert_int_equal(name("\x03" "a.b\x03" "c d\x02\xff\\\x00", 13, text, &used), DNS_PARSE_OK);
	assert_string_equal(text, "a\\.b.c\\032d.\\255\\\\");
	assert_int_equal(name("\x06_dmarc\x01x\x00", 10, text, &used), DNS_PARSE_OK);
	assert_string_equal(text, "_dmarc.x");
}

static void test_name_hostile(void **state)
{
	(void)state;
	char text[DNS_NAME_TEXT_SIZE];
	uint8_t wire[300];
	size_t used;
	const char *err;

	assert_int_equal(name("", 0, text, &used), DNS_PARSE_TRUNCATED);
	assert_int_equal(name("\x02mx", 3, text, &used), DNS_PARSE_TRUNCATED);       /* no root label */
	assert_int_equal(name("\x05mx", 3, text, &used), DNS_PARSE_TRUNCATED);       /* label past the end */
	assert_int_equal(name("\x02mx\xc0\x0c", 5, text, &used), DNS_PARSE_BAD_NAME); /* compression pointer */
	assert_int_equal(name("\x41" "a", 2, text, &used), DNS_PARSE_BAD_NAME);       /* 01 label type / 65 */
	assert_int_equal(name("\x80" "a", 2, text, &used), DNS_PARSE_BAD_NAME);       /* 10 label type */

	/* RFC 1035 §2.3.4: 255 octets on the wire at most, root label included */
	memset(wire, 0, sizeof(wire));
	size_t off = 0;
	for (int i = 0; i < 4; i++) { /* 4 x 64 = 256 with 63-octet labels; make the last one shorter */
		size_t l = i < 3 ? 63 : 61;
		wire[off++] = (uint8_t)l;
		memset(wire + off, 'a', l);
		off += l;
	}
	wire[off++] = 0;
	assert_int_equal(off, 255);
	assert_int_equal(dns_name_parse(wire, off, &used, text, sizeof(text), &err), DNS_PARSE_OK);
	assert_int_equal(used, 255);
	assert_int_equal(strlen(text), 253);
	wire[off - 1 - 62] = 62; /* the last label one octet longer: 256 */
	wire[off - 1] = 'a';
	wire[off] = 0;
	assert_int_equal(dns_name_parse(wire, off + 1, &used, text, sizeof(text), &err), DNS_PARSE_BAD_NAME);

	/* the worst case for the text buffer: every octet escaped */
	off = 0;
	for (int i = 0; i < 4; i++) {
		size_t l = i < 3 ? 63 : 61;
		wire[off++] = (uint8_t)l;
		memset(wire + off, 0xff, l);
		off += l;
	}
	wire[off++] = 0;
	assert_int_equal(dns_name_parse(wire, off, &used, text, sizeof(text), &err), DNS_PARSE_OK);
	assert_int_equal(strlen(text), 250 * 4 + 3);
	/* a buffer below the documented size is refused, not overrun */
	assert_int_equal(dns_name_parse(wire, off, &used, text, 100, &err), DNS_PARSE_BAD_NAME);
}

static void test_host_valid(void **state)
{
	(void)state;
	char buf[300];

	assert_true(dns_host_valid("mx.example.org"));
	assert_true(dns_host_valid("a"));
	assert_true(dns_host_valid("1-2.x9"));
	assert_false(dns_host_valid(""));
	assert_false(dns_host_valid("."));
	assert_false(dns_host_valid("mx.example.org."));
	assert_false(dns_host_valid("-mx.example.org"));
	assert_false(dns_host_valid("mx-.example.org"));
	assert_false(dns_host_valid("mx..org"));
	assert_false(dns_host_valid("m_x.org"));
	assert_false(dns_host_valid("m x.org"));
	assert_false(dns_host_valid("m\\.x.org"));
	memset(buf, 'a', 63);
	strcpy(buf + 63, ".org");
	assert_true(dns_host_valid(buf));
	memset(buf, 'a', 64);
	strcpy(buf + 64, ".org");
	assert_false(dns_host_valid(buf));
	/* 253 octets in all is the limit */
	memset(buf, 0, sizeof(buf));
	for (size_t i = 0; i < 253; i++)
		buf[i] = (i % 2) ? '.' : 'a';
	assert_true(dns_host_valid(buf));
	buf[253] = '.';
	buf[254] = 'a';
	assert_false(dns_host_valid(buf));
}

/* ---- rdata ---- */

static enum dns_parse_error mx(const char *rd, size_t len, struct dns_mx *m)
{
	const char *err = NULL;
	memset(m, 0x5a, sizeof(*m));
	enum dns_parse_error e = dns_rdata_mx_parse((const uint8_t *)rd, len, m, &err);
	if (e != DNS_PARSE_OK)
		assert_non_null(err);
	return e;
}

static void test_rdata_mx(void **state)
{
	(void)state;
	struct dns_mx m;

	assert_int_equal(mx("\x00\x0a\x02MX\x07" "Example\x03org\x00", 18, &m), DNS_PARSE_OK);
	assert_int_equal(m.pref, 10);
	assert_string_equal(m.exchange, "mx.example.org");
	assert_int_equal(mx("\xff\xff\x01" "a\x00", 5, &m), DNS_PARSE_OK);
	assert_int_equal(m.pref, 65535);
	/* RFC 7505 null MX */
	assert_int_equal(mx("\x00\x00\x00", 3, &m), DNS_PARSE_OK);
	assert_int_equal(m.pref, 0);
	assert_string_equal(m.exchange, ".");

	/* truncated at every length */
	const char full[] = "\x00\x0a\x02mx\x07" "example\x03org\x00";
	for (size_t len = 0; len < 18; len++)
		assert_int_not_equal(mx(full, len, &m), DNS_PARSE_OK);
	assert_int_equal(mx(full, 0, &m), DNS_PARSE_TRUNCATED);
	assert_int_equal(mx(full, 2, &m), DNS_PARSE_TRUNCATED);
	assert_int_equal(mx(full, 17, &m), DNS_PARSE_TRUNCATED);
	/* trailing octets, a compression pointer, a name that is no host */
	assert_int_equal(mx("\x00\x0a\x01" "a\x00" "x", 6, &m), DNS_PARSE_TRAILING);
	assert_int_equal(mx("\x00\x0a\xc0\x0c", 4, &m), DNS_PARSE_BAD_NAME);
	assert_int_equal(mx("\x00\x0a\x04" "m_x1\x00", 8, &m), DNS_PARSE_NOT_HOST);
	assert_int_equal(mx("\x00\x0a\x03" "m x\x00", 7, &m), DNS_PARSE_NOT_HOST);
	assert_int_equal(mx("\x00\x0a\x03" "m.x\x00", 7, &m), DNS_PARSE_NOT_HOST);
	assert_int_equal(mx("\x00\x0a\x03" "m\0x\x00", 7, &m), DNS_PARSE_NOT_HOST);
	assert_int_equal(mx("\x00\x0a\x02" "-x\x00", 6, &m), DNS_PARSE_NOT_HOST);
}

static void test_rdata_addr(void **state)
{
	(void)state;
	struct dns_addr a;
	const char *err;
	char buf[64];
	uint8_t rd[17] = {192, 0, 2, 1};

	assert_int_equal(dns_rdata_a_parse(rd, 4, &a, &err), DNS_PARSE_OK);
	assert_int_equal(a.family, AF_INET);
	assert_string_equal(dns_addr_str(&a, buf, sizeof(buf)), "192.0.2.1");
	assert_int_equal(dns_rdata_a_parse(rd, 0, &a, &err), DNS_PARSE_LENGTH);
	assert_int_equal(dns_rdata_a_parse(rd, 3, &a, &err), DNS_PARSE_LENGTH);
	assert_int_equal(dns_rdata_a_parse(rd, 5, &a, &err), DNS_PARSE_LENGTH);

	memset(rd, 0, sizeof(rd));
	rd[0] = 0x20;
	rd[1] = 0x01;
	rd[2] = 0x0d;
	rd[3] = 0xb8;
	rd[15] = 1;
	assert_int_equal(dns_rdata_aaaa_parse(rd, 16, &a, &err), DNS_PARSE_OK);
	assert_int_equal(a.family, AF_INET6);
	assert_string_equal(dns_addr_str(&a, buf, sizeof(buf)), "2001:db8::1");
	assert_int_equal(dns_rdata_aaaa_parse(rd, 4, &a, &err), DNS_PARSE_LENGTH);
	assert_int_equal(dns_rdata_aaaa_parse(rd, 15, &a, &err), DNS_PARSE_LENGTH);
	assert_int_equal(dns_rdata_aaaa_parse(rd, 17, &a, &err), DNS_PARSE_LENGTH);
}

static enum dns_parse_error txt(const char *rd, size_t len, char *out, size_t *out_len)
{
	const char *err = NULL;
	enum dns_parse_error e = dns_rdata_txt_parse((const uint8_t *)rd, len, out, len, out_len, &err);
	if (e != DNS_PARSE_OK)
		assert_non_null(err);
	return e;
}

static void test_rdata_txt(void **state)
{
	(void)state;
	char out[600];
	size_t n;
	uint8_t big[600];
	const char *err;

	assert_int_equal(txt("\x0bv=spf1 -all", 12, out, &n), DNS_PARSE_OK);
	assert_int_equal(n, 11);
	assert_string_equal(out, "v=spf1 -all");
	/* RFC 7208 §3.3: character-strings are joined without spaces */
	assert_int_equal(txt("\x06v=spf1\x05 -all", 13, out, &n), DNS_PARSE_OK);
	assert_string_equal(out, "v=spf1 -all");
	assert_int_equal(txt("\x00", 1, out, &n), DNS_PARSE_OK);
	assert_int_equal(n, 0);
	assert_string_equal(out, "");
	assert_int_equal(txt("\x03" "a\0b", 4, out, &n), DNS_PARSE_OK);
	assert_int_equal(n, 3);
	assert_memory_equal(out, "a\0b", 4);
	/* no string at all; a length past the end; a second string cut short */
	assert_int_equal(txt("", 0, out, &n), DNS_PARSE_TRUNCATED);
	assert_int_equal(txt("\x05" "abc", 4, out, &n), DNS_PARSE_TRUNCATED);
	assert_int_equal(txt("\x01" "a\x02" "b", 4, out, &n), DNS_PARSE_TRUNCATED);
	assert_int_equal(txt("\x01" "a\x01", 3, out, &n), DNS_PARSE_TRUNCATED);
	/* a small output buffer is refused, not overrun */
	assert_int_equal(dns_rdata_txt_parse((const uint8_t *)"\x03" "abc", 4, out, 3, &n, &err), DNS_PARSE_TRUNCATED);
	/* two maximal strings */
	big[0] = 255;
	memset(big + 1, 'x', 255);
	big[256] = 255;
	memset(big + 257, 'y', 255);
	assert_int_equal(dns_rdata_txt_parse(big, 512, out, 512, &n, &err), DNS_PARSE_OK);
	assert_int_equal(n, 510);
	assert_int_equal(out[254], 'x');
	assert_int_equal(out[255], 'y');
	assert_int_equal(out[510], '\0');
}

/* ---- MX order ---- */

struct script {
	const uint32_t *v;
	size_t n, i;
	size_t calls;
};

static uint32_t script_next(void *arg)
{
	struct script *s = arg;
	s->calls++;
	uint32_t v = s->n > 0 ? s->v[s->i % s->n] : 0;
	s->i++;
	return v;
}

static void set_mx(struct dns_mx *m, uint16_t pref, const char *host)
{
	m->pref = pref;
	snprintf(m->exchange, sizeof(m->exchange), "%s", host);
}

/* RFC 6698 §2.2 presentation form, with the data cut where the caller asks. */
static void test_tlsa_text(void **state)
{
	(void)state;
	static const uint8_t data[] = {0x00, 0x1f, 0xab, 0xff};
	struct dns_tlsa t = {.usage = 3, .selector = 1, .mtype = 1, .data = data, .len = sizeof(data)};
	char out[64];
	assert_false(dns_tlsa_text(&t, 4, out, sizeof(out)));
	assert_string_equal(out, "3 1 1 001fabff");
	assert_true(dns_tlsa_text(&t, 2, out, sizeof(out)));
	assert_string_equal(out, "3 1 1 001f");
	/* no room: cut at a whole octet, still terminated */
	assert_true(dns_tlsa_text(&t, 4, out, 11));
	assert_string_equal(out, "3 1 1 001f");
	assert_true(dns_tlsa_text(&t, 4, out, 4));
	assert_string_equal(out, "3 1");
	t.usage = 255;
	assert_false(dns_tlsa_text(&t, 8, out, sizeof(out)));
	assert_string_equal(out, "255 1 1 001fabff");
}

static void test_rdata_tlsa(void **state)
{
	(void)state;
	struct dns_tlsa t;
	const char *err = NULL;
	static const uint8_t ok[] = {3, 1, 1, 0xab, 0xcd};
	assert_int_equal(dns_rdata_tlsa_parse(ok, sizeof(ok), &t, &err), DNS_PARSE_OK);
	assert_int_equal(t.usage, 3);
	assert_int_equal(t.selector, 1);
	assert_int_equal(t.mtype, 1);
	assert_ptr_equal(t.data, ok + 3);
	assert_int_equal(t.len, 2);
	/* values outside the registries parse: whether a record is usable is the caller's question */
	static const uint8_t odd[] = {255, 255, 255, 0};
	assert_int_equal(dns_rdata_tlsa_parse(odd, sizeof(odd), &t, &err), DNS_PARSE_OK);
	assert_int_equal(t.len, 1);
	/* hostile: shorter than the fixed fields, or no association data */
	for (size_t len = 0; len < 4; len++) {
		err = NULL;
		assert_int_equal(dns_rdata_tlsa_parse(ok, len, &t, &err), DNS_PARSE_TRUNCATED);
		assert_non_null(err);
	}
}

static void test_mx_sort(void **state)
{
	(void)state;
	struct dns_mx m[6];
	struct script s = {0};

	set_mx(&m[0], 30, "c.test");
	set_mx(&m[1], 10, "a.test");
	set_mx(&m[2], 20, "b.test");
	set_mx(&m[3], 10, "a.test"); /* duplicate */
	set_mx(&m[4], 5, "b.test");  /* the same host, more preferred */
	set_mx(&m[5], 65535, "z.test");
	size_t n = dns_mx_order(m, 6, script_next, &s);
	assert_int_equal(n, 4);
	assert_int_equal(m[0].pref, 5);
	assert_string_equal(m[0].exchange, "b.test");
	assert_int_equal(m[1].pref, 10);
	assert_string_equal(m[1].exchange, "a.test");
	assert_int_equal(m[2].pref, 30);
	assert_string_equal(m[2].exchange, "c.test");
	assert_int_equal(m[3].pref, 65535);
	assert_int_equal(s.calls, 0); /* no ties, no randomness used */
	assert_int_equal(dns_mx_order(m, 0, script_next, &s), 0);
}

/* Within a preference the order is the shuffle's; across preferences it never changes. */
static void test_mx_shuffle(void **state)
{
	(void)state;
	bool seen_first[3] = {false, false, false};

	for (uint32_t r = 0; r < 6; r++) {
		struct dns_mx m[5];
		uint32_t vals[] = {r, r / 3};
		struct script s = {.v = vals, .n = 2};

		set_mx(&m[0], 20, "late.test");
		set_mx(&m[1], 10, "x.test");
		set_mx(&m[2], 10, "y.test");
		set_mx(&m[3], 10, "z.test");
		set_mx(&m[4], 0, "first.test");
		assert_int_equal(dns_mx_order(m, 5, script_next, &s), 5);
		assert_string_equal(m[0].exchange, "first.test");
		assert_string_equal(m[4].exchange, "late.test");
		for (int i = 1; i <= 3; i++)
			assert_int_equal(m[i].pref, 10);
		/* the three tied hosts are a permutation */
		assert_string_not_equal(m[1].exchange, m[2].exchange);
		assert_string_not_equal(m[2].exchange, m[3].exchange);
		assert_string_not_equal(m[1].exchange, m[3].exchange);
		seen_first[m[1].exchange[0] - 'x'] = true;
		assert_int_equal(s.calls, 2); /* Fisher-Yates on 3: two draws */
	}
	/* different random values put each tied host first at some point */
	assert_true(seen_first[0] && seen_first[1] && seen_first[2]);

	/* a fixed source gives a fixed order: the shuffle is a function of the source alone */
	struct dns_mx a[4], b[4];
	uint32_t vals[] = {7, 1, 12345};
	struct script s1 = {.v = vals, .n = 3}, s2 = {.v = vals, .n = 3};
	for (int i = 0; i < 4; i++) {
		char h[16];
		snprintf(h, sizeof(h), "h%d.test", i);
		set_mx(&a[i], 1, h);
		set_mx(&b[3 - i], 1, h); /* input order differs */
	}
	dns_mx_order(a, 4, script_next, &s1);
	dns_mx_order(b, 4, script_next, &s2);
	for (int i = 0; i < 4; i++)
		assert_string_equal(a[i].exchange, b[i].exchange);
}

static void test_random_below(void **state)
{
	(void)state;
	uint32_t max = UINT32_MAX;
	struct script s = {.v = &max, .n = 1};

	/* a source stuck in the biased range still ends */
	assert_true(dns_random_below(script_next, &s, 3) < 3);
	assert_int_equal(s.calls, 64);
	s.calls = 0;
	assert_int_equal(dns_random_below(script_next, &s, 1), 0);
	assert_int_equal(s.calls, 0);
	uint32_t v = 10;
	struct script t = {.v = &v, .n = 1};
	assert_int_equal(dns_random_below(script_next, &t, 4), 2);
	assert_int_equal(t.calls, 1);
}

static void test_null_mx(void **state)
{
	(void)state;
	struct dns_mx m[2];

	set_mx(&m[0], 0, ".");
	assert_true(dns_mx_is_null(m, 1));
	assert_false(dns_mx_is_null(m, 0));
	set_mx(&m[1], 10, "mx.test");
	assert_false(dns_mx_is_null(m, 2)); /* RFC 7505 §3: only when it is the only record */
	set_mx(&m[0], 10, ".");
	assert_false(dns_mx_is_null(m, 1)); /* preference must be 0 */
	set_mx(&m[0], 0, "mx.test");
	assert_false(dns_mx_is_null(m, 1));

	/* the whole path: rdata "0 ." parses into a null MX */
	struct dns_mx p;
	const char *err;
	assert_int_equal(dns_rdata_mx_parse((const uint8_t *)"\x00\x00\x00", 3, &p, &err), DNS_PARSE_OK);
	assert_true(dns_mx_is_null(&p, 1));
}

/* ---- text inputs ---- */

static void test_addr_literal(void **state)
{
	(void)state;
	struct dns_addr a;
	const char *err;
	char buf[64];

	assert_int_equal(dns_addr_literal_parse("[192.0.2.1]", &a, &err), DNS_PARSE_OK);
	assert_int_equal(a.family, AF_INET);
	assert_string_equal(dns_addr_str(&a, buf, sizeof(buf)), "192.0.2.1");
	assert_int_equal(dns_addr_literal_parse("[IPv6:2001:db8::1]", &a, &err), DNS_PARSE_OK);
	assert_int_equal(a.family, AF_INET6);
	assert_string_equal(dns_addr_str(&a, buf, sizeof(buf)), "2001:db8::1");
	assert_int_equal(dns_addr_literal_parse("[ipv6:::1]", &a, &err), DNS_PARSE_OK);
	assert_string_equal(dns_addr_str(&a, buf, sizeof(buf)), "::1");

	const char *bad[] = {"", "[", "[]", "192.0.2.1", "[192.0.2.1", "192.0.2.1]", "[192.0.2]", "[192.0.2.256]",
			     "[2001:db8::1]", "[IPv6:]", "[IPv6:192.0.2.1]", "[x-tag:abc]", "[ 192.0.2.1]",
			     "[192.0.2.1 ]", "[IPv6:2001:db8::1%eth0]",
			     "[IPv6:1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc:dddd:eeee]"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		assert_int_equal(dns_addr_literal_parse(bad[i], &a, &err), DNS_PARSE_SYNTAX);
		assert_non_null(err);
	}
}

static void test_resolver(void **state)
{
	(void)state;
	char out[64];
	const char *err;

	assert_int_equal(dns_resolver_parse("127.0.0.1@5353", out, sizeof(out), &err), DNS_PARSE_OK);
	assert_string_equal(out, "127.0.0.1@5353");
	assert_int_equal(dns_resolver_parse("192.0.2.53", out, sizeof(out), &err), DNS_PARSE_OK);
	assert_string_equal(out, "192.0.2.53@53");
	assert_int_equal(dns_resolver_parse("::1@53", out, sizeof(out), &err), DNS_PARSE_OK);
	assert_string_equal(out, "::1@53");
	const char *bad[] = {"", "@53", "localhost", "ns.example.org@53", "127.0.0.1@", "127.0.0.1@0",
			     "127.0.0.1@65536", "127.0.0.1@53x", "127.0.0.1@-1", "127.0.0.1@+53", "127.0.0.1:53",
			     "[::1]@53", "127.0.0.1@53@54", "127.0.0.1 @53"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(dns_resolver_parse(bad[i], out, sizeof(out), &err), DNS_PARSE_SYNTAX);
}

/* ---- dns.c lifecycle, against a server that never answers ---- */

struct silent {
	int fd;
	char resolver[64];
	struct event_base *base;
	struct dns *d;
	int calls;
	enum dns_status last;
	char why[256];
	bool free_in_callback;
};

static int silent_setup(void **state)
{
	struct silent *s = calloc(1, sizeof(*s));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	char err[256];

	assert_non_null(s);
	s->fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(s->fd >= 0);
	assert_int_equal(bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(s->fd, (struct sockaddr *)&sa, &len), 0);
	snprintf(s->resolver, sizeof(s->resolver), "127.0.0.1@%u", (unsigned)ntohs(sa.sin_port));
	s->base = event_base_new();
	assert_non_null(s->base);
	s->d = dns_new(s->base, s->resolver, NULL, NULL, err, sizeof(err));
	if (s->d == NULL)
		fail_msg("dns_new: %s", err);
	dns_timeout_set(s->d, 1);
	*state = s;
	return 0;
}

static int silent_teardown(void **state)
{
	struct silent *s = *state;
	dns_free(s->d);
	event_base_free(s->base);
	close(s->fd);
	free(s);
	return 0;
}

static void silent_run(struct silent *s, int msecs)
{
	struct timeval tv = {.tv_sec = msecs / 1000, .tv_usec = (msecs % 1000) * 1000};
	event_base_loopexit(s->base, &tv);
	event_base_dispatch(s->base);
}

static void silent_done(void *arg, uint64_t id, const struct dns_result *r)
{
	struct silent *s = arg;
	(void)id;
	s->calls++;
	s->last = r->status;
	snprintf(s->why, sizeof(s->why), "%s", r->why);
	assert_int_equal(r->count, 0);
	assert_false(r->secure);
	if (s->free_in_callback) {
		dns_free(s->d); /* the promise: safe here, and no further callback */
		s->d = NULL;
	}
}

static void test_dns_timeout(void **state)
{
	struct silent *s = *state;
	uint64_t id = dns_lookup(s->d, "mx.example.test", DNS_RRTYPE_MX, silent_done, s);

	assert_true(id != 0);
	assert_int_equal(s->calls, 0); /* never from inside dns_lookup */
	silent_run(s, 1800);
	assert_int_equal(s->calls, 1);
	assert_int_equal(s->last, DNS_STATUS_TEMPFAIL);
	assert_non_null(strstr(s->why, "within 1 s"));
	dns_cancel(s->d, id); /* finished: ignored */
}

static void test_dns_cancel(void **state)
{
	struct silent *s = *state;
	uint64_t a = dns_lookup(s->d, "a.example.test", DNS_RRTYPE_A, silent_done, s);
	uint64_t b = dns_lookup(s->d, "b.example.test.", DNS_RRTYPE_AAAA, silent_done, s);

	assert_true(a != 0 && b != 0 && a != b);
	dns_cancel(s->d, a);
	dns_cancel(s->d, a);      /* twice: ignored */
	dns_cancel(s->d, 999999); /* unknown: ignored */
	silent_run(s, 1800);
	assert_int_equal(s->calls, 1); /* b only */
}

static void test_dns_free_outstanding(void **state)
{
	struct silent *s = *state;

	for (int i = 0; i < 20; i++)
		assert_true(dns_lookup(s->d, "x.example.test", DNS_RRTYPE_TXT, silent_done, s) != 0);
	silent_run(s, 100);
	dns_free(s->d); /* ASan checks that nothing leaks; no callback may follow */
	s->d = NULL;
	silent_run(s, 1500);
	assert_int_equal(s->calls, 0);
	char err[256];
	s->d = dns_new(s->base, s->resolver, NULL, NULL, err, sizeof(err)); /* for the teardown */
	assert_non_null(s->d);
}

static void test_dns_free_in_callback(void **state)
{
	struct silent *s = *state;

	s->free_in_callback = true;
	/* three lookups time out together: the first callback frees, the others never come */
	for (int i = 0; i < 3; i++)
		assert_true(dns_lookup(s->d, "y.example.test", DNS_RRTYPE_MX, silent_done, s) != 0);
	silent_run(s, 1800);
	assert_int_equal(s->calls, 1);
	assert_null(s->d);
	char err[256];
	s->d = dns_new(s->base, s->resolver, NULL, NULL, err, sizeof(err));
	assert_non_null(s->d);
}

static void test_dns_bad_input(void **state)
{
	struct silent *s = *state;
	char err[256];
	char long_label[80];

	assert_int_equal(dns_lookup(s->d, "", DNS_RRTYPE_A, silent_done, s), 0);
	assert_int_equal(dns_lookup(s->d, "a..b", DNS_RRTYPE_A, silent_done, s), 0);
	assert_int_equal(dns_lookup(s->d, "a b.test", DNS_RRTYPE_A, silent_done, s), 0);
	assert_int_equal(dns_lookup(s->d, "a\\046b.test", DNS_RRTYPE_A, silent_done, s), 0);
	memset(long_label, 'a', 64);
	strcpy(long_label + 64, ".test");
	assert_int_equal(dns_lookup(s->d, long_label, DNS_RRTYPE_A, silent_done, s), 0);
	assert_int_equal(dns_lookup(s->d, "ok.test", 0, silent_done, s), 0);
	silent_run(s, 50);
	assert_int_equal(s->calls, 0);

	assert_null(dns_new(s->base, "localhost@53", NULL, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "resolver"));
	assert_null(dns_new(s->base, s->resolver, "/nonexistent/root.key", NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "trust anchor"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_basic),
		cmocka_unit_test(test_name_hostile),
		cmocka_unit_test(test_host_valid),
		cmocka_unit_test(test_rdata_mx),
		cmocka_unit_test(test_rdata_addr),
		cmocka_unit_test(test_rdata_txt),
		cmocka_unit_test(test_rdata_tlsa),
		cmocka_unit_test(test_tlsa_text),
		cmocka_unit_test(test_mx_sort),
		cmocka_unit_test(test_mx_shuffle),
		cmocka_unit_test(test_random_below),
		cmocka_unit_test(test_null_mx),
		cmocka_unit_test(test_addr_literal),
		cmocka_unit_test(test_resolver),
		cmocka_unit_test_setup_teardown(test_dns_timeout, silent_setup, silent_teardown),
		cmocka_unit_test_setup_teardown(test_dns_cancel, silent_setup, silent_teardown),
		cmocka_unit_test_setup_teardown(test_dns_free_outstanding, silent_setup, silent_teardown),
		cmocka_unit_test_setup_teardown(test_dns_free_in_callback, silent_setup, silent_teardown),
		cmocka_unit_test_setup_teardown(test_dns_bad_input, silent_setup, silent_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
