/* events.c — the records and per-recipient events of tracked messages in queue.db (events.h). */
#include "events/events.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "events/classify.h"
#include "events/suppressions.h"
#include "util/header.h"
#include "util/uuid.h"

const char events_schema_sql[] =
	"CREATE TABLE emails("
	" id TEXT PRIMARY KEY,"
	" queue_id TEXT NOT NULL,"
	" api_key_id TEXT,"
	" created_at INTEGER NOT NULL,"
	" scheduled_at INTEGER NOT NULL DEFAULT 0,"
	" from_addr TEXT NOT NULL,"
	" subject TEXT,"
	" to_json TEXT, cc_json TEXT, bcc_json TEXT, reply_to_json TEXT, tags_json TEXT,"
	" html TEXT, text TEXT, message_id TEXT,"
	" last_event INTEGER NOT NULL,"
	" domain TEXT NOT NULL DEFAULT '');" /* the From domain: whose suppression list a bounce joins */
	"CREATE INDEX emails_queue ON emails(queue_id);"
	/* the list is newest first (by rowid, the order of storing), with cursors */
	"CREATE TABLE email_rcpts("
	" email_id TEXT NOT NULL REFERENCES emails(id) ON DELETE CASCADE,"
	" idx INTEGER NOT NULL,"
	" addr TEXT NOT NULL,"
	" state INTEGER NOT NULL,"
	" PRIMARY KEY(email_id, idx));"
	/* seq orders every event of the server: the webhook outbox follows it */
	"CREATE TABLE events("
	" seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" email_id TEXT NOT NULL REFERENCES emails(id) ON DELETE CASCADE,"
	" rcpt_idx INTEGER NOT NULL,"
	" type INTEGER NOT NULL,"
	" created_at INTEGER NOT NULL,"
	" detail TEXT);"
	"CREATE INDEX events_email ON events(email_id, seq);"
	"CREATE TABLE idempotency("
	" api_key_id TEXT NOT NULL,"
	" key TEXT NOT NULL,"
	" body_hash BLOB NOT NULL,"
	" response TEXT NOT NULL,"
	" created_at INTEGER NOT NULL,"
	" PRIMARY KEY(api_key_id, key));";

const char events_headers_schema_sql[] = "ALTER TABLE emails ADD COLUMN headers TEXT;";

const char *email_event_type_str(enum email_event_type t)
{
	static const char *const names[EMAIL_EVENT_COUNT] = {
		"queued", "scheduled", "sent", "delivered", "delivery_delayed", "bounced", "failed", "canceled",
		"suppressed", "complained", "unsubscribed",
	};
	return (unsigned)t < EMAIL_EVENT_COUNT ? names[t] : "unknown";
}

int email_event_type_parse(const char *s)
{
	for (int t = 0; t < EMAIL_EVENT_COUNT; t++)
		if (strcmp(s, email_event_type_str((enum email_event_type)t)) == 0)
			return t;
	return -1;
}

void email_record_clear(struct email_record *r)
{
	free(r->api_key_id);
	free(r->from);
	free(r->subject);
	free(r->to_json);
	free(r->cc_json);
	free(r->bcc_json);
	free(r->reply_to_json);
	free(r->tags_json);
	free(r->html);
	free(r->text);
	free(r->message_id);
	free(r->headers);
	free(r->idem_key);
	free(r->idem_response);
	for (size_t i = 0; i < r->suppressed_count; i++) {
		free(r->suppressed[i].addr);
		free(r->suppressed[i].type);
		free(r->suppressed[i].message);
	}
	free(r->suppressed);
	memset(r, 0, sizeof(*r));
}

void email_record_free(struct email_record *r)
{
	if (r == NULL)
		return;
	email_record_clear(r);
	free(r);
}

_Static_assert(EMAIL_ID_LEN == UUID_TEXT_LEN, "email ids are UUIDs");

void email_id_new(char id_r[EMAIL_ID_LEN + 1])
{
	if (!uuid_v4_new(id_r))
		abort(); /* no randomness: ids could collide, and nothing else is safe either */
}

/* ---- writers ---- */

static void from_domain(const char *from, char *out, size_t size);

/* Runs a statement to its end and resets it (the cache keeps it: db.h). */
static int step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* The writers run once per message or attempt, at thousands a second: statements come from the
 * connection's cache, prepared once. */
static int prepare(struct db *db, const char *sql, sqlite3_stmt **st_r)
{
	*st_r = db_stmt(db, sql);
	return *st_r != NULL ? SQLITE_OK : db_errcode(db);
}

