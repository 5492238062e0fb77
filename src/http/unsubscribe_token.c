/* unsubscribe_token.c — signed one-click unsubscribe tokens (unsubscribe_token.h). The payload is
 * "v1\nEMAIL_ID\nDOMAIN\nADDRESS" in base64url (RFC 4648 §5, no padding), then ".", then the
 * base64url HMAC-SHA256 of the payload's text under the secret. */
#include "http/unsubscribe_token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "util/base64.h"

#define MAC_LEN 32

static bool mac_of(const unsigned char *secret, const char *payload, size_t len, unsigned char mac[MAC_LEN])
{
	unsigned mac_len = 0;
	return HMAC(EVP_sha256(), secret, UNSUBSCRIBE_SECRET_LEN, (const unsigned char *)payload, len, mac, &mac_len) != NULL &&
	       mac_len == MAC_LEN;
}

bool unsubscribe_token_make(const unsigned char secret[UNSUBSCRIBE_SECRET_LEN], const struct unsubscribe_target *t,
			    char *out, size_t size)
{
	char text[600];
	int n = snprintf(text, sizeof(text), "v1\n%s\n%s\n%s", t->email_id, t->domain, t->addr);
	if (n < 0 || (size_t)n >= sizeof(text) || strchr(t->email_id, '\n') || strchr(t->domain, '\n') ||
	    strchr(t->addr, '\n'))
		return false;
	size_t o = base64url_encode((const unsigned char *)text, (size_t)n, out, size);
	if (o == 0 || o + 2 >= size)
		return false;
	unsigned char mac[MAC_LEN];
	if (!mac_of(secret, out, o, mac))
		return false;
	out[o++] = '.';
	return base64url_encode(mac, sizeof(mac), out + o, size - o) > 0;
}

/* Copies the next "\n"-ended field of p (up to end) into out; false when it is missing or too long. */
static bool field(const char **p, const char *end, char *out, size_t size, bool last)
{
	const char *nl = last ? end : memchr(*p, '\n', (size_t)(end - *p));
	if (nl == NULL || (size_t)(nl - *p) >= size || nl == *p)
		return false;
	memcpy(out, *p, (size_t)(nl - *p));
	out[nl - *p] = '\0';
	if (memchr(out, '\0', (size_t)(nl - *p)) != NULL)
		return false;
	*p = last ? end : nl + 1;
	return true;
}

bool unsubscribe_token_check(const unsigned char secret[UNSUBSCRIBE_SECRET_LEN], const char *token, size_t len,
			     struct unsubscribe_target *t_r, const char **why_r)
{
	const char *dot = memchr(token, '.', len);
	if (len > UNSUBSCRIBE_TOKEN_MAX || dot == NULL) {
		*why_r = "malformed";
		return false;
	}
	size_t plen = (size_t)(dot - token);
	unsigned char given[MAC_LEN + 3], want[MAC_LEN];
	long glen = base64url_decode(dot + 1, len - plen - 1, given, sizeof(given));
	if (glen != MAC_LEN || !mac_of(secret, token, plen, want)) {
		*why_r = "malformed";
		return false;
	}
	/* constant time: how much of a forged MAC was right must not show in the timing */
	if (CRYPTO_memcmp(given, want, MAC_LEN) != 0) {
		*why_r = "bad_signature";
		return false;
	}
	unsigned char text[600];
	long tlen = base64url_decode(token, plen, text, sizeof(text) - 1);
	if (tlen < 3 || memcmp(text, "v1\n", 3) != 0) {
		*why_r = "bad_payload";
		return false;
	}
	const char *p = (const char *)text + 3, *end = (const char *)text + tlen;
	memset(t_r, 0, sizeof(*t_r));
	if (!field(&p, end, t_r->email_id, sizeof(t_r->email_id), false) ||
	    !field(&p, end, t_r->domain, sizeof(t_r->domain), false) || !field(&p, end, t_r->addr, sizeof(t_r->addr), true) ||
	    memchr(t_r->addr, '\n', strlen(t_r->addr)) != NULL) {
		*why_r = "bad_payload";
		return false;
	}
	return true;
}
