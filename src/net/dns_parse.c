/* dns_parse.c — pure parsing of DNS rdata as libunbound hands it over (uncompressed, but unchecked:
 * a hostile server chooses every octet), the RFC 5321 §5.1 MX order, the RFC 7505 null-MX test,
 * address literals and the resolver setting. No I/O, no allocation. */
#include "net/dns_parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

const char *dns_rrtype_str(int rrtype)
{
	switch (rrtype) {
	case DNS_RRTYPE_A: return "A";
	case DNS_RRTYPE_CNAME: return "CNAME";
	case DNS_RRTYPE_PTR: return "PTR";
	case DNS_RRTYPE_MX: return "MX";
	case DNS_RRTYPE_TXT: return "TXT";
	case DNS_RRTYPE_AAAA: return "AAAA";
	case DNS_RRTYPE_TLSA: return "TLSA";
	}
	return "?";
}

const char *dns_parse_error_str(enum dns_parse_error e)
{
	switch (e) {
	case DNS_PARSE_OK: return "ok";
	case DNS_PARSE_TRUNCATED: return "truncated";
	case DNS_PARSE_TRAILING: return "trailing";
	case DNS_PARSE_BAD_NAME: return "bad_name";
	case DNS_PARSE_NOT_HOST: return "not_host";
	case DNS_PARSE_LENGTH: return "length";
	case DNS_PARSE_SYNTAX: return "syntax";
	}
	return "?";
}

static bool dns_is_ldh(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

enum dns_parse_error dns_name_parse(const uint8_t *p, size_t len, size_t *used_r, char *text_r,
				   size_t text_size, const char **error_r)
{
	size_t off = 0, o = 0;

	if (text_size < DNS_NAME_TEXT_SIZE) {
		*error_r = "internal: text buffer too small";
		return DNS_PARSE_BAD_NAME;
	}
	for (;;) {
		if (off >= len) {
			*error_r = "name runs past the end of the record";
			return DNS_PARSE_TRUNCATED;
		}
		uint8_t l = p[off];
		/* RFC 1035 §4.1.4: 11 is a compression pointer; 01 and 10 are reserved (RFC 6891 §5 retired
		 * the extended label types). Unbound decompresses rdata names, so none belongs here. */
		if ((l & 0xC0) != 0) {
			*error_r = "compressed or unknown label type in a name";
			return DNS_PARSE_BAD_NAME;
		}
		off++;
		/* the wire length counts every length octet and the root label still to come */
		if (l > 0 && off + l + 1 > DNS_NAME_WIRE_MAX) {
			*error_r = "name longer than 255 octets (RFC 1035 §2.3.4)";
			return DNS_PARSE_BAD_NAME;
		}
		if (l == 0)
			break;
		if (l > len - off) {
			*error_r = "label runs past the end of the record";
			return DNS_PARSE_TRUNCATED;
		}
		if (o > 0)
			text_r[o++] = '.';
		for (size_t i = 0; i < l; i++) {
			unsigned char c = p[off + i];
			/* at most 4 text octets per wire octet and one dot per label: 255 * 4 < 1024 */
			if (dns_is_ldh(c) || c == '_') {
				text_r[o++] = (char)c;
			} else if (c == '.' || c == '\\') {
				text_r[o++] = '\\';
				text_r[o++] = (char)c;
			} else {
				text_r[o++] = '\\';
				text_r[o++] = (char)('0' + c / 100);
				text_r[o++] = (char)('0' + c / 10 % 10);
				text_r[o++] = (char)('0' + c % 10);
			}
		}
		off += l;
	}
	if (o == 0)
		text_r[o++] = '.';
	text_r[o] = '\0';
	*used_r = off;
	return DNS_PARSE_OK;
}

bool dns_host_valid(const char *text)
{
	size_t len = strlen(text), label = 0;

	if (len == 0 || len > DNS_HOST_SIZE - 1)
		return false;
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c == '.' || c == '\0') {
			/* RFC 1123 §2.1: 1-63 octets, no leading or trailing hyphen */
			if (label == 0 || label > DNS_LABEL_MAX || text[i - 1] == '-' || text[i - label] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!dns_is_ldh(c))
			return false;
		label++;
	}
	return true;
}

