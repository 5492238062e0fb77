/* test_signer_msg.c — what the worker and the DKIM signer say to each other (server/signer_msg.c):
 * every message round-trips, and each parser refuses hostile payloads, as either side would read
 * them from a process it does not trust. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "auth/dkim_sig.h"
#include "server/signer_msg.h"
#include "test_util.h"

static const unsigned char digest[DKIM_DIGEST_SIZE] = {
	0, 1, 2, 3, '\n', ' ', 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
	26, 27, 28, 29, 30, 0xff,
};

/* p parsed as KEYS from a copy on the heap of exactly its length (ASan sees any overread) */
static int keys_parse(const char *p, size_t len, char domain[DNS_HOST_SIZE])
{
	char *heap = test_dup(p, len);
	const char *err = NULL;
	int rc = signer_keys_parse((const unsigned char *)heap, len, domain, &err);
	if (rc != 0)
		assert_non_null(err);
	free(heap);
	return rc;
}

static void test_keys(void **state)
{
	char domain[DNS_HOST_SIZE];
	assert_int_equal(keys_parse("example.com", 11, domain), 0);
	assert_string_equal(domain, "example.com");
	assert_int_equal(keys_parse("", 0, domain), -1);
	assert_int_equal(keys_parse("exa\0mple.com", 12, domain), -1);
	assert_int_equal(keys_parse("example.com\n", 12, domain), -1);
	assert_int_equal(keys_parse("exa mple.com", 12, domain), -1);
	assert_int_equal(keys_parse("../../etc", 9, domain), -1);
	assert_int_equal(keys_parse("a/b.com", 7, domain), -1);
	char big[300];
	memset(big, 'a', sizeof(big));
	assert_int_equal(keys_parse(big, sizeof(big), domain), -1);
}

static int keylist_parse(const char *p, struct dkim_signer_key out[DKIM_SIGNER_KEYS_MAX], size_t *n)
{
	size_t len = strlen(p);
	char *heap = test_dup(p, len);
	const char *err = NULL;
	int rc = signer_keylist_parse((const unsigned char *)heap, len, out, n, &err);
	if (rc != 0)
		assert_non_null(err);
	free(heap);
	return rc;
}

