/* test_download_token.c — signed download URLs (src/http/download_token.c): a made query checks for
 * its path until it expires and for no other path, secret or signature; malformed queries
 * (missing, empty, duplicated, huge or percent-encoded fields, signs and non-digits, bad base64url)
 * are refused; and the MAC is compared with CRYPTO_memcmp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_util.h"

#include <dlfcn.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/download_token.h"
#include "http/parse.h"

static const unsigned char key[DOWNLOAD_SECRET_LEN] = "0123456789abcdef0123456789abcdef";
static const unsigned char other[DOWNLOAD_SECRET_LEN] = "0123456789abcdef0123456789abcdeF";

#define PATH "/emails/receiving/0f7e1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b/raw"
#define NOW 1795320306

/* download_token_check on an exact heap copy of query, so that ASan sees a read past its end. */
static bool check(const unsigned char *k, const char *path, const char *query, int64_t now)
{
	size_t n = strlen(query);
	char *q = test_dup(query, n + 1);
	char *p = test_dup(path, strlen(path) + 1);
	bool ok = download_token_check(k, p, q, now);
	free(q);
	free(p);
	return ok;
}

static void make(const char *path, int64_t expires, char q[DOWNLOAD_QUERY_MAX])
{
	assert_true(download_token_query(key, path, expires, q, DOWNLOAD_QUERY_MAX));
}

/* The signature's 43 digits from a made query. */
static const char *sig_of(const char *q)
{
	const char *s = strstr(q, "&signature=");
	assert_non_null(s);
	return s + strlen("&signature=");
}

static void test_roundtrip(void **state)
{
	(void)state;
	char q[DOWNLOAD_QUERY_MAX];
	make(PATH, NOW + 3600, q);
	char want[64];
	snprintf(want, sizeof(want), "expires=%d&signature=", NOW + 3600);
	assert_memory_equal(q, want, strlen(want));
	const char *sig = sig_of(q);
	assert_int_equal(strlen(sig), 43); /* 32 octets of HMAC-SHA256, base64url without padding */
	for (const char *p = sig; *p; p++)
		assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *p));
	assert_true(check(key, PATH, q, NOW));
	/* valid up to and including its expiry second */
	assert_true(check(key, PATH, q, NOW + 3600));
	assert_false(check(key, PATH, q, NOW + 3601));
	/* the same for the same input; another expiry, another signature */
	char again[DOWNLOAD_QUERY_MAX], later[DOWNLOAD_QUERY_MAX];
	make(PATH, NOW + 3600, again);
	assert_string_equal(q, again);
	make(PATH, NOW + 3601, later);
	assert_string_not_equal(sig_of(q), sig_of(later));
	/* the fields in the other order, and other parameters beside them */
	char swapped[256];
	snprintf(swapped, sizeof(swapped), "signature=%s&expires=%d", sig, NOW + 3600);
	assert_true(check(key, PATH, swapped, NOW));
	snprintf(swapped, sizeof(swapped), "a=1&%s&z", q);
	assert_true(check(key, PATH, swapped, NOW));
	/* an expiry of 0 and a far one are made and checked too */
	make(PATH, 0, again);
	assert_true(check(key, PATH, again, 0));
	assert_false(check(key, PATH, again, 1));
	make(PATH, INT64_MAX, again);
	assert_true(check(key, PATH, again, NOW));
}

static void test_other_path_or_secret(void **state)
{
	(void)state;
	char q[DOWNLOAD_QUERY_MAX];
	make(PATH, NOW + 60, q);
	assert_false(check(other, PATH, q, NOW));
	assert_false(check(key, PATH "/", q, NOW));
	assert_false(check(key, "/emails/receiving/0f7e1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2c/raw", q, NOW));
	assert_false(check(key, "/emails/receiving/0f7e1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b/attachments/x", q, NOW));
	assert_false(check(key, "", q, NOW));
	/* the path is the request line's, percent-encoded: an encoded spelling is another path */
	assert_false(check(key, "/emails/receiving/0f7e1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b/r%61w", q, NOW));
	/* the expiry is signed: moving it forward breaks the signature */
	char moved[256];
	snprintf(moved, sizeof(moved), "expires=%d&signature=%s", NOW + 61, sig_of(q));
	assert_false(check(key, PATH, moved, NOW));
	/* the path and the expiry are not confused: a path that starts with digits, an expiry moved into it */
	char qa[DOWNLOAD_QUERY_MAX];
	make("1\n/x", 5, qa);
	snprintf(moved, sizeof(moved), "expires=51&signature=%s", sig_of(qa));
	assert_false(check(key, "/x", moved, 0));
}

