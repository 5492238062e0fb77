/* test_smtp_data.c — DATA line reading, dot-unstuffing, limits, and every inbound SMTP smuggling
 * sequence from shared/testdata/smtp/smuggling.md. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/buffer.h>
#include <string.h>

#include "smtp/data.h"
#include "util/budget.h"

struct run {
	enum smtp_data_status status;
	enum smtp_data_error error;
	char body[8192];
	size_t body_len;
	size_t left; /* input octets not consumed */
};

/* Feeds input in pieces of `piece` octets (0 = all at once) until END or BARE_EOL. */
static struct run data_run(const char *input, size_t len, size_t piece, uint64_t max)
{
	struct run r = {0};
	struct evbuffer *in = evbuffer_new(), *body = evbuffer_new();
	struct smtp_data d;
	smtp_data_begin(&d, body, max);
	if (piece == 0)
		piece = len ? len : 1;
	r.status = SMTP_DATA_MORE;
	for (size_t off = 0; off < len && r.status == SMTP_DATA_MORE; off += piece) {
		evbuffer_add(in, input + off, len - off < piece ? len - off : piece);
		r.status = smtp_data_read(&d, in);
		/* what follows END stays in the input, as the next commands */
		if (r.status != SMTP_DATA_MORE)
			evbuffer_add(in, input + off + (len - off < piece ? len - off : piece),
				     len - off < piece ? 0 : len - off - piece);
	}
	r.error = d.error;
	r.body_len = evbuffer_get_length(body);
	assert_true(r.body_len < sizeof(r.body));
	evbuffer_remove(body, r.body, r.body_len);
	r.left = evbuffer_get_length(in);
	evbuffer_free(in);
	evbuffer_free(body);
	return r;
}

#define RUN(s, piece) data_run(s, sizeof(s) - 1, piece, 1 << 20)

static void test_simple_and_unstuffing(void **state)
{
	static const char in[] = "Subject: x\r\n\r\n..leading dot\r\n.x\r\n..\r\nend\r\n.\r\n";
	for (size_t piece = 0; piece < 8; piece++) {
		struct run r = RUN(in, piece);
		assert_int_equal(r.status, SMTP_DATA_END);
		assert_int_equal(r.error, SMTP_DATA_OK);
		/* RFC 5321 §4.5.2: "..x" -> ".x", ".x" -> "x", ".." -> "." */
		static const char want[] = "Subject: x\r\n\r\n.leading dot\r\nx\r\n.\r\nend\r\n";
		assert_int_equal(r.body_len, sizeof(want) - 1);
		assert_memory_equal(r.body, want, sizeof(want) - 1);
		assert_int_equal(r.left, 0);
	}
}

static void test_empty_message(void **state)
{
	struct run r = RUN(".\r\n", 0);
	assert_int_equal(r.status, SMTP_DATA_END);
	assert_int_equal(r.body_len, 0);
}

static void test_pipelined_commands_stay(void **state)
{
	struct run r = RUN("a\r\n.\r\nQUIT\r\n", 0);
	assert_int_equal(r.status, SMTP_DATA_END);
	assert_int_equal(r.left, 6);
}

static void test_incomplete_waits(void **state)
{
	struct run r = RUN("abc\r\n.", 0);
	assert_int_equal(r.status, SMTP_DATA_MORE);
	r = RUN("abc\r\n.\r", 0);
	assert_int_equal(r.status, SMTP_DATA_MORE);
}

/* shared/testdata/smtp/smuggling.md rows 1-10: none may end the data. Each is followed by a smuggled
 * transaction and then a real end. Accept: BARE_EOL (we refuse and close) or one message to the real end. */
