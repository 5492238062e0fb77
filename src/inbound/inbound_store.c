/* inbound_store.c — the received copies of routed mail: files in the Maildir DATA_DIR/inbound,
 * rows in queue.db, their email.received deliveries in the same transaction (inbound_store.h). */
#include "inbound/inbound_store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/sha.h>
#include <sqlite3.h>

#include "db/db.h"
#include "events/webhooks_store.h"
#include "inbound/received_json.h"
#include "inbound/received_view.h"
#include "mailbox/maildir.h"
#include "queue/queue.h"
#include "util/uuid.h"

/* One row per routed recipient of a queue message (UNIQUE: a delivery made again finds its copy).
 * file is the copy's name in the Maildir's new/; summary the JSON a list and the webhook show. */
const char inbound_schema_sql[] =
	"CREATE TABLE received_emails("
	" id TEXT PRIMARY KEY,"
	" queue_id TEXT NOT NULL,"
	" rcpt TEXT NOT NULL,"
	" route_id TEXT NOT NULL,"
	" sender TEXT NOT NULL,"
	" created_at INTEGER NOT NULL,"
	" file TEXT NOT NULL,"
	" size INTEGER NOT NULL,"
	" summary TEXT NOT NULL,"
	" UNIQUE(queue_id, rcpt));"
	/* pruning asks "what is older than T" */
	"CREATE INDEX received_emails_created ON received_emails(created_at);";

struct inbound_store {
	pthread_mutex_t mu;
	struct queue *q; /* opened for its connection: queue.db with the queue's settings and migrations */
	struct db *db;
	char *dir; /* DATA_DIR/inbound */
};

struct inbound_store *inbound_store_open(const char *data_dir, char *error, size_t error_size)
{
	struct inbound_store *s = calloc(1, sizeof(*s));
	const char *err = "out of memory";
	size_t n = strlen(data_dir) + sizeof("/" INBOUND_DIR);
	if (s == NULL || (s->dir = malloc(n)) == NULL) {
		snprintf(error, error_size, "%s", err);
		free(s);
		return NULL;
	}
	snprintf(s->dir, n, "%s/%s", data_dir, INBOUND_DIR);
	if (maildir_create(s->dir, &err) != RESULT_OK || (s->q = queue_open(data_dir, &err)) == NULL) {
		snprintf(error, error_size, "%s: %s", s->dir, err);
		free(s->dir);
		free(s);
		return NULL;
	}
	s->db = queue_db(s->q);
	pthread_mutex_init(&s->mu, NULL);
	return s;
}

void inbound_store_close(struct inbound_store *s)
{
	if (s == NULL)
		return;
	queue_close(s->q);
	pthread_mutex_destroy(&s->mu);
	free(s->dir);
	free(s);
}

void inbound_email_clear(struct inbound_email *e)
{
	free(e->summary_json);
	free(e->file);
	memset(e, 0, sizeof(*e));
}

void inbound_emails_free(struct inbound_email *e, size_t n)
{
	for (size_t i = 0; e != NULL && i < n; i++)
		inbound_email_clear(&e[i]);
	free(e);
}

static int store_fail(struct inbound_store *s, const char *what, char *error, size_t error_size)
{
	sqlite3 *db = db_sqlite(s->db);
	snprintf(error, error_size, "database error while %s: %s", what, sqlite3_errmsg(db));
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* ---- storing a copy ---- */

/* The copy's id: the same for the same queue message and recipient, UUID-shaped (RFC 9562 §5.8). */
static void copy_id(const char *queue_id, const char *rcpt, char id_r[INBOUND_ID_LEN + 1])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char key[64 + 2 * 1024];
	int n = snprintf(key, sizeof(key), "%s\n%s", queue_id, rcpt);
	SHA256((const unsigned char *)key, n > 0 && (size_t)n < sizeof(key) ? (size_t)n : sizeof(key) - 1, md);
	uuid_format(md, 8, id_r);
}

/* 1 when a copy of this id is stored, 0 when not, -1 error. */
static int copy_exists(struct inbound_store *s, const char *id)
{
	sqlite3_stmt *st = db_stmt(s->db, "SELECT 1 FROM received_emails WHERE id = ?1");
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* The file as stored: RFC 5321 §4.4's Return-Path of the final delivery and Delivered-To (as local
 * delivery writes them), then the message. NULL when out of memory. */
