/* api.h — the HTTP API behind the listener: its state (keys, the reader of message records,
 * rate-limit buckets, idempotency keys in flight), the route table, authentication and
 * permissions. Resources live one per file (emails_send.c, emails_read.c, keys.c, webhooks.c) and answer
 * through session.h. Loop thread, except where a function says otherwise. */
#ifndef MAILWERK_HTTP_API_H
#define MAILWERK_HTTP_API_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "http/parse.h"
#include "keys/api_keys.h"
#include "util/throttle.h"

struct attachments_fetch;
struct dashboard_sessions;
struct domain_verify;
struct inbound_store;
struct conf;
struct http_client;
struct server;
struct http_session;
struct queue;
struct webhook_sender;

struct http_rate {
	char key_id[API_KEY_ID_LEN + 1];
	struct throttle_bucket bucket;
	unsigned count, period; /* the [api] rate_limit it was made with */
};

struct http_inflight {
	struct http_inflight *next;
	char *key; /* "KEYID\nIDEMPOTENCY-KEY" */
};

struct http_api {
	struct server *srv;
	struct api_keys *keys;
	struct queue *reader;      /* its own connection to queue.db, for the record readers */
	pthread_mutex_t reader_mu; /* the reader is used by one worker at a time */
	struct http_rate *rates;
	size_t rate_count;
	struct http_inflight *inflight; /* Idempotency-Keys whose first request is still running */
	unsigned char unsubscribe_secret[32]; /* signs one-click unsubscribe URLs (unsubscribe.c) */
	struct event *retention_timer;        /* prunes old records (retention.c) */
	struct webhook_sender *webhooks; /* posts the webhook outbox; its store serves webhooks.c */
	/* the API's own HTTP client (the webhook sender keeps its one to itself): attachments given by
	 * URL (attachments_fetch.h), and the fetches running on it */
	struct http_client *http;
	struct attachments_fetch *fetches;
	struct domain_verify *verifies; /* the domains' DNS checks running (domains_verify.h) */
	struct event *domain_timer;     /* checks the checked domains again ([api] domain_recheck) */
	struct inbound_store *inbound;  /* received mail of the inbound routes (receiving.c) */
	/* the web dashboard's signed-in sessions (http/dashboard.h) */
	struct dashboard_sessions *dashboard;
};

/* What a handler is called with. */
struct http_call {
	struct http_session *s;
	struct http_api *api;
	struct api_key key;                 /* the caller (zeroed for routes without authentication) */
	char param[832];                    /* the decoded {id} of the path (an unsubscribe token is the
					     * longest), "" when none */
	char param2[64];                    /* a second {id} (an attachment's), "" when none */
};

/* Builds the API's state into srv->http_api: the protocol's init hook (server.h). 0, or -1 with a
 * sentence. */
int http_api_init(struct server *srv, char *error, size_t error_size);
void http_api_deinit(struct server *srv);

/* The largest request body: a message of [smtp] max_message_size as base64 (4/3) in JSON, with
 * room for the rest of the request. */
uint64_t http_api_max_body(const struct conf *c);

/* The base of the URLs this server hands out (one-click unsubscribe, downloads): [api] public_url,
 * else the hostname with the port of the API's listener (https first); no trailing slash. */
void http_public_base(const struct conf *c, char *out, size_t size);

/* Serves the request the session has just read whole (state HANDLING). */
void http_api_handle(struct http_session *s);
/* GET /.well-known/mta-sts.txt for Host mta-sts.DOMAIN (http/mta_sts.c): true when it answered. */
bool http_mta_sts_handle(struct http_session *s);
/* The route table, for the metrics' labels: its rows, and row i's pattern ("*" stands for the
 * {id} segment) and method. */
size_t http_api_route_count(void);
const char *http_api_route_pattern(size_t i, enum http_method *method_r);

/* Idempotency keys in flight: true when added (false: the same key is already running). */
bool http_api_inflight_add(struct http_api *a, const char *key_id, const char *idem_key);
void http_api_inflight_del(struct http_api *a, const char *key_id, const char *idem_key);

