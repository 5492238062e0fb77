/* email_req_ctx.h — what the parts of the send-request checker share (email_req.c: the fields and
 * the request; email_req_attach.c: attachments): the context that carries the error sentence, the
 * caps, and the small string checks. Internal to src/http/email_req*.c. */
#ifndef MAILWERK_HTTP_EMAIL_REQ_CTX_H
#define MAILWERK_HTTP_EMAIL_REQ_CTX_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "http/email_req.h"

/* Our caps where Resend documents none; each one is far above what a real email needs. */
#define EMAIL_REQ_NAME_MAX 256       /* a display name, in octets */
#define EMAIL_REQ_HEADER_NAME_MAX 76 /* RFC 5322 §2.1.1: 78 octets a line, less ": " */
#define EMAIL_REQ_VALUE_MAX 16384    /* a header value or the subject (compose folds them) */
#define EMAIL_REQ_FILENAME_MAX 255
#define EMAIL_REQ_URL_MAX 2048
/* Resend: "Emails can be scheduled up to 30 days in advance" (docs, Schedule Email). A minute of
 * slack either way, so that "now" computed on a client whose clock is a little off still passes. */
#define EMAIL_REQ_SCHEDULE_AHEAD (30 * 86400)
#define EMAIL_REQ_SCHEDULE_SLACK 60

struct email_req_ctx {
	const struct email_req_limits *lim;
	char *msg;
	size_t msg_size;
};

/* Writes the sentence for the client and returns e. */
enum email_req_error email_req_fail(struct email_req_ctx *c, enum email_req_error e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
enum email_req_error email_req_nomem(struct email_req_ctx *c);
/* A field of obj, or NULL when it is absent or null (both mean "not given"). */
const json_t *email_req_field(const json_t *obj, const char *key);
/* A string field without NUL: the error names the field. */
enum email_req_error email_req_str_field(struct email_req_ctx *c, const json_t *v, const char *field,
					 enum email_req_error e, const char **s_r, size_t *len_r);
/* C0 controls and DEL: never in a display name or a file name. */
bool email_req_has_ctl(const char *s, size_t len);
char *email_req_dup(const char *s, size_t len);
bool email_req_is_wsp(char c);

/* attachments[] (email_req_attach.c): checked, decoded, and within lim->max_size with the bodies. */
enum email_req_error email_req_attachments(struct email_req_ctx *c, const json_t *obj, struct email_req *r);

#endif
