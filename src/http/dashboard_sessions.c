/* dashboard_sessions.c — the session table: a small array scanned in constant time per entry
 * (there are few admins), the tokens made by OpenSSL's RNG. */
#include "http/dashboard_sessions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

struct dashboard_sessions {
	struct dashboard_session *v;
	size_t n, cap;
};

struct dashboard_sessions *dashboard_sessions_new(void)
{
	return calloc(1, sizeof(struct dashboard_sessions));
}

void dashboard_sessions_free(struct dashboard_sessions *d)
{
	if (d == NULL)
		return;
	OPENSSL_cleanse(d->v, d->cap * sizeof(*d->v));
	free(d->v);
	free(d);
}

static bool random_hex(char *out, size_t octets)
{
	unsigned char raw[32];
	if (octets > sizeof(raw) || RAND_bytes(raw, (int)octets) != 1)
		return false;
	for (size_t i = 0; i < octets; i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
	OPENSSL_cleanse(raw, sizeof(raw));
	return true;
}

static bool token_hash(const char *token, unsigned char out[32])
{
	unsigned int len = 0;
	return EVP_Digest(token, strlen(token), out, &len, EVP_sha256(), NULL) == 1 && len == 32;
}

static bool expired(const struct dashboard_session *s, int64_t now_ms)
{
	return now_ms - s->created_ms >= (int64_t)DASHBOARD_SESSION_MAX_AGE * 1000 ||
	       now_ms - s->used_ms >= (int64_t)DASHBOARD_SESSION_IDLE * 1000;
}

static void remove_at(struct dashboard_sessions *d, size_t i)
{
	d->v[i] = d->v[d->n - 1];
	OPENSSL_cleanse(&d->v[d->n - 1], sizeof(d->v[0]));
	d->n--;
}

static void prune(struct dashboard_sessions *d, int64_t now_ms)
{
	for (size_t i = 0; i < d->n;)
		if (expired(&d->v[i], now_ms))
			remove_at(d, i);
		else
			i++;
}

const struct dashboard_session *dashboard_sessions_start(struct dashboard_sessions *d, const char *user,
							 const struct api_key *key, int64_t now_ms,
							 char token_r[DASHBOARD_TOKEN_LEN + 1])
{
	prune(d, now_ms);
	if (d->n == DASHBOARD_SESSIONS_MAX) {
		size_t oldest = 0;
		for (size_t i = 1; i < d->n; i++)
			if (d->v[i].used_ms < d->v[oldest].used_ms)
				oldest = i;
		remove_at(d, oldest);
	}
	if (d->n == d->cap) {
		size_t cap = d->cap == 0 ? 8 : d->cap * 2;
		struct dashboard_session *g = realloc(d->v, cap * sizeof(*g));
		if (g == NULL)
			return NULL;
		d->v = g, d->cap = cap;
	}
	struct dashboard_session s = {.created_ms = now_ms, .used_ms = now_ms};
	unsigned char account[32];
	if (!random_hex(token_r, DASHBOARD_TOKEN_LEN / 2) || !random_hex(s.csrf, DASHBOARD_TOKEN_LEN / 2) ||
	    !token_hash(token_r, s.token_hash) || (user != NULL && !token_hash(user, account))) {
		OPENSSL_cleanse(token_r, DASHBOARD_TOKEN_LEN + 1);
		return NULL;
	}
	if (user != NULL) {
		snprintf(s.user, sizeof(s.user), "%s", user);
		snprintf(s.label, sizeof(s.label), "%s", user);
		/* one bucket per account, whatever number of sessions it has (the API's table of buckets
		 * grows with the names it sees) */
		snprintf(s.rate_id, sizeof(s.rate_id), "dashboard-");
		for (size_t i = 0; i < 8; i++)
			snprintf(s.rate_id + 10 + 2 * i, 3, "%02x", account[i]);
	} else {
		snprintf(s.key_id, sizeof(s.key_id), "%s", key->id);
		snprintf(s.label, sizeof(s.label), "API key %s", key->name);
		snprintf(s.rate_id, sizeof(s.rate_id), "%s", key->id); /* the key's own bucket */
	}
	d->v[d->n] = s;
	OPENSSL_cleanse(&s, sizeof(s));
	return &d->v[d->n++];
}

/* The index of token's session, or -1; every entry is compared (no early exit on a match). */
static long find_index(struct dashboard_sessions *d, const char *token)
{
	unsigned char h[32];
	if (strlen(token) != DASHBOARD_TOKEN_LEN || !token_hash(token, h))
		return -1;
	long at = -1;
	for (size_t i = 0; i < d->n; i++)
		if (CRYPTO_memcmp(d->v[i].token_hash, h, sizeof(h)) == 0)
			at = (long)i;
	return at;
}

const struct dashboard_session *dashboard_sessions_find(struct dashboard_sessions *d, const char *token,
							int64_t now_ms)
{
	long at = find_index(d, token);
	if (at < 0)
		return NULL;
	if (expired(&d->v[at], now_ms)) {
		remove_at(d, (size_t)at);
		return NULL;
	}
	d->v[at].used_ms = now_ms;
	return &d->v[at];
}

void dashboard_sessions_end(struct dashboard_sessions *d, const char *token)
{
	long at = find_index(d, token);
	if (at >= 0)
		remove_at(d, (size_t)at);
}

bool dashboard_session_csrf_ok(const struct dashboard_session *s, const char *presented)
{
	/* the length is no secret (always DASHBOARD_TOKEN_LEN); the octets are compared in constant time */
	return strlen(presented) == DASHBOARD_TOKEN_LEN &&
	       CRYPTO_memcmp(s->csrf, presented, DASHBOARD_TOKEN_LEN) == 0;
}

unsigned dashboard_session_max_age(const struct dashboard_session *s, int64_t now_ms)
{
	int64_t left = (int64_t)DASHBOARD_SESSION_MAX_AGE - (now_ms - s->created_ms) / 1000;
	return left > 0 ? (unsigned)left : 0;
}
