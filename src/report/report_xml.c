/* report_xml.c — the escaping XML writer of report_xml.h. */
#include "report/report_xml.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* U+FFFD REPLACEMENT CHARACTER in UTF-8 */
#define REPLACEMENT "\xef\xbf\xbd"

void report_xml_init(struct report_xml *x)
{
	memset(x, 0, sizeof(*x));
}

void report_xml_free(struct report_xml *x)
{
	free(x->buf);
	memset(x, 0, sizeof(*x));
}

static bool reserve(struct report_xml *x, size_t more)
{
	if (x->nomem)
		return false;
	if (x->len + more + 1 <= x->size)
		return true;
	size_t size = x->size > 0 ? x->size : 4096;
	while (size < x->len + more + 1) {
		if (size > SIZE_MAX / 2) {
			x->nomem = true;
			return false;
		}
		size *= 2;
	}
	char *p = realloc(x->buf, size);
	if (p == NULL) {
		x->nomem = true;
		return false;
	}
	x->buf = p;
	x->size = size;
	return true;
}

static void put(struct report_xml *x, const char *s, size_t n)
{
	if (!reserve(x, n))
		return;
	memcpy(x->buf + x->len, s, n);
	x->len += n;
	x->buf[x->len] = '\0';
}

void report_xml_raw(struct report_xml *x, const char *s)
{
	put(x, s, strlen(s));
}

/* The length of the valid UTF-8 sequence at s (RFC 3629 §4), 0 when there is none; *cp_r its
 * code point. */
static size_t utf8_seq(const unsigned char *s, size_t len, uint32_t *cp_r)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t cp, min;
	unsigned char lo = 0x80, hi = 0xbf; /* the range of the second octet */
	if (c < 0x80) {
		*cp_r = c;
		return 1;
	} else if (c >= 0xc2 && c <= 0xdf) {
		n = 2, cp = c & 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3, cp = c & 0x0f, min = 0x800;
		if (c == 0xe0)
			lo = 0xa0; /* overlong */
		else if (c == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4, cp = c & 0x07, min = 0x10000;
		if (c == 0xf0)
			lo = 0x90; /* overlong */
		else if (c == 0xf4)
			hi = 0x8f; /* beyond U+10FFFF */
	} else {
		return 0;
	}
	if (len < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min)
		return 0;
	*cp_r = cp;
	return n;
}

void report_xml_text(struct report_xml *x, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < len && !x->nomem) {
		/* the longest run that needs nothing done, copied at once */
		size_t run = i;
		while (run < len && p[run] >= 0x20 && p[run] < 0x7f && p[run] != '<' && p[run] != '>' && p[run] != '&')
			run++;
		if (run > i) {
			put(x, s + i, run - i);
			i = run;
			continue;
		}
		uint32_t cp;
		size_t n = utf8_seq(p + i, len - i, &cp);
		if (n == 1 && cp == '<') {
			put(x, "&lt;", 4);
		} else if (n == 1 && cp == '>') {
			/* only "]]>" must be escaped (XML 1.0 §2.4); every ">" is simpler */
			put(x, "&gt;", 4);
		} else if (n == 1 && cp == '&') {
			put(x, "&amp;", 5);
		} else if (n == 0 || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0xfffe || cp == 0xffff) {
			/* one replacement per octet that starts no valid character, then resynchronize */
			put(x, REPLACEMENT, 3);
			n = n == 0 ? 1 : n;
		} else {
			put(x, s + i, n);
		}
		i += n;
	}
}

static void indent(struct report_xml *x, unsigned depth)
{
	static const char spaces[] = "                ";
	size_t n = (size_t)depth * 2;
	put(x, spaces, n < sizeof(spaces) - 1 ? n : sizeof(spaces) - 1);
}

void report_xml_open(struct report_xml *x, unsigned depth, const char *name)
{
	indent(x, depth);
	put(x, "<", 1);
	report_xml_raw(x, name);
	put(x, ">\n", 2);
}

void report_xml_close(struct report_xml *x, unsigned depth, const char *name)
{
	indent(x, depth);
	put(x, "</", 2);
	report_xml_raw(x, name);
	put(x, ">\n", 2);
}

void report_xml_elem(struct report_xml *x, unsigned depth, const char *name, const char *text)
{
	indent(x, depth);
	put(x, "<", 1);
	report_xml_raw(x, name);
	put(x, ">", 1);
	report_xml_text(x, text, strlen(text));
	put(x, "</", 2);
	report_xml_raw(x, name);
	put(x, ">\n", 2);
}

void report_xml_elem_i64(struct report_xml *x, unsigned depth, const char *name, int64_t v)
{
	char num[24];
	snprintf(num, sizeof(num), "%" PRId64, v);
	report_xml_elem(x, depth, name, num);
}

void report_xml_elem_u64(struct report_xml *x, unsigned depth, const char *name, uint64_t v)
{
	char num[24];
	snprintf(num, sizeof(num), "%" PRIu64, v);
	report_xml_elem(x, depth, name, num);
}
