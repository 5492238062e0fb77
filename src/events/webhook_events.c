/* webhook_events.c — the webhook deliveries as Resend's webhook events (webhook_events.h). */
#include "events/webhook_events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "db/db.h"
#include "events/webhooks_store_int.h"

void webhook_event_entries_free(struct webhook_event_entry *e, size_t n)
{
	for (size_t i = 0; e != NULL && i < n; i++)
		free(e[i].payload);
	free(e);
}

void webhook_attempt_entries_free(struct webhook_attempt_entry *a, size_t n)
{
	for (size_t i = 0; a != NULL && i < n; i++)
		free(a[i].response);
	free(a);
}

/* Resend's WebhookEventLogStatus of a delivery's state. */
static const char *event_status(const char *state, int attempts)
{
	if (strcmp(state, "delivered") == 0)
		return "success";
	if (strcmp(state, "failed") == 0)
		return "failed";
	return attempts > 0 ? "attempting" : "pending";
}

#define EVENT_COLUMNS "msg_id, event_type, created_at, state, attempts, next_attempt"

static void event_read(sqlite3_stmt *st, struct webhook_event_entry *e)
{
	char state[16];
	webhooks_col_copy(st, 0, e->id, sizeof(e->id));
	webhooks_col_copy(st, 1, e->type, sizeof(e->type));
	e->created_at = sqlite3_column_int64(st, 2);
	webhooks_col_copy(st, 3, state, sizeof(state));
	e->status = event_status(state, sqlite3_column_int(st, 4));
	e->next_attempt = strcmp(e->status, "success") != 0 && strcmp(e->status, "failed") != 0 ? sqlite3_column_int64(st, 5) : 0;
}

/* 1 when the webhook exists, 0 when not, -1 error. */
static int webhook_exists(struct webhooks_store *s, const char *webhook_id)
{
	sqlite3_stmt *st = db_stmt(s->db, "SELECT 1 FROM webhooks WHERE id = ?1");
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, webhook_id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* The delivery id of the webhook's event (0: none, -1: error). */
static int64_t delivery_of(struct webhooks_store *s, const char *webhook_id, const char *event_id)
{
	sqlite3_stmt *st = db_stmt(s->db, "SELECT id FROM webhook_deliveries WHERE webhook_id = ?1 AND msg_id = ?2");
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, webhook_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, event_id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : rc == SQLITE_DONE ? 0 : -1;
	sqlite3_reset(st);
	return id;
}

int webhook_events_list(struct webhooks_store *s, const char *webhook_id, unsigned limit, const char *after,
			struct webhook_event_entry **e_r, size_t *n_r, bool *more_r, char *error, size_t error_size)
{
	*e_r = NULL, *n_r = 0, *more_r = false;
	struct webhook_event_entry *e = calloc(limit > 0 ? limit : 1, sizeof(*e));
	if (e == NULL) {
		snprintf(error, error_size, "out of memory");
		return -1;
	}
	pthread_mutex_lock(&s->mu);
	int r = webhook_exists(s, webhook_id);
	int64_t cursor = INT64_MAX;
	if (r == 1 && after != NULL && (cursor = delivery_of(s, webhook_id, after)) <= 0)
		r = cursor == 0 ? 2 : -1;
	sqlite3_stmt *st = r == 1 ? db_stmt(s->db, "SELECT " EVENT_COLUMNS " FROM webhook_deliveries WHERE webhook_id = ?1"
						   " AND id < ?2 ORDER BY id DESC LIMIT ?3")
				  : NULL;
	size_t n = 0;
	if (st != NULL) {
		sqlite3_bind_text(st, 1, webhook_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, cursor);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)limit + 1);
		int rc;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (n == limit) {
				*more_r = true;
				break;
			}
			event_read(st, &e[n++]);
		}
		sqlite3_reset(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			r = -1;
	} else if (r == 1) {
		r = -1;
	}
	if (r < 0)
		webhooks_store_fail(s, "reading the events", error, error_size);
	pthread_mutex_unlock(&s->mu);
	if (r != 1) {
		webhook_event_entries_free(e, n);
		return r;
	}
	*e_r = e, *n_r = n;
	return 1;
}

