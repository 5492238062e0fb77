/* store_sqlite.c — owns the SQLite queue store: DATA_DIR/queue.db, its schema, the group-commit writer
 * thread behind queue_msg_store(), and the synchronous calls the CLI uses.
 *
 * Two connections: the main one (queue_open) serves the synchronous calls on the caller's thread; the
 * writer thread has its own, so a commit's fsync never runs on the loop thread (DESIGN.md §1). WAL
 * lets another process (the CLI next to the server) read while the writer writes. */
#include "queue/queue.h"
#include "queue/store_sqlite_int.h"
#include "queue/store_sqlite_test.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "db/db.h"
#include "events/events.h"
#include "events/suppressions.h"
#include "events/webhooks_store.h"
#include "events/tlsrpt_sessions.h"
#include "inbound/inbound_store.h"
#include "queue/checkpoint.h"
#include "queue/spool.h"
#include "util/loopq.h"
#include "util/date.h"

#define QUEUE_DB_NAME "queue.db"
/* A batch is bounded so one commit (and the WAL it leaves behind) cannot grow without limit while
 * sessions keep storing; what is left waits for the next commit, a few milliseconds later. */
#define QUEUE_BATCH_MAX_MSGS 256
/* Octets of a spooled body copied into the database at a time. */
#define QUEUE_BODY_PIECE 65536
#define QUEUE_BATCH_MAX_BYTES ((size_t)64 << 20)


static const char queue_schema_sql[] =
	"CREATE TABLE IF NOT EXISTS messages("
	" id TEXT PRIMARY KEY,"
	" sender TEXT NOT NULL,"
	" auth_user TEXT,"
	" client_ip TEXT,"
	" arrival INTEGER NOT NULL,"
	" size INTEGER NOT NULL,"
	" data BLOB NOT NULL);"
	"CREATE TABLE IF NOT EXISTS recipients("
	" msg_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,"
	" idx INTEGER NOT NULL,"
	" addr TEXT NOT NULL,"
	" state INTEGER NOT NULL DEFAULT 0,"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" next_attempt INTEGER NOT NULL DEFAULT 0,"
	" last_error TEXT,"
	" PRIMARY KEY(msg_id, idx));"
	/* the scheduler asks "which recipients in state S are due by T" */
	"CREATE INDEX IF NOT EXISTS recipients_due ON recipients(state, next_attempt);";

/* Version 2: each recipient's domain (lower case, after the last '@'), so that the local delivery
 * runner can ask for its due recipients without parsing addresses in SQL. */
static const char queue_schema_v2_sql[] =
	"ALTER TABLE recipients ADD COLUMN domain TEXT NOT NULL DEFAULT '';"
	"UPDATE recipients SET domain = lower(substr(addr, instr(addr, '@') + 1)) WHERE instr(addr, '@') > 0;"
	"CREATE INDEX IF NOT EXISTS recipients_domain_due ON recipients(domain, state, next_attempt);";

/* Version 3: whether the sender has been warned of a recipient's delay, so that it happens once. */
static const char queue_schema_v3_sql[] = "ALTER TABLE recipients ADD COLUMN warned INTEGER NOT NULL DEFAULT 0;";

/* Version 4: the Maildir folder local copies go to ("" the inbox, "Junk" for mail quarantined by a
 * DMARC policy). */
static const char queue_schema_v4_sql[] = "ALTER TABLE messages ADD COLUMN folder TEXT NOT NULL DEFAULT '';";

/* Version 6: messages whose failures are not reported by DSN (their sender follows the events of
 * version 5 instead). */
static const char queue_schema_v6_sql[] = "ALTER TABLE messages ADD COLUMN no_dsn INTEGER NOT NULL DEFAULT 0;";

/* Version 12: messages the operator holds (`mailwerk queue hold`, Postfix's postsuper -h): the
 * runner skips them until released. The partial index keeps the runner's "not held" test to the few
 * held rows. */
static const char queue_schema_v12_sql[] =
	"ALTER TABLE messages ADD COLUMN held INTEGER NOT NULL DEFAULT 0;"
	"CREATE INDEX IF NOT EXISTS messages_held ON messages(id) WHERE held != 0;";

/* Version 13: what the sender asked of delivery status notifications (RFC 3461: RET and ENVID per
 * message, NOTIFY and ORCPT per recipient) and REQUIRETLS with its opposite, an authenticated
 * sender's "TLS-Required: No" (RFC 8689). Rows from before keep the defaults, which mean what
 * mailwerk did then: no NOTIFY (failures and delays reported), headers returned, no TLS demands. */
static const char queue_schema_v13_sql[] =
	"ALTER TABLE messages ADD COLUMN dsn_ret INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE messages ADD COLUMN dsn_envid TEXT;"
	"ALTER TABLE messages ADD COLUMN requiretls INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE messages ADD COLUMN tls_required_no INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE recipients ADD COLUMN dsn_notify INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE recipients ADD COLUMN dsn_orcpt TEXT;";

