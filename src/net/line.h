/* line.h — CRLF line framing over an evbuffer, for every line protocol and for SMTP's DATA. Only
 * CRLF ends a line (RFC 5321 §2.3.8, RFC 1939 §3): a bare CR or LF is reported, never guessed
 * around, because a lenient reading is how two parties come to see different commands (SMTP
 * smuggling, CVE-2023-51764..6). */
#ifndef MAILWERK_NET_LINE_H
#define MAILWERK_NET_LINE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct evbuffer;

/* true when some CR in p[0..n) is not followed by LF; a CR at p[n-1] is judged by next. */
bool line_has_bare_cr(const char *p, size_t n, char next);

/* Position of the first LF among the first limit octets of in, or -1. */
ssize_t line_find_lf(struct evbuffer *in, size_t limit);

enum line_take {
	LINE_TAKE_MORE = 0, /* no whole line yet, and fewer than max octets: wait for more */
	LINE_TAKE_OK,       /* a line, without its CRLF, NUL-terminated in buf */
	LINE_TAKE_TOO_LONG, /* no LF within max octets: nothing taken (drop it with line_discard) */
	LINE_TAKE_BARE_EOL, /* a line that does not end in CRLF or holds a bare CR: taken, buf wiped */
};

/* Takes one line of at most max octets, CRLF included, from in; buf holds at least max octets. */
enum line_take line_take(struct evbuffer *in, char *buf, size_t max, size_t *len_r);

enum line_discard {
	LINE_DISCARD_MORE = 0, /* everything available was dropped; the LF is still to come */
	LINE_DISCARD_DONE,     /* dropped through the LF that ends the line */
	LINE_DISCARD_BARE_EOL, /* a bare CR or LF showed */
};

/* Drops the rest of an over-long line through its LF, holding it to the same CRLF rule. *cr
 * carries "the last octet dropped was CR" between calls (false to begin); *dropped_r is the
 * number of octets dropped, the LF excepted. */
enum line_discard line_discard(struct evbuffer *in, bool *cr, size_t *dropped_r);

#endif
