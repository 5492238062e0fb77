/* acme_req.c — the ACME client's requests (acme_int.h): GET of the directory, HEAD of newNonce, and
 * POSTs signed with the account key (RFC 8555 §6.2) with a fresh nonce each (§6.5), sent again
 * after badNonce; the SSRF rule for the CA's URLs; Retry-After within bounds. */
#include "acme/acme_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf/conf.h"
#include "server/server.h"
#include "util/log.h"

#define ACME_TIMEOUT_MS 30000          /* one request */
#define ACME_BODY_MAX (256 * 1024)     /* an answer we read; a chain of 8 certificates fits well */
#define ACME_BAD_NONCE_RETRIES 5       /* §6.5: the client SHOULD retry; a bound on it */
#define ACME_POLL_DEFAULT 1            /* seconds between polls without Retry-After */
#define ACME_POLL_MIN 1                /* Retry-After is honoured within these bounds (§7.5.1, §7.4) */
#define ACME_POLL_MAX 60

/* What goes into a JWS header unescaped (acme_jws.c): printable, no quote, no backslash. */
static bool text_safe(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e || *s == '"' || *s == '\\')
			return false;
	return true;
}

bool acme_url_ok(const char *url)
{
	struct http_url u;
	const char *err;
	return url[0] != '\0' && strlen(url) < ACME_URL_SIZE && text_safe(url) &&
	       http_url_parse(url, strlen(url), &u, &err) == HTTP_URL_OK && u.https;
}

/* The SSRF rule of net/http_client.h, for ACME: the operator named the directory, so its host may
 * be on a private address (a CA in one's own network, or a test CA on loopback); any other host an
 * answer points us to is held to the public-only rule. */
static bool url_same_origin(const struct acme *a, const char *url)
{
	struct http_url u;
	const char *err;
	return http_url_parse(url, strlen(url), &u, &err) == HTTP_URL_OK && u.port == a->origin.port &&
	       strcmp(u.host, a->origin.host) == 0;
}

static void call_done(void *arg, const struct http_client_result *r);

void acme_call_start(struct acme *a, enum acme_req_kind kind, const char *url, const char *body, size_t len)
{
	const struct conf *c = a->srv->conf;
	const char *headers[2];
	size_t n = 0;
	enum http_client_method method = kind == ACME_REQ_GET ? HTTP_CLIENT_GET
					 : kind == ACME_REQ_NONCE ? HTTP_CLIENT_HEAD
								  : HTTP_CLIENT_POST;
	if (method == HTTP_CLIENT_POST)
		headers[n++] = "Content-Type: application/jose+json"; /* §6.2 */
	headers[n++] = a->req_want_pem && kind == ACME_REQ_POST ? "Accept: application/pem-certificate-chain"
								: "Accept: application/json";
	struct http_client_call call = {
		.method = method,
		.url = url,
		.headers = headers,
		.n_headers = n,
		.body = body,
		.body_len = len,
		.max_body = ACME_BODY_MAX,
		.opts = {.timeout_ms = ACME_TIMEOUT_MS,
			 .ca_file = c->acme_ca_file,
			 .allow_private = url_same_origin(a, url),
			 .private_setting = "ACME at a host other than [acme] directory's"},
	};
	char err[300];
	a->req_kind = kind;
	if (http_client_request(a->http, &call, call_done, a, &a->req, err, sizeof(err)) != 0)
		acme_run_fail(a, "request", "%s: %s", url, err);
}

/* Sends the POST in a->req_* with the nonce in hand, or first gets one (§7.2). */
static void post_send(struct acme *a)
{
	if (a->nonce[0] == '\0') {
		acme_call_start(a, ACME_REQ_NONCE, a->dir.new_nonce, NULL, 0);
		return;
	}
	size_t len = 0;
	char *jws = acme_jws_sign(a->account, a->req_jwk ? NULL : a->kid, a->nonce, a->req_url, a->req_payload, &len);
	a->nonce[0] = '\0'; /* each is used once (§6.5) */
	if (jws == NULL) {
		acme_run_fail(a, "sign", "cannot sign the request to %s", a->req_url);
		return;
	}
	acme_call_start(a, ACME_REQ_POST, a->req_url, jws, len);
	free(jws);
}

void acme_post(struct acme *a, const char *url, const char *payload, bool jwk, bool pem, acme_handler_fn *handler)
{
	free(a->req_payload);
	a->req_payload = NULL;
	if (payload != NULL && (a->req_payload = strdup(payload)) == NULL) {
		acme_run_fail(a, "memory", "out of memory");
		return;
	}
	snprintf(a->req_url, sizeof(a->req_url), "%s", url);
	a->req_jwk = jwk;
	a->req_want_pem = pem;
	a->req_handler = handler;
	a->bad_nonces = 0;
	post_send(a);
}

/* An answer that is not what a step wanted: its problem document says why (§6.7). */
void acme_fail_answer(struct acme *a, const char *reason, const struct http_client_result *r)
{
	struct acme_problem p;
	const char *err;
	if (r->data != NULL && acme_problem_parse(r->data, r->data_len, &p, &err) == ACME_MSG_OK && p.type[0] != '\0')
		acme_run_fail(a, reason, "%s answered %ld: %s %s", a->req_url, r->status, p.type, p.detail);
	else
		acme_run_fail(a, reason, "%s answered %ld", a->req_url, r->status);
}

static void call_done(void *arg, const struct http_client_result *r)
{
	struct acme *a = arg;
	a->req = NULL;
	/* §6.5.1: every answer may carry the next nonce; only base64url is taken (it goes into a header) */
	if (r->replay_nonce != NULL && r->replay_nonce[0] != '\0' && strlen(r->replay_nonce) <= ACME_NONCE_MAX &&
	    acme_token_ok(r->replay_nonce, strlen(r->replay_nonce)))
		snprintf(a->nonce, sizeof(a->nonce), "%s", r->replay_nonce);
	if (r->error != NULL) {
		free(r->data);
		acme_run_fail(a, "unreachable", "%s", r->error);
		return;
	}
	if (a->req_kind == ACME_REQ_NONCE) {
		free(r->data);
		if (a->nonce[0] == '\0')
			acme_run_fail(a, "no_nonce", "%s answered %ld without a usable Replay-Nonce", a->dir.new_nonce, r->status);
		else
			post_send(a);
		return;
	}
	if (a->req_kind == ACME_REQ_POST && r->status == 400) {
		struct acme_problem p;
		const char *err;
		if (r->data != NULL && acme_problem_parse(r->data, r->data_len, &p, &err) == ACME_MSG_OK &&
		    acme_problem_is_bad_nonce(&p) && a->bad_nonces < ACME_BAD_NONCE_RETRIES) {
			/* §6.5: the error carries a fresh nonce; the same request goes again with it */
			a->bad_nonces++;
			log_info("event=acme_bad_nonce url=%s retry=%u", a->req_url, a->bad_nonces);
			free(r->data);
			post_send(a);
			return;
		}
	}
	acme_handler_fn *h = a->req_handler;
	h(a, r);
	free(r->data);
}

unsigned acme_retry_after_wait(const struct http_client_result *r)
{
	uint64_t s;
	if (r == NULL || !acme_retry_after_parse(r->retry_after, (int64_t)time(NULL), &s))
		return ACME_POLL_DEFAULT;
	return s < ACME_POLL_MIN ? ACME_POLL_MIN : s > ACME_POLL_MAX ? ACME_POLL_MAX : (unsigned)s;
}
