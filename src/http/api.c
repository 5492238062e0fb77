/* api.c — the API's state, its route table, authentication (Bearer keys), permissions and the
 * per-key rate limit; the resources themselves are in their own files. */
#include "http/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "conf/conf.h"
#include "events/webhook_sender.h"
#include "http/attachments_fetch.h"
#include "http/dashboard.h"
#include "http/dashboard_sessions.h"
#include "http/domains_verify.h"
#include "http/json.h"
#include "inbound/inbound_store.h"
#include "http/retention.h"
#include "http/session.h"
#include "net/http_client.h"
#include "queue/queue.h"
#include "server/server.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/date.h"

void http_public_base(const struct conf *c, char *out, size_t size)
{
	if (c->api_public_url[0] != '\0') {
		snprintf(out, size, "%s", c->api_public_url);
	} else {
		/* no public URL configured: this server's name and the port of its API listener (https first) */
		const struct conf_listen *l = c->listen[CONF_LISTEN_HTTPS].count > 0 ? &c->listen[CONF_LISTEN_HTTPS]
										      : &c->listen[CONF_LISTEN_HTTP];
		const char *colon = l->count > 0 ? strrchr(l->addrs[0].text, ':') : NULL;
		snprintf(out, size, "%s://%s%s", l == &c->listen[CONF_LISTEN_HTTPS] ? "https" : "http", c->hostname,
			 colon != NULL ? colon : "");
	}
	size_t b = strlen(out);
	while (b > 0 && out[b - 1] == '/')
		out[--b] = '\0';
}

uint64_t http_api_max_body(const struct conf *c)
{
	return c->max_message_size / 3 * 4 + 4 + ((uint64_t)1 << 20);
}

/* The queue's commit notification (loop thread): a stored message may have a scheduled event for
 * the webhooks. It can come after deinit (loopq_free), so the API is looked up, not kept. */
static void http_api_committed(void *arg)
{
	struct server *srv = arg;
	if (srv->http_api != NULL && srv->http_api->webhooks != NULL)
		webhook_sender_kick(srv->http_api->webhooks);
}

int http_api_init(struct server *srv, char *error, size_t error_size)
{
	struct http_api *a = calloc(1, sizeof(*a));
	if (a == NULL) {
		snprintf(error, error_size, "out of memory");
		return -1;
	}
	a->srv = srv;
	pthread_mutex_init(&a->reader_mu, NULL);
	const char *err;
	/* each part is made in turn; on a failure, deinit takes down what was made (every part may be
	 * NULL there) */
	srv->http_api = a;
	a->keys = api_keys_open(srv->conf->data_dir, error, error_size);
	if (a->keys == NULL)
		goto fail;
	if ((a->reader = queue_open(srv->conf->data_dir, &err)) == NULL) {
		snprintf(error, error_size, "%s", err);
		goto fail;
	}
	if ((a->inbound = inbound_store_open(srv->conf->data_dir, error, error_size)) == NULL)
		goto fail;
	if (http_unsubscribe_secret_load(srv->conf->data_dir, a->unsubscribe_secret, error, error_size) != 0)
		goto fail;
	/* made whatever [api] dashboard says now: a reload may turn it on */
	if ((a->dashboard = dashboard_sessions_new()) == NULL) {
		snprintf(error, error_size, "out of memory");
		goto fail;
	}
	if (http_retention_start(srv, a) != 0 || http_domains_recheck_start(srv, a) != 0) {
		snprintf(error, error_size, "out of memory");
		goto fail;
	}
	a->webhooks = webhook_sender_start(srv->base, srv->workers, &srv->conf, &srv->standby, srv->metrics, error,
					   error_size);
	if (a->webhooks == NULL)
		goto fail;
	/* made whatever [api] fetch_attachment_urls says now: a reload may turn it on */
	if ((a->http = http_client_new(srv->base, error, error_size)) == NULL)
		goto fail;
	/* no free slot only delays a scheduled event until the sender's next tick */
	queue_commit_subscribe(srv->queue, http_api_committed, srv);
	return 0;
fail:
	http_api_deinit(srv);
	return -1;
}

