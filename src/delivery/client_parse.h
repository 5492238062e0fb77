/* client_parse.h — pure pieces of the outbound SMTP client: the reply parser (RFC 5321 §4.2, RFC 2034,
 * RFC 3463), the EHLO keyword parser (RFC 5321 §4.1.1.1) and the DATA encoder that normalises line
 * ends and dot-stuffs (RFC 5321 §2.3.8, §4.5.2). No I/O, no state beyond the structs; every octet from
 * the peer is treated as hostile; fuzzed by fuzz/fuzz_smtp_reply.c. */
#ifndef MAILWERK_DELIVERY_CLIENT_PARSE_H
#define MAILWERK_DELIVERY_CLIENT_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/result.h"

/* ---------------------------------------------------------------------------------------------
 * Replies (RFC 5321 §4.2, enhanced codes RFC 2034 / RFC 3463)
 * ------------------------------------------------------------------------------------------- */

/* RFC 5321 §4.5.3.1.5 sets 512 octets for a reply line; §4.5.3.1 asks us to accept more where we
 * can, so up to 2048 (with CRLF) are read before the line counts as hostile. */
#define DELIVERY_REPLY_LINE_MAX 2048
/* A reply of more lines than this is not a reply but a stream. */
#define DELIVERY_REPLY_LINES_MAX 200
/* Kept text of one reply: lines joined by one space; longer text is cut and ends in "...". */
#define DELIVERY_REPLY_TEXT_MAX 1024
/* "5.999.999" and the NUL. */
#define DELIVERY_ENH_MAX 12

enum delivery_reply_status {
	DELIVERY_REPLY_MORE = 0,       /* no complete line in the input: wait for more */
	DELIVERY_REPLY_LINE,           /* one continuation line ("250-...") consumed */
	DELIVERY_REPLY_DONE,           /* the last line consumed: the reply is complete */
	DELIVERY_REPLY_TOO_LONG,       /* a line over DELIVERY_REPLY_LINE_MAX */
	DELIVERY_REPLY_TOO_MANY_LINES, /* over DELIVERY_REPLY_LINES_MAX lines */
	DELIVERY_REPLY_BARE_EOL,       /* a line ended by a bare LF, or a CR inside it (RFC 5321 §2.3.8) */
	DELIVERY_REPLY_NUL,            /* a NUL octet */
	DELIVERY_REPLY_BAD_CODE,       /* not three digits [2-5][0-9][0-9] */
	DELIVERY_REPLY_BAD_SEP,        /* after the code neither SP, "-" nor the end of the line */
	DELIVERY_REPLY_MIXED_CODES,    /* lines of one reply with different codes (RFC 5321 §4.2.1) */
};
const char *delivery_reply_status_str(enum delivery_reply_status s);

struct delivery_reply {
	int code;                          /* 0 until the first line */
	char enh[DELIVERY_ENH_MAX];        /* enhanced status code of the first line, "" if none */
	char text[DELIVERY_REPLY_TEXT_MAX]; /* printable ASCII only: other octets become '?' */
	size_t text_len;
	bool truncated;
	unsigned lines;
	/* The text of the line just consumed (after "NNN-" / "NNN "), raw and not NUL-terminated;
	 * points into the caller's input, so valid only until that input is changed. For EHLO. */
	const char *line;
	size_t line_len;
};

void delivery_reply_init(struct delivery_reply *r);
/* Consumes at most one line from p[0..len): *used_r is the number of octets consumed (0 with MORE
 * and with any error). A line ends with CRLF and nothing else. Call again with the rest of the input
 * after LINE; after DONE the reply is complete; re-init before the next. On an error the stream is
 * out of step for good: the caller closes the connection. */
enum delivery_reply_status delivery_reply_feed(struct delivery_reply *r, const char *p, size_t len, size_t *used_r,
					       const char **error_r);
/* The class of a complete reply: 2xx/3xx OK, 4xx TEMPFAIL, 5xx PERMFAIL (RFC 5321 §4.2.1). */
enum result delivery_reply_result(const struct delivery_reply *r);

