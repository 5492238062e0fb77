/* test_dkim_key_cache.c — decoded key records by their text: the same answer as decoding, hits
 * counted, bounded, and every key reference the caller's own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/dkim_key_cache.h"
#include "test_util.h"

/* RFC 8463 Appendix A.2, the published Ed25519 test key */
#define ED_RECORD "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="

static void test_hits_and_references(void **state)
{
	struct dkim_key_cache *c = dkim_key_cache_new();
	struct dkim_key_record a, b, plain;
	const char *err;
	size_t entries;
	unsigned long long hits;
	assert_int_equal(dkim_key_cache_parse(c, ED_RECORD, strlen(ED_RECORD), &a, &err), DKIM_KEY_OK);
	assert_int_equal(dkim_key_cache_parse(c, ED_RECORD, strlen(ED_RECORD), &b, &err), DKIM_KEY_OK);
	dkim_key_cache_stats(c, &entries, &hits);
	assert_int_equal(entries, 1);
	assert_int_equal(hits, 1);
	/* the same record as decoding gives */
	assert_int_equal(dkim_key_record_parse(ED_RECORD, strlen(ED_RECORD), &plain, &err), DKIM_KEY_OK);
	assert_int_equal(b.type, plain.type);
	assert_int_equal(b.bits, plain.bits);
	assert_true(EVP_PKEY_eq(b.pkey, plain.pkey) == 1);
	/* each reference is the caller's: freeing the first leaves the second and the cache usable */
	dkim_key_record_clear(&a);
	assert_true(EVP_PKEY_eq(b.pkey, plain.pkey) == 1);
	dkim_key_record_clear(&b);
	dkim_key_record_clear(&plain);
	/* a record that does not parse is not kept, and gives the decoder's error */
	assert_int_not_equal(dkim_key_cache_parse(c, "v=DKIM1; p=!!", 13, &a, &err), DKIM_KEY_OK);
	dkim_key_cache_stats(c, &entries, &hits);
	assert_int_equal(entries, 1);
	/* a prefix of a cached text is another text */
	assert_int_not_equal(dkim_key_cache_parse(c, ED_RECORD, 20, &a, &err), DKIM_KEY_OK);
	dkim_key_cache_free(c);
	/* no cache: plain decoding */
	assert_int_equal(dkim_key_cache_parse(NULL, ED_RECORD, strlen(ED_RECORD), &a, &err), DKIM_KEY_OK);
	dkim_key_record_clear(&a);
}

static void test_bounded(void **state)
{
	struct dkim_key_cache *c = dkim_key_cache_new();
	struct dkim_key_record r;
	const char *err;
	char text[256];
	size_t entries;
	unsigned long long hits;
	/* unknown tags are ignored (RFC 6376 §3.6.1): many texts, one key */
	for (int i = 0; i < DKIM_KEY_CACHE_ENTRIES + 10; i++) {
		snprintf(text, sizeof(text), ED_RECORD "; z%d=1", i);
		assert_int_equal(dkim_key_cache_parse(c, text, strlen(text), &r, &err), DKIM_KEY_OK);
		dkim_key_record_clear(&r);
	}
	dkim_key_cache_stats(c, &entries, &hits);
	assert_int_equal(entries, DKIM_KEY_CACHE_ENTRIES);
	assert_int_equal(hits, 0);
	/* the newest are there, the oldest were replaced */
	snprintf(text, sizeof(text), ED_RECORD "; z%d=1", DKIM_KEY_CACHE_ENTRIES + 9);
	assert_int_equal(dkim_key_cache_parse(c, text, strlen(text), &r, &err), DKIM_KEY_OK);
	dkim_key_record_clear(&r);
	snprintf(text, sizeof(text), ED_RECORD "; z%d=1", 0);
	assert_int_equal(dkim_key_cache_parse(c, text, strlen(text), &r, &err), DKIM_KEY_OK);
	dkim_key_record_clear(&r);
	dkim_key_cache_stats(c, &entries, &hits);
	assert_int_equal(hits, 1);
	assert_int_equal(entries, DKIM_KEY_CACHE_ENTRIES);
	dkim_key_cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hits_and_references),
		cmocka_unit_test(test_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
