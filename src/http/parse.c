/* parse.c — HTTP/1.1 request heads (RFC 9112). Strict where leniency lets two parsers read one
 * request differently: no whitespace before a field's colon, no obsolete line folding, one
 * agreed Content-Length, no Transfer-Encoding next to it. */
#include "http/parse.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/hex.h"

const char *http_method_str(enum http_method m)
{
	switch (m) {
	case HTTP_METHOD_GET: return "GET";
	case HTTP_METHOD_HEAD: return "HEAD";
	case HTTP_METHOD_POST: return "POST";
	case HTTP_METHOD_PUT: return "PUT";
	case HTTP_METHOD_PATCH: return "PATCH";
	case HTTP_METHOD_DELETE: return "DELETE";
	case HTTP_METHOD_OPTIONS: return "OPTIONS";
	case HTTP_METHOD_OTHER: break;
	}
	return "OTHER";
}

unsigned http_parse_error_status(enum http_parse_error e)
{
	switch (e) {
	case HTTP_PARSE_OK: return 200;
	case HTTP_PARSE_BAD_REQUEST: return 400;
	case HTTP_PARSE_URI_TOO_LONG: return 414;
	case HTTP_PARSE_HEAD_TOO_LARGE: return 431;
	case HTTP_PARSE_LENGTH_REQUIRED: return 411;
	case HTTP_PARSE_NOT_IMPLEMENTED: return 501;
	case HTTP_PARSE_VERSION: return 505;
	}
	return 400;
}

void http_request_init(struct http_request *r)
{
	memset(r, 0, sizeof(*r));
}

/* RFC 9110 §5.6.2 tchar */
static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool token_ok(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_tchar((unsigned char)s[i]))
			return false;
	return true;
}

static enum http_method method_of(const char *s, size_t len)
{
	static const enum http_method all[] = {HTTP_METHOD_GET, HTTP_METHOD_HEAD, HTTP_METHOD_POST, HTTP_METHOD_PUT,
					       HTTP_METHOD_PATCH, HTTP_METHOD_DELETE, HTTP_METHOD_OPTIONS};
	/* RFC 9110 §9.1: the method token is case-sensitive */
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		const char *name = http_method_str(all[i]);
		if (strlen(name) == len && memcmp(name, s, len) == 0)
			return all[i];
	}
	return HTTP_METHOD_OTHER;
}

enum http_parse_error http_parse_request_line(struct http_request *r, const char *line, size_t len,
					      const char **error_r)
{
	/* RFC 9112 §3: method SP request-target SP HTTP-version, single spaces */
	const char *sp1 = memchr(line, ' ', len);
	if (sp1 == NULL || sp1 == line) {
		*error_r = "malformed request line";
		return HTTP_PARSE_BAD_REQUEST;
	}
	size_t mlen = (size_t)(sp1 - line);
	if (!token_ok(line, mlen) || mlen >= sizeof(r->method_text)) {
		*error_r = "malformed method";
		return HTTP_PARSE_BAD_REQUEST;
	}
	const char *target = sp1 + 1, *end = line + len;
	const char *sp2 = memchr(target, ' ', (size_t)(end - target));
	if (sp2 == NULL || sp2 == target) {
		*error_r = "malformed request line";
		return HTTP_PARSE_BAD_REQUEST;
	}
	const char *version = sp2 + 1;
	size_t vlen = (size_t)(end - version);
	if (vlen != 8 || memcmp(version, "HTTP/", 5) != 0 || version[6] != '.' || version[5] < '0' ||
	    version[5] > '9' || version[7] < '0' || version[7] > '9') {
		*error_r = "malformed HTTP version";
		return HTTP_PARSE_BAD_REQUEST;
	}
	if (version[5] != '1') {
		*error_r = "only HTTP/1.x is served here";
		return HTTP_PARSE_VERSION;
	}
	r->minor = (unsigned)(version[7] - '0');
	memcpy(r->method_text, line, mlen);
	r->method_text[mlen] = '\0';
	r->method = method_of(line, mlen);

	size_t tlen = (size_t)(sp2 - target);
	for (size_t i = 0; i < tlen; i++) {
		unsigned char c = (unsigned char)target[i];
		if (c <= 0x20 || c >= 0x7f) { /* RFC 3986 §2: the target is visible ASCII */
			*error_r = "malformed request target";
			return HTTP_PARSE_BAD_REQUEST;
		}
	}
	/* RFC 9112 §3.2.1: origin-form; we serve nothing under any other form */
	if (target[0] != '/') {
		*error_r = "the request target must be a path (origin-form)";
		return HTTP_PARSE_BAD_REQUEST;
	}
	const char *q = memchr(target, '?', tlen);
	size_t plen = q != NULL ? (size_t)(q - target) : tlen;
	size_t qlen = q != NULL ? tlen - plen - 1 : 0;
	if (plen >= sizeof(r->path) || qlen >= sizeof(r->query)) {
		*error_r = "request target too long";
		return HTTP_PARSE_URI_TOO_LONG;
	}
	const char *hash = memchr(target, '#', tlen);
	if (hash != NULL) { /* RFC 9112 §3.2: no fragment in a request target */
		*error_r = "malformed request target";
		return HTTP_PARSE_BAD_REQUEST;
	}
	memcpy(r->path, target, plen);
	r->path[plen] = '\0';
	if (q != NULL)
		memcpy(r->query, q + 1, qlen);
	r->query[qlen] = '\0';
	/* RFC 9112 §9.3: 1.1 persists unless told otherwise; 1.0 only when asked */
	r->keep_alive = r->minor >= 1;
	r->head_size = len + 2;
	return HTTP_PARSE_OK;
}