int webhook_events_get(struct webhooks_store *s, const char *webhook_id, const char *event_id,
		       struct webhook_event_entry *e_r, char *error, size_t error_size)
{
	memset(e_r, 0, sizeof(*e_r));
	pthread_mutex_lock(&s->mu);
	sqlite3_stmt *st = db_stmt(s->db, "SELECT " EVENT_COLUMNS ", payload FROM webhook_deliveries"
					  " WHERE webhook_id = ?1 AND msg_id = ?2");
	int r = -1;
	if (st != NULL) {
		sqlite3_bind_text(st, 1, webhook_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, event_id, -1, SQLITE_STATIC);
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			event_read(st, e_r);
			e_r->payload = webhooks_col_dup(st, 6);
			r = e_r->payload != NULL ? 1 : -1;
		} else if (rc == SQLITE_DONE) {
			r = 0;
		}
		sqlite3_reset(st);
	}
	if (r < 0)
		webhooks_store_fail(s, "reading an event", error, error_size);
	pthread_mutex_unlock(&s->mu);
	return r;
}

int webhook_events_attempts(struct webhooks_store *s, const char *webhook_id, const char *event_id, unsigned limit,
			    const char *after, struct webhook_attempt_entry **a_r, size_t *n_r, bool *more_r, char *error,
			    size_t error_size)
{
	*a_r = NULL, *n_r = 0, *more_r = false;
	int64_t cursor = INT64_MAX;
	if (after != NULL) {
		char *end;
		long long v = strtoll(after, &end, 10);
		if (*end != '\0' || after[0] < '0' || after[0] > '9' || v <= 0)
			return 2;
		cursor = v;
	}
	struct webhook_attempt_entry *a = calloc(limit > 0 ? limit : 1, sizeof(*a));
	if (a == NULL) {
		snprintf(error, error_size, "out of memory");
		return -1;
	}
	pthread_mutex_lock(&s->mu);
	int64_t delivery = delivery_of(s, webhook_id, event_id);
	int r = delivery > 0 ? 1 : (int)delivery;
	sqlite3_stmt *st = r == 1 ? db_stmt(s->db, "SELECT id, status, response, at FROM webhook_attempts"
						   " WHERE delivery_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3")
				  : NULL;
	size_t n = 0;
	if (st != NULL) {
		sqlite3_bind_int64(st, 1, delivery);
		sqlite3_bind_int64(st, 2, cursor);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)limit + 1);
		int rc;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (n == limit) {
				*more_r = true;
				break;
			}
			struct webhook_attempt_entry *x = &a[n++];
			x->id = sqlite3_column_int64(st, 0);
			x->status = sqlite3_column_int(st, 1);
			x->response = webhooks_col_dup(st, 2);
			x->at = sqlite3_column_int64(st, 3);
			if (x->response == NULL) {
				rc = SQLITE_NOMEM;
				break;
			}
		}
		sqlite3_reset(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			r = -1;
	} else if (r == 1) {
		r = -1;
	}
	if (r < 0)
		webhooks_store_fail(s, "reading the attempts", error, error_size);
	pthread_mutex_unlock(&s->mu);
	if (r != 1) {
		webhook_attempt_entries_free(a, n);
		return r;
	}
	*a_r = a, *n_r = n;
	return 1;
}

int webhook_events_replay(struct webhooks_store *s, const char *webhook_id, const char *event_id, int64_t now_ms,
			  char id_r[WEBHOOK_MSG_ID_LEN + 1], char *error, size_t error_size)
{
	if (!webhooks_msg_id_make(id_r)) {
		snprintf(error, error_size, "no randomness for an id");
		return -1;
	}
	pthread_mutex_lock(&s->mu);
	/* as an event of another object (webhooks_store_enqueue): the next negative seq of the webhook */
	sqlite3_stmt *st = db_stmt(
		s->db,
		"INSERT INTO webhook_deliveries(webhook_id, event_seq, email_id, event_type, msg_id, payload,"
		" next_attempt, created_at, updated_at)"
		" SELECT webhook_id, (SELECT min(0, coalesce(min(event_seq), 0)) - 1 FROM webhook_deliveries"
		" WHERE webhook_id = ?1), email_id, event_type, ?3, payload, ?4, ?4, ?4 FROM webhook_deliveries"
		" WHERE webhook_id = ?1 AND msg_id = ?2");
	int r = -1;
	if (st != NULL) {
		sqlite3_bind_text(st, 1, webhook_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, event_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, id_r, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, now_ms);
		if (webhooks_step_done(st) == SQLITE_DONE)
			r = sqlite3_changes(db_sqlite(s->db)) > 0 ? 1 : 0;
	}
	if (r < 0)
		webhooks_store_fail(s, "replaying an event", error, error_size);
	pthread_mutex_unlock(&s->mu);
	return r;
}
