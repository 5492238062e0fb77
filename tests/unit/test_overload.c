/* test_overload.c — overload mode (util/overload.c): the marks, hysteresis, no limit, values near
 * UINT_MAX, and the shrunken limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <stdbool.h>

#include "util/overload.h"

static void test_marks(void **state)
{
	(void)state;
	/* max_connections = 10: on past 8, off below 6 */
	assert_false(overload_next(false, 8, 10));
	assert_true(overload_next(false, 9, 10));
	assert_true(overload_next(true, 8, 10));
	assert_true(overload_next(true, 6, 10));
	assert_false(overload_next(true, 5, 10));
	assert_false(overload_next(false, 7, 10)); /* between the marks: stays as it was */
	assert_true(overload_next(true, 7, 10));
	/* 1000: on at 801, off at 599 */
	assert_false(overload_next(false, 800, 1000));
	assert_true(overload_next(false, 801, 1000));
	assert_true(overload_next(true, 600, 1000));
	assert_false(overload_next(true, 599, 1000));
	/* a budget of 1: the one session is 100% */
	assert_true(overload_next(false, 1, 1));
	assert_false(overload_next(true, 0, 1));
}

static void test_walk_up_and_down(void **state)
{
	(void)state;
	bool on = false;
	unsigned ons = 0, offs = 0;
	for (int round = 0; round < 3; round++) {
		for (unsigned n = 0; n <= 10; n++) {
			bool next = overload_next(on, n, 10);
			ons += next && !on;
			on = next;
		}
		for (unsigned n = 10; n-- > 0;) {
			bool next = overload_next(on, n, 10);
			offs += !next && on;
			on = next;
		}
	}
	assert_int_equal(ons, 3);
	assert_int_equal(offs, 3);
}

static void test_no_limit_and_extremes(void **state)
{
	(void)state;
	assert_false(overload_next(false, UINT_MAX, 0)); /* no budget: never overloaded */
	assert_false(overload_next(true, UINT_MAX, 0));
	assert_true(overload_next(false, UINT_MAX, UINT_MAX));
	const unsigned big = UINT_MAX / 10 * 10; /* 80% of it is whole */
	assert_false(overload_next(false, big / 10 * 8, big)); /* 80% exactly: not past it */
	assert_true(overload_next(false, big / 10 * 8 + 1, big));
	assert_true(overload_next(true, UINT_MAX, 1));
}

static void test_shrink(void **state)
{
	(void)state;
	assert_int_equal(overload_shrink(300), 75);
	assert_int_equal(overload_shrink(10), 2);
	assert_int_equal(overload_shrink(3), 1); /* never below 1 */
	assert_int_equal(overload_shrink(1), 1);
	assert_int_equal(overload_shrink(0), 0);
	assert_int_equal(overload_shrink(UINT_MAX), UINT_MAX / 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_marks),
		cmocka_unit_test(test_walk_up_and_down),
		cmocka_unit_test(test_no_limit_and_extremes),
		cmocka_unit_test(test_shrink),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
