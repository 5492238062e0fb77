/* queue_id.c — owns queue ids (time-ordered Crockford base32) and the small helpers of queue.h that do
 * not depend on a store backend: recipient state names and freeing the value structs, so a second
 * backend (PostgreSQL, DESIGN.md §2) shares them. */
#include "queue/queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/rand.h>

#include "events/events.h"
#include "queue/spool.h"

/* Crockford base32: no I, L, O, U, so ids survive being read aloud or retyped. The alphabet is in
 * ASCII order, which keeps the string order of ids equal to the order of their timestamps. */
static const char queue_id_alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

#define QUEUE_ID_TIME_CHARS 10 /* 50 bits of milliseconds: good until the year 37648 */
#define QUEUE_ID_RAND_CHARS (QUEUE_ID_LEN - QUEUE_ID_TIME_CHARS)

static void queue_id_encode(char *out, uint64_t v, unsigned nchars)
{
	/* most significant 5-bit group first, so the text sorts like the number */
	for (unsigned i = nchars; i-- > 0;) {
		out[i] = queue_id_alphabet[v & 31];
		v >>= 5;
	}
}

static uint64_t queue_id_random50(void)
{
	unsigned char b[7];
	uint64_t v = 0;

	if (RAND_bytes(b, sizeof(b)) != 1) {
		/* The kernel's generator is what OpenSSL seeds from; use it directly rather than hand out
		 * predictable ids. */
		if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
			fputs("mailwerk: queue_id_new: no source of randomness\n", stderr);
			abort();
		}
	}
	for (size_t i = 0; i < sizeof(b); i++)
		v = (v << 8) | b[i];
	return v & ((UINT64_C(1) << 50) - 1);
}

void queue_id_new(char id_r[QUEUE_ID_LEN + 1])
{
	struct timespec ts;
	uint64_t ms;

	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
	queue_id_encode(id_r, ms, QUEUE_ID_TIME_CHARS);
	queue_id_encode(id_r + QUEUE_ID_TIME_CHARS, queue_id_random50(), QUEUE_ID_RAND_CHARS);
	id_r[QUEUE_ID_LEN] = '\0';
}

int queue_id_valid(const char *s)
{
	size_t i;

	if (s == NULL)
		return 0;
	/* Only the canonical (upper-case) spelling: ids are database keys compared byte for byte. */
	for (i = 0; i < QUEUE_ID_LEN; i++) {
		if (s[i] == '\0' || strchr(queue_id_alphabet, s[i]) == NULL)
			return 0;
	}
	return s[i] == '\0';
}

const char *queue_rcpt_state_str(enum queue_rcpt_state s)
{
	switch (s) {
	case QUEUE_RCPT_PENDING: return "pending";
	case QUEUE_RCPT_DELIVERED: return "delivered";
	case QUEUE_RCPT_DEFERRED: return "deferred";
	case QUEUE_RCPT_FAILED: return "failed";
	}
	return "unknown";
}

void queue_msg_free(struct queue_msg *m)
{
	if (m == NULL)
		return;
	free(m->sender);
	if (m->rcpts != NULL) {
		for (size_t i = 0; i < m->rcpt_count; i++)
			free(m->rcpts[i]);
		free(m->rcpts);
	}
	free(m->auth_user);
	free(m->client_ip);
	free(m->data);
	queue_spool_free(m->body);
	free(m->folder);
	email_record_free(m->track);
	free(m->dsn_envid);
	free(m->rcpt_notify);
	if (m->rcpt_orcpt != NULL) {
		for (size_t i = 0; i < m->rcpt_count; i++)
			free(m->rcpt_orcpt[i]);
		free(m->rcpt_orcpt);
	}
	free(m);
}

uint64_t queue_msg_total(const struct queue_msg *m)
{
	return m->size + (m->body != NULL ? m->body->size : 0);
}

void queue_entry_free(struct queue_entry *e)
{
	if (e == NULL)
		return;
	free(e->sender);
	free(e->auth_user);
	free(e->client_ip);
	if (e->rcpts != NULL) {
		for (size_t i = 0; i < e->rcpt_count; i++) {
			free(e->rcpts[i].addr);
			free(e->rcpts[i].last_error);
			free(e->rcpts[i].dsn_orcpt);
		}
		free(e->rcpts);
	}
	free(e->dsn_envid);
	free(e);
}

bool queue_msg_prepend(struct queue_msg *m, const char *text, size_t len)
{
	char *data = malloc(len + m->size + 1);
	if (data == NULL)
		return false;
	memcpy(data, text, len);
	if (m->size > 0)
		memcpy(data + len, m->data, m->size);
	data[len + m->size] = '\0';
	free(m->data);
	m->data = data;
	m->size += len;
	return true;
}

bool queue_notify_wants(unsigned notify, unsigned bit)
{
	if (notify & QUEUE_NOTIFY_NEVER)
		return false; /* RFC 3461 §4.1: NEVER, no DSN at all */
	if (notify == 0)
		return bit != QUEUE_NOTIFY_SUCCESS; /* no NOTIFY: as FAILURE,DELAY (RFC 3461 §4.1) */
	return (notify & bit) != 0;
}
