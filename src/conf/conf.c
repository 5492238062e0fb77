/* conf.c — loads mailwerk.conf (INI, read by inih), applies `-o section.key=value` overrides and
 * validates every value. The key table below is the single list of what may be configured. */
#include "conf/conf.h"

#include "net/dns_parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <netdb.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum conf_type {
	CONF_T_STRING,
	CONF_T_PATH, /* absolute path */
	CONF_T_UINT,
	CONF_T_SIZE,
	CONF_T_DURATION,
	CONF_T_BOOL,
	CONF_T_LISTEN,
	CONF_T_HOSTNAME,
	CONF_T_SCHEDULE,
	CONF_T_DELIMITERS,
	CONF_T_RESOLVER,  /* "" or a numeric "ADDR[@PORT]" */
	CONF_T_PATH_OPT,  /* "" or an absolute path */
};

struct conf_key {
	const char *section;
	const char *name;
	enum conf_type type;
	size_t offset;
	const char *def; /* NULL: required */
	uint64_t min, max; /* for UINT, SIZE, DURATION */
};

#define OFF(f) offsetof(struct conf, f)
#define LISTEN_OFF(l) (offsetof(struct conf, listen) + (l) * sizeof(struct conf_listen))

static const struct conf_key conf_keys[] = {
	{"server", "hostname", CONF_T_HOSTNAME, OFF(hostname), NULL, 0, 0},
	{"server", "data_dir", CONF_T_PATH, OFF(data_dir), NULL, 0, 0},
	/* DESIGN.md §6: bind the ports as root, then run as this user */
	{"server", "user", CONF_T_STRING, OFF(user), "", 0, 0},
	/* 0 means no limit */
	{"server", "max_connections", CONF_T_UINT, OFF(max_connections), "1000", 0, 1000000},
	{"server", "max_connections_per_ip", CONF_T_UINT, OFF(max_connections_per_ip), "50", 0, 1000000},
	{"listen", "smtp", CONF_T_LISTEN, LISTEN_OFF(CONF_LISTEN_SMTP), "", 0, 0},
	{"listen", "submission", CONF_T_LISTEN, LISTEN_OFF(CONF_LISTEN_SUBMISSION), "", 0, 0},
	{"listen", "submissions", CONF_T_LISTEN, LISTEN_OFF(CONF_LISTEN_SUBMISSIONS), "", 0, 0},
	{"listen", "pop3", CONF_T_LISTEN, LISTEN_OFF(CONF_LISTEN_POP3), "", 0, 0},
	{"listen", "pop3s", CONF_T_LISTEN, LISTEN_OFF(CONF_LISTEN_POP3S), "", 0, 0},
	{"tls", "cert", CONF_T_PATH, OFF(tls_cert), NULL, 0, 0},
	{"tls", "key", CONF_T_PATH, OFF(tls_key), NULL, 0, 0},
	/* RFC 1870: the SIZE we advertise; at least 64 KiB per RFC 5321 §4.5.3.1.10. At most 1 GiB:
	 * the queue keeps a message as one SQLite blob, and SQLite's default limit is 10^9 bytes. */
	{"smtp", "max_message_size", CONF_T_SIZE, OFF(max_message_size), "25M", 65536, 1000000000},
	/* RFC 5321 §4.5.3.1.8: at least 100 recipients must be accepted */
	{"smtp", "max_recipients", CONF_T_UINT, OFF(max_recipients), "100", 100, 100000},
	{"smtp", "allow_insecure_auth", CONF_T_BOOL, OFF(allow_insecure_auth), "no", 0, 0},
	/* RFC 5321 §4.5.3.2.7: the server waits at least 5 minutes for the next command */
	{"smtp", "command_timeout", CONF_T_DURATION, OFF(command_timeout), "5m", 1, 86400},
	{"smtp", "data_timeout", CONF_T_DURATION, OFF(data_timeout), "10m", 1, 86400},
	{"smtp", "max_errors", CONF_T_UINT, OFF(max_errors), "10", 1, 1000},
	/* RFC 1939 §3: an autologout timer of at least 10 minutes (shorter only for tests) */
	{"pop3", "idle_timeout", CONF_T_DURATION, OFF(pop3_idle_timeout), "10m", 1, 86400},
	{"pop3", "max_errors", CONF_T_UINT, OFF(pop3_max_errors), "10", 1, 1000},
	{"delivery", "recipient_delimiter", CONF_T_DELIMITERS, OFF(recipient_delimiter), "+", 0, 0},
	/* waits between delivery attempts; the last repeats (issue-level default, like Postfix's backoff) */
	{"delivery", "retry_schedule", CONF_T_SCHEDULE, OFF(retry_schedule), "1m,5m,15m,30m,1h,2h,4h", 0, 0},
	/* RFC 5321 §4.5.4.1: give up after at least 4-5 days; then the sender gets a DSN */
	{"delivery", "max_queue_lifetime", CONF_T_DURATION, OFF(max_queue_lifetime), "5d", 1, 90 * 86400},
	/* empty: the system's resolvers (/etc/resolv.conf); numeric only, so a typo fails at start-up */
	{"dns", "resolver", CONF_T_RESOLVER, OFF(dns_resolver), "", 0, 0},
	/* DNSSEC validation (RFC 4035) needs an anchor, e.g. /usr/share/dns/root.key; empty: none */
	{"dns", "trust_anchor", CONF_T_PATH_OPT, OFF(dns_trust_anchor), "", 0, 0},
};
#define CONF_KEY_COUNT (sizeof(conf_keys) / sizeof(conf_keys[0]))

