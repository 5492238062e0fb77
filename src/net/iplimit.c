/* iplimit.c — a small chained hash table keyed by the textual client address. Entries live while
 * the address has connections or a failure inside the window. */
#include "net/iplimit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define IPLIMIT_BUCKETS 1024

struct ip_entry {
	struct ip_entry *next;
	unsigned conns;
	unsigned auth_failures;
	time_t last_failure;
	char ip[46];
};

struct iplimit {
	struct ip_entry *buckets[IPLIMIT_BUCKETS];
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

static void ip_expire(struct ip_entry *e, time_t now)
{
	if (e->auth_failures > 0 && now - e->last_failure > IPLIMIT_AUTH_WINDOW)
		e->auth_failures = 0;
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

unsigned iplimit_auth_fail(struct iplimit *t, const char *ip, time_t now)
{
	struct ip_entry *e = ip_get(t, ip, 1);
	if (e == NULL)
		return UINT32_MAX;
	ip_expire(e, now);
	e->last_failure = now;
	return ++e->auth_failures;
}

unsigned iplimit_auth_failures(struct iplimit *t, const char *ip, time_t now)
{
	struct ip_entry *e = ip_get(t, ip, 0);
	if (e == NULL)
		return 0;
	ip_expire(e, now);
	return e->auth_failures;
}