void http_api_deinit(struct server *srv)
{
	struct http_api *a = srv->http_api;
	if (a == NULL)
		return;
	http_retention_stop(a);
	http_domains_recheck_stop(a);
	http_domains_verify_cancel_all(a);
	/* fetches still running end here (their jobs are freed), then the client */
	attachments_fetch_cancel_all(&a->fetches);
	http_client_free(a->http);
	webhook_sender_stop(a->webhooks);
	char err[256];
	if (a->keys != NULL && api_keys_flush_usage(a->keys, err, sizeof(err)) != 0)
		log_warn("event=api_keys_flush_failed error=\"%s\"", err);
	api_keys_close(a->keys);
	queue_close(a->reader);
	inbound_store_close(a->inbound);
	dashboard_sessions_free(a->dashboard);
	pthread_mutex_destroy(&a->reader_mu);
	free(a->rates);
	while (a->inflight != NULL) {
		struct http_inflight *n = a->inflight->next;
		free(a->inflight->key);
		free(a->inflight);
		a->inflight = n;
	}
	free(a);
	srv->http_api = NULL;
}

/* ---- idempotency keys in flight ---- */

static char *inflight_key(const char *key_id, const char *idem_key)
{
	size_t n = strlen(key_id) + strlen(idem_key) + 2;
	char *k = malloc(n);
	if (k != NULL)
		snprintf(k, n, "%s\n%s", key_id, idem_key);
	return k;
}

bool http_api_inflight_add(struct http_api *a, const char *key_id, const char *idem_key)
{
	char *k = inflight_key(key_id, idem_key);
	if (k == NULL)
		return false;
	for (struct http_inflight *i = a->inflight; i != NULL; i = i->next)
		if (strcmp(i->key, k) == 0) {
			free(k);
			return false;
		}
	struct http_inflight *i = malloc(sizeof(*i));
	if (i == NULL) {
		free(k);
		return false;
	}
	i->key = k;
	i->next = a->inflight;
	a->inflight = i;
	return true;
}

void http_api_inflight_del(struct http_api *a, const char *key_id, const char *idem_key)
{
	char *k = inflight_key(key_id, idem_key);
	if (k == NULL)
		return;
	for (struct http_inflight **p = &a->inflight; *p != NULL; p = &(*p)->next)
		if (strcmp((*p)->key, k) == 0) {
			struct http_inflight *gone = *p;
			*p = gone->next;
			free(gone->key);
			free(gone);
			break;
		}
	free(k);
}

/* ---- rate limit ---- */

/* Takes a token of the key's bucket; false (with the headers of a 429 in extra) when empty. */
static bool rate_take(struct http_api *a, const struct conf *c, const char *key_id, char *extra, size_t size)
{
	if (c->api_rate_limit.count == 0)
		return true;
	int64_t now = date_now_ms();
	struct http_rate *r = NULL;
	for (size_t i = 0; i < a->rate_count; i++)
		if (strcmp(a->rates[i].key_id, key_id) == 0)
			r = &a->rates[i];
	if (r != NULL && (r->count != c->api_rate_limit.count || r->period != c->api_rate_limit.period))
		r->count = 0; /* a reload changed the limit: start the bucket again */
	if (r == NULL) {
		struct http_rate *g = realloc(a->rates, (a->rate_count + 1) * sizeof(*g));
		if (g == NULL)
			return true; /* no memory to count with: let it through rather than refuse everyone */
		a->rates = g;
		r = &a->rates[a->rate_count++];
		snprintf(r->key_id, sizeof(r->key_id), "%s", key_id);
		r->count = 0;
	}
	if (r->count == 0) {
		r->count = c->api_rate_limit.count, r->period = c->api_rate_limit.period;
		throttle_init(&r->bucket, r->count, r->period, now);
	}
	if (throttle_take(&r->bucket, now))
		return true;
	int64_t ready = throttle_ready_ms(&r->bucket, now);
	unsigned wait = (unsigned)((ready - now + 999) / 1000);
	if (wait == 0)
		wait = 1;
	/* draft-ietf-httpapi-ratelimit-headers, as Resend sends them; Retry-After: RFC 9110 §10.2.3 */
	snprintf(extra, size, "Retry-After: %u\r\nratelimit-limit: %u\r\nratelimit-remaining: 0\r\nratelimit-reset: %u\r\n",
		 wait, r->count, wait);
	return false;
}

