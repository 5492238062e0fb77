/* mtasts_store.h — the rows of the MTA-STS policy cache in DATA_DIR/reports.db (table
 * mta_sts_policies, made by report_store's schema step 2): one row per policy domain with the id it
 * was fetched for, when, until when, its mode, mx patterns and the policy text. Storage only: it
 * knows rows of text and numbers, not what they mean (delivery/mtasts_cache.c applies the rules).
 *
 * Calls block on SQLite (a put commits with fsync): the server makes them on a worker thread, the
 * CLI directly. One mutex serializes them, so any thread may call. */
#ifndef MAILWERK_DELIVERY_MTASTS_STORE_H
#define MAILWERK_DELIVERY_MTASTS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/result.h"

#define MTASTS_STORE_DOMAIN_SIZE 254
#define MTASTS_STORE_ID_SIZE 33
#define MTASTS_STORE_MODE_SIZE 16

struct mtasts_store;

struct mtasts_store_row {
	char domain[MTASTS_STORE_DOMAIN_SIZE];
	char id[MTASTS_STORE_ID_SIZE];
	int64_t fetched, expires; /* unix seconds */
	char mode[MTASTS_STORE_MODE_SIZE];
	const char *mx;     /* one pattern per line */
	const char *policy; /* the text as fetched */
	size_t policy_len;
};

/* Opens (creating and migrating it when needed, mode 0600) DATA_DIR/reports.db; NULL with a
 * sentence that lives until the next failed open on this thread. */
struct mtasts_store *mtasts_store_open(const char *data_dir, const char **error_r);
void mtasts_store_close(struct mtasts_store *s);

/* Inserts or replaces the domain's row. RESULT_TEMPFAIL with a sentence (kept in the store until its
 * next call) when the database fails. */
enum result mtasts_store_put(struct mtasts_store *s, const struct mtasts_store_row *r, const char **error_r);
/* Deletes the domain's row (none: RESULT_OK). */
enum result mtasts_store_delete(struct mtasts_store *s, const char *domain, const char **error_r);
/* Calls fn for each row, in domain order, until it returns false; the row's strings live only
 * during the call. At most limit rows (0: no limit). */
typedef bool mtasts_store_row_fn(void *arg, const struct mtasts_store_row *r);
enum result mtasts_store_each(struct mtasts_store *s, size_t limit, mtasts_store_row_fn *fn, void *arg,
			      const char **error_r);

#endif
