/* webhooks_store.c — the webhooks and the outbox of their deliveries in queue.db
 * (webhooks_store.h): CRUD for the API and the CLI, the fan-out by cursor, the due scan, the
 * outcomes, the log. */
#include "events/webhooks_store.h"
#include "events/webhooks_store_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include "db/db.h"
#include "events/events.h"
#include "events/webhook_payload.h"
#include "queue/queue.h"
#include "util/base64.h"
#include "util/date.h"

/* The webhooks, and one row per (webhook, event) to post. The payload is made once, at fan-out,
 * so every attempt posts the same body (and the event's record may be pruned meanwhile); the
 * signature is made per attempt, as its timestamp is the attempt's (Standard Webhooks: receivers
 * refuse timestamps more than 5 minutes off). UNIQUE(webhook_id, event_seq) makes a second
 * fan-out of one event a no-op. */
const char webhooks_schema_sql[] =
	"CREATE TABLE webhooks("
	" id TEXT PRIMARY KEY,"
	" endpoint TEXT NOT NULL,"
	" events TEXT NOT NULL,"
	" secret TEXT NOT NULL,"
	" status TEXT NOT NULL DEFAULT 'enabled' CHECK(status IN ('enabled', 'disabled')),"
	" created_at INTEGER NOT NULL,"
	" cursor INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE webhook_deliveries("
	" id INTEGER PRIMARY KEY,"
	" webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,"
	" event_seq INTEGER NOT NULL,"
	" email_id TEXT NOT NULL,"
	" event_type TEXT NOT NULL,"
	" msg_id TEXT NOT NULL,"
	" payload TEXT NOT NULL,"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" next_attempt INTEGER NOT NULL,"
	" state TEXT NOT NULL DEFAULT 'pending' CHECK(state IN ('pending', 'delivered', 'failed')),"
	" last_status INTEGER,"
	" last_error TEXT,"
	" created_at INTEGER NOT NULL,"
	" updated_at INTEGER NOT NULL,"
	" UNIQUE(webhook_id, event_seq));"
	/* the sender asks "what of webhook W is pending and due by T" */
	"CREATE INDEX webhook_deliveries_due ON webhook_deliveries(webhook_id, state, next_attempt);"
	/* pruning asks "what is finished and older than T" */
	"CREATE INDEX webhook_deliveries_done ON webhook_deliveries(state, updated_at);";


/* One row per attempt (Resend's webhook event attempts), gone with its delivery. */
const char webhook_attempts_schema_sql[] =
	"CREATE TABLE webhook_attempts("
	" id INTEGER PRIMARY KEY,"
	" delivery_id INTEGER NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,"
	" at INTEGER NOT NULL,"
	" status INTEGER,"
	" response TEXT NOT NULL);"
	"CREATE INDEX webhook_attempts_delivery ON webhook_attempts(delivery_id);";

struct webhooks_store *webhooks_store_open(const char *data_dir, char *error, size_t error_size)
{
	struct webhooks_store *s = calloc(1, sizeof(*s));
	const char *err = "out of memory";
	if (s == NULL || (s->q = queue_open(data_dir, &err)) == NULL) {
		snprintf(error, error_size, "%s", err);
		free(s);
		return NULL;
	}
	s->db = queue_db(s->q);
	pthread_mutex_init(&s->mu, NULL);
	return s;
}

void webhooks_store_close(struct webhooks_store *s)
{
	if (s == NULL)
		return;
	queue_close(s->q);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

void webhook_clear(struct webhook *w)
{
	free(w->endpoint);
	free(w->events_json);
	OPENSSL_cleanse(w->secret, sizeof(w->secret));
	memset(w, 0, sizeof(*w));
}

void webhooks_free(struct webhook *w, size_t n)
{
	for (size_t i = 0; w != NULL && i < n; i++)
		webhook_clear(&w[i]);
	free(w);
}

void webhook_dues_free(struct webhook_due *d, size_t n)
{
	for (size_t i = 0; d != NULL && i < n; i++) {
		free(d[i].endpoint);
		free(d[i].payload);
		OPENSSL_cleanse(d[i].secret, sizeof(d[i].secret));
	}
	free(d);
}

void webhook_log_free(struct webhook_log_entry *e, size_t n)
{
	for (size_t i = 0; e != NULL && i < n; i++)
		free(e[i].last_error);
	free(e);
}

/* ---- small pieces (shared with webhook_events.c: webhooks_store_int.h) ---- */

/* The sentence for a failed SQLite call; rolls back an open transaction. Returns -1. */
int webhooks_store_fail(struct webhooks_store *s, const char *what, char *error, size_t error_size)
{
	sqlite3 *db = db_sqlite(s->db);
	snprintf(error, error_size, "%s: %s", what, sqlite3_errmsg(db));
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

int webhooks_exec(struct webhooks_store *s, const char *sql)
{
	return sqlite3_exec(db_sqlite(s->db), sql, NULL, NULL, NULL);
}

/* Runs st to its end and resets it: SQLITE_DONE, or the error. */
int webhooks_step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? SQLITE_DONE : rc;
}

char *webhooks_col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t != NULL ? strdup((const char *)t) : NULL;
}

