/* events_read.c — reading tracked messages back: one with its recipients' histories, a page of
 * the list with cursors, and the idempotency records (events.h). */
#include "events/events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"

static char *col_dup(sqlite3_stmt *st, int col, bool *oom_r)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	if (t == NULL)
		return NULL;
	char *s = strdup((const char *)t);
	if (s == NULL)
		*oom_r = true;
	return s;
}

void email_view_free(struct email_view *v)
{
	if (v == NULL)
		return;
	email_record_clear(&v->rec);
	for (size_t i = 0; i < v->rcpt_count; i++) {
		for (size_t j = 0; j < v->rcpts[i].event_count; j++)
			free(v->rcpts[i].events[j].detail_json);
		free(v->rcpts[i].events);
		free(v->rcpts[i].addr);
	}
	free(v->rcpts);
	memset(v, 0, sizeof(*v));
}

void email_views_free(struct email_view *v, size_t n)
{
	for (size_t i = 0; v != NULL && i < n; i++)
		email_view_free(&v[i]);
	free(v);
}

#define EMAIL_COLUMNS                                                                                        \
	"id, queue_id, api_key_id, created_at, scheduled_at, from_addr, subject, to_json, cc_json, bcc_json," \
	" reply_to_json, tags_json, message_id, last_event"

/* Fills v from a row of EMAIL_COLUMNS (plus html, text, headers at 14 to 16 when full). */
static bool row_read(sqlite3_stmt *st, bool full, struct email_view *v)
{
	bool oom = false;
	struct email_record *r = &v->rec;
	memset(v, 0, sizeof(*v));
	snprintf(r->id, sizeof(r->id), "%s", (const char *)sqlite3_column_text(st, 0));
	snprintf(v->queue_id, sizeof(v->queue_id), "%s", (const char *)sqlite3_column_text(st, 1));
	r->api_key_id = col_dup(st, 2, &oom);
	r->created_at = sqlite3_column_int64(st, 3);
	r->scheduled_at = sqlite3_column_int64(st, 4);
	r->from = col_dup(st, 5, &oom);
	r->subject = col_dup(st, 6, &oom);
	r->to_json = col_dup(st, 7, &oom);
	r->cc_json = col_dup(st, 8, &oom);
	r->bcc_json = col_dup(st, 9, &oom);
	r->reply_to_json = col_dup(st, 10, &oom);
	r->tags_json = col_dup(st, 11, &oom);
	r->message_id = col_dup(st, 12, &oom);
	v->last_event = (enum email_event_type)sqlite3_column_int(st, 13);
	if (full) {
		r->html = col_dup(st, 14, &oom);
		r->text = col_dup(st, 15, &oom);
		r->headers = col_dup(st, 16, &oom);
	}
	return !oom;
}

/* The recipients of v and their events, in order. */
static int rcpts_read(struct db *db, struct email_view *v)
{
	sqlite3_stmt *st = db_stmt(db, "SELECT idx, addr, state FROM email_rcpts WHERE email_id = ?1 ORDER BY idx");
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, v->rec.id, -1, SQLITE_STATIC);
	int rc;
	bool oom = false;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct email_rcpt_view *g = realloc(v->rcpts, (v->rcpt_count + 1) * sizeof(*g));
		if (g == NULL) {
			oom = true;
			break;
		}
		v->rcpts = g;
		struct email_rcpt_view *rv = &v->rcpts[v->rcpt_count++];
		memset(rv, 0, sizeof(*rv));
		rv->addr = col_dup(st, 1, &oom);
		rv->state = (enum email_event_type)sqlite3_column_int(st, 2);
	}
	sqlite3_reset(st);
	if (oom || (rc != SQLITE_DONE && rc != SQLITE_ROW))
		return -1;

	/* message-level events (rcpt_idx -1: queued, scheduled, canceled) belong to every recipient */
	st = db_stmt(db, "SELECT rcpt_idx, type, created_at, detail FROM events WHERE email_id = ?1 ORDER BY seq");
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, v->rec.id, -1, SQLITE_STATIC);
	while (!oom && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		int idx = sqlite3_column_int(st, 0);
		for (size_t i = 0; i < v->rcpt_count && !oom; i++) {
			if (idx >= 0 && (size_t)idx != i)
				continue;
			struct email_rcpt_view *rv = &v->rcpts[i];
			/* a suppressed recipient was never queued: the message's own events are not its */
			if (idx < 0 && rv->event_count > 0 && rv->events[0].type == EMAIL_EVENT_SUPPRESSED)
				continue;
			struct email_event *g = realloc(rv->events, (rv->event_count + 1) * sizeof(*g));
			if (g == NULL) {
				oom = true;
				break;
			}
			rv->events = g;
			struct email_event *e = &rv->events[rv->event_count++];
			e->type = (enum email_event_type)sqlite3_column_int(st, 1);
			e->at_ms = sqlite3_column_int64(st, 2);
			e->detail_json = col_dup(st, 3, &oom);
		}
	}
	sqlite3_reset(st);
	return oom || (rc != SQLITE_DONE && rc != SQLITE_ROW) ? -1 : 0;
}

int events_email_get(struct db *db, const char *id, bool full, struct email_view *v_r)
{
	sqlite3_stmt *st = db_stmt(db, "SELECT " EMAIL_COLUMNS ", html, text, headers FROM emails WHERE id = ?1");
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return rc == SQLITE_DONE ? 0 : -1;
	}
	bool ok = row_read(st, full, v_r);
	sqlite3_reset(st);
	if (!ok || (full && rcpts_read(db, v_r) != 0)) {
		email_view_free(v_r);
		return -1;
	}
	return 1;
}

