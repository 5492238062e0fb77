/* acme_challenge.c — GET /.well-known/acme-challenge/TOKEN (RFC 8555 §8.3): the key authorization
 * of an HTTP-01 challenge the ACME client (acme/) has under way, or 404. No key: the CA asks. */
#include "acme/acme.h"
#include "acme/acme_msg.h"
#include "http/api.h"
#include "http/session.h"
#include "server/server.h"

#include <string.h>

void http_acme_challenge(struct http_call *c)
{
	char key_authz[ACME_TOKEN_MAX + 64];
	const char *token = c->param;
	if (!acme_token_ok(token, strlen(token)) ||
	    !acme_http_key_authz(c->api->srv->acme, token, key_authz, sizeof(key_authz))) {
		http_respond_error(c->s, 404, "not_found", "No ACME challenge with this token is under way.");
		return;
	}
	/* §8.3: the body is the key authorization; application/octet-stream as the RFC's example has it */
	http_respond_body(c->s, 200, "application/octet-stream", key_authz, strlen(key_authz), NULL);
}
