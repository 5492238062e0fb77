/* conf_parse.c — the value parsers of the configuration: sizes, durations, booleans, schedules,
 * listener addresses, rates, host names, the smarthost and MTA-STS mx lists (pure functions: a
 * value in, NULL or a sentence out). */
#include "conf/conf.h"
#include "conf/conf_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net/dns_parse.h"

/* [mta_sts] mx: names the policy lists as mx lines (RFC 8461 §3.2: a host name, or "*." and one),
 * comma-separated; "" for none. NULL, or a sentence in msg. */
const char *conf_parse_mx_list(const char *v, char *msg, size_t size)
{
	unsigned n = 0;
	for (const char *p = v; *p != '\0';) {
		while (*p == ' ' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		const char *end = p;
		while (*end != '\0' && *end != ',' && *end != ' ')
			end++;
		char name[260];
		size_t len = (size_t)(end - p);
		if (len >= sizeof(name)) {
			snprintf(msg, size, "an MX name is longer than 253 characters");
			return msg;
		}
		memcpy(name, p, len);
		name[len] = '\0';
		const char *host = strncmp(name, "*.", 2) == 0 ? name + 2 : name;
		if (!dns_host_valid(host) || strchr(host, '.') == NULL) {
			snprintf(msg, size, "%s is not a host name (or *. and a host name)", name);
			return msg;
		}
		if (++n > 32) {
			snprintf(msg, size, "at most 32 MX names");
			return msg;
		}
		p = end;
	}
	return NULL;
}

static const char *parse_uint_suffixed(const char *s, uint64_t *v_r, const char *suffixes, const uint64_t *mult)
{
	const char *p = s;
	uint64_t v = 0;

	while (*p == ' ')
		p++;
	if (*p < '0' || *p > '9')
		return NULL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return "number too large";
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (*p != '\0') {
		const char *hit = strchr(suffixes, *p);
		if (hit == NULL || p[1] != '\0')
			return NULL; /* the caller says what it expected */
		uint64_t m = mult[hit - suffixes];
		if (v != 0 && m > UINT64_MAX / v)
			return "number too large";
		v *= m;
	}
	*v_r = v;
	return "";
}

const char *conf_parse_size(const char *s, uint64_t *v_r)
{
	static const uint64_t mult[] = {1024, 1024, 1024 * 1024, 1024 * 1024, 1024ULL * 1024 * 1024, 1024ULL * 1024 * 1024};
	const char *err = parse_uint_suffixed(s, v_r, "kKmMgG", mult);
	if (err == NULL)
		return "expected a size such as 1048576, 512K, 25M or 1G";
	return *err ? err : NULL;
}

const char *conf_parse_duration(const char *s, unsigned *seconds_r)
{
	static const uint64_t mult[] = {1, 60, 3600, 86400};
	uint64_t v;
	const char *err = parse_uint_suffixed(s, &v, "smhd", mult);
	if (err == NULL)
		return "expected a duration such as 300, 30s, 5m, 2h or 1d";
	if (*err)
		return err;
	if (v > UINT32_MAX)
		return "duration too long";
	*seconds_r = (unsigned)v;
	return NULL;
}

const char *conf_parse_duration_ms(const char *s, unsigned *ms_r)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = {{"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
	const char *p = s;
	uint64_t v = 0;
	while (*p == ' ')
		p++;
	if (*p < '0' || *p > '9')
		return "expected a duration such as 250ms, 2s or 1m";
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > UINT32_MAX)
			return "duration too long";
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(p, units[i].unit) != 0)
			continue;
		if (v > UINT32_MAX / units[i].ms)
			return "duration too long";
		*ms_r = (unsigned)(v * units[i].ms);
		return NULL;
	}
	return "expected a duration such as 250ms, 2s or 1m";
}

const char *conf_parse_bool(const char *s, bool *v_r)
{
	static const char *yes[] = {"yes", "true", "on", "1"};
	static const char *no[] = {"no", "false", "off", "0"};
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*v_r = true;
			return NULL;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*v_r = false;
			return NULL;
		}
	}
	return "expected yes or no";
}

