/* test_event_stats.c — events_stats_read (src/events/stats.c) against a real queue.db: counts per
 * bucket and type, the window's edges (an event on a bucket's start belongs to it, one at the end
 * of the window to none), an event recorded a little after its time (out of sequence order) still
 * counted, and the bisection right whatever the number of events before the window. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "db/db.h"
#include "events/events.h"
#include "events/stats.h"
#include "queue/queue.h"

struct ctx {
	char dir[64];
	struct queue *q;
	struct db *db;
};

static int setup(void **state)
{
	struct ctx *t = calloc(1, sizeof(*t));
	const char *err = NULL;
	assert_non_null(t);
	snprintf(t->dir, sizeof(t->dir), "/tmp/mailwerk-test-stats-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	t->q = queue_open(t->dir, &err);
	if (t->q == NULL)
		fail_msg("queue_open: %s", err);
	t->db = queue_db(t->q);
	/* one email for the events to belong to (events.email_id references it) */
	assert_int_equal(sqlite3_exec(db_sqlite(t->db),
				      "INSERT INTO emails(id, queue_id, created_at, from_addr, last_event)"
				      " VALUES('e', 'Q', 0, 'a@b.test', 0)",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *t = *state;
	static const char *const names[] = {"queue.db", "queue.db-wal", "queue.db-shm", "queue.db-journal"};
	char path[128];
	queue_close(t->q);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", t->dir, names[i]);
		unlink(path);
	}
	rmdir(t->dir);
	free(t);
	return 0;
}

static void add(struct ctx *t, enum email_event_type type, int64_t at)
{
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db_sqlite(t->db),
					    "INSERT INTO events(email_id, rcpt_idx, type, created_at) VALUES('e', 0, ?1, ?2)",
					    -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_int(st, 1, type);
	sqlite3_bind_int64(st, 2, at);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
}

#define H 3600000LL

static void test_empty(void **state)
{
	struct ctx *t = *state;
	struct events_stats s;
	assert_int_equal(events_stats_read(t->db, 100 * H, H, 24, &s), SQLITE_OK);
	assert_int_equal(s.buckets, 24);
	for (int i = 0; i < EMAIL_EVENT_COUNT; i++)
		assert_int_equal(s.totals[i], 0);
}

static void test_buckets_and_edges(void **state)
{
	struct ctx *t = *state;
	/* many events long before the window: the bisection must skip them, not count them */
	for (int i = 0; i < 1000; i++)
		add(t, EMAIL_EVENT_DELIVERED, i);
	int64_t since = 1000 * H;
	add(t, EMAIL_EVENT_SENT, since - 1);              /* just before: not counted */
	add(t, EMAIL_EVENT_SENT, since);                  /* a bucket's start: bucket 0 */
	add(t, EMAIL_EVENT_DELIVERED, since + H - 1);     /* bucket 0 */
	add(t, EMAIL_EVENT_BOUNCED, since + 5 * H + 7);   /* bucket 5 */
	add(t, EMAIL_EVENT_DELIVERY_DELAYED, since + 23 * H);
	add(t, EMAIL_EVENT_SENT, since + 24 * H);         /* the window's end: not counted */
	/* recorded after the events above, but its time is inside bucket 2 */
	add(t, EMAIL_EVENT_COMPLAINED, since + 2 * H);
	struct events_stats s;
	assert_int_equal(events_stats_read(t->db, since, H, 24, &s), SQLITE_OK);
	assert_int_equal(s.counts[0][EMAIL_EVENT_SENT], 1);
	assert_int_equal(s.counts[0][EMAIL_EVENT_DELIVERED], 1);
	assert_int_equal(s.counts[5][EMAIL_EVENT_BOUNCED], 1);
	assert_int_equal(s.counts[2][EMAIL_EVENT_COMPLAINED], 1);
	assert_int_equal(s.counts[23][EMAIL_EVENT_DELIVERY_DELAYED], 1);
	assert_int_equal(s.totals[EMAIL_EVENT_SENT], 1);
	assert_int_equal(s.totals[EMAIL_EVENT_DELIVERED], 1);
	uint64_t all = 0;
	for (int i = 0; i < EMAIL_EVENT_COUNT; i++)
		all += s.totals[i];
	assert_int_equal(all, 5);
}

static void test_event_recorded_late_near_the_start(void **state)
{
	struct ctx *t = *state;
	int64_t since = 50 * H;
	add(t, EMAIL_EVENT_SENT, since + 60000);     /* in the window */
	add(t, EMAIL_EVENT_DELIVERED, since + 1000); /* recorded later, earlier time: still in */
	add(t, EMAIL_EVENT_DELIVERED, since - 1000); /* before the window */
	struct events_stats s;
	assert_int_equal(events_stats_read(t->db, since, H, 1, &s), SQLITE_OK);
	assert_int_equal(s.totals[EMAIL_EVENT_SENT], 1);
	assert_int_equal(s.totals[EMAIL_EVENT_DELIVERED], 1);
}

static void test_bucket_count_is_capped(void **state)
{
	struct ctx *t = *state;
	struct events_stats s;
	add(t, EMAIL_EVENT_SENT, 10 * H);
	assert_int_equal(events_stats_read(t->db, 0, H, 1000, &s), SQLITE_OK);
	assert_int_equal(s.buckets, EVENTS_STATS_BUCKETS_MAX);
	assert_int_equal(s.counts[10][EMAIL_EVENT_SENT], 1);
	assert_int_equal(events_stats_read(t->db, 0, 0, 10, &s), SQLITE_OK); /* no bucket size: nothing */
	assert_int_equal(s.totals[EMAIL_EVENT_SENT], 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_buckets_and_edges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_recorded_late_near_the_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bucket_count_is_capped, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