/* ---------------------------------------------------------------------------------------------
 * EHLO keywords (RFC 5321 §4.1.1.1, keywords case-insensitive)
 * ------------------------------------------------------------------------------------------- */

enum delivery_auth_mech {
	DELIVERY_AUTH_PLAIN = 1 << 0, /* RFC 4616 */
	DELIVERY_AUTH_LOGIN = 1 << 1, /* draft-murchison-sasl-login */
};

struct delivery_ehlo {
	unsigned lines;         /* lines seen; the first is the server's name, not a keyword */
	bool pipelining;        /* RFC 2920 */
	bool starttls;          /* RFC 3207 */
	bool eightbitmime;      /* RFC 6152 */
	bool smtputf8;          /* RFC 6531 */
	bool chunking;          /* RFC 3030 (not used for sending yet) */
	bool enhancedstatuscodes; /* RFC 2034 */
	bool dsn;               /* RFC 3461 */
	bool requiretls;        /* RFC 8689 */
	bool size;              /* RFC 1870 */
	uint64_t size_max;      /* the SIZE value; 0: no fixed maximum (RFC 1870 §4) or none given */
	unsigned auth;          /* enum delivery_auth_mech bits, from "AUTH" and the old "AUTH=" form */
};

void delivery_ehlo_init(struct delivery_ehlo *e);
/* One line of a 250 reply to EHLO, the text after "250-"/"250 " (delivery_reply.line). Unknown
 * keywords and malformed lines are ignored: they can only make us use less. */
void delivery_ehlo_line(struct delivery_ehlo *e, const char *line, size_t len);

/* RFC 3461 §4: xtext for ENVID and ORCPT as sent on: "+" and "=" and every octet outside %d33-126
 * become "+XX" (upper-case hex). Writes at most out_size - 1 octets and a NUL; false when s does not
 * fit (out unusable). */
bool delivery_xtext_encode(const char *s, char *out, size_t out_size);

/* ---------------------------------------------------------------------------------------------
 * DATA encoding: line ends normalised to CRLF, then dot-stuffing (RFC 5321 §2.3.8, §4.5.2)
 *
 * CRLF stays; a bare CR and a bare LF each become CRLF (so "\r\r\n" is two line ends); NUL octets
 * are dropped (a receiver that drops them itself could otherwise see "\r\n\0.\r\n" as the end of the
 * data: SMTP smuggling, shared/testdata/smtp/smuggling.md). With stuffing, a line starting with '.'
 * gets another '.'. Lines are not folded: one longer than 998 octets goes as it is. The same
 * normalisation without stuffing (stuff=false) is meant to run before DKIM signing, so that the
 * signature covers the bytes that are sent.
 * ------------------------------------------------------------------------------------------- */

/* Each input octet gives at most two output octets. */
#define DELIVERY_DOT_EXPANSION 2
/* What delivery_dot_finish may write: CRLF ".\r\n". */
#define DELIVERY_DOT_FINISH_MAX 5

struct delivery_dot {
	bool stuff;    /* dot-stuff (for the wire) */
	bool bol;      /* the next octet begins a line */
	bool after_cr; /* the last octet was a CR, already written as CRLF: an LF now completes it */
};

void delivery_dot_init(struct delivery_dot *d, bool stuff);
/* Encodes as much of in[0..in_len) as fits into out[0..out_size) and returns the octets written;
 * *in_used_r is the input consumed. Streams: any split of the input gives the same output. */
size_t delivery_dot_encode(struct delivery_dot *d, const unsigned char *in, size_t in_len, size_t *in_used_r,
			   char *out, size_t out_size);
/* Ends the content (out_size >= DELIVERY_DOT_FINISH_MAX): a CRLF if the last line is open, then,
 * when stuffing, the end-of-data line ".\r\n" (RFC 5321 §4.1.1.4). Returns the octets written. */
size_t delivery_dot_finish(struct delivery_dot *d, char *out, size_t out_size);
/* The size of msg once normalised, without stuffing and without the end-of-data line: the SIZE=
 * value of RFC 1870 §6. *has_8bit_r tells whether any octet is >= 0x80. */
uint64_t delivery_dot_size(const unsigned char *msg, size_t len, bool *has_8bit_r);

#endif