static const char *parse_one_addr(const char *s, size_t len, struct conf_addr *a)
{
	char host[64], port[8];
	const char *colon;
	size_t hlen;

	if (len >= sizeof(a->text))
		return "address too long";
	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);
		if (close == NULL || close + 1 >= s + len || close[1] != ':')
			return "expected [IPv6]:port";
		hlen = (size_t)(close - s - 1);
		if (hlen == 0 || hlen >= sizeof(host))
			return "bad IPv6 address";
		memcpy(host, s + 1, hlen);
		colon = close + 1;
	} else {
		colon = memrchr(s, ':', len);
		if (colon == NULL)
			return "expected address:port";
		hlen = (size_t)(colon - s);
		if (hlen == 0 || hlen >= sizeof(host))
			return "expected address:port";
		memcpy(host, s, hlen);
		if (memchr(host, ':', hlen) != NULL)
			return "write IPv6 addresses as [address]:port";
	}
	host[hlen] = '\0';
	size_t plen = (size_t)(s + len - colon - 1);
	if (plen == 0 || plen >= sizeof(port))
		return "bad port";
	memcpy(port, colon + 1, plen);
	port[plen] = '\0';
	char *end;
	errno = 0;
	unsigned long pn = strtoul(port, &end, 10);
	if (*end != '\0' || port[0] < '0' || port[0] > '9' || pn == 0 || pn > 65535 || errno)
		return "port must be 1-65535";

	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res;
	if (getaddrinfo(host, port, &hints, &res) != 0)
		return "not a numeric IP address (host names are not allowed here)";
	memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
	a->len = res->ai_addrlen;
	freeaddrinfo(res);
	memcpy(a->text, s, len);
	a->text[len] = '\0';
	return NULL;
}

const char *conf_parse_schedule(const char *s, unsigned *v_r, size_t *count_r)
{
	size_t n = 0;
	const char *p = s;
	for (;;) {
		while (*p == ' ')
			p++;
		size_t len = strcspn(p, ",");
		char item[32];
		while (len > 0 && p[len - 1] == ' ')
			len--;
		if (len == 0 || len >= sizeof(item))
			return "expected durations separated by commas, such as 1m,5m,15m";
		if (n == CONF_RETRY_MAX)
			return "at most 16 durations";
		memcpy(item, p, len);
		item[len] = '\0';
		const char *err = conf_parse_duration(item, &v_r[n]);
		if (err != NULL)
			return err;
		if (v_r[n] == 0)
			return "a wait of 0 would retry in a tight loop";
		n++;
		p += strcspn(p, ",");
		if (*p == '\0')
			break;
		p++;
	}
	*count_r = n;
	return NULL;
}

const char *conf_parse_listen(const char *s, struct conf_addr **addrs_r, size_t *count_r)
{
	struct conf_addr *addrs = NULL;
	size_t count = 0;
	const char *p = s;

	while (*p != '\0') {
		while (*p == ' ' || *p == '\t')
			p++;
		const char *end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		const char *last = end;
		while (last > p && (last[-1] == ' ' || last[-1] == '\t'))
			last--;
		if (last == p) {
			if (*end == '\0' && count == 0)
				break; /* empty value: disabled */
			free(addrs);
			return "empty address in list";
		}
		if (count >= 16) {
			free(addrs);
			return "at most 16 addresses per listener";
		}
		struct conf_addr *grown = realloc(addrs, (count + 1) * sizeof(*addrs));
		if (grown == NULL) {
			free(addrs);
			return "out of memory";
		}
		addrs = grown;
		const char *err = parse_one_addr(p, (size_t)(last - p), &addrs[count]);
		if (err != NULL) {
			free(addrs);
			return err;
		}
		count++;
		p = *end == ',' ? end + 1 : end;
	}
	*addrs_r = addrs;
	*count_r = count;
	return NULL;
}

/* RFC 1123 §2.1 host name: letters, digits, hyphens, dots; our own name must be a FQDN-like name. */
const char *conf_parse_hostname(const char *s)
{
	size_t len = strlen(s);
	if (len == 0 || len > 253)
		return "expected a host name such as mail.example.org";
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
		if (!ok)
			return "host name may contain only letters, digits, '-' and '.'";
	}
	if (s[0] == '.' || s[0] == '-' || s[len - 1] == '.' || strstr(s, "..") != NULL)
		return "malformed host name";
	return NULL;
}