static char *copy_text(const struct inbound_copy *c, size_t *len_r)
{
	int head = snprintf(NULL, 0, "Return-Path: <%s>\r\nDelivered-To: %s\r\n", c->sender, c->rcpt);
	char *text = head >= 0 ? malloc((size_t)head + c->size + 1) : NULL;
	if (text == NULL)
		return NULL;
	snprintf(text, (size_t)head + 1, "Return-Path: <%s>\r\nDelivered-To: %s\r\n", c->sender, c->rcpt);
	memcpy(text + head, c->data, c->size);
	text[(size_t)head + c->size] = '\0';
	*len_r = (size_t)head + c->size;
	return text;
}

/* The row and its webhook deliveries in one transaction; *stored_r false when the copy was there. */
static int copy_insert(struct inbound_store *s, const struct inbound_copy *c, const char *id, const char *file,
		       size_t size, const char *summary, const char *event, int64_t now_ms, bool *stored_r)
{
	sqlite3 *db = db_sqlite(s->db);
	*stored_r = false;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return SQLITE_ERROR;
	sqlite3_stmt *ins = db_stmt(s->db, "INSERT INTO received_emails(id, queue_id, rcpt, route_id, sender,"
					   " created_at, file, size, summary) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
					   " ON CONFLICT DO NOTHING");
	int rc = ins != NULL ? SQLITE_OK : db_errcode(s->db);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(ins, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 2, c->queue_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 3, c->rcpt, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 4, c->route_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 5, c->sender, -1, SQLITE_STATIC);
		sqlite3_bind_int64(ins, 6, now_ms);
		sqlite3_bind_text(ins, 7, file, -1, SQLITE_STATIC);
		sqlite3_bind_int64(ins, 8, (sqlite3_int64)size);
		sqlite3_bind_text(ins, 9, summary, -1, SQLITE_STATIC);
		rc = sqlite3_step(ins);
		sqlite3_reset(ins);
		rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
	}
	unsigned queued = 0;
	*stored_r = rc == SQLITE_OK && sqlite3_changes(db) == 1;
	if (rc == SQLITE_OK && *stored_r)
		rc = webhooks_enqueue_in(s->db, "email.received", id, event, now_ms, &queued);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		*stored_r = false;
	return rc;
}

enum result inbound_store_put(struct inbound_store *s, const struct inbound_copy *c, int64_t now_ms,
			      char id_r[INBOUND_ID_LEN + 1], char *error, size_t error_size)
{
	copy_id(c->queue_id, c->rcpt, id_r);
	pthread_mutex_lock(&s->mu);
	int there = copy_exists(s, id_r);
	pthread_mutex_unlock(&s->mu);
	if (there != 0) {
		if (there < 0)
			snprintf(error, error_size, "the inbound store cannot be read");
		return there > 0 ? RESULT_OK : RESULT_TEMPFAIL;
	}
	size_t len = 0;
	char *text = copy_text(c, &len);
	struct received_view v;
	const char *why = "out of memory";
	enum received_view_error ve = text != NULL ? received_view_parse(text, len, NULL, &v, &why) : RECEIVED_VIEW_NOMEM;
	if (ve != RECEIVED_VIEW_OK) {
		received_view_clear(&v);
		free(text);
		snprintf(error, error_size, "the message cannot be read: %s", why);
		return ve == RECEIVED_VIEW_NOMEM ? RESULT_TEMPFAIL : RESULT_PERMFAIL;
	}
	struct received_auth auth;
	bool have_auth = c->checked && received_auth_read(&v, c->hostname, &auth);
	json_t *summary = received_summary_json(&v, id_r, now_ms, c->rcpt, have_auth ? &auth : NULL);
	received_view_clear(&v);
	char *summary_text = summary != NULL ? json_dumps(summary, JSON_COMPACT) : NULL;
	char *event = summary != NULL ? received_event_json(summary, now_ms) : NULL;
	json_decref(summary);
	enum result r = RESULT_TEMPFAIL;
	char name[MAILDIR_NAME_MAX + 1];
	const char *err = "out of memory";
	struct iovec part = {text, len};
	if (summary_text == NULL || event == NULL ||
	    (r = maildir_deliver(s->dir, c->hostname, &part, 1, 0, name, &err)) != RESULT_OK) {
		snprintf(error, error_size, "the copy cannot be stored: %s", err);
		goto out;
	}
	char file[sizeof(name) + 8];
	snprintf(file, sizeof(file), "new/%s", name);
	bool stored;
	pthread_mutex_lock(&s->mu);
	int rc = copy_insert(s, c, id_r, file, len, summary_text, event, now_ms, &stored);
	if (rc != SQLITE_OK)
		store_fail(s, "storing a received email", error, error_size);
	pthread_mutex_unlock(&s->mu);
	if (!stored) {
		/* refused, or stored meanwhile by another delivery of it: this file is nobody's */
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", s->dir, file);
		unlink(path);
	}
	r = rc == SQLITE_OK ? RESULT_OK : RESULT_TEMPFAIL;
out:
	free(summary_text);
	free(event);
	free(text);
	return r;
}

