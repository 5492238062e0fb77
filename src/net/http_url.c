/* http_url.c — the strict parser of user-given http(s) URLs and the SSRF address classes
 * (http_url.h). */
#include "net/http_url.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *http_url_error_str(enum http_url_error e)
{
	switch (e) {
	case HTTP_URL_OK: return "ok";
	case HTTP_URL_ERR_TOO_LONG: return "too_long";
	case HTTP_URL_ERR_SCHEME: return "scheme";
	case HTTP_URL_ERR_USERINFO: return "userinfo";
	case HTTP_URL_ERR_HOST: return "host";
	case HTTP_URL_ERR_PORT: return "port";
	case HTTP_URL_ERR_CHAR: return "char";
	case HTTP_URL_ERR_FRAGMENT: return "fragment";
	}
	return "unknown";
}

const char *http_url_addr_class_str(enum http_url_addr_class c)
{
	switch (c) {
	case HTTP_URL_ADDR_PUBLIC: return "public";
	case HTTP_URL_ADDR_UNSPECIFIED: return "unspecified";
	case HTTP_URL_ADDR_LOOPBACK: return "loopback";
	case HTTP_URL_ADDR_PRIVATE: return "private";
	case HTTP_URL_ADDR_LINK_LOCAL: return "link-local";
	case HTTP_URL_ADDR_SHARED: return "shared (CGNAT)";
	case HTTP_URL_ADDR_UNIQUE_LOCAL: return "unique-local";
	case HTTP_URL_ADDR_MULTICAST: return "multicast";
	case HTTP_URL_ADDR_RESERVED: return "reserved";
	}
	return "unknown";
}

/* ---- parsing ---- */

static bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_hex(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* RFC 3986 §3.3 pchar without pct-encoded, plus "/" and "?" (§3.4): what a path and query may hold. */
static bool is_path_char(unsigned char c)
{
	return is_alpha(c) || is_digit(c) || (c != '\0' && strchr("-._~!$&'()*+,;=:@/?", c) != NULL);
}

/* A decimal octet of a dotted quad: 0..255 without leading zeros (some parsers read "010" as
 * octal, so it is no address we could judge the same way as the client does). */
static bool quad_part(const char *s, size_t len)
{
	if (len == 0 || len > 3 || (len > 1 && s[0] == '0'))
		return false;
	unsigned v = 0;
	for (size_t i = 0; i < len; i++) {
		if (!is_digit((unsigned char)s[i]))
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	return v <= 255;
}

static bool dotted_quad(const char *s, size_t len)
{
	size_t start = 0, parts = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '.')
			continue;
		if (++parts > 4 || !quad_part(s + start, i - start))
			return false;
		start = i + 1;
	}
	return parts == 4;
}

/* WHATWG URL §3.5 "ends in a number": the last label is all digits, or 0x and hex digits. */
static bool ends_in_number(const char *s, size_t len)
{
	size_t start = len;
	while (start > 0 && s[start - 1] != '.')
		start--;
	const char *l = s + start;
	size_t n = len - start;
	if (n == 0)
		return false;
	if (n >= 2 && l[0] == '0' && (l[1] == 'x' || l[1] == 'X')) {
		for (size_t i = 2; i < n; i++)
			if (!is_hex((unsigned char)l[i]))
				return false;
		return true;
	}
	for (size_t i = 0; i < n; i++)
		if (!is_digit((unsigned char)l[i]))
			return false;
	return true;
}

/* A DNS name of letters, digits, '-' and '_' (RFC 1123 §2.1, with the underscore that service
 * names use), labels of 1..63 octets not starting or ending with '-'. */
static bool host_name(const char *s, size_t len)
{
	if (len == 0 || len > HTTP_URL_HOST_MAX)
		return false;
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_')
			return false;
		if ((label == 0 && c == '-') || ++label > 63)
			return false;
	}
	return label > 0 && s[len - 1] != '-';
}

static enum http_url_error fail(enum http_url_error e, const char *why, const char **error_r)
{
	*error_r = why;
	return e;
}

/* The bracketed IPv6 literal of RFC 3986 §3.2.2 (no IPvFuture, no zone: RFC 6874 zones name an
 * interface of this host, which is never a webhook's). */
