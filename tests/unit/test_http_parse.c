/* test_http_parse.c — table-driven tests of src/http/parse.c: HTTP/1.1 request lines and field lines
 * (RFC 9112), the framing rules that keep one request from being read two ways, the limits, and
 * the query and path-segment decoders. Every input is a heap copy of exactly its length, so that
 * AddressSanitizer sees a read past it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_util.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/parse.h"

/* the case tables give defaults, then what a row changes: designated initializers that override */
#pragma GCC diagnostic ignored "-Woverride-init"

/* A check that says, when it fails, which rule the code broke. */
#define CHECK_WHY(ok, ...)                                          \
	do {                                                        \
		if (!(ok)) {                                        \
			print_message(__VA_ARGS__);   \
			print_message("\n");                        \
			fail();                                     \
		}                                                   \
	} while (0)

/* ---- request lines ---- */

struct line_case {
	const char *in;
	size_t len;
	enum http_parse_error want;
	enum http_method method; /* on success */
	const char *method_text;
	const char *path;
	const char *query;
	unsigned minor;
	bool keep_alive;
};

#define RL(lit, m, mt, p, q, mi) \
	{ .in = lit, .len = sizeof(lit) - 1, .want = HTTP_PARSE_OK, .method = m, .method_text = mt, .path = p, \
	  .query = q, .minor = mi, .keep_alive = (mi) >= 1 }
#define RL_BAD(lit, w) { .in = lit, .len = sizeof(lit) - 1, .want = w }

