/* tls.c — server-side SSL_CTX construction. */
#include "net/tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "conf/conf.h"

static void tls_error(char *error_r, size_t size, const char *what, const char *path)
{
	char ossl[256];
	ERR_error_string_n(ERR_get_error(), ossl, sizeof(ossl));
	snprintf(error_r, size, "%s %s: %s", what, path, ossl);
	ERR_clear_error();
}

static SSL_CTX *ctx_base(char *error_r, size_t error_size)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		snprintf(error_r, error_size, "cannot create a TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* no renegotiation; prefer our cipher order; tickets off so keys need no rotation */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	return ctx;
}

SSL_CTX *tls_server_ctx_new_pem(const char *chain, size_t chain_len, EVP_PKEY *key, char *error_r, size_t error_size)
{
	SSL_CTX *ctx = chain_len <= INT32_MAX ? ctx_base(error_r, error_size) : NULL;
	BIO *b = ctx != NULL ? BIO_new_mem_buf(chain, (int)chain_len) : NULL;
	X509 *leaf = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	bool ok = leaf != NULL && SSL_CTX_use_certificate(ctx, leaf) == 1;
	X509 *ca;
	while (ok && (ca = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
		if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) { /* takes ca on success */
			X509_free(ca);
			ok = false;
		}
	ERR_clear_error(); /* the end of the chain reads as an error */
	ok = ok && SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1;
	X509_free(leaf);
	BIO_free(b);
	if (!ok) {
		if (ctx != NULL)
			tls_error(error_r, error_size, "cannot use", "the new certificate");
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

SSL_CTX *tls_server_ctx_new(const struct conf *c, char *error_r, size_t error_size)
{
	SSL_CTX *ctx = ctx_base(error_r, error_size);
	if (ctx == NULL)
		return NULL;
	if (SSL_CTX_use_certificate_chain_file(ctx, c->tls_cert) != 1) {
		tls_error(error_r, error_size, "cannot load certificate", c->tls_cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, c->tls_key, SSL_FILETYPE_PEM) != 1) {
		tls_error(error_r, error_size, "cannot load private key", c->tls_key);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_error(error_r, error_size, "private key does not match certificate", c->tls_cert);
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* One entry of a name: its commonName when it has one, else the whole name on one line. */
static void name_text(const X509_NAME *n, char *out, size_t size)
{
	out[0] = '\0';
	if (n == NULL)
		return;
	int i = X509_NAME_get_index_by_NID(n, NID_commonName, -1);
	const ASN1_STRING *v = i >= 0 ? X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i)) : NULL;
	if (v != NULL) {
		unsigned char *utf8 = NULL;
		int len = ASN1_STRING_to_UTF8(&utf8, v);
		if (len >= 0)
			snprintf(out, size, "%.*s", len, (const char *)utf8);
		OPENSSL_free(utf8);
		return;
	}
	X509_NAME_oneline(n, out, (int)size);
}

static bool asn1_unix(const ASN1_TIME *t, int64_t *r)
{
	struct tm tm;
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return false;
	*r = (int64_t)timegm(&tm);
	return true;
}

bool tls_ctx_cert_info(SSL_CTX *ctx, struct tls_cert_info *r)
{
	return tls_cert_info_of(ctx != NULL ? SSL_CTX_get0_certificate(ctx) : NULL, r);
}

bool tls_cert_info_of(X509 *x, struct tls_cert_info *r)
{
	memset(r, 0, sizeof(*r));
	if (x == NULL || !asn1_unix(X509_get0_notBefore(x), &r->not_before) ||
	    !asn1_unix(X509_get0_notAfter(x), &r->not_after))
		return false;
	name_text(X509_get_subject_name(x), r->subject, sizeof(r->subject));
	name_text(X509_get_issuer_name(x), r->issuer, sizeof(r->issuer));
	GENERAL_NAMES *alt = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	size_t used = 0;
	for (int i = 0; alt != NULL && i < sk_GENERAL_NAME_num(alt); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(alt, i);
		if (g->type != GEN_DNS)
			continue;
		const unsigned char *d = ASN1_STRING_get0_data(g->d.dNSName);
		int len = ASN1_STRING_length(g->d.dNSName);
		/* a name with a NUL or a comma in it is no host name: left out rather than shown wrong */
		if (len <= 0 || memchr(d, '\0', (size_t)len) != NULL || memchr(d, ',', (size_t)len) != NULL ||
		    used + (size_t)len + 2 > sizeof(r->names))
			continue;
		if (used > 0)
			r->names[used++] = ',';
		memcpy(r->names + used, d, (size_t)len);
		used += (size_t)len;
		r->names[used] = '\0';
	}
	GENERAL_NAMES_free(alt);
	return true;
}

int64_t tls_cert_days_left(int64_t not_after, int64_t now)
{
	int64_t left = not_after - now;
	return left >= 0 ? left / 86400 : -((-left + 86399) / 86400);
}