static int event_insert(struct db *db, const char *email_id, int rcpt_idx, enum email_event_type type, int64_t at_ms,
			const char *detail)
{
	sqlite3_stmt *st;
	int rc = prepare(db, "INSERT INTO events(email_id, rcpt_idx, type, created_at, detail) VALUES(?1,?2,?3,?4,?5)",
			 &st);
	if (rc != SQLITE_OK)
		return rc;
	sqlite3_bind_text(st, 1, email_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, rcpt_idx);
	sqlite3_bind_int(st, 3, type);
	sqlite3_bind_int64(st, 4, at_ms);
	sqlite3_bind_text(st, 5, detail, -1, SQLITE_STATIC);
	return step_done(st);
}

static int state_set(struct db *db, const char *email_id, int rcpt_idx, enum email_event_type type)
{
	sqlite3_stmt *st;
	int rc = SQLITE_OK;
	if (rcpt_idx >= 0) {
		rc = prepare(db, "UPDATE email_rcpts SET state = ?3 WHERE email_id = ?1 AND idx = ?2", &st);
		if (rc != SQLITE_OK)
			return rc;
		sqlite3_bind_text(st, 1, email_id, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, rcpt_idx);
		sqlite3_bind_int(st, 3, type);
		if ((rc = step_done(st)) != SQLITE_OK)
			return rc;
	}
	rc = prepare(db, "UPDATE emails SET last_event = ?2 WHERE id = ?1", &st);
	if (rc != SQLITE_OK)
		return rc;
	sqlite3_bind_text(st, 1, email_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, type);
	return step_done(st);
}

int events_email_insert(struct db *db, const char *queue_id, const struct email_record *r, const char *const *rcpts,
			size_t rcpt_count, const char *msg, size_t msg_len, int64_t now_ms)
{
	enum email_event_type first = r->scheduled_at > 0 ? EMAIL_EVENT_SCHEDULED : EMAIL_EVENT_QUEUED;
	sqlite3_stmt *st;
	int rc = prepare(db,
			 "INSERT INTO emails(id, queue_id, api_key_id, created_at, scheduled_at, from_addr, subject, to_json,"
			 " cc_json, bcc_json, reply_to_json, tags_json, html, text, message_id, last_event, domain, headers)"
			 " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18)",
			 &st);
	if (rc != SQLITE_OK)
		return rc;
	const char *text[] = {r->id, queue_id, r->api_key_id};
	for (int i = 0; i < 3; i++)
		sqlite3_bind_text(st, i + 1, text[i], -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, r->created_at);
	sqlite3_bind_int64(st, 5, r->scheduled_at);
	const char *more[] = {r->from, r->subject, r->to_json, r->cc_json, r->bcc_json, r->reply_to_json,
			      r->tags_json, r->html, r->text, r->message_id};
	for (int i = 0; i < 10; i++)
		sqlite3_bind_text(st, i + 6, more[i], -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 16, rcpt_count > 0 ? first : EMAIL_EVENT_SUPPRESSED);
	char domain[256];
	from_domain(r->from, domain, sizeof(domain));
	sqlite3_bind_text(st, 17, domain, -1, SQLITE_TRANSIENT);
	/* the fields as sent, our trace field and signature among them (what GET /emails/{id} shows) */
	size_t header_len = msg != NULL ? header_body_offset(msg, msg_len) : 0;
	if (header_len > 0 && header_len <= EVENTS_HEADER_MAX)
		sqlite3_bind_text(st, 18, msg, (int)header_len, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 18);
	if ((rc = step_done(st)) != SQLITE_OK)
		return rc;

	for (size_t i = 0; i < rcpt_count; i++) {
		rc = prepare(db, "INSERT INTO email_rcpts(email_id, idx, addr, state) VALUES(?1,?2,?3,?4)", &st);
		if (rc != SQLITE_OK)
			return rc;
		sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, (int)i);
		sqlite3_bind_text(st, 3, rcpts[i], -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 4, first);
		if ((rc = step_done(st)) != SQLITE_OK)
			return rc;
	}
	/* the suppressed ones: never attempted, each says why */
	for (size_t i = 0; i < r->suppressed_count; i++) {
		const struct email_suppressed *x = &r->suppressed[i];
		int idx = (int)(rcpt_count + i);
		rc = prepare(db, "INSERT INTO email_rcpts(email_id, idx, addr, state) VALUES(?1,?2,?3,?4)", &st);
		if (rc != SQLITE_OK)
			return rc;
		sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, idx);
		sqlite3_bind_text(st, 3, x->addr, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 4, EMAIL_EVENT_SUPPRESSED);
		if ((rc = step_done(st)) != SQLITE_OK)
			return rc;
		json_t *d = json_pack("{s:{s:s, s:s}}", "suppressed", "type", x->type, "message", x->message);
		char *detail = d != NULL ? json_dumps(d, JSON_COMPACT) : NULL;
		json_decref(d);
		rc = detail != NULL ? event_insert(db, r->id, idx, EMAIL_EVENT_SUPPRESSED, now_ms, detail) : SQLITE_NOMEM;
		free(detail);
		if (rc != SQLITE_OK)
			return rc;
	}
	/* one message-level event: queued (or scheduled) is about the message, not a recipient */
	if (rcpt_count > 0 && (rc = event_insert(db, r->id, -1, first, now_ms, NULL)) != SQLITE_OK)
		return rc;
	if (r->idem_key == NULL)
		return SQLITE_OK;
	rc = prepare(db,
		     "INSERT INTO idempotency(api_key_id, key, body_hash, response, created_at) VALUES(?1,?2,?3,?4,?5)"
		     " ON CONFLICT(api_key_id, key) DO UPDATE SET body_hash = ?3, response = ?4, created_at = ?5",
		     &st);
	if (rc != SQLITE_OK)
		return rc;
	sqlite3_bind_text(st, 1, r->api_key_id != NULL ? r->api_key_id : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, r->idem_key, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, r->idem_hash, sizeof(r->idem_hash), SQLITE_STATIC);
	sqlite3_bind_text(st, 4, r->idem_response != NULL ? r->idem_response : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, now_ms);
	return step_done(st);
}

