/* test_sasl.c — base64 and SASL PLAIN parsing with hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "sasl/sasl.h"
#include "util/base64.h"

static void test_b64_roundtrip(void **state)
{
	(void)state;
	unsigned char in[64], out[64];
	char enc[128];
	size_t n;
	for (size_t len = 0; len < sizeof(in); len++) {
		for (size_t i = 0; i < len; i++)
			in[i] = (unsigned char)(i * 37 + len);
		assert_true(base64_encode(in, len, enc, sizeof(enc)));
		if (len == 0)
			continue; /* "" is not a SASL response; "=" is */
		assert_true(sasl_b64_decode(enc, strlen(enc), out, sizeof(out), &n));
		assert_int_equal(n, len);
		assert_memory_equal(in, out, len);
	}
	assert_false(base64_encode(in, 3, enc, 4)); /* no room for the NUL */
}

static void test_b64_hostile(void **state)
{
	(void)state;
	unsigned char out[16];
	size_t n;
	static const char *bad[] = {"a", "ab", "abc", "ab=c", "a===", "====", "ab==ab==", "ab c", "ab\0c", "ab-_",
				    "YQ==\r\n", "=abc"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(sasl_b64_decode(bad[i], i == 8 ? 4 : strlen(bad[i]), out, sizeof(out), &n));
	assert_true(sasl_b64_decode("=", 1, out, sizeof(out), &n));
	assert_int_equal(n, 0);
	assert_true(sasl_b64_decode("YWJj", 4, out, sizeof(out), &n));
	assert_int_equal(n, 3);
	assert_false(sasl_b64_decode("YWJjZGVm", 8, out, 5, &n)); /* output too small */
}

static void test_plain(void **state)
{
	(void)state;
	char user[SASL_FIELD_MAX + 1], pass[SASL_FIELD_MAX + 1];
	const char *err;
	assert_true(sasl_plain_parse((const unsigned char *)"\0bob\0secret", 11, user, pass, &err));
	assert_string_equal(user, "bob");
	assert_string_equal(pass, "secret");
	assert_true(sasl_plain_parse((const unsigned char *)"bob\0bob\0secret", 14, user, pass, &err));
	/* acting as someone else */
	assert_false(sasl_plain_parse((const unsigned char *)"admin\0bob\0secret", 16, user, pass, &err));
	assert_false(sasl_plain_parse((const unsigned char *)"bobsecret", 9, user, pass, &err));
	assert_false(sasl_plain_parse((const unsigned char *)"\0bob", 4, user, pass, &err));
	assert_false(sasl_plain_parse((const unsigned char *)"\0\0secret", 8, user, pass, &err));
	assert_false(sasl_plain_parse((const unsigned char *)"\0bob\0", 5, user, pass, &err));
	assert_false(sasl_plain_parse((const unsigned char *)"\0bob\0se\0cret", 12, user, pass, &err));
	unsigned char big[600];
	memset(big, 'u', sizeof(big));
	big[0] = '\0';
	big[300] = '\0';
	assert_false(sasl_plain_parse(big, sizeof(big), user, pass, &err)); /* 299-octet user name */
}

static void test_mech(void **state)
{
	(void)state;
	assert_int_equal(sasl_mech_parse("plain", 5), SASL_MECH_PLAIN);
	assert_int_equal(sasl_mech_parse("LOGIN", 5), SASL_MECH_LOGIN);
	assert_int_equal(sasl_mech_parse("CRAM-MD5", 8), SASL_MECH_NONE);
	assert_int_equal(sasl_mech_parse("PLAINX", 6), SASL_MECH_NONE);
	assert_int_equal(sasl_mech_parse("", 0), SASL_MECH_NONE);
}

/* The client's encoding is what the server's decoding accepts, and both refuse what they must. */
static void test_plain_response_roundtrip(void **state)
{
	(void)state;
	char b64[SASL_PLAIN_B64_SIZE], user[SASL_FIELD_MAX + 1], pass[SASL_FIELD_MAX + 1];
	const char *err = NULL;

	assert_true(sasl_plain_encode("alice@example.org", "s3cret", b64, sizeof(b64)));
	assert_string_equal(b64, "AGFsaWNlQGV4YW1wbGUub3JnAHMzY3JldA==");
	assert_int_equal(sasl_plain_response(b64, strlen(b64), user, pass, &err), SASL_RESPONSE_OK);
	assert_string_equal(user, "alice@example.org");
	assert_string_equal(pass, "s3cret");

	char longest[SASL_FIELD_MAX + 1];
	memset(longest, 'x', SASL_FIELD_MAX);
	longest[SASL_FIELD_MAX] = '\0';
	assert_true(sasl_plain_encode(longest, longest, b64, sizeof(b64)));
	assert_true(strlen(b64) <= SASL_RESPONSE_LINE_MAX);
	assert_int_equal(sasl_plain_response(b64, strlen(b64), user, pass, &err), SASL_RESPONSE_OK);
	assert_string_equal(pass, longest);

	char too_long[SASL_FIELD_MAX + 2];
	memset(too_long, 'y', SASL_FIELD_MAX + 1);
	too_long[SASL_FIELD_MAX + 1] = '\0';
	assert_false(sasl_plain_encode(too_long, "p", b64, sizeof(b64)));
	assert_false(sasl_plain_encode("u", "p", b64, 4)); /* no room for the NUL */

	assert_int_equal(sasl_plain_response("AGFsaWNl!", 9, user, pass, &err), SASL_RESPONSE_BAD_BASE64);
	/* "bob\0alice\0pw": acting as another user */
	assert_int_equal(sasl_plain_response("Ym9iAGFsaWNlAHB3", 16, user, pass, &err), SASL_RESPONSE_BAD_PLAIN);
	assert_non_null(err);
	/* "=" is an empty response: not a PLAIN message */
	assert_int_equal(sasl_plain_response("=", 1, user, pass, &err), SASL_RESPONSE_BAD_PLAIN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64_roundtrip),
		cmocka_unit_test(test_b64_hostile),
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_mech),
		cmocka_unit_test(test_plain_response_roundtrip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