/* ---- Resend's pagination ---- */

/* Resend's list parameters (PaginationOptions): 1 to 100 items, 20 by default */
#define HTTP_PAGE_LIMIT_DEFAULT 20
#define HTTP_PAGE_LIMIT_MAX 100

bool http_page_parse(struct http_call *c, unsigned *limit_r, char *after, size_t after_size, char *before,
		     size_t before_size)
{
	const char *q = c->s->req.query;
	char limit[16] = "";
	after[0] = before[0] = '\0';
	if (http_query_get(q, "limit", limit, sizeof(limit)) < 0 || http_query_get(q, "after", after, after_size) < 0 ||
	    http_query_get(q, "before", before, before_size) < 0) {
		http_respond_error(c->s, 422, "validation_error", "The query string is malformed.");
		return false;
	}
	*limit_r = HTTP_PAGE_LIMIT_DEFAULT;
	if (limit[0] != '\0') {
		char *end;
		unsigned long v = strtoul(limit, &end, 10);
		if (*end != '\0' || limit[0] < '0' || limit[0] > '9' || v < 1 || v > HTTP_PAGE_LIMIT_MAX) {
			http_respond_error(c->s, 422, "validation_error", "The `limit` parameter must be a number from 1 to 100.");
			return false;
		}
		*limit_r = (unsigned)v;
	}
	if (after[0] != '\0' && before[0] != '\0') {
		http_respond_error(c->s, 422, "validation_error", "Use either `after` or `before`, not both.");
		return false;
	}
	return true;
}

/* ---- routes ---- */

enum http_auth {
	HTTP_AUTH_NONE = 0, /* no key needed */
	HTTP_AUTH_SEND,     /* full_access or sending_access */
	HTTP_AUTH_FULL,     /* full_access only */
};

struct http_route {
	enum http_method method;
	const char *pattern; /* segments; "*" takes one path segment as the {id} */
	enum http_auth auth;
	void (*handler)(struct http_call *c);
};

static void http_health(struct http_call *c)
{
	http_respond_text(c->s, 200, "{\"status\":\"ok\"}", 15, NULL);
}

json_t *http_body_object(struct http_call *c, bool required)
{
	char err[256];
	if (!required && c->s->body_len == 0)
		return json_object();
	json_t *doc = http_json_load(c->s->body != NULL ? c->s->body : "", c->s->body_len,
				     HTTP_JSON_MAX_DEPTH, err, sizeof(err));
	if (doc == NULL) {
		http_respond_error(c->s, 400, "validation_error", "%s", err);
		return NULL;
	}
	if (!json_is_object(doc)) {
		json_decref(doc);
		http_respond_error(c->s, 422, "validation_error", "The request body must be a JSON object.");
		return NULL;
	}
	return doc;
}

