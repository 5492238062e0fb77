/* test_tagval.c — RFC 6376 §3.2 tag lists, strict and lenient, with hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/tagval.h"
#include "test_util.h"

static size_t parse(const char *s, unsigned flags, enum tagval_error want, struct tagval *tags)
{
	size_t n = 99;
	const char *err = NULL;
	char *copy = test_dup(s, strlen(s));
	enum tagval_error e = tagval_parse(copy, strlen(s), flags, tags, TAGVAL_MAX, &n, &err);
	if (e != want)
		fail_msg("\"%s\": got %s (%s), want %s", s, tagval_error_str(e), err ? err : "", tagval_error_str(want));
	if (e != TAGVAL_OK)
		assert_non_null(err);
	/* the values point into the copy: compare now, then free */
	static char names[TAGVAL_MAX][64], values[TAGVAL_MAX][256];
	for (size_t i = 0; e == TAGVAL_OK && i < n; i++) {
		snprintf(names[i], sizeof(names[i]), "%.*s", (int)tags[i].name_len, tags[i].name);
		snprintf(values[i], sizeof(values[i]), "%.*s", (int)tags[i].value_len, tags[i].value);
		tags[i].name = names[i];
		tags[i].value = values[i];
	}
	free(copy);
	return n;
}

static void test_dkim_signature_list(void **state)
{
	struct tagval t[TAGVAL_MAX];
	size_t n = parse("v=1; a=rsa-sha256; d=example.net; s=brisbane;\r\n c=simple; q=dns/txt; i=@eng.example.net;\r\n"
			 "\th=from:to :subject; bh=MTIz\r\n NDU=; b=dzdVyOfAKCdLXdJOc9G2q8LoXSlEniSb av+yuU4zGeeruD00lszZVoG4ZHRNiYzR",
			 0, TAGVAL_OK, t);
	assert_int_equal(n, 10);
	assert_string_equal(t[0].name, "v");
	assert_string_equal(t[0].value, "1");
	assert_string_equal(t[7].name, "h");
	assert_string_equal(t[7].value, "from:to :subject");
	/* FWS inside a value is kept for the caller (bh/b strip it, RFC 6376 §3.5) */
	assert_string_equal(t[8].value, "MTIz\r\n NDU=");
	assert_string_equal(t[9].value, "dzdVyOfAKCdLXdJOc9G2q8LoXSlEniSb av+yuU4zGeeruD00lszZVoG4ZHRNiYzR");
	assert_non_null(tagval_find(t, n, "bh"));
	assert_null(tagval_find(t, n, "B"));
}

static void test_key_record(void **state)
{
	struct tagval t[TAGVAL_MAX];
	assert_int_equal(parse("v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", 0, TAGVAL_OK, t), 3);
	assert_true(tagval_value_is(&t[1], "ED25519"));
	/* an empty value is a value (p= of a revoked key, RFC 6376 §3.6.1) */
	assert_int_equal(parse("v=DKIM1; p=", 0, TAGVAL_OK, t), 2);
	assert_string_equal(t[1].value, "");
	assert_int_equal(parse("a = b ;", 0, TAGVAL_OK, t), 1);
	assert_string_equal(t[0].value, "b");
	assert_int_equal(parse("", 0, TAGVAL_OK, t), 0);
}

static void test_strict_errors(void **state)
{
	struct tagval t[TAGVAL_MAX];
	const char *bad[] = {
		"=1", "1a=2", "a", "a=1;;b=2", ";a=1", "a=1; b", "a=x\x01y", "a=\xc3\xa9", "a=1\r\nb=2",
		"a b=1", "a=1; ;",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		parse(bad[i], 0, TAGVAL_SYNTAX, t);
	parse("a=1; b=2; a=3", 0, TAGVAL_DUPLICATE, t);
	size_t n;
	const char *err;
	assert_int_equal(tagval_parse("a=1\0b", 5, 0, t, TAGVAL_MAX, &n, &err), TAGVAL_SYNTAX);
	char big[TAGVAL_MAX * 8 + 16] = "";
	for (int i = 0; i <= TAGVAL_MAX; i++)
		snprintf(big + strlen(big), sizeof(big) - strlen(big), "t%d=1;", i);
	parse(big, 0, TAGVAL_TOO_MANY, t);
}

static void test_lenient(void **state)
{
	struct tagval t[TAGVAL_MAX];
	/* RFC 9989 §4.8: broken specs are skipped, the rest is read; the first of a duplicate wins */
	size_t n = parse("v=DMARC1;; p=reject; junk; 9x=1; p=none; rua=mailto:a@example.com,mailto:b@example.org;",
			 TAGVAL_LENIENT, TAGVAL_OK, t);
	assert_int_equal(n, 3);
	assert_string_equal(t[0].value, "DMARC1");
	assert_string_equal(t[1].value, "reject");
	assert_string_equal(t[2].name, "rua");
	n = parse("v = DMARC1 ; p=\xc3\xa9", TAGVAL_LENIENT, TAGVAL_OK, t);
	assert_int_equal(n, 2);
	assert_string_equal(t[0].value, "DMARC1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dkim_signature_list),
		cmocka_unit_test(test_key_record),
		cmocka_unit_test(test_strict_errors),
		cmocka_unit_test(test_lenient),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
