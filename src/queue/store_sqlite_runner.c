/* store_sqlite_runner.c — the delivery runner's view of the SQLite queue store (queue.h): claiming
 * due recipients, holds, counts, and recording results (with their TLS sessions) in one
 * transaction. The runner's thread only, on the main connection. */
#include "queue/queue.h"
#include "queue/store_sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "db/db.h"
#include "events/events.h"
#include "events/tlsrpt_sessions.h"
#include "util/date.h"

/* The runner's connection also sees the accounts database, to know which domains are local. */
static int queue_accounts_attach(struct queue *q)
{
	if (q->accounts_attached)
		return SQLITE_OK;
	char path[4096];
	const char *slash = strrchr(q->path, '/');
	snprintf(path, sizeof(path), "%.*s/mailwerk.db", slash != NULL ? (int)(slash - q->path) : 1,
		 slash != NULL ? q->path : ".");
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(q->db, "ATTACH DATABASE ?1 AS accounts", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	sqlite3_bind_text(st, 1, path, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return rc;
	q->accounts_attached = true;
	return SQLITE_OK;
}

/* Claims and holds are temp tables: private to this connection, in memory, gone with it. */
static int queue_claims_ready(struct queue *q)
{
	if (q->claims_ready)
		return SQLITE_OK;
	int rc = sqlite3_exec(q->db,
		"PRAGMA temp_store = MEMORY;"
		"CREATE TEMP TABLE IF NOT EXISTS claimed(msg_id TEXT NOT NULL, idx INTEGER NOT NULL,"
		" PRIMARY KEY(msg_id, idx)) WITHOUT ROWID;"
		"CREATE TEMP TABLE IF NOT EXISTS held(domain TEXT PRIMARY KEY) WITHOUT ROWID;", NULL, NULL, NULL);
	q->claims_ready = rc == SQLITE_OK;
	return rc;
}

static int queue_runner_ready(struct queue *q, enum queue_route route)
{
	int rc = queue_accounts_attach(q);
	if (rc == SQLITE_OK && route == QUEUE_ROUTE_REMOTE)
		rc = queue_claims_ready(q);
	return rc;
}

/* held messages (version 12) wait for their release; messages_held serves the subquery */
#define QUEUE_NOT_HELD " AND r.msg_id NOT IN (SELECT id FROM messages WHERE held != 0)"
#define QUEUE_LOCAL_WHERE \
	" r.state IN (0, 2) AND r.domain IN (SELECT name FROM accounts.domains)" QUEUE_NOT_HELD
#define QUEUE_REMOTE_WHERE                                                                          \
	" r.state IN (0, 2) AND r.domain NOT IN (SELECT name FROM accounts.domains)" QUEUE_NOT_HELD \
	" AND r.domain NOT IN (SELECT domain FROM temp.held)"                                       \
	" AND NOT EXISTS (SELECT 1 FROM temp.claimed c WHERE c.msg_id = r.msg_id AND c.idx = r.idx)"

#define QUEUE_DUE_COLUMNS \
	"SELECT r.msg_id, r.idx, r.addr, r.attempts, m.sender, m.arrival, r.domain, r.warned, m.folder, m.no_dsn," \
	" m.dsn_ret, m.dsn_envid, m.requiretls, m.tls_required_no, r.dsn_notify, r.dsn_orcpt" \
	" FROM recipients r" \
	" JOIN messages m ON m.id = r.msg_id"

static const char queue_due_local_sql[] =
	QUEUE_DUE_COLUMNS " WHERE" QUEUE_LOCAL_WHERE " AND r.next_attempt <= ?1"
	" ORDER BY m.arrival, r.msg_id, r.idx LIMIT ?2";
static const char queue_due_remote_sql[] =
	QUEUE_DUE_COLUMNS " WHERE" QUEUE_REMOTE_WHERE " AND r.next_attempt <= ?1"
	" ORDER BY m.arrival, r.msg_id, r.domain, r.idx LIMIT ?2";

static int queue_claim(struct queue *q, const struct queue_due_msg *msgs, size_t count)
{
	sqlite3_stmt *st = NULL;
	/* only the temp database is written: no lock on the queue, nothing to fsync */
	int rc = sqlite3_exec(q->db, "BEGIN", NULL, NULL, NULL);
	if (rc == SQLITE_OK &&
	    (st = db_stmt(q->conn, "INSERT OR IGNORE INTO temp.claimed(msg_id, idx) VALUES(?1, ?2)")) == NULL)
		rc = db_errcode(q->conn);
	for (size_t i = 0; i < count && rc == SQLITE_OK; i++)
		for (size_t j = 0; j < msgs[i].rcpt_count && rc == SQLITE_OK; j++) {
			sqlite3_bind_text(st, 1, msgs[i].id, -1, SQLITE_STATIC);
			sqlite3_bind_int(st, 2, (int)msgs[i].rcpts[j].idx);
			rc = queue_stmt_run(st);
			rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
		}
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK && !sqlite3_get_autocommit(q->db))
		sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

enum result queue_due(struct queue *q, enum queue_route route, int64_t now, size_t max, struct queue_due_msg **msgs_r,
		      size_t *count_r, const char **error_r)
{
	struct queue_due_msg *msgs = NULL;
	size_t count = 0;
	sqlite3_stmt *st = NULL;
	int rc = queue_runner_ready(q, route);
	*msgs_r = NULL;
	*count_r = 0;
	/* Asked on every pass of the runner: prepared once for the connection's life (db_stmt). */
	if (rc == SQLITE_OK &&
	    (st = db_stmt(q->conn, route == QUEUE_ROUTE_LOCAL ? queue_due_local_sql : queue_due_remote_sql)) == NULL)
		rc = db_errcode(q->conn);
	if (rc != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		if (count == 0 || strcmp(msgs[count - 1].id, id) != 0) {
			struct queue_due_msg *grown = realloc(msgs, (count + 1) * sizeof(*msgs));
			if (grown == NULL)
				goto oom;
			msgs = grown;
			memset(&msgs[count], 0, sizeof(msgs[count]));
			snprintf(msgs[count].id, sizeof(msgs[count].id), "%s", id);
			msgs[count].sender = strdup((const char *)sqlite3_column_text(st, 4));
			msgs[count].arrival = sqlite3_column_int64(st, 5);
			msgs[count].folder = strdup((const char *)sqlite3_column_text(st, 8));
			msgs[count].no_dsn = sqlite3_column_int(st, 9) != 0;
			msgs[count].dsn_ret = (enum queue_dsn_ret)sqlite3_column_int(st, 10);
			bool oom = false;
			msgs[count].dsn_envid = queue_col_strdup(st, 11, &oom);
			msgs[count].requiretls = sqlite3_column_int(st, 12) != 0;
			msgs[count].tls_required_no = sqlite3_column_int(st, 13) != 0;
			count++;
			if (msgs[count - 1].sender == NULL || msgs[count - 1].folder == NULL || oom)
				goto oom;
		}
		struct queue_due_msg *m = &msgs[count - 1];
		struct queue_due_rcpt *grown = realloc(m->rcpts, (m->rcpt_count + 1) * sizeof(*m->rcpts));
		if (grown == NULL)
			goto oom;
		m->rcpts = grown;
		struct queue_due_rcpt *r = &m->rcpts[m->rcpt_count];
		memset(r, 0, sizeof(*r));
		m->rcpt_count++;
		r->idx = (unsigned)sqlite3_column_int(st, 1);
		r->attempts = (unsigned)sqlite3_column_int(st, 3);
		r->warned = sqlite3_column_int(st, 7) != 0;
		r->addr = strdup((const char *)sqlite3_column_text(st, 2));
		r->domain = strdup((const char *)sqlite3_column_text(st, 6));
		r->dsn_notify = (unsigned)sqlite3_column_int(st, 14);
		bool oom = false;
		r->dsn_orcpt = queue_col_strdup(st, 15, &oom);
		if (r->addr == NULL || r->domain == NULL || oom)
			goto oom;
	}
	sqlite3_reset(st);
	st = NULL;
	if (rc != SQLITE_DONE || (route == QUEUE_ROUTE_REMOTE && (rc = queue_claim(q, msgs, count)) != SQLITE_OK)) {
		queue_due_free(msgs, count);
		goto fail;
	}
	*msgs_r = msgs;
	*count_r = count;
	return RESULT_OK;
oom:
	sqlite3_reset(st);
	queue_due_free(msgs, count);
	*error_r = "out of memory";
	return RESULT_TEMPFAIL;
fail:
	snprintf(q->error, sizeof(q->error), "reading due recipients: %s", sqlite3_errmsg(q->db));
	*error_r = q->error;
	if (st != NULL)
		sqlite3_reset(st);
	return RESULT_TEMPFAIL;
}

void queue_due_free(struct queue_due_msg *msgs, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		for (size_t j = 0; j < msgs[i].rcpt_count; j++) {
			free(msgs[i].rcpts[j].addr);
			free(msgs[i].rcpts[j].domain);
			free(msgs[i].rcpts[j].dsn_orcpt);
		}
		free(msgs[i].rcpts);
		free(msgs[i].sender);
		free(msgs[i].folder);
		free(msgs[i].dsn_envid);
	}
	free(msgs);
}

enum result queue_next_due(struct queue *q, enum queue_route route, int64_t *t_r, const char **error_r)
{
	int rc = queue_runner_ready(q, route);
	*t_r = 0;
	/* min() of no rows is NULL, which reads as 0: nothing due */
	if (rc == SQLITE_OK)
		rc = db_int64(q->conn, route == QUEUE_ROUTE_LOCAL
				       ? "SELECT min(r.next_attempt) FROM recipients r WHERE" QUEUE_LOCAL_WHERE
				       : "SELECT min(r.next_attempt) FROM recipients r WHERE" QUEUE_REMOTE_WHERE, t_r);
	if (rc == SQLITE_OK)
		return RESULT_OK;
	snprintf(q->error, sizeof(q->error), "reading the next due time: %s", sqlite3_errmsg(q->db));
	*error_r = q->error;
	return RESULT_TEMPFAIL;
}

enum result queue_stats(struct queue *q, uint64_t *count_r, int64_t *oldest_r, const char **error_r)
{
	*count_r = 0;
	*oldest_r = 0;
	/* one statement, so the count and the oldest come from one snapshot */
	sqlite3_stmt *st = db_stmt(q->conn, "SELECT count(*), min(arrival) FROM messages");
	int rc = st != NULL ? sqlite3_step(st) : db_errcode(q->conn);
	if (rc == SQLITE_ROW) {
		*count_r = (uint64_t)sqlite3_column_int64(st, 0);
		*oldest_r = sqlite3_column_int64(st, 1); /* min() of no rows is NULL, which reads as 0 */
		rc = SQLITE_OK;
	}
	if (st != NULL)
		sqlite3_reset(st);
	if (rc == SQLITE_OK)
		return RESULT_OK;
	snprintf(q->error, sizeof(q->error), "counting the queue: %s", sqlite3_errmsg(q->db));
	*error_r = q->error;
	return RESULT_TEMPFAIL;
}

enum result queue_deferred_oldest(struct queue *q, uint64_t *count_r, struct queue_deferred *d_r, const char **error_r)
{
	*count_r = 0;
	memset(d_r, 0, sizeof(*d_r));
	/* one statement: the count beside the oldest row (recipients_due serves the state) */
	sqlite3_stmt *st = db_stmt(q->conn, "SELECT (SELECT count(*) FROM recipients WHERE state = ?1), m.id, r.addr,"
					    " m.arrival, r.next_attempt, r.last_error FROM recipients r JOIN messages m"
					    " ON m.id = r.msg_id WHERE r.state = ?1 ORDER BY m.arrival, m.id LIMIT 1");
	int rc = st != NULL ? SQLITE_OK : db_errcode(q->conn);
	if (st != NULL) {
		sqlite3_bind_int(st, 1, QUEUE_RCPT_DEFERRED);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*count_r = (uint64_t)sqlite3_column_int64(st, 0);
			snprintf(d_r->id, sizeof(d_r->id), "%s", (const char *)sqlite3_column_text(st, 1));
			const unsigned char *addr = sqlite3_column_text(st, 2), *err = sqlite3_column_text(st, 5);
			d_r->addr = strdup(addr != NULL ? (const char *)addr : "");
			d_r->arrival = sqlite3_column_int64(st, 3);
			d_r->next_attempt = sqlite3_column_int64(st, 4);
			d_r->last_error = err != NULL ? strdup((const char *)err) : NULL;
			rc = d_r->addr != NULL ? SQLITE_DONE : SQLITE_NOMEM;
		}
		sqlite3_reset(st);
	}
	if (rc == SQLITE_DONE)
		return RESULT_OK;
	free(d_r->addr);
	free(d_r->last_error);
	memset(d_r, 0, sizeof(*d_r));
	*count_r = 0;
	snprintf(q->error, sizeof(q->error), "reading the deferred recipients: %s", sqlite3_errmsg(q->db));
	*error_r = q->error;
	return RESULT_TEMPFAIL;
}