/* ---- reading ---- */

#define COPY_COLUMNS "id, created_at, summary, file, size"

static bool copy_row_in(sqlite3_stmt *st, const char *dir, struct inbound_email *e)
{
	const char *id = (const char *)sqlite3_column_text(st, 0);
	const char *summary = (const char *)sqlite3_column_text(st, 2);
	const char *file = (const char *)sqlite3_column_text(st, 3);
	snprintf(e->id, sizeof(e->id), "%s", id != NULL ? id : "");
	e->created_ms = sqlite3_column_int64(st, 1);
	e->size = (uint64_t)sqlite3_column_int64(st, 4);
	e->summary_json = strdup(summary != NULL ? summary : "{}");
	size_t n = strlen(dir) + strlen(file != NULL ? file : "") + 2;
	if ((e->file = malloc(n)) != NULL)
		snprintf(e->file, n, "%s/%s", dir, file != NULL ? file : "");
	return e->summary_json != NULL && e->file != NULL;
}

int inbound_store_get(struct inbound_store *s, const char *id, struct inbound_email *e_r, char *error,
		      size_t error_size)
{
	memset(e_r, 0, sizeof(*e_r));
	pthread_mutex_lock(&s->mu);
	sqlite3_stmt *st = db_stmt(s->db, "SELECT " COPY_COLUMNS " FROM received_emails WHERE id = ?1");
	int r = -1;
	if (st == NULL) {
		store_fail(s, "reading a received email", error, error_size);
	} else {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			r = copy_row_in(st, s->dir, e_r) ? 1 : (snprintf(error, error_size, "out of memory"), -1);
		else if (rc == SQLITE_DONE)
			r = 0;
		else
			store_fail(s, "reading a received email", error, error_size);
		sqlite3_reset(st);
	}
	pthread_mutex_unlock(&s->mu);
	if (r != 1)
		inbound_email_clear(e_r);
	return r;
}

/* db_page's fill: the directory is not known to it, so the file is kept relative and completed
 * after the page is read. */
static bool copy_row_relative(sqlite3_stmt *st, void *elem)
{
	return copy_row_in(st, "", elem);
}

int inbound_store_list(struct inbound_store *s, unsigned limit, const char *after, const char *before,
		       struct inbound_email **e_r, size_t *n_r, bool *more_r, char *error, size_t error_size)
{
	*e_r = NULL, *n_r = 0, *more_r = false;
	const char *cursor_id = after != NULL ? after : before;
	int64_t cursor = 0;
	int r = -1;
	pthread_mutex_lock(&s->mu);
	if (cursor_id != NULL) {
		sqlite3_stmt *st = db_stmt(s->db, "SELECT rowid FROM received_emails WHERE id = ?1");
		int rc = st != NULL ? (sqlite3_bind_text(st, 1, cursor_id, -1, SQLITE_STATIC), sqlite3_step(st)) : SQLITE_ERROR;
		if (rc == SQLITE_ROW)
			cursor = sqlite3_column_int64(st, 0);
		if (st != NULL)
			sqlite3_reset(st);
		if (rc != SQLITE_ROW) {
			if (rc == SQLITE_DONE)
				r = 0;
			else
				store_fail(s, "listing received emails", error, error_size);
			pthread_mutex_unlock(&s->mu);
			return r;
		}
	}
	void *list = NULL;
	int rc = db_page(db_sqlite(s->db), "SELECT " COPY_COLUMNS " FROM received_emails", after != NULL ? cursor : 0,
			 before != NULL ? cursor : 0, limit, sizeof(struct inbound_email), copy_row_relative, &list, n_r,
			 more_r);
	if (rc != SQLITE_OK)
		store_fail(s, "listing received emails", error, error_size);
	pthread_mutex_unlock(&s->mu);
	struct inbound_email *e = list;
	if (rc != SQLITE_OK) {
		inbound_emails_free(e, *n_r);
		*n_r = 0;
		return -1;
	}
	/* the rows' files were read as "/new/NAME": the directory goes in front */
	for (size_t i = 0; i < *n_r; i++) {
		size_t n = strlen(s->dir) + strlen(e[i].file) + 1;
		char *full = malloc(n);
		if (full == NULL) {
			inbound_emails_free(e, *n_r);
			*n_r = 0;
			snprintf(error, error_size, "out of memory");
			return -1;
		}
		snprintf(full, n, "%s%s", s->dir, e[i].file);
		free(e[i].file);
		e[i].file = full;
	}
	*e_r = e;
	return 1;
}

