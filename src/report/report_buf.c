/* report_buf.c — see report_buf.h. */
#include "report/report_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void report_buf_put(struct report_buf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->size) {
		size_t size = b->size > 0 ? b->size : 8192;
		while (size < b->len + n + 1)
			size *= 2;
		char *p = realloc(b->p, size);
		if (p == NULL) {
			b->failed = true;
			return;
		}
		b->p = p;
		b->size = size;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void report_buf_str(struct report_buf *b, const char *s)
{
	report_buf_put(b, s, strlen(s));
}

void report_buf_printf(struct report_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return;
	}
	report_buf_put(b, s, (size_t)n);
	free(s);
}
