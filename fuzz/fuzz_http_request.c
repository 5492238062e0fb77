/* fuzz_http_request.c — libFuzzer harness for src/http/parse.c. The input is a request head: split
 * into CRLF lines and fed as src/http/session.c does (empty lines before the request line skipped,
 * lines longer than HTTP_LINE_MAX refused, the empty line ends the head, the first error stops),
 * with the invariants of struct http_request checked after every step. The query and every path
 * segment then go through http_query_get and http_segment_decode, and so do slices of the raw input,
 * to reach octets the request line refuses. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/parse.h"

/* Not assert(): it must hold in every build. */
#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			__builtin_trap(); \
	} while (0)

/* s is NUL-terminated within its size octets; its length */
static size_t fuzz_check_str(const char *s, size_t size)
{
	size_t n = strnlen(s, size);
	FUZZ_CHECK(n < size);
	return n;
}

/* field values as kept: no control character but HTAB, no leading OWS, and no trailing OWS
 * either when the value is never cut (cut: it may end inside the value's own spaces) */
static void fuzz_check_value(const char *s, size_t size, bool whole)
{
	size_t n = fuzz_check_str(s, size);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(((unsigned char)s[i] >= 0x20 && s[i] != 0x7f) || s[i] == '\t');
	if (n > 0)
		FUZZ_CHECK(s[0] != ' ' && s[0] != '\t');
	if (n > 0 && whole)
		FUZZ_CHECK(s[n - 1] != ' ' && s[n - 1] != '\t');
}

/* after every step that succeeded, the request line included */
static void fuzz_check_request(const struct http_request *r)
{
	FUZZ_CHECK(r->has_length || r->content_length == 0);
	FUZZ_CHECK(r->fields <= HTTP_FIELDS_MAX);
	FUZZ_CHECK(r->head_size <= HTTP_HEAD_MAX);
	fuzz_check_value(r->authorization, sizeof(r->authorization), true);
	fuzz_check_value(r->content_type, sizeof(r->content_type), false);
	fuzz_check_value(r->batch_validation, sizeof(r->batch_validation), false);
	fuzz_check_value(r->user_agent, sizeof(r->user_agent), false);
	size_t klen = strnlen(r->idempotency_key, sizeof(r->idempotency_key));
	FUZZ_CHECK(klen <= HTTP_IDEMPOTENCY_KEY_MAX);
	fuzz_check_value(r->idempotency_key, sizeof(r->idempotency_key), true);
	/* the request line was taken: the method is a token, the target visible ASCII in origin-form */
	size_t mlen = fuzz_check_str(r->method_text, sizeof(r->method_text));
	FUZZ_CHECK(mlen > 0);
	FUZZ_CHECK(r->method == HTTP_METHOD_OTHER ? strcmp(http_method_str(r->method), "OTHER") == 0
						  : strcmp(http_method_str(r->method), r->method_text) == 0);
	if (r->method == HTTP_METHOD_OTHER)
		for (unsigned m = HTTP_METHOD_GET; m < HTTP_METHOD_OTHER; m++)
			FUZZ_CHECK(strcmp(http_method_str((enum http_method)m), r->method_text) != 0);
	size_t plen = fuzz_check_str(r->path, sizeof(r->path));
	size_t qlen = fuzz_check_str(r->query, sizeof(r->query));
	FUZZ_CHECK(plen >= 1 && r->path[0] == '/');
	for (size_t i = 0; i < plen; i++) {
		unsigned char c = (unsigned char)r->path[i];
		FUZZ_CHECK(c > 0x20 && c < 0x7f && c != '?' && c != '#');
	}
	for (size_t i = 0; i < qlen; i++) {
		unsigned char c = (unsigned char)r->query[i];
		FUZZ_CHECK(c > 0x20 && c < 0x7f && c != '#');
	}
	FUZZ_CHECK(r->minor <= 9);
}

static void fuzz_check_error(enum http_parse_error e, const char *err)
{
	FUZZ_CHECK(err != NULL && err[0] != '\0');
	unsigned st = http_parse_error_status(e);
	FUZZ_CHECK(st == 400 || st == 411 || st == 414 || st == 431 || st == 501 || st == 505);
}

/* http_query_get on query for name, into buffers of a few sizes: a found value fits, and a smaller
 * buffer never finds what a larger one refuses as malformed */
static void fuzz_query(const char *query, const char *name)
{
	static const size_t sizes[] = {1, 2, 8, 64, HTTP_QUERY_MAX};
	char *buf = malloc(HTTP_QUERY_MAX);
	if (buf == NULL)
		return;
	int prev = -2;
	char big[HTTP_QUERY_MAX];
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		int got = http_query_get(query, name, buf, sizes[k]);
		FUZZ_CHECK(got >= -1 && got <= 1);
		if (got == 1) {
			size_t n = fuzz_check_str(buf, sizes[k]);
			FUZZ_CHECK(n <= strlen(query));
		}
		if (k + 1 == sizeof(sizes) / sizeof(sizes[0]) && got == 1)
			memcpy(big, buf, strlen(buf) + 1);
		/* absent is absent whatever the size; found in a small buffer stays found */
		if (prev == 0)
			FUZZ_CHECK(got == 0);
		if (prev == 1)
			FUZZ_CHECK(got == 1);
		prev = got;
	}
	/* the value of the largest buffer agrees with a size-exact one */
	if (prev == 1) {
		size_t n = strlen(big);
		FUZZ_CHECK(http_query_get(query, name, buf, n + 1) == 1 && strcmp(buf, big) == 0);
		FUZZ_CHECK(n == 0 || http_query_get(query, name, buf, n) == -1);
	}
	free(buf);
}

