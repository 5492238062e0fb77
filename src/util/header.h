/* header.h — walks the header section of an RFC 5322 message (§2.2): fields, their folded lines and
 * where the body starts. Pure and allocation-free; the one place that splits header fields, shared by
 * DKIM, DMARC, Authentication-Results and the message composer. Lines may end in CRLF or bare LF. */
#ifndef MAILWERK_UTIL_HEADER_H
#define MAILWERK_UTIL_HEADER_H

#include <stdbool.h>
#include <stddef.h>

struct header_field {
	const char *raw;   /* the whole field: first line, continuation lines, the final line end */
	size_t raw_len;
	const char *name;  /* before the colon, trailing WSP left out; name_len 0 for a line without a colon */
	size_t name_len;
	const char *value; /* after the colon up to (not including) the final line end; still folded */
	size_t value_len;
};

/* The field that starts at *pos (start with *pos = 0), then *pos moves past it. False at the end of
 * the header section: the empty line, the end of msg, or a line starting with WSP where a field
 * should start (RFC 5322 §2.2.3: only continuation lines start with WSP; such a line at the very top
 * is returned as a field with name_len 0 instead, so nothing is skipped silently). */
bool header_next(const char *msg, size_t len, size_t *pos, struct header_field *f_r);

/* Whether f's name is name (RFC 5322 §1.2.2: case-insensitive). */
bool header_is(const struct header_field *f, const char *name);

/* The offset of the body: just after the empty line that ends the header section; len when there is
 * no empty line (a message of header fields only). */
size_t header_body_offset(const char *msg, size_t len);

#endif
