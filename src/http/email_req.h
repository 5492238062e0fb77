/* email_req.h — a send request of the HTTP API (POST /emails, one element of POST /emails/batch),
 * as Resend's wire format has it (snake_case JSON), checked whole before anything is queued.
 *
 * email_req_parse() is pure (no I/O): it turns a jansson object into a struct email_req or into
 * the one error the client gets, with Resend's error name and a sentence that names the field
 * and what is wrong with it. compose.c turns the struct into an RFC 5322 message. */
#ifndef MAILWERK_HTTP_EMAIL_REQ_H
#define MAILWERK_HTTP_EMAIL_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "util/addr.h"

/* Resend: at most 50 recipients in to, cc and bcc together. */
#define EMAIL_REQ_MAX_RCPTS 50
/* Resend's tag rules: ASCII letters, digits, '_' and '-', at most 256 characters each. */
#define EMAIL_REQ_TAG_MAX 256
#define EMAIL_REQ_MAX_TAGS 50
#define EMAIL_REQ_MAX_HEADERS 100
#define EMAIL_REQ_MAX_ATTACHMENTS 100
#define EMAIL_REQ_TOKEN_MAX 255 /* an attachment's content_type and content_id */
#define EMAIL_REQ_MAX_REPLY_TO 50

struct email_mailbox {
	char *name;     /* display name (UTF-8), NULL when none was given */
	struct addr addr; /* the address, parsed with addr_parse_mailbox (ADDR_ALLOW_UTF8) */
};

struct email_header {
	char *name;  /* RFC 5322 §3.6.8 field name: printable ASCII but ':' */
	char *value; /* UTF-8, no CR or LF */
};

struct email_attachment {
	char *filename;     /* UTF-8, NULL when none (content_id-only inline parts may lack one) */
	unsigned char *content; /* decoded from base64 */
	size_t size;
	char *content_type; /* "type/subtype", from the request or derived from the filename */
	char *content_id;   /* NULL, or the id the html refers to as cid:... (an inline part) */
	char *path;         /* NULL, or the URL given instead of content (fetched only when allowed) */
};

struct email_tag {
	char *name, *value;
};

struct email_req {
	struct email_mailbox from;
	struct email_mailbox *to, *cc, *bcc, *reply_to;
	size_t to_count, cc_count, bcc_count, reply_to_count;
	char *subject; /* UTF-8 */
	char *html;    /* NULL when none */
	char *text;    /* NULL when none */
	struct email_header *headers;
	size_t header_count;
	struct email_attachment *attachments;
	size_t attachment_count;
	struct email_tag *tags;
	size_t tag_count;
	int64_t scheduled_at; /* unix seconds; 0 when not scheduled */
	bool one_click_unsubscribe; /* mailwerk's one_click_unsubscribe: RFC 8058 List-Unsubscribe */
	/* mailwerk's in_reply_to and references (RFC 5322 §3.6.4): msg-ids "<...>", space-separated in
	 * references; in_reply_to may instead be a received email's id (email_req_is_received_id), which
	 * the sender replaces with that email's Message-ID before composing. NULL when not given. */
	char *in_reply_to, *references;
};

/* Whether an in_reply_to names a received email by its id rather than by a Message-ID. */
bool email_req_is_received_id(const char *s);
/* The request's headers{} field of this name (case-insensitive), or NULL. */
const struct email_header *email_req_header_find(const struct email_req *r, const char *name);

/* Resend's error names (its RESEND_ERROR_CODE_KEY) that a request's content can cause. */
enum email_req_error {
	EMAIL_REQ_OK = 0,
	EMAIL_REQ_MISSING_FIELD,      /* missing_required_field, 422 */
	EMAIL_REQ_VALIDATION,         /* validation_error, 422 */
	EMAIL_REQ_INVALID_FROM,       /* invalid_from_address, 422 */
	EMAIL_REQ_INVALID_ATTACHMENT, /* invalid_attachment, 422 */
	EMAIL_REQ_NO_MEMORY,          /* internal_server_error, 500 */
};
/* Resend's name of the error ("validation_error", ...). */
const char *email_req_error_name(enum email_req_error e);

struct email_req_limits {
	uint64_t max_size;       /* decoded attachments + html + text together; [smtp] max_message_size */
	bool allow_attachment_urls; /* [api] fetch_attachment_urls: otherwise an attachment with path is refused */
	int64_t now;             /* unix seconds: scheduled_at in the past is refused */
};

/* Checks obj (the parsed JSON body) and fills *req_r (free with email_req_free). On error *req_r
 * is NULL and msg holds a sentence for the client, e.g. "The `to` field must contain at most 50
 * recipients." Unknown fields are ignored as Resend does; wrong types are errors. */
enum email_req_error email_req_parse(const json_t *obj, const struct email_req_limits *lim,
				     struct email_req **req_r, char *msg, size_t msg_size);
void email_req_free(struct email_req *r);

/* "Name <local@domain>" or "local@domain" (Resend's from, to, cc, bcc, reply_to); the name may be
 * a quoted string. false with a sentence in *error_r. Exposed for the unit tests. */
bool email_mailbox_parse(const char *s, struct email_mailbox *m_r, const char **error_r);

/* ISO 8601 / RFC 3339 date-time ("2024-08-05T11:52:01.858Z", "2024-08-05T13:52:01+02:00") to unix
 * seconds. false when it is not one. */
bool email_req_parse_time(const char *s, int64_t *t_r);
/* The same to the millisecond (the fraction's first three digits count). */
bool email_req_parse_time_ms(const char *s, int64_t *ms_r);

/* Whether s (len octets) is a Content-Type an attachment may carry: RFC 2045 §5.1 type "/" subtype
 * with token or quoted-string parameters, not multipart. The request's content_type and the type a
 * fetched attachment URL answered with are held to this one rule. */
bool email_content_type_ok(const char *s, size_t len);

#endif
