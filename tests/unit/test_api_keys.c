/* test_api_keys.c — the HTTP API's key store (src/keys/api_keys.c) against a real api.db in a fresh
 * temporary directory per test: tokens and ids, checking presented tokens, what the file holds,
 * a second handle on the same directory (as the CLI is to the server), the input rules, usage
 * times, and checks on one thread while another writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "keys/api_keys.h"
#include "test_util.h"

struct fixture {
	char dir[256];
	struct api_keys *k;
	char error[512];
};

static int fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	const char *tmp = getenv("TMPDIR");
	snprintf(f->dir, sizeof(f->dir), "%s/test_api_keys.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	f->k = api_keys_open(f->dir, f->error, sizeof(f->error));
	if (f->k == NULL)
		fail_msg("api_keys_open: %s", f->error);
	*state = f;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;
	static const char *const files[] = { "api.db", "api.db-wal", "api.db-shm" };
	char path[512];

	api_keys_close(f->k);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", f->dir, files[i]);
		unlink(path);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static struct api_keys *open_second(struct fixture *f)
{
	struct api_keys *k = api_keys_open(f->dir, f->error, sizeof(f->error));
	if (k == NULL)
		fail_msg("api_keys_open (second): %s", f->error);
	return k;
}

/* A key that must be made; its token in token_r, its record in key_r (either may be NULL). */
static void create_ok(struct fixture *f, struct api_keys *k, const char *name, enum api_key_permission perm,
		      const char *domain, char token_r[API_KEY_TOKEN_LEN + 1], struct api_key *key_r)
{
	char token[API_KEY_TOKEN_LEN + 1];
	struct api_key key;
	bool bad = true;

	if (api_keys_create(k, name, perm, domain, token, &key, &bad, f->error, sizeof(f->error)) != 0)
		fail_msg("api_keys_create(%s): %s", name, f->error);
	assert_false(bad);
	if (token_r != NULL)
		memcpy(token_r, token, sizeof(token));
	if (key_r != NULL)
		*key_r = key;
}

/* A create that must be refused as bad input, with a sentence containing want (when given). */
static void create_bad(struct fixture *f, const char *name, enum api_key_permission perm, const char *domain,
		       const char *want)
{
	char token[API_KEY_TOKEN_LEN + 1], esc[400];
	struct api_key key;
	bool bad = false;

	f->error[0] = '\0';
	if (api_keys_create(f->k, name, perm, domain, token, &key, &bad, f->error, sizeof(f->error)) == 0)
		fail_msg("accepted name \"%s\" domain \"%s\"", test_escape(name, strlen(name), esc, sizeof(esc)),
			 domain ? domain : "(null)");
	assert_true(bad);
	assert_string_not_equal(f->error, "");
	if (want != NULL && strstr(f->error, want) == NULL)
		fail_msg("error \"%s\" does not say \"%s\"", f->error, want);
}

static size_t list_count(struct fixture *f, struct api_keys *k)
{
	struct api_key *keys = NULL;
	size_t n = 99;

	if (api_keys_list(k, &keys, &n, f->error, sizeof(f->error)) != 0)
		fail_msg("api_keys_list: %s", f->error);
	free(keys);
	return n;
}

