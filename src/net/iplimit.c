/* iplimit.c — a small chained hash table keyed by the textual client address. Entries live while
 * the address has connections or a failure inside the window. */
#include "net/iplimit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define IPLIMIT_BUCKETS 1024

struct ip_entry {
	struct ip_entry *next;
	unsigned conns;
	unsigned auth_failures;
	time_t last_failure;
	uint64_t recent[IPLIMIT_AUTH_RECENT]; /* tags of the last failed credentials; 0: none */
	unsigned recent_next;                 /* the slot the next tag takes */
	char ip[46];
};

struct iplimit {
	struct ip_entry *buckets[IPLIMIT_BUCKETS];
	unsigned sweep_next; /* the bucket iplimit_sweep looks at next */
};

struct iplimit *iplimit_new(void)
{
	return calloc(1, sizeof(struct iplimit));
}

void iplimit_free(struct iplimit *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < IPLIMIT_BUCKETS; i++) {
		struct ip_entry *e = t->buckets[i];
		while (e != NULL) {
			struct ip_entry *next = e->next;
			free(e);
			e = next;
		}
	}
	free(t);
}

static struct ip_entry **ip_slot(struct iplimit *t, const char *ip)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const char *p = ip; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	struct ip_entry **slot = &t->buckets[h % IPLIMIT_BUCKETS];
	while (*slot != NULL && strcmp((*slot)->ip, ip) != 0)
		slot = &(*slot)->next;
	return slot;
}

static struct ip_entry *ip_get(struct iplimit *t, const char *ip, int create)
{
	struct ip_entry **slot = ip_slot(t, ip);
	if (*slot == NULL && create) {
		struct ip_entry *e = calloc(1, sizeof(*e));
		if (e == NULL)
			return NULL;
		strncpy(e->ip, ip, sizeof(e->ip) - 1);
		*slot = e;
	}
	return *slot;
}

static void ip_auth_forget(struct ip_entry *e)
{
	e->auth_failures = 0;
	memset(e->recent, 0, sizeof(e->recent));
	e->recent_next = 0;
}

static void ip_expire(struct ip_entry *e, time_t now)
{
	if (e->auth_failures > 0 && now - e->last_failure > IPLIMIT_AUTH_WINDOW)
		ip_auth_forget(e);
}

static void ip_maybe_drop(struct iplimit *t, const char *ip, time_t now)
{
	struct ip_entry **slot = ip_slot(t, ip);
	struct ip_entry *e = *slot;
	if (e == NULL)
		return;
	ip_expire(e, now);
	if (e->conns == 0 && e->auth_failures == 0) {
		*slot = e->next;
		free(e);
	}
}

unsigned iplimit_conn_add(struct iplimit *t, const char *ip)
{
	struct ip_entry *e = ip_get(t, ip, 1);
	if (e == NULL)
		return UINT32_MAX; /* out of memory: treat as over any limit */
	return ++e->conns;
}

void iplimit_conn_del(struct iplimit *t, const char *ip)
{
	struct ip_entry *e = ip_get(t, ip, 0);
	if (e == NULL || e->conns == 0)
		return;
	e->conns--;
	ip_maybe_drop(t, ip, time(NULL));
}

unsigned iplimit_conn_count(struct iplimit *t, const char *ip)
{
	struct ip_entry *e = ip_get(t, ip, 0);
	return e != NULL ? e->conns : 0;
}

static bool ip_tag_seen(const struct ip_entry *e, uint64_t tag)
{
	for (unsigned i = 0; tag != 0 && i < IPLIMIT_AUTH_RECENT; i++)
		if (e->recent[i] == tag)
			return true;
	return false;
}

unsigned iplimit_auth_fail(struct iplimit *t, const char *ip, time_t now, uint64_t tag, bool *repeat_r)
{
	*repeat_r = false;
	struct ip_entry *e = ip_get(t, ip, 1);
	if (e == NULL)
		return UINT32_MAX; /* out of memory: as if over any threshold */
	ip_expire(e, now);
	e->last_failure = now;
	if (ip_tag_seen(e, tag)) {
		*repeat_r = true;
		return e->auth_failures;
	}
	if (tag != 0) {
		e->recent[e->recent_next] = tag;
		e->recent_next = (e->recent_next + 1) % IPLIMIT_AUTH_RECENT;
	}
	if (e->auth_failures < UINT32_MAX)
		e->auth_failures++;
	return e->auth_failures;
}

void iplimit_auth_clear(struct iplimit *t, const char *ip)
{
	struct ip_entry *e = ip_get(t, ip, 0);
	if (e == NULL)
		return;
	ip_auth_forget(e);
	ip_maybe_drop(t, ip, time(NULL));
}

void iplimit_sweep(struct iplimit *t, time_t now, unsigned buckets)
{
	for (unsigned n = 0; n < buckets && n < IPLIMIT_BUCKETS; n++) {
		struct ip_entry **slot = &t->buckets[t->sweep_next];
		t->sweep_next = (t->sweep_next + 1) % IPLIMIT_BUCKETS;
		while (*slot != NULL) {
			struct ip_entry *e = *slot;
			ip_expire(e, now);
			if (e->conns == 0 && e->auth_failures == 0) {
				*slot = e->next;
				free(e);
			} else {
				slot = &e->next;
			}
		}
	}
}

/* "BITS" after the slash: 16 to 128, digits only, no leading zero (what net_client_key writes). */
static bool ip_prefix_parse(const char *s, unsigned *bits_r)
{
	unsigned v = 0;
	size_t n = 0;
	for (; s[n] >= '0' && s[n] <= '9'; n++) {
		if (n == 3)
			return false;
		v = v * 10 + (unsigned)(s[n] - '0');
	}
	if (n == 0 || s[n] != '\0' || (s[0] == '0') || v < 16 || v > 128)
		return false;
	*bits_r = v;
	return true;
}

bool iplimit_key_parse(const char *text, unsigned ipv6_prefix, char key_r[NET_CLIENT_KEY_SIZE])
{
	char addr[INET6_ADDRSTRLEN];
	size_t len = strnlen(text, NET_CLIENT_KEY_SIZE);
	if (len == 0 || len >= NET_CLIENT_KEY_SIZE)
		return false;
	const char *slash = memchr(text, '/', len);
	size_t alen = slash != NULL ? (size_t)(slash - text) : len;
	unsigned bits = ipv6_prefix;
	if (alen == 0 || alen >= sizeof(addr) || (slash != NULL && !ip_prefix_parse(slash + 1, &bits)))
		return false;
	memcpy(addr, text, alen);
	addr[alen] = '\0';
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
	if (slash == NULL && inet_pton(AF_INET, addr, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
	} else if (inet_pton(AF_INET6, addr, &v6->sin6_addr) == 1) {
		/* a mapped address is an IPv4 client, which has no prefix */
		if (slash != NULL && IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr))
			return false;
		v6->sin6_family = AF_INET6;
	} else {
		return false;
	}
	net_client_key((const struct sockaddr *)&ss, bits, key_r, NET_CLIENT_KEY_SIZE);
	return true;
}

unsigned iplimit_auth_failures(struct iplimit *t, const char *ip, time_t now)
{
	struct ip_entry *e = ip_get(t, ip, 0);
	if (e == NULL)
		return 0;
	ip_expire(e, now);
	return e->auth_failures;
}
