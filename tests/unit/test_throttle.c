/* test_throttle.c — the token bucket: long-run rate, burst size, exact ready times, clocks that jump back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>

#include "util/throttle.h"

#define T0 1000000 /* an arbitrary start, so that going back does not mean going negative */

/* Takes as soon as allowed, in steps of step_ms, over [start, end]; returns how many were taken. */
static unsigned take_greedily(struct throttle_bucket *b, int64_t start, int64_t end, int64_t step_ms)
{
	unsigned n = 0;
	for (int64_t t = start; t <= end; t += step_ms)
		while (throttle_take(b, t))
			n++;
	return n;
}

static void test_burst_size(void **state)
{
	(void)state;
	static const struct {
		unsigned count, period;
		unsigned burst;
	} cases[] = {
		{600, 3600, 10},  /* 10 a minute */
		{10, 60, 10},     /* 10/m */
		{5, 1, 5},        /* 300 a minute, but never more than the count */
		{1000, 86400, 1}, /* less than one a minute: at least 1 */
		{100, 600, 10},   /* 100/10m */
		{100, 420, 14},   /* 14.3 a minute: whole tokens only */
		{1, 1, 1},
		{1000000, 1, 1000000},
		{1, 4294967295u, 1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct throttle_bucket b;
		throttle_init(&b, cases[i].count, cases[i].period, T0);
		unsigned n = 0;
		while (n <= cases[i].burst && throttle_take(&b, T0))
			n++;
		if (n != cases[i].burst)
			fail_msg("case %zu (%u/%us): burst %u, want %u", i, cases[i].count, cases[i].period, n,
				 cases[i].burst);
		assert_false(throttle_take(&b, T0));
	}
}

/* Over a simulated hour, never more than the rate allows (plus the burst it starts with), and
 * never much less when the caller takes as soon as it may. */
static void test_rate_over_an_hour(void **state)
{
	(void)state;
	static const struct {
		unsigned count, period;
	} cases[] = {{600, 3600}, {10, 60}, {5, 1}, {1000, 86400}, {100, 600}, {7, 13}};
	const int64_t hour = 3600 * 1000;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct throttle_bucket b;
		throttle_init(&b, cases[i].count, cases[i].period, T0);
		double capacity = b.capacity;
		unsigned n = take_greedily(&b, T0, T0 + hour, 7);
		double allowed = (double)cases[i].count * 3600.0 / cases[i].period;
		if ((double)n > allowed + capacity + 1e-9 || (double)n < allowed + capacity - 2)
			fail_msg("case %zu (%u/%us): %u in an hour, want about %.1f + %.0f", i, cases[i].count,
				 cases[i].period, n, allowed, capacity);
	}

	/* after the first burst, any window of a period holds at most count takes */
	struct throttle_bucket b;
	throttle_init(&b, 600, 3600, T0);
	int64_t times[700];
	unsigned n = 0;
	for (int64_t t = T0; t <= T0 + hour && n < 700; t += 100)
		while (n < 700 && throttle_take(&b, t))
			times[n++] = t;
	assert_int_equal(n, 610); /* 10 at once, then one every 6 s for an hour (the last at T0 + 1 h) */
	for (unsigned j = 10; j < n; j++)
		assert_int_equal(times[j] - times[j - 1], 6000);
	/* any stretch of time holds at most the burst plus what the rate gives over it */
	for (unsigned i = 0; i < n; i++)
		for (unsigned j = i; j < n; j++)
			assert_true((double)(j - i + 1) <= b.capacity + (double)(times[j] - times[i]) / 6000.0 + 1e-6);
}

