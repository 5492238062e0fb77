/* inbound_store.h — mail received for the applications (the inbound routes of mailbox/users.h):
 * each routed recipient's copy of a message is a file in the Maildir DATA_DIR/inbound (written as
 * local delivery writes, fsynced) and a row of received_emails in queue.db, next to the webhook
 * outbox, so the row and its email.received deliveries commit in one transaction: once the
 * delivery of a routed recipient is recorded, its webhook is queued (and retried until the
 * endpoint takes it), whatever crash comes after.
 *
 * A copy is keyed by its queue message and recipient, and its id is made from them, so a delivery
 * made again after a crash (the copy stored, the outcome not yet recorded) finds it there and
 * queues nothing twice. The row keeps what a list and the webhook show (the summary, Resend's
 * ListReceivingEmail as JSON); the rest is read from the file when asked for.
 *
 * Threads: every function locks the store's mutex around its SQLite work (one connection); writes
 * fsync, so never call them on the loop thread. */
#ifndef MAILWERK_INBOUND_INBOUND_STORE_H
#define MAILWERK_INBOUND_INBOUND_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/result.h"

#define INBOUND_ID_LEN 36 /* UUID-shaped, as Resend's ids */
#define INBOUND_DIR "inbound"

/* The schema, a step of queue.db's migrations (store_sqlite.c's queue_schema_steps). */
extern const char inbound_schema_sql[];

struct inbound_store;

/* Opens DATA_DIR/queue.db (migrated as the queue does) and the Maildir DATA_DIR/inbound (made if
 * missing). NULL with a sentence in error. */
struct inbound_store *inbound_store_open(const char *data_dir, char *error, size_t error_size);
void inbound_store_close(struct inbound_store *s);

/* One routed recipient's copy, as the delivery hands it over. */
struct inbound_copy {
	const char *queue_id;
	const char *rcpt;     /* the envelope recipient, as given (received_for) */
	const char *route_id;
	const char *sender;   /* the envelope sender ("" for <>) */
	const char *data;     /* the message as queued */
	size_t size;
	const char *hostname; /* ours: the name in our Received and Authentication-Results fields */
	/* the MX checked SPF, DKIM and DMARC, so the Authentication-Results field of our name on the
	 * message is ours (RFC 8601 §5: the MX removes others of that name before adding its own) */
	bool checked;
};

/* Stores the copy and queues its email.received deliveries (for every enabled webhook that asks
 * for it), unless the same queue message and recipient are stored already. RESULT_OK with the
 * copy's id in id_r; RESULT_TEMPFAIL (disk, database: try again later) or RESULT_PERMFAIL (the
 * message cannot be read as one) with a sentence in error. */
enum result inbound_store_put(struct inbound_store *s, const struct inbound_copy *c, int64_t now_ms,
			      char id_r[INBOUND_ID_LEN + 1], char *error, size_t error_size);

/* A stored copy. */
struct inbound_email {
	char id[INBOUND_ID_LEN + 1];
	int64_t created_ms;
	char *summary_json; /* Resend's ListReceivingEmail, with mailwerk's additions */
	char *file;         /* the path of the message, as received with Return-Path and Delivered-To */
	uint64_t size;
};
void inbound_email_clear(struct inbound_email *e);
void inbound_emails_free(struct inbound_email *e, size_t n);

/* 1 found (*e_r), 0 no such id, -1 error (a sentence). */
int inbound_store_get(struct inbound_store *s, const char *id, struct inbound_email *e_r, char *error,
		      size_t error_size);
/* Newest first; after/before: an id (Resend's cursors), NULL for none; at most limit. 1, 0 when
 * the cursor is not an id, -1 error. *more_r: more lie beyond. */
int inbound_store_list(struct inbound_store *s, unsigned limit, const char *after, const char *before,
		       struct inbound_email **e_r, size_t *n_r, bool *more_r, char *error, size_t error_size);
/* The message of a copy (malloc'd, *size_r octets): NULL with a sentence when it cannot be read. */
char *inbound_email_read(const struct inbound_email *e, size_t *size_r, char *error, size_t error_size);
/* How many copies were stored at or after since_ms. 0, or -1 with a sentence. */
int inbound_store_count_since(struct inbound_store *s, int64_t since_ms, uint64_t *count_r, char *error,
			      size_t error_size);
/* Removes the copies stored before before_ms (rows and files), at most max of them; *pruned_r.
 * 0, or -1 with a sentence. */
int inbound_store_prune(struct inbound_store *s, int64_t before_ms, unsigned max, unsigned *pruned_r,
			char *error, size_t error_size);

#endif
