/* reply.h — SMTP replies: every one carries an enhanced status code (RFC 2034, RFC 3463). */
#ifndef MAILWERK_SMTP_REPLY_H
#define MAILWERK_SMTP_REPLY_H

struct evbuffer;

/* Appends "CODE ENH text\r\n". text is ours, never a peer's bytes unchecked. */
void smtp_reply(struct evbuffer *out, int code, const char *enh, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* One line of a multi-line reply (RFC 5321 §4.2.1): "CODE-text" unless last. No enhanced code: used
 * for EHLO, whose lines are keywords (RFC 2034 §3). */
void smtp_reply_line(struct evbuffer *out, int code, int last, const char *text);

#endif
