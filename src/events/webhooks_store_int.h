/* webhooks_store_int.h — inside the webhooks store: shared by webhooks_store.c (the webhooks, the
 * outbox, the fan-out) and webhook_events.c (the deliveries as Resend's webhook events). Not for
 * other modules. */
#ifndef MAILWERK_EVENTS_WEBHOOKS_STORE_INT_H
#define MAILWERK_EVENTS_WEBHOOKS_STORE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <sqlite3.h>

#include "events/webhooks_store.h"

struct db;
struct queue;

struct webhooks_store {
	pthread_mutex_t mu;
	struct queue *q; /* opened for its connection: queue.db with the queue's settings and migrations */
	struct db *db;
};

/* The sentence for a failed SQLite call; rolls back an open transaction. Returns -1. */
int webhooks_store_fail(struct webhooks_store *s, const char *what, char *error, size_t error_size);
int webhooks_exec(struct webhooks_store *s, const char *sql);
/* Runs st to its end and resets it: SQLITE_DONE, or the error. */
int webhooks_step_done(sqlite3_stmt *st);
char *webhooks_col_dup(sqlite3_stmt *st, int i);
void webhooks_col_copy(sqlite3_stmt *st, int i, char *buf, size_t size);
/* Standard Webhooks' webhook-id: unique per message, the same on every retry. */
bool webhooks_msg_id_make(char id_r[WEBHOOK_MSG_ID_LEN + 1]);

#endif