static const struct line_case line_cases[] = {
	RL("GET / HTTP/1.1", HTTP_METHOD_GET, "GET", "/", "", 1),
	RL("HEAD / HTTP/1.1", HTTP_METHOD_HEAD, "HEAD", "/", "", 1),
	RL("POST /emails HTTP/1.1", HTTP_METHOD_POST, "POST", "/emails", "", 1),
	RL("PUT /x HTTP/1.1", HTTP_METHOD_PUT, "PUT", "/x", "", 1),
	RL("PATCH /emails/abc HTTP/1.1", HTTP_METHOD_PATCH, "PATCH", "/emails/abc", "", 1),
	RL("DELETE /api-keys/1 HTTP/1.1", HTTP_METHOD_DELETE, "DELETE", "/api-keys/1", "", 1),
	RL("OPTIONS /emails HTTP/1.1", HTTP_METHOD_OPTIONS, "OPTIONS", "/emails", "", 1),
	/* RFC 9110 §9.1: methods are case-sensitive tokens; unknown ones are kept for a 405 or 404 */
	RL("get / HTTP/1.1", HTTP_METHOD_OTHER, "get", "/", "", 1),
	RL("BREW /pot HTTP/1.1", HTTP_METHOD_OTHER, "BREW", "/pot", "", 1),
	RL("GETX / HTTP/1.1", HTTP_METHOD_OTHER, "GETX", "/", "", 1),
	RL("!#$%&'*+-.^_`|~ / HTTP/1.1", HTTP_METHOD_OTHER, "!#$%&'*+-.^_`|~", "/", "", 1), /* every tchar */
	RL("ABCDEFGHIJKLMNO / HTTP/1.1", HTTP_METHOD_OTHER, "ABCDEFGHIJKLMNO", "/", "", 1), /* 15: the most */
	/* the query is split off at the first '?'; the path stays percent-encoded as sent */
	RL("GET /emails?limit=10&after=x HTTP/1.1", HTTP_METHOD_GET, "GET", "/emails", "limit=10&after=x", 1),
	RL("GET /? HTTP/1.1", HTTP_METHOD_GET, "GET", "/", "", 1),
	RL("GET /a?b?c=/d HTTP/1.1", HTTP_METHOD_GET, "GET", "/a", "b?c=/d", 1),
	RL("GET /a%20b/%2F%00?q=%41 HTTP/1.1", HTTP_METHOD_GET, "GET", "/a%20b/%2F%00", "q=%41", 1),
	RL("GET //x/../y HTTP/1.1", HTTP_METHOD_GET, "GET", "//x/../y", "", 1),
	/* RFC 9112 §9.3: 1.1 persists by default, 1.0 does not */
	RL("GET / HTTP/1.0", HTTP_METHOD_GET, "GET", "/", "", 0),
	RL("GET / HTTP/1.9", HTTP_METHOD_GET, "GET", "/", "", 9),
	/* other major versions: 505 */
	RL_BAD("GET / HTTP/2.0", HTTP_PARSE_VERSION),
	RL_BAD("GET / HTTP/3.0", HTTP_PARSE_VERSION),
	RL_BAD("GET / HTTP/0.9", HTTP_PARSE_VERSION),
	RL_BAD("GET / HTTP/9.1", HTTP_PARSE_VERSION),
	/* malformed versions */
	RL_BAD("GET / HTTP/1.1 ", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("GET / HTTP/1.10", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("GET / HTTP/11", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("GET / HTTP/1", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("GET / HTTP/1.x", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("GET / HTTP/x.1", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("GET / HTTP/1,1", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("GET / http/1.1", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("GET / HTTPS/1.1", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("GET / HTTP/1.1\0", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("GET / HTTP/\0.1", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("GET /", HTTP_PARSE_BAD_REQUEST), /* HTTP/0.9 simple request */
	RL_BAD("GET / ", HTTP_PARSE_BAD_REQUEST),
	/* garbage and spacing (RFC 9112 §3: single SP) */
	RL_BAD("", HTTP_PARSE_BAD_REQUEST),
	RL_BAD(" ", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("GET", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", HTTP_PARSE_BAD_REQUEST), /* a TLS ClientHello */
	RL_BAD("EHLO example.com", HTTP_PARSE_BAD_REQUEST),
	RL_BAD(" GET / HTTP/1.1", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("GET  / HTTP/1.1", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("GET /  HTTP/1.1", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("GET / / HTTP/1.1", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("GET\t/ HTTP/1.1", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("GET /\tHTTP/1.1", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("G(T / HTTP/1.1", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("G\xc3\xa9T / HTTP/1.1", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("GE\0T / HTTP/1.1", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("ABCDEFGHIJKLMNOP / HTTP/1.1", HTTP_PARSE_BAD_REQUEST), /* 16: no room */
	/* RFC 9112 §3.2: only origin-form is served */
	RL_BAD("GET http://example.com/ HTTP/1.1", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("OPTIONS * HTTP/1.1", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("CONNECT example.com:443 HTTP/1.1", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("GET emails HTTP/1.1", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("GET ?a=1 HTTP/1.1", HTTP_PARSE_BAD_REQUEST),
	/* no fragment in a request target */
	RL_BAD("GET /a#frag HTTP/1.1", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("GET /a?b=1#frag HTTP/1.1", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("GET /# HTTP/1.1", HTTP_PARSE_BAD_REQUEST),
	/* RFC 3986 §2: visible ASCII only */
	RL_BAD("GET /a\x01 HTTP/1.1", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("GET /a\x1f HTTP/1.1", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("GET /a\x7f HTTP/1.1", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("GET /a\x80 HTTP/1.1", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("GET /\xc3\xbc HTTP/1.1", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("GET /a\0b HTTP/1.1", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("GET /a\r HTTP/1.1", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("GET /a\nb HTTP/1.1", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("GET /a?b\x01 HTTP/1.1", HTTP_PARSE_BAD_REQUEST),
	RL_BAD("GET /a?\x7f HTTP/1.1", HTTP_PARSE_BAD_REQUEST),
};

static void test_request_line_table(void **state)
{
	char esc[256];
	(void)state;
	for (size_t i = 0; i < sizeof(line_cases) / sizeof(line_cases[0]); i++) {
		const struct line_case *c = &line_cases[i];
		char *in = test_dup(c->in, c->len);
		struct http_request r;
		http_request_init(&r);
		const char *err = NULL;
		enum http_parse_error e = http_parse_request_line(&r, in, c->len, &err);
		if (e != c->want)
			fail_msg("request line %zu \"%s\": got %d (%s), want %d", i,
				 test_escape(c->in, c->len, esc, sizeof(esc)), e, err ? err : "-", c->want);
		if (e == HTTP_PARSE_OK) {
			assert_int_equal(r.method, c->method);
			assert_string_equal(r.method_text, c->method_text);
			assert_string_equal(r.path, c->path);
			assert_string_equal(r.query, c->query);
			assert_int_equal(r.minor, c->minor);
			assert_int_equal(r.keep_alive, c->keep_alive);
			assert_int_equal(r.head_size, c->len + 2);
			assert_false(r.has_length);
			assert_false(r.has_host);
		} else {
			assert_non_null(err);
			assert_true(strlen(err) > 0);
		}
		free(in);
	}
}

/* Every octet in the path: visible ASCII but '#' is taken, the rest refused. */
static void test_request_line_every_octet(void **state)
{
	char line[32];
	(void)state;
	for (int c = 0; c < 256; c++) {
		int n = snprintf(line, sizeof(line), "GET /a_b HTTP/1.1");
		line[6] = (char)c;
		struct http_request r;
		http_request_init(&r);
		const char *err = NULL;
		enum http_parse_error e = http_parse_request_line(&r, line, (size_t)n, &err);
		bool ok = c > 0x20 && c < 0x7f && c != '#';
		if ((e == HTTP_PARSE_OK) != ok)
			fail_msg("octet 0x%02x in the path: got %d (%s)", c, e, err ? err : "-");
		if (ok) {
			assert_int_equal(strlen(r.path), c == '?' ? 2 : 4);
			assert_string_equal(r.query, c == '?' ? "b" : "");
		}
	}
}

/* 414 when the path or the query does not fit its buffer (with its NUL). */
static void test_request_line_limits(void **state)
{
	(void)state;
	static const struct {
		size_t path, query; /* octets of each; query 0: no '?' */
		bool with_q;
		enum http_parse_error want;
	} cases[] = {
		{HTTP_PATH_MAX - 1, 0, false, HTTP_PARSE_OK},
		{HTTP_PATH_MAX, 0, false, HTTP_PARSE_URI_TOO_LONG},
		{HTTP_PATH_MAX + 100, 0, false, HTTP_PARSE_URI_TOO_LONG},
		{1, HTTP_QUERY_MAX - 1, true, HTTP_PARSE_OK},
		{1, HTTP_QUERY_MAX, true, HTTP_PARSE_URI_TOO_LONG},
		{HTTP_PATH_MAX - 1, HTTP_QUERY_MAX - 1, true, HTTP_PARSE_OK},
		{HTTP_PATH_MAX, HTTP_QUERY_MAX - 1, true, HTTP_PARSE_URI_TOO_LONG},
		{HTTP_PATH_MAX - 1, HTTP_QUERY_MAX, true, HTTP_PARSE_URI_TOO_LONG},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = 4 + cases[i].path + (cases[i].with_q ? 1 + cases[i].query : 0) + 9;
		char *line = malloc(len);
		assert_non_null(line);
		size_t o = 0;
		memcpy(line, "GET ", 4), o = 4;
		line[o++] = '/';
		memset(line + o, 'p', cases[i].path - 1), o += cases[i].path - 1;
		if (cases[i].with_q) {
			line[o++] = '?';
			memset(line + o, 'q', cases[i].query), o += cases[i].query;
		}
		memcpy(line + o, " HTTP/1.1", 9), o += 9;
		assert_int_equal(o, len);
		struct http_request r;
		http_request_init(&r);
		const char *err = NULL;
		enum http_parse_error e = http_parse_request_line(&r, line, len, &err);
		if (e != cases[i].want)
			fail_msg("limit case %zu: got %d (%s), want %d", i, e, err ? err : "-", cases[i].want);
		if (e == HTTP_PARSE_OK) {
			assert_int_equal(strlen(r.path), cases[i].path);
			assert_int_equal(strlen(r.query), cases[i].query);
		} else {
			assert_int_equal(http_parse_error_status(e), 414);
		}
		free(line);
	}
}

/* ---- whole heads: the request line, field lines and the end of the head ---- */

enum head_stage { AT_NONE = 0, AT_LINE, AT_FIELD, AT_END };

/* Feeds head (lines separated by CRLF, without the empty last line) as the session does; stops at
 * the first error. The stage and line index of the error come back. */
static enum http_parse_error head_run(const char *head, size_t len, struct http_request *r, enum head_stage *stage_r,
				      size_t *line_r, const char **err_r)
{
	char *copy = test_dup(head, len);
	size_t start = 0, n = 0;
	enum http_parse_error e = HTTP_PARSE_OK;
	*stage_r = AT_NONE;
	*err_r = NULL;
	http_request_init(r);
	for (;;) {
		size_t end = start;
		while (end + 1 < len && !(copy[end] == '\r' && copy[end + 1] == '\n'))
			end++;
		if (end + 1 >= len)
			end = len;
		/* each line in a heap block of its own length */
		char *line = test_dup(copy + start, end - start);
		if (n == 0) {
			e = http_parse_request_line(r, line, end - start, err_r);
			*stage_r = AT_LINE;
		} else {
			e = http_parse_field_line(r, line, end - start, err_r);
			*stage_r = AT_FIELD;
		}
		free(line);
		*line_r = n++;
		if (e != HTTP_PARSE_OK || end >= len)
			break;
		start = end + 2;
	}
	if (e == HTTP_PARSE_OK) {
		e = http_parse_head_end(r, err_r);
		*stage_r = AT_END;
	}
	free(copy);
	return e;
}

struct head_case {
	const char *in;
	size_t len;
	enum http_parse_error want;
	enum head_stage at; /* where the error shows (on error) */
	/* on success; T_ANY: not checked */
	enum tri { T_ANY = 0, T_NO, T_YES } keep_alive, has_length, expect_continue;
	uint64_t content_length;
};

#define H_OK(lit, ...) { .in = lit, .len = sizeof(lit) - 1, .want = HTTP_PARSE_OK, __VA_ARGS__ }
#define H_BAD(lit, w, stage) { .in = lit, .len = sizeof(lit) - 1, .want = w, .at = stage }

#define RQ11 "POST /emails HTTP/1.1\r\nHost: api.example.com\r\n"
#define RQ10 "POST /emails HTTP/1.0\r\n"

static const struct head_case head_cases[] = {
	/* Host: required in 1.1 (RFC 9112 §3.2), once */
	H_OK("GET / HTTP/1.1\r\nHost: x", .keep_alive = T_YES, .has_length = T_NO),
	H_OK("GET / HTTP/1.1\r\nhOsT:x", .keep_alive = T_YES),
	H_OK("GET / HTTP/1.1\r\nHost:", .keep_alive = T_YES),
	H_OK("GET / HTTP/1.1\r\nHost: [::1]:8080\r\nUser-Agent: curl/8.0", .keep_alive = T_YES),
	H_OK("GET / HTTP/1.0", .keep_alive = T_NO),
	H_OK("GET / HTTP/1.0\r\nHost: x", .keep_alive = T_NO),
	H_BAD("GET / HTTP/1.1", HTTP_PARSE_BAD_REQUEST, AT_END),
	H_BAD("GET / HTTP/1.1\r\nX-Host: x", HTTP_PARSE_BAD_REQUEST, AT_END),
	H_BAD("GET / HTTP/1.1\r\nHost: a\r\nHost: a", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD("GET / HTTP/1.1\r\nHost: a\r\nhost: b", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD("GET / HTTP/1.0\r\nHost: a\r\nHost: b", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	/* Connection (RFC 9112 §9.3) */
	H_OK(RQ11 "Connection: close", .keep_alive = T_NO),
	H_OK(RQ11 "Connection: CLOSE", .keep_alive = T_NO),
	H_OK(RQ11 "Connection: keep-alive, close", .keep_alive = T_NO),
	H_OK(RQ11 "Connection: te,close ,foo", .keep_alive = T_NO),
	H_OK(RQ11 "Connection: close\r\nConnection: keep-alive", .keep_alive = T_NO),
	H_OK(RQ11 "Connection: keep-alive", .keep_alive = T_YES),
	H_OK(RQ11 "Connection: closed", .keep_alive = T_YES),
	H_OK(RQ11 "Connection: upgrade", .keep_alive = T_YES),
	H_OK(RQ10 "Connection: keep-alive", .keep_alive = T_YES),
	H_OK(RQ10 "Connection: Keep-Alive", .keep_alive = T_YES),
	H_OK(RQ10 "Connection: foo, keep-alive", .keep_alive = T_YES),
	H_OK(RQ10 "Connection: keep-alive, close", .keep_alive = T_NO),
	H_OK(RQ10 "Connection: keep-alive\r\nConnection: close", .keep_alive = T_NO),
	H_OK(RQ10 "Connection: keepalive", .keep_alive = T_NO),
	/* Content-Length (RFC 9110 §8.6, RFC 9112 §6.3) */
	H_OK(RQ11 "Content-Length: 5", .has_length = T_YES, .content_length = 5),
	H_OK(RQ11 "Content-Length: 0", .has_length = T_YES, .content_length = 0),
	H_OK(RQ11 "content-length:5", .has_length = T_YES, .content_length = 5),
	H_OK(RQ11 "CONTENT-LENGTH: \t 5 \t ", .has_length = T_YES, .content_length = 5),
	H_OK(RQ11 "Content-Length: 007", .has_length = T_YES, .content_length = 7),
	H_OK(RQ11 "Content-Length: 5, 5", .has_length = T_YES, .content_length = 5),
	H_OK(RQ11 "Content-Length: 5,5,5", .has_length = T_YES, .content_length = 5),
	H_OK(RQ11 "Content-Length: 5 ,\t5", .has_length = T_YES, .content_length = 5),
	H_OK(RQ11 "Content-Length: 5\r\nContent-Length: 5", .has_length = T_YES, .content_length = 5),
	H_OK(RQ11 "Content-Length: 5\r\nContent-Length: 5, 5", .has_length = T_YES, .content_length = 5),
	H_OK(RQ11 "Content-Length: 1000000000000", .has_length = T_YES, .content_length = 1000000000000ULL),
	H_OK(RQ11 "Content-Length: 18446744073709551609", .has_length = T_YES, .content_length = 18446744073709551609ULL),
	H_OK(RQ10 "Content-Length: 12", .has_length = T_YES, .content_length = 12, .keep_alive = T_NO),
	H_BAD(RQ11 "Content-Length: 5, 6", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "Content-Length: 5,5,6", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "Content-Length: 5\r\nContent-Length: 6", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "Content-Length: 5\r\nContent-Length: 05x", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "Content-Length:", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "Content-Length:   ", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "Content-Length: -1", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "Content-Length: +5", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "Content-Length: 5a", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "Content-Length: 0x5", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "Content-Length: 5.0", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "Content-Length: 5 5", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "Content-Length: 5,", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "Content-Length: 5, ", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "Content-Length: ,5", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "Content-Length: 5,,5", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "Content-Length: \xd9\xa5", HTTP_PARSE_BAD_REQUEST, AT_FIELD), /* ARABIC-INDIC DIGIT FIVE */
	H_BAD(RQ11 "Content-Length: 18446744073709551616", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "Content-Length: 99999999999999999999", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "Content-Length: 5, 99999999999999999999", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "Content-Length : 5", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	/* Transfer-Encoding (RFC 9112 §6.1, §6.3) */
	H_BAD(RQ11 "Transfer-Encoding: chunked", HTTP_PARSE_LENGTH_REQUIRED, AT_END),
	H_BAD(RQ11 "Transfer-Encoding: Chunked", HTTP_PARSE_LENGTH_REQUIRED, AT_END),
	H_BAD(RQ11 "Transfer-Encoding: gzip, chunked", HTTP_PARSE_LENGTH_REQUIRED, AT_END),
	H_BAD(RQ11 "Transfer-Encoding: chunked\r\nContent-Length: 5", HTTP_PARSE_BAD_REQUEST, AT_END),
	H_BAD(RQ11 "Content-Length: 5\r\nTransfer-Encoding: chunked", HTTP_PARSE_BAD_REQUEST, AT_END),
	H_BAD(RQ11 "Content-Length: 0\r\nTransfer-Encoding: chunked", HTTP_PARSE_BAD_REQUEST, AT_END),
	H_BAD(RQ10 "Transfer-Encoding: chunked", HTTP_PARSE_BAD_REQUEST, AT_END),
	H_BAD(RQ11 "Transfer-Encoding: gzip", HTTP_PARSE_NOT_IMPLEMENTED, AT_FIELD),
	H_BAD(RQ11 "Transfer-Encoding: identity", HTTP_PARSE_NOT_IMPLEMENTED, AT_FIELD),
	H_BAD(RQ11 "Transfer-Encoding: chunkedx", HTTP_PARSE_NOT_IMPLEMENTED, AT_FIELD),
	H_BAD(RQ11 "Transfer-Encoding: xchunked", HTTP_PARSE_NOT_IMPLEMENTED, AT_FIELD),
	H_BAD(RQ11 "Transfer-Encoding:", HTTP_PARSE_NOT_IMPLEMENTED, AT_FIELD),
	H_BAD(RQ11 "Transfer-Encoding : chunked", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "Transfer-Encoding: chunked\r\n Content-Length: 5", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	/* Expect (RFC 9110 §10.1.1) */
	H_OK(RQ11 "Expect: 100-continue", .expect_continue = T_YES),
	H_OK(RQ11 "Expect: 100-Continue", .expect_continue = T_YES),
	H_OK(RQ11 "Expect:  100-continue \t", .expect_continue = T_YES),
	H_OK(RQ11 "Expect: 100-continue, foo", .expect_continue = T_NO),
	H_OK(RQ11 "Expect: 200-ok", .expect_continue = T_NO),
	H_OK(RQ11 "X-Expect: 100-continue", .expect_continue = T_NO),
	/* field syntax (RFC 9112 §5) */
	H_OK(RQ11 "X-A: a\tb", .keep_alive = T_YES),
	H_OK(RQ11 "X-A: \x80\xff obs-text", .keep_alive = T_YES),
	H_OK(RQ11 "X-A:", .keep_alive = T_YES),
	H_OK(RQ11 "X-A: a:b:c", .keep_alive = T_YES),
	H_OK(RQ11 "!#$%&'*+-.^_`|~09azAZ: x", .keep_alive = T_YES),
	H_BAD(RQ11 "Host : x", HTTP_PARSE_BAD_REQUEST, AT_FIELD), /* also the second Host */
	H_BAD(RQ11 "X-A : x", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "X-A\t: x", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 ": x", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "X-A", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "X(A): x", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "X\xc3\xa9: x", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "X\0A: x", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	/* obsolete line folding: refused (RFC 9112 §5.2) */
	H_BAD(RQ11 "X-A: a\r\n b", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "X-A: a\r\n\tb", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD("GET / HTTP/1.1\r\n Host: x", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	/* control characters in values (RFC 9110 §5.5) */
	H_BAD(RQ11 "X-A: a\x01b", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "X-A: a\0b", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "X-A: a\0", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "X-A: a\rb", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "X-A: a\nb", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "X-A: a\x7f", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "X-A: \x1b[31m", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "Authorization: Bearer re_\r", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	H_BAD(RQ11 "Content-Length: 5\0", HTTP_PARSE_BAD_REQUEST, AT_FIELD),
	/* an error in the request line stops there */
	H_BAD("GET / HTTP/2.0\r\nHost: x", HTTP_PARSE_VERSION, AT_LINE),
	H_BAD("GET /#x HTTP/1.1\r\nHost: x", HTTP_PARSE_BAD_REQUEST, AT_LINE),
};

static void test_head_table(void **state)
{
	char esc[512];
	(void)state;
	for (size_t i = 0; i < sizeof(head_cases) / sizeof(head_cases[0]); i++) {
		const struct head_case *c = &head_cases[i];
		struct http_request r;
		enum head_stage at;
		size_t line;
		const char *err;
		enum http_parse_error e = head_run(c->in, c->len, &r, &at, &line, &err);
		if (e != c->want || (e != HTTP_PARSE_OK && at != c->at))
			fail_msg("head case %zu \"%s\": got %d at stage %d line %zu (%s), want %d at stage %d", i,
				 test_escape(c->in, c->len, esc, sizeof(esc)), e, at, line, err ? err : "-", c->want,
				 c->at);
		if (e != HTTP_PARSE_OK) {
			assert_non_null(err);
			continue;
		}
		if (c->keep_alive != T_ANY && r.keep_alive != (c->keep_alive == T_YES))
			fail_msg("head case %zu \"%s\": keep_alive %d", i, test_escape(c->in, c->len, esc, sizeof(esc)),
				 r.keep_alive);
		if (c->has_length != T_ANY) {
			assert_int_equal(r.has_length, c->has_length == T_YES);
			assert_int_equal(r.content_length, c->content_length);
		}
		if (!r.has_length)
			assert_int_equal(r.content_length, 0);
		if (c->expect_continue != T_ANY)
			assert_int_equal(r.expect_continue, c->expect_continue == T_YES);
		assert_false(r.chunked);
		assert_true(r.minor == 0 || r.has_host);
	}
}

/* head_size counts every line with its CRLF; fields counts field lines. */
static void test_head_accounting(void **state)
{
	static const char head[] = "GET /a HTTP/1.1\r\nHost: x\r\nX-A: 12345";
	struct http_request r;
	enum head_stage at;
	size_t line;
	const char *err;
	(void)state;
	assert_int_equal(head_run(head, sizeof(head) - 1, &r, &at, &line, &err), HTTP_PARSE_OK);
	assert_int_equal(r.fields, 2);
	assert_int_equal(r.head_size, sizeof(head) - 1 + 2);
	assert_true(r.has_host);
}

/* The values kept for the API: copied, cut to their buffers, or refused as the header says. */
static void test_head_values(void **state)
{
	char line[1024];
	struct http_request r;
	const char *err = NULL;
	(void)state;

	http_request_init(&r);
	assert_int_equal(http_parse_request_line(&r, "POST /emails HTTP/1.1", 21, &err), HTTP_PARSE_OK);
	static const char *const fields[] = {
		"Authorization:   Bearer re_123  ",
		"Content-Type: application/json; charset=utf-8",
		"x-batch-validation: permissive",
		"User-Agent: resend-node:6.0.0",
		"Idempotency-Key: order-42\t",
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		char *f = test_dup(fields[i], strlen(fields[i]));
		assert_int_equal(http_parse_field_line(&r, f, strlen(fields[i]), &err), HTTP_PARSE_OK);
		free(f);
	}
	assert_string_equal(r.authorization, "Bearer re_123");
	assert_string_equal(r.content_type, "application/json; charset=utf-8");
	assert_string_equal(r.batch_validation, "permissive");
	assert_string_equal(r.user_agent, "resend-node:6.0.0");
	assert_string_equal(r.idempotency_key, "order-42");
	assert_false(r.idempotency_key_too_long);

	/* longer values of the small fields are cut, not refused */
	int n = snprintf(line, sizeof(line), "User-Agent: ");
	memset(line + n, 'u', 300);
	assert_int_equal(http_parse_field_line(&r, line, (size_t)n + 300, &err), HTTP_PARSE_OK);
	assert_int_equal(strlen(r.user_agent), HTTP_VALUE_SMALL - 1);
	n = snprintf(line, sizeof(line), "Content-Type: ");
	memset(line + n, 'c', HTTP_VALUE_SMALL);
	assert_int_equal(http_parse_field_line(&r, line, (size_t)n + HTTP_VALUE_SMALL, &err), HTTP_PARSE_OK);
	assert_int_equal(strlen(r.content_type), HTTP_VALUE_SMALL - 1);
}

/* Authorization: longer than its buffer is 431, never cut (a cut token would be another token). */
static void test_authorization_limit(void **state)
{
	char line[HTTP_AUTH_MAX + 64];
	(void)state;
	for (size_t vlen = HTTP_AUTH_MAX - 2; vlen <= HTTP_AUTH_MAX + 1; vlen++) {
		struct http_request r;
		http_request_init(&r);
		const char *err = NULL;
		assert_int_equal(http_parse_request_line(&r, "GET / HTTP/1.1", 14, &err), HTTP_PARSE_OK);
		int n = snprintf(line, sizeof(line), "Authorization: ");
		memset(line + n, 'a', vlen);
		char *f = test_dup(line, (size_t)n + vlen);
		enum http_parse_error e = http_parse_field_line(&r, f, (size_t)n + vlen, &err);
		free(f);
		if (vlen < HTTP_AUTH_MAX) {
			assert_int_equal(e, HTTP_PARSE_OK);
			assert_int_equal(strlen(r.authorization), vlen);
		} else {
			assert_int_equal(e, HTTP_PARSE_HEAD_TOO_LARGE);
			assert_int_equal(http_parse_error_status(e), 431);
			assert_string_equal(r.authorization, "");
		}
	}
}

/* Idempotency-Key: at most 256 octets (Resend); a longer one is flagged for a 400, not cut. */
static void test_idempotency_key_limit(void **state)
{
	char line[HTTP_IDEMPOTENCY_KEY_MAX + 64];
	(void)state;
	for (size_t vlen = HTTP_IDEMPOTENCY_KEY_MAX - 1; vlen <= HTTP_IDEMPOTENCY_KEY_MAX + 2; vlen++) {
		struct http_request r;
		http_request_init(&r);
		const char *err = NULL;
		assert_int_equal(http_parse_request_line(&r, "POST / HTTP/1.1", 15, &err), HTTP_PARSE_OK);
		int n = snprintf(line, sizeof(line), "Idempotency-Key: ");
		memset(line + n, 'k', vlen);
		char *f = test_dup(line, (size_t)n + vlen);
		assert_int_equal(http_parse_field_line(&r, f, (size_t)n + vlen, &err), HTTP_PARSE_OK);
		free(f);
		if (vlen <= HTTP_IDEMPOTENCY_KEY_MAX) {
			assert_false(r.idempotency_key_too_long);
			assert_int_equal(strlen(r.idempotency_key), vlen);
		} else {
			assert_true(r.idempotency_key_too_long);
			assert_string_equal(r.idempotency_key, "");
		}
	}
}

/* The dashboard's fields: Cookie lines are joined with "; " (RFC 6265 §5.4 wants one; HTTP/2
 * proxies split it), and past HTTP_COOKIE_MAX the cookies count as too long rather than cut. */
static void test_cookie_and_csrf_fields(void **state)
{
	(void)state;
	struct http_request r;
	const char *err = NULL;
	http_request_init(&r);
	assert_int_equal(http_parse_request_line(&r, "GET / HTTP/1.1", 14, &err), HTTP_PARSE_OK);
	assert_int_equal(http_parse_field_line(&r, "Cookie: a=1", 11, &err), HTTP_PARSE_OK);
	assert_int_equal(http_parse_field_line(&r, "cookie:  b=2 ", 13, &err), HTTP_PARSE_OK);
	assert_int_equal(http_parse_field_line(&r, "X-CSRF-Token: abc", 17, &err), HTTP_PARSE_OK);
	assert_string_equal(r.cookie, "a=1; b=2");
	assert_false(r.cookie_too_long);
	assert_string_equal(r.csrf_token, "abc");

	char line[HTTP_COOKIE_MAX + 32];
	http_request_init(&r);
	assert_int_equal(http_parse_request_line(&r, "GET / HTTP/1.1", 14, &err), HTTP_PARSE_OK);
	int n = snprintf(line, sizeof(line), "Cookie: ");
	memset(line + n, 'c', HTTP_COOKIE_MAX - 1);
	assert_int_equal(http_parse_field_line(&r, line, (size_t)n + HTTP_COOKIE_MAX - 1, &err), HTTP_PARSE_OK);
	assert_false(r.cookie_too_long);
	assert_int_equal(strlen(r.cookie), HTTP_COOKIE_MAX - 1);
	assert_int_equal(http_parse_field_line(&r, "Cookie: x=1", 11, &err), HTTP_PARSE_OK);
	assert_true(r.cookie_too_long);
}

/* At most HTTP_FIELDS_MAX field lines and HTTP_HEAD_MAX octets of head: 431 past either. */
static void test_head_limits(void **state)
{
	char line[HTTP_LINE_MAX];
	(void)state;

	/* the field count */
	struct http_request r;
	const char *err = NULL;
	http_request_init(&r);
	assert_int_equal(http_parse_request_line(&r, "GET / HTTP/1.1", 14, &err), HTTP_PARSE_OK);
	for (unsigned i = 0; i < HTTP_FIELDS_MAX; i++) {
		int n = snprintf(line, sizeof(line), i == 0 ? "Host: x" : "X-%u: y", i);
		assert_int_equal(http_parse_field_line(&r, line, (size_t)n, &err), HTTP_PARSE_OK);
	}
	assert_int_equal(r.fields, HTTP_FIELDS_MAX);
	assert_int_equal(http_parse_field_line(&r, "X-Last: y", 9, &err), HTTP_PARSE_HEAD_TOO_LARGE);
	assert_non_null(err);

	/* the size: long fields until the head passes HTTP_HEAD_MAX, counting CRLFs */
	http_request_init(&r);
	assert_int_equal(http_parse_request_line(&r, "GET / HTTP/1.1", 14, &err), HTTP_PARSE_OK);
	size_t total = 14 + 2;
	const size_t flen = 4000;
	memset(line, 'v', flen);
	memcpy(line, "X-A: ", 5);
	while (total + flen + 2 <= HTTP_HEAD_MAX) {
		assert_int_equal(http_parse_field_line(&r, line, flen, &err), HTTP_PARSE_OK);
		total += flen + 2;
	}
	assert_int_equal(r.head_size, total);
	/* exactly up to the limit is fine; one octet more is not */
	size_t rest = HTTP_HEAD_MAX - total - 2;
	assert_int_equal(http_parse_field_line(&r, line, rest, &err), HTTP_PARSE_OK);
	assert_int_equal(r.head_size, HTTP_HEAD_MAX);
	assert_int_equal(http_parse_field_line(&r, "X", 1, &err), HTTP_PARSE_HEAD_TOO_LARGE);
}

/* RFC 9112 §9.3: "close" ends the connection whatever else the fields say, in whatever order. */
static void test_bug_connection_close_then_keep_alive_10(void **state)
{
	static const char head[] = RQ10 "Connection: close\r\nConnection: keep-alive";
	struct http_request r;
	enum head_stage at;
	size_t line;
	const char *err;
	(void)state;
	assert_int_equal(head_run(head, sizeof(head) - 1, &r, &at, &line, &err), HTTP_PARSE_OK);
	CHECK_WHY(!r.keep_alive, "http_parse_field_line: in HTTP/1.0, \"Connection: close\" followed by a "
				 "\"Connection: keep-alive\" field leaves keep_alive true (the later field wins); "
				 "RFC 9112 §9.3 says close wins");
}

/* RFC 9112 §6.3 item 4: chunked present but not the final coding in a request is a 400. */
static void test_bug_chunked_not_last(void **state)
{
	static const char head[] = RQ11 "Transfer-Encoding: chunked, gzip";
	struct http_request r;
	enum head_stage at;
	size_t line;
	const char *err;
	(void)state;
	enum http_parse_error e = head_run(head, sizeof(head) - 1, &r, &at, &line, &err);
	assert_int_not_equal(e, HTTP_PARSE_OK); /* refused either way */
	CHECK_WHY(e == HTTP_PARSE_BAD_REQUEST,
		  "http_parse_field_line: \"Transfer-Encoding: chunked, gzip\" gives %u, RFC 9112 §6.3 item 4 "
		  "requires 400 when chunked is not the final coding",
		  http_parse_error_status(e));
}

static void test_status_and_names(void **state)
{
	(void)state;
	static const struct {
		enum http_parse_error e;
		unsigned status;
	} st[] = {
		{HTTP_PARSE_OK, 200},
		{HTTP_PARSE_BAD_REQUEST, 400},
		{HTTP_PARSE_URI_TOO_LONG, 414},
		{HTTP_PARSE_HEAD_TOO_LARGE, 431},
		{HTTP_PARSE_LENGTH_REQUIRED, 411},
		{HTTP_PARSE_NOT_IMPLEMENTED, 501},
		{HTTP_PARSE_VERSION, 505},
		{(enum http_parse_error)99, 400},
	};
	for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++)
		assert_int_equal(http_parse_error_status(st[i].e), st[i].status);
	static const char *const names[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER"};
	for (unsigned m = 0; m <= HTTP_METHOD_OTHER; m++)
		assert_string_equal(http_method_str((enum http_method)m), names[m]);
}

/* ---- http_query_get ---- */

struct query_case {
	const char *query;
	const char *name;
	size_t size; /* of the buffer; 0: 64 */
	int want;
	const char *value; /* when 1 */
};

static const struct query_case query_cases[] = {
	{"a=1&b=2", "a", 0, 1, "1"},
	{"a=1&b=2", "b", 0, 1, "2"},
	{"a=1&b=2", "c", 0, 0, NULL},
	{"", "a", 0, 0, NULL},
	{"a=", "a", 0, 1, ""},
	{"a", "a", 0, 1, ""},
	{"a&b=2", "b", 0, 1, "2"},
	{"a&b=2", "a", 0, 1, ""},
	{"&&a=1&", "a", 0, 1, "1"},
	{"aa=1&a=2", "a", 0, 1, "2"},
	{"a=1&aa=2", "aa", 0, 1, "2"},
	{"ab=1", "a", 0, 0, NULL},
	{"a=1&a=2", "a", 0, 1, "1"},  /* the first */
	{"A=1", "a", 0, 0, NULL},      /* names are case-sensitive */
	{"%61=1", "a", 0, 0, NULL},    /* names are compared as sent */
	{"a=b=c", "a", 0, 1, "b=c"},
	{"after=4ef9-ab&limit=10", "after", 0, 1, "4ef9-ab"},
	/* percent- and '+'-decoding (application/x-www-form-urlencoded) */
	{"x=a%20b+c", "x", 0, 1, "a b c"},
	{"x=%41%62%7e", "x", 0, 1, "Ab~"},
	{"x=%2B%2b", "x", 0, 1, "++"},
	{"x=%26%3D", "x", 0, 1, "&="},
	{"x=%C3%BC", "x", 0, 1, "\xc3\xbc"},
	{"x=%0a", "x", 0, 1, "\n"},
	{"x=+++", "x", 0, 1, "   "},
	/* malformed: -1, though only the pair asked for is looked at */
	{"x=%", "x", 0, -1, NULL},
	{"x=%4", "x", 0, -1, NULL},
	{"x=a%", "x", 0, -1, NULL},
	{"x=%zz", "x", 0, -1, NULL},
	{"x=%4g", "x", 0, -1, NULL},
	{"x=%g4", "x", 0, -1, NULL},
	{"x=%%41", "x", 0, -1, NULL},
	{"x=%4&y=1", "x", 0, -1, NULL},
	{"x=%zz&a=1", "a", 0, 1, "1"},
	/* NUL through %00: refused, it would cut the value short */
	{"x=%00", "x", 0, -1, NULL},
	{"x=a%00b", "x", 0, -1, NULL},
	{"x=a%00", "x", 0, -1, NULL},
	/* too long for the buffer (size includes the NUL) */
	{"x=1234567", "x", 8, 1, "1234567"},
	{"x=12345678", "x", 8, -1, NULL},
	{"x=%31%32%33%34%35%36%37", "x", 8, 1, "1234567"},
	{"x=%31%32%33%34%35%36%37%38", "x", 8, -1, NULL},
	{"x=", "x", 1, 1, ""},
	{"x=1", "x", 1, -1, NULL},
};

static void test_query_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(query_cases) / sizeof(query_cases[0]); i++) {
		const struct query_case *c = &query_cases[i];
		size_t size = c->size != 0 ? c->size : 64;
		char *buf = malloc(size);
		assert_non_null(buf);
		char *q = test_dup(c->query, strlen(c->query) + 1);
		int got = http_query_get(q, c->name, buf, size);
		if (got != c->want)
			fail_msg("query case %zu (\"%s\", \"%s\"): got %d, want %d", i, c->query, c->name, got, c->want);
		if (got == 1)
			assert_string_equal(buf, c->value);
		free(q);
		free(buf);
	}
}

/* ---- http_segment_decode ---- */

struct segment_case {
	const char *in;
	size_t len;
	size_t size; /* 0: 64 */
	bool ok;
	const char *out;
	size_t out_len;
};

#define SEG_OK(lit, o) { .in = lit, .len = sizeof(lit) - 1, .ok = true, .out = o, .out_len = sizeof(o) - 1 }
#define SEG_BAD(lit) { .in = lit, .len = sizeof(lit) - 1, .ok = false }

static const struct segment_case segment_cases[] = {
	SEG_OK("abc", "abc"),
	SEG_OK("", ""),
	SEG_OK("a%20b", "a b"),
	SEG_OK("a+b", "a+b"), /* '+' is only special in queries */
	SEG_OK("%41%7E%7e", "A~~"),
	SEG_OK("4ef9a2c0-1b2c-4d5e-8f90-0123456789ab", "4ef9a2c0-1b2c-4d5e-8f90-0123456789ab"),
	SEG_OK("%C3%BC", "\xc3\xbc"),
	SEG_OK("%25", "%"),
	SEG_OK("..", ".."), /* segments are ids, never file names */
	SEG_OK("user%40example.com", "user@example.com"),
	/* what would change the meaning of a path */
	SEG_BAD("%2F"),
	SEG_BAD("%2f"),
	SEG_BAD("a/b"),
	SEG_BAD("a%2Fb"),
	SEG_BAD("%00"),
	SEG_BAD("a%00"),
	SEG_BAD("a\0b"),
	SEG_BAD("%0a"),
	SEG_BAD("%0D%0A"),
	SEG_BAD("%1f"),
	SEG_BAD("%7f"),
	SEG_BAD("%09"),
	SEG_BAD("\x01"),
	SEG_BAD("a\x7f"),
	/* malformed */
	SEG_BAD("%"),
	SEG_BAD("a%"),
	SEG_BAD("%4"),
	SEG_BAD("%g0"),
	SEG_BAD("%0g"),
	SEG_BAD("%%"),
	SEG_BAD("% 1"),
	SEG_BAD("%-1"),
};

static void test_segment_table(void **state)
{
	char esc[128];
	(void)state;
	for (size_t i = 0; i < sizeof(segment_cases) / sizeof(segment_cases[0]); i++) {
		const struct segment_case *c = &segment_cases[i];
		size_t size = c->size != 0 ? c->size : 64;
		char *buf = malloc(size);
		assert_non_null(buf);
		char *in = test_dup(c->in, c->len);
		bool ok = http_segment_decode(in, c->len, buf, size);
		if (ok != c->ok)
			fail_msg("segment case %zu \"%s\": got %d", i, test_escape(c->in, c->len, esc, sizeof(esc)), ok);
		if (ok) {
			assert_int_equal(strlen(buf), c->out_len);
			assert_memory_equal(buf, c->out, c->out_len);
		}
		free(in);
		free(buf);
	}
}

/* The length given is the segment: the rest of the path is not read; the buffer bounds it. */
static void test_segment_bounds(void **state)
{
	char buf[4];
	(void)state;
	static const char path[] = "abc/def";
	assert_true(http_segment_decode(path, 3, buf, sizeof(buf)));
	assert_string_equal(buf, "abc");
	assert_false(http_segment_decode(path, 4, buf, sizeof(buf)));
	assert_false(http_segment_decode("abcd", 4, buf, sizeof(buf)));
	assert_true(http_segment_decode("%61%62%63", 9, buf, sizeof(buf)));
	assert_string_equal(buf, "abc");
	assert_false(http_segment_decode("%61%62%63%64", 12, buf, sizeof(buf)));
	/* a '%' at the end of the given length is malformed even when hex digits follow in memory */
	assert_false(http_segment_decode("a%41", 2, buf, sizeof(buf)));
	assert_false(http_segment_decode("a%41", 3, buf, sizeof(buf)));
	/* every single octet */
	for (int c = 0; c < 256; c++) {
		char in = (char)c;
		bool ok = http_segment_decode(&in, 1, buf, sizeof(buf));
		assert_int_equal(ok, c >= 0x20 && c != 0x7f && c != '/' && c != '%');
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_line_table),
		cmocka_unit_test(test_request_line_every_octet),
		cmocka_unit_test(test_request_line_limits),
		cmocka_unit_test(test_head_table),
		cmocka_unit_test(test_head_accounting),
		cmocka_unit_test(test_head_values),
		cmocka_unit_test(test_authorization_limit),
		cmocka_unit_test(test_idempotency_key_limit),
		cmocka_unit_test(test_cookie_and_csrf_fields),
		cmocka_unit_test(test_head_limits),
		cmocka_unit_test(test_bug_connection_close_then_keep_alive_10),
		cmocka_unit_test(test_bug_chunked_not_last),
		cmocka_unit_test(test_status_and_names),
		cmocka_unit_test(test_query_table),
		cmocka_unit_test(test_segment_table),
		cmocka_unit_test(test_segment_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
