/* data.c — DATA and BDAT content: line splitting on CRLF only, dot-unstuffing, limits. */
#include "smtp/data.h"

#include <event2/buffer.h>
#include <string.h>

#include "net/line.h"
#include "util/budget.h"

const char *smtp_data_error_str(enum smtp_data_error e)
{
	switch (e) {
	case SMTP_DATA_OK: return "ok";
	case SMTP_DATA_TOO_BIG: return "too_big";
	case SMTP_DATA_LINE_TOO_LONG: return "line_too_long";
	case SMTP_DATA_NUL: return "nul_octet";
	case SMTP_DATA_BARE: return "bare_cr_lf";
	case SMTP_DATA_NO_MEMORY: return "memory_in_flight";
	case SMTP_DATA_SPILL_FAILED: return "spool_failed";
	}
	return "?";
}

void smtp_data_begin(struct smtp_data *d, struct evbuffer *body, uint64_t max_size)
{
	memset(d, 0, sizeof(*d));
	d->body = body;
	d->max_size = max_size;
}

void smtp_data_set_budget(struct smtp_data *d, struct budget *memory)
{
	d->memory = memory;
}

void smtp_data_set_spill(struct smtp_data *d, const struct smtp_data_spill *spill, size_t memory_max)
{
	d->spill = spill;
	d->spill_every = memory_max > 0 ? memory_max : 1;
	d->spill_try = d->spill_every;
}

void smtp_data_release(struct smtp_data *d)
{
	if (d->memory != NULL)
		budget_give(d->memory, d->charged);
	d->charged = 0;
}

static void data_fail(struct smtp_data *d, enum smtp_data_error e)
{
	if (d->error == SMTP_DATA_OK) {
		d->error = e;
		/* nothing more is kept: free what was collected right away */
		evbuffer_drain(d->body, evbuffer_get_length(d->body));
		smtp_data_release(d);
	}
}

/* Appends n octets to the spool; fails the message when they cannot be written. */
static void data_spill_write(struct smtp_data *d, const void *p, size_t n)
{
	if (!d->spill->write(d->spill->arg, p, n))
		data_fail(d, SMTP_DATA_SPILL_FAILED);
	else
		d->spilled += n;
}

/* Moves the first len octets of from to the spool; after a failed write the rest is dropped. */
static void data_spill_from(struct smtp_data *d, struct evbuffer *from, size_t len)
{
	while (len > 0 && d->error == SMTP_DATA_OK) {
		struct evbuffer_iovec v;
		evbuffer_peek(from, (ev_ssize_t)len, NULL, &v, 1);
		size_t n = v.iov_len < len ? v.iov_len : len;
		data_spill_write(d, v.iov_base, n);
		evbuffer_drain(from, n);
		len -= n;
	}
	evbuffer_drain(from, len);
}

/* Content past the header section goes on into the spool, so that a large message is held in
 * memory only up to a bound: once the body holds more than memory_max and the header section has
 * ended, what follows the empty line moves to the spool, and so does all that comes after. A header
 * section that has not ended stays in memory (within the budget), looked at again each memory_max
 * octets. */
static void data_maybe_spill(struct smtp_data *d)
{
	size_t len = evbuffer_get_length(d->body);
	if (d->spill == NULL || d->spilling || d->error != SMTP_DATA_OK || len < d->spill_try)
		return;
	struct evbuffer_ptr end = evbuffer_search(d->body, "\r\n\r\n", 4, NULL);
	if (end.pos < 0) {
		d->spill_try = len + d->spill_every;
		return;
	}
	size_t keep = (size_t)end.pos + 4;
	struct evbuffer *head = evbuffer_new();
	if (head == NULL || !d->spill->open(d->spill->arg)) {
		if (head != NULL)
			evbuffer_free(head);
		data_fail(d, SMTP_DATA_SPILL_FAILED);
		return;
	}
	evbuffer_remove_buffer(d->body, head, keep);
	d->spilling = true;
	size_t moved = evbuffer_get_length(d->body);
	uint64_t given = moved < d->charged ? moved : d->charged;
	if (d->memory != NULL) /* what goes to the spool no longer counts against memory */
		budget_give(d->memory, given);
	d->charged -= given;
	data_spill_from(d, d->body, moved);
	if (d->error == SMTP_DATA_OK) /* else nothing is kept, the header section neither */
		evbuffer_add_buffer(d->body, head);
	evbuffer_free(head);
}

/* Charges n more octets of body; fails the message when they do not fit. */
static bool data_charge(struct smtp_data *d, size_t n)
{
	if (d->memory == NULL)
		return true;
	if (!budget_take(d->memory, n)) {
		data_fail(d, SMTP_DATA_NO_MEMORY);
		return false;
	}
	d->charged += n;
	return true;
}