void webhooks_col_copy(sqlite3_stmt *st, int i, char *buf, size_t size)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	snprintf(buf, size, "%s", t != NULL ? (const char *)t : "");
}

/* "whsec_" + base64 of 32 random octets: 256 bits, the size of the HMAC-SHA256 key (Standard
 * Webhooks asks for 24 to 64 octets). */
static bool secret_make(char secret_r[WEBHOOK_SECRET_LEN + 1])
{
	unsigned char raw[32];
	size_t plen = strlen(WEBHOOK_SECRET_PREFIX);
	bool ok = RAND_bytes(raw, sizeof(raw)) == 1;
	memcpy(secret_r, WEBHOOK_SECRET_PREFIX, plen);
	ok = ok && base64_encode(raw, sizeof(raw), secret_r + plen, WEBHOOK_SECRET_LEN + 1 - plen);
	OPENSSL_cleanse(raw, sizeof(raw));
	return ok;
}

bool webhooks_msg_id_make(char id_r[WEBHOOK_MSG_ID_LEN + 1])
{
	unsigned char raw[16];
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return false;
	memcpy(id_r, "msg_", 4);
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(id_r + 4 + 2 * i, 3, "%02x", raw[i]);
	return true;
}

static void webhook_read(sqlite3_stmt *st, struct webhook *w)
{
	/* columns: id, endpoint, events, secret, status, created_at */
	webhooks_col_copy(st, 0, w->id, sizeof(w->id));
	w->endpoint = webhooks_col_dup(st, 1);
	w->events_json = webhooks_col_dup(st, 2);
	webhooks_col_copy(st, 3, w->secret, sizeof(w->secret));
	const unsigned char *status = sqlite3_column_text(st, 4);
	w->enabled = status != NULL && strcmp((const char *)status, "enabled") == 0;
	w->created_at = sqlite3_column_int64(st, 5);
}

#define WEBHOOK_COLUMNS "id, endpoint, events, secret, status, created_at"

/* ---- the webhooks ---- */

int webhooks_store_create(struct webhooks_store *s, const char *endpoint, const char *events_json,
			  struct webhook *w_r, char *error, size_t error_size)
{
	memset(w_r, 0, sizeof(*w_r));
	email_id_new(w_r->id);
	if (!secret_make(w_r->secret)) {
		snprintf(error, error_size, "no random numbers for the signing secret");
		return -1;
	}
	w_r->endpoint = strdup(endpoint);
	w_r->events_json = strdup(events_json);
	w_r->enabled = true;
	w_r->created_at = date_now_ms();
	if (w_r->endpoint == NULL || w_r->events_json == NULL) {
		webhook_clear(w_r);
		snprintf(error, error_size, "out of memory");
		return -1;
	}
	pthread_mutex_lock(&s->mu);
	/* the cursor starts at the newest event: a webhook hears of what happens from its creation on */
	sqlite3_stmt *st =
		db_stmt(s->db,
			"INSERT INTO webhooks(id, endpoint, events, secret, status, created_at, cursor)"
			" VALUES(?1, ?2, ?3, ?4, 'enabled', ?5, (SELECT coalesce(max(seq), 0) FROM events))");
	int rc = SQLITE_ERROR;
	if (st != NULL) {
		sqlite3_bind_text(st, 1, w_r->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, endpoint, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, events_json, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, w_r->secret, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, w_r->created_at);
		rc = webhooks_step_done(st);
	}
	int r = rc == SQLITE_DONE ? 0 : webhooks_store_fail(s, "storing the webhook", error, error_size);
	pthread_mutex_unlock(&s->mu);
	if (r != 0)
		webhook_clear(w_r);
	return r;
}

int webhooks_store_get(struct webhooks_store *s, const char *id, struct webhook *w_r, char *error,
		       size_t error_size)
{
	memset(w_r, 0, sizeof(*w_r));
	pthread_mutex_lock(&s->mu);
	sqlite3_stmt *st = db_stmt(s->db, "SELECT " WEBHOOK_COLUMNS " FROM webhooks WHERE id = ?1");
	int r = -1, rc = SQLITE_ERROR;
	if (st != NULL) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			webhook_read(st, w_r), r = 1;
		else if (rc == SQLITE_DONE)
			r = 0;
		sqlite3_reset(st);
	}
	if (r < 0)
		webhooks_store_fail(s, "reading the webhook", error, error_size);
	pthread_mutex_unlock(&s->mu);
	return r;
}

/* The rowid of webhook id (the list's order, newest = highest): 1, 0 unknown, -1 error. */
static int rowid_of(struct webhooks_store *s, const char *id, int64_t *rowid_r)
{
	sqlite3_stmt *st = db_stmt(s->db, "SELECT rowid FROM webhooks WHERE id = ?1");
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st), r = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
	if (r == 1)
		*rowid_r = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return r;
}

