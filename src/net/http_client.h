/* http_client.h — outgoing HTTP requests on the event loop: libcurl's multi interface driven by
 * libevent (curl_multi_socket_action), for webhooks now and MTA-STS policy fetches later.
 *
 * Every request is bounded: a total timeout, at most HTTP_CLIENT_READ_MAX octets of the answer
 * read (the first HTTP_CLIENT_KEEP kept for the log), no redirects followed, http and https only,
 * certificates verified, no proxy from the environment. Unless a request allows it, sockets to
 * addresses that are not public (http_url.h: loopback, RFC 1918, link-local, CGNAT, unique-local,
 * unspecified, multicast) are refused when they are opened — after name resolution, so a name that
 * resolves (or re-resolves: DNS rebinding) to such an address gets nowhere either. Names are
 * resolved by libcurl's threaded resolver, off the loop.
 *
 * Loop thread only. */
#ifndef MAILWERK_NET_HTTP_CLIENT_H
#define MAILWERK_NET_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct http_client;

#define HTTP_CLIENT_READ_MAX (64 * 1024) /* octets of an answer read at most; then the transfer stops */
#define HTTP_CLIENT_KEEP 512             /* octets of it kept for the caller */

struct http_client_result {
	long status;       /* the HTTP status; 0 when no answer came */
	const char *error; /* NULL when an answer came, else why not (a sentence) */
	const char *body;  /* the first body_len (<= HTTP_CLIENT_KEEP) octets of the answer, NUL-terminated */
	size_t body_len;
	bool truncated; /* the answer was longer than HTTP_CLIENT_READ_MAX: reading stopped there */
	unsigned elapsed_ms;
};
/* Called on the loop thread when a request has ended, never from within http_client_post. */
typedef void http_client_done_fn(void *arg, const struct http_client_result *r);

struct http_client_opts {
	unsigned timeout_ms; /* the whole request, connecting included */
	bool allow_private;  /* connect to addresses that are not public ([webhooks] allow_private) */
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

/* Requests running now. */
unsigned http_client_running(const struct http_client *c);

#endif
