/* checks.h — what the MX role checks in a message before it answers the end of DATA: SPF for the
 * envelope (RFC 7208), every DKIM signature (RFC 6376, up to a limit), then DMARC for the author
 * domain (RFC 9989) from those two. The outcome is one Authentication-Results field (RFC 8601) to
 * put on top of the message, and a verdict from the DMARC policy. Loop thread; the body hashing
 * runs on a worker thread, the DNS questions through the server's resolver. */
#ifndef MAILWERK_SMTP_CHECKS_H
#define MAILWERK_SMTP_CHECKS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "conf/conf.h"

struct queue_msg;
struct server;
struct smtp_checks;

/* Seconds the checks of one message may take (RFC 7208 §4.6.4: at least 20 for SPF); what is not
 * done by then is reported as temperror. */
#define SMTP_CHECKS_DEADLINE 20

enum smtp_checks_verdict {
	SMTP_CHECKS_ACCEPT = 0,
	SMTP_CHECKS_QUARANTINE, /* DMARC p=quarantine failed: deliver to the Junk folder (RFC 9989 §5.3.6) */
	SMTP_CHECKS_REJECT,     /* DMARC p=reject failed: 550 5.7.1 */
	SMTP_CHECKS_TEMPFAIL,   /* it would be a reject, but SPF or DKIM could not be evaluated: 451 */
};
const char *smtp_checks_verdict_str(enum smtp_checks_verdict v);

struct smtp_checks_input {
	const char *client_ip;  /* textual */
	const char *helo;
	const char *mail_from;  /* without brackets; "" for <> */
	struct queue_msg *m;    /* taken over; comes back in the outcome (cancel frees it) */
	size_t content_off;     /* where the content as received starts in m->data (after our trace field) */
	const struct conf *conf; /* hostname (the authserv-id), dkim_max_signatures, dmarc_action */
	time_t now;
};

struct smtp_checks_outcome {
	struct queue_msg *m; /* the message handed in; the receiver takes it */
	enum smtp_checks_verdict verdict;
	char *authres;     /* the complete Authentication-Results field (malloc'd; the receiver takes it),
			    * NULL when out of memory */
	char summary[256]; /* "spf=pass dkim=pass dmarc=pass" for the log */
	char reason[256];  /* for a rejection: the text of the 550 or 451 */
};

/* Called once on the loop thread, never from inside smtp_checks_start. o is valid during the call. */
typedef void smtp_checks_done_fn(void *arg, struct smtp_checks_outcome *o);

/* Starts the checks; NULL when out of memory (the caller then accepts without them or tempfails). */
struct smtp_checks *smtp_checks_start(struct server *srv, const struct smtp_checks_input *in,
				      smtp_checks_done_fn *done, void *arg);
/* done is not called; everything is freed (a hashing job on a worker thread finishes first, then
 * frees itself). */
void smtp_checks_cancel(struct smtp_checks *c);

#endif
