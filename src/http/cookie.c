/* cookie.c — the Cookie field's name=value pairs, read as user agents send them (RFC 6265 §5.4:
 * "; "-separated; we also forgive missing or extra spaces), and the dashboard's Set-Cookie line. */
#include "http/cookie.h"

#include <stdio.h>
#include <string.h>

/* RFC 6265 §4.1.1 cookie-octet: %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E */
static bool cookie_octet(unsigned char c)
{
	return c == 0x21 || (c >= 0x23 && c <= 0x2b) || (c >= 0x2d && c <= 0x3a) || (c >= 0x3c && c <= 0x5b) ||
	       (c >= 0x5d && c <= 0x7e);
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

int http_cookie_get(const char *header, const char *name, char *out, size_t size)
{
	size_t nlen = strlen(name);
	const char *p = header;
	if (size == 0)
		return -1;
	out[0] = '\0';
	while (*p != '\0') {
		while (is_space(*p) || *p == ';')
			p++;
		const char *pair = p;
		while (*p != '\0' && *p != ';')
			p++;
		const char *end = p;
		const char *eq = memchr(pair, '=', (size_t)(end - pair));
		if (eq == NULL)
			continue; /* §5.2 step 2: a pair without '=' is ignored */
		const char *n_end = eq;
		while (n_end > pair && is_space(n_end[-1]))
			n_end--;
		if ((size_t)(n_end - pair) != nlen || memcmp(pair, name, nlen) != 0)
			continue;
		const char *v = eq + 1;
		while (v < end && is_space(*v))
			v++;
		while (end > v && is_space(end[-1]))
			end--;
		/* §4.1.1: cookie-value = *cookie-octet / ( DQUOTE *cookie-octet DQUOTE ) */
		if (end - v >= 2 && v[0] == '"' && end[-1] == '"')
			v++, end--;
		size_t vlen = (size_t)(end - v);
		if (vlen >= size)
			return -1;
		for (size_t i = 0; i < vlen; i++)
			if (!cookie_octet((unsigned char)v[i]))
				return -1;
		memcpy(out, v, vlen);
		out[vlen] = '\0';
		return 1;
	}
	return 0;
}

bool http_cookie_set_line(char *out, size_t size, const char *name, const char *value, unsigned max_age, bool secure)
{
	/* SameSite=Strict: the browser never sends the cookie on a request another site starts
	 * (draft-ietf-httpbis-rfc6265bis §5.6.7), the first of the dashboard's CSRF defences */
	int n = snprintf(out, size, "Set-Cookie: %s=%s; Path=/; Max-Age=%u; HttpOnly; SameSite=Strict%s\r\n", name, value,
			 max_age, secure ? "; Secure" : "");
	return n > 0 && (size_t)n < size;
}