static bool is_b64url(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static bool is_hex_lower(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* ---- tests ---- */

static void test_permission_names(void **state)
{
	(void)state;
	enum api_key_permission p = API_KEY_SENDING_ACCESS;

	assert_string_equal(api_key_permission_str(API_KEY_FULL_ACCESS), "full_access");
	assert_string_equal(api_key_permission_str(API_KEY_SENDING_ACCESS), "sending_access");
	assert_true(api_key_permission_parse("full_access", &p));
	assert_int_equal(p, API_KEY_FULL_ACCESS);
	assert_true(api_key_permission_parse("sending_access", &p));
	assert_int_equal(p, API_KEY_SENDING_ACCESS);
	assert_false(api_key_permission_parse("Full_Access", &p));
	assert_false(api_key_permission_parse("", &p));
	assert_false(api_key_permission_parse("full_access ", &p));
}

static void test_round_trip(void **state)
{
	struct fixture *f = *state;
	char token[API_KEY_TOKEN_LEN + 1];
	struct api_key made, seen, *keys = NULL;
	size_t n = 0;

	create_ok(f, f->k, "deploy", API_KEY_SENDING_ACCESS, NULL, token, &made);
	assert_string_equal(made.name, "deploy");
	assert_int_equal(made.permission, API_KEY_SENDING_ACCESS);
	assert_string_equal(made.domain, "");
	assert_true(made.created_at > 1600000000000LL); /* milliseconds */
	assert_int_equal(made.last_used_at, 0);

	memset(&seen, 0, sizeof(seen));
	assert_true(api_keys_check(f->k, token, &seen));
	assert_string_equal(seen.id, made.id);
	assert_string_equal(seen.name, "deploy");
	assert_int_equal(seen.permission, API_KEY_SENDING_ACCESS);
	assert_int_equal(seen.created_at, made.created_at);
	assert_true(api_keys_check(f->k, token, NULL));

	assert_int_equal(api_keys_list(f->k, &keys, &n, f->error, sizeof(f->error)), 0);
	assert_int_equal(n, 1);
	assert_string_equal(keys[0].id, made.id);
	assert_string_equal(keys[0].name, "deploy");
	assert_int_equal(keys[0].created_at, made.created_at);
	free(keys);

	assert_int_equal(api_keys_revoke(f->k, made.id, f->error, sizeof(f->error)), 1);
	assert_false(api_keys_check(f->k, token, &seen));
	assert_int_equal(api_keys_revoke(f->k, made.id, f->error, sizeof(f->error)), 0);
	assert_int_equal(api_keys_revoke(f->k, "not-an-id", f->error, sizeof(f->error)), 0);
	assert_int_equal(list_count(f, f->k), 0);

	/* persisted: a fresh open finds what is left */
	create_ok(f, f->k, "kept", API_KEY_FULL_ACCESS, NULL, token, &made);
	api_keys_close(f->k);
	f->k = open_second(f);
	assert_true(api_keys_check(f->k, token, &seen));
	assert_string_equal(seen.id, made.id);
	assert_int_equal(seen.permission, API_KEY_FULL_ACCESS);
}

static void test_token_and_id_format(void **state)
{
	struct fixture *f = *state;
	char tokens[8][API_KEY_TOKEN_LEN + 1];
	struct api_key keys[8];

	for (size_t i = 0; i < 8; i++) {
		create_ok(f, f->k, "k", API_KEY_FULL_ACCESS, NULL, tokens[i], &keys[i]);
		const char *t = tokens[i], *id = keys[i].id;

		assert_int_equal(strlen(t), API_KEY_TOKEN_LEN);
		assert_int_equal(strlen(t), 46);
		assert_memory_equal(t, "re_", 3);
		for (size_t j = 3; j < API_KEY_TOKEN_LEN; j++)
			if (!is_b64url(t[j]))
				fail_msg("token %s: '%c' is not base64url", t, t[j]);
		/* 32 octets are 42 digits and 4 bits: the last digit's low 2 bits are zero */
		assert_non_null(strchr("AEIMQUYcgkosw048", t[API_KEY_TOKEN_LEN - 1]));

		assert_int_equal(strlen(id), API_KEY_ID_LEN);
		for (size_t j = 0; j < API_KEY_ID_LEN; j++) {
			if (j == 8 || j == 13 || j == 18 || j == 23)
				assert_int_equal(id[j], '-');
			else if (!is_hex_lower(id[j]))
				fail_msg("id %s: '%c' is not lower-case hex", id, id[j]);
		}
		assert_int_equal(id[14], '4');               /* version 4 */
		assert_non_null(strchr("89ab", id[19]));     /* RFC 9562 variant */
		for (size_t j = 0; j < i; j++) {
			assert_string_not_equal(tokens[j], t);
			assert_string_not_equal(keys[j].id, id);
		}
	}
	assert_int_equal(list_count(f, f->k), 8);
}

/* Whether the octets of needle occur in the file (absent files hold nothing). */
static bool file_contains(const char *path, const void *needle, size_t len)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	long size;
	bool found;

	if (fp == NULL)
		return false;
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	size = ftell(fp);
	assert_true(size >= 0);
	rewind(fp);
	buf = malloc((size_t)size + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)size, fp), (size_t)size);
	fclose(fp);
	found = memmem(buf, (size_t)size, needle, len) != NULL;
	free(buf);
	return found;
}