enum dns_parse_error dns_rdata_mx_parse(const uint8_t *rd, size_t len, struct dns_mx *mx_r, const char **error_r)
{
	char text[DNS_NAME_TEXT_SIZE];
	size_t used;
	enum dns_parse_error e;

	if (len < 3) { /* preference and at least the root label */
		*error_r = "MX record shorter than 3 octets";
		return DNS_PARSE_TRUNCATED;
	}
	if ((e = dns_name_parse(rd + 2, len - 2, &used, text, sizeof(text), error_r)) != DNS_PARSE_OK)
		return e;
	if (used != len - 2) {
		*error_r = "octets after the MX exchange name";
		return DNS_PARSE_TRAILING;
	}
	/* RFC 5321 §5.1 names a host; only RFC 7505's root is allowed besides */
	if (strcmp(text, ".") != 0 && !dns_host_valid(text)) {
		*error_r = "MX exchange is not a host name";
		return DNS_PARSE_NOT_HOST;
	}
	mx_r->pref = (uint16_t)(rd[0] << 8 | rd[1]);
	for (size_t i = 0; text[i] != '\0'; i++)
		mx_r->exchange[i] = (char)(text[i] >= 'A' && text[i] <= 'Z' ? text[i] + ('a' - 'A') : text[i]);
	mx_r->exchange[strlen(text)] = '\0';
	return DNS_PARSE_OK;
}

enum dns_parse_error dns_rdata_ptr_parse(const uint8_t *rd, size_t len, struct dns_ptr *ptr_r, const char **error_r)
{
	char text[DNS_NAME_TEXT_SIZE];
	size_t used;
	enum dns_parse_error e;

	if ((e = dns_name_parse(rd, len, &used, text, sizeof(text), error_r)) != DNS_PARSE_OK)
		return e;
	if (used != len) {
		*error_r = "octets after the PTR name";
		return DNS_PARSE_TRAILING;
	}
	if (!dns_host_valid(text)) {
		*error_r = "PTR name is not a host name";
		return DNS_PARSE_NOT_HOST;
	}
	size_t i = 0;
	for (; text[i] != '\0'; i++)
		ptr_r->name[i] = (char)(text[i] >= 'A' && text[i] <= 'Z' ? text[i] + ('a' - 'A') : text[i]);
	ptr_r->name[i] = '\0';
	return DNS_PARSE_OK;
}

bool dns_tlsa_text(const struct dns_tlsa *t, size_t max_octets, char *out, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	if (size == 0)
		return true;
	int n = snprintf(out, size, "%u %u %u ", t->usage, t->selector, t->mtype);
	if (n < 0 || (size_t)n >= size)
		return true;
	size_t k = (size_t)n, i = 0;
	for (; i < t->len && i < max_octets && k + 2 < size; i++) {
		out[k++] = hex[t->data[i] >> 4];
		out[k++] = hex[t->data[i] & 15];
	}
	out[k] = '\0';
	return i < t->len;
}

enum dns_parse_error dns_rdata_tlsa_parse(const uint8_t *rd, size_t len, struct dns_tlsa *tlsa_r, const char **error_r)
{
	if (len < 4) {
		*error_r = len < 3 ? "TLSA record shorter than its three fields" : "TLSA record without association data";
		return DNS_PARSE_TRUNCATED;
	}
	tlsa_r->usage = rd[0];
	tlsa_r->selector = rd[1];
	tlsa_r->mtype = rd[2];
	tlsa_r->data = rd + 3;
	tlsa_r->len = len - 3;
	return DNS_PARSE_OK;
}

