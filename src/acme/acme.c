/* acme.c — the ACME client (acme.h): one run is directory → newAccount → newOrder → each
 * authorization's challenge → finalize with a CSR → the certificate → installed, each step one
 * request on the loop whose answer starts the next. Every POST is a JWS with a fresh nonce
 * (RFC 8555 §6.2, §6.5); a badNonce answer is sent again with the nonce it brought. */
#include "acme/acme_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "acme/acme_x509.h"
#include "conf/conf.h"
#include "mailbox/users.h"
#include "net/tls.h"
#include "server/server.h"
#include "util/base64.h"
#include "util/date.h"
#include "util/list.h"
#include "util/log.h"
#include "util/worker.h"

#define ACME_VALIDATION_TIMEOUT_MS (10 * 60 * 1000) /* a challenge or a finalize must end within */

static const char *const step_names[] = {"idle", "names", "directory", "account", "order", "authorization",
					 "challenge", "poll_authorization", "finalize", "poll_order", "certificate",
					 "install", "revoke"};

const char *acme_step_str(enum acme_step s)
{
	return (unsigned)s < sizeof(step_names) / sizeof(step_names[0]) ? step_names[s] : "?";
}

static void run_start(struct acme *a);
static void order_next(struct acme *a);
static void order_new(struct acme *a);

/* ---- the schedule ---- */

static void timer_at(struct acme *a, int64_t when)
{
	int64_t now = (int64_t)time(NULL);
	a->next_at = when;
	a->wait_fn = NULL;
	struct timeval tv = {.tv_sec = when > now ? (time_t)(when - now) : 0};
	evtimer_add(a->timer, &tv);
}

/* A wait within a run (between polls): fn runs when it ends. */
static void wait_then(struct acme *a, unsigned seconds, void (*fn)(struct acme *a))
{
	a->wait_fn = fn;
	struct timeval tv = {.tv_sec = seconds};
	evtimer_add(a->timer, &tv);
}

/* RFC 8555 leaves renewal to the client; two thirds of the lifetime, as Let's Encrypt advises
 * (30 days before the end of its 90), keeps a third for failures and their retries */
static int64_t renew_time(int64_t not_before, int64_t not_after)
{
	return not_before + (not_after - not_before) * 2 / 3;
}

static void schedule_next(struct acme *a)
{
	timer_at(a, a->chain != NULL ? renew_time(a->not_before, a->not_after) : (int64_t)time(NULL));
}

static void answers_clear(struct acme *a)
{
	for (size_t i = 0; i < a->n_answers; i++) {
		X509_free(a->answers[i].cert);
		EVP_PKEY_free(a->answers[i].key);
	}
	memset(a->answers, 0, sizeof(a->answers));
	a->n_answers = 0;
}

static void run_end(struct acme *a)
{
	answers_clear(a);
	EVP_PKEY_free(a->new_key);
	a->new_key = NULL;
	free(a->new_chain);
	a->new_chain = NULL;
	free(a->req_payload);
	a->req_payload = NULL;
	a->req = NULL;
	a->req_handler = NULL;
	a->wait_fn = NULL;
	a->finalized = false;
	a->step = ACME_STEP_IDLE;
	a->revoke = false;
}

void acme_run_fail(struct acme *a, const char *reason, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(a->last_error, sizeof(a->last_error), fmt, ap);
	va_end(ap);
	const struct conf *c = a->srv->conf;
	size_t i = a->failures < c->acme_retry_count ? a->failures : c->acme_retry_count - 1;
	unsigned wait = c->acme_retry_schedule[i];
	a->failures++;
	char err[LOG_VALUE_SIZE(sizeof(a->last_error))];
	log_warn("event=acme_failed step=%s reason=%s failures=%u retry_in=%u certificate_kept=%s error=%s",
		 acme_step_str(a->step), reason, a->failures, wait, a->chain != NULL ? "yes" : "no",
		 log_safe(err, sizeof(err), a->last_error, (unsigned)strlen(a->last_error)));
	run_end(a);
	timer_at(a, (int64_t)time(NULL) + wait);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct acme *a = arg;
	(void)fd, (void)what;
	if (a->wait_fn != NULL) {
		void (*fn)(struct acme *a) = a->wait_fn;
		a->wait_fn = NULL;
		fn(a);
	} else if (a->step == ACME_STEP_IDLE) {
		run_start(a);
	}
}