static void data_keep(struct smtp_data *d, const char *p, size_t n)
{
	d->size += n;
	if (d->error == SMTP_DATA_OK && d->size > d->max_size)
		data_fail(d, SMTP_DATA_TOO_BIG);
	if (d->error == SMTP_DATA_OK && memchr(p, '\0', n) != NULL)
		data_fail(d, SMTP_DATA_NUL);
	if (d->error != SMTP_DATA_OK)
		return;
	if (d->spilling) {
		data_spill_write(d, p, n);
		return;
	}
	if (data_charge(d, n)) {
		evbuffer_add(d->body, p, n);
		data_maybe_spill(d);
	}
}

enum smtp_data_status smtp_data_read(struct smtp_data *d, struct evbuffer *in)
{
	for (;;) {
		if (d->discarding) {
			size_t dropped;
			enum line_discard st = line_discard(in, &d->discard_cr, &dropped);
			d->size += dropped;
			if (st == LINE_DISCARD_BARE_EOL)
				return SMTP_DATA_BARE_EOL;
			if (st == LINE_DISCARD_MORE)
				return SMTP_DATA_MORE;
			d->discarding = false;
			continue;
		}
		size_t avail = evbuffer_get_length(in);
		if (avail == 0)
			return SMTP_DATA_MORE;
		ssize_t lf = line_find_lf(in, SMTP_TEXT_LINE_MAX);
		if (lf < 0) {
			if (avail < SMTP_TEXT_LINE_MAX) {
				/* an incomplete line; a bare CR in it is already certain */
				const char *p = (const char *)evbuffer_pullup(in, -1);
				if (line_has_bare_cr(p, avail - 1, p[avail - 1]))
					return SMTP_DATA_BARE_EOL;
				return SMTP_DATA_MORE;
			}
			data_fail(d, SMTP_DATA_LINE_TOO_LONG);
			d->discarding = true;
			continue;
		}
		size_t n = (size_t)lf + 1; /* the line with its LF */
		const char *line = (const char *)evbuffer_pullup(in, (ssize_t)n);
		/* RFC 5321 §2.3.8: only CRLF ends a line; a bare LF or CR is never a line end here */
		if (n < 2 || line[n - 2] != '\r' || line_has_bare_cr(line, n - 2, 'x'))
			return SMTP_DATA_BARE_EOL;
		if (n == 3 && line[0] == '.') {
			evbuffer_drain(in, 3);
			return SMTP_DATA_END;
		}
		if (n > SMTP_TEXT_LINE_MAX)
			data_fail(d, SMTP_DATA_LINE_TOO_LONG);
		/* RFC 5321 §4.5.2: the first character of a line that starts with a dot is removed */
		size_t skip = line[0] == '.' ? 1 : 0;
		data_keep(d, line + skip, n - skip);
		evbuffer_drain(in, n);
	}
}

void smtp_data_chunk(struct smtp_data *d, struct evbuffer *in, size_t len)
{
	/* Check the octets where they lie, then move them without copying. */
	struct evbuffer_ptr start;
	evbuffer_ptr_set(in, &start, 0, EVBUFFER_PTR_SET);
	int nvec = evbuffer_peek(in, (ssize_t)len, &start, NULL, 0);
	struct evbuffer_iovec vecs[nvec > 0 ? nvec : 1];
	nvec = evbuffer_peek(in, (ssize_t)len, &start, vecs, nvec);
	size_t left = len;

	for (int i = 0; i < nvec && left > 0 && d->error == SMTP_DATA_OK; i++) {
		const unsigned char *p = vecs[i].iov_base;
		size_t n = vecs[i].iov_len < left ? vecs[i].iov_len : left;
		left -= n;
		for (size_t j = 0; j < n; j++) {
			unsigned char c = p[j];
			/* RFC 5321 §2.3.8: CR only as part of CRLF, LF only after CR */
			if (d->chunk_cr != (c == '\n')) {
				data_fail(d, SMTP_DATA_BARE);
				break;
			}
			d->chunk_cr = c == '\r';
			if (c == '\n')
				d->line_len = 0;
			else if (c == '\0')
				data_fail(d, SMTP_DATA_NUL);
			else if (c != '\r' && ++d->line_len > SMTP_TEXT_LINE_MAX - 2)
				data_fail(d, SMTP_DATA_LINE_TOO_LONG);
			if (d->error != SMTP_DATA_OK)
				break;
		}
	}
	d->size += len;
	if (d->error == SMTP_DATA_OK && d->size > d->max_size)
		data_fail(d, SMTP_DATA_TOO_BIG);
	if (d->error == SMTP_DATA_OK && d->spilling) {
		data_spill_from(d, in, len);
	} else if (d->error == SMTP_DATA_OK && data_charge(d, len)) {
		evbuffer_remove_buffer(in, d->body, len);
		data_maybe_spill(d);
	} else {
		evbuffer_drain(in, len);
	}
}

void smtp_data_chunk_finish(struct smtp_data *d)
{
	if (d->error != SMTP_DATA_OK)
		return;
	if (d->chunk_cr) /* the content ends in a CR with no LF after it */
		data_fail(d, SMTP_DATA_BARE);
	else if (d->line_len > 0 && d->spilling) /* a message always ends with a complete line */
		data_spill_write(d, "\r\n", 2);
	else if (d->line_len > 0)
		evbuffer_add(d->body, "\r\n", 2);
}