enum result queue_hold(struct queue *q, const char *id, bool hold, unsigned *count_r, const char **error_r)
{
	*count_r = 0;
	if (id != NULL && !queue_id_valid(id)) {
		*error_r = "no such message in the queue";
		return RESULT_PERMFAIL;
	}
	/* one message: matched whatever it was (changes counts the row); all: those that change */
	sqlite3_stmt *st = db_stmt(q->conn, id != NULL ? "UPDATE messages SET held = ?1 WHERE id = ?2"
						       : "UPDATE messages SET held = ?1 WHERE held != ?1");
	if (st == NULL)
		return queue_db_error(q, error_r);
	sqlite3_bind_int(st, 1, hold ? 1 : 0);
	if (id != NULL)
		sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	int rc = queue_stmt_run(st);
	if (rc != SQLITE_DONE)
		return queue_db_error(q, error_r);
	*count_r = (unsigned)sqlite3_changes(q->db);
	if (id != NULL && *count_r == 0) {
		*error_r = "no such message in the queue";
		return RESULT_PERMFAIL;
	}
	return RESULT_OK;
}

enum result queue_counts_read(struct queue *q, int64_t now, struct queue_counts *c_r, const char **error_r)
{
	memset(c_r, 0, sizeof(*c_r));
	/* one statement: one snapshot for every number */
	sqlite3_stmt *st = db_stmt(q->conn,
		"SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM messages WHERE held != 0),"
		" (SELECT min(arrival) FROM messages),"
		" (SELECT count(*) FROM recipients r WHERE r.state IN (0, 2) AND r.next_attempt <= ?1" QUEUE_NOT_HELD "),"
		" (SELECT count(*) FROM recipients WHERE state = 2)");
	int rc = st != NULL ? SQLITE_OK : db_errcode(q->conn);
	if (st != NULL) {
		sqlite3_bind_int64(st, 1, now);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			c_r->messages = (uint64_t)sqlite3_column_int64(st, 0);
			c_r->held = (uint64_t)sqlite3_column_int64(st, 1);
			c_r->oldest_arrival = sqlite3_column_int64(st, 2); /* NULL of no rows reads as 0 */
			c_r->rcpts_due = (uint64_t)sqlite3_column_int64(st, 3);
			c_r->rcpts_deferred = (uint64_t)sqlite3_column_int64(st, 4);
			rc = SQLITE_OK;
		}
		sqlite3_reset(st);
	}
	if (rc == SQLITE_OK)
		return RESULT_OK;
	snprintf(q->error, sizeof(q->error), "counting the queue: %s", sqlite3_errmsg(q->db));
	*error_r = q->error;
	return RESULT_TEMPFAIL;
}

