/* test_tls.c — the days a certificate has left (net/tls.c): rounded down while it is valid, 0 on
 * its last day, negative from the moment it has expired. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "net/tls.h"

static void test_days_left(void **state)
{
	(void)state;
	const int64_t now = 1800000000, day = 86400;
	assert_int_equal(tls_cert_days_left(now + 90 * day, now), 90);
	assert_int_equal(tls_cert_days_left(now + 90 * day - 1, now), 89);
	assert_int_equal(tls_cert_days_left(now + day, now), 1);
	assert_int_equal(tls_cert_days_left(now + 1, now), 0);
	assert_int_equal(tls_cert_days_left(now, now), 0);
	assert_int_equal(tls_cert_days_left(now - 1, now), -1);
	assert_int_equal(tls_cert_days_left(now - day, now), -1);
	assert_int_equal(tls_cert_days_left(now - day - 1, now), -2);
	assert_int_equal(tls_cert_days_left(now - 3 * day + 3600, now), -3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_days_left),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
