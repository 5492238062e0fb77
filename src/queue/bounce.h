/* bounce.h — delivery status notifications (DSNs) for the envelope sender: the failure report when
 * recipients failed for good, the optional delay warning, and the success report a sender asked for
 * with NOTIFY=SUCCESS (RFC 3461 §4.1).
 *
 * bounce_compose() is pure: no I/O, no clock, no randomness of its own. The caller passes the time
 * (for Date:) and random bytes (for the MIME boundary), so that the same report always gives the
 * same message — which the tests and the fuzzer rely on. The result is an RFC 6522 multipart/report
 * with report-type=delivery-status: a text/plain explanation, the RFC 3464 message/delivery-status
 * part, and the header section of the original — or, in a failure report whose sender asked for RET=FULL
 * (RFC 3461 §4.3), the whole original when it is small and clean enough (BOUNCE_FULL_MAX). It is
 * meant to be queued with the null reverse-path, MAIL FROM:<> (RFC 5321 §4.5.5). */
#ifndef MAILWERK_QUEUE_BOUNCE_H
#define MAILWERK_QUEUE_BOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* RFC 5322 §2.1.1: a line is at most 998 octets, CRLF excluded. Every line produced keeps to it. */
#define BOUNCE_LINE_MAX 998
/* A remote reply is kept up to this many octets (after cleaning); longer ones end in "...". */
#define BOUNCE_DIAG_MAX 2048
/* Addresses, host names and other single values are kept up to this many octets. */
#define BOUNCE_VALUE_MAX 512
/* The attached header section stops at the first line that starts past this many octets. */
#define BOUNCE_HEADERS_MAX 65536
/* RET=FULL returns the whole original only up to this size (as Postfix's bounce_size_limit does);
 * a larger one, or one with a line that would break the report (over 998 octets, a NUL, a bare CR
 * or LF), is returned as its header section, and the text part says so. */
#define BOUNCE_FULL_MAX ((size_t)1 << 20)
/* Octets of caller-supplied randomness for the MIME boundary. */
#define BOUNCE_RANDOM_LEN 16

enum bounce_kind {
	BOUNCE_KIND_FAILURE = 0, /* recipients failed for good: "Undelivered Mail Returned to Sender" */
	BOUNCE_KIND_DELAY,       /* delay_warning_time passed, still retrying: "Delayed Mail" */
	BOUNCE_KIND_SUCCESS,     /* NOTIFY=SUCCESS recipients delivered or relayed: "Delivery report" */
};
const char *bounce_kind_str(enum bounce_kind k);

/* RFC 3464 §2.3.3 action values that mailwerk reports. */
enum bounce_action {
	BOUNCE_ACTION_FAILED = 0,
	BOUNCE_ACTION_DELAYED,
	BOUNCE_ACTION_DELIVERED, /* into a mailbox here (RFC 3461 §5.2.3) */
	BOUNCE_ACTION_RELAYED,   /* to a server that does not offer DSN (RFC 3461 §5.2.2) */
};
const char *bounce_action_str(enum bounce_action a);

struct bounce_rcpt {
	const char *addr;       /* the recipient as given in RCPT TO, "local@domain": Final-Recipient */
	const char *orcpt;      /* the ORCPT parameter decoded from xtext ("rfc822;addr"), NULL when the
				 * client gave none: Original-Recipient appears only then (RFC 3461 §6.3 d) */
	enum bounce_action action;
	const char *status;     /* RFC 3463 "5.1.1"; a malformed one (or a class that does not fit the
				 * action) is reported as 5.0.0 / 4.0.0 / 2.0.0 */
	const char *remote_mta; /* "dns; mx.example.org", or NULL; a bare host name gets "dns; " */
	const char *diagnostic; /* the remote reply, "smtp; 550 5.1.1 user unknown", or NULL; may hold
				 * several lines and any octets; a value without a type gets "smtp; " */
	size_t diagnostic_len;  /* octets of diagnostic (NULs included); 0 means strlen(diagnostic) */
	time_t last_attempt;    /* Last-Attempt-Date; 0 = not reported */
	time_t retry_until;     /* Will-Retry-Until, for the delayed action only; 0 = not reported */
};

struct bounce_report {
	const char *hostname;   /* ours: Reporting-MTA, From: MAILER-DAEMON@hostname, Message-ID */
	const char *queue_id;   /* of the original message */
	const char *sender;     /* the original reverse-path "local@domain" (RFC 6531 UTF-8 allowed) */
	const char *envid;      /* the ENVID parameter decoded from xtext, or NULL (RFC 3461 §6.3 a) */
	time_t arrival;         /* Arrival-Date; 0 = not reported */
	time_t now;             /* Date: of the report */
	enum bounce_kind kind;
	const struct bounce_rcpt *rcpts;
	size_t rcpt_count;
	const char *original;   /* the message as stored; its header section, or all of it (return_full) */
	size_t original_len;
	bool return_full;       /* RET=FULL (RFC 3461 §4.3): a failure report returns the whole message */
	/* RFC 8689 §5: a report on a message sent with REQUIRETLS may itself go without TLS, so it
	 * returns nothing of the message (neither RET=FULL nor its header section), only the report */
	bool withhold_content;
	unsigned char random[BOUNCE_RANDOM_LEN]; /* fresh random bytes (RAND_bytes) for the boundary */
};

/* RFC 5321 §4.5.5: no notification is ever sent about a message whose reverse-path is
 * null — it is itself a notification — nor to a MAILER-DAEMON mailbox, the conventional sender of
 * notifications on systems that fail to use the null path; either could start a loop. sender is the
 * reverse-path as stored ("" for <>). */
bool bounce_wanted(const char *sender);

/* Composes the complete DSN (header section and body, CRLF line ends, every line at most
 * BOUNCE_LINE_MAX octets). Returns a malloc'd, NUL-terminated buffer and its size in *size_r; NULL when
 * out of memory, or when there is nothing to send: !bounce_wanted(r->sender) or no recipients. */
char *bounce_compose(const struct bounce_report *r, size_t *size_r);

#endif