static bool dir_files_contain(const char *dir, const void *needle, size_t len)
{
	static const char *const files[] = { "api.db", "api.db-wal", "api.db-shm" };
	char path[512];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		if (file_contains(path, needle, len))
			return true;
	}
	return false;
}

static void test_file_holds_hash_not_token(void **state)
{
	struct fixture *f = *state;
	char token[API_KEY_TOKEN_LEN + 1];
	unsigned char hash[SHA256_DIGEST_LENGTH];
	struct api_key key;

	create_ok(f, f->k, "secret", API_KEY_FULL_ACCESS, NULL, token, &key);
	SHA256((const unsigned char *)token, API_KEY_TOKEN_LEN, hash);
	/* with the connections open (the row may be in the WAL) and after closing (checkpointed) */
	for (int round = 0; round < 2; round++) {
		/* the search works: the id and the hash are there */
		assert_true(dir_files_contain(f->dir, key.id, strlen(key.id)));
		assert_true(dir_files_contain(f->dir, hash, sizeof(hash)));
		assert_false(dir_files_contain(f->dir, token, API_KEY_TOKEN_LEN));
		/* nor the random part alone, nor a good piece of it */
		assert_false(dir_files_contain(f->dir, token + 3, API_KEY_TOKEN_LEN - 3));
		assert_false(dir_files_contain(f->dir, token + 3, 16));
		api_keys_close(f->k);
		f->k = NULL;
		if (round == 0)
			f->k = open_second(f);
	}
	f->k = open_second(f);
}

static void test_check_refuses(void **state)
{
	struct fixture *f = *state;
	char token[API_KEY_TOKEN_LEN + 1], other[API_KEY_TOKEN_LEN + 1], t[API_KEY_TOKEN_LEN + 8];
	struct api_keys *k2 = open_second(f);
	struct api_key key;

	create_ok(f, f->k, "good", API_KEY_FULL_ACCESS, NULL, token, NULL);
	/* a well-formed token of a key that no longer exists */
	create_ok(f, k2, "gone", API_KEY_FULL_ACCESS, NULL, other, &key);
	assert_int_equal(api_keys_revoke(k2, key.id, f->error, sizeof(f->error)), 1);
	api_keys_close(k2);

	assert_true(api_keys_check(f->k, token, NULL));
	assert_false(api_keys_check(f->k, other, NULL));
	assert_false(api_keys_check(f->k, "", NULL));
	assert_false(api_keys_check(f->k, NULL, NULL));
	assert_false(api_keys_check(f->k, "re_", NULL));
	/* truncated, and one too long */
	snprintf(t, sizeof(t), "%.*s", API_KEY_TOKEN_LEN - 1, token);
	assert_false(api_keys_check(f->k, t, NULL));
	snprintf(t, sizeof(t), "%sA", token);
	assert_false(api_keys_check(f->k, t, NULL));
	/* every single flipped character, the prefix's included */
	for (size_t i = 0; i < API_KEY_TOKEN_LEN; i++) {
		memcpy(t, token, sizeof(token));
		t[i] = t[i] == 'A' ? 'B' : 'A';
		if (api_keys_check(f->k, t, NULL))
			fail_msg("accepted %s with character %zu changed", t, i);
	}
	/* the same digits without the prefix, or behind another one */
	assert_false(api_keys_check(f->k, token + 3, NULL));
	memcpy(t, token, sizeof(token));
	memcpy(t, "sk_", 3);
	assert_false(api_keys_check(f->k, t, NULL));
	memcpy(t, "RE_", 3);
	assert_false(api_keys_check(f->k, t, NULL));
	/* a presented string that ends early inside a bigger buffer */
	char *heap = test_dup(token, API_KEY_TOKEN_LEN + 1);
	heap[20] = '\0';
	assert_false(api_keys_check(f->k, heap, NULL));
	free(heap);
	/* and the good one still works after all that */
	assert_true(api_keys_check(f->k, token, NULL));
}

/* The CLI is another process with its own handle: what it makes or revokes reaches the server's
 * handle through PRAGMA data_version alone (nothing in the first handle is told). */
