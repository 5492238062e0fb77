/* fuzz_smtp_reply.c — libFuzzer harness for src/delivery/client_parse.c: the input is what a server
 * sends. It goes through the reply parser reply after reply (each line of a 2xx also through the EHLO
 * keyword parser), once whole and once cut at a point the input chooses, which must agree; then
 * through the DATA encoder, whose output must be safe for the wire whatever the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "delivery/client_parse.h"

/* Not assert(): it must hold in every build. */
#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			__builtin_trap(); \
	} while (0)

static void fuzz_check_reply(const struct delivery_reply *r, const char *base, size_t size)
{
	FUZZ_CHECK(r->code >= 200 && r->code <= 599);
	FUZZ_CHECK(r->lines >= 1 && r->lines <= DELIVERY_REPLY_LINES_MAX);
	FUZZ_CHECK(r->text_len < DELIVERY_REPLY_TEXT_MAX && strlen(r->text) == r->text_len);
	for (size_t i = 0; i < r->text_len; i++)
		FUZZ_CHECK(r->text[i] >= 0x20 && r->text[i] < 0x7f);
	size_t el = strnlen(r->enh, DELIVERY_ENH_MAX);
	FUZZ_CHECK(el < DELIVERY_ENH_MAX);
	if (el > 0) {
		/* class.subject.detail, class = the code's first digit (RFC 3463, RFC 2034) */
		FUZZ_CHECK(el >= 5 && r->enh[0] == '0' + r->code / 100 && r->enh[1] == '.');
		unsigned dots = 0;
		for (size_t i = 2; i < el; i++) {
			FUZZ_CHECK((r->enh[i] >= '0' && r->enh[i] <= '9') || r->enh[i] == '.');
			dots += r->enh[i] == '.';
		}
		FUZZ_CHECK(dots == 1);
	}
	FUZZ_CHECK(r->line >= base && r->line + r->line_len <= base + size);
}

/* Parses every reply in p; returns the octets consumed in all and the last status. */
static size_t fuzz_replies(const char *p, size_t size, enum delivery_reply_status *last_r)
{
	struct delivery_reply r;
	struct delivery_ehlo e;
	size_t off = 0;
	delivery_reply_init(&r);
	delivery_ehlo_init(&e);
	for (;;) {
		size_t used = 7;
		const char *err = NULL;
		enum delivery_reply_status st = delivery_reply_feed(&r, p + off, size - off, &used, &err);
		*last_r = st;
		if (st != DELIVERY_REPLY_LINE && st != DELIVERY_REPLY_DONE) {
			FUZZ_CHECK(used == 0);
			FUZZ_CHECK(st == DELIVERY_REPLY_MORE || err != NULL);
			FUZZ_CHECK(delivery_reply_status_str(st)[0] != '?');
			return off;
		}
		FUZZ_CHECK(used >= 3 && used <= size - off && used <= DELIVERY_REPLY_LINE_MAX);
		FUZZ_CHECK(p[off + used - 1] == '\n' && p[off + used - 2] == '\r');
		fuzz_check_reply(&r, p, size);
		if (r.code / 100 == 2) {
			delivery_ehlo_line(&e, r.line, r.line_len);
			FUZZ_CHECK((e.auth & ~(unsigned)(DELIVERY_AUTH_PLAIN | DELIVERY_AUTH_LOGIN)) == 0);
			FUZZ_CHECK(e.size || e.size_max == 0);
		}
		off += used;
		enum result res = delivery_reply_result(&r);
		FUZZ_CHECK(res == RESULT_OK || res == RESULT_TEMPFAIL || res == RESULT_PERMFAIL);
		if (st == DELIVERY_REPLY_DONE) {
			delivery_reply_init(&r);
			delivery_ehlo_init(&e);
		}
	}
}

static void fuzz_check_wire(const char *w, size_t n)
{
	FUZZ_CHECK(n >= 3 && memcmp(w + n - 3, ".\r\n", 3) == 0);
	for (size_t i = 0; i < n; i++) {
		FUZZ_CHECK(w[i] != '\0');
		if (w[i] == '\r')
			FUZZ_CHECK(i + 1 < n && w[i + 1] == '\n');
		if (w[i] == '\n')
			FUZZ_CHECK(i > 0 && w[i - 1] == '\r');
		/* RFC 5321 §4.5.2: before the end line, a line that starts with '.' starts with ".." */
		if (i < n - 3 && (i == 0 || w[i - 1] == '\n') && w[i] == '.')
			FUZZ_CHECK(i + 1 < n - 3 && w[i + 1] == '.');
	}
	FUZZ_CHECK(n == 3 || (w[n - 5] == '\r' && w[n - 4] == '\n'));
}

static size_t fuzz_encode(const uint8_t *data, size_t size, size_t piece, size_t room, bool stuff, char *out)
{
	struct delivery_dot d;
	delivery_dot_init(&d, stuff);
	size_t off = 0, o = 0;
	while (off < size) {
		size_t n = size - off < piece ? size - off : piece;
		size_t used;
		o += delivery_dot_encode(&d, data + off, n, &used, out + o, room);
		FUZZ_CHECK(used <= n);
		off += used;
	}
	o += delivery_dot_finish(&d, out + o, DELIVERY_DOT_FINISH_MAX);
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;

	/* replies: whole, then cut where the first octet says; a prefix agrees with the whole */
	enum delivery_reply_status st_all, st_cut;
	size_t all = fuzz_replies(p, size, &st_all);
	size_t cut = size > 0 ? (size_t)data[0] * size / 256 : 0;
	size_t part = fuzz_replies(p, cut, &st_cut);
	FUZZ_CHECK(part <= all);
	if (st_cut != DELIVERY_REPLY_MORE)
		FUZZ_CHECK(part == all && st_cut == st_all); /* an error is seen the same in any longer input */

	/* the DATA encoder: any split, the same bytes, safe for the wire */
	if (size > 64 * 1024)
		return 0;
	char *whole = malloc(2 * size + DELIVERY_DOT_FINISH_MAX);
	char *pieces = malloc(2 * size + DELIVERY_DOT_FINISH_MAX + 8);
	if (whole == NULL || pieces == NULL) {
		free(whole);
		free(pieces);
		return 0;
	}
	size_t n1 = fuzz_encode(data, size, size ? size : 1, 2 * size + 2, true, whole);
	size_t piece = size > 1 ? 1 + data[1] % 7 : 1;
	size_t n2 = fuzz_encode(data, size, piece, DELIVERY_DOT_EXPANSION + (size > 2 ? data[2] % 5 : 0), true, pieces);
	FUZZ_CHECK(n1 == n2 && memcmp(whole, pieces, n1) == 0);
	fuzz_check_wire(whole, n1);
	/* without stuffing: the SIZE value is the normalised length */
	bool eight;
	uint64_t sz = delivery_dot_size(data, size, &eight);
	size_t n3 = fuzz_encode(data, size, size ? size : 1, 2 * size + 2, false, pieces);
	FUZZ_CHECK(sz == n3);
	FUZZ_CHECK(n1 >= n3 + 3);
	free(whole);
	free(pieces);
	return 0;
}
