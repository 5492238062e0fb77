/* tagval.h — the tag=value list of RFC 6376 §3.2, the syntax of DKIM-Signature fields and DKIM key
 * records, and (read leniently) of DMARC policy records (RFC 9989 §4.7). Pure, in place, no allocation. */
#ifndef MAILWERK_AUTH_TAGVAL_H
#define MAILWERK_AUTH_TAGVAL_H

#include <stdbool.h>
#include <stddef.h>

/* More tags than any record defines: a list longer than this is refused, not truncated. */
#define TAGVAL_MAX 64

struct tagval {
	const char *name; /* points into the input */
	size_t name_len;
	const char *value; /* FWS around the value removed; FWS inside it kept (callers that want it gone
			    * remove it: RFC 6376 §3.5 b= and bh=) */
	size_t value_len;
};

enum tagval_error {
	TAGVAL_OK = 0,
	TAGVAL_SYNTAX,    /* a tag-spec that breaks the grammar */
	TAGVAL_DUPLICATE, /* the same tag twice (RFC 6376 §3.2: the whole list is then invalid) */
	TAGVAL_TOO_MANY,  /* more than the caller's room */
};
const char *tagval_error_str(enum tagval_error e);

enum tagval_flags {
	/* RFC 9989 §4.8: a tag-spec that does not parse is skipped and the rest is read; duplicates
	 * keep their first value. Values may then hold any octet but ';'. */
	TAGVAL_LENIENT = 1 << 0,
};

/* Parses s (len octets; NULs are octets like others and are refused in strict mode). tags has room
 * for max entries; *count_r is how many were found. Names are matched case-sensitively by callers
 * that follow RFC 6376 §3.2 ("tag names are case sensitive"). */
enum tagval_error tagval_parse(const char *s, size_t len, unsigned flags, struct tagval *tags, size_t max,
			       size_t *count_r, const char **error_r);

/* The tag called name (exact, case-sensitive), or NULL. */
const struct tagval *tagval_find(const struct tagval *tags, size_t n, const char *name);

/* Whether a tag's value equals text, ignoring ASCII case (for values RFC 6376 or 9989 call
 * case-insensitive, such as k=rsa or p=reject). */
bool tagval_value_is(const struct tagval *t, const char *text);

#endif