/* ---- the steps ---- */

static void on_installed(struct acme *a, bool ok, const char *error)
{
	if (!ok) {
		acme_run_fail(a, "store", "%s", error);
		return;
	}
	char err[300];
	SSL_CTX *ctx = tls_server_ctx_new_pem(a->new_chain, a->new_chain_len, a->new_key, err, sizeof(err));
	if (ctx == NULL) {
		acme_run_fail(a, "install", "%s", err);
		return;
	}
	acme_tls_attach(a, ctx);
	/* sessions keep the context they started with (an SSL holds its own reference); new ones get
	 * this one: nothing is dropped (as at a reload) */
	SSL_CTX_free(a->ctx);
	a->ctx = ctx;
	SSL_CTX_up_ref(ctx);
	SSL_CTX_free(a->srv->tls);
	a->srv->tls = ctx;
	free(a->chain);
	EVP_PKEY_free(a->key);
	a->chain = a->new_chain;
	a->chain_len = a->new_chain_len;
	a->key = a->new_key;
	a->new_chain = NULL;
	a->new_key = NULL;
	a->not_before = a->new_not_before;
	a->not_after = a->new_not_after;
	a->failures = 0;
	a->last_error[0] = '\0';
	char names[ACME_NAMES_MAX * ACME_NAME_SIZE] = "";
	for (size_t i = 0; i < a->n_names; i++)
		snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", i > 0 ? "," : "", a->names[i]);
	log_info("event=acme_installed names=%s not_before=%lld not_after=%lld renew_at=%lld", names,
		 (long long)a->not_before, (long long)a->not_after, (long long)renew_time(a->not_before, a->not_after));
	run_end(a);
	schedule_next(a);
	/* the key just installed was the staged one: the next certificate gets a new one, staged now
	 * so that its record has the whole lifetime of this certificate to be published */
	acme_store_next_key_stage(a, "installed");
}

static void on_certificate(struct acme *a, const struct http_client_result *r)
{
	if (r->status != 200 || r->data == NULL) {
		acme_fail_answer(a, "certificate", r);
		return;
	}
	char err[300];
	const char *names[ACME_NAMES_MAX];
	for (size_t i = 0; i < a->n_names; i++)
		names[i] = a->names[i];
	if (!acme_chain_check(r->data, r->data_len, a->new_key, names, a->n_names, &a->new_not_before,
			      &a->new_not_after, err, sizeof(err))) {
		acme_run_fail(a, "bad_certificate", "%s", err);
		return;
	}
	if ((a->new_chain = malloc(r->data_len + 1)) == NULL) {
		acme_run_fail(a, "memory", "out of memory");
		return;
	}
	memcpy(a->new_chain, r->data, r->data_len + 1);
	a->new_chain_len = r->data_len;
	a->step = ACME_STEP_INSTALL;
	acme_store_save_cert(a, on_installed);
}

static void certificate_get(struct acme *a)
{
	a->step = ACME_STEP_CERTIFICATE;
	acme_post(a, a->order.certificate, NULL, false, true, on_certificate);
}

