/* acme_jws.h — the account key and the JSON Web Signatures ACME requests carry (RFC 8555 §6.2):
 * ES256 (RFC 7518 §3.4) with a P-256 key through OpenSSL's EVP, the key as a JWK (RFC 7517) and
 * its thumbprint (RFC 7638) for key authorizations (RFC 8555 §8.1). */
#ifndef MAILWERK_ACME_ACME_JWS_H
#define MAILWERK_ACME_ACME_JWS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#define ACME_JWK_SIZE 160       /* {"crv":"P-256","kty":"EC","x":"(43)","y":"(43)"} and the NUL */
#define ACME_THUMBPRINT_SIZE 44 /* base64url of 32 octets (43) and the NUL */

/* A new P-256 key (account or certificate); NULL when OpenSSL cannot make one. */
EVP_PKEY *acme_key_new(void);

/* The public half of a P-256 key as its JWK, members in the lexicographic order and without white
 * space that RFC 7638 §3.3 asks of the thumbprint's input (so the same text serves both). false
 * when the key is not a P-256 key. */
bool acme_jwk(EVP_PKEY *key, char out[ACME_JWK_SIZE]);
/* RFC 7638 §3: base64url(SHA-256(JWK)). */
bool acme_thumbprint(EVP_PKEY *key, char out[ACME_THUMBPRINT_SIZE]);

/* A flattened JWS (RFC 7515 §7.2.2) for url: protected header {alg ES256, jwk (kid NULL) or kid,
 * nonce, url} (RFC 8555 §6.2), payload the JSON text given, or "" for a POST-as-GET (payload
 * NULL, §6.3). malloc'd and NUL-terminated, *len_r its length; NULL on failure. */
char *acme_jws_sign(EVP_PKEY *key, const char *kid, const char *nonce, const char *url, const char *payload,
		    size_t *len_r);

/* ES256's signature is r || s, 32 octets each (RFC 7518 §3.4), not OpenSSL's DER: converts der
 * into out. false when der is not an ECDSA-Sig-Value of numbers within 32 octets. */
bool acme_es256_raw(const unsigned char *der, size_t der_len, unsigned char out[64]);

#endif