/* throttle_ready_ms names the exact millisecond throttle_take starts to succeed. */
static void test_ready_ms_exact(void **state)
{
	(void)state;
	static const struct {
		unsigned count, period;
	} cases[] = {{600, 3600}, {10, 60}, {5, 1}, {1000, 86400}, {100, 600}, {7, 13}, {3, 7}, {1000000, 3}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct throttle_bucket b;
		throttle_init(&b, cases[i].count, cases[i].period, T0);
		assert_int_equal(throttle_ready_ms(&b, T0), T0); /* full: now */
		int64_t now = T0;
		for (int round = 0; round < 50; round++) {
			while (throttle_take(&b, now))
				;
			int64_t ready = throttle_ready_ms(&b, now);
			if (ready <= now)
				fail_msg("case %zu round %d: ready %lld not after now %lld", i, round, (long long)ready,
					 (long long)now);
			/* one millisecond early fails and changes nothing; the answer stays */
			struct throttle_bucket copy = b;
			if (ready - 1 > now)
				assert_false(throttle_take(&copy, ready - 1));
			assert_int_equal(throttle_ready_ms(&copy, ready - 1), ready);
			assert_true(throttle_take(&b, ready));
			/* the next one is a whole interval later, give or take a rounding millisecond */
			now = ready + (round % 3);
		}
	}

	/* 600/h: one token every 6000 ms, exactly */
	struct throttle_bucket b;
	throttle_init(&b, 600, 3600, T0);
	for (int i = 0; i < 10; i++)
		assert_true(throttle_take(&b, T0));
	assert_int_equal(throttle_ready_ms(&b, T0), T0 + 6000);
	assert_int_equal(throttle_ready_ms(&b, T0 + 5999), T0 + 6000);
	assert_int_equal(throttle_ready_ms(&b, T0 + 6000), T0 + 6000);
	assert_false(throttle_take(&b, T0 + 5999));
	assert_true(throttle_take(&b, T0 + 6000));
	assert_int_equal(throttle_ready_ms(&b, T0 + 6000), T0 + 12000);
	/* idle for a day: only a burst's worth is waiting */
	int64_t later = T0 + 86400 * 1000;
	unsigned n = 0;
	while (throttle_take(&b, later))
		n++;
	assert_int_equal(n, 10);
	assert_int_equal(throttle_ready_ms(&b, later), later + 6000);
}

static void test_time_going_backwards(void **state)
{
	(void)state;
	struct throttle_bucket b;
	throttle_init(&b, 600, 3600, T0);
	for (int i = 0; i < 10; i++)
		assert_true(throttle_take(&b, T0 + 30000));
	/* ready_ms asked before anything noticed the jump: tokens grow only after the last take */
	assert_int_equal(throttle_ready_ms(&b, T0), T0 + 36000);

	/* the clock goes back 30 s: nothing is gained, nothing is lost */
	assert_false(throttle_take(&b, T0));
	assert_int_equal(throttle_ready_ms(&b, T0), T0 + 6000); /* from the earlier time on */
	assert_false(throttle_take(&b, T0 + 5999));
	assert_true(throttle_take(&b, T0 + 6000));

	/* back again, to before the start, and far: no refill, no negative count, no crash */
	assert_false(throttle_take(&b, T0 - 3600 * 1000));
	assert_true(b.tokens >= 0.0 && b.tokens < 1.0);
	assert_int_equal(throttle_ready_ms(&b, T0 - 3600 * 1000), T0 - 3600 * 1000 + 6000);
	/* from there on the rate holds as before: one every 6 s over the 3606 s back to T0 + 6000 */
	unsigned n = take_greedily(&b, T0 - 3600 * 1000, T0 + 6000, 1000);
	assert_int_equal(n, 601);
	assert_true(b.tokens >= 0.0 && b.tokens <= b.capacity);

	/* a clock jumping back and forth by a lot never yields more than capacity at once */
	throttle_init(&b, 10, 60, 0);
	n = 0;
	for (int i = 0; i < 1000; i++)
		n += throttle_take(&b, (i % 2) ? INT64_C(1) << 40 : -(INT64_C(1) << 40)) ? 1 : 0;
	assert_true(n <= 10 + 500 * 10);
	assert_true(b.tokens >= 0.0 && b.tokens <= b.capacity);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_size),
		cmocka_unit_test(test_rate_over_an_hour),
		cmocka_unit_test(test_ready_ms_exact),
		cmocka_unit_test(test_time_going_backwards),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