/* The filter's conditions, parameters 4 to 11 (events.h's struct email_filter); an unset one
 * is NULL (or 0) and keeps every row. */
#define EMAIL_FILTER_SQL                                                                                      \
	" AND (?4 IS NULL OR last_event = ?4) AND (?5 IS NULL OR domain = ?5)"                                  \
	" AND (?6 IS NULL OR EXISTS(SELECT 1 FROM email_rcpts r WHERE r.email_id = emails.id"                  \
	" AND r.addr = ?6 COLLATE NOCASE))"                                                                     \
	" AND (?7 IS NULL OR EXISTS(SELECT 1 FROM json_each(emails.tags_json) t"                               \
	" WHERE json_extract(t.value, '$.name') = ?7 AND (?8 IS NULL OR json_extract(t.value, '$.value') = ?8)))" \
	" AND (?9 IS NULL OR instr(lower(id || ' ' || from_addr || ' ' || ifnull(subject, '') || ' '"          \
	" || ifnull(to_json, '') || ' ' || ifnull(cc_json, '') || ' ' || ifnull(bcc_json, '')), lower(?9)) > 0)" \
	" AND created_at >= ?10 AND (?11 = 0 OR created_at < ?11)"

static void filter_bind(sqlite3_stmt *st, const struct email_filter *f)
{
	if (f == NULL) {
		sqlite3_bind_int64(st, 10, 0);
		sqlite3_bind_int64(st, 11, 0);
		return;
	}
	if (f->status >= 0)
		sqlite3_bind_int(st, 4, f->status);
	const char *text[] = {f->domain, f->recipient, f->tag_name, f->tag_value, f->search};
	for (int i = 0; i < 5; i++)
		if (text[i] != NULL)
			sqlite3_bind_text(st, 5 + i, text[i], -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 10, f->since_ms);
	sqlite3_bind_int64(st, 11, f->until_ms);
}

int events_email_list(struct db *db, unsigned limit, const char *after, const char *before,
		      const struct email_filter *f, struct email_view **v_r, size_t *count_r, bool *has_more_r)
{
	if (limit > 1000)
		limit = 1000; /* the callers ask for at most 100; the arithmetic below stays small */
	*v_r = NULL, *count_r = 0, *has_more_r = false;
	const char *cursor = after != NULL ? after : before;
	int64_t cursor_row = 0;
	if (cursor != NULL) {
		/* the order is the order of storing (rowid): the emails of one batch share a creation time */
		sqlite3_stmt *c = db_stmt(db, "SELECT rowid FROM emails WHERE id = ?1");
		if (c == NULL)
			return -1;
		sqlite3_bind_text(c, 1, cursor, -1, SQLITE_STATIC);
		int rc = sqlite3_step(c);
		cursor_row = rc == SQLITE_ROW ? sqlite3_column_int64(c, 0) : 0;
		sqlite3_reset(c);
		if (rc != SQLITE_ROW)
			return rc == SQLITE_DONE ? 0 : -1;
	}
	/* newest first; "after" walks on to older ones, "before" back to newer ones (read in
	 * ascending order, then turned round) */
	const char *sql =
		after != NULL ? "SELECT " EMAIL_COLUMNS " FROM emails WHERE rowid < ?1" EMAIL_FILTER_SQL
				" ORDER BY rowid DESC LIMIT ?3"
		: before != NULL ? "SELECT " EMAIL_COLUMNS " FROM emails WHERE rowid > ?1" EMAIL_FILTER_SQL
				   " ORDER BY rowid ASC LIMIT ?3"
				 : "SELECT " EMAIL_COLUMNS " FROM emails WHERE 1" EMAIL_FILTER_SQL " ORDER BY rowid DESC LIMIT ?3";
	sqlite3_stmt *st = db_stmt(db, sql);
	if (st == NULL)
		return -1;
	if (cursor != NULL)
		sqlite3_bind_int64(st, 1, cursor_row);
	filter_bind(st, f);
	sqlite3_bind_int(st, 3, (int)limit + 1); /* one more than asked tells whether there is more */
	struct email_view *v = calloc(limit + 1, sizeof(*v));
	if (v == NULL) {
		sqlite3_reset(st);
		return -1;
	}
	size_t n = 0;
	int rc;
	bool ok = true;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && n <= limit) {
		if (!row_read(st, false, &v[n++])) {
			ok = false;
			break;
		}
	}
	sqlite3_reset(st);
	if (!ok || (rc != SQLITE_DONE && rc != SQLITE_ROW)) {
		email_views_free(v, n);
		return -1;
	}
	if (n > limit) {
		*has_more_r = true;
		email_view_free(&v[--n]);
	}
	if (before != NULL)
		for (size_t i = 0; i < n / 2; i++) {
			struct email_view t = v[i];
			v[i] = v[n - 1 - i];
			v[n - 1 - i] = t;
		}
	*v_r = v, *count_r = n;
	return 1;
}

int events_idempotency_find(struct db *db, const char *api_key_id, const char *key, int64_t now_ms,
			    int64_t max_age_ms, unsigned char hash_r[32], char **response_r)
{
	sqlite3_stmt *st = db_stmt(db, "SELECT body_hash, response, created_at FROM idempotency"
				       " WHERE api_key_id = ?1 AND key = ?2");
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, api_key_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st), found = 0;
	if (rc == SQLITE_ROW && sqlite3_column_int64(st, 2) >= now_ms - max_age_ms &&
	    sqlite3_column_bytes(st, 0) == 32) {
		memcpy(hash_r, sqlite3_column_blob(st, 0), 32);
		bool oom = false;
		*response_r = col_dup(st, 1, &oom);
		found = oom || *response_r == NULL ? -1 : 1;
	} else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		found = -1;
	}
	sqlite3_reset(st);
	return found;
}