/* steps[v] brings version v to v + 1 (db.h); a new version is a new line at the end */
static const char *const queue_schema_steps[] = {
	queue_schema_sql,
	queue_schema_v2_sql,
	queue_schema_v3_sql,
	queue_schema_v4_sql,
	events_schema_sql, /* version 5: records and events of tracked messages (events.h) */
	queue_schema_v6_sql,
	suppressions_schema_sql, /* the suppression list (suppressions.h) */
	webhooks_schema_sql, /* version 8: the webhooks and their outbox (webhooks_store.h) */
	inbound_schema_sql,  /* version 9: received copies of routed mail (inbound_store.h) */
	webhook_attempts_schema_sql, /* version 10: each webhook attempt and its answer */
	events_headers_schema_sql,   /* version 11: the header section of each tracked message */
	queue_schema_v12_sql,        /* version 12: held messages */
	queue_schema_v13_sql,        /* version 13: DSN requests (RFC 3461) and REQUIRETLS (RFC 8689) */
	tlsrpt_sessions_schema_sql,  /* version 14: TLS session counters for TLS-RPT (RFC 8460) */
};
static const struct db_schema queue_schema = {
	queue_schema_steps, sizeof(queue_schema_steps) / sizeof(queue_schema_steps[0]),
};

/* ---- connections and schema ---- */

/* Short words for logs (reason=…) and for the 4xx text; static strings. */
static const char *queue_sqlite_reason(int rc)
{
	if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
		return "id collision";
	switch (rc & 0xff) {
	case SQLITE_FULL: return "disk full";
	case SQLITE_IOERR: return "I/O error";
	case SQLITE_BUSY:
	case SQLITE_LOCKED: return "database busy";
	case SQLITE_READONLY:
	case SQLITE_PERM: return "database read-only";
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB: return "database corrupt";
	case SQLITE_NOMEM: return "out of memory";
	case SQLITE_CANTOPEN: return "cannot open database";
	case SQLITE_TOOBIG: return "message too big";
	case SQLITE_CONSTRAINT: return "invalid message";
	}
	return "database error";
}

/* Both connections: mode 0600, as the file holds other people's mail. synchronous=FULL: in WAL
 * mode every COMMIT fsyncs the WAL, which is what lets a 250 follow it. foreign_keys for ON DELETE
 * CASCADE. journal_size_limit trims the WAL file after a checkpoint so one large batch does not
 * keep its space forever. Only the main connection migrates; the writer's opens after it. */
static struct db *queue_db_open(const char *path, int flags, const struct db_schema *schema, char *error,
				size_t error_size)
{
	const struct db_opts o = {
		.flags = flags,
		.create_mode = 0600,
		.sync = DB_SYNC_FULL,
		.foreign_keys = true,
		.journal_size_limit = 67108864,
		.schema = schema,
	};

	return db_open(path, &o, error, error_size);
}

struct queue *queue_open(const char *data_dir, const char **error_r)
{
	/* q (and its error buffer) is gone when this fails: the sentence stays here until the next
	 * failed open on this thread (queue.h) */
	static _Thread_local char open_error[DB_ERROR_SIZE];
	struct queue *q = calloc(1, sizeof(*q));

	if (q == NULL) {
		*error_r = "out of memory";
		return NULL;
	}
	if (asprintf(&q->path, "%s/%s", data_dir, QUEUE_DB_NAME) < 0) {
		q->path = NULL;
		free(q);
		*error_r = "out of memory";
		return NULL;
	}
	if (pthread_mutex_init(&q->mu, NULL) != 0) {
		free(q->path);
		free(q);
		*error_r = "out of memory";
		return NULL;
	}
	if (pthread_cond_init(&q->cond, NULL) != 0) {
		pthread_mutex_destroy(&q->mu);
		free(q->path);
		free(q);
		*error_r = "out of memory";
		return NULL;
	}
	atomic_init(&q->commits, 0);
	q->conn = queue_db_open(q->path, 0, &queue_schema, open_error, sizeof(open_error));
	if (q->conn == NULL) {
		*error_r = open_error;
		goto fail;
	}
	q->db = db_sqlite(q->conn);
	return q;
fail:
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->mu);
	free(q->path);
	free(q);
	return NULL;
}

/* ---- the group-commit writer ---- */

static void queue_writer_stmts_free(struct queue *q)
{
	sqlite3_finalize(q->w_begin);
	sqlite3_finalize(q->w_commit);
	sqlite3_finalize(q->w_rollback);
	sqlite3_finalize(q->w_msg);
	sqlite3_finalize(q->w_rcpt);
	q->w_begin = q->w_commit = q->w_rollback = q->w_msg = q->w_rcpt = NULL;
	db_close(q->wconn);
	q->wconn = NULL;
	q->wdb = NULL;
}

bool queue_commit_subscribe(struct queue *q, queue_commit_fn *fn, void *arg)
{
	bool ok = false;

	pthread_mutex_lock(&q->mu);
	if (q->subscriber_count < QUEUE_COMMIT_SUBSCRIBERS) {
		q->subscribers[q->subscriber_count].fn = fn;
		q->subscribers[q->subscriber_count].arg = arg;
		q->subscriber_count++;
		ok = true;
	}
	pthread_mutex_unlock(&q->mu);
	return ok;
}

/* Runs on the loop thread: answers every request of one committed (or failed) batch, in order.
 * It may run after queue_close() (loopq_free runs what is left), so it never touches the queue. */
static void queue_batch_done(void *arg)
{
	struct queue_store_req *r = arg;

	while (r != NULL) {
		struct queue_store_req *next = r->next;

		r->done(r->arg, r->res, r->res == RESULT_OK ? NULL : r->reason);
		free(r);
		r = next;
	}
}

static uint64_t queue_req_total(const struct queue_store_req *r)
{
	uint64_t t = 0;
	for (size_t i = 0; i < r->n; i++)
		t += r->msgs[i] != NULL ? queue_msg_total(r->msgs[i]) : 0;
	return t;
}

/* Under q->mu: detaches the longest prefix of the pending list within the batch limits (at least
 * one request, however large). */