static void test_tampered_signature(void **state)
{
	(void)state;
	char q[DOWNLOAD_QUERY_MAX];
	make(PATH, NOW + 60, q);
	size_t at = (size_t)(sig_of(q) - q);
	static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	/* every digit but the last changed to every other digit (the last also carries 2 unused bits) */
	for (size_t i = at; i + 1 < strlen(q); i++) {
		for (const char *d = digits; *d; d++) {
			if (*d == q[i])
				continue;
			char t[DOWNLOAD_QUERY_MAX];
			memcpy(t, q, sizeof(t));
			t[i] = *d;
			if (check(key, PATH, t, NOW))
				fail_msg("accepted with digit %zu changed to %c: %s", i - at, *d, t);
		}
	}
	char t[256];
	/* shortened, lengthened, padded, emptied */
	snprintf(t, sizeof(t), "%.*s", (int)strlen(q) - 1, q);
	assert_false(check(key, PATH, t, NOW));
	snprintf(t, sizeof(t), "%sA", q);
	assert_false(check(key, PATH, t, NOW));
	snprintf(t, sizeof(t), "%sAAAA", q);
	assert_false(check(key, PATH, t, NOW));
	snprintf(t, sizeof(t), "%s=", q);
	assert_false(check(key, PATH, t, NOW));
	snprintf(t, sizeof(t), "expires=%d&signature=", NOW + 60);
	assert_false(check(key, PATH, t, NOW));
	snprintf(t, sizeof(t), "expires=%d&signature", NOW + 60);
	assert_false(check(key, PATH, t, NOW));
	/* standard base64 digits are not base64url's */
	snprintf(t, sizeof(t), "%s", q);
	for (char *p = t + at; *p; p++)
		*p = *p == '-' ? '+' : *p == '_' ? '/' : *p;
	if (strcmp(t, q) != 0)
		assert_false(check(key, PATH, t, NOW));
}

