/* data.c — DATA and BDAT content: line splitting on CRLF only, dot-unstuffing, limits. */
#include "smtp/data.h"

#include <event2/buffer.h>
#include <string.h>

const char *smtp_data_error_str(enum smtp_data_error e)
{
	switch (e) {
	case SMTP_DATA_OK: return "ok";
	case SMTP_DATA_TOO_BIG: return "too_big";
	case SMTP_DATA_LINE_TOO_LONG: return "line_too_long";
	case SMTP_DATA_NUL: return "nul_octet";
	case SMTP_DATA_BARE: return "bare_cr_lf";
	}
	return "?";
}

void smtp_data_begin(struct smtp_data *d, struct evbuffer *body, uint64_t max_size)
{
	memset(d, 0, sizeof(*d));
	d->body = body;
	d->max_size = max_size;
}

static void data_fail(struct smtp_data *d, enum smtp_data_error e)
{
	if (d->error == SMTP_DATA_OK) {
		d->error = e;
		/* nothing more is kept: free what was collected right away */
		evbuffer_drain(d->body, evbuffer_get_length(d->body));
	}
}

static void data_keep(struct smtp_data *d, const char *p, size_t n)
{
	d->size += n;
	if (d->error == SMTP_DATA_OK && d->size > d->max_size)
		data_fail(d, SMTP_DATA_TOO_BIG);
	if (d->error == SMTP_DATA_OK && memchr(p, '\0', n) != NULL)
		data_fail(d, SMTP_DATA_NUL);
	if (d->error == SMTP_DATA_OK)
		evbuffer_add(d->body, p, n);
}

/* true when some CR in p[0..n) is not followed by LF; a CR at p[n-1] is judged by next. */
static bool has_bare_cr(const char *p, size_t n, char next)
{
	const char *cr = p;
	while ((cr = memchr(cr, '\r', (size_t)(p + n - cr))) != NULL) {
		char after = cr + 1 < p + n ? cr[1] : next;
		if (after != '\n')
			return true;
		cr++;
	}
	return false;
}

/* Position of the first LF among the first `limit` octets of in, or -1. */
static ssize_t find_lf(struct evbuffer *in, size_t limit)
{
	struct evbuffer_ptr pos = evbuffer_search_range(in, "\n", 1, NULL, NULL);
	if (pos.pos < 0 || (size_t)pos.pos >= limit)
		return -1;
	return pos.pos;
}

enum smtp_data_status smtp_line_discard(struct evbuffer *in, bool *cr_r, bool *done_r, size_t *dropped_r)
{
	size_t avail = evbuffer_get_length(in);
	ssize_t lf = find_lf(in, avail);
	size_t n = lf < 0 ? avail : (size_t)lf;
	const char *p = (const char *)evbuffer_pullup(in, (ssize_t)(lf < 0 ? n : n + 1));

	*done_r = false;
	*dropped_r = 0;
	if (n > 0) {
		if (*cr_r) /* a CR dropped last time must be followed by the LF that ends the line */
			return SMTP_DATA_BARE_EOL;
		/* no LF in range: every CR before the last octet is bare */
		if (has_bare_cr(p, n - 1, p[n - 1]))
			return SMTP_DATA_BARE_EOL;
		if (lf >= 0 && p[n - 1] != '\r')
			return SMTP_DATA_BARE_EOL; /* the over-long line ends in a bare LF */
		*cr_r = p[n - 1] == '\r';
	} else if (lf >= 0 && !*cr_r) {
		return SMTP_DATA_BARE_EOL; /* LF right after dropped non-CR octets */
	}
	*dropped_r = n;
	evbuffer_drain(in, lf < 0 ? n : n + 1);
	if (lf >= 0) {
		*cr_r = false;
		*done_r = true;
	}
	return SMTP_DATA_MORE;
}

enum smtp_data_status smtp_data_read(struct smtp_data *d, struct evbuffer *in)
{
	for (;;) {
		if (d->discarding) {
			bool done;
			size_t dropped;
			enum smtp_data_status st = smtp_line_discard(in, &d->discard_cr, &done, &dropped);
			d->size += dropped;
			if (st != SMTP_DATA_MORE || !done)
				return st;
			d->discarding = false;
			continue;
		}
		size_t avail = evbuffer_get_length(in);
		if (avail == 0)
			return SMTP_DATA_MORE;
		ssize_t lf = find_lf(in, SMTP_TEXT_LINE_MAX);
		if (lf < 0) {
			if (avail < SMTP_TEXT_LINE_MAX) {
				/* an incomplete line; a bare CR in it is already certain */
				const char *p = (const char *)evbuffer_pullup(in, -1);
				if (has_bare_cr(p, avail - 1, p[avail - 1]))
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
		if (n < 2 || line[n - 2] != '\r' || has_bare_cr(line, n - 2, 'x'))
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
	if (d->error == SMTP_DATA_OK)
		evbuffer_remove_buffer(in, d->body, len);
	else
		evbuffer_drain(in, len);
}

void smtp_data_chunk_finish(struct smtp_data *d)
{
	if (d->error != SMTP_DATA_OK)
		return;
	if (d->chunk_cr) /* the content ends in a CR with no LF after it */
		data_fail(d, SMTP_DATA_BARE);
	else if (d->line_len > 0) /* a message always ends with a complete line */
		evbuffer_add(d->body, "\r\n", 2);
}