static void test_smuggling_sequences(void **state)
{
	static const char *seqs[] = {
		"\n.\n", "\n.\r\n", "\r\n.\n", "\r.\r", "\r.\n", "\n.\r", "\r.\r\n", "\r\n.\r", "\r\n\0.\r\n", "\r\n.\0\r\n",
	};
	static const size_t lens[] = {3, 4, 4, 3, 3, 3, 4, 4, 6, 6};
	static const char smuggled[] = "MAIL FROM:<smuggled@example.org>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\n"
				       "From: smuggled@example.org\r\n\r\nsmuggled\r\n.\r\n";
	for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
		for (size_t piece = 0; piece < 5; piece++) {
			char in[512];
			size_t n = 0;
			memcpy(in + n, "body line", 9), n += 9;
			memcpy(in + n, seqs[i], lens[i]), n += lens[i];
			memcpy(in + n, smuggled, sizeof(smuggled) - 1), n += sizeof(smuggled) - 1;
			struct run r = data_run(in, n, piece, 1 << 20);
			if (r.status == SMTP_DATA_BARE_EOL)
				continue;
			/* otherwise it must have run to the real end as ONE message, and be refused */
			assert_int_equal(r.status, SMTP_DATA_END);
			assert_int_equal(r.left, 0);
			assert_int_not_equal(r.error, SMTP_DATA_OK);
		}
	}
}

static void test_bare_lf_and_cr_in_lines(void **state)
{
	assert_int_equal(RUN("line1\nline2\r\n.\r\n", 0).status, SMTP_DATA_BARE_EOL);
	assert_int_equal(RUN("line1\rline2\r\n.\r\n", 0).status, SMTP_DATA_BARE_EOL);
	assert_int_equal(RUN("\n", 0).status, SMTP_DATA_BARE_EOL);
	assert_int_equal(RUN("x\r\r\n", 0).status, SMTP_DATA_BARE_EOL);
	/* a bare CR is detected even before the line is complete */
	assert_int_equal(RUN("abc\rdef", 0).status, SMTP_DATA_BARE_EOL);
}

static void test_line_limits(void **state)
{
	char in[3000];
	/* exactly 998 octets + CRLF is allowed */
	memset(in, 'a', 998);
	memcpy(in + 998, "\r\n.\r\n", 5);
	struct run r = data_run(in, 1003, 0, 1 << 20);
	assert_int_equal(r.status, SMTP_DATA_END);
	assert_int_equal(r.error, SMTP_DATA_OK);
	/* 999 octets: too long; reading continues to the end, nothing kept */
	memset(in, 'a', 999);
	memcpy(in + 999, "\r\n.\r\n", 5);
	r = data_run(in, 1004, 0, 1 << 20);
	assert_int_equal(r.status, SMTP_DATA_END);
	assert_int_equal(r.error, SMTP_DATA_LINE_TOO_LONG);
	assert_int_equal(r.body_len, 0);
	/* a 2500-octet line arriving in pieces, then a smuggling LF inside the dropped part */
	for (size_t piece = 1; piece < 700; piece += 233) {
		memset(in, 'b', 2500);
		memcpy(in + 2500, "\r\n.\r\n", 5);
		r = data_run(in, 2505, piece, 1 << 20);
		assert_int_equal(r.status, SMTP_DATA_END);
		assert_int_equal(r.error, SMTP_DATA_LINE_TOO_LONG);
		memset(in, 'b', 2500);
		memcpy(in + 1500, "\n.\r\n", 4);
		memcpy(in + 2500, "\r\n.\r\n", 5);
		r = data_run(in, 2505, piece, 1 << 20);
		assert_int_equal(r.status, SMTP_DATA_BARE_EOL);
		memset(in, 'b', 2500);
		memcpy(in + 1500, "\r.\r", 3);
		memcpy(in + 2500, "\r\n.\r\n", 5);
		r = data_run(in, 2505, piece, 1 << 20);
		assert_int_equal(r.status, SMTP_DATA_BARE_EOL);
	}
}

static void test_size_limit(void **state)
{
	struct run r = data_run("0123456789\r\n0123456789\r\n.\r\n", 27, 0, 20);
	assert_int_equal(r.status, SMTP_DATA_END);
	assert_int_equal(r.error, SMTP_DATA_TOO_BIG);
	assert_int_equal(r.body_len, 0);
	r = data_run("0123456789\r\n.\r\n", 15, 0, 12);
	assert_int_equal(r.error, SMTP_DATA_OK);
}

