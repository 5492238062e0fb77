/* test_dkim_canon.c — RFC 6376 §3.4 canonicalization: the §3.4.5 examples, the edge cases of the
 * body algorithms (empty bodies, trailing lines and whitespace, a missing final CRLF), streaming in
 * pieces of every size, and the body hash with l=. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/dkim_canon.h"
#include "util/header.h"
#include "test_util.h"

struct buf {
	char data[4096];
	size_t len;
};

static void buf_sink(void *arg, const void *data, size_t len)
{
	struct buf *b = arg;
	assert_true(b->len + len <= sizeof(b->data));
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

static void expect(const struct buf *b, const char *want, const char *what)
{
	char e1[4096 * 4 + 8], e2[4096 * 4 + 8];
	if (b->len != strlen(want) || memcmp(b->data, want, b->len) != 0)
		fail_msg("%s: got \"%s\", want \"%s\"", what, test_escape(b->data, b->len, e1, sizeof(e1)),
			 test_escape(want, strlen(want), e2, sizeof(e2)));
}

/* Every header field of msg canonicalized, one after the other. */
static void canon_headers(enum dkim_canon c, const char *msg, struct buf *out)
{
	size_t pos = 0, len = strlen(msg);
	struct header_field f;
	char *copy = test_dup(msg, len);
	out->len = 0;
	while (header_next(copy, len, &pos, &f))
		dkim_canon_header(c, f.raw, f.raw_len, true, buf_sink, out);
	free(copy);
}

/* The body canonicalized in one piece, and again cut in pieces of every size from 1 up: the
 * result must not depend on where the pieces end. */
static void check_body(enum dkim_canon c, const char *body, size_t len, const char *want)
{
	char what[160], esc[128];
	snprintf(what, sizeof(what), "%s body \"%s\"", dkim_canon_str(c), test_escape(body, len, esc, sizeof(esc)));
	char *copy = test_dup(body, len);
	for (size_t piece = 0; piece <= len; piece++) {
		struct buf out = {.len = 0};
		struct dkim_body_canon b;
		dkim_body_canon_init(&b, c, buf_sink, &out);
		if (piece == 0) {
			dkim_body_canon_update(&b, copy, len);
		} else {
			for (size_t i = 0; i < len; i += piece)
				dkim_body_canon_update(&b, copy + i, len - i < piece ? len - i : piece);
		}
		dkim_body_canon_final(&b);
		expect(&out, want, what);
	}
	free(copy);
}

#define BODY(c, s, want) check_body(c, s, sizeof(s) - 1, want)

static const char rfc_example[] = "A: X\r\n"
				  "B : Y\t\r\n"
				  "\tZ  \r\n"
				  "\r\n"
				  " C \r\n"
				  "D \t E\r\n"
				  "\r\n"
				  "\r\n";

/* RFC 6376 §3.4.5, examples 1-3 */
static void test_rfc6376_example(void **state)
{
	struct buf out;
	size_t body = header_body_offset(rfc_example, strlen(rfc_example));
	canon_headers(DKIM_CANON_RELAXED, rfc_example, &out);
	expect(&out, "a:X\r\nb:Y Z\r\n", "relaxed header");
	canon_headers(DKIM_CANON_SIMPLE, rfc_example, &out);
	expect(&out, "A: X\r\nB : Y\t\r\n\tZ  \r\n", "simple header");
	check_body(DKIM_CANON_RELAXED, rfc_example + body, strlen(rfc_example) - body, " C\r\nD E\r\n");
	check_body(DKIM_CANON_SIMPLE, rfc_example + body, strlen(rfc_example) - body, " C \r\nD \t E\r\n");
}

