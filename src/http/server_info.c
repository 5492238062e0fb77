/* server_info.c — GET /server, mailwerk's own: the server's name and version and what its TLS
 * certificate says of itself (names, issuer, validity), so that the dashboard and an operator's
 * monitoring see a certificate that is about to expire before clients refuse it. Answered on the
 * loop, which owns the current TLS context (reload replaces it). */
#include <string.h>
#include <time.h>

#include "conf/conf.h"
#include "http/api.h"
#include "http/json.h"
#include "http/session.h"
#include "net/tls.h"
#include "server/server.h"

static json_t *certificate_json(SSL_CTX *ctx, int64_t now)
{
	struct tls_cert_info ci;
	if (!tls_ctx_cert_info(ctx, &ci))
		return json_null();
	json_t *names = json_array();
	for (const char *p = ci.names; *p != '\0';) {
		const char *comma = strchr(p, ',');
		size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		json_array_append_new(names, json_stringn(p, len));
		p += len + (comma != NULL);
	}
	return json_pack("{s:s, s:o, s:s, s:o, s:o, s:I, s:b}", "subject", ci.subject, "names", names, "issuer",
			 ci.issuer, "not_before", http_json_time(ci.not_before * 1000), "not_after",
			 http_json_time(ci.not_after * 1000), "expires_in_days",
			 (json_int_t)tls_cert_days_left(ci.not_after, now), "expired", ci.not_after < now);
}

void http_server_info(struct http_call *c)
{
	struct server *srv = c->s->srv;
	json_t *o = json_pack("{s:s, s:s, s:s, s:o}", "object", "server", "hostname", srv->conf->hostname, "version",
			      MAILWERK_VERSION, "certificate", certificate_json(srv->tls, (int64_t)time(NULL)));
	http_respond_json(c->s, 200, o, NULL);
}