static const struct http_route http_routes[] = {
	{HTTP_METHOD_GET, "/healthz", HTTP_AUTH_NONE, http_health},
	{HTTP_METHOD_GET, "/.well-known/acme-challenge/*", HTTP_AUTH_NONE, http_acme_challenge},
	{HTTP_METHOD_GET, "/openapi.json", HTTP_AUTH_NONE, http_openapi},
	{HTTP_METHOD_POST, "/unsubscribe/*", HTTP_AUTH_NONE, http_unsubscribe_post},
	{HTTP_METHOD_GET, "/unsubscribe/*", HTTP_AUTH_NONE, http_unsubscribe_get},
	{HTTP_METHOD_GET, "/metrics", HTTP_AUTH_NONE, http_metrics},
	{HTTP_METHOD_GET, "/stats", HTTP_AUTH_FULL, http_stats},
	{HTTP_METHOD_GET, "/server", HTTP_AUTH_FULL, http_server_info},
	{HTTP_METHOD_POST, "/emails", HTTP_AUTH_SEND, http_emails_send},
	{HTTP_METHOD_GET, "/emails", HTTP_AUTH_FULL, http_emails_list},
	{HTTP_METHOD_POST, "/emails/batch", HTTP_AUTH_SEND, http_emails_batch},
	{HTTP_METHOD_POST, "/emails/raw", HTTP_AUTH_SEND, http_emails_raw},
	/* before GET /emails/{id}, which would take "receiving" for an id */
	{HTTP_METHOD_GET, "/emails/receiving", HTTP_AUTH_FULL, http_receiving_list},
	{HTTP_METHOD_GET, "/emails/receiving/*", HTTP_AUTH_FULL, http_receiving_get},
	{HTTP_METHOD_GET, "/emails/receiving/*/raw", HTTP_AUTH_NONE, http_receiving_raw},
	{HTTP_METHOD_GET, "/emails/receiving/*/attachments", HTTP_AUTH_FULL, http_receiving_attachments},
	{HTTP_METHOD_GET, "/emails/receiving/*/attachments/*", HTTP_AUTH_FULL, http_receiving_attachment},
	{HTTP_METHOD_GET, "/emails/receiving/*/attachments/*/content", HTTP_AUTH_NONE, http_receiving_content},
	{HTTP_METHOD_GET, "/emails/*", HTTP_AUTH_FULL, http_emails_get},
	{HTTP_METHOD_PATCH, "/emails/*", HTTP_AUTH_FULL, http_emails_update},
	{HTTP_METHOD_POST, "/emails/*/cancel", HTTP_AUTH_FULL, http_emails_cancel},
	{HTTP_METHOD_POST, "/api-keys", HTTP_AUTH_FULL, http_keys_create},
	{HTTP_METHOD_GET, "/api-keys", HTTP_AUTH_FULL, http_keys_list},
	{HTTP_METHOD_DELETE, "/api-keys/*", HTTP_AUTH_FULL, http_keys_delete},
	{HTTP_METHOD_POST, "/domains", HTTP_AUTH_FULL, http_domains_create},
	{HTTP_METHOD_GET, "/domains", HTTP_AUTH_FULL, http_domains_list},
	{HTTP_METHOD_GET, "/domains/*", HTTP_AUTH_FULL, http_domains_get},
	{HTTP_METHOD_PATCH, "/domains/*", HTTP_AUTH_FULL, http_domains_update},
	{HTTP_METHOD_DELETE, "/domains/*", HTTP_AUTH_FULL, http_domains_delete},
	{HTTP_METHOD_POST, "/domains/*/verify", HTTP_AUTH_FULL, http_domains_verify},
	{HTTP_METHOD_GET, "/domains/*/dkim-keys", HTTP_AUTH_FULL, http_domains_dkim_list},
	{HTTP_METHOD_POST, "/domains/*/dkim-keys", HTTP_AUTH_FULL, http_domains_dkim_create},
	{HTTP_METHOD_POST, "/domains/*/dkim-keys/*/activate", HTTP_AUTH_FULL, http_domains_dkim_activate},
	{HTTP_METHOD_POST, "/webhooks", HTTP_AUTH_FULL, http_webhooks_create},
	{HTTP_METHOD_GET, "/webhooks", HTTP_AUTH_FULL, http_webhooks_list},
	{HTTP_METHOD_GET, "/webhooks/*", HTTP_AUTH_FULL, http_webhooks_get},
	{HTTP_METHOD_PATCH, "/webhooks/*", HTTP_AUTH_FULL, http_webhooks_update},
	{HTTP_METHOD_DELETE, "/webhooks/*", HTTP_AUTH_FULL, http_webhooks_delete},
	{HTTP_METHOD_POST, "/webhooks/*/signing-secret/rotate", HTTP_AUTH_FULL, http_webhooks_rotate},
	{HTTP_METHOD_GET, "/webhooks/*/events", HTTP_AUTH_FULL, http_webhooks_events_list},
	{HTTP_METHOD_GET, "/webhooks/*/events/*", HTTP_AUTH_FULL, http_webhooks_events_get},
	{HTTP_METHOD_GET, "/webhooks/*/events/*/attempts", HTTP_AUTH_FULL, http_webhooks_events_attempts},
	{HTTP_METHOD_POST, "/webhooks/*/events/*/replay", HTTP_AUTH_FULL, http_webhooks_events_replay},
	{HTTP_METHOD_POST, "/suppressions", HTTP_AUTH_FULL, http_suppressions_add},
	{HTTP_METHOD_GET, "/suppressions", HTTP_AUTH_FULL, http_suppressions_list},
	{HTTP_METHOD_POST, "/suppressions/batch/add", HTTP_AUTH_FULL, http_suppressions_batch_add},
	{HTTP_METHOD_POST, "/suppressions/batch/remove", HTTP_AUTH_FULL, http_suppressions_batch_remove},
	{HTTP_METHOD_GET, "/suppressions/*", HTTP_AUTH_FULL, http_suppressions_get},
	{HTTP_METHOD_DELETE, "/suppressions/*", HTTP_AUTH_FULL, http_suppressions_remove},
	{HTTP_METHOD_GET, "/users", HTTP_AUTH_FULL, http_users_list},
	{HTTP_METHOD_POST, "/users", HTTP_AUTH_FULL, http_users_create},
	{HTTP_METHOD_PATCH, "/users/*", HTTP_AUTH_FULL, http_users_update},
	{HTTP_METHOD_DELETE, "/users/*", HTTP_AUTH_FULL, http_users_delete},
	{HTTP_METHOD_GET, "/aliases", HTTP_AUTH_FULL, http_aliases_list},
	{HTTP_METHOD_POST, "/aliases", HTTP_AUTH_FULL, http_aliases_create},
	{HTTP_METHOD_DELETE, "/aliases/*", HTTP_AUTH_FULL, http_aliases_delete},
	{HTTP_METHOD_POST, "/inbound/routes", HTTP_AUTH_FULL, http_routes_create},
	{HTTP_METHOD_GET, "/inbound/routes", HTTP_AUTH_FULL, http_routes_list},
	{HTTP_METHOD_GET, "/inbound/routes/*", HTTP_AUTH_FULL, http_routes_get},
	{HTTP_METHOD_PATCH, "/inbound/routes/*", HTTP_AUTH_FULL, http_routes_update},
	{HTTP_METHOD_DELETE, "/inbound/routes/*", HTTP_AUTH_FULL, http_routes_delete},
};
#define HTTP_ROUTE_COUNT (sizeof(http_routes) / sizeof(http_routes[0]))
/* each row is an HTTP slot of the metrics, and so is "no route" for each method (http/metrics.c) */
_Static_assert(HTTP_ROUTE_COUNT + HTTP_METHOD_OTHER + 1 <= METRICS_HTTP_SLOTS, "raise METRICS_HTTP_SLOTS");