/* An order as the server has it now (after newOrder, finalize or a poll): on to what it needs. */
static void on_order_state(struct acme *a, const struct http_client_result *r)
{
	const char *err;
	if (r->status != 200 && r->status != 201) {
		acme_fail_answer(a, "order", r);
		return;
	}
	if (r->data == NULL || acme_order_parse(r->data, r->data_len, &a->order, &err) != ACME_MSG_OK) {
		acme_run_fail(a, "bad_answer", "the order: %s", r->data == NULL ? "no body" : err);
		return;
	}
	if (a->order.status == ACME_STATUS_PROCESSING || (a->order.status == ACME_STATUS_READY && a->finalized) ||
	    (a->order.status == ACME_STATUS_PENDING && a->authz_i >= a->order.n_authz && a->order.n_authz > 0 &&
	     a->step == ACME_STEP_POLL_ORDER)) {
		if (date_mono_ms() > a->poll_deadline_ms) {
			acme_run_fail(a, "timeout", "the order is still %s", acme_status_str(a->order.status));
			return;
		}
		a->step = ACME_STEP_POLL_ORDER;
		wait_then(a, acme_retry_after_wait(r), order_next);
		return;
	}
	order_next(a);
}

static void order_poll(struct acme *a)
{
	a->step = ACME_STEP_POLL_ORDER;
	acme_post(a, a->order_url, NULL, false, false, on_order_state);
}

static void finalize(struct acme *a)
{
	a->step = ACME_STEP_FINALIZE;
	EVP_PKEY_free(a->new_key);
	/* a new key for every certificate (nothing that saw an old one can use the next), and the one
	 * staged ahead, whose TLSA record may be published already (RFC 7671 §8.1); without one (it
	 * could not be written, or is being written) a fresh key, which a published 3 1 1 record of
	 * the staged one does not match */
	if (a->next_key != NULL && EVP_PKEY_up_ref(a->next_key) == 1) {
		a->new_key = a->next_key;
		log_info("event=acme_key key=staged");
	} else if ((a->new_key = acme_key_new()) == NULL) {
		acme_run_fail(a, "key", "cannot make a P-256 key");
		return;
	} else {
		log_warn("event=acme_key key=new reason=%s", a->staging ? "staging_under_way" : "none_staged");
	}
	const char *names[ACME_NAMES_MAX];
	for (size_t i = 0; i < a->n_names; i++)
		names[i] = a->names[i];
	char *csr = acme_csr_new(a->new_key, names, a->n_names);
	json_t *p = csr != NULL ? json_pack("{ss}", "csr", csr) : NULL;
	char *text = p != NULL ? json_dumps(p, JSON_COMPACT) : NULL;
	free(csr);
	json_decref(p);
	if (text == NULL) {
		acme_run_fail(a, "csr", "cannot make the CSR");
		return;
	}
	a->finalized = true;
	a->poll_deadline_ms = date_mono_ms() + ACME_VALIDATION_TIMEOUT_MS;
	acme_post(a, a->order.finalize, text, false, false, on_order_state);
	free(text);
}

static void authz_next(struct acme *a);

static struct acme_answer *answer_for(struct acme *a, const char *name)
{
	for (size_t i = 0; i < a->n_answers; i++)
		if (strcasecmp(a->answers[i].name, name) == 0)
			return &a->answers[i];
	return NULL;
}

static void answer_drop(struct acme *a, const char *name)
{
	struct acme_answer *w = answer_for(a, name);
	if (w == NULL)
		return;
	X509_free(w->cert);
	EVP_PKEY_free(w->key);
	*w = a->answers[--a->n_answers];
	memset(&a->answers[a->n_answers], 0, sizeof(a->answers[0]));
}

static void authz_poll(struct acme *a);
static void on_challenge_posted(struct acme *a, const struct http_client_result *r);

