/* acme_tls.c — TLS-ALPN-01 (RFC 8737 §3) in the listeners' handshakes: a ClientHello that offers
 * "acme-tls/1" for a name whose challenge is under way gets the acmeIdentifier
 * certificate and that protocol; one that offers it for any other name is refused at once (no
 * certificate of ours is shown to a validation we did not start). Every other handshake is as
 * before: no ALPN is selected. */
#include "acme/acme_int.h"

#include <string.h>
#include <strings.h>

#include <openssl/ssl.h>

#include "acme/acme_hello.h"
#include "util/log.h"

static int hello_cb(SSL *s, int *alert, void *arg)
{
	struct acme *a = arg;
	const unsigned char *ext;
	size_t len;
	if (SSL_client_hello_get0_ext(s, TLSEXT_TYPE_application_layer_protocol_negotiation, &ext, &len) != 1 ||
	    !acme_hello_alpn_offers(ext, len, ACME_ALPN_PROTOCOL))
		return SSL_CLIENT_HELLO_SUCCESS;
	char name[256];
	if (SSL_client_hello_get0_ext(s, TLSEXT_TYPE_server_name, &ext, &len) != 1 ||
	    !acme_hello_server_name(ext, len, name, sizeof(name))) {
		*alert = SSL_AD_UNRECOGNIZED_NAME;
		return SSL_CLIENT_HELLO_ERROR;
	}
	for (size_t i = 0; i < a->n_answers; i++) {
		const struct acme_answer *w = &a->answers[i];
		if (w->type != ACME_CHALLENGE_TLSALPN01 || w->cert == NULL || strcasecmp(w->name, name) != 0)
			continue;
		if (SSL_use_certificate(s, w->cert) != 1 || SSL_use_PrivateKey(s, w->key) != 1) {
			*alert = SSL_AD_INTERNAL_ERROR;
			return SSL_CLIENT_HELLO_ERROR;
		}
		log_info("event=acme_tls_alpn name=%s", name);
		return SSL_CLIENT_HELLO_SUCCESS;
	}
	/* RFC 8737 §3: acme-tls/1 is only for validation; nothing else is spoken on it */
	*alert = SSL_AD_NO_APPLICATION_PROTOCOL;
	return SSL_CLIENT_HELLO_ERROR;
}

static int alpn_cb(SSL *s, const unsigned char **out, unsigned char *outlen, const unsigned char *in, unsigned inlen,
		   void *arg)
{
	struct acme *a = arg;
	(void)in, (void)inlen; /* hello_cb has read the offer: it only set a challenge's certificate if it has it */
	X509 *mine = SSL_get_certificate(s);
	bool answering = false;
	for (size_t i = 0; i < a->n_answers && !answering; i++)
		answering = a->answers[i].cert != NULL && a->answers[i].cert == mine;
	if (!answering)
		return SSL_TLSEXT_ERR_NOACK; /* as without the callback: no protocol is negotiated */
	static const unsigned char proto[] = ACME_ALPN_PROTOCOL;
	*out = proto;
	*outlen = (unsigned char)(sizeof(proto) - 1);
	return SSL_TLSEXT_ERR_OK;
}

void acme_tls_attach(struct acme *a, SSL_CTX *ctx)
{
	SSL_CTX_set_client_hello_cb(ctx, hello_cb, a);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, a);
}