size_t http_api_route_count(void)
{
	return HTTP_ROUTE_COUNT;
}

const char *http_api_route_pattern(size_t i, enum http_method *method_r)
{
	*method_r = http_routes[i].method;
	return http_routes[i].pattern;
}

/* Whether path matches pattern; the first "*" segment is decoded into c->param, a second into
 * c->param2. -1 when a segment is malformed (400). */
static int route_match(const char *pattern, const char *path, struct http_call *c)
{
	const char *p = pattern, *q = path;
	unsigned stars = 0;
	while (*p != '\0' && *q != '\0') {
		if (*p == '*') {
			const char *end = strchr(q, '/');
			size_t len = end != NULL ? (size_t)(end - q) : strlen(q);
			if (len == 0)
				return 0;
			char *out = stars++ == 0 ? c->param : c->param2;
			size_t size = out == c->param ? sizeof(c->param) : sizeof(c->param2);
			if (!http_segment_decode(q, len, out, size))
				return -1;
			p++, q += len;
			continue;
		}
		if (*p != *q)
			return 0;
		p++, q++;
	}
	/* "/emails/" is "/emails": a trailing slash is forgiven */
	if (*p == '\0' && q[0] == '/' && q[1] == '\0')
		return 1;
	return *p == '\0' && *q == '\0';
}