static bool name_is(const char *name, size_t nlen, const char *want)
{
	return strlen(want) == nlen && strncasecmp(name, want, nlen) == 0;
}

static void copy_value(char *dst, size_t size, const char *v, size_t vlen)
{
	if (vlen >= size)
		vlen = size - 1;
	memcpy(dst, v, vlen);
	dst[vlen] = '\0';
}

/* RFC 9110 §8.6: 1*DIGIT; a list of equal values ("5, 5") is one length (RFC 9112 §6.3 item 5). */
static bool content_length_parse(const char *v, size_t vlen, uint64_t *n_r)
{
	bool have = false;
	uint64_t first = 0;
	size_t i = 0;
	while (i < vlen) {
		uint64_t n = 0;
		size_t digits = 0;
		while (i < vlen && v[i] >= '0' && v[i] <= '9') {
			if (n > (UINT64_MAX - 9) / 10)
				return false;
			n = n * 10 + (uint64_t)(v[i] - '0');
			i++, digits++;
		}
		if (digits == 0 || (have && n != first))
			return false;
		first = n, have = true;
		while (i < vlen && (v[i] == ' ' || v[i] == '\t'))
			i++;
		if (i < vlen) {
			if (v[i] != ',')
				return false;
			i++;
			while (i < vlen && (v[i] == ' ' || v[i] == '\t'))
				i++;
			if (i == vlen)
				return false;
		}
	}
	*n_r = first;
	return have;
}

