/* http_client.h — outgoing HTTP requests on the event loop: libcurl's multi interface driven by
 * libevent (curl_multi_socket_action), for webhooks (POST), attachments given by URL (GET) and
 * MTA-STS policy fetches later.
 *
 * Every request is bounded: a total timeout, http and https only, certificates verified, no proxy
 * from the environment. A POST reads at most HTTP_CLIENT_READ_MAX octets of the answer (the first
 * HTTP_CLIENT_KEEP kept for the log) and follows no redirect; a GET keeps the whole body up to a
 * maximum the caller gives and stops the transfer as soon as it is passed. Unless a request allows
 * it, sockets to addresses that are not public (http_url.h: loopback, RFC 1918, link-local, CGNAT,
 * unique-local, unspecified, multicast) are refused when they are opened — after name resolution,
 * so a name that resolves (or re-resolves: DNS rebinding) to such an address gets nowhere either,
 * and neither does a redirect. Names are resolved by libcurl's threaded resolver, off the loop.
 * http_client_request is the general form ACME needs (RFC 8555 §6): any method, its own header
 * lines and CA file, the body of every answer whatever its status, and the Location,
 * Replay-Nonce and Retry-After fields; it follows no redirect.
 *
 * Loop thread only. */
#ifndef MAILWERK_NET_HTTP_CLIENT_H
#define MAILWERK_NET_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct http_client;
struct http_client_req; /* one request under way (http_client_cancel) */

#define HTTP_CLIENT_READ_MAX (64 * 1024) /* octets of an answer read at most; then the transfer stops */
#define HTTP_CLIENT_KEEP 512             /* octets of it kept for the caller */
/* Redirects a GET follows at most. Each target is parsed again with http_url_parse (so userinfo,
 * numeric hosts that are not dotted quads and fragments are refused as in the URL given), must be
 * http or https and not http after https (TLS is not given up on the way), and its addresses meet
 * the same connect-time check; the total timeout covers the whole chain. */
#define HTTP_CLIENT_GET_REDIRECTS 3

struct http_client_result {
	long status;       /* the HTTP status; 0 when no answer came */
	const char *error; /* NULL when an answer came, else why not (a sentence) */
	const char *body;  /* the first body_len (<= HTTP_CLIENT_KEEP) octets of the answer, NUL-terminated */
	size_t body_len;
	bool truncated; /* the answer was longer than HTTP_CLIENT_READ_MAX (a GET: its max_body): reading
			 * stopped there */
	unsigned elapsed_ms;
	/* a GET that got a 2xx answer whole (error NULL): the body, malloc'd and NUL-terminated beyond
	 * data_len, now the callback's to free; and the answer's Content-Type field ("" when none).
	 * A GET's non-2xx answer, or one larger than max_body, is an error (status kept). */
	char *data;
	size_t data_len;
	const char *content_type;
	/* http_client_request only (NULL otherwise): the answer's Location, Replay-Nonce and
	 * Retry-After fields, "" when absent or longer than HTTP_CLIENT_FIELD_MAX; valid during the
	 * callback. Its body, whatever the status, is in data (malloc'd, the callback's). */
	const char *location;
	const char *replay_nonce;
	const char *retry_after;
};
#define HTTP_CLIENT_FIELD_MAX 2048 /* octets of a kept response field (HTTP_URL_MAX for Location) */
/* Called on the loop thread when a request has ended, never from within http_client_post or
 * http_client_get. */
typedef void http_client_done_fn(void *arg, const struct http_client_result *r);

struct http_client_opts {
	unsigned timeout_ms; /* the whole request, connecting included */
	/* connect to addresses that are not public. Webhooks and attachments given by URL both take
	 * [webhooks] allow_private (conf.webhook_allow_private): it is the one switch for this server
	 * calling into its own network, and what the tests turn on to use a server on 127.0.0.1. */
	bool allow_private;
	/* the setting named when an address is refused; NULL: "[webhooks] allow_private" */
	const char *private_setting;
	/* NULL or "": the system's trust store only; else a PEM file of CA certificates trusted
	 * besides it (libcurl's CAINFO, while its CA path stays the system's /etc/ssl/certs) */
	const char *ca_file;
	/* NULL: libcurl resolves the URL's host (its threaded resolver); else one CURLOPT_RESOLVE entry,
	 * "HOST:PORT:ADDR[,ADDR...]", that gives the addresses to connect to for the URL's host and
	 * port, so that a caller that resolved the name itself (through net/dns.h) is the only resolver.
	 * The SSRF rule above still judges each of those addresses when it is connected to. */
	const char *resolve;
	/* a GET: a redirect is an error ("the server answered 301"), never followed */
	bool no_redirects;
};

/* NULL with a sentence when libcurl cannot be set up. */
struct http_client *http_client_new(struct event_base *base, char *error, size_t error_size);
/* Ends every request still running without calling their callbacks, and frees. */
void http_client_free(struct http_client *c);

/* POSTs len octets of body (copied) to url with the header lines (each "Name: value", copied).
 * 0 when started (done will be called once), or -1 with a sentence (done will not be called). */
int http_client_post(struct http_client *c, const char *url, const char *const *headers, size_t n_headers,
		     const char *body, size_t len, const struct http_client_opts *o,
		     http_client_done_fn *done, void *arg, char *error, size_t error_size);

/* GETs url, keeping the whole answer's body when it is a 2xx of at most max_body octets (more: the
 * transfer stops at once, and it is an error; nothing beyond max_body is ever buffered). Redirects
 * are followed as HTTP_CLIENT_GET_REDIRECTS says. 0 when started (done will be called once, unless
 * the request is cancelled; *req_r, when req_r is not NULL, names it until then), or -1 with a
 * sentence (done will not be called). */
int http_client_get(struct http_client *c, const char *url, uint64_t max_body, const struct http_client_opts *o,
		    http_client_done_fn *done, void *arg, struct http_client_req **req_r, char *error,
		    size_t error_size);

enum http_client_method {
	HTTP_CLIENT_GET = 0,
	HTTP_CLIENT_HEAD,
	HTTP_CLIENT_POST,
};

struct http_client_call {
	enum http_client_method method;
	const char *url;                 /* checked by http_url_parse, as a GET's */
	const char *const *headers;      /* "Name: value" lines, copied */
	size_t n_headers;
	const char *body;                /* POST: len octets, copied */
	size_t body_len;
	uint64_t max_body;               /* octets of the answer kept at most; more ends it as an error */
	struct http_client_opts opts;
};

/* Starts call. 0 when started (done will be called once unless cancelled; *req_r names it until
 * then), or -1 with a sentence. The result has the status and body of any answer (error NULL), or
 * error set when none came whole (refused, timed out, longer than max_body). */
int http_client_request(struct http_client *c, const struct http_client_call *call, http_client_done_fn *done,
			void *arg, struct http_client_req **req_r, char *error, size_t error_size);

/* Ends a request started by http_client_get or http_client_request whose done has not been called yet; done is then never
 * called. */
void http_client_cancel(struct http_client *c, struct http_client_req *r);

/* Requests running now. */
unsigned http_client_running(const struct http_client *c);

#endif