static struct queue_store_req *queue_batch_take(struct queue *q)
{
	struct queue_store_req *first = q->pending;
	struct queue_store_req *last = first;
	size_t n = 1;
	uint64_t bytes = queue_req_total(first);

	while (last->next != NULL && n < QUEUE_BATCH_MAX_MSGS) {
		uint64_t sz = queue_req_total(last->next);

		if (bytes + sz > QUEUE_BATCH_MAX_BYTES)
			break;
		bytes += sz;
		n++;
		last = last->next;
	}
	q->pending = last->next;
	if (q->pending == NULL)
		q->pending_tail = NULL;
	last->next = NULL;
	return first;
}

/* A message the caller built wrongly fails alone instead of failing its batch. */
bool queue_msg_wellformed(const struct queue_msg *m)
{
	if (m == NULL || !queue_id_valid(m->id) || m->sender == NULL)
		return false;
	if (m->data == NULL && m->size > 0)
		return false;
	if (m->rcpts == NULL && m->rcpt_count > 0)
		return false;
	for (size_t i = 0; i < m->rcpt_count; i++) {
		if (m->rcpts[i] == NULL)
			return false;
	}
	return true;
}

int queue_stmt_run(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	/* SQLITE_STATIC bindings point into the message, which is freed after the commit */
	sqlite3_clear_bindings(st);
	return rc == SQLITE_ROW ? SQLITE_DONE : rc;
}

/* Inserts one message and its recipients into the open transaction. Returns SQLITE_DONE, or the
 * error; *alone_r tells whether only this message failed (the transaction is intact) or the batch
 * must be rolled back. */
/* The domain of "local@domain", lower-cased (ASCII); the last '@' separates, as a quoted local part
 * may hold one. "" when there is none (<Postmaster>). */
static void queue_addr_domain(const char *addr, char *out, size_t size)
{
	const char *at = strrchr(addr, '@');
	size_t o = 0;
	for (const char *p = at != NULL ? at + 1 : ""; *p != '\0' && o + 1 < size; p++)
		out[o++] = (*p >= 'A' && *p <= 'Z') ? (char)(*p - 'A' + 'a') : *p;
	out[o] = '\0';
}

const char queue_insert_msg_sql[] =
	"INSERT INTO messages(id, sender, auth_user, client_ip, arrival, size, data, folder, no_dsn, dsn_ret, dsn_envid,"
	" requiretls, tls_required_no) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
const char queue_insert_rcpt_sql[] =
	"INSERT INTO recipients(msg_id, idx, addr, state, attempts, next_attempt, domain, dsn_notify, dsn_orcpt)"
	" VALUES(?1, ?2, ?3, ?4, 0, ?5, ?6, ?7, ?8)";

/* Fills the data of the message row just inserted (a zeroblob of the whole size) with m->data and
 * then the spooled body, a piece at a time: the writer's memory stays bounded whatever the size. */
static int queue_msg_write_body(sqlite3 *db, const struct queue_msg *m)
{
	sqlite3_blob *blob = NULL;
	int rc = sqlite3_blob_open(db, "main", "messages", "data", sqlite3_last_insert_rowid(db), 1, &blob);
	if (rc == SQLITE_OK && m->size > 0)
		rc = sqlite3_blob_write(blob, m->data, (int)m->size, 0);
	char *buf = rc == SQLITE_OK ? malloc(QUEUE_BODY_PIECE) : NULL;
	if (rc == SQLITE_OK && buf == NULL)
		rc = SQLITE_NOMEM;
	for (uint64_t off = 0; rc == SQLITE_OK && off < m->body->size;) {
		ssize_t n = queue_spool_read(m->body, off, buf, QUEUE_BODY_PIECE);
		if (n <= 0) {
			rc = SQLITE_IOERR; /* the spool cannot be read back: this message is not stored */
			break;
		}
		rc = sqlite3_blob_write(blob, buf, (int)n, (int)(m->size + off));
		off += (uint64_t)n;
	}
	free(buf);
	int crc = blob != NULL ? sqlite3_blob_close(blob) : SQLITE_OK;
	if (rc == SQLITE_OK)
		rc = crc;
	return rc == SQLITE_OK ? SQLITE_DONE : rc;
}

