/* fuzz_smtp_data.c — the DATA reader and the BDAT chunk checker on arbitrary bytes, fed in pieces
 * whose sizes come from the input, so that line ends split across reads are exercised. Invariants:
 * the body never holds a bare CR or LF, never a line over 1000 octets, and never more than the limit. */
#include <event2/buffer.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/data.h"

static void check_body(struct evbuffer *body, uint64_t max)
{
	size_t len = evbuffer_get_length(body);
	if (len > max)
		abort();
	const unsigned char *p = evbuffer_pullup(body, -1);
	size_t line = 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\r' && (i + 1 >= len || p[i + 1] != '\n'))
			abort();
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			abort();
		line = p[i] == '\n' ? 0 : line + 1;
		if (line > SMTP_TEXT_LINE_MAX)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	unsigned piece = data[0] % 64 + 1;
	int bdat = data[1] & 1;
	data += 2;
	size -= 2;
	struct evbuffer *in = evbuffer_new();
	struct evbuffer *body = evbuffer_new();
	struct smtp_data d;
	uint64_t max = 4096;
	smtp_data_begin(&d, body, max);
	for (size_t off = 0; off < size; off += piece) {
		size_t n = size - off < piece ? size - off : piece;
		evbuffer_add(in, data + off, n);
		if (bdat) {
			smtp_data_chunk(&d, in, evbuffer_get_length(in));
			continue;
		}
		enum smtp_data_status st = smtp_data_read(&d, in);
		if (st != SMTP_DATA_MORE)
			break;
	}
	if (bdat)
		smtp_data_chunk_finish(&d);
	if (d.error == SMTP_DATA_OK)
		check_body(body, max + 2);
	evbuffer_free(in);
	evbuffer_free(body);
	return 0;
}