const char *conf_listener_str(enum conf_listener l)
{
	switch (l) {
	case CONF_LISTEN_SMTP: return "smtp";
	case CONF_LISTEN_SUBMISSION: return "submission";
	case CONF_LISTEN_SUBMISSIONS: return "submissions";
	case CONF_LISTEN_POP3: return "pop3";
	case CONF_LISTEN_POP3S: return "pop3s";
	case CONF_LISTEN_COUNT: break;
	}
	return "?";
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
static const char *parse_hostname(const char *s)
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

static const char *conf_set(struct conf *c, const struct conf_key *k, const char *value)
{
	void *field = (char *)c + k->offset;
	const char *err = NULL;

	switch (k->type) {
	case CONF_T_DELIMITERS:
		/* characters that start an address extension (user+tag); none of them may be part of an
		 * address's syntax that matters elsewhere */
		if (strlen(value) > 8 || strpbrk(value, "@\"\\ ,<>()[]:;") != NULL)
			return "expected up to 8 delimiter characters such as + or +-";
		/* fall through */
	case CONF_T_HOSTNAME:
		if (k->type == CONF_T_HOSTNAME && (err = parse_hostname(value)) != NULL)
			return err;
		/* fall through */
	case CONF_T_RESOLVER:
		if (k->type == CONF_T_RESOLVER && value[0] != '\0') {
			char fwd[64];
			if (dns_resolver_parse(value, fwd, sizeof(fwd), &err) != DNS_PARSE_OK)
				return err;
		}
		/* fall through */
	case CONF_T_STRING:
	case CONF_T_PATH:
	case CONF_T_PATH_OPT: {
		if ((k->type == CONF_T_PATH || (k->type == CONF_T_PATH_OPT && value[0] != '\0')) && value[0] != '/')
			return "must be an absolute path";
		char *dup = strdup(value);
		if (dup == NULL)
			return "out of memory";
		free(*(char **)field);
		*(char **)field = dup;
		return NULL;
	}
	case CONF_T_UINT:
	case CONF_T_SIZE: {
		uint64_t v;
		if (k->type == CONF_T_SIZE) {
			if ((err = conf_parse_size(value, &v)) != NULL)
				return err;
		} else {
			char *end;
			errno = 0;
			v = strtoull(value, &end, 10);
			if (value[0] < '0' || value[0] > '9' || *end != '\0' || errno)
				return "expected a whole number";
		}
		if (v < k->min || v > k->max)
			return k->type == CONF_T_SIZE ? "size out of range (64K to 1000000000)" : "number out of range (see the README)";
		if (k->type == CONF_T_SIZE)
			*(uint64_t *)field = v;
		else
			*(unsigned *)field = (unsigned)v;
		return NULL;
	}
	case CONF_T_DURATION: {
		unsigned v;
		if ((err = conf_parse_duration(value, &v)) != NULL)
			return err;
		if (v < k->min || v > k->max)
			return "duration out of range";
		*(unsigned *)field = v;
		return NULL;
	}
	case CONF_T_BOOL:
		return conf_parse_bool(value, (bool *)field);
	case CONF_T_SCHEDULE: {
		unsigned v[CONF_RETRY_MAX];
		size_t n;
		if ((err = conf_parse_schedule(value, v, &n)) != NULL)
			return err;
		memcpy(c->retry_schedule, v, sizeof(v));
		c->retry_count = n;
		return NULL;
	}
	case CONF_T_LISTEN: {
		struct conf_listen *l = field;
		struct conf_addr *addrs;
		size_t count;
		if ((err = conf_parse_listen(value, &addrs, &count)) != NULL)
			return err;
		free(l->addrs);
		l->addrs = addrs;
		l->count = count;
		return NULL;
	}
	}
	return "internal: unknown key type";
}

static const struct conf_key *conf_key_find(const char *section, const char *name)
{
	for (size_t i = 0; i < CONF_KEY_COUNT; i++)
		if (strcmp(conf_keys[i].section, section) == 0 && strcmp(conf_keys[i].name, name) == 0)
			return &conf_keys[i];
	return NULL;
}

static bool conf_section_known(const char *section)
{
	for (size_t i = 0; i < CONF_KEY_COUNT; i++)
		if (strcmp(conf_keys[i].section, section) == 0)
			return true;
	return false;
}

struct conf_load_state {
	struct conf *c;
	bool seen[CONF_KEY_COUNT];
	char error[256]; /* first error; inih reports its line */
};

static const char *conf_apply(struct conf_load_state *st, const char *section, const char *name, const char *value)
{
	if (!conf_section_known(section))
		return "unknown section";
	const struct conf_key *k = conf_key_find(section, name);
	if (k == NULL)
		return "unknown key";
	size_t idx = (size_t)(k - conf_keys);
	const char *err = conf_set(st->c, k, value);
	if (err == NULL)
		st->seen[idx] = true;
	return err;
}

static int conf_ini_handler(void *user, const char *section, const char *name, const char *value)
{
	struct conf_load_state *st = user;
	if (name == NULL)
		return 1; /* a section header on its own */
	const char *err = conf_apply(st, section, name, value);
	if (err == NULL)
		return 1;
	if (st->error[0] == '\0')
		snprintf(st->error, sizeof(st->error), "[%s] %s = %s: %s", section, name, value, err);
	return 0; /* inih then returns this line's number */
}

struct conf *conf_ref(struct conf *c)
{
	c->refs++;
	return c;
}

void conf_free(struct conf *c)
{
	if (c == NULL || --c->refs > 0)
		return;
	free(c->path);
	free(c->hostname);
	free(c->data_dir);
	free(c->user);
	for (int i = 0; i < CONF_LISTEN_COUNT; i++)
		free(c->listen[i].addrs);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->recipient_delimiter);
	free(c->dns_resolver);
	free(c->dns_trust_anchor);
	free(c);
}