static void test_malformed(void **state)
{
	(void)state;
	char q[DOWNLOAD_QUERY_MAX];
	make(PATH, NOW + 60, q);
	const char *sig = sig_of(q);
	char t[8192];
	static const char *const bad_expiry[] = {
		"",    "-1", "+1795320366", " 1795320366", "1795320366 ", "1795320366x", "0x6b03", "1e10", "abc",
		"1795320366%00", "%2B1795320366",
		"99999999999999999999999999", /* over int64 and over its field */
	};
	for (size_t i = 0; i < sizeof(bad_expiry) / sizeof(bad_expiry[0]); i++) {
		snprintf(t, sizeof(t), "expires=%s&signature=%s", bad_expiry[i], sig);
		if (check(key, PATH, t, NOW))
			fail_msg("accepted expires=%s", bad_expiry[i]);
	}
	/* missing fields, or no query at all */
	assert_false(check(key, PATH, "", NOW));
	assert_false(check(key, PATH, "&&&", NOW));
	assert_false(check(key, PATH, sig - strlen("signature="), NOW));
	snprintf(t, sizeof(t), "expires=%d", NOW + 60);
	assert_false(check(key, PATH, t, NOW));
	/* names are exact: neither case nor a prefix is folded */
	snprintf(t, sizeof(t), "Expires=%d&signature=%s", NOW + 60, sig);
	assert_false(check(key, PATH, t, NOW));
	snprintf(t, sizeof(t), "expires=%d&sig=%s", NOW + 60, sig);
	assert_false(check(key, PATH, t, NOW));
	snprintf(t, sizeof(t), "expiresx=%d&signaturex=%s", NOW + 60, sig);
	assert_false(check(key, PATH, t, NOW));
	/* a duplicate field: the first counts, so a second cannot stretch a signed expiry */
	snprintf(t, sizeof(t), "expires=%d&expires=%d&signature=%s", NOW + 60, NOW + 999999, sig);
	assert_true(check(key, PATH, t, NOW));
	snprintf(t, sizeof(t), "expires=%d&expires=%d&signature=%s", NOW + 999999, NOW + 60, sig);
	assert_false(check(key, PATH, t, NOW));
	snprintf(t, sizeof(t), "expires=%d&signature=AAAA&signature=%s", NOW + 60, sig);
	assert_false(check(key, PATH, t, NOW));
	/* percent-encoding is decoded (it is a query), broken escapes are refused */
	snprintf(t, sizeof(t), "expires=%%3%c%s&signature=%s", q[8], q + 9, sig);
	assert_true(check(key, PATH, t, NOW));
	snprintf(t, sizeof(t), "expires=%d&signature=%s%%", NOW + 60, sig);
	assert_false(check(key, PATH, t, NOW));
	snprintf(t, sizeof(t), "expires=%d&signature=%s%%4", NOW + 60, sig);
	assert_false(check(key, PATH, t, NOW));
	snprintf(t, sizeof(t), "expires=%d&signature=%s%%zz", NOW + 60, sig);
	assert_false(check(key, PATH, t, NOW));
	snprintf(t, sizeof(t), "expires=%d&signature=%.20s%%00%s", NOW + 60, sig, sig + 20);
	assert_false(check(key, PATH, t, NOW));
	/* huge values: longer than the fields hold */
	size_t n = (size_t)snprintf(t, sizeof(t), "expires=");
	memset(t + n, '1', 4000);
	snprintf(t + n + 4000, sizeof(t) - n - 4000, "&signature=%s", sig);
	assert_false(check(key, PATH, t, NOW));
	n = (size_t)snprintf(t, sizeof(t), "expires=%d&signature=", NOW + 60);
	memset(t + n, 'A', 5000);
	t[n + 5000] = '\0';
	assert_false(check(key, PATH, t, NOW));
	/* a path longer than any request line holds is refused, never signed cut short (two such paths
	 * would share a signature) */
	size_t plen = HTTP_PATH_MAX * 2;
	char *big = malloc(plen + 1);
	assert_non_null(big);
	memset(big, 'p', plen);
	big[0] = '/';
	big[plen] = '\0';
	assert_false(download_token_query(key, big, NOW, t, sizeof(t)));
	assert_false(check(key, big, q, NOW));
	/* the longest request path is signed */
	big[HTTP_PATH_MAX - 1] = '\0';
	assert_true(download_token_query(key, big, NOW + 60, t, sizeof(t)));
	assert_true(check(key, big, t, NOW));
	free(big);
	/* a query buffer too small */
	assert_false(download_token_query(key, PATH, NOW, t, 20));
	assert_false(download_token_query(key, PATH, NOW, t, strlen(q)));
	assert_true(download_token_query(key, PATH, NOW + 60, t, strlen(q) + 1));
	assert_string_equal(t, q);
}

/* The longest made query fits DOWNLOAD_QUERY_MAX. */
static void test_query_max(void **state)
{
	(void)state;
	char q[DOWNLOAD_QUERY_MAX];
	assert_true(download_token_query(key, PATH, INT64_MIN, q, sizeof(q)));
	assert_true(download_token_query(key, PATH, INT64_MAX, q, sizeof(q)));
	assert_true(strlen(q) < DOWNLOAD_QUERY_MAX);
}

/* CRYPTO_memcmp as the check calls it: counted, then OpenSSL's own (the test binary's definition
 * comes before libcrypto's). */
static unsigned ct_calls;
static size_t ct_len;
int CRYPTO_memcmp(const volatile void *a, const volatile void *b, size_t len)
{
	static int (*real)(const volatile void *, const volatile void *, size_t);
	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "CRYPTO_memcmp");
	assert_non_null(real);
	ct_calls++;
	ct_len = len;
	return real(a, b, len);
}

/* The MAC is compared in constant time, for a right and a wrong signature alike. */
static void test_constant_time_compare(void **state)
{
	(void)state;
	char q[DOWNLOAD_QUERY_MAX];
	make(PATH, NOW + 60, q);
	ct_calls = 0;
	assert_true(check(key, PATH, q, NOW));
	assert_int_equal(ct_calls, 1);
	assert_int_equal(ct_len, 32);
	ct_calls = 0;
	assert_false(check(other, PATH, q, NOW));
	assert_int_equal(ct_calls, 1);
	assert_int_equal(ct_len, 32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_other_path_or_secret),
		cmocka_unit_test(test_tampered_signature),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_query_max),
		cmocka_unit_test(test_constant_time_compare),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
