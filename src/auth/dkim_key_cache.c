/* dkim_key_cache.c — decoded DKIM key records by their text. */
#include "auth/dkim_key_cache.h"

#include <stdlib.h>
#include <string.h>

struct cache_entry {
	char *text;
	size_t len;
	struct dkim_key_record rec; /* holds one reference on rec.pkey */
};

struct dkim_key_cache {
	struct cache_entry e[DKIM_KEY_CACHE_ENTRIES];
	size_t count;
	size_t next; /* replaced next when full: the oldest (round robin) */
	unsigned long long hits;
};

struct dkim_key_cache *dkim_key_cache_new(void)
{
	return calloc(1, sizeof(struct dkim_key_cache));
}

static void entry_clear(struct cache_entry *e)
{
	free(e->text);
	dkim_key_record_clear(&e->rec);
	memset(e, 0, sizeof(*e));
}

void dkim_key_cache_free(struct dkim_key_cache *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->count; i++)
		entry_clear(&c->e[i]);
	free(c);
}

/* A copy of rec with its own reference on the key. */
static bool record_share(const struct dkim_key_record *from, struct dkim_key_record *to)
{
	*to = *from;
	if (from->pkey != NULL && EVP_PKEY_up_ref(from->pkey) != 1) {
		to->pkey = NULL;
		return false;
	}
	return true;
}

enum dkim_key_error dkim_key_cache_parse(struct dkim_key_cache *c, const char *text, size_t len,
					 struct dkim_key_record *r, const char **error_r)
{
	if (c != NULL) {
		for (size_t i = 0; i < c->count; i++) {
			struct cache_entry *e = &c->e[i];
			if (e->text != NULL && e->len == len && memcmp(e->text, text, len) == 0 &&
			    record_share(&e->rec, r)) {
				c->hits++;
				return DKIM_KEY_OK;
			}
		}
	}
	enum dkim_key_error err = dkim_key_record_parse(text, len, r, error_r);
	if (err != DKIM_KEY_OK || c == NULL || len > DKIM_KEY_CACHE_TEXT_MAX)
		return err;
	char *copy = malloc(len > 0 ? len : 1);
	if (copy == NULL)
		return err; /* not cached; the result stands */
	struct cache_entry *e;
	if (c->count < DKIM_KEY_CACHE_ENTRIES) {
		e = &c->e[c->count++];
	} else {
		e = &c->e[c->next];
		entry_clear(e);
		c->next = (c->next + 1) % DKIM_KEY_CACHE_ENTRIES;
	}
	memcpy(copy, text, len);
	if (!record_share(r, &e->rec)) {
		free(copy);
		memset(e, 0, sizeof(*e));
		return err;
	}
	e->text = copy;
	e->len = len;
	return err;
}

void dkim_key_cache_stats(const struct dkim_key_cache *c, size_t *entries_r, unsigned long long *hits_r)
{
	*entries_r = c != NULL ? c->count : 0;
	*hits_r = c != NULL ? c->hits : 0;
}
