/* webhook_events.h — the outbox as Resend's webhook events (GET /webhooks/{id}/events and the
 * SDK's webhooks.events.*): each delivery of an event to a webhook, its status and payload, every
 * attempt with the receiver's answer, and a replay that posts the same payload again as a new
 * message. The event's id is its Standard Webhooks webhook-id ("msg_..."). Storage only; the
 * store's mutex is held around each call (webhooks_store.h). */
#ifndef MAILWERK_EVENTS_WEBHOOK_EVENTS_H
#define MAILWERK_EVENTS_WEBHOOK_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "events/webhooks_store.h"

struct webhook_event_entry {
	char id[WEBHOOK_MSG_ID_LEN + 1];
	char type[WEBHOOK_EVENT_NAME_MAX + 1];
	int64_t created_at;   /* unix ms */
	const char *status;   /* Resend's: success, pending, attempting (tried, to be tried again), failed */
	int64_t next_attempt; /* unix ms; 0 when none is due */
	char *payload;        /* the JSON posted (webhook_events_get only; NULL in a list) */
};
void webhook_event_entries_free(struct webhook_event_entry *e, size_t n);

struct webhook_attempt_entry {
	int64_t id;
	int status;     /* the HTTP status, 0 when no answer came */
	char *response; /* the receiver's first words, or why no answer came */
	int64_t at;     /* unix ms */
};
void webhook_attempt_entries_free(struct webhook_attempt_entry *a, size_t n);

/* The results: 1 done; 0 no such webhook (or event of it); 2 the after cursor names nothing; -1 a
 * database error, with a sentence in error. */

/* The webhook's events, newest first, after the event whose id is after (NULL: from the newest). */
int webhook_events_list(struct webhooks_store *s, const char *webhook_id, unsigned limit, const char *after,
			struct webhook_event_entry **e_r, size_t *n_r, bool *more_r, char *error, size_t error_size);
int webhook_events_get(struct webhooks_store *s, const char *webhook_id, const char *event_id,
		       struct webhook_event_entry *e_r, char *error, size_t error_size);
/* The event's attempts, newest first; after is an attempt's id in text (NULL: from the newest). */
int webhook_events_attempts(struct webhooks_store *s, const char *webhook_id, const char *event_id, unsigned limit,
			    const char *after, struct webhook_attempt_entry **a_r, size_t *n_r, bool *more_r, char *error,
			    size_t error_size);
/* Queues the event's payload again for its webhook, due at once, as a new message (a new
 * webhook-id, so a receiver that drops repeats takes it); its id in id_r. */
int webhook_events_replay(struct webhooks_store *s, const char *webhook_id, const char *event_id, int64_t now_ms,
			  char id_r[WEBHOOK_MSG_ID_LEN + 1], char *error, size_t error_size);

#endif