int webhooks_store_list(struct webhooks_store *s, unsigned limit, const char *after, const char *before,
			struct webhook **w_r, size_t *n_r, bool *more_r, char *error, size_t error_size)
{
	*w_r = NULL, *n_r = 0, *more_r = false;
	struct webhook *w = calloc(limit + 1, sizeof(*w));
	if (w == NULL) {
		snprintf(error, error_size, "out of memory");
		return -1;
	}
	pthread_mutex_lock(&s->mu);
	int64_t mark = INT64_MAX;
	int r = 1;
	const char *cursor = after != NULL ? after : before;
	if (cursor != NULL)
		r = rowid_of(s, cursor, &mark);
	sqlite3_stmt *st = NULL;
	if (r == 1) {
		/* before: the ones just newer than the cursor, read upwards and turned around below */
		st = db_stmt(s->db, before != NULL
					    ? "SELECT " WEBHOOK_COLUMNS
					      " FROM webhooks WHERE rowid > ?1 ORDER BY rowid LIMIT ?2"
					    : "SELECT " WEBHOOK_COLUMNS
					      " FROM webhooks WHERE rowid < ?1 ORDER BY rowid DESC LIMIT ?2");
		r = st != NULL ? 1 : -1;
	}
	size_t n = 0;
	if (r == 1) {
		sqlite3_bind_int64(st, 1, mark);
		sqlite3_bind_int(st, 2, (int)limit + 1);
		int rc;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW && n <= limit)
			webhook_read(st, &w[n++]);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			r = -1;
		sqlite3_reset(st);
	}
	if (r < 0)
		webhooks_store_fail(s, "listing the webhooks", error, error_size);
	pthread_mutex_unlock(&s->mu);
	if (r != 1) {
		webhooks_free(w, n);
		return r;
	}
	if (n > limit) {
		*more_r = true;
		webhook_clear(&w[--n]);
	}
	if (before != NULL)
		for (size_t i = 0; i < n / 2; i++) {
			struct webhook t = w[i];
			w[i] = w[n - 1 - i];
			w[n - 1 - i] = t;
		}
	*w_r = w, *n_r = n;
	return 1;
}

int webhooks_store_update(struct webhooks_store *s, const char *id, const char *endpoint,
			  const char *events_json, int enabled, char *error, size_t error_size)
{
	pthread_mutex_lock(&s->mu);
	/* a webhook enabled again starts at the newest event, as a new one: it was told it would get
	 * nothing while disabled, and events of that time are not saved up for it */
	sqlite3_stmt *st =
		db_stmt(s->db,
			"UPDATE webhooks SET endpoint = coalesce(?2, endpoint), events = coalesce(?3, events),"
			" cursor = CASE WHEN ?4 = 'enabled' AND status = 'disabled'"
			"  THEN (SELECT coalesce(max(seq), 0) FROM events) ELSE cursor END,"
			" status = coalesce(?4, status) WHERE id = ?1");
	int r = -1;
	if (st != NULL && webhooks_exec(s, "BEGIN IMMEDIATE") == SQLITE_OK) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, endpoint, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, events_json, -1, SQLITE_STATIC);
		if (enabled >= 0)
			sqlite3_bind_text(st, 4, enabled ? "enabled" : "disabled", -1, SQLITE_STATIC);
		if (webhooks_step_done(st) == SQLITE_DONE)
			r = sqlite3_changes(db_sqlite(s->db)) > 0 ? 1 : 0;
	}
	/* and what it still had to deliver is given up, for the same reason (Resend: a disabled
	 * webhook gets no events) */
	sqlite3_stmt *fail =
		r == 1 && enabled == 0
			? db_stmt(s->db, "UPDATE webhook_deliveries SET state = 'failed',"
					 " last_error = 'the webhook was disabled', updated_at = ?2"
					 " WHERE webhook_id = ?1 AND state = 'pending'")
			: NULL;
	if (fail != NULL) {
		sqlite3_bind_text(fail, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(fail, 2, date_now_ms());
		if (webhooks_step_done(fail) != SQLITE_DONE)
			r = -1;
	} else if (r == 1 && enabled == 0) {
		r = -1;
	}
	if (r >= 0 && webhooks_exec(s, "COMMIT") != SQLITE_OK)
		r = -1;
	if (r < 0)
		webhooks_store_fail(s, "changing the webhook", error, error_size);
	pthread_mutex_unlock(&s->mu);
	return r;
}

int webhooks_store_delete(struct webhooks_store *s, const char *id, char *error, size_t error_size)
{
	pthread_mutex_lock(&s->mu);
	/* its deliveries go with it (ON DELETE CASCADE: the connection has foreign_keys on) */
	sqlite3_stmt *st = db_stmt(s->db, "DELETE FROM webhooks WHERE id = ?1");
	int r = -1;
	if (st != NULL) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		if (webhooks_step_done(st) == SQLITE_DONE)
			r = sqlite3_changes(db_sqlite(s->db)) > 0 ? 1 : 0;
	}
	if (r < 0)
		webhooks_store_fail(s, "deleting the webhook", error, error_size);
	pthread_mutex_unlock(&s->mu);
	return r;
}