/* Inserts one message and its recipients with the given prepared statements (the two above). */
int queue_msg_insert_with(struct db *db, sqlite3_stmt *msg_st, sqlite3_stmt *rcpt_st, const struct queue_msg *m,
			  bool *alone_r)
{
	sqlite3_stmt *st = msg_st;
	int rc;

	*alone_r = false;
	if (m->rcpt_count == 0 && m->track != NULL) {
		/* every recipient is suppressed: nothing to deliver, only the record and its events */
		rc = events_email_insert(db, m->id, m->track, NULL, 0, m->data, m->size, date_now_ms());
		return rc == SQLITE_OK ? SQLITE_DONE : rc;
	}
	rc = sqlite3_bind_text(st, 1, m->id, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 2, m->sender, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 3, m->auth_user, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 4, m->client_ip, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 5, m->arrival);
	uint64_t total = queue_msg_total(m);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 6, (sqlite3_int64)total);
	if (rc == SQLITE_OK && m->body != NULL)
		/* room for the whole message, filled in pieces below: a large one is never in memory whole */
		rc = sqlite3_bind_zeroblob64(st, 7, total);
	else if (rc == SQLITE_OK)
		/* "" for an empty body: a NULL pointer would bind SQL NULL and break NOT NULL */
		rc = sqlite3_bind_blob64(st, 7, m->data != NULL ? m->data : "", m->size, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 8, m->folder != NULL ? m->folder : "", -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(st, 9, m->no_dsn ? 1 : 0);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(st, 10, (int)m->dsn_ret);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 11, m->dsn_envid, -1, SQLITE_STATIC); /* NULL binds SQL NULL */
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(st, 12, m->requiretls ? 1 : 0);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(st, 13, m->tls_required_no ? 1 : 0);
	if (rc != SQLITE_OK) {
		/* only SQLITE_TOOBIG in practice: this message is over SQLite's blob limit */
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		*alone_r = true;
		return rc;
	}
	rc = queue_stmt_run(st);
	if (rc != SQLITE_DONE) {
		/* A constraint error undoes only this statement (ON CONFLICT ABORT): the transaction and
		 * the other messages in it are intact. Anything else (full, I/O) fails the batch. */
		*alone_r = (rc & 0xff) == SQLITE_CONSTRAINT;
		return rc;
	}
	if (m->body != NULL && (rc = queue_msg_write_body(sqlite3_db_handle(st), m)) != SQLITE_DONE)
		return rc; /* the row is in: the batch fails rather than commit half a message */

	st = rcpt_st;
	for (size_t i = 0; i < m->rcpt_count; i++) {
		rc = sqlite3_bind_text(st, 1, m->id, -1, SQLITE_STATIC);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_text(st, 3, m->rcpts[i], -1, SQLITE_STATIC);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_int(st, 4, QUEUE_RCPT_PENDING);
		if (rc == SQLITE_OK)
			/* due at once (the scheduler picks it up on its next pass), or when scheduled */
			rc = sqlite3_bind_int64(st, 5, m->not_before > m->arrival ? m->not_before : m->arrival);
		char domain[256];
		queue_addr_domain(m->rcpts[i], domain, sizeof(domain));
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_text(st, 6, domain, -1, SQLITE_TRANSIENT);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_int(st, 7, m->rcpt_notify != NULL ? (int)m->rcpt_notify[i] : 0);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_text(st, 8, m->rcpt_orcpt != NULL ? m->rcpt_orcpt[i] : NULL, -1, SQLITE_STATIC);
		if (rc != SQLITE_OK) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			return rc;
		}
		rc = queue_stmt_run(st);
		/* the message row is already in: a half-stored message must not commit, so the batch fails */
		if (rc != SQLITE_DONE)
			return rc;
	}
	/* its record and first event commit with it, or nothing does (events.h) */
	if (m->track != NULL) {
		rc = events_email_insert(db, m->id, m->track, (const char *const *)m->rcpts, m->rcpt_count, m->data,
					 m->size, date_now_ms());
		if (rc != SQLITE_OK)
			return rc;
	}
	return SQLITE_DONE;
}

static void queue_batch_fail(struct queue_store_req *batch, int rc)
{
	for (struct queue_store_req *r = batch; r != NULL; r = r->next) {
		if (r->res == RESULT_OK || r->reason == NULL) {
			r->res = RESULT_TEMPFAIL;
			r->reason = queue_sqlite_reason(rc);
		}
	}
}

/* One transaction for the whole batch; sets each request's res/reason. */
static void queue_batch_write(struct queue *q, struct queue_store_req *batch)
{
	bool alone;
	int rc;

	/* a ROLLBACK that failed last time would otherwise make every later BEGIN fail */
	if (!sqlite3_get_autocommit(q->wdb))
		queue_stmt_run(q->w_rollback);
	rc = queue_stmt_run(q->w_begin);
	if (rc != SQLITE_DONE)
		goto fail;
	for (struct queue_store_req *r = batch; r != NULL; r = r->next) {
		if (r->fb != NULL) {
			unsigned matched;
			if ((rc = events_feedback_record(q->wconn, r->fb, date_now_ms(), &matched)) != SQLITE_OK)
				goto fail;
			r->res = RESULT_OK;
			r->reason = NULL;
			continue;
		}
		bool ok = true;
		for (size_t i = 0; i < r->n; i++)
			ok = ok && queue_msg_wellformed(r->msgs[i]);
		if (!ok) {
			r->res = RESULT_TEMPFAIL;
			r->reason = "invalid message";
			continue;
		}
		/* several messages of one request are stored all or none: a savepoint undoes the ones
		 * already in when a later one fails alone */
		if (r->n > 1 && (rc = sqlite3_exec(q->wdb, "SAVEPOINT req", NULL, NULL, NULL)) != SQLITE_OK)
			goto fail;
		rc = SQLITE_DONE;
		for (size_t i = 0; i < r->n && rc == SQLITE_DONE; i++)
			rc = queue_msg_insert_with(q->wconn, q->w_msg, q->w_rcpt, r->msgs[i], &alone);
		if (rc == SQLITE_DONE) {
			if (r->n > 1 && (rc = sqlite3_exec(q->wdb, "RELEASE req", NULL, NULL, NULL)) != SQLITE_OK)
				goto fail;
			r->res = RESULT_OK;
			r->reason = NULL;
		} else if (alone) {
			if (r->n > 1 && (sqlite3_exec(q->wdb, "ROLLBACK TO req", NULL, NULL, NULL) != SQLITE_OK ||
					 sqlite3_exec(q->wdb, "RELEASE req", NULL, NULL, NULL) != SQLITE_OK))
				goto fail;
			r->res = RESULT_TEMPFAIL;
			r->reason = queue_sqlite_reason(rc);
		} else {
			goto fail;
		}
	}
	rc = queue_stmt_run(q->w_commit);
	if (rc != SQLITE_DONE)
		goto fail;
	atomic_fetch_add(&q->commits, 1);
	return;
fail:
	/* Nothing in this batch was acknowledged, so answering all of it 4xx loses nothing: the
	 * clients retry. SQLite may already have rolled back (full disk, I/O error). */
	if (!sqlite3_get_autocommit(q->wdb))
		queue_stmt_run(q->w_rollback);
	queue_batch_fail(batch, rc);
}

