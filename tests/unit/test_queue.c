/* test_queue.c — the queue store (group commit, persistence, CLI calls) and loopq, against a real
 * libevent loop and a real SQLite file in a temporary data directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <sys/stat.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <sqlite3.h>

#include "queue/queue.h"
#include "queue/store_sqlite_test.h"
#include "util/loopq.h"

_Static_assert(RESULT_OK == 0, "RESULT_OK must be enum result's");

/* ---- fixture ---- */

struct test_ctx {
	char dir[64];
	struct event_base *base;
	struct loopq *lq;
	struct queue *q;
	unsigned outstanding; /* store callbacks still to come */
	bool timed_out;
};

/* one per stored message: what its callback said */
struct test_slot {
	struct test_ctx *t;
	bool called;
	enum result res;
	const char *reason;
};

static void test_queue_start(struct test_ctx *t)
{
	const char *err = NULL;

	t->q = queue_open(t->dir, &err);
	assert_non_null(t->q);
	assert_int_equal(queue_writer_start(t->q, t->lq, &err), 0);
}

static int test_setup(void **state)
{
	struct test_ctx *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	snprintf(t->dir, sizeof(t->dir), "/tmp/mailwerk-test-queue-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	t->base = event_base_new();
	assert_non_null(t->base);
	t->lq = loopq_new(t->base);
	assert_non_null(t->lq);
	test_queue_start(t);
	*state = t;
	return 0;
}

static void test_dir_remove(const char *dir)
{
	static const char *const names[] = { "queue.db", "queue.db-wal", "queue.db-shm", "queue.db-journal" };
	char path[128];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

static int test_teardown(void **state)
{
	struct test_ctx *t = *state;

	queue_close(t->q);
	loopq_free(t->lq);
	event_base_free(t->base);
	test_dir_remove(t->dir);
	free(t);
	return 0;
}

/* ---- helpers ---- */

static char *test_strdup(const char *s)
{
	char *d = strdup(s);

	assert_non_null(d);
	return d;
}

/* Every byte value appears, NUL and 8-bit included, and the content depends on seed. */
static void test_body_fill(char *buf, size_t size, unsigned seed)
{
	for (size_t i = 0; i < size; i++)
		buf[i] = (char)(unsigned char)((i * 7 + seed) & 0xff);
}

static struct queue_msg *test_msg_new(const char *sender, unsigned nrcpt, int64_t arrival, size_t size,
	unsigned seed)
{
	struct queue_msg *m = calloc(1, sizeof(*m));

	assert_non_null(m);
	queue_id_new(m->id);
	m->sender = test_strdup(sender);
	m->rcpt_count = nrcpt;
	m->rcpts = calloc(nrcpt != 0 ? nrcpt : 1, sizeof(*m->rcpts));
	assert_non_null(m->rcpts);
	for (unsigned i = 0; i < nrcpt; i++) {
		char a[64];

		snprintf(a, sizeof(a), "rcpt%u-%u@example.org", seed, i);
		m->rcpts[i] = test_strdup(a);
	}
	m->auth_user = test_strdup("alice");
	m->client_ip = test_strdup("192.0.2.7");
	m->arrival = arrival;
	m->size = size;
	m->data = malloc(size != 0 ? size : 1);
	assert_non_null(m->data);
	test_body_fill(m->data, size, seed);
	return m;
}

static void test_store_done(void *arg, enum result res, const char *reason)
{
	struct test_slot *s = arg;

	assert_false(s->called);
	s->called = true;
	s->res = res;
	s->reason = reason;
	if (--s->t->outstanding == 0)
		event_base_loopbreak(s->t->base);
}

static void test_loop_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct test_ctx *t = arg;

	(void)fd;
	(void)what;
	t->timed_out = true;
	event_base_loopbreak(t->base);
}

/* Runs the loop until every outstanding store has been answered (or 60 s passed). */
static void test_loop_run(struct test_ctx *t)
{
	struct timeval tv = { 60, 0 };
	struct event *timeout = evtimer_new(t->base, test_loop_timeout, t);

	assert_non_null(timeout);
	evtimer_add(timeout, &tv);
	while (t->outstanding > 0 && !t->timed_out)
		event_base_loop(t->base, EVLOOP_ONCE);
	event_free(timeout);
	assert_false(t->timed_out);
}

struct test_batch {
	struct test_ctx *t;
	struct queue_msg **msgs;
	struct test_slot *slots;
	size_t n;
};

/* Runs on the loop thread, as an SMTP session would: hands every message to the store at once. */
static void test_batch_store_cb(evutil_socket_t fd, short what, void *arg)
{
	struct test_batch *b = arg;

	(void)fd;
	(void)what;
	for (size_t i = 0; i < b->n; i++) {
		b->slots[i].t = b->t;
		queue_msg_store(b->t->q, b->msgs[i], test_store_done, &b->slots[i]);
		b->msgs[i] = NULL; /* the queue owns it now */
	}
}

/* Stores msgs from inside the loop and waits for every answer; slots_r gets them (caller frees). */
static struct test_slot *test_store_all(struct test_ctx *t, struct queue_msg **msgs, size_t n)
{
	struct test_batch b = { t, msgs, calloc(n, sizeof(struct test_slot)), n };
	struct timeval now = { 0, 0 };

	assert_non_null(b.slots);
	t->outstanding += (unsigned)n;
	assert_int_equal(event_base_once(t->base, -1, EV_TIMEOUT, test_batch_store_cb, &b, &now), 0);
	test_loop_run(t);
	for (size_t i = 0; i < n; i++)
		assert_true(b.slots[i].called);
	return b.slots;
}

struct test_list {
	size_t n;
	char ids[64][QUEUE_ID_LEN + 1];
	int64_t arrivals[64];
	size_t rcpts;
};

static void test_list_cb(const struct queue_entry *e, void *arg)
{
	struct test_list *l = arg;

	if (l->n < 64) {
		memcpy(l->ids[l->n], e->id, sizeof(e->id));
		l->arrivals[l->n] = e->arrival;
	}
	l->n++;
	l->rcpts += e->rcpt_count;
}

static void test_count_cb(const struct queue_entry *e, void *arg)
{
	size_t *n = arg;

	(void)e;
	(*n)++;
}

/* ---- tests ---- */

/* RFC 3461 §4.1: which reports a recipient's NOTIFY asks for; none given is FAILURE,DELAY */
static void test_notify_wants(void **state)
{
	(void)state;
	const unsigned S = QUEUE_NOTIFY_SUCCESS, F = QUEUE_NOTIFY_FAILURE, D = QUEUE_NOTIFY_DELAY;
	assert_false(queue_notify_wants(0, S));
	assert_true(queue_notify_wants(0, F) && queue_notify_wants(0, D));
	assert_false(queue_notify_wants(QUEUE_NOTIFY_NEVER, F) || queue_notify_wants(QUEUE_NOTIFY_NEVER, D) ||
		     queue_notify_wants(QUEUE_NOTIFY_NEVER, S));
	assert_true(queue_notify_wants(S, S));
	assert_false(queue_notify_wants(S, F) || queue_notify_wants(S, D));
	assert_true(queue_notify_wants(F | D, F) && queue_notify_wants(F | D, D));
	assert_false(queue_notify_wants(F | D, S));
	assert_true(queue_notify_wants(S | F | D, S));
}

static void test_id(void **state)
{
	char a[QUEUE_ID_LEN + 1], b[QUEUE_ID_LEN + 1];
	struct timespec ms2 = { 0, 2000000 };

	(void)state;
	queue_id_new(a);
	assert_int_equal(strlen(a), QUEUE_ID_LEN);
	assert_true(queue_id_valid(a));
	nanosleep(&ms2, NULL);
	queue_id_new(b);
	assert_true(queue_id_valid(b));
	/* the time prefix makes ids sort by creation */
	assert_true(strcmp(a, b) < 0);

	assert_false(queue_id_valid(NULL));
	assert_false(queue_id_valid(""));
	assert_false(queue_id_valid("0123456789ABCDEFGHJ"));   /* 19 */
	assert_false(queue_id_valid("0123456789ABCDEFGHJKM")); /* 21 */
	assert_true(queue_id_valid("0123456789ABCDEFGHJK"));
	assert_false(queue_id_valid("0123456789ABCDEFGHJk")); /* lower case is not canonical */
	assert_false(queue_id_valid("0123456789ABCDEFGHJI")); /* no I, L, O, U in Crockford's alphabet */
	assert_false(queue_id_valid("0123456789ABCDEFGHJL"));
	assert_false(queue_id_valid("0123456789ABCDEFGHJO"));
	assert_false(queue_id_valid("0123456789ABCDEFGHJU"));
	assert_false(queue_id_valid("0123456789ABCDEFGH/K"));

	assert_string_equal(queue_rcpt_state_str(QUEUE_RCPT_PENDING), "pending");
	assert_string_equal(queue_rcpt_state_str(QUEUE_RCPT_DELIVERED), "delivered");
	assert_string_equal(queue_rcpt_state_str(QUEUE_RCPT_DEFERRED), "deferred");
	assert_string_equal(queue_rcpt_state_str(QUEUE_RCPT_FAILED), "failed");
}

/* loopq: posts from several threads all arrive, each thread's in its order; loopq_free runs leftovers. */
#define LQ_THREADS 4
#define LQ_POSTS 2000

struct lq_test {
	struct event_base *base;
	struct loopq *lq;
	unsigned next_seq[LQ_THREADS];
	unsigned total;
	bool out_of_order;
};

struct lq_item {
	struct lq_test *lt;
	unsigned thread;
	unsigned seq;
};

static void lq_item_run(void *arg)
{
	struct lq_item *it = arg;
	struct lq_test *lt = it->lt;

	if (it->seq != lt->next_seq[it->thread])
		lt->out_of_order = true;
	lt->next_seq[it->thread] = it->seq + 1;
	lt->total++;
	free(it);
	if (lt->total == LQ_THREADS * LQ_POSTS)
		event_base_loopbreak(lt->base);
}

struct lq_poster {
	struct lq_test *lt;
	unsigned thread;
};

static void *lq_poster_run(void *arg)
{
	struct lq_poster *p = arg;

	for (unsigned i = 0; i < LQ_POSTS; i++) {
		struct lq_item *it = malloc(sizeof(*it));

		if (it == NULL)
			abort();
		it->lt = p->lt;
		it->thread = p->thread;
		it->seq = i;
		loopq_post(p->lt->lq, lq_item_run, it);
	}
	return NULL;
}

static void lq_count(void *arg)
{
	(*(unsigned *)arg)++;
}

static void test_loopq(void **state)
{
	struct lq_test lt = { 0 };
	struct lq_poster posters[LQ_THREADS];
	pthread_t th[LQ_THREADS];
	unsigned leftovers = 0;

	(void)state;
	lt.base = event_base_new();
	assert_non_null(lt.base);
	lt.lq = loopq_new(lt.base);
	assert_non_null(lt.lq);
	for (unsigned i = 0; i < LQ_THREADS; i++) {
		posters[i].lt = &lt;
		posters[i].thread = i;
		assert_int_equal(pthread_create(&th[i], NULL, lq_poster_run, &posters[i]), 0);
	}
	event_base_dispatch(lt.base);
	for (unsigned i = 0; i < LQ_THREADS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(lt.total, LQ_THREADS * LQ_POSTS);
	assert_false(lt.out_of_order);

	for (unsigned i = 0; i < 3; i++)
		loopq_post(lt.lq, lq_count, &leftovers);
	loopq_free(lt.lq);
	assert_int_equal(leftovers, 3);
	event_base_free(lt.base);
}

#define RT_N 20

static void test_roundtrip(void **state)
{
	struct test_ctx *t = *state;
	struct queue_msg *msgs[RT_N];
	char ids[RT_N][QUEUE_ID_LEN + 1];
	struct test_slot *slots;
	struct test_list l = { 0 };
	struct queue_entry *e = NULL;
	const char *err = NULL;
	char *data = NULL;
	size_t size = 0;
	unsigned flushed = 0;
	sqlite3 *raw;
	char path[128];
	time_t before;

	for (unsigned i = 0; i < RT_N; i++) {
		/* arrivals in reverse of storing order, so the list order is the store's doing */
		msgs[i] = test_msg_new(i == 3 ? "" : "sender@example.com", 2, 1700000000 + (RT_N - i), 1000 + i * 37, i);
		memcpy(ids[i], msgs[i]->id, sizeof(ids[i]));
	}
	/* a quarantined message keeps its folder (schema v4) */
	msgs[2]->folder = strdup("Junk");
	assert_non_null(msgs[2]->folder);
	/* DSN requests and REQUIRETLS (schema v13) */
	msgs[4]->dsn_ret = QUEUE_DSN_RET_HDRS;
	msgs[4]->dsn_envid = strdup("env 1");
	msgs[4]->requiretls = true;
	msgs[4]->rcpt_notify = calloc(2, sizeof(unsigned));
	msgs[4]->rcpt_orcpt = calloc(2, sizeof(char *));
	assert_non_null(msgs[4]->rcpt_notify);
	assert_non_null(msgs[4]->rcpt_orcpt);
	msgs[4]->rcpt_notify[1] = QUEUE_NOTIFY_SUCCESS | QUEUE_NOTIFY_FAILURE;
	msgs[4]->rcpt_orcpt[1] = strdup("rfc822;old@example.org");
	msgs[6]->tls_required_no = true;
	slots = test_store_all(t, msgs, RT_N);
	for (unsigned i = 0; i < RT_N; i++) {
		assert_int_equal(slots[i].res, RESULT_OK);
		assert_null(slots[i].reason);
	}
	free(slots);

	assert_int_equal(queue_list(t->q, test_list_cb, &l, &err), RESULT_OK);
	assert_int_equal(l.n, RT_N);
	assert_int_equal(l.rcpts, RT_N * 2);
	for (unsigned i = 0; i < RT_N; i++) {
		assert_string_equal(l.ids[i], ids[RT_N - 1 - i]);
		if (i > 0)
			assert_true(l.arrivals[i - 1] <= l.arrivals[i]);
	}

	assert_int_equal(queue_show(t->q, ids[5], &e, &err), RESULT_OK);
	assert_non_null(e);
	assert_string_equal(e->id, ids[5]);
	assert_string_equal(e->sender, "sender@example.com");
	assert_string_equal(e->auth_user, "alice");
	assert_string_equal(e->client_ip, "192.0.2.7");
	assert_int_equal(e->arrival, 1700000000 + (RT_N - 5));
	assert_int_equal(e->size, 1000 + 5 * 37);
	assert_int_equal(e->rcpt_count, 2);
	assert_string_equal(e->rcpts[0].addr, "rcpt5-0@example.org");
	assert_string_equal(e->rcpts[1].addr, "rcpt5-1@example.org");
	assert_int_equal(e->rcpts[0].state, QUEUE_RCPT_PENDING);
	assert_int_equal(e->rcpts[0].attempts, 0);
	assert_null(e->rcpts[0].last_error);
	/* nothing asked: the defaults, which are what mailwerk did before it kept DSN requests */
	assert_int_equal(e->dsn_ret, QUEUE_DSN_RET_UNSPECIFIED);
	assert_null(e->dsn_envid);
	assert_false(e->requiretls || e->tls_required_no);
	assert_int_equal(e->rcpts[0].dsn_notify, 0);
	assert_null(e->rcpts[0].dsn_orcpt);
	queue_entry_free(e);

	assert_int_equal(queue_show(t->q, ids[4], &e, &err), RESULT_OK);
	assert_int_equal(e->dsn_ret, QUEUE_DSN_RET_HDRS);
	assert_string_equal(e->dsn_envid, "env 1");
	assert_true(e->requiretls);
	assert_false(e->tls_required_no);
	assert_int_equal(e->rcpts[0].dsn_notify, 0);
	assert_null(e->rcpts[0].dsn_orcpt);
	assert_int_equal(e->rcpts[1].dsn_notify, QUEUE_NOTIFY_SUCCESS | QUEUE_NOTIFY_FAILURE);
	assert_string_equal(e->rcpts[1].dsn_orcpt, "rfc822;old@example.org");
	queue_entry_free(e);
	assert_int_equal(queue_show(t->q, ids[6], &e, &err), RESULT_OK);
	assert_true(e->tls_required_no && !e->requiretls);
	queue_entry_free(e);

	assert_int_equal(queue_show(t->q, ids[3], &e, &err), RESULT_OK);
	assert_string_equal(e->sender, ""); /* the null reverse-path */
	queue_entry_free(e);

	/* byte-exact, NULs and 8-bit bytes included */
	for (unsigned i = 0; i < RT_N; i++) {
		char *want;
		size_t n = 1000 + i * 37;

		assert_int_equal(queue_msg_data(t->q, ids[i], &data, &size, &err), RESULT_OK);
		assert_int_equal(size, n);
		want = malloc(n);
		assert_non_null(want);
		test_body_fill(want, n, i);
		assert_memory_equal(data, want, n);
		assert_non_null(memchr(data, '\0', n));
		assert_non_null(memchr(data, '\xff', n));
		free(want);
		free(data);
	}

	/* delete: once, then it is unknown everywhere */
	assert_int_equal(queue_delete(t->q, ids[7], &err), RESULT_OK);
	assert_int_equal(queue_delete(t->q, ids[7], &err), RESULT_PERMFAIL);
	assert_int_equal(queue_show(t->q, ids[7], &e, &err), RESULT_PERMFAIL);
	assert_null(e);
	assert_int_equal(queue_msg_data(t->q, ids[7], &data, &size, &err), RESULT_PERMFAIL);
	assert_int_equal(queue_delete(t->q, "not-an-id", &err), RESULT_PERMFAIL);
	assert_int_equal(queue_show(t->q, "00000000000000000000", &e, &err), RESULT_PERMFAIL);

	/* recipients went with it (cascade): check in the file itself, as another process would */
	snprintf(path, sizeof(path), "%s/queue.db", t->dir);
	assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
	sqlite3_busy_timeout(raw, 5000);
	{
		sqlite3_stmt *st;
		char sql[160];

		snprintf(sql, sizeof(sql), "SELECT count(*) FROM recipients WHERE msg_id = '%s'", ids[7]);
		assert_int_equal(sqlite3_prepare_v2(raw, sql, -1, &st, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(st, 0), 0);
		sqlite3_finalize(st);
		snprintf(sql, sizeof(sql), "SELECT folder FROM messages WHERE id IN ('%s', '%s') ORDER BY id = '%s'",
			 ids[1], ids[2], ids[2]);
		assert_int_equal(sqlite3_prepare_v2(raw, sql, -1, &st, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_string_equal((const char *)sqlite3_column_text(st, 0), "");
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_string_equal((const char *)sqlite3_column_text(st, 0), "Junk");
		sqlite3_finalize(st);
		assert_int_equal(sqlite3_prepare_v2(raw, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(st, 0), 14); /* v5: events, v6: no_dsn, v7: suppressions, v8: webhooks, v9: received mail, v10: webhook attempts, v11: sent headers, v12: held, v13: DSN requests, v14: TLS-RPT counters */
		sqlite3_finalize(st);
	}
	/* one recipient delivered (final), one deferred far in the future */
	{
		char sql[256];

		snprintf(sql, sizeof(sql),
			"UPDATE recipients SET state = 1, next_attempt = 0 WHERE msg_id = '%s' AND idx = 0;"
			"UPDATE recipients SET state = 2, attempts = 3, next_attempt = 4000000000,"
			" last_error = '451 try later' WHERE msg_id = '%s' AND idx = 1;",
			ids[0], ids[0]);
		assert_int_equal(sqlite3_exec(raw, sql, NULL, NULL, NULL), SQLITE_OK);
	}
	sqlite3_close(raw);

	before = time(NULL);
	assert_int_equal(queue_flush(t->q, &flushed, &err), RESULT_OK);
	/* 19 messages × 2 recipients, minus the delivered one */
	assert_int_equal(flushed, (RT_N - 1) * 2 - 1);
	assert_int_equal(queue_show(t->q, ids[0], &e, &err), RESULT_OK);
	assert_int_equal(e->rcpts[0].state, QUEUE_RCPT_DELIVERED);
	assert_int_equal(e->rcpts[0].next_attempt, 0);
	assert_int_equal(e->rcpts[1].state, QUEUE_RCPT_DEFERRED);
	assert_int_equal(e->rcpts[1].attempts, 3);
	assert_string_equal(e->rcpts[1].last_error, "451 try later");
	assert_true(e->rcpts[1].next_attempt >= before && e->rcpts[1].next_attempt <= time(NULL));
	queue_entry_free(e);

	/* persistence: close everything, reopen, same content */
	queue_close(t->q);
	t->q = NULL;
	test_queue_start(t);
	memset(&l, 0, sizeof(l));
	assert_int_equal(queue_list(t->q, test_list_cb, &l, &err), RESULT_OK);
	assert_int_equal(l.n, RT_N - 1);
	assert_int_equal(queue_msg_data(t->q, ids[19], &data, &size, &err), RESULT_OK);
	assert_int_equal(size, 1000 + 19 * 37);
	{
		char want[1000 + 19 * 37];

		test_body_fill(want, sizeof(want), 19);
		assert_memory_equal(data, want, sizeof(want));
	}
	free(data);
}

#define GC_N 2000

/* The point of the writer: 2000 stores handed over at once must share commits. */
static void test_group_commit(void **state)
{
	struct test_ctx *t = *state;
	struct queue_msg **msgs = calloc(GC_N, sizeof(*msgs));
	struct test_slot *slots;
	unsigned long commits;
	const char *err = NULL;
	size_t n = 0;

	assert_non_null(msgs);
	for (unsigned i = 0; i < GC_N; i++)
		msgs[i] = test_msg_new("s@example.com", 1 + i % 3, 1700000000, 2000 + i % 500, i);
	slots = test_store_all(t, msgs, GC_N);
	for (unsigned i = 0; i < GC_N; i++)
		assert_int_equal(slots[i].res, RESULT_OK);
	free(slots);
	free(msgs);

	commits = queue_commit_count(t->q);
	print_message("group commit: %u messages in %lu commits (%.1f messages per commit)\n",
		GC_N, commits, (double)GC_N / (double)commits);
	assert_true(commits >= 1);
	assert_true(commits < GC_N);
	/* batches are capped at 256 messages: at least 8 commits for 2000 */
	assert_true(commits >= GC_N / 256);

	assert_int_equal(queue_list(t->q, test_count_cb, &n, &err), RESULT_OK);
	assert_int_equal(n, GC_N);
}

/* Closer to a server: SESSIONS sessions each store their next message when the previous one is
 * answered, so stores keep arriving while a commit is being fsynced. */
#define CL_SESSIONS 64
#define CL_PER_SESSION 16

struct cl_session {
	struct test_ctx *t;
	unsigned sent;
	unsigned ok;
	unsigned *failed;
};

static void cl_store_next(struct cl_session *s);

static void cl_done(void *arg, enum result res, const char *reason)
{
	struct cl_session *s = arg;

	(void)reason;
	if (res == RESULT_OK)
		s->ok++;
	else
		(*s->failed)++;
	if (s->sent < CL_PER_SESSION)
		cl_store_next(s);
	if (--s->t->outstanding == 0)
		event_base_loopbreak(s->t->base);
}

static void cl_store_next(struct cl_session *s)
{
	s->sent++;
	queue_msg_store(s->t->q, test_msg_new("s@example.com", 2, 1700000000, 4000, s->sent), cl_done, s);
}

static void cl_start_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cl_session *sessions = arg;

	(void)fd;
	(void)what;
	for (unsigned i = 0; i < CL_SESSIONS; i++)
		cl_store_next(&sessions[i]);
}

static void test_group_commit_sessions(void **state)
{
	struct test_ctx *t = *state;
	struct cl_session sessions[CL_SESSIONS];
	struct timeval now = { 0, 0 };
	struct timespec t0, t1;
	unsigned failed = 0;
	unsigned long commits;
	double secs;
	const unsigned total = CL_SESSIONS * CL_PER_SESSION;

	for (unsigned i = 0; i < CL_SESSIONS; i++)
		sessions[i] = (struct cl_session){ t, 0, 0, &failed };
	t->outstanding = total;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(event_base_once(t->base, -1, EV_TIMEOUT, cl_start_cb, sessions, &now), 0);
	test_loop_run(t);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_int_equal(failed, 0);
	for (unsigned i = 0; i < CL_SESSIONS; i++)
		assert_int_equal(sessions[i].ok, CL_PER_SESSION);
	commits = queue_commit_count(t->q);
	print_message("group commit, %u sessions one message at a time: %u messages in %lu commits "
		"(%.1f per commit), %.0f messages/s\n",
		CL_SESSIONS, total, commits, (double)total / (double)commits, (double)total / secs);
	assert_true(commits < total);
}

/* A full disk answers 4xx (RESULT_TEMPFAIL, "disk full") and stores nothing; the queue recovers. */
static void test_disk_full(void **state)
{
	struct test_ctx *t = *state;
	struct queue_msg *msgs[3];
	struct test_slot *slots;
	const char *err = NULL;
	size_t n = 0;

	/* something small first, so the database has its tables and a size to be capped at */
	msgs[0] = test_msg_new("s@example.com", 1, 1700000000, 100, 1);
	slots = test_store_all(t, msgs, 1);
	assert_int_equal(slots[0].res, RESULT_OK);
	free(slots);

	queue_test_max_pages_set(t->q, 1);
	msgs[0] = test_msg_new("s@example.com", 1, 1700000001, 1 << 20, 2);
	/* large enough that it cannot fit in free space of existing pages, whichever batch it lands in */
	msgs[1] = test_msg_new("s@example.com", 1, 1700000002, 200000, 3);
	slots = test_store_all(t, msgs, 2);
	for (unsigned i = 0; i < 2; i++) {
		assert_int_equal(slots[i].res, RESULT_TEMPFAIL);
		assert_non_null(slots[i].reason);
		assert_string_equal(slots[i].reason, "disk full");
	}
	free(slots);
	assert_int_equal(queue_list(t->q, test_count_cb, &n, &err), RESULT_OK);
	assert_int_equal(n, 1);

	/* room again (SQLite 3.40's largest page count) */
	queue_test_max_pages_set(t->q, 1073741823u);
	msgs[0] = test_msg_new("s@example.com", 1, 1700000003, 1 << 20, 4);
	slots = test_store_all(t, msgs, 1);
	assert_int_equal(slots[0].res, RESULT_OK);
	free(slots);
	n = 0;
	assert_int_equal(queue_list(t->q, test_count_cb, &n, &err), RESULT_OK);
	assert_int_equal(n, 2);
}

struct commit_seen {
	struct test_ctx *t;
	unsigned calls;
	unsigned outstanding_at_call; /* answers still to come when the notification ran */
};

static void test_commit_seen(void *arg)
{
	struct commit_seen *c = arg;

	c->calls++;
	c->outstanding_at_call = c->t->outstanding;
}

/* The commit notification (the hand-over to delivery): once per committed batch, before its answers,
 * and not at all for a batch that stored nothing. */
static void test_commit_notification(void **state)
{
	struct test_ctx *t = *state;
	struct commit_seen seen = { t, 0, 0 };
	struct queue_msg *msgs[1];
	struct test_slot *slots;

	assert_true(queue_commit_subscribe(t->q, test_commit_seen, &seen));
	msgs[0] = test_msg_new("s@example.com", 1, 1700000000, 100, 1);
	slots = test_store_all(t, msgs, 1);
	assert_int_equal(slots[0].res, RESULT_OK);
	free(slots);
	assert_int_equal(seen.calls, 1);
	assert_int_equal(seen.outstanding_at_call, 1);

	queue_test_max_pages_set(t->q, 1); /* the next store fails: nothing committed, nobody told */
	msgs[0] = test_msg_new("s@example.com", 1, 1700000001, 1 << 20, 2);
	slots = test_store_all(t, msgs, 1);
	assert_int_equal(slots[0].res, RESULT_TEMPFAIL);
	free(slots);
	assert_int_equal(seen.calls, 1);
	queue_test_max_pages_set(t->q, 1073741823u);

	for (unsigned i = 1; i < QUEUE_COMMIT_SUBSCRIBERS; i++)
		assert_true(queue_commit_subscribe(t->q, test_commit_seen, &seen));
	assert_false(queue_commit_subscribe(t->q, test_commit_seen, &seen));
}

/* A message that cannot be stored alone (same id twice, or built wrongly) fails alone. */
static void test_single_failures(void **state)
{
	struct test_ctx *t = *state;
	struct queue_msg *msgs[4];
	struct test_slot *slots;
	const char *err = NULL;
	size_t n = 0;

	msgs[0] = test_msg_new("a@example.com", 1, 1700000000, 10, 1);
	msgs[1] = test_msg_new("b@example.com", 1, 1700000000, 10, 2);
	memcpy(msgs[1]->id, msgs[0]->id, sizeof(msgs[0]->id));
	msgs[2] = test_msg_new("c@example.com", 2, 1700000000, 10, 3);
	free(msgs[2]->rcpts[1]);
	msgs[2]->rcpts[1] = NULL;
	msgs[3] = test_msg_new("d@example.com", 0, 1700000000, 0, 4); /* no body, no recipients: storable */
	slots = test_store_all(t, msgs, 4);
	assert_int_equal(slots[0].res, RESULT_OK);
	assert_int_equal(slots[1].res, RESULT_TEMPFAIL);
	assert_string_equal(slots[1].reason, "id collision");
	assert_int_equal(slots[2].res, RESULT_TEMPFAIL);
	assert_string_equal(slots[2].reason, "invalid message");
	assert_int_equal(slots[3].res, RESULT_OK);
	free(slots);
	assert_int_equal(queue_list(t->q, test_count_cb, &n, &err), RESULT_OK);
	assert_int_equal(n, 2);
}

static void test_close_cb(void *arg, enum result res, const char *reason)
{
	unsigned *ok = arg;

	(void)reason;
	if (res == RESULT_OK)
		(*ok)++;
}

/* queue_close() commits and answers what is pending; the answers run when the loop next turns (here
 * in loopq_free), and the messages are there after reopening. */
static void test_close_answers_pending(void **state)
{
	struct test_ctx *t = *state;
	unsigned ok = 0;
	const char *err = NULL;
	size_t n = 0;

	for (unsigned i = 0; i < 50; i++)
		queue_msg_store(t->q, test_msg_new("s@example.com", 1, 1700000000, 500, i), test_close_cb, &ok);
	queue_close(t->q);
	t->q = NULL;
	assert_int_equal(ok, 0); /* never synchronously */
	loopq_free(t->lq);
	assert_int_equal(ok, 50);
	t->lq = loopq_new(t->base);
	assert_non_null(t->lq);
	test_queue_start(t);
	assert_int_equal(queue_list(t->q, test_count_cb, &n, &err), RESULT_OK);
	assert_int_equal(n, 50);
}

struct reader_arg {
	char dir[64];
	bool stop;
	pthread_mutex_t mu;
	unsigned lists;
	unsigned errors;
};

/* The CLI next to the running server: another connection reading while the writer commits. */
static void *reader_run(void *arg)
{
	struct reader_arg *r = arg;
	const char *err = NULL;
	struct queue *q = queue_open(r->dir, &err);

	if (q == NULL) {
		pthread_mutex_lock(&r->mu);
		r->errors++;
		pthread_mutex_unlock(&r->mu);
		return NULL;
	}
	for (;;) {
		size_t n = 0;
		bool stop;

		pthread_mutex_lock(&r->mu);
		stop = r->stop;
		pthread_mutex_unlock(&r->mu);
		if (stop)
			break;
		enum result res = queue_list(q, test_count_cb, &n, &err);

		pthread_mutex_lock(&r->mu);
		if (res == RESULT_OK)
			r->lists++;
		else
			r->errors++;
		pthread_mutex_unlock(&r->mu);
	}
	queue_close(q);
	return NULL;
}

static void test_concurrent_reader(void **state)
{
	struct test_ctx *t = *state;
	struct reader_arg r = { .stop = false };
	struct queue_msg *msgs[300];
	struct test_slot *slots;
	pthread_t th;
	struct queue *other;
	const char *err = NULL;

	memcpy(r.dir, t->dir, sizeof(r.dir));
	pthread_mutex_init(&r.mu, NULL);
	assert_int_equal(pthread_create(&th, NULL, reader_run, &r), 0);
	for (unsigned round = 0; round < 3; round++) {
		for (unsigned i = 0; i < 300; i++)
			msgs[i] = test_msg_new("s@example.com", 2, 1700000000 + round, 3000, i);
		slots = test_store_all(t, msgs, 300);
		for (unsigned i = 0; i < 300; i++)
			assert_int_equal(slots[i].res, RESULT_OK);
		free(slots);
	}
	pthread_mutex_lock(&r.mu);
	r.stop = true;
	pthread_mutex_unlock(&r.mu);
	pthread_join(th, NULL);
	pthread_mutex_destroy(&r.mu);
	assert_int_equal(r.errors, 0);
	assert_true(r.lists > 0);

	/* and a second handle may write (delete) while the writer's connection is open */
	other = queue_open(t->dir, &err);
	assert_non_null(other);
	{
		struct test_list l = { 0 };
		unsigned flushed = 0;

		assert_int_equal(queue_list(other, test_list_cb, &l, &err), RESULT_OK);
		assert_int_equal(l.n, 900);
		assert_int_equal(queue_delete(other, l.ids[0], &err), RESULT_OK);
		assert_int_equal(queue_flush(other, &flushed, &err), RESULT_OK);
		assert_int_equal(flushed, 899 * 2);
	}
	queue_close(other);
}

static void test_open_errors(void **state)
{
	const char *err = NULL;

	(void)state;
	assert_null(queue_open("/nonexistent/mailwerk-test-dir", &err));
	assert_non_null(err);
	assert_non_null(strstr(err, "queue.db"));
}

/* Checkpoints run on their own thread (queue/checkpoint.c): once the WAL has grown past its
 * threshold, pages reach the database file while the writer goes on, and nothing is lost. */
static void test_checkpoint_thread(void **state)
{
	struct test_ctx *t = *state;
	char db[PATH_MAX + 16];
	snprintf(db, sizeof(db), "%s/queue.db", t->dir);
	struct stat before;
	assert_int_equal(stat(db, &before), 0);
	/* about 8 MB: well past 1000 WAL pages */
	for (unsigned round = 0; round < 4; round++) {
		struct queue_msg *msgs[64];
		for (unsigned i = 0; i < 64; i++)
			msgs[i] = test_msg_new("a@example.org", 1, 1700000000, 32768, round * 64 + i);
		free(test_store_all(t, msgs, 64));
	}
	/* the checkpointer copies WAL pages into the database file by itself: poll, bounded */
	struct stat after = before;
	for (int i = 0; i < 200 && after.st_size < before.st_size + (off_t)4 * 1024 * 1024; i++) {
		usleep(20000);
		assert_int_equal(stat(db, &after), 0);
	}
	assert_true(after.st_size >= before.st_size + (off_t)4 * 1024 * 1024);
	size_t count = 0;
	const char *err;
	assert_int_equal(queue_list(t->q, test_count_cb, &count, &err), RESULT_OK);
	assert_int_equal(count, 256);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_id),
		cmocka_unit_test(test_notify_wants),
		cmocka_unit_test(test_loopq),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test_setup_teardown(test_roundtrip, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_group_commit, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_group_commit_sessions, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_disk_full, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_commit_notification, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_single_failures, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_close_answers_pending, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_reader, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_thread, test_setup, test_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