int webhooks_store_rotate(struct webhooks_store *s, const char *id, char secret_r[WEBHOOK_SECRET_LEN + 1],
			  char *error, size_t error_size)
{
	if (!secret_make(secret_r)) {
		snprintf(error, error_size, "no random numbers for the signing secret");
		return -1;
	}
	pthread_mutex_lock(&s->mu);
	sqlite3_stmt *st = db_stmt(s->db, "UPDATE webhooks SET secret = ?2 WHERE id = ?1");
	int r = -1;
	if (st != NULL) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, secret_r, -1, SQLITE_STATIC);
		if (webhooks_step_done(st) == SQLITE_DONE)
			r = sqlite3_changes(db_sqlite(s->db)) > 0 ? 1 : 0;
	}
	if (r < 0)
		webhooks_store_fail(s, "storing the new secret", error, error_size);
	pthread_mutex_unlock(&s->mu);
	return r;
}

/* ---- fan-out ---- */

struct fan_hook {
	char id[WEBHOOK_ID_LEN + 1];
	uint32_t mask; /* 0 when disabled: its cursor moves, it gets nothing */
	int64_t cursor;
};

struct fan_event {
	int64_t seq;
	char *payload;
	char email_id[EMAIL_ID_LEN + 1];
	enum email_event_type type;
};

/* The events past lo (at most max), with their payloads made (NULL for types not posted). 0 or -1. */
static int fan_events_read(struct webhooks_store *s, int64_t lo, unsigned max, struct fan_event *ev,
			   size_t *n_r)
{
	sqlite3_stmt *st =
		db_stmt(s->db,
			"SELECT e.seq, e.email_id, e.rcpt_idx, e.type, e.created_at, e.detail, m.created_at,"
			" m.from_addr, m.subject, m.to_json, m.tags_json, m.message_id, r.addr"
			" FROM events e JOIN emails m ON m.id = e.email_id"
			" LEFT JOIN email_rcpts r ON r.email_id = e.email_id AND r.idx = e.rcpt_idx"
			" WHERE e.seq > ?1 ORDER BY e.seq LIMIT ?2");
	size_t n = 0;
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, lo);
	sqlite3_bind_int(st, 2, (int)max);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < max) {
		struct fan_event *e = &ev[n++];
		e->seq = sqlite3_column_int64(st, 0);
		webhooks_col_copy(st, 1, e->email_id, sizeof(e->email_id));
		e->type = (enum email_event_type)sqlite3_column_int(st, 3);
		e->payload = NULL;
		if (webhook_event_name(e->type) == NULL)
			continue;
		const struct webhook_event_in in = {
			.type = e->type,
			.at_ms = sqlite3_column_int64(st, 4),
			.email_id = e->email_id,
			.email_created_ms = sqlite3_column_int64(st, 6),
			.from = (const char *)sqlite3_column_text(st, 7),
			.subject = (const char *)sqlite3_column_text(st, 8),
			.to_json = (const char *)sqlite3_column_text(st, 9),
			.tags_json = (const char *)sqlite3_column_text(st, 10),
			.message_id = (const char *)sqlite3_column_text(st, 11),
			.recipient = sqlite3_column_int(st, 2) >= 0
					     ? (const char *)sqlite3_column_text(st, 12)
					     : NULL,
			.detail_json = (const char *)sqlite3_column_text(st, 5),
		};
		const char *why;
		if (webhook_payload_build(&in, &e->payload, &why) == WEBHOOK_PAYLOAD_ERR_NOMEM) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	sqlite3_reset(st);
	*n_r = n;
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

static int fan_hooks_read(struct webhooks_store *s, struct fan_hook **h_r, size_t *n_r)
{
	sqlite3_stmt *st = db_stmt(s->db, "SELECT id, events, status, cursor FROM webhooks");
	struct fan_hook *h = NULL;
	size_t n = 0, cap = 0;
	int rc;
	*h_r = NULL, *n_r = 0;
	if (st == NULL)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			struct fan_hook *g = realloc(h, (cap = cap ? cap * 2 : 8) * sizeof(*g));
			if (g == NULL) {
				rc = SQLITE_NOMEM;
				break;
			}
			h = g;
		}
		webhooks_col_copy(st, 0, h[n].id, sizeof(h[n].id));
		const unsigned char *status = sqlite3_column_text(st, 2);
		bool enabled = status != NULL && strcmp((const char *)status, "enabled") == 0;
		h[n].mask = enabled ? webhook_events_mask((const char *)sqlite3_column_text(st, 1)) : 0;
		h[n].cursor = sqlite3_column_int64(st, 3);
		n++;
	}
	sqlite3_reset(st);
	*h_r = h, *n_r = n;
	return rc == SQLITE_DONE ? 0 : -1;
}

