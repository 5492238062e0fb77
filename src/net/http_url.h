/* http_url.h — http(s) URLs that users give us to call (webhook endpoints; later MTA-STS policy
 * hosts): the one strict parser for them, and the judgement of the addresses they lead to, which
 * keeps a user of the API from making this server call into its own network (SSRF). Pure: no I/O,
 * no allocation; fuzzed (fuzz/fuzz_http_url.c). */
#ifndef MAILWERK_NET_HTTP_URL_H
#define MAILWERK_NET_HTTP_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

/* The longest URL accepted: 2048 octets, what browsers and most HTTP servers take safely (and
 * Resend's dashboard limit for an endpoint). */
#define HTTP_URL_MAX 2048
#define HTTP_URL_HOST_MAX 253 /* RFC 1035 §2.3.4, without the trailing dot */

enum http_url_error {
	HTTP_URL_OK = 0,
	HTTP_URL_ERR_TOO_LONG,
	HTTP_URL_ERR_SCHEME,   /* not http:// or https:// */
	HTTP_URL_ERR_USERINFO, /* user:password@ in the authority */
	HTTP_URL_ERR_HOST,     /* empty, malformed, or a number that is not a dotted quad */
	HTTP_URL_ERR_PORT,
	HTTP_URL_ERR_CHAR,     /* an octet RFC 3986 does not allow there (space, control, non-ASCII) */
	HTTP_URL_ERR_FRAGMENT, /* "#...": never sent to the server, so almost certainly a mistake */
};
const char *http_url_error_str(enum http_url_error e);

enum http_url_host_kind {
	HTTP_URL_HOST_NAME = 0, /* a DNS name: judged at connect time, after resolution */
	HTTP_URL_HOST_IPV4,
	HTTP_URL_HOST_IPV6, /* given in brackets; host holds it without them */
};

struct http_url {
	bool https;
	enum http_url_host_kind host_kind;
	char host[HTTP_URL_HOST_MAX + 2]; /* lower case; a trailing dot kept */
	unsigned port;                    /* the one given, or 80 / 443 */
	struct sockaddr_storage addr;     /* host_kind IPV4/IPV6: the address */
	size_t path_off;                  /* offset of the path (or "?query", or the end) in the URL */
};

/* Parses len octets of s as an absolute http or https URL (RFC 9110 §4.2, RFC 3986 §3): a scheme
 * (any case), "//", a host that is a DNS name, a dotted-quad IPv4 address or a bracketed IPv6
 * address (no zone), an optional port 1..65535, then a path and query of RFC 3986 characters.
 * Refused besides: userinfo (credentials do not belong in a stored URL, and "a@b" is the classic
 * way to make a reader misjudge the host), a fragment, and any host whose last label is numeric
 * but which is not a dotted quad ("2130706433", "0x7f.1", "127.1"): WHATWG URL parsers and
 * libcurl read those as IPv4 addresses, so judging them as names would let 127.0.0.1 through.
 * HTTP_URL_OK and *u_r, or the error with a sentence in *error_r. */
enum http_url_error http_url_parse(const char *s, size_t len, struct http_url *u_r, const char **error_r);

/* What an address is, for the SSRF rule. */
enum http_url_addr_class {
	HTTP_URL_ADDR_PUBLIC = 0,
	HTTP_URL_ADDR_UNSPECIFIED,  /* 0.0.0.0/8 (RFC 1122 §3.2.1.3 "this network"), :: */
	HTTP_URL_ADDR_LOOPBACK,     /* 127.0.0.0/8, ::1 */
	HTTP_URL_ADDR_PRIVATE,      /* RFC 1918: 10/8, 172.16/12, 192.168/16 */
	HTTP_URL_ADDR_LINK_LOCAL,   /* 169.254/16 (RFC 3927; cloud metadata lives here), fe80::/10 */
	HTTP_URL_ADDR_SHARED,       /* 100.64/10, carrier-grade NAT (RFC 6598) */
	HTTP_URL_ADDR_UNIQUE_LOCAL, /* fc00::/7 (RFC 4193), and the deprecated site-local fec0::/10 */
	HTTP_URL_ADDR_MULTICAST,    /* 224/4, ff00::/8 */
	HTTP_URL_ADDR_RESERVED,     /* 240/4 (RFC 1112 §4) with 255.255.255.255 */
};
const char *http_url_addr_class_str(enum http_url_addr_class c);

/* The class of sa (AF_INET or AF_INET6; anything else is RESERVED). IPv6 addresses that carry an
 * IPv4 address — mapped ::ffff:0:0/96, the deprecated compatible ::/96, NAT64 64:ff9b::/96 (RFC
 * 6052) and 6to4 2002::/16 (RFC 3056) — are judged by the IPv4 address inside, since that is where
 * the packets end up. */
enum http_url_addr_class http_url_addr_classify(const struct sockaddr *sa);

/* The address as text ("192.0.2.1", "2001:db8::1") for logs and errors. */
void http_url_addr_text(const struct sockaddr *sa, char *buf, size_t size);

#endif
