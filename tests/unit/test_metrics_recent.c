/* test_metrics_recent.c — the last minute's and the last hour's delivery outcomes (util/metrics_recent.c):
 * what falls in each window as the clock moves on, a slot reset when its time comes round again,
 * metrics_delivery_count feeding both rings, NULL harmless, and a reader beside the writing thread
 * never seeing more than was written nor a count that goes back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "util/metrics.h"

#define L METRICS_ROUTE_LOCAL
#define R METRICS_ROUTE_REMOTE
#define OK METRICS_OUTCOME_DELIVERED
#define DEF METRICS_OUTCOME_DEFERRED
#define FAIL METRICS_OUTCOME_FAILED

/* an arbitrary moment of the monotonic clock, at the start of a minute */
#define T0 ((int64_t)1000020)

static void test_windows(void **state)
{
	(void)state;
	struct metrics *m = metrics_new();
	assert_non_null(m);
	struct metrics_recent_counts c;
	metrics_recent_count_at(m, L, OK, T0);
	metrics_recent_count_at(m, L, OK, T0 + 1);
	metrics_recent_count_at(m, R, DEF, T0 + 30);
	metrics_recent_count_at(m, R, FAIL, T0 + 59);
	metrics_recent_read_at(m, T0 + 59, &c);
	assert_int_equal(c.minute[L][OK], 2);
	assert_int_equal(c.minute[R][DEF], 1);
	assert_int_equal(c.minute[R][FAIL], 1);
	assert_int_equal(c.minute[L][FAIL], 0);
	assert_int_equal(c.hour[L][OK], 2);
	assert_int_equal(c.hour[R][FAIL], 1);
	/* one second on: T0 has left the minute (which is this second and the 59 before) */
	metrics_recent_read_at(m, T0 + 60, &c);
	assert_int_equal(c.minute[L][OK], 1);
	assert_int_equal(c.hour[L][OK], 2);
	/* a reader a moment behind the writer does not count what is ahead of it */
	metrics_recent_read_at(m, T0 + 29, &c);
	assert_int_equal(c.minute[R][DEF], 0);
	/* ten minutes on: nothing in the minute, all in the hour */
	metrics_recent_read_at(m, T0 + 600, &c);
	assert_int_equal(c.minute[L][OK] + c.minute[R][DEF] + c.minute[R][FAIL], 0);
	assert_int_equal(c.hour[L][OK], 2);
	assert_int_equal(c.hour[R][DEF], 1);
	/* the minute of T0 is in the hour until 59 more have begun */
	metrics_recent_read_at(m, T0 + 59 * 60 + 59, &c);
	assert_int_equal(c.hour[L][OK], 2);
	metrics_recent_read_at(m, T0 + 60 * 60, &c);
	assert_int_equal(c.hour[L][OK] + c.hour[R][DEF] + c.hour[R][FAIL], 0);
	metrics_free(m);
}

static void test_slot_reused(void **state)
{
	(void)state;
	struct metrics *m = metrics_new();
	struct metrics_recent_counts c;
	for (int i = 0; i < 5; i++)
		metrics_recent_count_at(m, R, OK, T0 + 3);
	/* the same second slot and the same minute slot an hour later: reset, not added to */
	metrics_recent_count_at(m, R, OK, T0 + 3 + 3600);
	metrics_recent_read_at(m, T0 + 3 + 3600, &c);
	assert_int_equal(c.minute[R][OK], 1);
	assert_int_equal(c.hour[R][OK], 1);
	/* a reader still at the old time no longer finds the old counts (they are gone), nor the new */
	metrics_recent_read_at(m, T0 + 3, &c);
	assert_int_equal(c.minute[R][OK], 0);
	metrics_free(m);
}

static void test_fed_by_delivery_count(void **state)
{
	(void)state;
	struct metrics *m = metrics_new();
	struct metrics_recent_counts c;
	metrics_delivery_count(m, L, OK);
	metrics_delivery_count(m, R, FAIL);
	metrics_delivery_count(m, R, FAIL);
	metrics_recent_read(m, &c);
	assert_int_equal(c.minute[L][OK], 1);
	assert_int_equal(c.minute[R][FAIL], 2);
	assert_int_equal(c.hour[R][FAIL], 2);
	assert_int_equal(atomic_load(&m->deliveries[R][FAIL]), 2);
	/* out of range and NULL: not counted, nothing touched */
	metrics_recent_count_at(m, METRICS_ROUTE_COUNT, OK, T0);
	metrics_recent_count_at(m, L, METRICS_OUTCOME_COUNT, T0);
	metrics_recent_count_at(m, L, OK, -5);
	metrics_recent_count_at(NULL, L, OK, T0);
	metrics_recent_read_at(m, T0, &c);
	assert_int_equal(c.minute[L][OK], 0);
	metrics_recent_read(NULL, &c);
	assert_int_equal(c.hour[L][OK], 0);
	metrics_free(m);
}

/* ---- one writer, one reader ---- */

#define WRITES 200000

struct race {
	struct metrics *m;
	_Atomic bool done;
};

/* Counts WRITES outcomes, moving on one second every 1000: the slots are reset under the reader. */
static void *race_writer(void *arg)
{
	struct race *r = arg;
	for (int i = 0; i < WRITES; i++)
		metrics_recent_count_at(r->m, L, OK, T0 + i / 1000);
	atomic_store(&r->done, true);
	return NULL;
}

static void test_reader_beside_the_writer(void **state)
{
	(void)state;
	struct race r = {.m = metrics_new()};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, race_writer, &r), 0);
	const int64_t last = T0 + (WRITES - 1) / 1000;
	while (!atomic_load(&r.done)) {
		struct metrics_recent_counts c;
		/* reading at the writer's last second, everything written in the hour is in the window:
		 * a torn read of a slot being reset would show as a count above the writes */
		metrics_recent_read_at(r.m, last, &c);
		assert_true(c.hour[L][OK] <= WRITES);
		assert_true(c.minute[L][OK] <= 60 * 1000);
	}
	pthread_join(t, NULL);
	struct metrics_recent_counts c;
	metrics_recent_read_at(r.m, last, &c);
	assert_int_equal(c.minute[L][OK], 60 * 1000);
	/* the minutes of the 200 seconds: T0 starts a minute, so all of them are within the hour */
	assert_int_equal(c.hour[L][OK], WRITES);
	metrics_free(r.m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_windows),
		cmocka_unit_test(test_slot_reused),
		cmocka_unit_test(test_fed_by_delivery_count),
		cmocka_unit_test(test_reader_beside_the_writer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