struct conf *conf_load(const char *path, char *const *overrides, size_t n_overrides, char *error_r, size_t error_size)
{
	struct conf_load_state st = {0};
	struct conf *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		snprintf(error_r, error_size, "%s: out of memory", path);
		return NULL;
	}
	st.c = c;
	c->refs = 1;
	c->path = strdup(path);

	FILE *f = fopen(path, "r");
	if (f == NULL) {
		snprintf(error_r, error_size, "%s: cannot open: %s", path, strerror(errno));
		goto fail;
	}
	int line = ini_parse_file(f, conf_ini_handler, &st);
	fclose(f);
	if (line != 0) {
		if (st.error[0] != '\0')
			snprintf(error_r, error_size, "%s:%d: %s", path, line, st.error);
		else
			snprintf(error_r, error_size, "%s:%d: not a valid line (expected [section] or key = value)", path, line);
		goto fail;
	}

	for (size_t i = 0; i < n_overrides; i++) {
		const char *o = overrides[i];
		const char *dot = strchr(o, '.');
		const char *eq = strchr(o, '=');
		if (dot == NULL || eq == NULL || dot > eq) {
			snprintf(error_r, error_size, "-o %s: expected section.key=value", o);
			goto fail;
		}
		char section[32], name[64];
		size_t slen = (size_t)(dot - o), nlen = (size_t)(eq - dot - 1);
		if (slen == 0 || slen >= sizeof(section) || nlen == 0 || nlen >= sizeof(name)) {
			snprintf(error_r, error_size, "-o %s: expected section.key=value", o);
			goto fail;
		}
		memcpy(section, o, slen);
		section[slen] = '\0';
		memcpy(name, dot + 1, nlen);
		name[nlen] = '\0';
		const char *err = conf_apply(&st, section, name, eq + 1);
		if (err != NULL) {
			snprintf(error_r, error_size, "-o %s: %s", o, err);
			goto fail;
		}
	}

	for (size_t i = 0; i < CONF_KEY_COUNT; i++) {
		if (st.seen[i])
			continue;
		const struct conf_key *k = &conf_keys[i];
		if (k->def == NULL) {
			snprintf(error_r, error_size, "%s: [%s] %s is required", path, k->section, k->name);
			goto fail;
		}
		const char *err = conf_set(c, k, k->def);
		if (err != NULL) { /* a broken default is a bug, but say it plainly */
			snprintf(error_r, error_size, "%s: default of [%s] %s: %s", path, k->section, k->name, err);
			goto fail;
		}
	}
	return c;
fail:
	conf_free(c);
	return NULL;
}
