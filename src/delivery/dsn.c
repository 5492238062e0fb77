/* dsn.c — wraps a composed delivery status notification into a message for the queue. */
#include "delivery/dsn.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "queue/queue.h"
#include "util/log.h"

struct queue_msg *dsn_message(const char *hostname, const struct dsn_original *o, enum bounce_kind kind,
			      const struct bounce_rcpt *rcpts, size_t n, int64_t now)
{
	if (n == 0 || !bounce_wanted(o->sender))
		return NULL;
	struct bounce_report rep = {
		.hostname = hostname,
		.queue_id = o->queue_id,
		.sender = o->sender,
		.envid = o->envid,
		.arrival = (time_t)o->arrival,
		.now = (time_t)now,
		.kind = kind,
		.rcpts = rcpts,
		.rcpt_count = n,
		.original = o->data,
		.original_len = o->size,
		.return_full = o->return_full,
		.withhold_content = o->requiretls,
	};
	struct queue_msg *b;
	if (RAND_bytes(rep.random, sizeof(rep.random)) != 1 || (b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	queue_id_new(b->id);
	b->data = bounce_compose(&rep, &b->size);
	b->sender = strdup(""); /* RFC 5321 §4.5.5: notifications go out with the null reverse-path */
	b->client_ip = strdup("");
	b->rcpts = calloc(1, sizeof(char *));
	if (b->rcpts != NULL)
		b->rcpts[0] = strdup(o->sender);
	b->rcpt_count = 1;
	b->arrival = now;
	if (b->data == NULL || b->sender == NULL || b->client_ip == NULL || b->rcpts == NULL || b->rcpts[0] == NULL) {
		queue_msg_free(b);
		return NULL;
	}
	char to[600]; /* the sender may be a quoted local part with spaces and quotes (RFC 5321 §4.1.2) */
	log_info("queue_id=%s event=%s dsn_id=%s to=%s rcpts=%zu", o->queue_id,
		 kind == BOUNCE_KIND_DELAY ? "delay_warning" : kind == BOUNCE_KIND_SUCCESS ? "success_dsn" : "bounce", b->id,
		 log_safe(to, sizeof(to), o->sender, (unsigned)strlen(o->sender)), n);
	return b;
}
