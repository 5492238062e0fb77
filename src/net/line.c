/* line.c — CRLF line framing over an evbuffer (see line.h). */
#include "net/line.h"

#include <event2/buffer.h>
#include <string.h>

bool line_has_bare_cr(const char *p, size_t n, char next)
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

ssize_t line_find_lf(struct evbuffer *in, size_t limit)
{
	struct evbuffer_ptr pos = evbuffer_search_range(in, "\n", 1, NULL, NULL);
	if (pos.pos < 0 || (size_t)pos.pos >= limit)
		return -1;
	return pos.pos;
}

enum line_take line_take(struct evbuffer *in, char *buf, size_t max, size_t *len_r)
{
	ssize_t lf = line_find_lf(in, max);

	if (lf < 0)
		return evbuffer_get_length(in) < max ? LINE_TAKE_MORE : LINE_TAKE_TOO_LONG;
	size_t n = (size_t)lf + 1;
	evbuffer_remove(in, buf, n);
	if (n < 2 || buf[n - 2] != '\r' || memchr(buf, '\r', n - 2) != NULL) {
		explicit_bzero(buf, n); /* it may have been a password */
		return LINE_TAKE_BARE_EOL;
	}
	*len_r = n - 2;
	buf[n - 2] = '\0';
	return LINE_TAKE_OK;
}

enum line_discard line_discard(struct evbuffer *in, bool *cr, size_t *dropped_r)
{
	size_t avail = evbuffer_get_length(in);
	ssize_t lf = line_find_lf(in, avail);
	size_t n = lf < 0 ? avail : (size_t)lf;
	const char *p = (const char *)evbuffer_pullup(in, (ssize_t)(lf < 0 ? n : n + 1));

	*dropped_r = 0;
	if (n > 0) {
		if (*cr) /* a CR dropped last time must be followed by the LF that ends the line */
			return LINE_DISCARD_BARE_EOL;
		/* every CR before the last octet is bare; the last one is judged by what follows */
		if (line_has_bare_cr(p, n - 1, p[n - 1]))
			return LINE_DISCARD_BARE_EOL;
		if (lf >= 0 && p[n - 1] != '\r')
			return LINE_DISCARD_BARE_EOL; /* the over-long line ends in a bare LF */
		*cr = p[n - 1] == '\r';
	} else if (lf >= 0 && !*cr) {
		return LINE_DISCARD_BARE_EOL; /* LF right after dropped non-CR octets */
	}
	*dropped_r = n;
	evbuffer_drain(in, lf < 0 ? n : n + 1);
	if (lf < 0)
		return LINE_DISCARD_MORE;
	*cr = false;
	return LINE_DISCARD_DONE;
}