int webhooks_store_fanout(struct webhooks_store *s, int64_t now_ms, unsigned max_events, unsigned *created_r,
			  char *error, size_t error_size)
{
	*created_r = 0;
	struct fan_event *ev = calloc(max_events, sizeof(*ev));
	if (ev == NULL) {
		snprintf(error, error_size, "out of memory");
		return -1;
	}
	pthread_mutex_lock(&s->mu);
	int64_t max_seq = 0, lo = 0;
	struct fan_hook *h = NULL;
	size_t nh = 0, ne = 0;
	int r = -1;
	/* a read first, so that an idle tick takes no write lock (and commits nothing) */
	int rc = db_int64(s->db, "SELECT coalesce(max(seq), 0) FROM events", &max_seq);
	if (rc == SQLITE_OK)
		rc = db_int64(s->db, "SELECT coalesce(min(cursor), 9223372036854775807) FROM webhooks", &lo);
	if (rc != SQLITE_OK) {
		webhooks_store_fail(s, "reading the outbox", error, error_size);
		goto out;
	}
	if (lo >= max_seq) {
		r = 0;
		goto out;
	}
	/* IMMEDIATE: the write lock from the start, so nobody commits events between the read of
	 * the cursors and their update (a deferred transaction would fail with SQLITE_BUSY there) */
	if (webhooks_exec(s, "BEGIN IMMEDIATE") != SQLITE_OK || fan_hooks_read(s, &h, &nh) != 0) {
		webhooks_store_fail(s, "starting the fan-out", error, error_size);
		goto out;
	}
	lo = INT64_MAX;
	for (size_t i = 0; i < nh; i++)
		if (h[i].cursor < lo)
			lo = h[i].cursor;
	if (nh == 0 || fan_events_read(s, lo, max_events, ev, &ne) != 0) {
		if (nh == 0)
			r = webhooks_exec(s, "COMMIT") == SQLITE_OK ? 0
							   : webhooks_store_fail(s, "the fan-out", error, error_size);
		else
			webhooks_store_fail(s, "reading the events", error, error_size);
		goto out;
	}
	sqlite3_stmt *ins = db_stmt(
		s->db,
		"INSERT OR IGNORE INTO webhook_deliveries(webhook_id, event_seq, email_id, event_type, msg_id,"
		" payload, next_attempt, created_at, updated_at) VALUES(?1,?2,?3,?4,?5,?6,?7,?7,?7)");
	rc = ins != NULL ? SQLITE_DONE : SQLITE_ERROR;
	for (size_t e = 0; rc == SQLITE_DONE && e < ne; e++) {
		if (ev[e].payload == NULL)
			continue;
		for (size_t i = 0; rc == SQLITE_DONE && i < nh; i++) {
			if (h[i].cursor >= ev[e].seq || !(h[i].mask & (1u << ev[e].type)))
				continue;
			char msg_id[WEBHOOK_MSG_ID_LEN + 1];
			if (!webhooks_msg_id_make(msg_id)) {
				rc = SQLITE_ERROR;
				break;
			}
			sqlite3_bind_text(ins, 1, h[i].id, -1, SQLITE_STATIC);
			sqlite3_bind_int64(ins, 2, ev[e].seq);
			sqlite3_bind_text(ins, 3, ev[e].email_id, -1, SQLITE_STATIC);
			sqlite3_bind_text(ins, 4, webhook_event_name(ev[e].type), -1, SQLITE_STATIC);
			sqlite3_bind_text(ins, 5, msg_id, -1, SQLITE_TRANSIENT);
			sqlite3_bind_text(ins, 6, ev[e].payload, -1, SQLITE_STATIC);
			sqlite3_bind_int64(ins, 7, now_ms);
			rc = webhooks_step_done(ins);
			if (rc == SQLITE_DONE)
				*created_r += (unsigned)sqlite3_changes(db_sqlite(s->db));
		}
	}
	/* every cursor moves past what was read; when the read came short, past everything */
	int64_t upto = ne > 0 ? ev[ne - 1].seq : lo;
	if (ne < max_events && max_seq > upto)
		upto = max_seq;
	sqlite3_stmt *up = rc == SQLITE_DONE
				   ? db_stmt(s->db, "UPDATE webhooks SET cursor = ?1 WHERE cursor < ?1")
				   : NULL;
	if (up != NULL) {
		sqlite3_bind_int64(up, 1, upto);
		rc = webhooks_step_done(up);
	} else {
		rc = SQLITE_ERROR;
	}
	if (rc == SQLITE_DONE && webhooks_exec(s, "COMMIT") == SQLITE_OK)
		r = ne == max_events ? 1 : 0; /* a full batch: more may wait behind it */
	else
		webhooks_store_fail(s, "the fan-out", error, error_size), *created_r = 0;
out:
	pthread_mutex_unlock(&s->mu);
	for (size_t e = 0; e < ne; e++)
		free(ev[e].payload);
	free(ev);
	free(h);
	return r;
}

