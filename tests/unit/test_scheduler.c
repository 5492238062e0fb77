/* test_scheduler.c — the retry backoff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "queue/scheduler.h"

static void test_schedule(void **state)
{
	(void)state;
	static const unsigned s[] = {60, 300, 900};
	assert_int_equal(scheduler_next_attempt(s, 3, 1, 1000), 1060);
	assert_int_equal(scheduler_next_attempt(s, 3, 2, 1000), 1300);
	assert_int_equal(scheduler_next_attempt(s, 3, 3, 1000), 1900);
	/* the last entry repeats */
	assert_int_equal(scheduler_next_attempt(s, 3, 4, 1000), 1900);
	assert_int_equal(scheduler_next_attempt(s, 3, 4000000000u, 1000), 1900);
	/* attempts 0 is treated as the first; an empty schedule still waits */
	assert_int_equal(scheduler_next_attempt(s, 3, 0, 1000), 1060);
	assert_int_equal(scheduler_next_attempt(s, 0, 1, 1000), 1060);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_schedule)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
