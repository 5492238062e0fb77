/* test_minrate.c — the DATA rate floor (util/minrate.c): the grace period, windows judged on their
 * own, the exact boundary, clocks that go back, totals that do not grow, and values at the limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>

#include "util/minrate.h"

#define T0 1000000 /* an arbitrary start */

static void test_off_is_never_slow(void **state)
{
	(void)state;
	struct minrate r;
	minrate_start(&r, 0, 1000, 1000, 0, T0);
	assert_false(minrate_too_slow(&r, 0, T0 + 86400000));
	struct minrate none = {0}; /* never started */
	assert_false(minrate_too_slow(&none, 0, T0 + 86400000));
}

static void test_grace_then_windows(void **state)
{
	(void)state;
	struct minrate r;
	/* 500 octets/s, 10 s of grace, 10 s windows */
	minrate_start(&r, 500, 10000, 10000, 0, T0);
	assert_false(minrate_too_slow(&r, 0, T0 + 1));        /* nothing yet: still measuring */
	assert_false(minrate_too_slow(&r, 0, T0 + 19999));    /* the first window is grace + window */
	assert_true(minrate_too_slow(&r, 9999, T0 + 20000));  /* 20 s need 10000 octets */
	minrate_start(&r, 500, 10000, 10000, 0, T0);
	assert_false(minrate_too_slow(&r, 10000, T0 + 20000)); /* exactly enough */
	/* now each window of 10 s on its own: 5000 more by T0 + 30 s */
	assert_false(minrate_too_slow(&r, 10000, T0 + 29999));
	assert_true(minrate_too_slow(&r, 14999, T0 + 30000));
	minrate_start(&r, 500, 10000, 10000, 0, T0);
	assert_false(minrate_too_slow(&r, 10000, T0 + 20000));
	assert_false(minrate_too_slow(&r, 15000, T0 + 30000));
}

/* A fast start buys nothing later: each window is judged on its own. */
static void test_fast_start_then_trickle(void **state)
{
	(void)state;
	struct minrate r;
	minrate_start(&r, 500, 2000, 2000, 0, T0);
	assert_false(minrate_too_slow(&r, 1000000, T0 + 4000));
	assert_true(minrate_too_slow(&r, 1000010, T0 + 6000));
}

/* A window judged late covers all the time since its start, so a client cannot hide a stall by
 * sending nothing until long after the window's end. */
static void test_late_judgement_covers_the_stall(void **state)
{
	(void)state;
	struct minrate r;
	minrate_start(&r, 500, 1000, 1000, 0, T0);
	/* 1000 octets in the first 2 s would do; they come after 60 s */
	assert_true(minrate_too_slow(&r, 1000, T0 + 60000));
	minrate_start(&r, 500, 1000, 1000, 0, T0);
	assert_false(minrate_too_slow(&r, 30000, T0 + 60000));
}

/* One byte every 300 ms is 3.3 octets/s: cut after grace and one window, not before. */
static void test_trickle(void **state)
{
	(void)state;
	struct minrate r;
	minrate_start(&r, 500, 2000, 2000, 0, T0);
	uint64_t total = 0;
	int64_t cut = -1;
	for (int64_t t = T0; t <= T0 + 60000; t += 300) {
		total++;
		if (minrate_too_slow(&r, total, t)) {
			cut = t - T0;
			break;
		}
	}
	assert_true(cut >= 4000 && cut < 4300);
}

static void test_hostile_clock_and_totals(void **state)
{
	(void)state;
	struct minrate r;
	minrate_start(&r, 500, 1000, 1000, 100, T0);
	assert_false(minrate_too_slow(&r, 0, T0 - 1000000)); /* the clock went back: no time passed */
	assert_false(minrate_too_slow(&r, 0, INT64_MIN));
	assert_true(minrate_too_slow(&r, 50, T0 + 2000));    /* a total below the start counts as none */
	/* the largest rates and spans saturate instead of wrapping */
	minrate_start(&r, UINT64_MAX, 0, 1, 0, 0);
	assert_true(minrate_too_slow(&r, UINT64_MAX - 1, INT64_MAX));
	minrate_start(&r, 1000000000, 0, 1000, 0, 0);
	assert_false(minrate_too_slow(&r, UINT64_MAX, INT64_MAX));
	assert_false(minrate_too_slow(&r, UINT64_MAX, INT64_MAX)); /* the next window starts there */
	minrate_start(&r, 1000000000, 0, 1000, 0, 0);
	assert_true(minrate_too_slow(&r, UINT64_MAX - 1, INT64_MAX));
	/* a window of 0 or less is taken as 1 ms, a negative grace as none */
	minrate_start(&r, 1000, -5, 0, 0, T0);
	assert_false(minrate_too_slow(&r, 0, T0));
	assert_true(minrate_too_slow(&r, 0, T0 + 1));
	minrate_start(&r, 1000, -5, -7, 0, T0);
	assert_false(minrate_too_slow(&r, 1, T0 + 1));
	/* rates that are not multiples of 1000 are exact to the octet: 1999/s over 1.5 s is 2998.5 */
	minrate_start(&r, 1999, 0, 1500, 0, T0);
	assert_true(minrate_too_slow(&r, 2997, T0 + 1500));
	minrate_start(&r, 1999, 0, 1500, 0, T0);
	assert_false(minrate_too_slow(&r, 2998, T0 + 1500));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_off_is_never_slow),
		cmocka_unit_test(test_grace_then_windows),
		cmocka_unit_test(test_fast_start_then_trickle),
		cmocka_unit_test(test_late_judgement_covers_the_stall),
		cmocka_unit_test(test_trickle),
		cmocka_unit_test(test_hostile_clock_and_totals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