/* ---- events of other objects (domains) ---- */

int webhooks_enqueue_in(struct db *db, const char *event_type, const char *subject_id, const char *payload,
			int64_t now_ms, unsigned *created_r)
{
	*created_r = 0;
	/* such an event has no seq in the events table: each delivery takes the next negative one of
	 * its webhook, which no email event (seq > 0) can meet in UNIQUE(webhook_id, event_seq) */
	sqlite3_stmt *hooks = db_stmt(db, "SELECT id FROM webhooks WHERE status = 'enabled' AND EXISTS"
					  " (SELECT 1 FROM json_each(webhooks.events) WHERE value = ?1)");
	if (hooks == NULL)
		return db_errcode(db);
	sqlite3_bind_text(hooks, 1, event_type, -1, SQLITE_STATIC);
	/* the webhooks are read whole before the first insert: a statement still stepping over a table
	 * while rows go into another is allowed, but reading them first keeps it obvious */
	char (*ids)[WEBHOOK_ID_LEN + 1] = NULL;
	size_t n = 0;
	int rc;
	while ((rc = sqlite3_step(hooks)) == SQLITE_ROW) {
		char(*grown)[WEBHOOK_ID_LEN + 1] = realloc(ids, (n + 1) * sizeof(*ids));
		if (grown == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		ids = grown;
		webhooks_col_copy(hooks, 0, ids[n++], sizeof(ids[0]));
	}
	sqlite3_reset(hooks);
	if (rc != SQLITE_DONE) {
		free(ids);
		return rc;
	}
	sqlite3_stmt *ins = db_stmt(
		db,
		"INSERT INTO webhook_deliveries(webhook_id, event_seq, email_id, event_type, msg_id, payload,"
		" next_attempt, created_at, updated_at) VALUES(?1, (SELECT min(0, coalesce(min(event_seq), 0)) - 1"
		" FROM webhook_deliveries WHERE webhook_id = ?1), ?2, ?3, ?4, ?5, ?6, ?6, ?6)");
	rc = ins != NULL ? SQLITE_DONE : db_errcode(db);
	for (size_t i = 0; i < n && rc == SQLITE_DONE; i++) {
		char msg_id[WEBHOOK_MSG_ID_LEN + 1];
		if (!webhooks_msg_id_make(msg_id)) {
			rc = SQLITE_ERROR;
			break;
		}
		sqlite3_bind_text(ins, 1, ids[i], -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 2, subject_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 3, event_type, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 4, msg_id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(ins, 5, payload, -1, SQLITE_STATIC);
		sqlite3_bind_int64(ins, 6, now_ms);
		if ((rc = webhooks_step_done(ins)) == SQLITE_DONE)
			(*created_r)++;
	}
	free(ids);
	if (rc != SQLITE_DONE) {
		*created_r = 0;
		return rc;
	}
	return SQLITE_OK;
}

int webhooks_store_enqueue(struct webhooks_store *s, const char *event_type, const char *subject_id,
			   const char *payload, int64_t now_ms, unsigned *created_r, char *error, size_t error_size)
{
	*created_r = 0;
	pthread_mutex_lock(&s->mu);
	int r = -1;
	if (webhooks_exec(s, "BEGIN IMMEDIATE") != SQLITE_OK) {
		webhooks_store_fail(s, "queueing an event", error, error_size);
	} else if (webhooks_enqueue_in(s->db, event_type, subject_id, payload, now_ms, created_r) != SQLITE_OK ||
		   webhooks_exec(s, "COMMIT") != SQLITE_OK) {
		webhooks_store_fail(s, "queueing an event", error, error_size), *created_r = 0;
	} else {
		r = 0;
	}
	pthread_mutex_unlock(&s->mu);
	return r;
}

/* ---- due deliveries and outcomes ---- */

static bool busy_has(const struct webhook_busy *busy, size_t n, int64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (busy[i].delivery_id == id)
			return true;
	return false;
}

int webhooks_store_due(struct webhooks_store *s, int64_t now_ms, const struct webhook_busy *busy,
		       size_t n_busy, unsigned per_endpoint, unsigned max, struct webhook_due **due_r,
		       size_t *n_r, char *error, size_t error_size)
{
	*due_r = NULL, *n_r = 0;
	if (max == 0)
		return 0;
	struct webhook_due *d = calloc(max, sizeof(*d));
	if (d == NULL) {
		snprintf(error, error_size, "out of memory");
		return -1;
	}
	pthread_mutex_lock(&s->mu);
	size_t n = 0;
	int rc = SQLITE_ERROR;
	struct webhook *w = NULL;
	size_t nw = 0, cap = 0;
	/* the enabled webhooks first (each is then asked for its own due rows, so that one endpoint
	 * with a long backlog cannot take every slot from the others) */
	sqlite3_stmt *st = db_stmt(s->db, "SELECT " WEBHOOK_COLUMNS
					  " FROM webhooks WHERE status = 'enabled' ORDER BY rowid");
	if (st != NULL) {
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (nw == cap) {
				struct webhook *g = realloc(w, (cap = cap ? cap * 2 : 8) * sizeof(*g));
				if (g == NULL) {
					rc = SQLITE_NOMEM;
					break;
				}
				w = g;
			}
			memset(&w[nw], 0, sizeof(w[nw]));
			webhook_read(st, &w[nw++]);
		}
		sqlite3_reset(st);
	}
	if (rc != SQLITE_DONE)
		goto out;
	st = db_stmt(s->db, "SELECT id, msg_id, event_type, attempts, payload FROM webhook_deliveries"
			    " WHERE webhook_id = ?1 AND state = 'pending' AND next_attempt <= ?2"
			    " ORDER BY next_attempt, id LIMIT ?3");
	if (st == NULL) {
		rc = SQLITE_ERROR;
		goto out;
	}
	for (size_t i = 0; i < nw && n < max && rc == SQLITE_DONE; i++) {
		unsigned in_flight = 0;
		for (size_t k = 0; k < n_busy; k++)
			in_flight += strcmp(busy[k].webhook_id, w[i].id) == 0;
		if (in_flight >= per_endpoint)
			continue;
		unsigned room = per_endpoint - in_flight;
		if (room > max - n)
			room = (unsigned)(max - n);
		sqlite3_bind_text(st, 1, w[i].id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, now_ms);
		sqlite3_bind_int(st, 3, (int)(room + in_flight)); /* the busy ones are among them */
		while (room > 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
			int64_t id = sqlite3_column_int64(st, 0);
			if (busy_has(busy, n_busy, id))
				continue;
			struct webhook_due *x = &d[n];
			x->delivery_id = id;
			snprintf(x->webhook_id, sizeof(x->webhook_id), "%s", w[i].id);
			webhooks_col_copy(st, 1, x->msg_id, sizeof(x->msg_id));
			webhooks_col_copy(st, 2, x->event_type, sizeof(x->event_type));
			x->attempts = (unsigned)sqlite3_column_int(st, 3);
			x->payload = webhooks_col_dup(st, 4);
			x->endpoint = w[i].endpoint != NULL ? strdup(w[i].endpoint) : NULL;
			memcpy(x->secret, w[i].secret, sizeof(x->secret));
			n++, room--;
			if (x->payload == NULL || x->endpoint == NULL) {
				rc = SQLITE_NOMEM;
				break;
			}
		}
		if (rc == SQLITE_ROW)
			rc = SQLITE_DONE; /* stopped early: room used up */
		sqlite3_reset(st);
	}
out:;
	int r = rc == SQLITE_DONE ? 0 : webhooks_store_fail(s, "reading the due deliveries", error, error_size);
	pthread_mutex_unlock(&s->mu);
	webhooks_free(w, nw);
	if (r != 0) {
		webhook_dues_free(d, n);
		return r;
	}
	if (n == 0) {
		free(d);
		d = NULL;
	}
	*due_r = d, *n_r = n;
	return 0;
}

int webhooks_store_record(struct webhooks_store *s, const struct webhook_outcome *o, size_t n, int64_t now_ms,
			  char *error, size_t error_size)
{
	if (n == 0)
		return 0;
	pthread_mutex_lock(&s->mu);
	int rc = webhooks_exec(s, "BEGIN IMMEDIATE");
	sqlite3_stmt *st =
		rc == SQLITE_OK
			? db_stmt(s->db, "UPDATE webhook_deliveries SET state = ?2, attempts = ?3,"
					 " next_attempt = ?4, last_status = ?5, last_error = ?6,"
					 " updated_at = ?7 WHERE id = ?1"
					 /* given up meanwhile (disabled): only news of success changes it */
					 " AND (state = 'pending' OR ?2 = 'delivered')")
			: NULL;
	sqlite3_stmt *att = st != NULL ? db_stmt(s->db, "INSERT INTO webhook_attempts(delivery_id, at, status, response)"
							 " SELECT id, ?2, ?3, ?4 FROM webhook_deliveries WHERE id = ?1")
				       : NULL;
	rc = st != NULL && att != NULL ? SQLITE_DONE : SQLITE_ERROR;
	for (size_t i = 0; i < n && rc == SQLITE_DONE; i++) {
		/* the attempt first: its delivery may be gone (its webhook deleted), then nothing is kept */
		sqlite3_bind_int64(att, 1, o[i].delivery_id);
		sqlite3_bind_int64(att, 2, now_ms);
		if (o[i].status > 0)
			sqlite3_bind_int(att, 3, o[i].status);
		else
			sqlite3_bind_null(att, 3);
		sqlite3_bind_text(att, 4, o[i].response, -1, SQLITE_STATIC);
		if ((rc = webhooks_step_done(att)) != SQLITE_DONE)
			break;
		const char *state = o[i].delivered ? "delivered" : o[i].retry ? "pending" : "failed";
		sqlite3_bind_int64(st, 1, o[i].delivery_id);
		sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, (int)o[i].attempts);
		sqlite3_bind_int64(st, 4, o[i].retry ? o[i].next_attempt : 0);
		if (o[i].status > 0)
			sqlite3_bind_int(st, 5, o[i].status);
		else
			sqlite3_bind_null(st, 5);
		if (o[i].error[0] != '\0')
			sqlite3_bind_text(st, 6, o[i].error, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 6);
		sqlite3_bind_int64(st, 7, now_ms);
		rc = webhooks_step_done(st); /* a delivery whose webhook was deleted meanwhile changes nothing */
	}
	int r = rc == SQLITE_DONE && webhooks_exec(s, "COMMIT") == SQLITE_OK
			? 0
			: webhooks_store_fail(s, "recording the attempts", error, error_size);
	pthread_mutex_unlock(&s->mu);
	return r;
}

