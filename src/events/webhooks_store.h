/* webhooks_store.h — the webhooks and their durable outbox, in queue.db next to the events they
 * announce (tables webhooks and webhook_deliveries; a step of queue.db's schema).
 *
 * Fan-out is by cursor: each webhook remembers the last events.seq it has been given. One
 * transaction creates a delivery row for every newer event the webhook subscribes to and moves the
 * cursor past them, so after a crash (kill -9 included) an event either has its deliveries or is
 * still ahead of the cursor: nothing is lost, nothing doubled by the fan-out itself. Sending is
 * at-least-once: a delivery stays pending until its outcome is recorded, and a receiver may see
 * one again (with the same webhook-id, Standard Webhooks' idempotency key) when the server died
 * between its 2xx and the record.
 *
 * Threads: every function locks the store's mutex around its SQLite work (one connection), so the
 * sender's worker jobs, the API's and the CLI can share one store; writes fsync, so never call
 * them on the loop thread. */
#ifndef MAILWERK_EVENTS_WEBHOOKS_STORE_H
#define MAILWERK_EVENTS_WEBHOOKS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEBHOOK_ID_LEN 36     /* a UUID, as Resend's webhook ids */
#define WEBHOOK_SECRET_LEN 50 /* "whsec_" + 44 base64 digits of 32 random octets */
#define WEBHOOK_MSG_ID_LEN 36 /* "msg_" + 32 hex digits: Standard Webhooks' webhook-id */
#define WEBHOOK_EVENT_NAME_MAX 40

/* The schema, a step of queue.db's migrations (db.h; store_sqlite.c's queue_schema_steps); and a
 * later step: every attempt of a delivery with its answer (webhook_events.c shows them). */
extern const char webhooks_schema_sql[];
extern const char webhook_attempts_schema_sql[];

struct webhooks_store;

/* Opens DATA_DIR/queue.db (creating and migrating it as the queue does) for webhooks. NULL with a
 * sentence in error. */
struct webhooks_store *webhooks_store_open(const char *data_dir, char *error, size_t error_size);
void webhooks_store_close(struct webhooks_store *s);

/* ---- the webhooks (API and CLI) ---- */

struct webhook {
	char id[WEBHOOK_ID_LEN + 1];
	char *endpoint;
	char *events_json; /* a JSON array of Resend's event names */
	char secret[WEBHOOK_SECRET_LEN + 1];
	bool enabled;
	int64_t created_at; /* unix milliseconds */
};
void webhook_clear(struct webhook *w);
void webhooks_free(struct webhook *w, size_t n);

/* Makes an enabled webhook with a new id and secret; it gets the events recorded from now on (its
 * cursor starts at the newest event). endpoint and events_json are the caller's, checked. 0 and
 * *w_r, or -1 with a sentence. */
int webhooks_store_create(struct webhooks_store *s, const char *endpoint, const char *events_json,
			  struct webhook *w_r, char *error, size_t error_size);
/* 1 found (*w_r), 0 no such id, -1 error. */
int webhooks_store_get(struct webhooks_store *s, const char *id, struct webhook *w_r, char *error,
		       size_t error_size);
/* Newest first; after: older than that id, before: newer (NULL: from the newest); at most limit.
 * 1, 0 when the cursor id is unknown, -1 error. *more_r: more lie beyond. */
int webhooks_store_list(struct webhooks_store *s, unsigned limit, const char *after, const char *before,
			struct webhook **w_r, size_t *n_r, bool *more_r, char *error, size_t error_size);
/* Changes what is not NULL (enabled: -1 leaves it). 1 changed, 0 no such id, -1 error. */
int webhooks_store_update(struct webhooks_store *s, const char *id, const char *endpoint,
			  const char *events_json, int enabled, char *error, size_t error_size);
/* Deletes the webhook and its deliveries. 1, 0 no such id, -1 error. */
int webhooks_store_delete(struct webhooks_store *s, const char *id, char *error, size_t error_size);
/* A new secret (old signatures stop verifying at once). 1 and secret_r, 0 no such id, -1 error. */
int webhooks_store_rotate(struct webhooks_store *s, const char *id, char secret_r[WEBHOOK_SECRET_LEN + 1],
			  char *error, size_t error_size);

/* ---- the outbox (the sender) ---- */

/* Creates the deliveries of up to max_events events past the cursors (see above), due at once;
 * *created_r rows. 0 when every cursor is at the newest event now, 1 when max_events were read
 * (call again for the rest), -1 with a sentence. */
