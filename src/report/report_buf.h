/* report_buf.h — a growing text buffer for composing report mail (DMARC, TLS-RPT): appends that
 * cannot fail one by one; a failure (out of memory) is remembered and checked once at the end. */
#ifndef MAILWERK_REPORT_REPORT_BUF_H
#define MAILWERK_REPORT_REPORT_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct report_buf {
	char *p; /* NUL-terminated once anything was added; the caller frees it */
	size_t len, size;
	bool failed;
};

void report_buf_put(struct report_buf *b, const char *s, size_t n);
void report_buf_str(struct report_buf *b, const char *s);
void report_buf_printf(struct report_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