/* The list parameters of the request's query (limit, after, before: Resend's cursors), checked;
 * false when the request has been answered 422. */
bool http_page_parse(struct http_call *c, unsigned *limit_r, char *after, size_t after_size, char *before,
		     size_t before_size);

/* The request's body as a JSON object (strict, depth-limited; an empty body is {} unless required);
 * NULL when the request has been answered 400 or 422. */
json_t *http_body_object(struct http_call *c, bool required);

/* The resources' handlers (one file each). */
void http_emails_send(struct http_call *c);
void http_emails_batch(struct http_call *c);
void http_emails_raw(struct http_call *c);
void http_emails_get(struct http_call *c);
void http_emails_list(struct http_call *c);
void http_emails_update(struct http_call *c);
void http_emails_cancel(struct http_call *c);
void http_keys_create(struct http_call *c);
void http_keys_list(struct http_call *c);
void http_keys_delete(struct http_call *c);
void http_domains_create(struct http_call *c);
void http_domains_list(struct http_call *c);
void http_domains_get(struct http_call *c);
void http_domains_update(struct http_call *c);
void http_domains_delete(struct http_call *c);
void http_domains_verify(struct http_call *c);
void http_domains_dkim_list(struct http_call *c);
void http_domains_dkim_create(struct http_call *c);
void http_domains_dkim_activate(struct http_call *c);
void http_webhooks_create(struct http_call *c);
void http_webhooks_list(struct http_call *c);
void http_webhooks_get(struct http_call *c);
void http_webhooks_update(struct http_call *c);
void http_webhooks_delete(struct http_call *c);
void http_webhooks_rotate(struct http_call *c);
void http_webhooks_events_list(struct http_call *c);
void http_webhooks_events_get(struct http_call *c);
void http_webhooks_events_attempts(struct http_call *c);
void http_webhooks_events_replay(struct http_call *c);
void http_openapi(struct http_call *c);
void http_acme_challenge(struct http_call *c); /* acme_challenge.c */
void http_unsubscribe_post(struct http_call *c);
void http_unsubscribe_get(struct http_call *c);

/* unsubscribe.c: the key in DATA_DIR/unsubscribe.key (made on first use), and the URL of target. */
struct unsubscribe_target;
int http_unsubscribe_secret_load(const char *data_dir, unsigned char secret[32], char *error, size_t error_size);
bool http_unsubscribe_url(const struct http_api *a, const struct conf *c, const struct unsubscribe_target *t, char *out,
			  size_t size);
void http_metrics(struct http_call *c);
void http_stats(struct http_call *c);
void http_server_info(struct http_call *c);
void http_suppressions_add(struct http_call *c);
void http_suppressions_list(struct http_call *c);
void http_suppressions_get(struct http_call *c);
void http_suppressions_remove(struct http_call *c);
void http_suppressions_batch_add(struct http_call *c);
void http_suppressions_batch_remove(struct http_call *c);
/* accounts.c: mail users and aliases */
void http_users_list(struct http_call *c);
void http_users_create(struct http_call *c);
void http_users_update(struct http_call *c);
void http_users_delete(struct http_call *c);
void http_aliases_list(struct http_call *c);
void http_aliases_create(struct http_call *c);
void http_aliases_delete(struct http_call *c);
/* receiving.c: mail received for the applications; inbound_routes.c: the routes */
void http_receiving_list(struct http_call *c);
void http_receiving_get(struct http_call *c);
void http_receiving_raw(struct http_call *c);
void http_receiving_attachments(struct http_call *c);
void http_receiving_attachment(struct http_call *c);
void http_receiving_content(struct http_call *c);
void http_routes_create(struct http_call *c);
void http_routes_list(struct http_call *c);
void http_routes_get(struct http_call *c);
void http_routes_update(struct http_call *c);
void http_routes_delete(struct http_call *c);

#endif