uint64_t queue_data_version(struct queue *q)
{
	int64_t v = 0;
	/* per connection: it changes when another connection (the writer, the CLI) commits */
	if (db_int64(q->conn, "PRAGMA data_version", &v) != SQLITE_OK)
		return 0;
	return (uint64_t)v;
}

static void queue_unclaim_with(sqlite3_stmt *st, const char *id, unsigned idx)
{
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, (int)idx);
	queue_stmt_run(st);
}

static const char queue_unclaim_sql[] = "DELETE FROM temp.claimed WHERE msg_id = ?1 AND idx = ?2";

void queue_unclaim(struct queue *q, const char *id, unsigned idx)
{
	sqlite3_stmt *st;
	if (!q->claims_ready || (st = db_stmt(q->conn, queue_unclaim_sql)) == NULL)
		return;
	queue_unclaim_with(st, id, idx);
}

enum result queue_claimed_count(struct queue *q, const char *id, unsigned *count_r, const char **error_r)
{
	*count_r = 0;
	if (!q->claims_ready)
		return RESULT_OK; /* this connection has never claimed anything */
	sqlite3_stmt *st = db_stmt(q->conn, "SELECT count(*) FROM temp.claimed WHERE msg_id = ?1");
	int rc = st != NULL ? SQLITE_OK : db_errcode(q->conn);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*count_r = (unsigned)sqlite3_column_int(st, 0);
			rc = SQLITE_OK;
		}
		sqlite3_reset(st);
	}
	if (rc == SQLITE_OK)
		return RESULT_OK;
	snprintf(q->error, sizeof(q->error), "reading the claims: %s", sqlite3_errmsg(q->db));
	*error_r = q->error;
	return RESULT_TEMPFAIL;
}

