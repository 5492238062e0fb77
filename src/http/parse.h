/* parse.h — HTTP/1.1 request heads (RFC 9112), parsed line by line into a fixed-size struct: the
 * request line, the few header fields the API acts on, and the framing rules that keep a request
 * from being read two ways (request smuggling). Pure: no I/O; every byte is hostile. */
#ifndef MAILWERK_HTTP_PARSE_H
#define MAILWERK_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One request line or header field line, CRLF included; a longer request line is 414, a longer
 * field 431 (RFC 6585 §5). */
#define HTTP_LINE_MAX 8192
/* The whole head: 431 past it. */
#define HTTP_HEAD_MAX 32768
#define HTTP_FIELDS_MAX 100
#define HTTP_PATH_MAX 2048
#define HTTP_QUERY_MAX 2048
#define HTTP_AUTH_MAX 512
#define HTTP_IDEMPOTENCY_KEY_MAX 256
#define HTTP_VALUE_SMALL 128
#define HTTP_HOST_SIZE 261
/* RFC 6265 §6.1: at least 4096 octets per cookie; the dashboard needs one of 70 */
#define HTTP_COOKIE_MAX 4096

enum http_method {
	HTTP_METHOD_GET = 0,
	HTTP_METHOD_HEAD,
	HTTP_METHOD_POST,
	HTTP_METHOD_PUT,
	HTTP_METHOD_PATCH,
	HTTP_METHOD_DELETE,
	HTTP_METHOD_OPTIONS,
	HTTP_METHOD_OTHER, /* a token we do not serve: 405 on a known path, else 404 */
};
const char *http_method_str(enum http_method m);

/* The status a broken head is answered with; the connection is then closed (RFC 9112 §9.5 does
 * not let us find where the next request would begin). */
enum http_parse_error {
	HTTP_PARSE_OK = 0,
	HTTP_PARSE_BAD_REQUEST,      /* 400 */
	HTTP_PARSE_URI_TOO_LONG,     /* 414 */
	HTTP_PARSE_HEAD_TOO_LARGE,   /* 431 */
	HTTP_PARSE_LENGTH_REQUIRED,  /* 411: a body framed by chunked coding, which we do not take */
	HTTP_PARSE_NOT_IMPLEMENTED,  /* 501: a transfer coding we do not know */
	HTTP_PARSE_VERSION,          /* 505 */
};
/* The HTTP status code for e (200 for OK). */
unsigned http_parse_error_status(enum http_parse_error e);

struct http_request {
	enum http_method method;
	char method_text[16];
	char path[HTTP_PATH_MAX];   /* percent-encoded as sent, without the query */
	char query[HTTP_QUERY_MAX]; /* after '?', "" when none */
	unsigned minor;             /* HTTP/1.minor */
	bool keep_alive;            /* after this request's answer, the connection stays open */
	bool close;                 /* a Connection field said close (settled at the head's end) */
	bool has_length;
	uint64_t content_length;
	bool chunked;
	bool expect_continue;       /* Expect: 100-continue (RFC 9110 §10.1.1) */
	bool has_host;
	/* the Host field's value when it fits (a name of 253 octets, a dot, ":65535"), else "": a
	 * value is never cut, so that a long one is not read as a shorter name (MTA-STS policy hosts) */
	char host[HTTP_HOST_SIZE];
	unsigned fields;            /* header field lines seen */
	size_t head_size;           /* octets of head seen */
	char authorization[HTTP_AUTH_MAX];
	char idempotency_key[HTTP_IDEMPOTENCY_KEY_MAX + 1];
	bool idempotency_key_too_long;
	char content_type[HTTP_VALUE_SMALL];
	char batch_validation[HTTP_VALUE_SMALL]; /* Resend's x-batch-validation: strict | permissive */
	char user_agent[HTTP_VALUE_SMALL];       /* for logs; cut */
	/* the dashboard's session (http/dashboard.c): the Cookie field (RFC 6265 §5.4: one field; more
	 * are joined with "; "), and the token its pages send on every state change (X-CSRF-Token) */
	char cookie[HTTP_COOKIE_MAX];
	bool cookie_too_long; /* then no cookie is taken at all */
	char csrf_token[HTTP_VALUE_SMALL];
};

/* Starts a new request (all fields reset). */
void http_request_init(struct http_request *r);
/* The request line (RFC 9112 §3), without CRLF. */
enum http_parse_error http_parse_request_line(struct http_request *r, const char *line, size_t len,
					      const char **error_r);
/* One field line (RFC 9112 §5), without CRLF. */
enum http_parse_error http_parse_field_line(struct http_request *r, const char *line, size_t len,
					    const char **error_r);
/* The empty line that ends the head: the rules that need every field (Host, framing). */
enum http_parse_error http_parse_head_end(struct http_request *r, const char **error_r);

/* The value of name in a query string ("a=1&b=x%20y"), percent- and '+'-decoded into buf (size
 * octets, NUL-terminated). 1 when found, 0 when absent, -1 when malformed or too long. */
int http_query_get(const char *query, const char *name, char *buf, size_t size);
/* Percent-decodes a path segment of len octets into buf; false when malformed, too long, or it
 * decodes to a '/', a NUL or a control character. */
bool http_segment_decode(const char *s, size_t len, char *buf, size_t size);

#endif