static void on_authz_state(struct acme *a, const struct http_client_result *r)
{
	struct acme_authz z;
	const char *err;
	if (r->status != 200) {
		acme_fail_answer(a, "authorization", r);
		return;
	}
	if (r->data == NULL || acme_authz_parse(r->data, r->data_len, &z, &err) != ACME_MSG_OK) {
		acme_run_fail(a, "bad_answer", "the authorization: %s", r->data == NULL ? "no body" : err);
		return;
	}
	bool ours = false;
	for (size_t i = 0; i < a->n_names; i++)
		ours = ours || strcasecmp(a->names[i], z.name) == 0;
	if (!ours) {
		acme_run_fail(a, "bad_answer", "an authorization for %s, which we did not ask for", z.name);
		return;
	}
	if (z.status == ACME_STATUS_VALID) {
		log_info("event=acme_authorized name=%s", z.name);
		answer_drop(a, z.name);
		a->authz_i++;
		authz_next(a);
		return;
	}
	if (z.status != ACME_STATUS_PENDING) {
		answer_drop(a, z.name);
		acme_run_fail(a, "challenge_failed", "%s: the authorization is %s: %s", z.name, acme_status_str(z.status),
			 z.error[0] != '\0' ? z.error : "no reason given");
		return;
	}
	if (a->step == ACME_STEP_POLL_AUTHZ) {
		if (date_mono_ms() > a->poll_deadline_ms) {
			acme_run_fail(a, "timeout", "%s: still pending after the challenge", z.name);
			return;
		}
		wait_then(a, acme_retry_after_wait(r), authz_poll);
		return;
	}
	/* pending, and not answered yet: the configured challenge */
	enum acme_challenge_type want = a->srv->conf->acme_challenge == CONF_ACME_HTTP01 ? ACME_CHALLENGE_HTTP01
											   : ACME_CHALLENGE_TLSALPN01;
	const struct acme_challenge *ch = NULL;
	for (size_t i = 0; i < z.n_challenges && ch == NULL; i++)
		if (z.challenges[i].type == want)
			ch = &z.challenges[i];
	if (ch == NULL || !acme_url_ok(ch->url)) {
		acme_run_fail(a, "no_challenge", "%s: the CA offers no %s challenge", z.name,
			 conf_acme_challenge_str(a->srv->conf->acme_challenge));
		return;
	}
	answer_drop(a, z.name);
	struct acme_answer *w = &a->answers[a->n_answers];
	memset(w, 0, sizeof(*w));
	w->type = want;
	snprintf(w->name, sizeof(w->name), "%s", z.name);
	snprintf(w->token, sizeof(w->token), "%s", ch->token);
	/* §8.1: keyAuthorization = token || '.' || base64url(Thumbprint(accountKey)) */
	snprintf(w->key_authz, sizeof(w->key_authz), "%s.%s", ch->token, a->thumbprint);
	if (want == ACME_CHALLENGE_TLSALPN01 && (w->cert = acme_alpn_cert_new(z.name, w->key_authz, &w->key)) == NULL) {
		acme_run_fail(a, "key", "cannot make the TLS-ALPN-01 certificate for %s", z.name);
		return;
	}
	a->n_answers++;
	a->step = ACME_STEP_CHALLENGE;
	a->poll_deadline_ms = date_mono_ms() + ACME_VALIDATION_TIMEOUT_MS;
	/* the token is no secret: the CA fetches it over plain HTTP (§8.3) */
	log_info("event=acme_challenge name=%s type=%s token=%s", z.name,
		 conf_acme_challenge_str(a->srv->conf->acme_challenge), w->token);
	/* §7.5.1: the client says it is ready with an empty object */
	char url[ACME_URL_SIZE];
	snprintf(url, sizeof(url), "%s", ch->url);
	acme_post(a, url, "{}", false, false, on_challenge_posted);
}

static void on_challenge_posted(struct acme *a, const struct http_client_result *r)
{
	if (r->status != 200) {
		acme_fail_answer(a, "challenge", r);
		return;
	}
	a->step = ACME_STEP_POLL_AUTHZ;
	wait_then(a, acme_retry_after_wait(r), authz_poll);
}

static void authz_poll(struct acme *a)
{
	a->step = ACME_STEP_POLL_AUTHZ;
	acme_post(a, a->authz_url, NULL, false, false, on_authz_state);
}