/* The domain of a From as given ("Name <a@b>" or "a@b"), lower case. */
static void from_domain(const char *from, char *out, size_t size)
{
	const char *at = from != NULL ? strrchr(from, '@') : NULL;
	size_t o = 0;
	for (const char *p = at != NULL ? at + 1 : ""; *p != '\0' && *p != '>' && o + 1 < size; p++)
		out[o++] = (*p >= 'A' && *p <= 'Z') ? (char)(*p - 'A' + 'a') : *p;
	out[o] = '\0';
}

/* The email id tracking queue message queue_id: 1 found (in id_r), 0 not tracked, or -1. */
static int email_of_queue(struct db *db, const char *queue_id, char id_r[EMAIL_ID_LEN + 1])
{
	sqlite3_stmt *st;
	if (prepare(db, "SELECT id FROM emails WHERE queue_id = ?1", &st) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, queue_id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st), found = 0;
	if (rc == SQLITE_ROW) {
		snprintf(id_r, EMAIL_ID_LEN + 1, "%s", (const char *)sqlite3_column_text(st, 0));
		found = 1;
	} else if (rc != SQLITE_DONE) {
		found = -1;
	}
	sqlite3_reset(st);
	return found;
}

/* The detail of an attempt's event as JSON text (malloc'd), or NULL when there is nothing. */
static char *attempt_detail(const struct events_attempt *a)
{
	json_t *o = json_object();
	if (o == NULL)
		return NULL;
	if (a->reply != NULL)
		json_object_set_new(o, "reply", json_string(a->reply));
	if (a->mx != NULL)
		json_object_set_new(o, "mx", json_string(a->mx));
	if (a->status != NULL)
		json_object_set_new(o, "status", json_string(a->status));
	if (a->type == EMAIL_EVENT_BOUNCED) {
		struct bounce_class c = bounce_classify(a->status, a->reply, a->mx != NULL);
		json_object_set_new(o, "bounce", json_pack("{s:s, s:s, s:s}", "type", bounce_class_type_str(c.type),
							   "subType", bounce_class_subtype_str(c.subtype), "message",
							   a->reply != NULL ? a->reply : ""));
	}
	char *s = json_object_size(o) > 0 ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return s;
}

/* A hard bounce or a complaint: the address joins the sending domain's suppression list, in the
 * transaction that records it (Resend, SES and Postmark do the same; mailing again to an address
 * that does not exist, or to someone who called it spam, harms the domain's reputation). */
