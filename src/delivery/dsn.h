/* dsn.h — the notification to queue for a sender when recipients failed for good, are delayed, or
 * were delivered and the sender asked to know (RFC 3461 NOTIFY=SUCCESS):
 * a queue_msg from the null reverse-path (RFC 5321 §4.5.5) holding the RFC 3464 report that
 * queue/bounce.h composes. Shared by local and remote delivery. */
#ifndef MAILWERK_DELIVERY_DSN_H
#define MAILWERK_DELIVERY_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue/bounce.h"

struct queue_msg;

struct dsn_original {
	const char *queue_id;
	const char *sender;   /* the reverse-path as stored, "" for <> */
	int64_t arrival;
	const char *data;     /* the message as stored; only its header section goes into the report */
	size_t size;
	bool no_dsn;          /* the sender follows the message's events instead: no report */
	const char *envid;    /* RFC 3461 ENVID decoded, or NULL: Original-Envelope-Id */
	bool return_full;     /* RFC 3461 RET=FULL */
	bool requiretls;      /* RFC 8689: sent with REQUIRETLS, so no report returns any of it (§5) */
};

/* The DSN of kind for rcpts, ready for queue_rcpt_results(); NULL when none is due (null sender,
 * MAILER-DAEMON, no recipients) or memory ran out. Logs the event. */
struct queue_msg *dsn_message(const char *hostname, const struct dsn_original *o, enum bounce_kind kind,
			      const struct bounce_rcpt *rcpts, size_t n, int64_t now);

#endif