const char *dns_status_str(enum dns_status s)
{
	switch (s) {
	case DNS_STATUS_OK: return "ok";
	case DNS_STATUS_NXDOMAIN: return "nxdomain";
	case DNS_STATUS_NODATA: return "nodata";
	case DNS_STATUS_TEMPFAIL: return "tempfail";
	case DNS_STATUS_BOGUS: return "bogus";
	}
	return "?";
}

enum dns_parse_error dns_rdata_a_parse(const uint8_t *rd, size_t len, struct dns_addr *a_r, const char **error_r)
{
	if (len != 4) {
		*error_r = "A record is not 4 octets";
		return DNS_PARSE_LENGTH;
	}
	memset(a_r, 0, sizeof(*a_r));
	a_r->family = AF_INET;
	memcpy(a_r->bytes, rd, 4);
	return DNS_PARSE_OK;
}

enum dns_parse_error dns_rdata_aaaa_parse(const uint8_t *rd, size_t len, struct dns_addr *a_r, const char **error_r)
{
	if (len != 16) {
		*error_r = "AAAA record is not 16 octets";
		return DNS_PARSE_LENGTH;
	}
	a_r->family = AF_INET6;
	memcpy(a_r->bytes, rd, 16);
	return DNS_PARSE_OK;
}

enum dns_parse_error dns_rdata_txt_parse(const uint8_t *rd, size_t len, char *out, size_t out_size,
					 size_t *out_len_r, const char **error_r)
{
	size_t off = 0, o = 0;

	if (len == 0) {
		*error_r = "TXT record without a character-string";
		return DNS_PARSE_TRUNCATED;
	}
	if (out_size < len) {
		*error_r = "internal: TXT buffer too small";
		return DNS_PARSE_TRUNCATED;
	}
	while (off < len) {
		size_t l = rd[off++];
		if (l > len - off) {
			*error_r = "TXT character-string runs past the end of the record";
			return DNS_PARSE_TRUNCATED;
		}
		/* o + l <= off - 1 + l <= len - 1 < out_size: room for the NUL too */
		memcpy(out + o, rd + off, l);
		o += l;
		off += l;
	}
	out[o] = '\0';
	*out_len_r = o;
	return DNS_PARSE_OK;
}

uint32_t dns_random_below(dns_random_fn *rnd, void *arg, uint32_t n)
{
	if (n <= 1)
		return 0;
	/* values at or above limit would favour the low residues */
	uint32_t limit = UINT32_MAX - UINT32_MAX % n;
	uint32_t v = 0;
	for (int tries = 0; tries < 64; tries++) {
		v = rnd(arg);
		if (v < limit)
			break;
	}
	return v % n;
}

static int dns_mx_cmp(const void *a, const void *b)
{
	const struct dns_mx *x = a, *y = b;
	if (x->pref != y->pref)
		return x->pref < y->pref ? -1 : 1;
	return strcmp(x->exchange, y->exchange); /* a total order, so the shuffle alone decides ties */
}

size_t dns_mx_order(struct dns_mx *mx, size_t n, dns_random_fn *rnd, void *arg)
{
	size_t kept = 0;

	if (n == 0)
		return 0;
	qsort(mx, n, sizeof(*mx), dns_mx_cmp);
	/* one entry per host, the most preferred (exchanges are lower-cased by the parser) */
	for (size_t i = 0; i < n; i++) {
		bool dup = false;
		for (size_t j = 0; j < kept && !dup; j++)
			dup = strcmp(mx[j].exchange, mx[i].exchange) == 0;
		if (dup)
			continue;
		if (kept != i)
			mx[kept] = mx[i];
		kept++;
	}
	/* RFC 5321 §5.1: "If there are multiple destinations with the same preference and there is no
	 * clear reason to favor one ..., the SMTP client SHOULD pick one at random to spread the load".
	 * Fisher-Yates within each run of equal preference. */
	for (size_t start = 0; start < kept;) {
		size_t end = start + 1;
		while (end < kept && mx[end].pref == mx[start].pref)
			end++;
		for (size_t i = end - start; i > 1; i--) {
			size_t j = dns_random_below(rnd, arg, (uint32_t)i);
			if (j != i - 1) {
				struct dns_mx t = mx[start + i - 1];
				mx[start + i - 1] = mx[start + j];
				mx[start + j] = t;
			}
		}
		start = end;
	}
	return kept;
}