static int suppress_rcpt(struct db *db, const char *email_id, unsigned idx, enum suppression_origin origin,
			 int64_t at_ms)
{
	sqlite3_stmt *st;
	int rc = prepare(db, "SELECT r.addr, e.domain FROM email_rcpts r JOIN emails e ON e.id = r.email_id"
			     " WHERE r.email_id = ?1 AND r.idx = ?2", &st);
	if (rc != SQLITE_OK)
		return rc;
	sqlite3_bind_text(st, 1, email_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, (int)idx);
	char addr[256] = "", domain[256] = "";
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		snprintf(addr, sizeof(addr), "%s", (const char *)sqlite3_column_text(st, 0));
		snprintf(domain, sizeof(domain), "%s", (const char *)sqlite3_column_text(st, 1));
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return rc;
	if (addr[0] == '\0')
		return SQLITE_OK;
	struct suppression s;
	bool existed;
	return suppression_add(db, domain, addr, origin, email_id, at_ms, &s, &existed);
}

/* The outcome a for recipient a->idx of email id: its events, its state, and the suppression a hard
 * bounce (or a complaint) brings. */
static int outcome_record(struct db *db, const char *id, const struct events_attempt *a, const char *detail_json)
{
	int rc = SQLITE_OK;
	/* Resend's "sent": handed over on its way to the receiver; we say so at the first attempt */
	if (a->first)
		rc = event_insert(db, id, (int)a->idx, EMAIL_EVENT_SENT, a->at_ms, NULL);
	char *detail = rc == SQLITE_OK && detail_json == NULL ? attempt_detail(a) : NULL;
	if (rc == SQLITE_OK)
		rc = event_insert(db, id, (int)a->idx, a->type, a->at_ms, detail_json != NULL ? detail_json : detail);
	free(detail);
	if (rc == SQLITE_OK)
		rc = state_set(db, id, (int)a->idx, a->type);
	if (rc == SQLITE_OK && a->type == EMAIL_EVENT_BOUNCED &&
	    bounce_classify(a->status, a->reply, a->mx != NULL).type == BOUNCE_CLASS_PERMANENT)
		rc = suppress_rcpt(db, id, a->idx, SUPPRESSION_BOUNCE, a->at_ms);
	else if (rc == SQLITE_OK && a->type == EMAIL_EVENT_COMPLAINED)
		rc = suppress_rcpt(db, id, a->idx, SUPPRESSION_COMPLAINT, a->at_ms);
	return rc;
}

int events_attempt_record(struct db *db, const struct events_attempt *a)
{
	char id[EMAIL_ID_LEN + 1];
	int found = email_of_queue(db, a->queue_id, id);
	if (found <= 0)
		return found == 0 ? SQLITE_OK : SQLITE_ERROR;
	return outcome_record(db, id, a, NULL);
}

/* The email a report is about: by the id its return path carried, or by its Message-ID. 1, 0, -1. */
static int feedback_email(struct db *db, const struct email_feedback *fb, char id_r[EMAIL_ID_LEN + 1])
{
	sqlite3_stmt *st;
	int rc = prepare(db, "SELECT id FROM emails WHERE id = ?1 OR (?2 != '' AND message_id = ?2) LIMIT 1", &st);
	if (rc != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, fb->email_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, fb->message_id, -1, SQLITE_STATIC);
	int found = 0;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		snprintf(id_r, EMAIL_ID_LEN + 1, "%s", (const char *)sqlite3_column_text(st, 0));
		found = 1;
	} else if (rc != SQLITE_DONE) {
		found = -1;
	}
	sqlite3_reset(st);
	return found;
}

/* The recipient of email id with address addr (any when addr is "" and there is only one). */
static int feedback_rcpt(struct db *db, const char *id, const char *addr, unsigned *idx_r)
{
	sqlite3_stmt *st;
	int rc = prepare(db, "SELECT idx, (SELECT count(*) FROM email_rcpts WHERE email_id = ?1) FROM email_rcpts"
			     " WHERE email_id = ?1 AND (lower(addr) = lower(?2) OR ?2 = '') ORDER BY idx LIMIT 1", &st);
	if (rc != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, addr, -1, SQLITE_STATIC);
	int found = 0;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*idx_r = (unsigned)sqlite3_column_int(st, 0);
		found = addr[0] != '\0' || sqlite3_column_int(st, 1) == 1;
	} else if (rc != SQLITE_DONE) {
		found = -1;
	}
	sqlite3_reset(st);
	return found;
}

