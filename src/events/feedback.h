/* feedback.h — reports that come back about mail we sent: delivery status notifications (RFC 3464
 * inside an RFC 6522 multipart/report; a bounce that arrives days later) and abuse feedback reports
 * (ARF, RFC 5965: a recipient pressed "this is spam"). Pure and bounded: the report is read in place,
 * at most a few levels of MIME deep, and only the fields that matter are kept.
 *
 * It also owns the return path of tracked mail (VERP): bounces+ID@LABEL.DOMAIN, so that a report
 * names the message it is about whatever the reporting system did to it. */
#ifndef MAILWERK_EVENTS_FEEDBACK_H
#define MAILWERK_EVENTS_FEEDBACK_H

#include <stdbool.h>
#include <stddef.h>

#define FEEDBACK_MAX_RCPTS 50
#define FEEDBACK_FIELD_MAX 512

enum feedback_kind {
	FEEDBACK_NONE = 0, /* neither: a plain message */
	FEEDBACK_DSN,      /* multipart/report; report-type=delivery-status */
	FEEDBACK_ARF,      /* multipart/report; report-type=feedback-report */
};

struct feedback_rcpt {
	char final_rcpt[256];  /* RFC 3464 §2.3.2 Final-Recipient, the address only */
	char action[16];       /* §2.3.3 failed, delayed, delivered, relayed, expanded (lower case) */
	char status[16];       /* §2.3.4 the RFC 3463 code */
	char diagnostic[FEEDBACK_FIELD_MAX]; /* §2.3.6 Diagnostic-Code, without its type */
	char remote_mta[256];  /* §2.3.5 Remote-MTA, without its type */
};

struct feedback {
	enum feedback_kind kind;
	struct feedback_rcpt rcpts[FEEDBACK_MAX_RCPTS]; /* DSN */
	size_t rcpt_count;
	char feedback_type[32];        /* ARF §3.1 Feedback-Type: abuse, fraud, ... (lower case) */
	char original_mail_from[256];  /* ARF Original-Mail-From: our return path */
	char original_rcpt[256];       /* ARF Original-Rcpt-To */
	char original_message_id[256]; /* the Message-ID of the returned message (or its headers), no brackets */
	char original_return_path[256]; /* its Return-Path, when it carries one */
};

/* Reads msg (a whole message, CRLF or LF lines). FEEDBACK_NONE when it is no report; *f filled
 * otherwise. Never fails on content: what cannot be read is left empty. */
enum feedback_kind feedback_parse(const char *msg, size_t len, struct feedback *f);

/* The return path of tracked message email_id sent from domain: "bounces+ID@LABEL.DOMAIN" (the
 * local part stays within RFC 5321's 64 octets). false when it does not fit size. */
bool feedback_return_path(const char *email_id, const char *label, const char *domain, char *buf, size_t size);
/* Whether addr is a return path made above for label (NULL: for any one label, as each domain may
 * have its own): the email id into id_r (37 octets) and the sending domain (what follows "LABEL.")
 * into domain_r. */
bool feedback_return_path_parse(const char *addr, const char *label, char *id_r, char *domain_r, size_t domain_size);

#endif