static void queue_max_pages_apply(struct queue *q, unsigned pages)
{
	char sql[64];

	snprintf(sql, sizeof(sql), "PRAGMA max_page_count=%u", pages);
	sqlite3_exec(q->wdb, sql, NULL, NULL, NULL);
}

static void *queue_writer_run(void *arg)
{
	struct queue *q = arg;

	pthread_mutex_lock(&q->mu);
	for (;;) {
		struct queue_store_req *batch;
		unsigned max_pages;

		while (q->pending == NULL && !q->stopping)
			pthread_cond_wait(&q->cond, &q->mu);
		/* stopping only ends the loop once everything pending has been answered */
		if (q->pending == NULL)
			break;
		/* Everything that arrived while the previous commit was fsyncing goes into this one:
		 * that is the group commit. */
		batch = queue_batch_take(q);
		max_pages = q->test_max_pages;
		q->test_max_pages = 0;
		pthread_mutex_unlock(&q->mu);

		if (max_pages != 0)
			queue_max_pages_apply(q, max_pages);
		queue_batch_write(q, batch);
		/* Freed here, off the loop thread: the loop only gets the answers. */
		bool committed = false;
		for (struct queue_store_req *r = batch; r != NULL; r = r->next) {
			for (size_t i = 0; i < r->n; i++)
				queue_msg_free(r->msgs[i]);
			if (r->msgs != &r->one)
				free(r->msgs);
			free(r->fb);
			r->fb = NULL;
			r->msgs = NULL;
			r->n = 0;
			committed = committed || r->res == RESULT_OK;
		}

		pthread_mutex_lock(&q->mu);
		/* the commit notification goes out before the answers, on the loop thread like them */
		for (size_t i = 0; committed && i < q->subscriber_count; i++)
			loopq_post(q->lq, q->subscribers[i].fn, q->subscribers[i].arg);
		loopq_post(q->lq, queue_batch_done, batch);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

int queue_writer_start(struct queue *q, struct loopq *lq, const char **error_r)
{
	sigset_t all, old;
	int rc;

	if (q->writer_started) {
		*error_r = "the queue writer is already running";
		return -1;
	}
	/* Its own connection, used by the writer thread alone, so no SQLite mutex is needed on it. */
	q->wconn = queue_db_open(q->path, SQLITE_OPEN_NOMUTEX, NULL, q->error, sizeof(q->error));
	if (q->wconn == NULL) {
		*error_r = q->error;
		return -1;
	}
	q->wdb = db_sqlite(q->wconn);
	rc = sqlite3_prepare_v3(q->wdb, "BEGIN IMMEDIATE", -1, SQLITE_PREPARE_PERSISTENT, &q->w_begin, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v3(q->wdb, "COMMIT", -1, SQLITE_PREPARE_PERSISTENT, &q->w_commit, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v3(q->wdb, "ROLLBACK", -1, SQLITE_PREPARE_PERSISTENT, &q->w_rollback, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v3(q->wdb, queue_insert_msg_sql, -1, SQLITE_PREPARE_PERSISTENT, &q->w_msg, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v3(q->wdb, queue_insert_rcpt_sql, -1, SQLITE_PREPARE_PERSISTENT, &q->w_rcpt, NULL);
	if (rc != SQLITE_OK) {
		snprintf(q->error, sizeof(q->error), "cannot prepare the queue writer: %s", sqlite3_errmsg(q->wdb));
		*error_r = q->error;
		queue_writer_stmts_free(q);
		return -1;
	}
	q->lq = lq;
	atomic_store(&q->commits, 0);
	/* checkpoints on their own thread, so that no commit of the writer waits for one */
	q->checkpointer = queue_checkpointer_start(q->path, q->wdb);

	/* Signals belong to the loop thread (libevent's signal events); the writer never takes them. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&q->thread, NULL, queue_writer_run, q);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		snprintf(q->error, sizeof(q->error), "cannot start the queue writer thread: %s", strerror(rc));
		*error_r = q->error;
		queue_checkpointer_stop(q->checkpointer, q->wdb);
		q->checkpointer = NULL;
		queue_writer_stmts_free(q);
		return -1;
	}
	pthread_mutex_lock(&q->mu);
	q->writer_started = true;
	pthread_mutex_unlock(&q->mu);
	return 0;
}

static void queue_req_submit(struct queue *q, struct queue_store_req *r, queue_store_done_fn *done, void *arg);

void queue_msg_store(struct queue *q, struct queue_msg *m, queue_store_done_fn *done, void *arg)
{
	struct queue_store_req *r = malloc(sizeof(*r));
	/* There is no way to answer without allocating (the answer itself is posted), and calling
	 * done here is forbidden: with malloc failing for a few bytes, stop. */
	if (r == NULL) {
		fputs("mailwerk: queue_msg_store: out of memory\n", stderr);
		abort();
	}
	r->one = m;
	r->msgs = &r->one;
	r->n = 1;
	r->fb = NULL;
	queue_req_submit(q, r, done, arg);
}

void queue_feedback_store(struct queue *q, struct email_feedback *fb, queue_store_done_fn *done, void *arg)
{
	struct queue_store_req *r = malloc(sizeof(*r));
	if (r == NULL) {
		fputs("mailwerk: queue_feedback_store: out of memory\n", stderr);
		abort();
	}
	r->one = NULL;
	r->msgs = &r->one;
	r->n = 0;
	r->fb = fb;
	queue_req_submit(q, r, done, arg);
}

void queue_msgs_store(struct queue *q, struct queue_msg **msgs, size_t n, queue_store_done_fn *done, void *arg)
{
	struct queue_store_req *r = malloc(sizeof(*r));
	struct queue_msg **copy = malloc((n > 0 ? n : 1) * sizeof(*copy));
	if (r == NULL || copy == NULL) {
		fputs("mailwerk: queue_msgs_store: out of memory\n", stderr);
		abort();
	}
	memcpy(copy, msgs, n * sizeof(*copy));
	r->one = NULL;
	r->msgs = copy;
	r->n = n;
	r->fb = NULL;
	queue_req_submit(q, r, done, arg);
}

static void queue_req_submit(struct queue *q, struct queue_store_req *r, queue_store_done_fn *done, void *arg)
{
	bool was_empty;

	r->next = NULL;
	r->done = done;
	r->arg = arg;
	r->res = RESULT_TEMPFAIL;
	r->reason = NULL;

	pthread_mutex_lock(&q->mu);
	if (!q->writer_started || q->stopping) {
		/* broken invariant: the request would never be answered and its session would hang */
		fputs("mailwerk: queue_msg_store: the queue writer is not running\n", stderr);
		abort();
	}
	was_empty = q->pending == NULL;
	if (was_empty)
		q->pending = r;
	else
		q->pending_tail->next = r;
	q->pending_tail = r;
	/* the writer waits only on an empty list; while it commits it will find these when done */
	if (was_empty)
		pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->mu);
}

void queue_close(struct queue *q)
{
	if (q == NULL)
		return;
	if (q->writer_started) {
		pthread_mutex_lock(&q->mu);
		q->stopping = true;
		pthread_cond_signal(&q->cond);
		pthread_mutex_unlock(&q->mu);
		pthread_join(q->thread, NULL);
		queue_checkpointer_stop(q->checkpointer, q->wdb);
		queue_writer_stmts_free(q);
	}
	db_close(q->conn);
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->mu);
	free(q->path);
	free(q);
}

unsigned long queue_commit_count(struct queue *q)
{
	return atomic_load(&q->commits);
}

void queue_test_max_pages_set(struct queue *q, unsigned pages)
{
	pthread_mutex_lock(&q->mu);
	q->test_max_pages = pages;
	pthread_mutex_unlock(&q->mu);
}

/* ---- synchronous calls (main connection) ---- */

enum result queue_db_error(struct queue *q, const char **error_r)
{
	snprintf(q->error, sizeof(q->error), "queue database: %s", sqlite3_errmsg(q->db));
	*error_r = q->error;
	return RESULT_TEMPFAIL;
}

static enum result queue_oom(const char **error_r)
{
	*error_r = "out of memory";
	return RESULT_TEMPFAIL;
}

/* NULL stays NULL; *oom_r is set when a value could not be copied. */
char *queue_col_strdup(sqlite3_stmt *st, int col, bool *oom_r)
{
	const unsigned char *s;
	char *copy;

	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return NULL;
	s = sqlite3_column_text(st, col);
	copy = s != NULL ? strdup((const char *)s) : NULL;
	if (copy == NULL)
		*oom_r = true;
	return copy;
}

/* Receives each entry built by queue_entries_read() and owns it from then on; nonzero stops. */
typedef int queue_entry_take_fn(struct queue_entry *e, void *arg);

#define QUEUE_ENTRY_COLUMNS \
	"SELECT m.id, m.sender, m.auth_user, m.client_ip, m.arrival, m.size," \
	" r.idx, r.addr, r.state, r.attempts, r.next_attempt, r.last_error, m.held, m.no_dsn," \
	" m.dsn_ret, m.dsn_envid, m.requiretls, m.tls_required_no, r.dsn_notify, r.dsn_orcpt" \
	" FROM messages m LEFT JOIN recipients r ON r.msg_id = m.id"

/* One statement (one consistent snapshot, even while the server writes) for the messages and their
 * recipients; the rows of one message are adjacent, recipients in order. Never reads the data. */
static enum result queue_entries_read(struct queue *q, const char *id, queue_entry_take_fn *take, void *arg,
	const char **error_r)
{
	static const char sql_all[] = QUEUE_ENTRY_COLUMNS " ORDER BY m.arrival, m.id, r.idx";
	static const char sql_one[] = QUEUE_ENTRY_COLUMNS " WHERE m.id = ?1 ORDER BY r.idx";
	sqlite3_stmt *st;
	struct queue_entry *e = NULL;
	size_t cap = 0;
	bool oom = false;
	int rc;

	rc = sqlite3_prepare_v2(q->db, id != NULL ? sql_one : sql_all, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return queue_db_error(q, error_r);
	if (id != NULL && sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC) != SQLITE_OK) {
		sqlite3_finalize(st);
		return queue_db_error(q, error_r);
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *row_id = (const char *)sqlite3_column_text(st, 0);
		struct queue_rcpt_info *ri;

		if (row_id == NULL) {
			oom = true;
			break;
		}
		if (e != NULL && strcmp(e->id, row_id) != 0) {
			int stop = take(e, arg);

			e = NULL;
			if (stop)
				break;
		}
		if (e == NULL) {
			e = calloc(1, sizeof(*e));
			if (e == NULL) {
				oom = true;
				break;
			}
			cap = 0;
			snprintf(e->id, sizeof(e->id), "%s", row_id);
			e->sender = queue_col_strdup(st, 1, &oom);
			e->auth_user = queue_col_strdup(st, 2, &oom);
			e->client_ip = queue_col_strdup(st, 3, &oom);
			e->arrival = sqlite3_column_int64(st, 4);
			e->size = (size_t)sqlite3_column_int64(st, 5);
			e->held = sqlite3_column_int(st, 12) != 0;
			e->no_dsn = sqlite3_column_int(st, 13) != 0;
			e->dsn_ret = (enum queue_dsn_ret)sqlite3_column_int(st, 14);
			e->dsn_envid = queue_col_strdup(st, 15, &oom);
			e->requiretls = sqlite3_column_int(st, 16) != 0;
			e->tls_required_no = sqlite3_column_int(st, 17) != 0;
			if (e->sender == NULL)
				oom = true;
			if (oom)
				break;
		}
		/* LEFT JOIN: a message without recipients has one row of NULLs on the right */
		if (sqlite3_column_type(st, 6) == SQLITE_NULL)
			continue;
		if (e->rcpt_count == cap) {
			size_t ncap = cap != 0 ? cap * 2 : 4;
			struct queue_rcpt_info *n = realloc(e->rcpts, ncap * sizeof(*n));

			if (n == NULL) {
				oom = true;
				break;
			}
			e->rcpts = n;
			cap = ncap;
		}
		ri = &e->rcpts[e->rcpt_count];
		memset(ri, 0, sizeof(*ri));
		e->rcpt_count++;
		ri->idx = (unsigned)sqlite3_column_int(st, 6);
		ri->addr = queue_col_strdup(st, 7, &oom);
		ri->state = (enum queue_rcpt_state)sqlite3_column_int(st, 8);
		ri->attempts = (unsigned)sqlite3_column_int64(st, 9);
		ri->next_attempt = sqlite3_column_int64(st, 10);
		ri->last_error = queue_col_strdup(st, 11, &oom);
		ri->dsn_notify = (unsigned)sqlite3_column_int(st, 18);
		ri->dsn_orcpt = queue_col_strdup(st, 19, &oom);
		if (ri->addr == NULL)
			oom = true;
		if (oom)
			break;
	}
	if (oom) {
		queue_entry_free(e);
		sqlite3_finalize(st);
		return queue_oom(error_r);
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		queue_entry_free(e);
		queue_db_error(q, error_r);
		sqlite3_finalize(st);
		return RESULT_TEMPFAIL;
	}
	sqlite3_finalize(st);
	if (e != NULL)
		take(e, arg);
	return RESULT_OK;
}

struct queue_list_ctx {
	queue_list_fn *fn;
	void *arg;
};

static int queue_list_take(struct queue_entry *e, void *arg)
{
	struct queue_list_ctx *c = arg;

	c->fn(e, c->arg);
	queue_entry_free(e);
	return 0;
}

enum result queue_list(struct queue *q, queue_list_fn *fn, void *arg, const char **error_r)
{
	struct queue_list_ctx c = { fn, arg };

	return queue_entries_read(q, NULL, queue_list_take, &c, error_r);
}

static int queue_show_take(struct queue_entry *e, void *arg)
{
	struct queue_entry **e_r = arg;

	*e_r = e;
	return 1;
}

enum result queue_show(struct queue *q, const char *id, struct queue_entry **e_r, const char **error_r)
{
	enum result res;

	*e_r = NULL;
	if (!queue_id_valid(id)) {
		*error_r = "no such message in the queue";
		return RESULT_PERMFAIL;
	}
	res = queue_entries_read(q, id, queue_show_take, e_r, error_r);
	if (res == RESULT_OK && *e_r == NULL) {
		*error_r = "no such message in the queue";
		return RESULT_PERMFAIL;
	}
	return res;
}

enum result queue_delete(struct queue *q, const char *id, const char **error_r)
{
	sqlite3_stmt *st;
	int rc;

	if (!queue_id_valid(id)) {
		*error_r = "no such message in the queue";
		return RESULT_PERMFAIL;
	}
	/* the recipients go with it: ON DELETE CASCADE (foreign_keys is on for this connection) */
	if (sqlite3_prepare_v2(q->db, "DELETE FROM messages WHERE id = ?1", -1, &st, NULL) != SQLITE_OK)
		return queue_db_error(q, error_r);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return queue_db_error(q, error_r);
	if (sqlite3_changes(q->db) == 0) {
		*error_r = "no such message in the queue";
		return RESULT_PERMFAIL;
	}
	return RESULT_OK;
}

enum result queue_flush(struct queue *q, unsigned *count_r, const char **error_r)
{
	sqlite3_stmt *st;
	int rc;

	*count_r = 0;
	if (sqlite3_prepare_v2(q->db, "UPDATE recipients SET next_attempt = ?1 WHERE state IN (?2, ?3)",
			-1, &st, NULL) != SQLITE_OK)
		return queue_db_error(q, error_r);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)time(NULL));
	sqlite3_bind_int(st, 2, QUEUE_RCPT_PENDING);
	sqlite3_bind_int(st, 3, QUEUE_RCPT_DEFERRED);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return queue_db_error(q, error_r);
	*count_r = (unsigned)sqlite3_changes(q->db);
	return RESULT_OK;
}

enum result queue_msg_data(struct queue *q, const char *id, char **data_r, size_t *size_r, const char **error_r)
{
	sqlite3_stmt *st;
	const void *blob;
	size_t n;
	int rc;

	*data_r = NULL;
	*size_r = 0;
	if (!queue_id_valid(id)) {
		*error_r = "no such message in the queue";
		return RESULT_PERMFAIL;
	}
	/* the runner reads every message it delivers: kept prepared (db_stmt) */
	st = db_stmt(q->conn, "SELECT data FROM messages WHERE id = ?1");
	if (st == NULL)
		return queue_db_error(q, error_r);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		*error_r = "no such message in the queue";
		return RESULT_PERMFAIL;
	}
	if (rc != SQLITE_ROW) {
		queue_db_error(q, error_r);
		sqlite3_reset(st);
		return RESULT_TEMPFAIL;
	}
	blob = sqlite3_column_blob(st, 0);
	n = (size_t)sqlite3_column_bytes(st, 0);
	if (blob == NULL && n > 0) {
		sqlite3_reset(st);
		return queue_oom(error_r);
	}
	/* one spare byte, NUL, so text users may treat it as a string */
	*data_r = malloc(n + 1);
	if (*data_r == NULL) {
		sqlite3_reset(st);
		return queue_oom(error_r);
	}
	if (n > 0)
		memcpy(*data_r, blob, n);
	(*data_r)[n] = '\0';
	*size_r = n;
	sqlite3_reset(st);
	return RESULT_OK;
}

/* ---- tracked messages ---- */

struct db *queue_db(struct queue *q)
{
	return q->conn;
}

/* In an open transaction: the queue id of email_id while it is still scheduled and never tried.
 * 1 (id in queue_id_r), 0 when it cannot be changed (*why_r says why), -1 on error. */
static int queue_email_scheduled(struct queue *q, const char *email_id, char queue_id_r[QUEUE_ID_LEN + 1],
				 bool *found_r, const char **why_r)
{
	sqlite3_stmt *st = db_stmt(q->conn, "SELECT queue_id, scheduled_at, last_event FROM emails WHERE id = ?1");
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, email_id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st), r = 0;
	*found_r = rc == SQLITE_ROW;
	if (rc == SQLITE_ROW) {
		snprintf(queue_id_r, QUEUE_ID_LEN + 1, "%s", (const char *)sqlite3_column_text(st, 0));
		if (sqlite3_column_int64(st, 1) == 0) {
			*why_r = "This email was not scheduled.";
		} else if (sqlite3_column_int(st, 2) != EMAIL_EVENT_SCHEDULED) {
			*why_r = "This email is no longer scheduled: it has been sent or canceled.";
		} else {
			r = 1;
		}
	} else if (rc != SQLITE_DONE) {
		r = -1;
	}
	sqlite3_reset(st);
	if (r != 1)
		return r;
	/* due already: the delivery runner may have claimed it a moment ago (its claims live in its
	 * memory), so it counts as on its way */
	st = db_stmt(q->conn, "SELECT count(*) FROM recipients WHERE msg_id = ?1"
			      " AND (state != 0 OR attempts > 0 OR next_attempt <= ?2)");
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, queue_id_r, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)time(NULL));
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW)
		r = -1;
	else if (sqlite3_column_int(st, 0) > 0) {
		*why_r = "This email is no longer scheduled: it has been sent.";
		r = 0;
	}
	sqlite3_reset(st);
	return r;
}

