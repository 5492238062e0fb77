/* tls.c — server-side SSL_CTX construction. */
#include "net/tls.h"

#include <openssl/err.h>
#include <stdio.h>

#include "conf/conf.h"

static void tls_error(char *error_r, size_t size, const char *what, const char *path)
{
	char ossl[256];
	ERR_error_string_n(ERR_get_error(), ossl, sizeof(ossl));
	snprintf(error_r, size, "%s %s: %s", what, path, ossl);
	ERR_clear_error();
}

SSL_CTX *tls_server_ctx_new(const struct conf *c, char *error_r, size_t error_size)
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
