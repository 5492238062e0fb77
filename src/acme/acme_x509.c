/* acme_x509.c — CSR, chain check and TLS-ALPN-01 certificate (acme_x509.h). */
#include "acme/acme_x509.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "util/base64.h"

#define CHAIN_MAX 8

static bool add_san(X509_EXTENSIONS *exts, X509 *cert, const char *const *names, size_t n)
{
	GENERAL_NAMES *gens = GENERAL_NAMES_new();
	bool ok = gens != NULL;
	for (size_t i = 0; ok && i < n; i++) {
		GENERAL_NAME *g = GENERAL_NAME_new();
		ASN1_IA5STRING *s = ASN1_IA5STRING_new();
		ok = g != NULL && s != NULL && ASN1_STRING_set(s, names[i], (int)strlen(names[i])) == 1;
		if (ok) {
			GENERAL_NAME_set0_value(g, GEN_DNS, s);
			ok = sk_GENERAL_NAME_push(gens, g) > 0;
			if (!ok)
				GENERAL_NAME_free(g);
		} else {
			GENERAL_NAME_free(g);
			ASN1_IA5STRING_free(s);
		}
	}
	X509_EXTENSION *ext = ok ? X509V3_EXT_i2d(NID_subject_alt_name, 0, gens) : NULL;
	GENERAL_NAMES_free(gens);
	if (ext == NULL)
		return false;
	ok = exts != NULL ? sk_X509_EXTENSION_push(exts, ext) > 0 : X509_add_ext(cert, ext, -1) == 1;
	if (!ok || exts == NULL)
		X509_EXTENSION_free(ext);
	return ok;
}

char *acme_csr_new(EVP_PKEY *key, const char *const *names, size_t n)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *subj = X509_NAME_new();
	X509_EXTENSIONS *exts = sk_X509_EXTENSION_new_null();
	unsigned char *der = NULL;
	char *out = NULL;
	bool ok = req != NULL && subj != NULL && exts != NULL && n > 0 && X509_REQ_set_version(req, 0) == 1 &&
		  X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC, (const unsigned char *)names[0], -1, -1, 0) == 1 &&
		  X509_REQ_set_subject_name(req, subj) == 1 && X509_REQ_set_pubkey(req, key) == 1 &&
		  add_san(exts, NULL, names, n) && X509_REQ_add_extensions(req, exts) == 1 &&
		  X509_REQ_sign(req, key, EVP_sha256()) > 0;
	int len = ok ? i2d_X509_REQ(req, &der) : -1;
	if (len > 0) {
		size_t size = BASE64_ENCODED_SIZE((size_t)len);
		out = malloc(size);
		if (out != NULL && base64url_encode(der, (size_t)len, out, size) == 0) {
			free(out);
			out = NULL;
		}
	}
	OPENSSL_free(der);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(subj);
	X509_REQ_free(req);
	ERR_clear_error();
	return out;
}

static bool asn1_unix(const ASN1_TIME *t, int64_t *r)
{
	struct tm tm;
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return false;
	*r = (int64_t)timegm(&tm);
	return true;
}

/* Reads every PEM block of buf as a certificate; the count, or -1 when a block is anything else. */
static int read_chain(const char *pem, size_t len, X509 **certs, int max)
{
	if (len > INT32_MAX)
		return -1;
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	int n = 0;
	for (;;) {
		char *name = NULL, *header = NULL;
		unsigned char *data = NULL;
		long dlen = 0;
		if (PEM_read_bio(b, &name, &header, &data, &dlen) != 1) {
			ERR_clear_error();
			break;
		}
		const unsigned char *p = data;
		X509 *x = strcmp(name, "CERTIFICATE") == 0 && n < max ? d2i_X509(NULL, &p, dlen) : NULL;
		bool whole = x != NULL && p == data + dlen;
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(data);
		if (!whole) {
			X509_free(x);
			n = -1 - n; /* marks the failure; the certificates read so far are freed below */
			break;
		}
		certs[n++] = x;
	}
	BIO_free(b);
	if (n < 0) {
		for (int i = 0; i < -1 - n; i++)
			X509_free(certs[i]);
		ERR_clear_error();
		return -1;
	}
	return n;
}

