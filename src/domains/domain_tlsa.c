/* domain_tlsa.c — the TLSA 3 1 1 data of our own keys (domain_tlsa.h). */
#include "domains/domain_tlsa.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "acme/acme.h"
#include "conf/conf.h"
#include "net/dns_parse.h"

bool domain_tlsa_key_digest(const EVP_PKEY *key, unsigned char out[DOMAIN_TLSA_DIGEST_SIZE])
{
	unsigned char *der = NULL;
	int len = key != NULL ? i2d_PUBKEY(key, &der) : -1;
	if (len <= 0)
		return false;
	SHA256(der, (size_t)len, out);
	OPENSSL_free(der);
	return true;
}

bool domain_tlsa_cert_digest(X509 *cert, unsigned char out[DOMAIN_TLSA_DIGEST_SIZE])
{
	unsigned char *der = NULL;
	int len = cert != NULL ? i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der) : -1;
	if (len <= 0)
		return false;
	SHA256(der, (size_t)len, out);
	OPENSSL_free(der);
	return true;
}

void domain_tlsa_text(const unsigned char digest[DOMAIN_TLSA_DIGEST_SIZE], char *out, size_t size)
{
	if (size < DOMAIN_TLSA_TEXT_SIZE) {
		if (size > 0)
			out[0] = '\0';
		return;
	}
	/* RFC 7671 §8.1 recommends DANE-EE(3) SPKI(1) SHA2-256(1) */
	struct dns_tlsa t = {.usage = 3, .selector = 1, .mtype = 1, .data = digest, .len = DOMAIN_TLSA_DIGEST_SIZE};
	dns_tlsa_text(&t, DOMAIN_TLSA_DIGEST_SIZE, out, size);
}

/* The first certificate of a PEM file (other blocks, such as the key in ACME's cert.pem, are
 * skipped). 0, 1 when the file does not exist, -1 with a sentence. */
static int tlsa_cert_file(const char *path, unsigned char out[DOMAIN_TLSA_DIGEST_SIZE], char *why, size_t why_size)
{
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		snprintf(why, why_size, "cannot read %s: %s", path, strerror(errno));
		return errno == ENOENT ? 1 : -1;
	}
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	ERR_clear_error();
	bool ok = x != NULL && domain_tlsa_cert_digest(x, out);
	X509_free(x);
	if (!ok) {
		snprintf(why, why_size, "%s holds no certificate", path);
		return -1;
	}
	return 0;
}

/* The public half of the private key in a PEM file. 0, 1 when the file does not exist, -1 with a
 * sentence. */
static int tlsa_key_file(const char *path, unsigned char out[DOMAIN_TLSA_DIGEST_SIZE], char *why, size_t why_size)
{
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		snprintf(why, why_size, "cannot read %s: %s", path, strerror(errno));
		return errno == ENOENT ? 1 : -1;
	}
	EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	ERR_clear_error();
	bool ok = k != NULL && domain_tlsa_key_digest(k, out);
	EVP_PKEY_free(k);
	if (!ok) {
		snprintf(why, why_size, "%s is not a PEM private key", path);
		return -1;
	}
	return 0;
}

void domain_tlsa_keys_load(const struct conf *c, struct domain_tlsa_keys *r)
{
	memset(r, 0, sizeof(*r));
	bool acme = c->acme_directory != NULL && c->acme_directory[0] != '\0';
	int crc = 1;
	if (acme) {
		/* the listeners serve ACME's certificate once one is installed (acme_tls_ctx); one that is
		 * there but cannot be read is not replaced by [tls] cert, which is then not served */
		snprintf(r->current_from, sizeof(r->current_from), "%s/" ACME_DIR "/" ACME_CERT_FILE, c->data_dir);
		crc = tlsa_cert_file(r->current_from, r->current, r->current_why, sizeof(r->current_why));
	}
	if (crc == 1 && c->tls_cert != NULL && c->tls_cert[0] != '\0') {
		snprintf(r->current_from, sizeof(r->current_from), "%s", c->tls_cert);
		crc = tlsa_cert_file(r->current_from, r->current, r->current_why, sizeof(r->current_why));
	}
	r->have_current = crc == 0;
	if (crc == 1 && c->tls_cert == NULL)
		snprintf(r->current_why, sizeof(r->current_why), "no certificate is set");

	int rc = 1;
	if (acme) {
		snprintf(r->next_from, sizeof(r->next_from), "%s/" ACME_DIR "/" ACME_NEXT_KEY_FILE, c->data_dir);
		rc = tlsa_key_file(r->next_from, r->next, r->next_why, sizeof(r->next_why));
	} else if (c->tls_next_key != NULL && c->tls_next_key[0] != '\0') {
		snprintf(r->next_from, sizeof(r->next_from), "%s", c->tls_next_key);
		rc = tlsa_key_file(r->next_from, r->next, r->next_why, sizeof(r->next_why));
	}
	if (rc == 1) /* none staged: not a problem */
		r->next_why[0] = '\0';
	r->have_next = rc == 0;
	/* a staged key that is in use already (between installing it and staging the one after) */
	if (r->have_next && r->have_current && memcmp(r->next, r->current, sizeof(r->next)) == 0)
		r->have_next = false;
}
