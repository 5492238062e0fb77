/* checkpoint.c — WAL checkpoints of queue.db on their own thread (checkpoint.h). */
#include "queue/checkpoint.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>

#include "db/db.h"
#include "util/log.h"

/* WAL pages (4 KiB) after which a checkpoint is asked for: SQLite's own default threshold. */
#define CHECKPOINT_PAGES 1000

struct queue_checkpointer {
	struct db *conn;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool due;      /* under mu */
	bool stopping; /* under mu */
};

/* The writer's WAL hook: after each of its commits, with the WAL's size in pages. It only signals. */
static int checkpoint_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct queue_checkpointer *c = arg;
	if (pages >= CHECKPOINT_PAGES) {
		pthread_mutex_lock(&c->mu);
		c->due = true;
		pthread_cond_signal(&c->cond);
		pthread_mutex_unlock(&c->mu);
	}
	return SQLITE_OK;
}

static void *checkpoint_run(void *arg)
{
	struct queue_checkpointer *c = arg;
	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (!c->due && !c->stopping)
			pthread_cond_wait(&c->cond, &c->mu);
		bool last = c->stopping;
		c->due = false;
		pthread_mutex_unlock(&c->mu);
		int log_pages = 0, done_pages = 0;
		/* PASSIVE: as much as readers allow, without waiting for them or blocking the writer */
		int rc = sqlite3_wal_checkpoint_v2(db_sqlite(c->conn), NULL, SQLITE_CHECKPOINT_PASSIVE, &log_pages, &done_pages);
		if (rc != SQLITE_OK && rc != SQLITE_BUSY)
			log_warn("event=checkpoint_failed error=\"%s\"", sqlite3_errmsg(db_sqlite(c->conn)));
		pthread_mutex_lock(&c->mu);
		if (last)
			break;
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

struct queue_checkpointer *queue_checkpointer_start(const char *path, sqlite3 *w)
{
	struct queue_checkpointer *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	char err[DB_ERROR_SIZE];
	/* journal_size_limit: a WAL that a long reader let grow is cut back once it is checkpointed */
	const struct db_opts o = {.flags = SQLITE_OPEN_NOMUTEX, .sync = DB_SYNC_FULL, .journal_size_limit = 67108864};
	if ((c->conn = db_open(path, &o, err, sizeof(err))) == NULL) {
		log_warn("event=checkpointer_unavailable error=\"%s\"", err);
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cond, NULL);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old); /* signals are the loop's */
	int rc = pthread_create(&c->thread, NULL, checkpoint_run, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		db_close(c->conn);
		pthread_cond_destroy(&c->cond);
		pthread_mutex_destroy(&c->mu);
		free(c);
		return NULL;
	}
	/* from here on the writer's commits never checkpoint themselves */
	sqlite3_wal_hook(w, checkpoint_hook, c);
	return c;
}

void queue_checkpointer_stop(struct queue_checkpointer *c, sqlite3 *w)
{
	if (c == NULL)
		return;
	sqlite3_wal_hook(w, NULL, NULL);
	pthread_mutex_lock(&c->mu);
	c->stopping = true;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	db_close(c->conn);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->mu);
	free(c);
}