/* "Bearer TOKEN" (RFC 6750 §2.1; the scheme is case-insensitive, RFC 9110 §11.1). */
static const char *bearer_token(const char *authorization)
{
	if (strncasecmp(authorization, "Bearer ", 7) != 0)
		return NULL;
	const char *t = authorization + 7;
	while (*t == ' ')
		t++;
	return *t != '\0' ? t : NULL;
}

static bool authenticate(struct http_call *c, enum http_auth need)
{
	struct http_session *s = c->s;
	/* without a key, the dashboard's session cookie (with its CSRF token for a change) is a
	 * full-access caller; a key, when given, is what counts */
	enum dashboard_auth by_session =
		s->req.authorization[0] == '\0' ? dashboard_authenticate(c) : DASHBOARD_AUTH_NONE;
	if (by_session == DASHBOARD_AUTH_REFUSED)
		return false;
	if (by_session == DASHBOARD_AUTH_NONE) {
		if (s->req.authorization[0] == '\0') {
			http_respond_error(s, 401, "missing_api_key",
					   "Missing API key in the authorization header. Include the following header "
					   "`Authorization: Bearer YOUR_API_KEY` in the request.");
			return false;
		}
		const char *token = bearer_token(s->req.authorization);
		/* Resend answers an unknown key with 403 */
		if (token == NULL || !api_keys_check(c->api->keys, token, &c->key)) {
			http_respond_error(s, 403, "invalid_api_key", "API key is invalid.");
			return false;
		}
		api_keys_touch(c->api->keys, c->key.id, date_now_ms());
	}
	if (need == HTTP_AUTH_FULL && c->key.permission != API_KEY_FULL_ACCESS) {
		http_respond_error(s, 403, "restricted_api_key", "This API key is restricted to only send emails.");
		return false;
	}
	char extra[256];
	if (!rate_take(c->api, s->conf, c->key.id, extra, sizeof(extra))) {
		http_respond_json(s, 429,
				  http_error_json(429, "rate_limit_exceeded",
						  "Too many requests. You can only make a limited number of requests per "
						  "second for this API key ([api] rate_limit)."),
				  extra);
		return false;
	}
	return true;
}

void http_api_handle(struct http_session *s)
{
	struct http_call c = {.s = s, .api = s->srv->http_api};
	/* the MTA-STS policy host of the local domains (RFC 8461 §3.2), chosen by the Host field */
	if (http_mta_sts_handle(s))
		return;
	/* the dashboard's pages and sessions are not API routes (http/dashboard.h) */
	if (dashboard_handle(&c))
		return;
	bool path_known = false;
	char allow[64] = "";
	for (size_t i = 0; i < HTTP_ROUTE_COUNT; i++) {
		const struct http_route *r = &http_routes[i];
		int m = route_match(r->pattern, s->req.path, &c);
		if (m < 0) {
			http_respond_error(s, 400, "invalid_parameter", "The path is malformed.");
			return;
		}
		if (m == 0)
			continue;
		if (r->method != s->req.method) {
			path_known = true;
			size_t n = strlen(allow);
			snprintf(allow + n, sizeof(allow) - n, "%s%s", n > 0 ? ", " : "", http_method_str(r->method));
			continue;
		}
		s->route = (int)i; /* for the metrics: a refusal by authentication counts for the route */
		if (r->auth != HTTP_AUTH_NONE && !authenticate(&c, r->auth))
			return;
		r->handler(&c);
		return;
	}
	if (path_known) {
		char extra[96];
		snprintf(extra, sizeof(extra), "Allow: %s\r\n", allow);
		http_respond_json(s, 405, http_error_json(405, "method_not_allowed", "Method is not allowed for this path."),
				  extra);
		return;
	}
	http_respond_error(s, 404, "not_found", "The requested endpoint does not exist.");
}