static void test_nul(void **state)
{
	struct run r = data_run("a\0b\r\n.\r\n", 8, 0, 100);
	assert_int_equal(r.status, SMTP_DATA_END);
	assert_int_equal(r.error, SMTP_DATA_NUL);
}

static enum smtp_data_error chunks(const char *const *parts, const size_t *lens, size_t n, char *body, size_t *blen)
{
	struct evbuffer *in = evbuffer_new(), *b = evbuffer_new();
	struct smtp_data d;
	smtp_data_begin(&d, b, 1 << 20);
	for (size_t i = 0; i < n; i++) {
		evbuffer_add(in, parts[i], lens[i]);
		smtp_data_chunk(&d, in, lens[i]);
	}
	smtp_data_chunk_finish(&d);
	*blen = evbuffer_get_length(b);
	evbuffer_remove(b, body, *blen);
	evbuffer_free(in);
	evbuffer_free(b);
	return d.error;
}

static void test_bdat_chunks(void **state)
{
	char body[256];
	size_t blen;
	/* a CRLF split across chunks; a dot line is just content (RFC 3030: no dot-stuffing) */
	const char *p1[] = {"Subject: a\r", "\n\r\n.\r\nbody"};
	size_t l1[] = {11, 10};
	assert_int_equal(chunks(p1, l1, 2, body, &blen), SMTP_DATA_OK);
	assert_int_equal(blen, 23);
	assert_memory_equal(body, "Subject: a\r\n\r\n.\r\nbody\r\n", 23);
	const char *p2[] = {"a\nb\r\n"};
	size_t l2[] = {5};
	assert_int_equal(chunks(p2, l2, 1, body, &blen), SMTP_DATA_BARE);
	const char *p3[] = {"a\r", "b\r\n"};
	size_t l3[] = {2, 3};
	assert_int_equal(chunks(p3, l3, 2, body, &blen), SMTP_DATA_BARE);
	const char *p4[] = {"a\r"};
	size_t l4[] = {2};
	assert_int_equal(chunks(p4, l4, 1, body, &blen), SMTP_DATA_BARE);
	char long_line[1001];
	memset(long_line, 'x', 999);
	const char *p5[] = {long_line};
	size_t l5[] = {999};
	assert_int_equal(chunks(p5, l5, 1, body, &blen), SMTP_DATA_LINE_TOO_LONG);
	size_t l6[] = {998};
	char big[1100];
	assert_int_equal(chunks(p5, l6, 1, big, &blen), SMTP_DATA_OK);
	assert_int_equal(blen, 1000);
}

/* Content is charged to the memory budget as it is kept; what does not fit fails the message
 * (452 4.3.1 later), drops what it held at once, and drops the rest unread; release gives back. */