static void test_second_handle(void **state)
{
	struct fixture *f = *state;
	char token[API_KEY_TOKEN_LEN + 1], mine[API_KEY_TOKEN_LEN + 1];
	struct api_keys *cli = open_second(f);
	struct api_key key, seen, first;

	create_ok(f, f->k, "server's own", API_KEY_FULL_ACCESS, NULL, mine, &first);
	assert_true(api_keys_check(f->k, mine, NULL));
	/* the second handle loaded at open, and sees later writes of the first */
	assert_true(api_keys_check(cli, mine, NULL));

	create_ok(f, cli, "from the cli", API_KEY_SENDING_ACCESS, "example.org", token, &key);
	assert_true(api_keys_check(f->k, token, &seen));
	assert_string_equal(seen.id, key.id);
	assert_string_equal(seen.name, "from the cli");
	assert_string_equal(seen.domain, "example.org");
	assert_int_equal(seen.permission, API_KEY_SENDING_ACCESS);
	assert_int_equal(list_count(f, f->k), 2);

	assert_int_equal(api_keys_revoke(cli, key.id, f->error, sizeof(f->error)), 1);
	assert_false(api_keys_check(f->k, token, NULL));
	assert_true(api_keys_check(f->k, mine, NULL));
	/* and the other way round */
	assert_int_equal(api_keys_revoke(f->k, first.id, f->error, sizeof(f->error)), 1);
	assert_false(api_keys_check(cli, mine, NULL));
	assert_int_equal(list_count(f, cli), 0);
	api_keys_close(cli);
}

static void test_names(void **state)
{
	struct fixture *f = *state;
	char name[256];
	struct api_key key;

	create_bad(f, "", API_KEY_FULL_ACCESS, NULL, "empty");
	memset(name, 'a', 51);
	name[51] = '\0';
	create_bad(f, name, API_KEY_FULL_ACCESS, NULL, "50");
	name[50] = '\0';
	create_ok(f, f->k, name, API_KEY_FULL_ACCESS, NULL, NULL, &key);
	assert_string_equal(key.name, name);
	/* characters, not octets: 50 two-octet letters are fine, 51 are not */
	name[0] = '\0';
	for (int i = 0; i < 50; i++)
		strcat(name, "\xc3\xa9");
	create_ok(f, f->k, name, API_KEY_FULL_ACCESS, NULL, NULL, &key);
	assert_string_equal(key.name, name);
	strcat(name, "\xc3\xa9");
	create_bad(f, name, API_KEY_FULL_ACCESS, NULL, "50");
	/* 50 four-octet characters fill the field to the last octet */
	name[0] = '\0';
	for (int i = 0; i < 50; i++)
		strcat(name, "\xf0\x9f\x94\x91");
	create_ok(f, f->k, name, API_KEY_FULL_ACCESS, NULL, NULL, &key);
	assert_string_equal(key.name, name);

	static const char *const not_utf8[] = {
		"\xff", "caf\xe9", "\xc3", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "a\x80",
	};
	for (size_t i = 0; i < sizeof(not_utf8) / sizeof(not_utf8[0]); i++)
		create_bad(f, not_utf8[i], API_KEY_FULL_ACCESS, NULL, "UTF-8");
	static const char *const controls[] = { "a\tb", "line\n", "\r", "\x1b[31m", "del\x7f", "c1\xc2\x85" };
	for (size_t i = 0; i < sizeof(controls) / sizeof(controls[0]); i++)
		create_bad(f, controls[i], API_KEY_FULL_ACCESS, NULL, "control");
	/* spaces and other printable text are names too */
	create_ok(f, f->k, "Production – EU (v2)", API_KEY_FULL_ACCESS, NULL, NULL, NULL);
	create_ok(f, f->k, "\xc2\xa0nbsp", API_KEY_FULL_ACCESS, NULL, NULL, NULL);
	/* none of the refused ones was stored */
	assert_int_equal(list_count(f, f->k), 5);
}

