/* session.h — one HTTP/1.1 connection of the API listener (http, or https with TLS from the first
 * octet): reading request heads and bodies within hard limits, handing each whole request to the
 * API (api.h), writing the answer, keep-alive. Requests on one connection are answered in order,
 * one at a time (RFC 9112 §9.3.2: pipelined requests wait in the input). Loop thread only. */
#ifndef MAILWERK_HTTP_SESSION_H
#define MAILWERK_HTTP_SESSION_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/parse.h"
#include "net/line_session.h"
#include "server/server.h"

struct event;

enum http_state {
	HTTP_STATE_IDLE = 0, /* between requests: the keep-alive timeout runs */
	HTTP_STATE_HEAD,     /* reading field lines */
	HTTP_STATE_BODY,     /* reading content_length octets */
	HTTP_STATE_HANDLING, /* the API has the request; reading waits */
};

struct http_session {
	struct server_conn conn;
	struct line_session ls;
	struct server *srv;
	struct conf *conf;
	enum http_state state;
	struct http_request req;
	char *body;          /* the whole body, NUL-terminated; NULL when there is none */
	size_t body_len;
	uint64_t body_budget; /* octets of srv->memory this request holds */
	struct event *deadline; /* [api] request_timeout from a request's first octet */
	unsigned requests;
	int64_t started_ms;     /* the current request's first octet (for the log) */
	bool tls;
	int route;              /* the row of the API's route table the request matched; -1: none (yet) */
};

extern const struct server_protocol http_protocol;

/* The session with this id, or NULL when it has gone (async steps keep ids, DESIGN.md §4). */
struct http_session *http_session_find(struct server *srv, uint64_t id);

/* Answers the current request with status and a JSON body (taken: decref'd here; NULL for none)
 * and, when extra is not NULL, more header fields (CRLF-terminated lines). Then the connection
 * reads the next request, or closes when it should. */
void http_respond_json(struct http_session *s, unsigned status, json_t *body, const char *extra);
/* The same with a body already serialized (application/json). */
void http_respond_text(struct http_session *s, unsigned status, const char *body, size_t len, const char *extra);
/* The same with another Content-Type (a field value, e.g. "text/plain; version=0.0.4"). */
void http_respond_body(struct http_session *s, unsigned status, const char *content_type, const char *body, size_t len,
		       const char *extra);
/* Resend's error shape: {"statusCode": status, "name": name, "message": message}. */
void http_respond_error(struct http_session *s, unsigned status, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The error object alone (for batch results and stored answers). */
json_t *http_error_json(unsigned status, const char *name, const char *message);

/* The reason phrase of a status (RFC 9110 §15). */
const char *http_status_text(unsigned status);

#endif
