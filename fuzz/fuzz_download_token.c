/* fuzz_download_token.c — libFuzzer harness for src/http/download_token.c: the input is split into
 * a path (its first octet says how long) and a query. A query that checks for that path must carry
 * the MAC we make for its path and expiry (no other signature can pass); and a query made for the
 * fuzzed path, with an expiry from the input, checks until that second and not after it, nor for
 * another path or secret. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/download_token.h"
#include "http/parse.h"
#include "util/base64.h"

#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			__builtin_trap(); \
	} while (0)

static const unsigned char key[DOWNLOAD_SECRET_LEN] = "fuzzing-key-fuzzing-key-fuzzing";
static const unsigned char other[DOWNLOAD_SECRET_LEN] = "fuzzing-key-fuzzing-key-fuzzinG";

#define FUZZ_NOW 1795320306

/* The MAC octets of a query's signature, or -1. */
static long fuzz_mac(const char *query, unsigned char mac[40])
{
	char sig[64];
	if (http_query_get(query, "signature", sig, sizeof(sig)) <= 0)
		return -1;
	return base64url_decode(sig, strlen(sig), mac, 40);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	size_t plen = data[0] < size - 1 ? data[0] : size - 1;
	char *path = malloc(plen + 1), *query = malloc(size - 1 - plen + 1);
	if (path == NULL || query == NULL) {
		free(path);
		free(query);
		return 0;
	}
	memcpy(path, data + 1, plen);
	path[plen] = '\0';
	memcpy(query, data + 1 + plen, size - 1 - plen);
	query[size - 1 - plen] = '\0';
	plen = strlen(path); /* a NUL in the input ends the path */

	/* whatever it holds: it passes only with our MAC for its path and expiry */
	if (download_token_check(key, path, query, FUZZ_NOW)) {
		char expires[24];
		FUZZ_CHECK(http_query_get(query, "expires", expires, sizeof(expires)) == 1);
		char *end;
		long long e = strtoll(expires, &end, 10);
		FUZZ_CHECK(*end == '\0' && e >= FUZZ_NOW);
		char made[DOWNLOAD_QUERY_MAX];
		FUZZ_CHECK(download_token_query(key, path, e, made, sizeof(made)));
		unsigned char given_mac[40], made_mac[40];
		FUZZ_CHECK(fuzz_mac(query, given_mac) == 32 && fuzz_mac(made, made_mac) == 32);
		FUZZ_CHECK(memcmp(given_mac, made_mac, 32) == 0);
		FUZZ_CHECK(!download_token_check(other, path, query, FUZZ_NOW));
	}

	/* a made query for this path, expiring at a time taken from the query's first octets */
	int64_t expires = 0;
	memcpy(&expires, query, strlen(query) < sizeof(expires) ? strlen(query) : sizeof(expires));
	expires &= INT64_MAX;
	char made[DOWNLOAD_QUERY_MAX];
	FUZZ_CHECK(download_token_query(key, path, expires, made, sizeof(made)));
	FUZZ_CHECK(strlen(made) < DOWNLOAD_QUERY_MAX);
	FUZZ_CHECK(download_token_check(key, path, made, expires));
	FUZZ_CHECK(download_token_check(key, path, made, 0));
	FUZZ_CHECK(expires == INT64_MAX || !download_token_check(key, path, made, expires + 1));
	FUZZ_CHECK(!download_token_check(other, path, made, 0));
	/* the same query for a path one octet longer or shorter */
	char *longer = malloc(plen + 2);
	if (longer != NULL) {
		memcpy(longer, path, plen);
		longer[plen] = 'x';
		longer[plen + 1] = '\0';
		FUZZ_CHECK(!download_token_check(key, longer, made, 0));
		if (plen > 0) {
			longer[plen - 1] = '\0';
			FUZZ_CHECK(!download_token_check(key, longer, made, 0));
		}
		free(longer);
	}
	free(path);
	free(query);
	return 0;
}