static void test_header_relaxed(void **state)
{
	struct buf out;
	/* name case, WSP around the colon, folds, trailing WSP, tabs inside */
	canon_headers(DKIM_CANON_RELAXED, "SUBJECT \t:  \r\n  Hello\t\tthere \r\n world\t \r\n", &out);
	expect(&out, "subject:Hello there world\r\n", "folded");
	canon_headers(DKIM_CANON_RELAXED, "X-Empty:\r\nX-Blank:   \r\n", &out);
	expect(&out, "x-empty:\r\nx-blank:\r\n", "empty values");
	/* a field read from a file with bare LF line ends */
	canon_headers(DKIM_CANON_RELAXED, "To: a\n b\n", &out);
	expect(&out, "to:a b\r\n", "bare LF");
	/* the DKIM-Signature field itself goes in without its CRLF */
	out.len = 0;
	dkim_canon_header(DKIM_CANON_RELAXED, "DKIM-Signature: v=1;\r\n b=", 25, false, buf_sink, &out);
	expect(&out, "dkim-signature:v=1; b=", "no final CRLF");
	out.len = 0;
	dkim_canon_header(DKIM_CANON_SIMPLE, "DKIM-Signature: v=1;\r\n b=", 25, false, buf_sink, &out);
	expect(&out, "DKIM-Signature: v=1;\r\n b=", "simple, no final CRLF");
	/* a field at the very end of a message without line end */
	out.len = 0;
	dkim_canon_header(DKIM_CANON_SIMPLE, "From: x", 7, true, buf_sink, &out);
	expect(&out, "From: x\r\n", "simple, CRLF added");
}

static void test_body_empty(void **state)
{
	/* RFC 6376 §3.4.3: no body is one CRLF in simple; §3.4.4 (erratum 1384): empty in relaxed */
	BODY(DKIM_CANON_SIMPLE, "", "\r\n");
	BODY(DKIM_CANON_RELAXED, "", "");
	BODY(DKIM_CANON_SIMPLE, "\r\n", "\r\n");
	BODY(DKIM_CANON_RELAXED, "\r\n", "");
	BODY(DKIM_CANON_SIMPLE, "\r\n\r\n\r\n", "\r\n");
	BODY(DKIM_CANON_RELAXED, "\r\n\r\n\r\n", "");
	/* lines of whitespace only are empty in relaxed, not in simple */
	BODY(DKIM_CANON_RELAXED, " \r\n\t\r\n \t \r\n", "");
	BODY(DKIM_CANON_SIMPLE, " \r\n\t\r\n", " \r\n\t\r\n");
}

static void test_body_trailing(void **state)
{
	/* trailing empty lines go; inner ones stay */
	BODY(DKIM_CANON_SIMPLE, "a\r\n\r\nb\r\n\r\n\r\n", "a\r\n\r\nb\r\n");
	BODY(DKIM_CANON_RELAXED, "a\r\n\r\nb\r\n\r\n\r\n", "a\r\n\r\nb\r\n");
	/* trailing whitespace on lines */
	BODY(DKIM_CANON_RELAXED, "a  \r\nb\t\r\n", "a\r\nb\r\n");
	BODY(DKIM_CANON_SIMPLE, "a  \r\nb\t\r\n", "a  \r\nb\t\r\n");
	BODY(DKIM_CANON_RELAXED, "a \r\n \r\nb\r\n", "a\r\n\r\nb\r\n");
	/* leading whitespace shrinks to one SP but stays */
	BODY(DKIM_CANON_RELAXED, "\t\t a\r\n", " a\r\n");
}

static void test_body_no_final_crlf(void **state)
{
	/* RFC 6376 §3.4.3, §3.4.4: a CRLF is added */
	BODY(DKIM_CANON_SIMPLE, "a\r\nb", "a\r\nb\r\n");
	BODY(DKIM_CANON_RELAXED, "a\r\nb  ", "a\r\nb\r\n");
	BODY(DKIM_CANON_RELAXED, "a\r\n\r\n  ", "a\r\n");
	BODY(DKIM_CANON_SIMPLE, "a\r\n\r\n  ", "a\r\n\r\n  \r\n");
	/* bare CR and LF are ordinary octets, not line ends */
	BODY(DKIM_CANON_SIMPLE, "a\rb\nc\r\n", "a\rb\nc\r\n");
	BODY(DKIM_CANON_RELAXED, "a\r \r\n", "a\r\r\n");
	BODY(DKIM_CANON_SIMPLE, "a\r", "a\r\r\n");
	BODY(DKIM_CANON_RELAXED, "x\r\n\r\n\r", "x\r\n\r\n\r\r\n");
}

