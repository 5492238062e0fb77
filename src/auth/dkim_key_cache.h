/* dkim_key_cache.h — DKIM key records already decoded, by their exact text: a sender's key record
 * comes back from DNS (unbound's cache) with every message, and decoding its public key with
 * OpenSSL costs more than the RSA verification itself. The text is the key, so a record that
 * changes in DNS is a new entry; the cache never decides what DNS says. Bounded; one thread (the
 * loop) at a time. */
#ifndef MAILWERK_AUTH_DKIM_KEY_CACHE_H
#define MAILWERK_AUTH_DKIM_KEY_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/dkim_key.h"

#define DKIM_KEY_CACHE_ENTRIES 256
/* Records longer than this are decoded each time (a 4096-bit key record is about 750 octets). */
#define DKIM_KEY_CACHE_TEXT_MAX 2048

struct dkim_key_cache;

struct dkim_key_cache *dkim_key_cache_new(void);
void dkim_key_cache_free(struct dkim_key_cache *c);

/* dkim_key_record_parse through the cache: the same result for the same text, with r->pkey a
 * reference of the caller's own (dkim_key_record_clear frees it). Only records that parse are kept.
 * c may be NULL (no cache). */
enum dkim_key_error dkim_key_cache_parse(struct dkim_key_cache *c, const char *text, size_t len,
					 struct dkim_key_record *r, const char **error_r);

/* Entries and hits so far (for tests and logs). */
void dkim_key_cache_stats(const struct dkim_key_cache *c, size_t *entries_r, unsigned long long *hits_r);

#endif