char *inbound_email_read(const struct inbound_email *e, size_t *size_r, char *error, size_t error_size)
{
	int fd = open(e->file, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		snprintf(error, error_size, "%s: %s", e->file, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	size_t n = (size_t)st.st_size, got = 0;
	char *buf = malloc(n + 1);
	while (buf != NULL && got < n) {
		ssize_t k = read(fd, buf + got, n - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	close(fd);
	if (buf == NULL || got != n) {
		snprintf(error, error_size, "%s: %s", e->file, buf == NULL ? "out of memory" : "short read");
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*size_r = n;
	return buf;
}

int inbound_store_count_since(struct inbound_store *s, int64_t since_ms, uint64_t *count_r, char *error,
			      size_t error_size)
{
	*count_r = 0;
	pthread_mutex_lock(&s->mu);
	sqlite3_stmt *st = db_stmt(s->db, "SELECT count(*) FROM received_emails WHERE created_at >= ?1");
	int r = -1;
	if (st != NULL) {
		sqlite3_bind_int64(st, 1, since_ms);
		if (sqlite3_step(st) == SQLITE_ROW) {
			*count_r = (uint64_t)sqlite3_column_int64(st, 0);
			r = 0;
		}
		sqlite3_reset(st);
	}
	if (r != 0)
		store_fail(s, "counting received emails", error, error_size);
	pthread_mutex_unlock(&s->mu);
	return r;
}

/* ---- pruning ---- */

int inbound_store_prune(struct inbound_store *s, int64_t before_ms, unsigned max, unsigned *pruned_r,
			char *error, size_t error_size)
{
	*pruned_r = 0;
	pthread_mutex_lock(&s->mu);
	sqlite3 *db = db_sqlite(s->db);
	char **files = calloc(max > 0 ? max : 1, sizeof(char *));
	size_t n = 0;
	int r = -1;
	sqlite3_stmt *sel = db_stmt(s->db, "SELECT id, file FROM received_emails WHERE created_at < ?1 LIMIT ?2");
	sqlite3_stmt *del = db_stmt(s->db, "DELETE FROM received_emails WHERE id = ?1");
	if (files == NULL || sel == NULL || del == NULL || sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		store_fail(s, "pruning received emails", error, error_size);
		goto out;
	}
	sqlite3_bind_int64(sel, 1, before_ms);
	sqlite3_bind_int64(sel, 2, max);
	int rc;
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW && n < max) {
		const char *file = (const char *)sqlite3_column_text(sel, 1);
		size_t len = strlen(s->dir) + strlen(file != NULL ? file : "") + 2;
		if ((files[n] = malloc(len)) == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		snprintf(files[n++], len, "%s/%s", s->dir, file != NULL ? file : "");
		sqlite3_bind_text(del, 1, (const char *)sqlite3_column_text(sel, 0), -1, SQLITE_TRANSIENT);
		int d = sqlite3_step(del);
		sqlite3_reset(del);
		if (d != SQLITE_DONE) {
			rc = d;
			break;
		}
	}
	sqlite3_reset(sel);
	if ((rc != SQLITE_DONE && rc != SQLITE_ROW) || sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		store_fail(s, "pruning received emails", error, error_size);
		n = 0; /* rolled back: every file stays */
		goto out;
	}
	/* the rows are gone for good: now their files (a crash here leaves a file and no row, never the
	 * other way round) */
	for (size_t i = 0; i < n; i++)
		unlink(files[i]);
	*pruned_r = (unsigned)n;
	r = 0;
out:
	pthread_mutex_unlock(&s->mu);
	for (size_t i = 0; files != NULL && i < max; i++)
		free(files[i]);
	free(files);
	return r;
}