static void queue_claims_end(struct queue *q, const struct queue_rcpt_result *res, size_t n)
{
	sqlite3_stmt *st;
	if (!q->claims_ready || (st = db_stmt(q->conn, queue_unclaim_sql)) == NULL)
		return;
	sqlite3_exec(q->db, "BEGIN", NULL, NULL, NULL);
	for (size_t i = 0; i < n; i++)
		queue_unclaim_with(st, res[i].id, res[i].idx);
	sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL);
}

enum result queue_domain_hold(struct queue *q, const char *domain, bool hold, const char **error_r)
{
	sqlite3_stmt *st = NULL;
	int rc = queue_claims_ready(q);
	if (rc == SQLITE_OK && (st = db_stmt(q->conn, hold ? "INSERT OR IGNORE INTO temp.held(domain) VALUES(?1)"
							   : "DELETE FROM temp.held WHERE domain = ?1")) == NULL)
		rc = db_errcode(q->conn);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
		rc = queue_stmt_run(st);
		rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
	}
	if (rc == SQLITE_OK)
		return RESULT_OK;
	snprintf(q->error, sizeof(q->error), "holding a domain: %s", sqlite3_errmsg(q->db));
	*error_r = q->error;
	return RESULT_TEMPFAIL;
}

static const char queue_result_update_sql[] =
	"UPDATE recipients SET state = ?3, attempts = attempts + 1, next_attempt = ?4, last_error = ?5,"
	" warned = max(warned, ?6) WHERE msg_id = ?1 AND idx = ?2";