static void test_memory_budget(void **state)
{
	(void)state;
	struct budget memory = {.used = 0, .limit = 4096};
	struct evbuffer *in = evbuffer_new(), *body = evbuffer_new(), *body2 = evbuffer_new();
	struct smtp_data a, b;
	char line[1002];

	memset(line, 'a', 998);
	memcpy(line + 998, "\r\n", 2);
	smtp_data_begin(&a, body, 1 << 20);
	smtp_data_set_budget(&a, &memory);
	evbuffer_add(in, line, 1000);
	evbuffer_add(in, line, 1000);
	assert_int_equal(smtp_data_read(&a, in), SMTP_DATA_MORE);
	assert_int_equal(memory.used, 2000);
	assert_int_equal(a.charged, 2000);

	smtp_data_begin(&b, body2, 1 << 20); /* a second message: only 2096 octets are left */
	smtp_data_set_budget(&b, &memory);
	for (int i = 0; i < 3; i++)
		evbuffer_add(in, line, 1000);
	evbuffer_add(in, ".\r\n", 3);
	assert_int_equal(smtp_data_read(&b, in), SMTP_DATA_END);
	assert_int_equal(b.error, SMTP_DATA_NO_MEMORY);
	assert_int_equal(evbuffer_get_length(body2), 0); /* what it held went at once */
	assert_int_equal(memory.used, 2000);             /* and its charge with it */
	assert_true(b.size > 2096);                      /* the rest was read, not kept */

	/* BDAT content is charged the same way */
	smtp_data_begin(&b, body2, 1 << 20);
	smtp_data_set_budget(&b, &memory);
	evbuffer_add(in, line, 1000);
	smtp_data_chunk(&b, in, 1000);
	assert_int_equal(memory.used, 3000);
	evbuffer_add(in, line, 1000);
	evbuffer_add(in, line, 1000);
	smtp_data_chunk(&b, in, 2000);
	assert_int_equal(b.error, SMTP_DATA_NO_MEMORY);
	assert_int_equal(memory.used, 2000);
	assert_int_equal(evbuffer_get_length(in), 0);

	smtp_data_release(&a);
	assert_int_equal(memory.used, 0);
	smtp_data_release(&a); /* twice is harmless */
	assert_int_equal(memory.used, 0);
	evbuffer_free(in);
	evbuffer_free(body);
	evbuffer_free(body2);
}

/* A test spool: an evbuffer, with switches to fail opening or writing. */
struct test_spill {
	struct evbuffer *out;
	bool opened, fail_open, fail_write;
};

static bool test_spill_open(void *arg)
{
	struct test_spill *t = arg;
	t->opened = true;
	return !t->fail_open;
}

static bool test_spill_write(void *arg, const void *p, size_t n)
{
	struct test_spill *t = arg;
	return !t->fail_write && evbuffer_add(t->out, p, n) == 0;
}

/* Feeds a message of about total octets (a header section, then 998-octet lines) by DATA or BDAT. */
static enum smtp_data_error spill_run(struct test_spill *t, struct budget *memory, size_t total, bool bdat,
				      bool header_end, struct evbuffer *body, struct evbuffer *expect)
{
	struct smtp_data_spill spill = {test_spill_open, test_spill_write, t};
	struct evbuffer *in = evbuffer_new();
	struct smtp_data d;
	char line[1000];

	smtp_data_begin(&d, body, 1 << 24);
	smtp_data_set_budget(&d, memory);
	smtp_data_set_spill(&d, &spill, SMTP_DATA_MEMORY_MAX);
	evbuffer_add_printf(expect, "Subject: large\r\nX-Test: spill\r\n%s", header_end ? "\r\n" : "");
	memset(line, header_end ? 'b' : 'h', 998);
	if (!header_end)
		memcpy(line, "X-Long: ", 8);
	memcpy(line + 998, "\r\n", 2);
	while (evbuffer_get_length(expect) < total)
		evbuffer_add(expect, line, 1000);
	size_t len = evbuffer_get_length(expect);
	const char *all = (const char *)evbuffer_pullup(expect, -1);
	for (size_t off = 0; off < len; off += 4096) { /* arrives in pieces, as from a socket */
		size_t n = len - off < 4096 ? len - off : 4096;
		evbuffer_add(in, all + off, n);
		if (bdat)
			smtp_data_chunk(&d, in, n);
		else
			assert_int_equal(smtp_data_read(&d, in), SMTP_DATA_MORE);
	}
	if (bdat) {
		smtp_data_chunk_finish(&d);
	} else {
		evbuffer_add(in, ".\r\n", 3);
		assert_int_equal(smtp_data_read(&d, in), SMTP_DATA_END);
	}
	assert_int_equal(evbuffer_get_length(in), 0);
	assert_int_equal(d.spilled, evbuffer_get_length(t->out));
	if (d.error == SMTP_DATA_OK)
		assert_int_equal(memory->used, evbuffer_get_length(body)); /* only what is in memory is charged */
	smtp_data_release(&d);
	evbuffer_free(in);
	return d.error;
}