static void test_keylist(void **state)
{
	struct dkim_signer_key keys[2] = {
		{.alg = DKIM_ALG_ED25519_SHA256, .selector = "ed202612"},
		{.alg = DKIM_ALG_RSA_SHA256, .selector = "mw202612"},
	};
	char text[256];
	int len = signer_keylist_format(keys, 2, text, sizeof(text));
	assert_string_equal(text, "ed25519-sha256 ed202612\nrsa-sha256 mw202612\n");
	assert_int_equal(len, (int)strlen(text));
	struct dkim_signer_key out[DKIM_SIGNER_KEYS_MAX];
	size_t n = 99;
	assert_int_equal(keylist_parse(text, out, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(out[0].alg, DKIM_ALG_ED25519_SHA256);
	assert_string_equal(out[1].selector, "mw202612");
	/* none is an answer too */
	assert_int_equal(keylist_parse("", out, &n), 0);
	assert_int_equal(n, 0);
	/* too small a buffer is refused, never cut */
	assert_int_equal(signer_keylist_format(keys, 2, text, 20), -1);

	assert_int_equal(keylist_parse("rsa-sha256 a\nrsa-sha256 b\nrsa-sha256 c\n", out, &n), -1);
	assert_int_equal(keylist_parse("rsa-sha1 a\n", out, &n), -1);
	assert_int_equal(keylist_parse("rsa-sha256 a", out, &n), -1);
	assert_int_equal(keylist_parse("rsa-sha256\n", out, &n), -1);
	assert_int_equal(keylist_parse("rsa-sha256 \n", out, &n), -1);
	assert_int_equal(keylist_parse("rsa-sha256 a b\n", out, &n), -1);
	assert_int_equal(keylist_parse("rsa-sha256 ../x\n", out, &n), -1);
	assert_int_equal(keylist_parse(" rsa-sha256 a\n", out, &n), -1);
	assert_int_equal(keylist_parse("\n", out, &n), -1);
	char sel[120];
	snprintf(sel, sizeof(sel), "rsa-sha256 %s\n",
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	assert_int_equal(keylist_parse(sel, out, &n), -1);
}

static void test_sign(void **state)
{
	unsigned char buf[512];
	int len = signer_sign_format("example.com", "mw202612", digest, buf, sizeof(buf));
	assert_int_equal(len, 11 + 1 + 8 + 1 + DKIM_DIGEST_SIZE);
	unsigned char *heap = (unsigned char *)test_dup((const char *)buf, (size_t)len);
	char domain[DNS_HOST_SIZE], selector[DKIM_SELECTOR_MAX + 1];
	unsigned char d[DKIM_DIGEST_SIZE];
	const char *err = NULL;
	assert_int_equal(signer_sign_parse(heap, (size_t)len, domain, selector, d, &err), 0);
	assert_string_equal(domain, "example.com");
	assert_string_equal(selector, "mw202612");
	/* a digest that holds a newline and a space is still read as 32 octets from the end */
	assert_memory_equal(d, digest, sizeof(d));
	/* one octet short or long: the text part then does not end in a newline */
	assert_int_equal(signer_sign_parse(heap, (size_t)len - 1, domain, selector, d, &err), -1);
	free(heap);
	unsigned char longer[512];
	memcpy(longer, buf, (size_t)len);
	longer[len] = 'x';
	heap = (unsigned char *)test_dup((const char *)longer, (size_t)len + 1);
	assert_int_equal(signer_sign_parse(heap, (size_t)len + 1, domain, selector, d, &err), -1);
	free(heap);

	/* shorter than a digest, no space, bad names */
	const char *bad[] = {"", "example.com\n", "examplecom\n", "exa/mple.com mw\n",
			     "example.com ../mw\n", " mw\n", "example.com \n", "example.com mw x\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t tl = strlen(bad[i]);
		unsigned char rec[128];
		memcpy(rec, bad[i], tl);
		memcpy(rec + tl, digest, sizeof(digest));
		size_t n = i < 2 ? tl : tl + sizeof(digest);
		heap = (unsigned char *)test_dup((const char *)rec, n);
		err = NULL;
		assert_int_equal(signer_sign_parse(heap, n, domain, selector, d, &err), -1);
		assert_non_null(err);
		free(heap);
	}
	/* the formatter refuses what the parser would */
	assert_int_equal(signer_sign_format("exa mple.com", "mw", digest, buf, sizeof(buf)), -1);
	assert_int_equal(signer_sign_format("example.com", "m w", digest, buf, sizeof(buf)), -1);
	assert_int_equal(signer_sign_format("example.com", "mw", digest, buf, 20), -1);
}

static void test_signature_and_error(void **state)
{
	const char *err = NULL;
	assert_int_equal(signer_signature_check(0, &err), -1);
	assert_int_equal(signer_signature_check(1, &err), 0);
	assert_int_equal(signer_signature_check(DKIM_SIG_B_MAX, &err), 0);
	assert_int_equal(signer_signature_check(DKIM_SIG_B_MAX + 1, &err), -1);

	char out[SIGNER_ERROR_MAX + 1];
	assert_int_equal(signer_error_parse((const unsigned char *)"no such key", 11, out, &err), 0);
	assert_string_equal(out, "no such key");
	assert_int_equal(signer_error_parse((const unsigned char *)"", 0, out, &err), -1);
	assert_int_equal(signer_error_parse((const unsigned char *)"a\nb", 3, out, &err), -1);
	assert_int_equal(signer_error_parse((const unsigned char *)"a\x1b[2Jb", 6, out, &err), -1);
	assert_int_equal(signer_error_parse((const unsigned char *)"a\0b", 3, out, &err), -1);
	char big[SIGNER_ERROR_MAX + 1];
	memset(big, 'x', sizeof(big));
	assert_int_equal(signer_error_parse((const unsigned char *)big, SIGNER_ERROR_MAX, out, &err), 0);
	assert_int_equal(signer_error_parse((const unsigned char *)big, SIGNER_ERROR_MAX + 1, out, &err), -1);
}

static int make_parse(const char *p, struct signer_make *k)
{
	size_t len = strlen(p);
	char *heap = test_dup(p, len);
	const char *err = NULL;
	int rc = signer_make_parse((const unsigned char *)heap, len, k, &err);
	if (rc != 0)
		assert_non_null(err);
	free(heap);
	return rc;
}

static void test_make_and_activate(void **state)
{
	struct signer_make k = {.domain = "example.com", .selector = "ed1", .type = DKIM_KEY_ED25519, .bits = 0,
				.when_first = true}, got;
	char text[400];
	int len = signer_make_format(&k, text, sizeof(text));
	assert_string_equal(text, "example.com ed1 ed25519 0 first");
	assert_int_equal(len, (int)strlen(text));
	assert_int_equal(make_parse(text, &got), 0);
	assert_string_equal(got.domain, "example.com");
	assert_string_equal(got.selector, "ed1");
	assert_int_equal(got.type, DKIM_KEY_ED25519);
	assert_true(got.when_first);
	assert_int_equal(make_parse("example.com mw rsa 4096 now", &got), 0);
	assert_int_equal(got.bits, 4096);
	assert_false(got.when_first);

	const char *bad[] = {"", "example.com", "example.com mw rsa 2048", "example.com mw rsa 2048 now extra",
			     "example.com mw dsa 2048 now", "example.com mw rsa 20x8 now", "example.com mw rsa 123456 now",
			     "example.com mw rsa 02048 now", "example.com mw rsa -1 now", "example.com mw rsa 2048 later",
			     "example.com  mw rsa 2048 now", " example.com mw rsa 2048 now", "example.com mw rsa 2048 now ",
			     "exa/mple.com mw rsa 2048 now", "example.com ../mw rsa 2048 now", "example.com mw rsa 2048\tnow",
			     "example.com mw\nrsa 2048 now"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(make_parse(bad[i], &got), -1);
	struct signer_make worse = k;
	snprintf(worse.domain, sizeof(worse.domain), "a b.com");
	assert_int_equal(signer_make_format(&worse, text, sizeof(text)), -1);
	assert_int_equal(signer_make_format(&k, text, 10), -1);

	char domain[DNS_HOST_SIZE], selector[DKIM_SELECTOR_MAX + 1];
	const char *err = NULL;
	len = signer_activate_format("example.com", "mw2", text, sizeof(text));
	assert_int_equal(signer_activate_parse((const unsigned char *)text, (size_t)len, domain, selector, &err), 0);
	assert_string_equal(selector, "mw2");
	assert_int_equal(signer_activate_parse((const unsigned char *)"example.com", 11, domain, selector, &err), -1);
	assert_int_equal(signer_activate_parse((const unsigned char *)"example.com a b", 15, domain, selector, &err), -1);
	assert_int_equal(signer_activate_parse((const unsigned char *)"", 0, domain, selector, &err), -1);

	assert_int_equal(signer_done_parse((const unsigned char *)"active", 6, &err), 1);
	assert_int_equal(signer_done_parse((const unsigned char *)"inactive", 8, &err), 0);
	assert_int_equal(signer_done_parse((const unsigned char *)"activ", 5, &err), -1);
	assert_int_equal(signer_done_parse((const unsigned char *)"active\n", 7, &err), -1);
	assert_int_equal(signer_done_parse((const unsigned char *)"", 0, &err), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_keylist),
		cmocka_unit_test(test_sign),
		cmocka_unit_test(test_signature_and_error),
		cmocka_unit_test(test_make_and_activate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
