/* login_penalty.c — failure delays, per-account counts and the set of banned clients (see the
 * header); pure bookkeeping, no clock of its own and no I/O. */
#include "server/login_penalty.h"

#include <stdlib.h>
#include <string.h>

#include "mailbox/users.h"

_Static_assert(NET_CLIENT_KEY_SIZE <= USERS_BAN_CLIENT_SIZE, "a client key fits a stored ban");

/* Dovecot's shape (src/auth/auth-penalty.h: AUTH_PENALTY_INIT_SECS 2, AUTH_PENALTY_MAX_SECS 15,
 * doubled per penalty point), with both ends configurable. */
unsigned login_delay_ms(unsigned failures, unsigned initial_ms, unsigned max_ms)
{
	if (failures == 0 || initial_ms == 0)
		return 0;
	uint64_t ms = initial_ms;
	for (unsigned i = 1; i < failures && ms < max_ms; i++)
		ms *= 2;
	return ms < max_ms ? (unsigned)ms : max_ms;
}

/* ---- accounts ---- */

struct login_good {
	uint64_t client;
	time_t when;
};

struct login_account {
	uint64_t key; /* 0: free */
	unsigned failures;
	time_t last_failure;
	time_t last_use; /* failure or success: what keeps the slot from being taken */
	struct login_good good[LOGIN_ACCOUNT_GOOD];
};

struct login_accounts {
	struct login_account slots[LOGIN_ACCOUNT_SLOTS];
};

struct login_accounts *login_accounts_new(void)
{
	return calloc(1, sizeof(struct login_accounts));
}

void login_accounts_free(struct login_accounts *a)
{
	free(a);
}

static void account_expire(struct login_account *e, time_t now)
{
	if (e->failures > 0 && now - e->last_failure > LOGIN_ACCOUNT_WINDOW)
		e->failures = 0;
	for (unsigned i = 0; i < LOGIN_ACCOUNT_GOOD; i++)
		if (e->good[i].client != 0 && now - e->good[i].when > LOGIN_ACCOUNT_WINDOW)
			e->good[i].client = 0;
}

static bool account_idle(const struct login_account *e, time_t now)
{
	return e->key == 0 || now - e->last_use > LOGIN_ACCOUNT_WINDOW;
}

/* The account's slot: its own among the probes, else a free or idle one, else the stalest. */
static struct login_account *account_slot(struct login_accounts *a, uint64_t key, time_t now)
{
	struct login_account *take = NULL;
	for (unsigned i = 0; i < LOGIN_ACCOUNT_PROBES; i++) {
		struct login_account *e = &a->slots[(key + i) % LOGIN_ACCOUNT_SLOTS];
		if (e->key == key) {
			account_expire(e, now);
			return e;
		}
		if (take == NULL || (!account_idle(take, now) && (account_idle(e, now) || e->last_use < take->last_use)))
			take = e;
	}
	memset(take, 0, sizeof(*take));
	take->key = key;
	return take;
}

static bool account_good(const struct login_account *e, uint64_t client)
{
	for (unsigned i = 0; client != 0 && i < LOGIN_ACCOUNT_GOOD; i++)
		if (e->good[i].client == client)
			return true;
	return false;
}

/* Remembers client as good: its own entry refreshed, else a free one, else the oldest. */
static void account_good_add(struct login_account *e, uint64_t client, time_t now)
{
	struct login_good *take = &e->good[0];
	for (unsigned i = 0; i < LOGIN_ACCOUNT_GOOD; i++) {
		struct login_good *g = &e->good[i];
		if (g->client == client || g->client == 0) {
			take = g;
			break;
		}
		if (g->when < take->when)
			take = g;
	}
	*take = (struct login_good){.client = client, .when = now};
}

unsigned login_accounts_fail(struct login_accounts *a, uint64_t account, uint64_t client, time_t now, bool repeat,
			     bool *good_r)
{
	struct login_account *e = account_slot(a, account, now);
	e->last_use = now;
	e->last_failure = now;
	if (!repeat && e->failures < UINT32_MAX)
		e->failures++;
	*good_r = account_good(e, client);
	return e->failures;
}