/* A body past SMTP_DATA_MEMORY_MAX goes on into the spool after the header section; memory then
 * holds the header section only, and header section + spool is the message, byte for byte. */
static void test_spill(void **state)
{
	(void)state;
	for (int bdat = 0; bdat <= 1; bdat++) {
		struct budget memory = {0, 64 << 20};
		struct test_spill t = {evbuffer_new(), false, false, false};
		struct evbuffer *body = evbuffer_new(), *expect = evbuffer_new();
		assert_int_equal(spill_run(&t, &memory, 3 * SMTP_DATA_MEMORY_MAX, bdat, true, body, expect), SMTP_DATA_OK);
		assert_true(t.opened);
		size_t head = evbuffer_get_length(body);
		assert_int_equal(head, strlen("Subject: large\r\nX-Test: spill\r\n\r\n"));
		assert_int_equal(head + evbuffer_get_length(t.out), evbuffer_get_length(expect));
		evbuffer_add_buffer(body, t.out);
		assert_memory_equal(evbuffer_pullup(body, -1), evbuffer_pullup(expect, -1), evbuffer_get_length(expect));
		assert_int_equal(memory.used, 0);
		evbuffer_free(body);
		evbuffer_free(expect);
		evbuffer_free(t.out);
	}
	/* a small message never opens a spool */
	struct budget memory = {0, 0};
	struct test_spill t = {evbuffer_new(), false, false, false};
	struct evbuffer *body = evbuffer_new(), *expect = evbuffer_new();
	assert_int_equal(spill_run(&t, &memory, SMTP_DATA_MEMORY_MAX / 2, false, true, body, expect), SMTP_DATA_OK);
	assert_false(t.opened);
	assert_int_equal(evbuffer_get_length(body), evbuffer_get_length(expect));
	evbuffer_free(body);
	evbuffer_free(expect);
	evbuffer_free(t.out);
}

/* A header section that never ends stays in memory (the budget bounds it); a spool that cannot be
 * made or written fails the message (451 later), never truncates it. */
static void test_spill_edges(void **state)
{
	(void)state;
	struct budget memory = {0, 64 << 20};
	struct test_spill t = {evbuffer_new(), false, false, false};
	struct evbuffer *body = evbuffer_new(), *expect = evbuffer_new();
	assert_int_equal(spill_run(&t, &memory, 2 * SMTP_DATA_MEMORY_MAX, false, false, body, expect), SMTP_DATA_OK);
	assert_false(t.opened);
	assert_int_equal(evbuffer_get_length(body), evbuffer_get_length(expect));
	for (int i = 0; i < 2; i++) {
		evbuffer_drain(body, evbuffer_get_length(body));
		evbuffer_drain(expect, evbuffer_get_length(expect));
		evbuffer_drain(t.out, evbuffer_get_length(t.out));
		t.fail_open = i == 0;
		t.fail_write = i == 1;
		assert_int_equal(spill_run(&t, &memory, 2 * SMTP_DATA_MEMORY_MAX, i, true, body, expect),
				 SMTP_DATA_SPILL_FAILED);
		assert_int_equal(evbuffer_get_length(body), 0);
		assert_int_equal(memory.used, 0);
	}
	evbuffer_free(body);
	evbuffer_free(expect);
	evbuffer_free(t.out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple_and_unstuffing),
		cmocka_unit_test(test_memory_budget),
		cmocka_unit_test(test_spill),
		cmocka_unit_test(test_spill_edges),
		cmocka_unit_test(test_empty_message),
		cmocka_unit_test(test_pipelined_commands_stay),
		cmocka_unit_test(test_incomplete_waits),
		cmocka_unit_test(test_smuggling_sequences),
		cmocka_unit_test(test_bare_lf_and_cr_in_lines),
		cmocka_unit_test(test_line_limits),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_nul),
		cmocka_unit_test(test_bdat_chunks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
