/* store_sqlite_int.h — what the SQLite queue store's files share (store_sqlite.c: schema, the
 * group-commit writer, the synchronous calls; store_sqlite_runner.c: the delivery runner's view),
 * and no one else. */
#ifndef MAILWERK_QUEUE_STORE_SQLITE_INT_H
#define MAILWERK_QUEUE_STORE_SQLITE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "db/db.h"
#include "queue/queue.h"

struct loopq;
struct queue_checkpointer;
struct email_feedback;

struct queue_store_req {
	struct queue_store_req *next;
	struct queue_msg **msgs; /* n messages stored all or none; &one for a single one */
	size_t n;
	struct queue_msg *one;
	struct email_feedback *fb; /* instead of messages: a report about tracked mail (events.h) */
	queue_store_done_fn *done;
	void *arg;
	enum result res;
	const char *reason; /* static */
};

struct queue {
	char *path;
	struct db *conn; /* main connection: the synchronous calls */
	sqlite3 *db;     /* db_sqlite(conn) */
	bool accounts_attached; /* mailwerk.db is attached to db (delivery runner) */
	bool claims_ready;      /* the temp tables of claims and holds exist (delivery runner) */
	char error[DB_ERROR_SIZE];

	/* writer: set up by queue_writer_start() on the caller's thread, then used only by the writer */
	struct db *wconn;
	sqlite3 *wdb; /* db_sqlite(wconn) */
	sqlite3_stmt *w_begin;
	sqlite3_stmt *w_commit;
	sqlite3_stmt *w_rollback;
	sqlite3_stmt *w_msg;
	sqlite3_stmt *w_rcpt;
	struct loopq *lq;
	struct queue_checkpointer *checkpointer; /* the writer's WAL checkpoints (checkpoint.h) */
	pthread_t thread;
	bool writer_started;
	atomic_ulong commits;

	pthread_mutex_t mu;
	pthread_cond_t cond;              /* pending list became non-empty, or stopping */
	struct queue_store_req *pending;  /* under mu */
	struct queue_store_req *pending_tail;
	bool stopping;                    /* under mu */
	unsigned test_max_pages;          /* under mu; 0 = nothing to apply */

	/* who hears of commits: written under mu, read by the writer under mu */
	struct {
		queue_commit_fn *fn;
		void *arg;
	} subscribers[QUEUE_COMMIT_SUBSCRIBERS];
	size_t subscriber_count;
};

/* The statements that insert a message row and a recipient row, for queue_msg_insert_with. */
extern const char queue_insert_msg_sql[];
extern const char queue_insert_rcpt_sql[];
/* The main connection's last error as the call's error (TEMPFAIL). */
enum result queue_db_error(struct queue *q, const char **error_r);
/* A column's text copied; NULL stays NULL; *oom_r is set when a value could not be copied. */
char *queue_col_strdup(sqlite3_stmt *st, int col, bool *oom_r);
/* Steps st once, then resets it and clears its bindings: SQLITE_DONE (a row counts as done), or the
 * error. */
int queue_stmt_run(sqlite3_stmt *st);
/* A message the caller built wrongly fails alone instead of failing its batch. */
bool queue_msg_wellformed(const struct queue_msg *m);
/* Inserts one message and its recipients with the given prepared statements into the open
 * transaction. Returns SQLITE_DONE, or the error; *alone_r tells whether only this message failed
 * (the transaction is intact) or the batch must be rolled back. */
int queue_msg_insert_with(struct db *db, sqlite3_stmt *msg_st, sqlite3_stmt *rcpt_st, const struct queue_msg *m,
			  bool *alone_r);

#endif
