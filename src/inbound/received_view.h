/* received_view.h — the "received email" view of an inbound RFC 5322 message, as GET
 * /emails/receiving/{id} and the email.received webhook show it: decoded addresses and subject,
 * every top-level field, the text and HTML bodies in UTF-8, the attachments with ids that stay the
 * same for the same message octets; and the decoded octets of one attachment for GET
 * /emails/receiving/{id}/attachments/{attachment_id}. Pure (no I/O), any thread. The MIME tree is
 * walked here under limits; GMime 3 decodes the fields, parameters and transfer encodings.
 *
 * Every string in a view is well-formed UTF-8 without NUL octets. Octets in an unknown, missing or
 * us-ascii charset are read as UTF-8 when they are well-formed UTF-8 and as windows-1252 otherwise
 * (a declared iso-8859-1 is read as windows-1252 too, as the WHATWG Encoding Standard does); in a
 * known charset, octets that do not convert become U+FFFD. */
#ifndef MAILWERK_INBOUND_RECEIVED_VIEW_H
#define MAILWERK_INBOUND_RECEIVED_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RECEIVED_ID_LEN 36
/* "1.2.3": IMAP part numbers (RFC 9051 §6.4.5); room for 20 levels of up to 5 digits */
#define RECEIVED_PART_LEN 128

/* What a hostile message can make the parser spend. A zero member takes its default. */
struct received_view_limits {
	size_t max_size;    /* octets of the whole message; over it: RECEIVED_VIEW_TOO_LARGE (64 MiB) */
	size_t max_parts;   /* MIME entities, multiparts and leaves (500) */
	size_t max_depth;   /* multiparts inside multiparts (20; never more than 32) */
	size_t max_headers; /* top-level fields kept in headers[] (1000) */
	size_t max_text;    /* octets of text and of html each, as UTF-8 (4 MiB) */
	/* octets of one field's value that are read (64 KiB): GMime's decoders hold an object of tens
	 * of octets per word, address or parameter, so a field of megabytes would cost many times the
	 * message in memory */
	size_t max_field;
};

extern const struct received_view_limits received_view_limits_default;

struct received_attachment {
	char id[RECEIVED_ID_LEN + 1]; /* UUID-shaped, from SHA-256 of the message and the part number */
	char *filename;               /* UTF-8 (RFC 2231 / RFC 2047 decoded); NULL when none */
	char *content_type;           /* "type/subtype", lower case */
	char *content_id;             /* without <>; NULL when none */
	const char *content_disposition; /* "attachment" or "inline" (static) */
	size_t size;                  /* decoded octets */
	char part[RECEIVED_PART_LEN]; /* the MIME part number, e.g. "1.2" */
};

struct received_header {
	char *name;
	char *value; /* unfolded, RFC 2047 decoded */
};

struct received_view {
	char *from;       /* "Name <addr>" (several joined by ", "); NULL when there is no From */
	char **to, **cc, **reply_to; /* "Name <addr>" or "addr"; group members listed, group names not */
	size_t to_count, cc_count, reply_to_count;
	char *subject;    /* RFC 2047 decoded; NULL when there is no Subject */
	char *message_id; /* as in the message, <> kept; NULL when none */
	char *in_reply_to, *references; /* as in the message, unfolded; NULL when none */
	int64_t date;     /* unix seconds; 0 when there is no Date or it does not parse */
	struct received_header *headers; /* every top-level field in order, up to max_headers */
	size_t header_count;
	char *text;       /* the first text/plain leaf not marked as an attachment, in UTF-8; NULL when none */
	char *html;       /* the same for text/html */
	struct received_attachment *attachments; /* every other leaf, in order */
	size_t attachment_count;
	/* NULL when the whole message is in the view; else a sentence saying what a limit left out
	 * (the first one met) */
	const char *limited;
};

enum received_view_error {
	RECEIVED_VIEW_OK = 0,
	RECEIVED_VIEW_TOO_LARGE,     /* over max_size: nothing parsed */
	RECEIVED_VIEW_NOT_A_MESSAGE, /* empty, or the first line is not a header field */
	RECEIVED_VIEW_NOMEM,
};

/* The view of raw (len octets, CRLF or LF lines, NUL octets allowed) in v_r, which the caller
 * clears with received_view_clear whatever the result. lim NULL: the defaults. A message over
 * max_parts, max_depth, max_headers or max_text is not an error: the view holds what fits, its
 * limited member and *error_r say what was left out. max_field cuts a field's value, and the
 * address, parameter or date in it is read from what is left. On error *error_r is a sentence. */
enum received_view_error received_view_parse(const char *raw, size_t len, const struct received_view_limits *lim,
					     struct received_view *v_r, const char **error_r);

void received_view_clear(struct received_view *v);

/* The decoded octets of the attachment whose id is id (malloc'd, *size_r octets, never NULL for an
 * empty one), with its "type/subtype" in *content_type_r and its file name (or NULL) in *filename_r
 * (malloc'd; either pointer may be NULL). NULL when the message has no such attachment under lim
 * (give the limits the view was made with) or memory ran out. */
unsigned char *received_view_attachment(const char *raw, size_t len, const struct received_view_limits *lim,
					const char *id, size_t *size_r, char **content_type_r, char **filename_r);

const char *received_view_error_str(enum received_view_error e);

#endif
