/* message.h — the header fields mailwerk adds to a message before queueing it: the trace field
 * (RFC 5321 §4.4) and, on submission, Date and Message-ID when the client left them out (RFC 6409 §8). */
#ifndef MAILWERK_SMTP_MESSAGE_H
#define MAILWERK_SMTP_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct message_trace {
	const char *helo;        /* the EHLO/HELO argument */
	const char *client_ip;   /* textual IP */
	const char *hostname;    /* ours */
	const char *queue_id;
	const char *protocol;    /* RFC 3848: SMTP, ESMTP, ESMTPS, ESMTPA, ESMTPSA */
	const char *tls_version; /* NULL without TLS */
	const char *tls_cipher;
	const char *auth_user;   /* NULL when not authenticated */
	const char *rcpt;        /* "for <rcpt>" only when the message has exactly one recipient, else NULL */
	time_t now;
};

/* RFC 5322 §2.2: a field is present when a line of the header section starts with its name
 * (case-insensitive) followed by optional WSP and ':'. The header section ends at the first empty line. */
bool message_has_header(const char *msg, size_t len, const char *name);

/* RFC 8689 §3: whether the header section holds "TLS-Required: No" (the field's one value,
 * case-insensitive, whitespace and folding around it allowed). */
bool message_tls_required_no(const char *msg, size_t len);

/* Builds the message as stored: our header fields, then content (length len). submission: also
 * adds Date and Message-ID when missing. Returns a malloc'd buffer and its size, or NULL when out of
 * memory. */
char *message_compose(const struct message_trace *t, bool submission, const char *content, size_t len,
		      size_t *size_r);

#endif