int webhooks_store_prune(struct webhooks_store *s, int64_t before_ms, char *error, size_t error_size)
{
	pthread_mutex_lock(&s->mu);
	sqlite3_stmt *st =
		db_stmt(s->db, "DELETE FROM webhook_deliveries WHERE state IN ('delivered', 'failed')"
			       " AND updated_at < ?1");
	int r = -1;
	if (st != NULL) {
		sqlite3_bind_int64(st, 1, before_ms);
		if (webhooks_step_done(st) == SQLITE_DONE)
			r = 0;
	}
	if (r < 0)
		webhooks_store_fail(s, "pruning the deliveries", error, error_size);
	pthread_mutex_unlock(&s->mu);
	return r;
}

int webhooks_store_pending_count(struct webhooks_store *s, uint64_t *pending_r, char *error,
				 size_t error_size)
{
	*pending_r = 0;
	pthread_mutex_lock(&s->mu);
	int64_t n = 0;
	/* webhook_deliveries_due (webhook_id, state, ...) serves it: one range per webhook.
	 * Disabling gives up a webhook's pending rows (webhooks_store_update), so the join to the
	 * enabled ones only matters while another connection (the CLI's) is between the two. */
	int rc = db_int64(s->db,
			  "SELECT count(*) FROM webhooks w JOIN webhook_deliveries d ON d.webhook_id = w.id"
			  " WHERE w.status = 'enabled' AND d.state = 'pending'",
			  &n);
	int r = rc == SQLITE_OK ? 0 : webhooks_store_fail(s, "counting the pending deliveries", error, error_size);
	pthread_mutex_unlock(&s->mu);
	if (r == 0)
		*pending_r = n > 0 ? (uint64_t)n : 0;
	return r;
}