const char *conf_parse_rate(const char *s, unsigned *count_r, unsigned *period_r)
{
	static const char expected[] = "expected COUNT/PERIOD such as 600/h, 10/m or 100/10m";
	static const char bad_count[] = "the count must be a whole number from 1 to 1000000";
	const char *slash = strchr(s, '/');
	if (slash == NULL || slash == s || slash[1] == '\0')
		return expected;

	uint64_t count = 0;
	for (const char *p = s; p < slash; p++) {
		if (*p < '0' || *p > '9')
			return bad_count;
		if (count <= 1000000) /* beyond that it is too large anyway; stop before it overflows */
			count = count * 10 + (uint64_t)(*p - '0');
	}
	if (count < 1 || count > 1000000)
		return bad_count;

	const char *per = slash + 1;
	char buf[16];
	size_t plen = strlen(per);
	if (strspn(per, "0123456789smhd") != plen || plen >= sizeof(buf))
		return "the period must be a duration such as s, m, h, d, 10m or 3600";
	/* "600/h": a bare unit letter is one of it */
	if (plen == 1 && strchr("smhd", per[0]) != NULL)
		snprintf(buf, sizeof(buf), "1%c", per[0]);
	else
		memcpy(buf, per, plen + 1);
	unsigned period;
	const char *err = conf_parse_duration(buf, &period);
	if (err != NULL)
		return err;
	if (period == 0)
		return "the period must be at least 1 second";
	*count_r = (unsigned)count;
	*period_r = period;
	return NULL;
}

const char *conf_parse_relay_host(const char *s, char *host_r, size_t host_size, unsigned *port_r)
{
	char host[254];
	const char *port = NULL;
	size_t hlen;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL)
			return "missing ']': expected [address] or [address]:port";
		if (close[1] == ':')
			port = close + 2;
		else if (close[1] != '\0')
			return "expected [address] or [address]:port";
		const char *a = s + 1;
		hlen = (size_t)(close - a);
		bool v6_only = false;
		if (hlen > 5 && strncasecmp(a, "IPv6:", 5) == 0) { /* RFC 5321 §4.1.3 address literal */
			a += 5;
			hlen -= 5;
			v6_only = true;
		}
		if (hlen == 0 || hlen >= INET6_ADDRSTRLEN)
			return "only IP addresses go in brackets; write a host name without them";
		memcpy(host, a, hlen);
		host[hlen] = '\0';
		unsigned char bin[sizeof(struct in6_addr)];
		if (inet_pton(AF_INET6, host, bin) != 1 && (v6_only || inet_pton(AF_INET, host, bin) != 1))
			return "only IP addresses go in brackets; write a host name without them";
	} else {
		const char *colon = strchr(s, ':');
		/* several colons: an IPv6 address; "2001:db8::1:25" could be one with or without a port */
		if (colon != NULL && strchr(colon + 1, ':') != NULL)
			return "expected host, host:port or [address]:port (IPv6 addresses only in brackets)";
		hlen = colon != NULL ? (size_t)(colon - s) : strlen(s);
		if (colon != NULL)
			port = colon + 1;
		if (hlen >= sizeof(host))
			return "host name too long";
		memcpy(host, s, hlen);
		host[hlen] = '\0';
		const char *err = conf_parse_hostname(host);
		if (err != NULL)
			return err;
	}

	unsigned long pn = 0;
	if (port != NULL) {
		size_t plen = strlen(port);
		if (plen == 0 || plen > 5 || strspn(port, "0123456789") != plen)
			return "port must be 1-65535";
		pn = strtoul(port, NULL, 10);
		if (pn == 0 || pn > 65535)
			return "port must be 1-65535";
	}
	if (hlen >= host_size)
		return "host name too long";
	memcpy(host_r, host, hlen + 1);
	*port_r = (unsigned)pn;
	return NULL;
}