int events_feedback_record(struct db *db, const struct email_feedback *fb, int64_t now_ms, unsigned *matched_r)
{
	char id[EMAIL_ID_LEN + 1];
	*matched_r = 0;
	int found = feedback_email(db, fb, id);
	if (found <= 0)
		return found == 0 ? SQLITE_OK : SQLITE_ERROR;
	for (size_t i = 0; i < fb->count; i++) {
		const struct email_feedback_item *it = &fb->items[i];
		unsigned idx;
		int r = feedback_rcpt(db, id, it->addr, &idx);
		if (r < 0)
			return SQLITE_ERROR;
		if (r == 0)
			continue; /* a recipient this email never had: nothing to say about it */
		struct events_attempt a = {
			.idx = idx,
			.type = it->type,
			/* a complaint's Feedback-Type goes into its own detail, not into the RFC 3463 status */
			.status = it->status[0] && it->type != EMAIL_EVENT_COMPLAINED ? it->status : NULL,
			.reply = it->reply[0] ? it->reply : NULL,
			.mx = it->mx[0] ? it->mx : NULL,
			.at_ms = now_ms,
		};
		char *detail = NULL;
		if (it->type == EMAIL_EVENT_COMPLAINED) {
			json_t *d = json_pack("{s:{s:s}}", "complaint", "type", it->status[0] ? it->status : "abuse");
			detail = d != NULL ? json_dumps(d, JSON_COMPACT) : NULL;
			json_decref(d);
		}
		int rc = outcome_record(db, id, &a, detail);
		free(detail);
		if (rc != SQLITE_OK)
			return rc;
		(*matched_r)++;
	}
	return SQLITE_OK;
}

int events_unsubscribed(struct db *db, const char *email_id, const char *domain, const char *addr, int64_t now_ms)
{
	struct suppression s;
	bool existed;
	int rc = suppression_add(db, domain, addr, SUPPRESSION_UNSUBSCRIBE, email_id, now_ms, &s, &existed);
	unsigned idx;
	int found = rc == SQLITE_OK ? feedback_rcpt(db, email_id, addr, &idx) : 0;
	if (found < 0)
		return SQLITE_ERROR;
	if (found == 1)
		rc = event_insert(db, email_id, (int)idx, EMAIL_EVENT_UNSUBSCRIBED, now_ms,
				  "{\"unsubscribe\":{\"method\":\"one-click\"}}");
	return rc;
}

int events_email_event(struct db *db, const char *email_id, enum email_event_type type, int64_t at_ms)
{
	int rc = event_insert(db, email_id, -1, type, at_ms, NULL);
	sqlite3_stmt *st;
	/* only recipients still waiting change: one that was suppressed stays so */
	if (rc == SQLITE_OK && (rc = prepare(db, "UPDATE email_rcpts SET state = ?2 WHERE email_id = ?1"
						 " AND state IN (0, 1)", &st)) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, email_id, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, type);
		rc = step_done(st);
	}
	if (rc == SQLITE_OK)
		rc = state_set(db, email_id, -1, type);
	return rc;
}

/* the records a prune takes: old enough, their message no longer queued */
#define PRUNE_SET "SELECT id FROM emails WHERE created_at < ?1 AND queue_id NOT IN (SELECT id FROM messages) LIMIT ?2"

int events_prune(struct db *db, int64_t before_ms, int64_t now_ms, unsigned max, unsigned *pruned_r)
{
	static const char *const sql[] = {
		"DELETE FROM events WHERE email_id IN (" PRUNE_SET ")",
		"DELETE FROM email_rcpts WHERE email_id IN (" PRUNE_SET ")",
		"DELETE FROM emails WHERE id IN (" PRUNE_SET ")",
	};
	*pruned_r = 0;
	sqlite3 *sq = db_sqlite(db);
	int rc = sqlite3_exec(sq, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	for (size_t i = 0; rc == SQLITE_OK && i < sizeof(sql) / sizeof(sql[0]); i++) {
		sqlite3_stmt *st;
		if ((rc = prepare(db, sql[i], &st)) != SQLITE_OK)
			break;
		sqlite3_bind_int64(st, 1, before_ms);
		sqlite3_bind_int(st, 2, (int)max);
		rc = step_done(st);
		if (rc == SQLITE_OK && i == 2)
			*pruned_r = (unsigned)sqlite3_changes(sq);
	}
	sqlite3_stmt *st;
	if (rc == SQLITE_OK && (rc = prepare(db, "DELETE FROM idempotency WHERE created_at < ?1", &st)) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, now_ms - (int64_t)24 * 3600 * 1000);
		rc = step_done(st);
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(sq, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK && !sqlite3_get_autocommit(sq))
		sqlite3_exec(sq, "ROLLBACK", NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : -1;
}