bool acme_chain_check(const char *pem, size_t len, EVP_PKEY *key, const char *const *names, size_t n,
		      int64_t *not_before_r, int64_t *not_after_r, char *error, size_t error_size)
{
	X509 *certs[CHAIN_MAX];
	int count = read_chain(pem, len, certs, CHAIN_MAX);
	if (count <= 0) {
		snprintf(error, error_size, "the certificate chain is not 1 to %d PEM certificates", CHAIN_MAX);
		return false;
	}
	bool ok = false;
	EVP_PKEY *pub = X509_get0_pubkey(certs[0]);
	if (pub == NULL || EVP_PKEY_eq(pub, key) != 1) {
		snprintf(error, error_size, "the certificate is not for our key");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (X509_check_host(certs[0], names[i], 0, X509_CHECK_FLAG_NO_WILDCARDS, NULL) != 1) {
			snprintf(error, error_size, "the certificate is not valid for %s", names[i]);
			goto out;
		}
	if (!asn1_unix(X509_get0_notBefore(certs[0]), not_before_r) ||
	    !asn1_unix(X509_get0_notAfter(certs[0]), not_after_r) || *not_after_r <= *not_before_r) {
		snprintf(error, error_size, "the certificate's validity cannot be read");
		goto out;
	}
	ok = true;
out:
	for (int i = 0; i < count; i++)
		X509_free(certs[i]);
	ERR_clear_error();
	return ok;
}

bool acme_pem_dates(const char *pem, size_t len, int64_t *not_before_r, int64_t *not_after_r)
{
	if (len > INT32_MAX)
		return false;
	/* the first certificate: a key block before it (our cert.pem) is passed over */
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	bool ok = x != NULL && asn1_unix(X509_get0_notBefore(x), not_before_r) &&
		  asn1_unix(X509_get0_notAfter(x), not_after_r);
	X509_free(x);
	BIO_free(b);
	ERR_clear_error();
	return ok;
}

X509 *acme_alpn_cert_new(const char *name, const char *key_authz, EVP_PKEY **key_r)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *subj = X509_NAME_new();
	ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
	ASN1_OCTET_STRING *val = ASN1_OCTET_STRING_new();
	X509_EXTENSION *ext = NULL;
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	/* RFC 8737 §3: the extension's value is the DER of an OCTET STRING of the SHA-256 digest */
	unsigned char inner[2 + SHA256_DIGEST_LENGTH] = {0x04, SHA256_DIGEST_LENGTH};
	SHA256((const unsigned char *)key_authz, strlen(key_authz), inner + 2);
	bool ok = key != NULL && x != NULL && subj != NULL && oid != NULL && val != NULL &&
		  RAND_bytes(serial, sizeof(serial)) == 1 && (bn = BN_bin2bn(serial, sizeof(serial), NULL)) != NULL &&
		  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL && X509_set_version(x, 2) == 1 &&
		  X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC, (const unsigned char *)name, -1, -1, 0) == 1 &&
		  X509_set_subject_name(x, subj) == 1 && X509_set_issuer_name(x, subj) == 1 &&
		  X509_gmtime_adj(X509_getm_notBefore(x), -3600) != NULL &&
		  X509_gmtime_adj(X509_getm_notAfter(x), 7 * 86400) != NULL && X509_set_pubkey(x, key) == 1 &&
		  add_san(NULL, x, &name, 1) && ASN1_OCTET_STRING_set(val, inner, sizeof(inner)) == 1 &&
		  (ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 1, val)) != NULL && X509_add_ext(x, ext, -1) == 1 &&
		  X509_sign(x, key, EVP_sha256()) > 0;
	BN_free(bn);
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(val);
	ASN1_OBJECT_free(oid);
	X509_NAME_free(subj);
	ERR_clear_error();
	if (!ok) {
		X509_free(x);
		EVP_PKEY_free(key);
		return NULL;
	}
	*key_r = key;
	return x;
}

char *acme_key_pem(EVP_PKEY *key, size_t *len_r)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *out = NULL;
	if (b != NULL && PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) == 1) {
		char *p;
		long n = BIO_get_mem_data(b, &p);
		if (n > 0 && (out = malloc((size_t)n + 1)) != NULL) {
			memcpy(out, p, (size_t)n);
			out[n] = '\0';
			*len_r = (size_t)n;
		}
	}
	BIO_free(b);
	return out;
}

EVP_PKEY *acme_key_from_pem(const char *pem, size_t len)
{
	if (len > INT32_MAX)
		return NULL;
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *k = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	ERR_clear_error();
	return k;
}