/* a message leaves the queue once every recipient is done: delivered, or failed and reported */
static const char queue_result_delete_sql[] =
	"DELETE FROM messages WHERE id = ?1 AND NOT EXISTS"
	" (SELECT 1 FROM recipients WHERE msg_id = ?1 AND state IN (0, 2))";

/* The event a recipient's new state is: RFC 3463 class 5 from the receiver is a bounce, a failure
 * we decided alone (no such domain, a local error) is "failed"; a recipient that ran out of
 * retries bounced as well (Resend: a soft bounce, type Transient). */
static int queue_result_event(struct queue *q, const struct queue_rcpt_result *r, int64_t now_ms)
{
	enum email_event_type type = EMAIL_EVENT_DELIVERED;
	if (r->state == QUEUE_RCPT_DEFERRED)
		type = EMAIL_EVENT_DELIVERY_DELAYED;
	else if (r->state == QUEUE_RCPT_FAILED)
		type = r->mx != NULL || (r->status != NULL && r->status[0] == '4') ? EMAIL_EVENT_BOUNCED : EMAIL_EVENT_FAILED;
	struct events_attempt a = {
		.queue_id = r->id,
		.idx = r->idx,
		.first = r->first,
		.type = type,
		.status = r->status,
		.reply = r->reply != NULL ? r->reply : r->error,
		.mx = r->mx,
		.at_ms = now_ms,
	};
	return events_attempt_record(q->conn, &a);
}