static void authz_next(struct acme *a)
{
	if (a->authz_i >= a->order.n_authz) {
		/* every authorization is valid: the order becomes ready (§7.1.6) */
		a->poll_deadline_ms = date_mono_ms() + ACME_VALIDATION_TIMEOUT_MS;
		order_poll(a);
		return;
	}
	a->step = ACME_STEP_AUTHZ;
	snprintf(a->authz_url, sizeof(a->authz_url), "%s", a->order.authz[a->authz_i]);
	acme_post(a, a->authz_url, NULL, false, false, on_authz_state);
}

static void order_next(struct acme *a)
{
	switch (a->order.status) {
	case ACME_STATUS_PENDING:
		if (a->step == ACME_STEP_POLL_ORDER && a->authz_i >= a->order.n_authz) {
			order_poll(a);
			return;
		}
		a->authz_i = 0;
		authz_next(a);
		return;
	case ACME_STATUS_READY:
		if (a->finalized) {
			order_poll(a);
			return;
		}
		finalize(a);
		return;
	case ACME_STATUS_PROCESSING:
		order_poll(a);
		return;
	case ACME_STATUS_VALID:
		if (!acme_url_ok(a->order.certificate)) {
			acme_run_fail(a, "bad_answer", "the certificate URL is refused");
			return;
		}
		if (!a->finalized) { /* an order valid before we finalized has no key of ours */
			acme_run_fail(a, "bad_answer", "the order was valid before it was finalized");
			return;
		}
		certificate_get(a);
		return;
	default:
		acme_run_fail(a, "order_failed", "the order is %s", acme_status_str(a->order.status));
		return;
	}
}

static void on_order_new(struct acme *a, const struct http_client_result *r)
{
	if (r->status != 201 && r->status != 200) {
		acme_fail_answer(a, "order", r);
		return;
	}
	if (r->location == NULL || !acme_url_ok(r->location)) {
		acme_run_fail(a, "bad_answer", "newOrder answered without a usable Location");
		return;
	}
	snprintf(a->order_url, sizeof(a->order_url), "%s", r->location);
	on_order_state(a, r);
}

static void order_new(struct acme *a)
{
	a->step = ACME_STEP_ORDER;
	json_t *ids = json_array();
	for (size_t i = 0; ids != NULL && i < a->n_names; i++)
		json_array_append_new(ids, json_pack("{ssss}", "type", "dns", "value", a->names[i]));
	json_t *p = ids != NULL ? json_pack("{so}", "identifiers", ids) : NULL;
	char *text = p != NULL ? json_dumps(p, JSON_COMPACT) : NULL;
	json_decref(p);
	if (text == NULL) {
		acme_run_fail(a, "memory", "out of memory");
		return;
	}
	a->finalized = false;
	acme_post(a, a->dir.new_order, text, false, false, on_order_new);
	free(text);
}

static void on_revoked(struct acme *a, const struct http_client_result *r)
{
	if (r->status != 200) {
		acme_fail_answer(a, "revoke", r);
		return;
	}
	log_info("event=acme_revoked not_after=%lld", (long long)a->not_after);
	order_new(a);
}

/* §7.6: revokeCert with the DER of the certificate in use, signed by the account */
static void revoke(struct acme *a)
{
	a->step = ACME_STEP_REVOKE;
	if (a->dir.revoke_cert[0] == '\0' || a->chain == NULL) {
		acme_run_fail(a, "revoke", "%s", a->chain == NULL ? "no certificate from ACME to revoke" : "the CA offers no revokeCert");
		return;
	}
	BIO *b = BIO_new_mem_buf(a->chain, (int)a->chain_len);
	X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	unsigned char *der = NULL;
	int len = x != NULL ? i2d_X509(x, &der) : -1;
	X509_free(x);
	char *b64 = len > 0 ? malloc(BASE64_ENCODED_SIZE((size_t)len)) : NULL;
	json_t *p = NULL;
	if (b64 != NULL && base64url_encode(der, (size_t)len, b64, BASE64_ENCODED_SIZE((size_t)len)) > 0)
		p = json_pack("{ss}", "certificate", b64);
	OPENSSL_free(der);
	free(b64);
	char *text = p != NULL ? json_dumps(p, JSON_COMPACT) : NULL;
	json_decref(p);
	if (text == NULL) {
		acme_run_fail(a, "revoke", "cannot read the certificate in use");
		return;
	}
	acme_post(a, a->dir.revoke_cert, text, false, false, on_revoked);
	free(text);
}