static enum http_url_error parse_ipv6(const char *s, size_t len, struct http_url *u, const char **error_r)
{
	char buf[64];
	if (len == 0 || len >= sizeof(buf))
		return fail(HTTP_URL_ERR_HOST, "the IPv6 address in brackets is malformed", error_r);
	for (size_t i = 0; i < len; i++)
		if (!is_hex((unsigned char)s[i]) && s[i] != ':' && s[i] != '.')
			return fail(HTTP_URL_ERR_HOST, "the IPv6 address in brackets is malformed (no zones)",
				    error_r);
	memcpy(buf, s, len);
	buf[len] = '\0';
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&u->addr;
	if (inet_pton(AF_INET6, buf, &a6->sin6_addr) != 1)
		return fail(HTTP_URL_ERR_HOST, "the IPv6 address in brackets is malformed", error_r);
	a6->sin6_family = AF_INET6;
	for (size_t i = 0; i < len; i++)
		u->host[i] = (char)(s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 'a' : s[i]);
	u->host[len] = '\0';
	u->host_kind = HTTP_URL_HOST_IPV6;
	return HTTP_URL_OK;
}

static enum http_url_error parse_host(const char *s, size_t len, struct http_url *u, const char **error_r)
{
	if (len == 0)
		return fail(HTTP_URL_ERR_HOST, "the URL has no host", error_r);
	/* a name may end in the root's dot; an address does not, but WHATWG parsers drop it, so judge
	 * "127.0.0.1." as the address it is */
	size_t core = s[len - 1] == '.' ? len - 1 : len;
	if (core == 0 || core > HTTP_URL_HOST_MAX)
		return fail(HTTP_URL_ERR_HOST, "the host name is empty or too long", error_r);
	if (ends_in_number(s, core)) {
		if (!dotted_quad(s, core))
			return fail(HTTP_URL_ERR_HOST,
				    "a numeric host must be a dotted-quad IPv4 address such as 192.0.2.1",
				    error_r);
		char buf[16];
		memcpy(buf, s, core);
		buf[core] = '\0';
		struct sockaddr_in *a4 = (struct sockaddr_in *)&u->addr;
		if (inet_pton(AF_INET, buf, &a4->sin_addr) != 1)
			return fail(HTTP_URL_ERR_HOST, "the IPv4 address is malformed", error_r);
		a4->sin_family = AF_INET;
		memcpy(u->host, buf, core + 1);
		u->host_kind = HTTP_URL_HOST_IPV4;
		return HTTP_URL_OK;
	}
	static const char why_name[] = "the host must be a DNS name (letters, digits, '-'; internationalized "
				       "names as xn--), an IPv4 address or an IPv6 address in brackets";
	if (!host_name(s, core))
		return fail(HTTP_URL_ERR_HOST, why_name, error_r);
	for (size_t i = 0; i < len; i++)
		u->host[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
	u->host[len] = '\0';
	u->host_kind = HTTP_URL_HOST_NAME;
	return HTTP_URL_OK;
}

enum http_url_error http_url_parse(const char *s, size_t len, struct http_url *u_r, const char **error_r)
{
	memset(u_r, 0, sizeof(*u_r));
	*error_r = NULL;
	if (len > HTTP_URL_MAX)
		return fail(HTTP_URL_ERR_TOO_LONG, "the URL is longer than 2048 characters", error_r);
	size_t p;
	/* RFC 3986 §3.1: schemes are case-insensitive */
	if (len >= 8 && strncasecmp(s, "https://", 8) == 0)
		u_r->https = true, p = 8;
	else if (len >= 7 && strncasecmp(s, "http://", 7) == 0)
		p = 7;
	else
		return fail(HTTP_URL_ERR_SCHEME, "the URL must start with https:// or http://", error_r);
	u_r->port = u_r->https ? 443 : 80;

	size_t auth = p;
	while (p < len && s[p] != '/' && s[p] != '?' && s[p] != '#')
		p++;
	size_t auth_end = p;
	if (memchr(s + auth, '@', auth_end - auth) != NULL)
		return fail(HTTP_URL_ERR_USERINFO, "the URL must not contain a user name or password",
			    error_r);

	size_t host_end, port_at = 0;
	enum http_url_error e;
	if (auth < auth_end && s[auth] == '[') {
		const char *close = memchr(s + auth, ']', auth_end - auth);
		if (close == NULL)
			return fail(HTTP_URL_ERR_HOST, "the IPv6 address has no closing bracket", error_r);
		host_end = (size_t)(close - s);
		if ((e = parse_ipv6(s + auth + 1, host_end - auth - 1, u_r, error_r)) != HTTP_URL_OK)
			return e;
		host_end++;
		if (host_end < auth_end && s[host_end] != ':')
			return fail(HTTP_URL_ERR_HOST, "unexpected characters after the IPv6 address",
				    error_r);
	} else {
		const char *colon = memchr(s + auth, ':', auth_end - auth);
		host_end = colon != NULL ? (size_t)(colon - s) : auth_end;
		if ((e = parse_host(s + auth, host_end - auth, u_r, error_r)) != HTTP_URL_OK)
			return e;
	}
	if (host_end < auth_end) { /* s[host_end] == ':' */
		port_at = host_end + 1;
		size_t n = auth_end - port_at;
		unsigned v = 0;
		if (n == 0 || n > 5)
			return fail(HTTP_URL_ERR_PORT, "the port must be a number from 1 to 65535", error_r);
		for (size_t i = port_at; i < auth_end; i++) {
			if (!is_digit((unsigned char)s[i]))
				return fail(HTTP_URL_ERR_PORT, "the port must be a number from 1 to 65535",
					    error_r);
			v = v * 10 + (unsigned)(s[i] - '0');
		}
		if (v == 0 || v > 65535)
			return fail(HTTP_URL_ERR_PORT, "the port must be a number from 1 to 65535", error_r);
		u_r->port = v;
	}
	if (u_r->host_kind == HTTP_URL_HOST_IPV4)
		((struct sockaddr_in *)&u_r->addr)->sin_port = htons((uint16_t)u_r->port);
	else if (u_r->host_kind == HTTP_URL_HOST_IPV6)
		((struct sockaddr_in6 *)&u_r->addr)->sin6_port = htons((uint16_t)u_r->port);

