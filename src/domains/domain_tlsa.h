/* domain_tlsa.h — the TLSA records (RFC 6698, RFC 7672 for SMTP) of our own MX host: the
 * DANE-EE(3) SPKI(1) SHA-256(1) association data of the key the SMTP listener serves, and of the
 * key staged for the next certificate (RFC 7671 §8.1 "current + next"), read from the files the
 * server uses: ACME's certificate (data_dir/acme/cert.pem) when [acme] is on and one is installed,
 * else [tls] cert; the next key is ACME's staged one (data_dir/acme/next_key.pem) with [acme] on,
 * else [tls] next_key. Any thread (it reads files). */
#ifndef MAILWERK_DOMAINS_DOMAIN_TLSA_H
#define MAILWERK_DOMAINS_DOMAIN_TLSA_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#define DOMAIN_TLSA_DIGEST_SIZE 32
/* "3 1 1 " and 64 hex digits */
#define DOMAIN_TLSA_TEXT_SIZE (6 + 2 * DOMAIN_TLSA_DIGEST_SIZE + 1)

struct conf;

struct domain_tlsa_keys {
	bool have_current; /* false: no certificate could be read (current_why says why) */
	unsigned char current[DOMAIN_TLSA_DIGEST_SIZE];
	char current_from[4200]; /* the file it came from */
	char current_why[512];
	bool have_next;    /* false: no key staged, or it could not be read (next_why, "" when none is staged) */
	unsigned char next[DOMAIN_TLSA_DIGEST_SIZE];
	char next_from[4200];
	char next_why[512];
};

/* RFC 6698 §2.1.3 selector 1: SHA-256 of the DER SubjectPublicKeyInfo of a key (public or
 * private: only its public half is encoded) or of a certificate's key. false on failure. */
bool domain_tlsa_key_digest(const EVP_PKEY *key, unsigned char out[DOMAIN_TLSA_DIGEST_SIZE]);
bool domain_tlsa_cert_digest(X509 *cert, unsigned char out[DOMAIN_TLSA_DIGEST_SIZE]);

/* "3 1 1 <hex>" of a digest, in out (DOMAIN_TLSA_TEXT_SIZE). */
void domain_tlsa_text(const unsigned char digest[DOMAIN_TLSA_DIGEST_SIZE], char *out, size_t size);

/* The current and the next key of the setup c. A next key equal to the current one (a staged key
 * just installed) is not a next key. */
void domain_tlsa_keys_load(const struct conf *c, struct domain_tlsa_keys *r);

#endif