static void on_account(struct acme *a, const struct http_client_result *r)
{
	/* §7.3: 201 for a new account, 200 for the one this key already has */
	if (r->status != 201 && r->status != 200) {
		acme_fail_answer(a, "account", r);
		return;
	}
	if (r->location == NULL || !acme_url_ok(r->location)) {
		acme_run_fail(a, "bad_answer", "newAccount answered without a usable Location");
		return;
	}
	if (strcmp(a->kid, r->location) != 0)
		log_info("event=acme_account url=%s new=%s terms=%s", r->location, r->status == 201 ? "yes" : "no",
			 a->dir.terms[0] != '\0' ? a->dir.terms : "none");
	snprintf(a->kid, sizeof(a->kid), "%s", r->location);
	if (a->revoke)
		revoke(a);
	else
		order_new(a);
}

static void on_directory(struct acme *a, const struct http_client_result *r)
{
	const char *err;
	if (r->status != 200 || r->data == NULL) {
		acme_run_fail(a, "directory", "%s answered %ld", a->directory_url, r->status);
		return;
	}
	if (acme_directory_parse(r->data, r->data_len, &a->dir, &err) != ACME_MSG_OK || !acme_url_ok(a->dir.new_nonce) ||
	    !acme_url_ok(a->dir.new_account) || !acme_url_ok(a->dir.new_order) ||
	    (a->dir.revoke_cert[0] != '\0' && !acme_url_ok(a->dir.revoke_cert))) {
		acme_run_fail(a, "bad_answer", "the directory: %s", err != NULL ? err : "a URL is refused");
		return;
	}
	a->step = ACME_STEP_ACCOUNT;
	const struct conf *c = a->srv->conf;
	json_t *p = json_pack("{sb}", "termsOfServiceAgreed", 1);
	if (p != NULL && c->acme_contact[0] != '\0') {
		char mailto[300];
		snprintf(mailto, sizeof(mailto), "mailto:%s", c->acme_contact);
		json_object_set_new(p, "contact", json_pack("[s]", mailto));
	}
	char *text = p != NULL ? json_dumps(p, JSON_COMPACT) : NULL;
	json_decref(p);
	if (text == NULL) {
		acme_run_fail(a, "memory", "out of memory");
		return;
	}
	acme_post(a, a->dir.new_account, text, true, false, on_account);
	free(text);
}

static void names_ready(struct acme *a)
{
	if (a->n_names == 0) {
		acme_run_fail(a, "names", "no names to ask a certificate for");
		return;
	}
	a->step = ACME_STEP_DIRECTORY;
	a->req_handler = on_directory;
	acme_call_start(a, ACME_REQ_GET, a->directory_url, NULL, 0);
}

