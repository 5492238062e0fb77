/* operator.c — bouncing a queued message on the operator's word (operator.h). */
#include "delivery/operator.h"

#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "delivery/dsn.h"
#include "queue/queue.h"
#include "util/log.h"

/* RFC 3463 §3.1 "5.0.0 Other undefined status": no class fits a decision of the operator's. */
#define BOUNCE_NOW_STATUS "5.0.0"
/* RFC 3464 §2.3.6: a reason of ours, not an SMTP reply, gets a diagnostic type of our own (as the
 * runner's reasons do) */
#define BOUNCE_NOW_DIAGNOSTIC "X-Mailwerk; " DELIVERY_BOUNCE_REASON

static bool bounce_now_wanted(const struct queue_rcpt_info *r)
{
	return r->state == QUEUE_RCPT_PENDING || r->state == QUEUE_RCPT_DEFERRED;
}

/* The results and report lines for e's remaining recipients; the number of results, and in *nb_r
 * that of report lines. */
static size_t bounce_now_collect(const struct queue_entry *e, struct queue_rcpt_result *res,
				 struct bounce_rcpt *br, size_t *nb_r, int64_t now)
{
	size_t n = 0, nb = 0;
	for (size_t i = 0; i < e->rcpt_count; i++) {
		const struct queue_rcpt_info *r = &e->rcpts[i];
		if (!bounce_now_wanted(r))
			continue;
		/* recorded as failed in any case; reported only as its NOTIFY asks (RFC 3461 §4.1) */
		bool report = queue_notify_wants(r->dsn_notify, QUEUE_NOTIFY_FAILURE);
		res[n] = (struct queue_rcpt_result){
			.id = e->id,
			.idx = r->idx,
			.state = QUEUE_RCPT_FAILED,
			.error = DELIVERY_BOUNCE_REASON,
			.first = r->attempts == 0,
			.status = BOUNCE_NOW_STATUS,
			.reply = DELIVERY_BOUNCE_REASON,
		};
		n++;
		if (!report)
			continue;
		br[nb++] = (struct bounce_rcpt){
			.addr = r->addr,
			.orcpt = r->dsn_orcpt,
			.action = BOUNCE_ACTION_FAILED,
			.status = BOUNCE_NOW_STATUS,
			.diagnostic = BOUNCE_NOW_DIAGNOSTIC,
			.last_attempt = r->attempts > 0 ? (time_t)now : 0,
		};
	}
	*nb_r = nb;
	return n;
}

/* Records the failures of e (with its stored data) and the report, in one transaction. */
static enum result bounce_now_record(struct queue *q, const char *hostname, const struct queue_entry *e,
				     const char *data, size_t size, unsigned *count_r, const char **error_r)
{
	struct queue_rcpt_result *res = calloc(e->rcpt_count + 1, sizeof(*res));
	struct bounce_rcpt *br = calloc(e->rcpt_count + 1, sizeof(*br));
	enum result rc = RESULT_TEMPFAIL;
	*error_r = "out of memory";
	if (res != NULL && br != NULL) {
		int64_t now = (int64_t)time(NULL);
		size_t nb = 0;
		size_t n = bounce_now_collect(e, res, br, &nb, now);
		struct dsn_original o = {e->id, e->sender, e->arrival, data, size, e->no_dsn, e->dsn_envid,
					 e->dsn_ret == QUEUE_DSN_RET_FULL, e->requiretls};
		/* the same report the runner queues when a recipient fails for good */
		struct queue_msg *dsn = nb > 0 && !e->no_dsn ? dsn_message(hostname, &o, BOUNCE_KIND_FAILURE, br, nb, now) : NULL;
		if (n == 0) {
			*error_r = "the message has no recipient left to deliver";
			rc = RESULT_PERMFAIL;
		} else {
			rc = queue_rcpt_results(q, res, n, &dsn, dsn != NULL ? 1 : 0, error_r);
		}
		queue_msg_free(dsn);
		*count_r = rc == RESULT_OK ? (unsigned)n : 0;
	}
	free(res);
	free(br);
	return rc;
}

/* A message with an attempt under way is not bounced, and nothing is kept to bounce it later:
 * the receiver may already have the whole message and be about to answer the final dot, and a
 * report saying "failed" for mail that then arrives would be false (RFC 3464 §2.3.3: the action
 * states what happened). Postfix's forced expiration (postsuper -f) likewise never undoes the
 * delivery under way; only a later attempt expires. The operator is told so and decides again once
 * the attempt has ended: `queue hold` first keeps a new one from starting (a hold lets the one
 * under way finish). */
static enum result bounce_now_not_in_flight(struct queue *q, const char *id, const char **error_r)
{
	unsigned claimed = 0;
	enum result rc = queue_claimed_count(q, id, &claimed, error_r);
	if (rc == RESULT_OK && claimed > 0) {
		*error_r = DELIVERY_BOUNCE_IN_FLIGHT;
		rc = RESULT_TEMPFAIL;
	}
	return rc;
}

enum result delivery_bounce_now(struct queue *q, const char *hostname, const char *id, unsigned *count_r,
				const char **error_r)
{
	struct queue_entry *e = NULL;
	char *data = NULL;
	size_t size = 0;
	*count_r = 0;
	enum result rc = bounce_now_not_in_flight(q, id, error_r);
	if (rc == RESULT_OK)
		rc = queue_show(q, id, &e, error_r);
	if (rc == RESULT_OK)
		rc = queue_msg_data(q, id, &data, &size, error_r);
	if (rc == RESULT_OK)
		rc = bounce_now_record(q, hostname, e, data, size, count_r, error_r);
	if (rc == RESULT_OK)
		log_info("queue_id=%s event=bounced_by_operator rcpts=%u", id, *count_r);
	free(data);
	queue_entry_free(e);
	return rc;
}