	u_r->path_off = auth_end;
	for (size_t i = auth_end; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '#')
			return fail(HTTP_URL_ERR_FRAGMENT,
				    "the URL must not have a #fragment (it is never sent)", error_r);
		if (c == '%') {
			if (i + 2 >= len || !is_hex((unsigned char)s[i + 1]) ||
			    !is_hex((unsigned char)s[i + 2]))
				return fail(HTTP_URL_ERR_CHAR, "a '%' in the URL must start a %XX escape",
					    error_r);
			i += 2;
			continue;
		}
		static const char why_char[] = "the URL contains a character that must be percent-encoded "
					       "(a space, a control character or non-ASCII)";
		if (!is_path_char(c))
			return fail(HTTP_URL_ERR_CHAR, why_char, error_r);
	}
	return HTTP_URL_OK;
}

/* ---- address classes ---- */

static enum http_url_addr_class classify_v4(uint32_t a)
{
	if ((a >> 24) == 0)
		return HTTP_URL_ADDR_UNSPECIFIED;
	if ((a >> 24) == 127)
		return HTTP_URL_ADDR_LOOPBACK;
	if ((a >> 24) == 10 || (a >> 20) == ((172u << 4) | 1) || (a >> 16) == ((192u << 8) | 168))
		return HTTP_URL_ADDR_PRIVATE;
	if ((a >> 16) == ((169u << 8) | 254))
		return HTTP_URL_ADDR_LINK_LOCAL;
	if ((a >> 22) == ((100u << 2) | 1)) /* 100.64.0.0/10 */
		return HTTP_URL_ADDR_SHARED;
	if ((a >> 28) == 0xe)
		return HTTP_URL_ADDR_MULTICAST;
	if ((a >> 28) == 0xf)
		return HTTP_URL_ADDR_RESERVED;
	return HTTP_URL_ADDR_PUBLIC;
}

static uint32_t v4_at(const unsigned char *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static enum http_url_addr_class classify_v6(const unsigned char *b)
{
	static const unsigned char zero12[12] = {0};
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
	if (memcmp(b, zero12, 12) == 0) {
		uint32_t tail = v4_at(b + 12);
		if (tail == 0)
			return HTTP_URL_ADDR_UNSPECIFIED;
		if (tail == 1)
			return HTTP_URL_ADDR_LOOPBACK;
		return classify_v4(tail); /* ::a.b.c.d, RFC 4291 §2.5.5.1 (deprecated) */
	}
	if (memcmp(b, mapped, 12) == 0 || memcmp(b, nat64, 12) == 0)
		return classify_v4(v4_at(b + 12));
	if (b[0] == 0x20 && b[1] == 0x02) /* 6to4: 2002:a.b.c.d::/48 */
		return classify_v4(v4_at(b + 2));
	if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
		return HTTP_URL_ADDR_LINK_LOCAL;
	if ((b[0] & 0xfe) == 0xfc || (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0))
		return HTTP_URL_ADDR_UNIQUE_LOCAL;
	if (b[0] == 0xff)
		return HTTP_URL_ADDR_MULTICAST;
	return HTTP_URL_ADDR_PUBLIC;
}

enum http_url_addr_class http_url_addr_classify(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a4 = (const struct sockaddr_in *)(const void *)sa;
		return classify_v4(ntohl(a4->sin_addr.s_addr));
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)(const void *)sa;
		return classify_v6(a6->sin6_addr.s6_addr);
	}
	return HTTP_URL_ADDR_RESERVED;
}

void http_url_addr_text(const struct sockaddr *sa, char *buf, size_t size)
{
	const void *a = NULL;
	if (sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	if (a == NULL || inet_ntop(sa->sa_family, a, buf, (socklen_t)size) == NULL)
		snprintf(buf, size, "?");
}
