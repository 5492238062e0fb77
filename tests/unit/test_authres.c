/* test_authres.c — RFC 8601 Authentication-Results: our field, and forged ones removed; and the
 * header-section walker both rely on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/authres.h"
#include "test_util.h"
#include "util/header.h"

static void test_format(void **state)
{
	struct authres_method m[3] = {
		{.method = "spf", .result = "pass", .props = {{"smtp.mailfrom", "alice@example.com"}}},
		{.method = "dkim", .result = "fail", .reason = "body hash mismatch",
		 .props = {{"header.d", "example.com"}, {"header.s", "sel"}, {"header.b", "abc/+12"}}},
		{.method = "dmarc", .result = "pass", .props = {{"header.from", "example.com"}, {"policy.x", ""}}},
	};
	char *f = authres_format("mx.example.net", m, 3);
	assert_non_null(f);
	assert_string_equal(f, "Authentication-Results: mx.example.net;\r\n"
			       "\tspf=pass smtp.mailfrom=alice@example.com;\r\n"
			       "\tdkim=fail reason=\"body hash mismatch\" header.d=example.com header.s=sel header.b=\"abc/+12\";\r\n"
			       "\tdmarc=pass header.from=example.com\r\n");
	free(f);
	f = authres_format("mx.example.net", NULL, 0);
	assert_string_equal(f, "Authentication-Results: mx.example.net; none\r\n");
	free(f);
	/* hostile values: quotes, backslashes and control characters cannot break out of the value */
	struct authres_method h = {.method = "spf", .result = "fail",
				   .props = {{"smtp.mailfrom", "a\"b\\c\r\nX-Evil: 1@@example.com"}}};
	f = authres_format("mx", &h, 1);
	assert_string_equal(f, "Authentication-Results: mx;\r\n\tspf=fail smtp.mailfrom=\"a\\\"b\\\\cX-Evil: 1@@example.com\"\r\n");
	free(f);
	/* only ASCII: the field is read by mail systems without SMTPUTF8 */
	struct authres_method u = {.method = "spf", .result = "permerror", .reason = "too many lookups (RFC 7208 \xc2\xa7" "4.6.4)"};
	f = authres_format("mx", &u, 1);
	assert_string_equal(f, "Authentication-Results: mx;\r\n\tspf=permerror reason=\"too many lookups (RFC 7208 4.6.4)\"\r\n");
	free(f);
}

static void test_strip(void **state)
{
	const char *in = "Authentication-Results: MX.example.net; spf=pass\r\n"
			 "Received: from x\r\n"
			 "Authentication-Results: other.example.org;\r\n\tdkim=pass\r\n"
			 "Authentication-Results: (forged) \"mx.example.net\";\r\n dmarc=pass\r\n"
			 "Authentication-Results: mx.example.network; spf=pass\r\n"
			 "Subject: hi\r\n"
			 "\r\n"
			 "Authentication-Results: mx.example.net; in the body stays\r\n";
	const char *want = "Received: from x\r\n"
			   "Authentication-Results: other.example.org;\r\n\tdkim=pass\r\n"
			   "Authentication-Results: mx.example.network; spf=pass\r\n"
			   "Subject: hi\r\n"
			   "\r\n"
			   "Authentication-Results: mx.example.net; in the body stays\r\n";
	char *m = test_dup(in, strlen(in));
	size_t n = authres_strip(m, strlen(in), "mx.example.net");
	assert_int_equal(n, strlen(want));
	assert_memory_equal(m, want, n);
	free(m);
}

static void test_header_walk(void **state)
{
	const char *msg = "From: a@example.com\r\nSubject: one\r\n two\r\n\tthree\r\nX-Empty:\r\nBad line\r\nTo : b\n\nbody\r\n";
	size_t len = strlen(msg), pos = 0;
	struct header_field f;
	assert_true(header_next(msg, len, &pos, &f));
	assert_true(header_is(&f, "from"));
	assert_int_equal(f.value_len, strlen(" a@example.com"));
	assert_true(header_next(msg, len, &pos, &f));
	assert_true(header_is(&f, "SUBJECT"));
	assert_int_equal(f.raw_len, strlen("Subject: one\r\n two\r\n\tthree\r\n"));
	assert_memory_equal(f.value, " one\r\n two\r\n\tthree", f.value_len);
	assert_true(header_next(msg, len, &pos, &f));
	assert_int_equal(f.value_len, 0);
	assert_true(header_next(msg, len, &pos, &f));
	assert_int_equal(f.name_len, 0); /* no colon */
	assert_true(header_next(msg, len, &pos, &f));
	assert_true(header_is(&f, "To"));
	assert_memory_equal(f.value, " b", f.value_len);
	assert_false(header_next(msg, len, &pos, &f));
	assert_int_equal(header_body_offset(msg, len), len - strlen("body\r\n"));
	/* no empty line: everything is header */
	assert_int_equal(header_body_offset("A: b\r\n", 6), 6);
	/* a continuation line at the very top is a field without a name, not skipped */
	pos = 0;
	assert_true(header_next(" x\r\nA: b\r\n", 10, &pos, &f));
	assert_int_equal(f.name_len, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_strip),
		cmocka_unit_test(test_header_walk),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