static void test_domains(void **state)
{
	struct fixture *f = *state;
	char token[API_KEY_TOKEN_LEN + 1];
	struct api_key key, seen;

	create_ok(f, f->k, "eu", API_KEY_SENDING_ACCESS, "Mail.Example.COM", token, &key);
	assert_string_equal(key.domain, "mail.example.com");
	assert_true(api_keys_check(f->k, token, &seen));
	assert_string_equal(seen.domain, "mail.example.com");

	create_bad(f, "eu", API_KEY_FULL_ACCESS, "example.com",
		   "a key limited to a domain can only have sending_access");
	create_bad(f, "eu", API_KEY_SENDING_ACCESS, "not a domain", "invalid domain");
	create_bad(f, "eu", API_KEY_SENDING_ACCESS, "example..com", "invalid domain");
	create_bad(f, "eu", API_KEY_SENDING_ACCESS, "-example.com", NULL);
	create_bad(f, "eu", API_KEY_SENDING_ACCESS, "user@example.com", NULL);
	create_bad(f, "eu", API_KEY_SENDING_ACCESS, "[192.0.2.1]", "literal");
	create_bad(f, "eu", (enum api_key_permission)7, NULL, "permission");

	char longd[300];
	memset(longd, 'a', sizeof(longd) - 1);
	longd[sizeof(longd) - 1] = '\0';
	create_bad(f, "eu", API_KEY_SENDING_ACCESS, longd, NULL);

	/* "" and NULL are both "every domain", for either permission */
	create_ok(f, f->k, "any", API_KEY_FULL_ACCESS, "", NULL, &key);
	assert_string_equal(key.domain, "");
	create_ok(f, f->k, "any2", API_KEY_SENDING_ACCESS, NULL, NULL, &key);
	assert_string_equal(key.domain, "");
	assert_int_equal(list_count(f, f->k), 3);
}

static void test_list_order(void **state)
{
	struct fixture *f = *state;
	struct api_key made[5], *keys = NULL;
	size_t n = 0;

	for (int i = 0; i < 5; i++) {
		char name[16];

		snprintf(name, sizeof(name), "key %d", i);
		create_ok(f, f->k, name, API_KEY_FULL_ACCESS, NULL, NULL, &made[i]);
		if (i == 2)
			usleep(3000); /* two groups: ordered by created_at between them, maybe by id within */
	}
	assert_int_equal(api_keys_list(f->k, &keys, &n, f->error, sizeof(f->error)), 0);
	assert_int_equal(n, 5);
	for (size_t i = 1; i < n; i++) {
		const struct api_key *newer = &keys[i - 1], *older = &keys[i];
		bool ordered = newer->created_at > older->created_at
			       || (newer->created_at == older->created_at && strcmp(newer->id, older->id) > 0);
		if (!ordered)
			fail_msg("list entry %zu (%s) is not older than the one before (%s)", i, older->id, newer->id);
	}
	/* the newest made last, the oldest first; the pause puts them in two different milliseconds */
	assert_int_equal(keys[0].created_at, made[4].created_at);
	assert_int_equal(keys[4].created_at, made[0].created_at);
	assert_true(made[3].created_at > made[2].created_at);
	free(keys);
}

static int64_t listed_last_used(struct fixture *f, struct api_keys *k, const char *id)
{
	struct api_key *keys = NULL;
	size_t n = 0;
	int64_t v = -1;

	assert_int_equal(api_keys_list(k, &keys, &n, f->error, sizeof(f->error)), 0);
	for (size_t i = 0; i < n; i++)
		if (strcmp(keys[i].id, id) == 0)
			v = keys[i].last_used_at;
	free(keys);
	return v;
}