int webhooks_store_fanout(struct webhooks_store *s, int64_t now_ms, unsigned max_events, unsigned *created_r,
			  char *error, size_t error_size);

/* An event of another object than an email (domain.updated): payload (the JSON body, made by the
 * caller) queued at once for every enabled webhook subscribed to event_type, in one transaction;
 * subject_id is the object's id. *created_r deliveries. 0, or -1 with a sentence. The sender posts
 * them on its next tick (webhook_sender_kick for sooner). */
int webhooks_store_enqueue(struct webhooks_store *s, const char *event_type, const char *subject_id,
			   const char *payload, int64_t now_ms, unsigned *created_r, char *error, size_t error_size);
/* The same inside the caller's open transaction on queue.db (db), so that the event and what it
 * announces commit together (inbound/inbound_store.c). SQLITE_OK, or the error. */
struct db;
int webhooks_enqueue_in(struct db *db, const char *event_type, const char *subject_id, const char *payload,
			int64_t now_ms, unsigned *created_r);

/* A delivery being posted (kept in memory by the sender). */
struct webhook_busy {
	int64_t delivery_id;
	char webhook_id[WEBHOOK_ID_LEN + 1];
};

/* A delivery to post now. */
struct webhook_due {
	int64_t delivery_id;
	char webhook_id[WEBHOOK_ID_LEN + 1];
	char msg_id[WEBHOOK_MSG_ID_LEN + 1];
	char event_type[WEBHOOK_EVENT_NAME_MAX + 1];
	char secret[WEBHOOK_SECRET_LEN + 1];
	unsigned attempts; /* made before this one */
	char *endpoint;
	char *payload;
};
void webhook_dues_free(struct webhook_due *d, size_t n);

/* Pending deliveries of enabled webhooks due by now_ms, oldest first, leaving out the busy ones:
 * at most per_endpoint per webhook (busy ones counted) and max in all. 0, or -1 with a sentence. */
int webhooks_store_due(struct webhooks_store *s, int64_t now_ms, const struct webhook_busy *busy,
		       size_t n_busy, unsigned per_endpoint, unsigned max, struct webhook_due **due_r,
		       size_t *n_r, char *error, size_t error_size);

/* How one attempt ended. */
struct webhook_outcome {
	int64_t delivery_id;
	unsigned attempts;    /* made, this one included */
	bool delivered;       /* the receiver answered 2xx */
	bool retry;           /* not delivered: next_attempt holds the time of the next attempt */
	int64_t next_attempt; /* unix ms */
	int status;           /* the HTTP status, 0 when none came */
	char error[256];      /* "" when delivered */
	char response[256];   /* the receiver's first words, or why no answer came */
};
/* Records outcomes in one transaction (delivered, pending again, or failed for good), each attempt
 * with its answer. 0, or -1. */
int webhooks_store_record(struct webhooks_store *s, const struct webhook_outcome *o, size_t n, int64_t now_ms,
			  char *error, size_t error_size);
/* Deletes delivered and failed deliveries last changed before before_ms. 0, or -1. */
int webhooks_store_prune(struct webhooks_store *s, int64_t before_ms, char *error, size_t error_size);
/* The backlog (GET /metrics): deliveries of enabled webhooks still pending, those in flight
 * included (they are pending until their outcome is recorded). A read, no write lock. 0 and
 * *pending_r, or -1 with a sentence. */
int webhooks_store_pending_count(struct webhooks_store *s, uint64_t *pending_r, char *error,
				 size_t error_size);

/* ---- the log (CLI) ---- */

struct webhook_log_entry {
	int64_t delivery_id;
	char webhook_id[WEBHOOK_ID_LEN + 1];
	char msg_id[WEBHOOK_MSG_ID_LEN + 1];
	char event_type[WEBHOOK_EVENT_NAME_MAX + 1];
	char email_id[WEBHOOK_ID_LEN + 1];
	char state[16]; /* pending, delivered, failed */
	unsigned attempts;
	int last_status;  /* 0: none */
	char *last_error; /* NULL: none */
	int64_t created_at, updated_at, next_attempt;
};
void webhook_log_free(struct webhook_log_entry *e, size_t n);
/* The newest limit deliveries (of one webhook, or of all when webhook_id is NULL). 0, or -1. */
int webhooks_store_log(struct webhooks_store *s, const char *webhook_id, unsigned limit,
		       struct webhook_log_entry **e_r, size_t *n_r, char *error, size_t error_size);

#endif
