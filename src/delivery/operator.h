/* operator.h — what the operator does to a queued message beyond the queue's own calls: bounce it
 * now (`mailwerk queue bounce`). Used by the CLI on queue.db and by the running server's control
 * socket alike, so both fail recipients the way the runner does at max_queue_lifetime. */
#ifndef MAILWERK_DELIVERY_OPERATOR_H
#define MAILWERK_DELIVERY_OPERATOR_H

#include "util/result.h"

struct queue;

/* The reason the report and the events give. */
#define DELIVERY_BOUNCE_REASON "bounced by the operator"
/* The error when an attempt to deliver the message is under way: nothing was changed. */
#define DELIVERY_BOUNCE_IN_FLIGHT "the message is being delivered now"

/* Fails every recipient of message id still to deliver (pending or deferred) and queues the failure
 * report for its sender (RFC 3464; none for the null sender or a message sent with no_dsn), in one
 * transaction; the message then leaves the queue. hostname is ours (Reporting-MTA). *count_r: the
 * recipients failed. RESULT_PERMFAIL when there is no such message or it has no recipient left;
 * RESULT_TEMPFAIL with DELIVERY_BOUNCE_IN_FLIGHT, changing nothing, while q has recipients of it
 * claimed by an attempt in flight. In a running server only the delivery runner's connection holds
 * claims, so the server bounces on the runner's thread (delivery_runner_bounce), between its
 * passes; the CLI calls this on queue.db only when no server runs, when nothing is in flight. */
enum result delivery_bounce_now(struct queue *q, const char *hostname, const char *id, unsigned *count_r,
				const char **error_r);

#endif