unsigned login_accounts_success(struct login_accounts *a, uint64_t account, uint64_t client, time_t now,
				bool *good_r)
{
	struct login_account *e = account_slot(a, account, now);
	e->last_use = now;
	*good_r = account_good(e, client);
	if (client != 0)
		account_good_add(e, client, now);
	return e->failures;
}

/* ---- bans ---- */

#define LOGIN_BAN_BUCKETS 1024

struct login_bans {
	struct login_ban *buckets[LOGIN_BAN_BUCKETS];
	size_t count;
};

struct login_bans *login_bans_new(void)
{
	return calloc(1, sizeof(struct login_bans));
}

void login_bans_free(struct login_bans *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < LOGIN_BAN_BUCKETS; i++)
		while (b->buckets[i] != NULL) {
			struct login_ban *next = b->buckets[i]->next;
			free(b->buckets[i]);
			b->buckets[i] = next;
		}
	free(b);
}

size_t login_bans_count(const struct login_bans *b)
{
	return b->count;
}

static struct login_ban **ban_slot(struct login_bans *b, const char *client)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const char *p = client; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	struct login_ban **slot = &b->buckets[h % LOGIN_BAN_BUCKETS];
	while (*slot != NULL && strcmp((*slot)->client, client) != 0)
		slot = &(*slot)->next;
	return slot;
}

const struct login_ban *login_bans_find(struct login_bans *b, const char *client, time_t now)
{
	const struct login_ban *e = *ban_slot(b, client);
	return e != NULL && e->until > (int64_t)now ? e : NULL;
}

struct login_ban *login_bans_add(struct login_bans *b, const char *client, int64_t since, int64_t until,
				 unsigned failures)
{
	if (client[0] == '\0' || strlen(client) >= NET_CLIENT_KEY_SIZE)
		return NULL;
	struct login_ban **slot = ban_slot(b, client);
	struct login_ban *e = *slot;
	if (e == NULL) {
		if (b->count >= LOGIN_BANS_MAX || (e = calloc(1, sizeof(*e))) == NULL)
			return NULL;
		strcpy(e->client, client);
		*slot = e;
		b->count++;
	}
	e->since = since;
	e->until = until;
	e->failures = failures;
	e->visible_from = UINT64_MAX;
	return e;
}

void login_bans_written(struct login_bans *b, const char *client, int64_t since, uint64_t refresh)
{
	struct login_ban *e = *ban_slot(b, client);
	if (e != NULL && e->since == since && e->visible_from > refresh)
		e->visible_from = refresh;
}

static void bans_take_rows(struct login_bans *b, const struct users_ban *rows, size_t n, uint64_t refresh,
			   time_t now)
{
	for (size_t i = 0; i < n; i++) {
		const struct users_ban *r = &rows[i];
		if (r->until <= (int64_t)now || strlen(r->client) >= NET_CLIENT_KEY_SIZE)
			continue;
		struct login_ban *e = *ban_slot(b, r->client);
		if (e == NULL && (e = login_bans_add(b, r->client, r->since, r->until, r->failures)) == NULL)
			continue; /* full: the ones in force stay */
		e->since = r->since;
		e->until = r->until;
		e->failures = r->failures;
		e->visible_from = e->visible_from < refresh ? e->visible_from : refresh;
		e->seen = refresh;
	}
}

void login_bans_sync(struct login_bans *b, const struct users_ban *rows, size_t n, uint64_t refresh, time_t now,
		     login_ban_gone_fn *gone, void *arg)
{
	bans_take_rows(b, rows, n, refresh, now);
	for (size_t i = 0; i < LOGIN_BAN_BUCKETS; i++) {
		struct login_ban **slot = &b->buckets[i];
		while (*slot != NULL) {
			struct login_ban *e = *slot;
			bool expired = e->until <= (int64_t)now;
			bool removed = e->seen != refresh && refresh >= e->visible_from;
			if (!expired && !removed) {
				slot = &e->next;
				continue;
			}
			gone(e, expired, arg);
			*slot = e->next;
			free(e);
			b->count--;
		}
	}
}
