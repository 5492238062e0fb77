/* parse.h — pure pieces of the POP3 server (RFC 1939, RFC 2449, RFC 5034): the command-line parser
 * and the encoder that turns message content into the body of a multi-line response. No I/O; every
 * byte is treated as hostile. */
#ifndef MAILWERK_POP3_PARSE_H
#define MAILWERK_POP3_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 2449 §4: a command is at most 255 octets including the CRLF. */
#define POP3_CMD_LINE_MAX 255
/* Most arguments any command takes (TOP msg n; AUTH mechanism initial-response). */
#define POP3_ARGS_MAX 2

enum pop3_verb {
	POP3_VERB_UNKNOWN = 0,
	/* AUTHORIZATION state */
	POP3_VERB_USER,
	POP3_VERB_PASS,
	POP3_VERB_AUTH, /* RFC 5034 */
	POP3_VERB_STLS, /* RFC 2595 §4 */
	/* either state */
	POP3_VERB_CAPA, /* RFC 2449 §5 */
	POP3_VERB_QUIT,
	/* TRANSACTION state */
	POP3_VERB_STAT,
	POP3_VERB_LIST,
	POP3_VERB_RETR,
	POP3_VERB_DELE,
	POP3_VERB_NOOP,
	POP3_VERB_RSET,
	POP3_VERB_TOP,
	POP3_VERB_UIDL,
	POP3_VERB_COUNT,
};
const char *pop3_verb_str(enum pop3_verb v);

struct pop3_arg {
	const char *p; /* points into the line */
	size_t len;    /* > 0 */
};

struct pop3_cmd {
	enum pop3_verb verb;
	unsigned argc;
	struct pop3_arg arg[POP3_ARGS_MAX];
	/* For LIST, RETR, DELE, TOP and UIDL, whose arguments are numbers: their values. A message
	 * number of 0 parses (the session answers "no such message"); TOP's line count may be 0. */
	uint32_t num[POP3_ARGS_MAX];
};

enum pop3_parse_error {
	POP3_PARSE_OK = 0,
	POP3_PARSE_UNKNOWN,  /* not a keyword we know (APOP included: not offered) */
	POP3_PARSE_SYNTAX,   /* control octet, wrong number of arguments, bad number */
	POP3_PARSE_TOO_LONG, /* over POP3_CMD_LINE_MAX - 2 octets */
};

/* line: one command line without its CRLF. The keyword is case-insensitive (RFC 1939 §3). Arguments
 * are separated from the keyword and each other by spaces; trailing spaces are ignored. PASS is the
 * exception: everything after "PASS " is the password, spaces included (RFC 1939 §7). Any octet
 * below 0x20 or 0x7f anywhere in the line is a syntax error; octets >= 0x80 may appear in USER and
 * PASS arguments (UTF-8 names and passwords). A number is 1*DIGIT without sign or leading zero, at
 * most 4294967295. On error cmd_r->verb is still set when the keyword was recognised, and error_r
 * gets a sentence. */
enum pop3_parse_error pop3_cmd_parse(const char *line, size_t len, struct pop3_cmd *cmd_r, const char **error_r);

/* ---- multi-line response bodies (RETR, TOP) ---- */

/* RFC 1939 §3: a multi-line response is CRLF lines, each line that starts with "." gets one more
 * ("byte-stuffing"), and ".CRLF" ends it. Messages are stored with CRLF or bare LF line ends; a bare
 * LF is sent as CRLF, every other octet (a lone CR too) as it is, so that the octets sent before
 * stuffing are exactly the CRLF size that maildir reports for LIST and STAT. The encoder takes the
 * content in pieces of any size. */
struct pop3_stuff {
	uint8_t line_len;    /* octets of the current line so far, saturating at 2 */
	bool prev_cr;        /* the last content octet was CR */
	bool top;            /* TOP: headers, the blank line, then lines_left body lines */
	bool in_body;        /* TOP: the blank line that ends the header has been sent */
	bool stopped;        /* TOP: everything it should send has been sent; ignore the rest */
	uint32_t lines_left; /* TOP: body lines still to send */
};

/* The end marker's longest form: CRLF (content without a final line end), then ".\r\n". */
#define POP3_STUFF_END_MAX 5

void pop3_stuff_init(struct pop3_stuff *st, bool top, uint32_t lines);
/* Encodes len octets of content into out, which has room for 2 * len octets (each input octet
 * becomes at most two). Returns the octets written. Once st->stopped, input is ignored. */
size_t pop3_stuff_chunk(struct pop3_stuff *st, const char *in, size_t len, char *out);
/* Ends the response: a CRLF when the content did not end with a line end (or only "\n" when it
 * ended with a lone CR), then ".\r\n". Returns the octets written (at most POP3_STUFF_END_MAX). */
size_t pop3_stuff_end(struct pop3_stuff *st, char *out);

#endif