static enum result queue_email_change(struct queue *q, const char *email_id, int64_t at, bool cancel, bool *found_r,
				      const char **error_r)
{
	char queue_id[QUEUE_ID_LEN + 1];
	const char *why = NULL;
	int64_t now_ms = date_now_ms();
	*found_r = false;
	int rc = sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	int ok = rc == SQLITE_OK ? queue_email_scheduled(q, email_id, queue_id, found_r, &why) : -1;
	if (ok == 1) {
		/* a running delivery runner holds its claims in memory: a claimed recipient is in flight */
		sqlite3_stmt *st = db_stmt(q->conn, cancel ? "DELETE FROM messages WHERE id = ?1"
							   : "UPDATE recipients SET next_attempt = ?2 WHERE msg_id = ?1");
		if (st == NULL) {
			rc = db_errcode(q->conn);
		} else {
			sqlite3_bind_text(st, 1, queue_id, -1, SQLITE_STATIC);
			if (!cancel)
				sqlite3_bind_int64(st, 2, at);
			rc = queue_stmt_run(st);
			rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
		}
		if (rc == SQLITE_OK && !cancel && (st = db_stmt(q->conn, "UPDATE emails SET scheduled_at = ?2 WHERE id = ?1")) != NULL) {
			sqlite3_bind_text(st, 1, email_id, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, at);
			rc = queue_stmt_run(st);
			rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
		}
		if (rc == SQLITE_OK)
			rc = events_email_event(q->conn, email_id, cancel ? EMAIL_EVENT_CANCELED : EMAIL_EVENT_SCHEDULED,
						now_ms);
	} else if (ok < 0 && rc == SQLITE_OK) {
		rc = sqlite3_errcode(q->db);
		if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW)
			rc = SQLITE_ERROR;
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		snprintf(q->error, sizeof(q->error), "changing a scheduled email: %s", sqlite3_errmsg(q->db));
		*error_r = q->error;
		if (!sqlite3_get_autocommit(q->db))
			sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
		return RESULT_TEMPFAIL;
	}
	if (ok != 1) {
		*error_r = why != NULL ? why : "Email not found.";
		return RESULT_PERMFAIL;
	}
	return RESULT_OK;
}

enum result queue_email_cancel(struct queue *q, const char *email_id, bool *found_r, const char **error_r)
{
	return queue_email_change(q, email_id, 0, true, found_r, error_r);
}

enum result queue_email_reschedule(struct queue *q, const char *email_id, int64_t at, bool *found_r,
				   const char **error_r)
{
	return queue_email_change(q, email_id, at, false, found_r, error_r);
}