int webhooks_store_log(struct webhooks_store *s, const char *webhook_id, unsigned limit,
		       struct webhook_log_entry **e_r, size_t *n_r, char *error, size_t error_size)
{
	*e_r = NULL, *n_r = 0;
	struct webhook_log_entry *e = calloc(limit > 0 ? limit : 1, sizeof(*e));
	if (e == NULL) {
		snprintf(error, error_size, "out of memory");
		return -1;
	}
	pthread_mutex_lock(&s->mu);
	sqlite3_stmt *st =
		db_stmt(s->db, "SELECT id, webhook_id, msg_id, event_type, email_id, state, attempts,"
			       " last_status, last_error, created_at, updated_at, next_attempt"
			       " FROM webhook_deliveries WHERE ?1 IS NULL OR webhook_id = ?1"
			       " ORDER BY id DESC LIMIT ?2");
	size_t n = 0;
	int rc = SQLITE_ERROR;
	if (st != NULL) {
		sqlite3_bind_text(st, 1, webhook_id, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, (int)limit);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < limit) {
			struct webhook_log_entry *x = &e[n++];
			x->delivery_id = sqlite3_column_int64(st, 0);
			webhooks_col_copy(st, 1, x->webhook_id, sizeof(x->webhook_id));
			webhooks_col_copy(st, 2, x->msg_id, sizeof(x->msg_id));
			webhooks_col_copy(st, 3, x->event_type, sizeof(x->event_type));
			webhooks_col_copy(st, 4, x->email_id, sizeof(x->email_id));
			webhooks_col_copy(st, 5, x->state, sizeof(x->state));
			x->attempts = (unsigned)sqlite3_column_int(st, 6);
			x->last_status = sqlite3_column_int(st, 7);
			x->last_error = webhooks_col_dup(st, 8);
			x->created_at = sqlite3_column_int64(st, 9);
			x->updated_at = sqlite3_column_int64(st, 10);
			x->next_attempt = sqlite3_column_int64(st, 11);
		}
		sqlite3_reset(st);
	}
	int r = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0
						      : webhooks_store_fail(s, "reading the log", error, error_size);
	pthread_mutex_unlock(&s->mu);
	if (r != 0) {
		webhook_log_free(e, n);
		return r;
	}
	*e_r = e, *n_r = n;
	return 0;
}