/* Whether the comma-separated list v holds token want (case-insensitive, RFC 9110 §5.6.1). */
static bool list_has(const char *v, size_t vlen, const char *want)
{
	size_t i = 0, wlen = strlen(want);
	while (i < vlen) {
		while (i < vlen && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t start = i;
		while (i < vlen && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
			i++;
		if (i - start == wlen && strncasecmp(v + start, want, wlen) == 0)
			return true;
		while (i < vlen && v[i] != ',')
			i++;
	}
	return false;
}

/* Whether the last element of the list v is token want. */
static bool list_last_is(const char *v, size_t vlen, const char *want)
{
	size_t end = vlen;
	while (end > 0 && (v[end - 1] == ' ' || v[end - 1] == '\t' || v[end - 1] == ','))
		end--;
	size_t start = end;
	while (start > 0 && v[start - 1] != ',' && v[start - 1] != ' ' && v[start - 1] != '\t')
		start--;
	size_t wlen = strlen(want);
	return end - start == wlen && strncasecmp(v + start, want, wlen) == 0;
}

static enum http_parse_error field_apply(struct http_request *r, const char *name, size_t nlen, const char *v,
					 size_t vlen, const char **error_r)
{
	if (name_is(name, nlen, "content-length")) {
		uint64_t n;
		if (!content_length_parse(v, vlen, &n) || (r->has_length && n != r->content_length)) {
			*error_r = "invalid Content-Length";
			return HTTP_PARSE_BAD_REQUEST;
		}
		r->has_length = true;
		r->content_length = n;
	} else if (name_is(name, nlen, "transfer-encoding")) {
		/* RFC 9112 §6.1: chunked is the last coding; anything else is not ours to decode, and
		 * chunked anywhere but last leaves the body's end unknown (§6.3 item 4: 400) */
		if (list_last_is(v, vlen, "chunked")) {
			r->chunked = true;
		} else if (list_has(v, vlen, "chunked")) {
			*error_r = "chunked is not the last transfer coding";
			return HTTP_PARSE_BAD_REQUEST;
		} else {
			*error_r = "unsupported Transfer-Encoding";
			return HTTP_PARSE_NOT_IMPLEMENTED;
		}
	} else if (name_is(name, nlen, "host")) {
		/* RFC 9112 §3.2: exactly one Host */
		if (r->has_host) {
			*error_r = "more than one Host field";
			return HTTP_PARSE_BAD_REQUEST;
		}
		r->has_host = true;
		if (vlen < sizeof(r->host))
			copy_value(r->host, sizeof(r->host), v, vlen);
	} else if (name_is(name, nlen, "connection")) {
		/* RFC 9112 §9.3: "close" wins, in whatever field or order it comes */
		if (list_has(v, vlen, "close"))
			r->close = true;
		else if (list_has(v, vlen, "keep-alive") && r->minor == 0)
			r->keep_alive = true;
	} else if (name_is(name, nlen, "expect")) {
		if (vlen == 12 && strncasecmp(v, "100-continue", 12) == 0)
			r->expect_continue = true;
	} else if (name_is(name, nlen, "authorization")) {
		if (vlen >= sizeof(r->authorization)) {
			*error_r = "Authorization field too long";
			return HTTP_PARSE_HEAD_TOO_LARGE;
		}
		copy_value(r->authorization, sizeof(r->authorization), v, vlen);
	} else if (name_is(name, nlen, "idempotency-key")) {
		if (vlen > HTTP_IDEMPOTENCY_KEY_MAX)
			r->idempotency_key_too_long = true;
		else
			copy_value(r->idempotency_key, sizeof(r->idempotency_key), v, vlen);
	} else if (name_is(name, nlen, "content-type")) {
		copy_value(r->content_type, sizeof(r->content_type), v, vlen);
	} else if (name_is(name, nlen, "x-batch-validation")) {
		copy_value(r->batch_validation, sizeof(r->batch_validation), v, vlen);
	} else if (name_is(name, nlen, "user-agent")) {
		copy_value(r->user_agent, sizeof(r->user_agent), v, vlen);
	} else if (name_is(name, nlen, "cookie")) {
		size_t have = strlen(r->cookie), sep = have > 0 ? 2 : 0;
		if (have + sep + vlen >= sizeof(r->cookie)) {
			r->cookie_too_long = true;
		} else {
			if (sep > 0)
				memcpy(r->cookie + have, "; ", 2);
			copy_value(r->cookie + have + sep, sizeof(r->cookie) - have - sep, v, vlen);
		}
	} else if (name_is(name, nlen, "x-csrf-token")) {
		copy_value(r->csrf_token, sizeof(r->csrf_token), v, vlen);
	}
	return HTTP_PARSE_OK;
}

enum http_parse_error http_parse_field_line(struct http_request *r, const char *line, size_t len,
					    const char **error_r)
{
	r->head_size += len + 2;
	if (r->head_size > HTTP_HEAD_MAX || ++r->fields > HTTP_FIELDS_MAX) {
		*error_r = "request head too large";
		return HTTP_PARSE_HEAD_TOO_LARGE;
	}
	/* RFC 9112 §5.2: obsolete line folding may be refused with 400 */
	if (len > 0 && (line[0] == ' ' || line[0] == '\t')) {
		*error_r = "obsolete line folding";
		return HTTP_PARSE_BAD_REQUEST;
	}
	const char *colon = memchr(line, ':', len);
	/* RFC 9112 §5.1: no whitespace between the field name and the colon */
	if (colon == NULL || !token_ok(line, (size_t)(colon - line))) {
		*error_r = "malformed header field";
		return HTTP_PARSE_BAD_REQUEST;
	}
	size_t nlen = (size_t)(colon - line);
	const char *v = colon + 1, *end = line + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	for (const char *p = v; p < end; p++) {
		unsigned char c = (unsigned char)*p;
		/* RFC 9110 §5.5: field-vchar, SP, HTAB, obs-text; CR, LF and NUL never */
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			*error_r = "control character in a header field";
			return HTTP_PARSE_BAD_REQUEST;
		}
	}
	return field_apply(r, line, nlen, v, (size_t)(end - v), error_r);
}

enum http_parse_error http_parse_head_end(struct http_request *r, const char **error_r)
{
	if (r->close)
		r->keep_alive = false;
	if (r->minor >= 1 && !r->has_host) {
		*error_r = "missing Host field";
		return HTTP_PARSE_BAD_REQUEST;
	}
	if (r->chunked) {
		/* RFC 9112 §6.3 items 3-4: Transfer-Encoding with Content-Length, or in 1.0, is how
		 * requests are smuggled; refuse rather than pick one */
		if (r->has_length || r->minor == 0) {
			*error_r = "Transfer-Encoding together with Content-Length";
			return HTTP_PARSE_BAD_REQUEST;
		}
		/* RFC 9110 §15.5.12: we take bodies of a declared length only */
		*error_r = "send the body with a Content-Length";
		return HTTP_PARSE_LENGTH_REQUIRED;
	}
	return HTTP_PARSE_OK;
}

/* Percent-decodes (and '+' as space when plus) s[0..len) into buf; false when malformed or too long. */
static bool pct_decode(const char *s, size_t len, bool plus, char *buf, size_t size, size_t *out_r)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '%') {
			if (len - i < 3)
				return false;
			int hi = hex_digit_value((unsigned char)s[i + 1]), lo = hex_digit_value((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				return false;
			c = (char)(hi * 16 + lo);
			i += 2;
		} else if (c == '+' && plus) {
			c = ' ';
		}
		if (o + 1 >= size)
			return false;
		buf[o++] = c;
	}
	buf[o] = '\0';
	*out_r = o;
	return true;
}

int http_query_get(const char *query, const char *name, char *buf, size_t size)
{
	size_t nlen = strlen(name);
	const char *p = query;
	while (*p != '\0') {
		const char *amp = strchr(p, '&');
		size_t plen = amp != NULL ? (size_t)(amp - p) : strlen(p);
		const char *eq = memchr(p, '=', plen);
		size_t klen = eq != NULL ? (size_t)(eq - p) : plen;
		if (klen == nlen && memcmp(p, name, nlen) == 0) {
			const char *v = eq != NULL ? eq + 1 : p + plen;
			size_t vlen = (size_t)(p + plen - v), out;
			if (!pct_decode(v, vlen, true, buf, size, &out) || memchr(buf, '\0', out) != NULL)
				return -1;
			return 1;
		}
		p += plen;
		if (*p == '&')
			p++;
	}
	return 0;
}

bool http_segment_decode(const char *s, size_t len, char *buf, size_t size)
{
	size_t out;
	if (!pct_decode(s, len, false, buf, size, &out))
		return false;
	for (size_t i = 0; i < out; i++) {
		unsigned char c = (unsigned char)buf[i];
		if (c < 0x20 || c == 0x7f || c == '/')
			return false;
	}
	return true;
}
