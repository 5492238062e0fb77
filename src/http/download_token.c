/* download_token.c — signed download URLs (download_token.h). */
#include "http/download_token.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "http/parse.h"
#include "util/base64.h"

#define MAC_LEN 32

static bool mac_of(const unsigned char secret[DOWNLOAD_SECRET_LEN], const char *path, int64_t expires_s,
		   unsigned char mac[MAC_LEN])
{
	char input[HTTP_PATH_MAX + 64];
	int n = snprintf(input, sizeof(input), "mailwerk download\n%" PRId64 "\n%s", expires_s, path);
	unsigned mac_len = 0;
	return n > 0 && (size_t)n < sizeof(input) &&
	       HMAC(EVP_sha256(), secret, DOWNLOAD_SECRET_LEN, (const unsigned char *)input, (size_t)n, mac, &mac_len) !=
		       NULL &&
	       mac_len == MAC_LEN;
}

bool download_token_query(const unsigned char secret[DOWNLOAD_SECRET_LEN], const char *path, int64_t expires_s,
			  char *out, size_t size)
{
	unsigned char mac[MAC_LEN];
	char sig[64];
	if (!mac_of(secret, path, expires_s, mac) || base64url_encode(mac, MAC_LEN, sig, sizeof(sig)) == 0)
		return false;
	int n = snprintf(out, size, "expires=%" PRId64 "&signature=%s", expires_s, sig);
	return n > 0 && (size_t)n < size;
}

bool download_token_check(const unsigned char secret[DOWNLOAD_SECRET_LEN], const char *path, const char *query,
			  int64_t now_s)
{
	char expires[24], sig[64];
	if (http_query_get(query, "expires", expires, sizeof(expires)) <= 0 ||
	    http_query_get(query, "signature", sig, sizeof(sig)) <= 0)
		return false;
	char *end;
	long long e = strtoll(expires, &end, 10);
	if (*end != '\0' || expires[0] < '0' || expires[0] > '9' || e < now_s)
		return false;
	unsigned char given[MAC_LEN + 4], want[MAC_LEN];
	long got = base64url_decode(sig, strlen(sig), given, sizeof(given));
	return got == MAC_LEN && mac_of(secret, path, (int64_t)e, want) && CRYPTO_memcmp(given, want, MAC_LEN) == 0;
}
