/* fuzz_smtp_data.c — the DATA reader and the BDAT chunk checker on arbitrary bytes, fed in pieces
 * whose sizes come from the input, so that line ends split across reads are exercised. Invariants:
 * the body never holds a bare CR or LF, never a line over 1000 octets, and never more than the limit;
 * and with a spill at a small threshold the content (body + spill) and the verdict are the same. */
#include <event2/buffer.h>
#include <stdbool.h>
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

static bool spill_open(void *arg)
{
	(void)arg;
	return true;
}

static bool spill_write(void *arg, const void *p, size_t n)
{
	return evbuffer_add(arg, p, n) == 0;
}

struct outcome {
	enum smtp_data_error error;
	struct evbuffer *content; /* body, then what was spilled */
};

/* One pass over the input; with spill_at > 0 the body past that many octets goes to a spill. */
static struct outcome run(const uint8_t *data, size_t size, unsigned piece, int bdat, size_t spill_at)
{
	struct evbuffer *in = evbuffer_new();
	struct evbuffer *body = evbuffer_new();
	struct evbuffer *spilled = evbuffer_new();
	struct smtp_data_spill spill = {spill_open, spill_write, spilled};
	struct smtp_data d;
	uint64_t max = 4096;
	smtp_data_begin(&d, body, max);
	if (spill_at > 0)
		smtp_data_set_spill(&d, &spill, spill_at);
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
	if (d.error == SMTP_DATA_OK && spill_at == 0)
		check_body(body, max + 2);
	if (d.spilled != evbuffer_get_length(spilled))
		abort();
	evbuffer_add_buffer(body, spilled);
	evbuffer_free(spilled);
	evbuffer_free(in);
	return (struct outcome){d.error, body};
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	unsigned piece = data[0] % 64 + 1;
	int bdat = data[1] & 1;
	size_t spill_at = data[2] % 128 + 1;
	data += 3;
	size -= 3;
	/* spilling changes where the content is kept, never what it is or whether it is accepted */
	struct outcome whole = run(data, size, piece, bdat, 0);
	struct outcome split = run(data, size, piece, bdat, spill_at);
	if (whole.error != split.error)
		abort();
	size_t len = evbuffer_get_length(whole.content);
	if (whole.error == SMTP_DATA_OK &&
	    (len != evbuffer_get_length(split.content) ||
	     (len > 0 && memcmp(evbuffer_pullup(whole.content, -1), evbuffer_pullup(split.content, -1), len) != 0)))
		abort();
	evbuffer_free(whole.content);
	evbuffer_free(split.content);
	return 0;
}