enum result queue_rcpt_results(struct queue *q, const struct queue_rcpt_result *res, size_t n,
			       struct queue_msg *const *add, size_t n_add, const char **error_r)
{
	return queue_rcpt_results_tls(q, res, n, add, n_add, NULL, 0, NULL, error_r);
}

enum result queue_rcpt_results_tls(struct queue *q, const struct queue_rcpt_result *res, size_t n,
				   struct queue_msg *const *add, size_t n_add, const struct tlsrpt_sessions *tls,
				   unsigned tls_period, bool *tls_lost_r, const char **error_r)
{
	if (tls_lost_r != NULL)
		*tls_lost_r = false;
	int64_t now_ms = date_now_ms();
	sqlite3_stmt *up = NULL, *del = NULL, *ins_msg = NULL, *ins_rcpt = NULL;
	/* one transaction for the whole batch: state changes are group-committed like stores */
	int rc = sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	/* four statements held at once, well under DB_STMT_CACHE_MAX */
	if (rc == SQLITE_OK && ((up = db_stmt(q->conn, queue_result_update_sql)) == NULL ||
				(del = db_stmt(q->conn, queue_result_delete_sql)) == NULL))
		rc = db_errcode(q->conn);
	if (rc == SQLITE_OK && n_add > 0 && ((ins_msg = db_stmt(q->conn, queue_insert_msg_sql)) == NULL ||
					     (ins_rcpt = db_stmt(q->conn, queue_insert_rcpt_sql)) == NULL))
		rc = db_errcode(q->conn);
	/* new messages (delivery status notifications) commit together with the failures they report */
	for (size_t i = 0; i < n_add && rc == SQLITE_OK; i++) {
		bool alone;
		rc = queue_msg_wellformed(add[i]) ? queue_msg_insert_with(q->conn, ins_msg, ins_rcpt, add[i], &alone) : SQLITE_MISUSE;
		rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
	}
	for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
		sqlite3_bind_text(up, 1, res[i].id, -1, SQLITE_STATIC);
		sqlite3_bind_int(up, 2, (int)res[i].idx);
		sqlite3_bind_int(up, 3, res[i].state);
		sqlite3_bind_int64(up, 4, res[i].next_attempt);
		sqlite3_bind_text(up, 5, res[i].error, -1, SQLITE_STATIC);
		sqlite3_bind_int(up, 6, res[i].warned ? 1 : 0);
		rc = queue_stmt_run(up);
		rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
		/* a tracked message's events commit with the state change they report (events.h) */
		if (rc == SQLITE_OK)
			rc = queue_result_event(q, &res[i], now_ms);
		if (rc == SQLITE_OK && (i + 1 == n || strcmp(res[i + 1].id, res[i].id) != 0)) {
			sqlite3_bind_text(del, 1, res[i].id, -1, SQLITE_STATIC);
			rc = queue_stmt_run(del);
			rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
		}
	}
	/* the TLS sessions of these attempts commit with their results (tlsrpt_sessions.h); counts
	 * that cannot be written are given up inside a savepoint, never the results */
	if (rc == SQLITE_OK && tls != NULL && tls->n > 0 &&
	    (rc = sqlite3_exec(q->db, "SAVEPOINT tlsrpt", NULL, NULL, NULL)) == SQLITE_OK) {
		if (tlsrpt_sessions_store(q->conn, tls, tls_period) != SQLITE_OK) {
			rc = sqlite3_exec(q->db, "ROLLBACK TO tlsrpt", NULL, NULL, NULL);
			if (tls_lost_r != NULL)
				*tls_lost_r = true;
		}
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(q->db, "RELEASE tlsrpt", NULL, NULL, NULL);
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		snprintf(q->error, sizeof(q->error), "recording delivery results: %s", sqlite3_errmsg(q->db));
		*error_r = q->error;
		if (!sqlite3_get_autocommit(q->db))
			sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
	}
	/* after the transaction, so that a rollback cannot keep a recipient claimed for ever */
	queue_claims_end(q, res, n);
	return rc == SQLITE_OK ? RESULT_OK : RESULT_TEMPFAIL;
}