static void fuzz_segment(const char *s, size_t len)
{
	char *buf = malloc(len + 1);
	if (buf == NULL)
		return;
	bool ok = http_segment_decode(s, len, buf, len + 1);
	if (ok) {
		size_t n = fuzz_check_str(buf, len + 1);
		FUZZ_CHECK(n <= len);
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)buf[i];
			FUZZ_CHECK(c >= 0x20 && c != 0x7f && c != '/');
		}
		/* an exact buffer is enough, one octet less is not */
		FUZZ_CHECK(http_segment_decode(s, len, buf, n + 1));
		FUZZ_CHECK(n == 0 || !http_segment_decode(s, len, buf, n));
	}
	free(buf);
}

/* The path's segments between '/' and the query's usual names, plus one taken from the query. */
static void fuzz_target(const struct http_request *r)
{
	const char *p = r->path;
	while (*p != '\0') {
		const char *slash = strchr(p + 1, '/');
		size_t len = slash != NULL ? (size_t)(slash - p - 1) : strlen(p + 1);
		fuzz_segment(p + 1, len);
		if (slash == NULL)
			break;
		p = slash;
	}
	static const char *const names[] = {"limit", "after", "before", "origin", "", "a"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		fuzz_query(r->query, names[i]);
	char name[64];
	size_t n = strcspn(r->query, "=&");
	if (n < sizeof(name)) {
		memcpy(name, r->query, n);
		name[n] = '\0';
		fuzz_query(r->query, name);
	}
}

static void fuzz_head(const char *data, size_t size)
{
	struct http_request r;
	http_request_init(&r);
	bool line_done = false;
	size_t pos = 0;
	while (pos < size) {
		const char *lf = memchr(data + pos, '\n', size - pos);
		/* an unfinished line: the session would wait for more */
		if (lf == NULL)
			return;
		size_t end = (size_t)(lf - data);
		/* LINE_READ_TOO_LONG: no LF within HTTP_LINE_MAX octets */
		if (end + 1 - pos > HTTP_LINE_MAX)
			return;
		/* LINE_READ_BARE_EOL: a bare LF */
		if (end == pos || data[end - 1] != '\r')
			return;
		size_t len = end - 1 - pos;
		/* LINE_READ_BARE_EOL: a bare CR inside */
		if (memchr(data + pos, '\r', len) != NULL)
			return;
		/* the line, in a block of its own length (the session's copy is NUL-terminated; the
		 * parser must not need that) */
		char *line = malloc(len > 0 ? len : 1);
		if (line == NULL)
			return;
		memcpy(line, data + pos, len);
		pos = end + 1;
		const char *err = NULL;
		enum http_parse_error e;
		if (!line_done) {
			if (len == 0) { /* RFC 9112 §2.2: empty lines before a request line are ignored */
				free(line);
				continue;
			}
			e = http_parse_request_line(&r, line, len, &err);
			if (e == HTTP_PARSE_OK) {
				FUZZ_CHECK(r.head_size == len + 2);
				FUZZ_CHECK(r.keep_alive == (r.minor >= 1));
				FUZZ_CHECK(memchr(line, '\0', len) == NULL);
			}
			line_done = true;
		} else if (len == 0) {
			free(line);
			e = http_parse_head_end(&r, &err);
			if (e == HTTP_PARSE_OK) {
				FUZZ_CHECK(!r.chunked);
				FUZZ_CHECK(r.minor == 0 || r.has_host);
				fuzz_check_request(&r);
				fuzz_target(&r);
			} else {
				fuzz_check_error(e, err);
				FUZZ_CHECK(e == HTTP_PARSE_BAD_REQUEST || e == HTTP_PARSE_LENGTH_REQUIRED);
				FUZZ_CHECK(e != HTTP_PARSE_LENGTH_REQUIRED || (r.chunked && !r.has_length && r.minor >= 1));
			}
			return;
		} else {
			size_t before = r.head_size;
			e = http_parse_field_line(&r, line, len, &err);
			FUZZ_CHECK(r.head_size == before + len + 2);
			if (e == HTTP_PARSE_OK) {
				/* an accepted field line has a token name and no NUL, CR or LF */
				const char *colon = memchr(line, ':', len);
				FUZZ_CHECK(colon != NULL && colon != line);
				FUZZ_CHECK(memchr(line, '\0', len) == NULL);
				FUZZ_CHECK(line[0] != ' ' && line[0] != '\t');
				FUZZ_CHECK(colon[-1] != ' ' && colon[-1] != '\t');
			} else {
				FUZZ_CHECK(e == HTTP_PARSE_BAD_REQUEST || e == HTTP_PARSE_HEAD_TOO_LARGE ||
					   e == HTTP_PARSE_NOT_IMPLEMENTED);
			}
		}
		free(line);
		if (e != HTTP_PARSE_OK) {
			fuzz_check_error(e, err);
			return;
		}
		fuzz_check_request(&r);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_head((const char *)data, size);

	/* the decoders on the raw input, with every octet: the first line as a segment, and as a
	 * query asked for its first name */
	const char *s = (const char *)data;
	size_t n = size;
	const char *lf = memchr(s, '\n', n);
	if (lf != NULL)
		n = (size_t)(lf - s);
	if (n > HTTP_QUERY_MAX)
		n = HTTP_QUERY_MAX;
	fuzz_segment(s, n);
	char *q = malloc(n + 1);
	if (q == NULL)
		return 0;
	memcpy(q, s, n);
	q[n] = '\0';
	char name[64];
	size_t k = strcspn(q, "=&");
	if (k < sizeof(name)) {
		memcpy(name, q, k);
		name[k] = '\0';
		fuzz_query(q, name);
	}
	free(q);
	return 0;
}