bool dns_mx_is_null(const struct dns_mx *mx, size_t n)
{
	return n == 1 && mx[0].pref == 0 && strcmp(mx[0].exchange, ".") == 0;
}

enum dns_parse_error dns_addr_literal_parse(const char *s, struct dns_addr *a_r, const char **error_r)
{
	char inner[64];
	size_t len = strlen(s);
	int family = AF_INET;

	if (len < 3 || s[0] != '[' || s[len - 1] != ']') {
		*error_r = "not an address literal";
		return DNS_PARSE_SYNTAX;
	}
	const char *p = s + 1;
	len -= 2;
	if (len > 5 && strncasecmp(p, "IPv6:", 5) == 0) { /* RFC 5321 §4.1.3 IPv6-address-literal */
		family = AF_INET6;
		p += 5;
		len -= 5;
	} else if (memchr(p, ':', len) != NULL) {
		*error_r = "only IPv4 and IPv6 address literals can be routed";
		return DNS_PARSE_SYNTAX;
	}
	if (len == 0 || len >= sizeof(inner) || memchr(p, '\0', len) != NULL) {
		*error_r = "malformed address literal";
		return DNS_PARSE_SYNTAX;
	}
	memcpy(inner, p, len);
	inner[len] = '\0';
	memset(a_r, 0, sizeof(*a_r));
	if (inet_pton(family, inner, a_r->bytes) != 1) {
		*error_r = family == AF_INET ? "malformed IPv4 address literal" : "malformed IPv6 address literal";
		return DNS_PARSE_SYNTAX;
	}
	a_r->family = family;
	return DNS_PARSE_OK;
}

const char *dns_addr_str(const struct dns_addr *a, char *buf, size_t size)
{
	if (inet_ntop(a->family == AF_INET6 ? AF_INET6 : AF_INET, a->bytes, buf, (socklen_t)size) == NULL)
		snprintf(buf, size, "?");
	return buf;
}

enum dns_parse_error dns_resolver_parse(const char *s, char *out, size_t out_size, const char **error_r)
{
	char addr[INET6_ADDRSTRLEN];
	uint8_t bin[16];
	unsigned long port = 53;
	const char *at = strchr(s, '@');
	size_t alen = at != NULL ? (size_t)(at - s) : strlen(s);

	if (alen == 0 || alen >= sizeof(addr)) {
		*error_r = "expected a numeric IP address, optionally with @port (127.0.0.1@5353)";
		return DNS_PARSE_SYNTAX;
	}
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, bin) != 1 && inet_pton(AF_INET6, addr, bin) != 1) {
		*error_r = "not a numeric IP address (write 127.0.0.1@5353 or ::1@5353)";
		return DNS_PARSE_SYNTAX;
	}
	if (at != NULL) {
		char *end;
		errno = 0;
		port = strtoul(at + 1, &end, 10);
		if (at[1] < '0' || at[1] > '9' || *end != '\0' || errno != 0 || port == 0 || port > 65535) {
			*error_r = "port must be 1-65535";
			return DNS_PARSE_SYNTAX;
		}
	}
	if ((size_t)snprintf(out, out_size, "%s@%lu", addr, port) >= out_size) {
		*error_r = "internal: resolver buffer too small";
		return DNS_PARSE_SYNTAX;
	}
	return DNS_PARSE_OK;
}
