/* header.c — RFC 5322 §2.2 header section walking. */
#include "util/header.h"

#include <string.h>
#include <strings.h>

/* The length of the line at p, its line end included. */
static size_t line_len(const char *p, size_t rest)
{
	const char *lf = memchr(p, '\n', rest);
	return lf != NULL ? (size_t)(lf - p) + 1 : rest;
}

static bool line_is_empty(const char *p, size_t llen)
{
	return (llen == 1 && p[0] == '\n') || (llen == 2 && p[0] == '\r' && p[1] == '\n') ||
	       (llen == 1 && p[0] == '\r');
}

/* The length of the line end at the end of a line of length llen (2 for CRLF, 1 for LF, else 0). */
static size_t line_end_len(const char *p, size_t llen)
{
	if (llen >= 2 && p[llen - 2] == '\r' && p[llen - 1] == '\n')
		return 2;
	return llen >= 1 && p[llen - 1] == '\n' ? 1 : 0;
}

bool header_next(const char *msg, size_t len, size_t *pos, struct header_field *f_r)
{
	size_t start = *pos;
	if (start >= len)
		return false;
	const char *p = msg + start;
	size_t llen = line_len(p, len - start);
	if (line_is_empty(p, llen))
		return false;
	if ((p[0] == ' ' || p[0] == '\t') && start != 0)
		return false;
	/* RFC 5322 §2.2.3: the field goes on while the next line starts with WSP */
	size_t end = start + llen;
	while (end < len && (msg[end] == ' ' || msg[end] == '\t'))
		end += line_len(msg + end, len - end);

	memset(f_r, 0, sizeof(*f_r));
	f_r->raw = p;
	f_r->raw_len = end - start;
	const char *colon = memchr(p, ':', llen);
	if (colon != NULL && p[0] != ' ' && p[0] != '\t') {
		size_t nlen = (size_t)(colon - p);
		while (nlen > 0 && (p[nlen - 1] == ' ' || p[nlen - 1] == '\t'))
			nlen--;
		f_r->name = p;
		f_r->name_len = nlen;
		f_r->value = colon + 1;
		const char *last = msg + end; /* find the last line's end */
		size_t lastlen = 0;
		for (const char *q = p; q < last; q += lastlen)
			lastlen = line_len(q, (size_t)(last - q));
		f_r->value_len = (size_t)(last - f_r->value) - line_end_len(last - lastlen, lastlen);
	} else {
		f_r->name = p;
		f_r->value = p;
	}
	*pos = end;
	return true;
}

bool header_is(const struct header_field *f, const char *name)
{
	size_t n = strlen(name);
	return f->name_len == n && n > 0 && strncasecmp(f->name, name, n) == 0;
}

size_t header_body_offset(const char *msg, size_t len)
{
	size_t i = 0;
	while (i < len) {
		size_t llen = line_len(msg + i, len - i);
		if (line_is_empty(msg + i, llen))
			return i + llen;
		i += llen;
	}
	return len;
}
