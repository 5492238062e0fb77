/* acme_jws.c — ES256 JWS for ACME (acme_jws.h). */
#include "acme/acme_jws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/sha.h>

#include "util/base64.h"

EVP_PKEY *acme_key_new(void)
{
	return EVP_EC_gen("P-256");
}

bool acme_jwk(EVP_PKEY *key, char out[ACME_JWK_SIZE])
{
	char curve[32];
	unsigned char pub[65];
	size_t n = 0;
	if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof(curve), NULL) != 1 ||
	    strcmp(curve, "prime256v1") != 0 ||
	    EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pub, sizeof(pub), &n) != 1 ||
	    n != 65 || pub[0] != 0x04) /* SEC 1 §2.3.3 uncompressed: 04 || X || Y */
		return false;
	char x[48], y[48];
	if (base64url_encode(pub + 1, 32, x, sizeof(x)) == 0 || base64url_encode(pub + 33, 32, y, sizeof(y)) == 0)
		return false;
	int w = snprintf(out, ACME_JWK_SIZE, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", x, y);
	return w > 0 && w < ACME_JWK_SIZE;
}

bool acme_thumbprint(EVP_PKEY *key, char out[ACME_THUMBPRINT_SIZE])
{
	char jwk[ACME_JWK_SIZE];
	unsigned char d[SHA256_DIGEST_LENGTH];
	if (!acme_jwk(key, jwk))
		return false;
	SHA256((const unsigned char *)jwk, strlen(jwk), d);
	return base64url_encode(d, sizeof(d), out, ACME_THUMBPRINT_SIZE) == 43;
}

bool acme_es256_raw(const unsigned char *der, size_t der_len, unsigned char out[64])
{
	const unsigned char *p = der;
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
	if (sig == NULL)
		return false;
	bool ok = p == der + der_len;
	const BIGNUM *r, *s;
	ECDSA_SIG_get0(sig, &r, &s);
	ok = ok && BN_num_bytes(r) <= 32 && BN_num_bytes(s) <= 32 && BN_bn2binpad(r, out, 32) == 32 &&
	     BN_bn2binpad(s, out + 32, 32) == 32;
	ECDSA_SIG_free(sig);
	return ok;
}

/* base64url of len octets, malloc'd */
static char *b64u(const char *in, size_t len)
{
	size_t size = BASE64_ENCODED_SIZE(len);
	char *out = malloc(size);
	if (out != NULL && len > 0 && base64url_encode((const unsigned char *)in, len, out, size) == 0) {
		free(out);
		return NULL;
	}
	if (out != NULL && len == 0)
		out[0] = '\0';
	return out;
}

char *acme_jws_sign(EVP_PKEY *key, const char *kid, const char *nonce, const char *url, const char *payload,
		    size_t *len_r)
{
	char jwk[ACME_JWK_SIZE];
	if (kid == NULL && !acme_jwk(key, jwk))
		return NULL;
	/* nonce and url come from the server and from our configuration: both are checked to be
	 * printable without quotes or backslashes before they get here (acme.c), so no escaping */
	size_t hsize = strlen(nonce) + strlen(url) + (kid != NULL ? strlen(kid) : strlen(jwk)) + 64;
	char *header = malloc(hsize);
	if (header == NULL)
		return NULL;
	if (kid != NULL)
		snprintf(header, hsize, "{\"alg\":\"ES256\",\"kid\":\"%s\",\"nonce\":\"%s\",\"url\":\"%s\"}", kid, nonce, url);
	else
		snprintf(header, hsize, "{\"alg\":\"ES256\",\"jwk\":%s,\"nonce\":\"%s\",\"url\":\"%s\"}", jwk, nonce, url);
	char *prot = b64u(header, strlen(header));
	char *pay = b64u(payload != NULL ? payload : "", payload != NULL ? strlen(payload) : 0);
	free(header);
	char *out = NULL, *input = NULL;
	unsigned char *der = NULL;
	EVP_MD_CTX *md = NULL;
	if (prot == NULL || pay == NULL)
		goto done;
	/* RFC 7515 §5.1: the signing input is ASCII(BASE64URL(header) || '.' || BASE64URL(payload)) */
	size_t in_len = strlen(prot) + 1 + strlen(pay);
	if ((input = malloc(in_len + 1)) == NULL)
		goto done;
	snprintf(input, in_len + 1, "%s.%s", prot, pay);
	size_t der_len = 0;
	unsigned char raw[64];
	char sig[100];
	if ((md = EVP_MD_CTX_new()) == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, NULL, &der_len, (const unsigned char *)input, in_len) != 1 ||
	    (der = malloc(der_len)) == NULL ||
	    EVP_DigestSign(md, der, &der_len, (const unsigned char *)input, in_len) != 1 ||
	    !acme_es256_raw(der, der_len, raw) || base64url_encode(raw, sizeof(raw), sig, sizeof(sig)) == 0)
		goto done;
	size_t size = strlen(prot) + strlen(pay) + strlen(sig) + 48;
	if ((out = malloc(size)) == NULL)
		goto done;
	int w = snprintf(out, size, "{\"protected\":\"%s\",\"payload\":\"%s\",\"signature\":\"%s\"}", prot, pay, sig);
	*len_r = (size_t)w;
done:
	EVP_MD_CTX_free(md);
	free(der);
	free(input);
	free(prot);
	free(pay);
	return out;
}