/* The body hash of the RFC 8463 message is the bh= of its signatures. */
static void test_body_hash_rfc8463(void **state)
{
	static const char body[] = "Hi.\r\n\r\nWe lost the game.  Are you hungry yet?\r\n\r\nJoe.\r\n\r\n";
	static const unsigned char relaxed_bh[DKIM_DIGEST_SIZE] = {
		0xda, 0x35, 0x12, 0x38, 0x7f, 0x4d, 0x86, 0xd5, 0x46, 0x09, 0x05, 0x8d, 0xaf, 0xd0, 0x6b, 0x20,
		0x03, 0xeb, 0x78, 0xa4, 0x23, 0x3b, 0xa4, 0xa7, 0xed, 0x72, 0x24, 0x7c, 0x95, 0x4e, 0xce, 0xff,
	};
	unsigned char d[DKIM_DIGEST_SIZE];
	uint64_t total = 0;
	assert_true(dkim_body_hash_compute(DKIM_CANON_RELAXED, body, sizeof(body) - 1, false, 0, d, &total));
	assert_memory_equal(d, relaxed_bh, sizeof(d));
	assert_int_equal(total, 54); /* derived/body.relaxed.bin */
	/* the same through the streaming interface, one octet at a time */
	struct dkim_body_hash h;
	assert_true(dkim_body_hash_init(&h, DKIM_CANON_RELAXED, false, 0));
	for (size_t i = 0; i < sizeof(body) - 1; i++)
		dkim_body_hash_update(&h, body + i, 1);
	assert_true(dkim_body_hash_final(&h, d));
	dkim_body_hash_clear(&h);
	dkim_body_hash_clear(&h);
	assert_memory_equal(d, relaxed_bh, sizeof(d));
}

static void test_body_hash_limit(void **state)
{
	static const char body[] = "first line\r\nsecond line\r\n";
	unsigned char full[DKIM_DIGEST_SIZE], cut[DKIM_DIGEST_SIZE], want[DKIM_DIGEST_SIZE];
	uint64_t total;
	/* l= shorter than the body: the hash covers exactly the first l canonical octets */
	assert_true(dkim_body_hash_compute(DKIM_CANON_SIMPLE, body, sizeof(body) - 1, true, 12, cut, &total));
	assert_int_equal(total, sizeof(body) - 1);
	unsigned int n;
	assert_int_equal(EVP_Digest("first line\r\n", 12, want, &n, EVP_sha256(), NULL), 1);
	assert_memory_equal(cut, want, sizeof(want));
	/* l= equal to the body is the whole body */
	assert_true(dkim_body_hash_compute(DKIM_CANON_SIMPLE, body, sizeof(body) - 1, true, total, cut, NULL));
	assert_true(dkim_body_hash_compute(DKIM_CANON_SIMPLE, body, sizeof(body) - 1, false, 0, full, NULL));
	assert_memory_equal(cut, full, sizeof(full));
	/* l=0 hashes nothing */
	assert_true(dkim_body_hash_compute(DKIM_CANON_RELAXED, body, sizeof(body) - 1, true, 0, cut, &total));
	assert_int_equal(EVP_Digest("", 0, want, &n, EVP_sha256(), NULL), 1);
	assert_memory_equal(cut, want, sizeof(want));
	assert_int_equal(total, sizeof(body) - 1);
	/* the limit counts canonical octets: relaxed drops the trailing spaces before counting */
	assert_true(dkim_body_hash_compute(DKIM_CANON_RELAXED, "ab   \r\ncd\r\n", 11, true, 6, cut, &total));
	assert_int_equal(total, 8);
	assert_int_equal(EVP_Digest("ab\r\ncd", 6, want, &n, EVP_sha256(), NULL), 1);
	assert_memory_equal(cut, want, sizeof(want));
}

static void test_names(void **state)
{
	assert_string_equal(dkim_canon_str(DKIM_CANON_SIMPLE), "simple");
	assert_string_equal(dkim_canon_str(DKIM_CANON_RELAXED), "relaxed");
	assert_string_equal(dkim_canon_str((enum dkim_canon)7), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc6376_example),
		cmocka_unit_test(test_header_relaxed),
		cmocka_unit_test(test_body_empty),
		cmocka_unit_test(test_body_trailing),
		cmocka_unit_test(test_body_no_final_crlf),
		cmocka_unit_test(test_body_hash_rfc8463),
		cmocka_unit_test(test_body_hash_limit),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
