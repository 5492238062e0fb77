/* dkim_testdata.h — what the DKIM unit tests share: reading the published vectors from
 * $MAILWERK_TESTDATA (set by CMake), and the RFC 8463 keys. Include after <cmocka.h>. */
#ifndef MAILWERK_TESTS_DKIM_TESTDATA_H
#define MAILWERK_TESTS_DKIM_TESTDATA_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "auth/dkim_key.h"

/* The file at $MAILWERK_TESTDATA/rel, NUL-terminated; *len_r is its size. Fails the test if absent. */
static inline char *testdata_read(const char *rel, size_t *len_r)
{
	const char *dir = getenv("MAILWERK_TESTDATA");
	if (dir == NULL)
		fail_msg("MAILWERK_TESTDATA is not set (ctest sets it)");
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("cannot open %s", path);
	char *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			cap = (len + 4096 + 1) * 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		size_t r = fread(buf + len, 1, 4096, f);
		len += r;
		if (r == 0)
			break;
	}
	fclose(f);
	buf[len] = '\0';
	if (len_r != NULL)
		*len_r = len;
	return buf;
}

/* A one-line text file (a TXT value) without its final line end. */
static inline char *testdata_line(const char *rel)
{
	size_t len;
	char *s = testdata_read(rel, &len);
	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
		s[--len] = '\0';
	return s;
}

/* The path of a file under $MAILWERK_TESTDATA (for the file-loading functions). */
static inline const char *testdata_path(const char *rel, char *buf, size_t size)
{
	const char *dir = getenv("MAILWERK_TESTDATA");
	assert_non_null(dir);
	snprintf(buf, size, "%s/%s", dir, rel);
	return buf;
}

/* The RFC 8463 Appendix A keys. */
static inline EVP_PKEY *testdata_rsa_key(void)
{
	size_t len;
	char *pem = testdata_read("dkim/rfc8463/rsa-private.pkcs1.pem", &len);
	EVP_PKEY *k = NULL;
	const char *err = NULL;
	if (dkim_key_pem_parse(pem, len, &k, &err) != DKIM_KEY_OK)
		fail_msg("RSA key: %s", err);
	free(pem);
	return k;
}

static inline EVP_PKEY *testdata_ed25519_key(void)
{
	size_t len;
	char *pem = testdata_read("dkim/rfc8463/derived/ed25519-private.pkcs8.pem", &len);
	EVP_PKEY *k = NULL;
	const char *err = NULL;
	if (dkim_key_pem_parse(pem, len, &k, &err) != DKIM_KEY_OK)
		fail_msg("Ed25519 key: %s", err);
	free(pem);
	return k;
}

#endif