static void name_add(struct acme *a, const char *name, size_t len)
{
	if (len == 0 || len >= ACME_NAME_SIZE || a->n_names >= ACME_NAMES_MAX)
		return;
	for (size_t i = 0; i < a->n_names; i++)
		if (strlen(a->names[i]) == len && strncasecmp(a->names[i], name, len) == 0)
			return;
	memcpy(a->names[a->n_names], name, len);
	a->names[a->n_names][len] = '\0';
	for (char *p = a->names[a->n_names]; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	a->n_names++;
}

/* The local domains, read on a worker thread (SQLite), for mta-sts.DOMAIN (RFC 8461 §3.3). */
struct names_job {
	struct acme *a;
	struct users *users;
	char domains[ACME_NAMES_MAX][ACME_NAME_SIZE];
	size_t n;
	bool failed;
};

static void names_job_add(const char *name, void *arg)
{
	struct names_job *j = arg;
	if (j->n < ACME_NAMES_MAX && strlen(name) + 9 < ACME_NAME_SIZE)
		snprintf(j->domains[j->n++], ACME_NAME_SIZE, "mta-sts.%s", name);
}

static void names_job_work(void *arg)
{
	struct names_job *j = arg;
	const char *err;
	j->failed = users_domain_list(j->users, names_job_add, j, &err) != RESULT_OK;
}

static void names_job_done(void *arg)
{
	struct names_job *j = arg;
	struct acme *a = j->a;
	a->names_job = false;
	if (j->failed) {
		free(j);
		acme_run_fail(a, "names", "cannot read the local domains");
		return;
	}
	for (size_t i = 0; i < j->n; i++)
		name_add(a, j->domains[i], strlen(j->domains[i]));
	free(j);
	names_ready(a);
}

/* The configured names ([acme] names, else [server] hostname) into a->names. */
static void names_from_conf(struct acme *a)
{
	const struct conf *c = a->srv->conf;
	a->n_names = 0;
	const char *list = c->acme_names[0] != '\0' ? c->acme_names : c->hostname;
	const char *p = list, *item;
	size_t n;
	while (list_next(&p, &item, &n))
		name_add(a, item, n);
}

/* Whether the certificate in use is valid for every configured name (mta-sts.DOMAIN ones aside:
 * their list is in the database), so that a changed [acme] names gets a new one at the start. */
static bool cert_covers_names(struct acme *a)
{
	BIO *b = a->chain != NULL ? BIO_new_mem_buf(a->chain, (int)a->chain_len) : NULL;
	X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	bool ok = x != NULL;
	names_from_conf(a);
	for (size_t i = 0; ok && i < a->n_names; i++)
		ok = X509_check_host(x, a->names[i], 0, X509_CHECK_FLAG_NO_WILDCARDS, NULL) == 1;
	X509_free(x);
	return ok;
}

static void run_start(struct acme *a)
{
	const struct conf *c = a->srv->conf;
	if (c->acme_directory[0] == '\0') /* turned off by a reload */
		return;
	struct http_url u;
	const char *err;
	if (http_url_parse(c->acme_directory, strlen(c->acme_directory), &u, &err) != HTTP_URL_OK)
		return; /* conf.c checked it */
	snprintf(a->directory_url, sizeof(a->directory_url), "%s", c->acme_directory);
	snprintf(a->origin.host, sizeof(a->origin.host), "%s", u.host);
	a->origin.port = u.port;
	names_from_conf(a);
	log_info("event=acme_run_started renew=%s revoke=%s", a->chain != NULL ? "yes" : "no", a->revoke ? "yes" : "no");
	a->next_at = 0;
	if (c->acme_mta_sts_names) {
		struct names_job *j = calloc(1, sizeof(*j));
		if (j == NULL) {
			acme_run_fail(a, "memory", "out of memory");
			return;
		}
		j->a = a;
		j->users = a->srv->users;
		a->step = ACME_STEP_NAMES;
		a->names_job = true;
		worker_pool_submit(a->srv->workers, names_job_work, names_job_done, j);
		return;
	}
	names_ready(a);
}

/* ---- the API ---- */

int acme_open(struct server *srv, struct acme **a_r, char *error, size_t error_size)
{
	*a_r = NULL;
	if (srv->conf->acme_directory[0] == '\0')
		return 0;
	struct acme *a = calloc(1, sizeof(*a));
	if (a == NULL) {
		snprintf(error, error_size, "out of memory");
		return -1;
	}
	a->srv = srv;
	snprintf(a->dir_path, sizeof(a->dir_path), "%s/acme", srv->conf->data_dir);
	if ((a->timer = evtimer_new(srv->base, timer_cb, a)) == NULL ||
	    (a->http = http_client_new(srv->base, error, error_size)) == NULL) {
		if (a->timer != NULL)
			snprintf(error, error_size, "out of memory");
		acme_free(a);
		return -1;
	}
	if (acme_store_account(a, error, error_size) != 0 || !acme_thumbprint(a->account, a->thumbprint)) {
		if (error[0] == '\0')
			snprintf(error, error_size, "the ACME account key is not a P-256 key");
		acme_free(a);
		return -1;
	}
	if (acme_store_load_cert(a)) {
		char err[300];
		a->ctx = tls_server_ctx_new_pem(a->chain, a->chain_len, a->key, err, sizeof(err));
		if (a->ctx == NULL) {
			log_warn("event=acme_certificate_unusable error=\"%s\"", err);
			free(a->chain);
			a->chain = NULL;
			EVP_PKEY_free(a->key);
			a->key = NULL;
		} else {
			acme_tls_attach(a, a->ctx);
			log_info("event=acme_certificate_loaded not_after=%lld renew_at=%lld", (long long)a->not_after,
				 (long long)renew_time(a->not_before, a->not_after));
		}
	}
	acme_store_next_key_open(a);
	*a_r = a;
	return 0;
}

void acme_start(struct acme *a)
{
	if (a == NULL || a->started)
		return;
	a->started = true;
	if (a->next_key == NULL)
		acme_store_next_key_stage(a, a->next_why != NULL ? a->next_why : "none");
	if (a->chain != NULL && !cert_covers_names(a)) {
		log_info("event=acme_names_changed reason=\"the certificate in use is not valid for every name\"");
		timer_at(a, (int64_t)time(NULL));
		return;
	}
	schedule_next(a);
}

void acme_free(struct acme *a)
{
	if (a == NULL)
		return;
	http_client_free(a->http); /* no callback runs any more */
	if (a->timer != NULL)
		event_free(a->timer);
	run_end(a);
	EVP_PKEY_free(a->account);
	EVP_PKEY_free(a->key);
	EVP_PKEY_free(a->next_key);
	free(a->chain);
	SSL_CTX_free(a->ctx);
	free(a);
}

SSL_CTX *acme_tls_ctx(struct acme *a, SSL_CTX *ctx)
{
	if (a == NULL || ctx == NULL)
		return ctx;
	if (a->ctx != NULL) {
		SSL_CTX_free(ctx);
		SSL_CTX_up_ref(a->ctx);
		return a->ctx;
	}
	acme_tls_attach(a, ctx);
	return ctx;
}

bool acme_http_key_authz(struct acme *a, const char *token, char *out, size_t size)
{
	if (a == NULL)
		return false;
	for (size_t i = 0; i < a->n_answers; i++)
		if (a->answers[i].type == ACME_CHALLENGE_HTTP01 && strcmp(a->answers[i].token, token) == 0) {
			snprintf(out, size, "%s", a->answers[i].key_authz);
			return true;
		}
	return false;
}

int acme_renew_now(struct acme *a, bool revoke_first, char *error, size_t error_size)
{
	if (a == NULL) {
		snprintf(error, error_size, "ACME is off ([acme] directory is not set)");
		return -1;
	}
	if (!a->started) {
		snprintf(error, error_size, "this worker does not run ACME (it is a standby)");
		return -1;
	}
	if (a->step != ACME_STEP_IDLE) {
		snprintf(error, error_size, "a certificate is being requested already (step %s)", acme_step_str(a->step));
		return -1;
	}
	if (revoke_first && a->chain == NULL) {
		snprintf(error, error_size, "no certificate from ACME is in use");
		return -1;
	}
	evtimer_del(a->timer);
	a->revoke = revoke_first;
	run_start(a);
	return 0;
}

void acme_state(const struct acme *a, int64_t *not_after_r, int64_t *next_r, unsigned *failures_r, const char **error_r)
{
	*not_after_r = a->chain != NULL ? a->not_after : 0;
	*next_r = a->next_at;
	*failures_r = a->failures;
	*error_r = a->last_error;
}