static void test_touch_and_flush(void **state)
{
	struct fixture *f = *state;
	char token[API_KEY_TOKEN_LEN + 1], t2[API_KEY_TOKEN_LEN + 1];
	struct api_key key, seen;
	struct api_keys *cli;

	create_ok(f, f->k, "used", API_KEY_FULL_ACCESS, NULL, token, &key);
	assert_int_equal(api_keys_flush_usage(f->k, f->error, sizeof(f->error)), 0); /* nothing to write */

	api_keys_touch(f->k, key.id, 1700000000123LL);
	api_keys_touch(f->k, "00000000-0000-4000-8000-000000000000", 5); /* no such key: ignored */
	assert_true(api_keys_check(f->k, token, &seen));
	assert_int_equal(seen.last_used_at, 1700000000123LL);
	/* an earlier time never moves it back */
	api_keys_touch(f->k, key.id, 1600000000000LL);
	assert_true(api_keys_check(f->k, token, &seen));
	assert_int_equal(seen.last_used_at, 1700000000123LL);
	/* listed from memory before it is written; not on disk yet for another handle */
	assert_int_equal(listed_last_used(f, f->k, key.id), 1700000000123LL);
	cli = open_second(f);
	assert_int_equal(listed_last_used(f, cli, key.id), 0);

	/* a reload caused by someone else's write keeps the usage noted but not written */
	create_ok(f, cli, "other", API_KEY_FULL_ACCESS, NULL, t2, NULL);
	assert_true(api_keys_check(f->k, t2, NULL));
	assert_true(api_keys_check(f->k, token, &seen));
	assert_int_equal(seen.last_used_at, 1700000000123LL);

	assert_int_equal(api_keys_flush_usage(f->k, f->error, sizeof(f->error)), 0);
	assert_int_equal(listed_last_used(f, cli, key.id), 1700000000123LL);
	/* flushed: nothing more to write, and the reload after our own write keeps the value */
	assert_int_equal(api_keys_flush_usage(f->k, f->error, sizeof(f->error)), 0);
	assert_true(api_keys_check(f->k, token, &seen));
	assert_int_equal(seen.last_used_at, 1700000000123LL);

	/* a later use is written by the next flush */
	api_keys_touch(f->k, key.id, 1700000999000LL);
	assert_int_equal(api_keys_flush_usage(f->k, f->error, sizeof(f->error)), 0);
	assert_int_equal(listed_last_used(f, cli, key.id), 1700000999000LL);
	api_keys_close(cli);

	/* survives closing and opening */
	api_keys_close(f->k);
	f->k = open_second(f);
	assert_true(api_keys_check(f->k, token, &seen));
	assert_int_equal(seen.last_used_at, 1700000999000LL);

	/* a key revoked before its use was flushed: the flush writes nothing and does not fail */
	api_keys_touch(f->k, key.id, 1800000000000LL);
	assert_int_equal(api_keys_revoke(f->k, key.id, f->error, sizeof(f->error)), 1);
	assert_int_equal(api_keys_flush_usage(f->k, f->error, sizeof(f->error)), 0);
}

static void test_open_fails_cleanly(void **state)
{
	(void)state;
	char error[512] = "";

	assert_null(api_keys_open("/nonexistent/mailwerk-test-dir", error, sizeof(error)));
	assert_non_null(strstr(error, "api.db"));
}

/* ---- one thread checks and touches (the loop) while another writes (a worker) ---- */

struct writer_arg {
	struct fixture *f;
	int rounds;
	int failures;
};

static void *writer_main(void *p)
{
	struct writer_arg *w = p;
	char token[API_KEY_TOKEN_LEN + 1], error[512];
	struct api_key key;
	bool bad;

	for (int i = 0; i < w->rounds; i++) {
		if (api_keys_create(w->f->k, "churn", API_KEY_SENDING_ACCESS, NULL, token, &key, &bad, error,
				    sizeof(error)) != 0
		    || api_keys_flush_usage(w->f->k, error, sizeof(error)) != 0
		    || api_keys_revoke(w->f->k, key.id, error, sizeof(error)) != 1)
			w->failures++;
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct fixture *f = *state;
	char token[API_KEY_TOKEN_LEN + 1];
	struct api_key key, seen;
	struct writer_arg w = { f, 30, 0 };
	pthread_t th;
	int64_t now = 1700000000000LL;

	create_ok(f, f->k, "steady", API_KEY_FULL_ACCESS, NULL, token, &key);
	assert_int_equal(pthread_create(&th, NULL, writer_main, &w), 0);
	for (int i = 0; i < 2000; i++) {
		if (!api_keys_check(f->k, token, &seen))
			fail_msg("the steady key was refused at round %d", i);
		api_keys_touch(f->k, seen.id, ++now);
	}
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(w.failures, 0);
	assert_int_equal(list_count(f, f->k), 1);
	assert_int_equal(api_keys_flush_usage(f->k, f->error, sizeof(f->error)), 0);
	assert_int_equal(listed_last_used(f, f->k, key.id), now);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_permission_names),
		cmocka_unit_test_setup_teardown(test_round_trip, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_token_and_id_format, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_file_holds_hash_not_token, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_check_refuses, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_second_handle, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_names, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_domains, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_list_order, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_touch_and_flush, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_threads, fixture_setup, fixture_teardown),
		cmocka_unit_test(test_open_fails_cleanly),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
