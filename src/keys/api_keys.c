/* api_keys.c — the HTTP API's key store (api_keys.h): DATA_DIR/api.db, table api_keys, and the
 * in-memory copy of it that api_keys_check serves requests from.
 *
 * Threads. The loop thread checks and touches; a worker creates, revokes, lists and flushes at the
 * same time. So there are two connections, each under its own mutex:
 *   reader_mu + reader  the loop's: PRAGMA data_version and the reloads (reads only, never fsyncs;
 *                       no busy wait either, see api_keys_open)
 *   writer_mu + writer  the workers': every write (synchronous=FULL, so these fsync) and list
 * and the cache under cache_mu, which is only ever held for memory work: nobody holds it across a
 * SQLite call, so the loop waits at most for a memcpy, never for the disk. The one nesting is
 * reader_mu then cache_mu (a reload swaps its snapshot in before another reload can start).
 *
 * The cache is sorted by id, so that a reload merges the usage times it has not written yet in one
 * pass, touch finds a key by binary search, and create/revoke edit it in place. */
#include "keys/api_keys.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include "db/db.h"
#include "util/addr.h"
#include "util/base64.h"
#include "util/uuid.h"

_Static_assert(API_KEY_ID_LEN == UUID_TEXT_LEN, "API key ids are UUIDs");
#include "util/log.h"
#include "util/utf8.h"
#include "util/date.h"

#define API_KEYS_DB_NAME "api.db"
#define API_KEY_PREFIX "re_"
#define API_KEY_PREFIX_LEN 3
#define API_KEY_RANDOM_BYTES 32
#define API_KEY_HASH_LEN 32 /* SHA-256 */

/* Every schema change is a new step at the end (db.h). The token's hash is UNIQUE: besides the
 * index it gives, two keys with one hash could not be told apart by api_keys_check. */
static const char api_keys_schema_v1[] =
	"CREATE TABLE api_keys("
	" id TEXT PRIMARY KEY,"
	" name TEXT NOT NULL,"
	" token_hash BLOB NOT NULL UNIQUE,"
	" permission INTEGER,"
	" domain TEXT NOT NULL DEFAULT '',"
	" created_at INTEGER NOT NULL,"
	" last_used_at INTEGER NOT NULL DEFAULT 0);";

static const char *const api_keys_schema_steps[] = { api_keys_schema_v1 };
static const struct db_schema api_keys_schema = {
	api_keys_schema_steps, sizeof(api_keys_schema_steps) / sizeof(api_keys_schema_steps[0]),
};

struct api_keys_entry {
	unsigned char hash[API_KEY_HASH_LEN];
	struct api_key key; /* key.last_used_at: the latest use seen, on disk or only noted here */
	int64_t flushed_at; /* the last_used_at known to be on disk: the entry is dirty while below it */
};

struct api_keys {
	pthread_mutex_t reader_mu;
	struct db *reader;
	int64_t loaded_version; /* the reader's data_version when the cache was last loaded */
	bool reload_failing;    /* the last reload failed: logged once, not on every request */

	pthread_mutex_t writer_mu;
	struct db *writer;

	pthread_mutex_t cache_mu;
	struct api_keys_entry *entries; /* sorted by key.id */
	size_t count;

	/* Set (after its cache edit) by every write through this struct, cleared by a reload before it
	 * reads: a write that lands while a reload reads is then never hidden by the reload's swap. */
	atomic_bool stale;
};

const char *api_key_permission_str(enum api_key_permission p)
{
	switch (p) {
	case API_KEY_FULL_ACCESS: return "full_access";
	case API_KEY_SENDING_ACCESS: return "sending_access";
	}
	return "unknown";
}

bool api_key_permission_parse(const char *s, enum api_key_permission *p_r)
{
	if (strcmp(s, "full_access") == 0)
		*p_r = API_KEY_FULL_ACCESS;
	else if (strcmp(s, "sending_access") == 0)
		*p_r = API_KEY_SENDING_ACCESS;
	else
		return false;
	return true;
}

/* ---- small pieces ---- */

static bool api_keys_hash(const char *token, size_t len, unsigned char out[API_KEY_HASH_LEN])
{
	unsigned int n = 0;

	return EVP_Digest(token, len, out, &n, EVP_sha256(), NULL) == 1 && n == API_KEY_HASH_LEN;
}

/* "re_" + base64url without padding (RFC 4648 §5) of 32 random octets: 43 digits. */
static bool api_keys_token_make(char token_r[API_KEY_TOKEN_LEN + 1])
{
	unsigned char raw[API_KEY_RANDOM_BYTES];
	size_t n = 0;
	memcpy(token_r, API_KEY_PREFIX, API_KEY_PREFIX_LEN);
	if (RAND_bytes(raw, sizeof(raw)) == 1)
		n = base64url_encode(raw, sizeof(raw), token_r + API_KEY_PREFIX_LEN,
				     API_KEY_TOKEN_LEN + 1 - API_KEY_PREFIX_LEN);
	OPENSSL_cleanse(raw, sizeof(raw));
	return API_KEY_PREFIX_LEN + n == API_KEY_TOKEN_LEN;
}

/* 1..API_KEY_NAME_MAX code points of well-formed UTF-8 without control characters (C0, DEL, C1):
 * the name is shown in tables, logs and the dashboard. NULL, or why not. */
static const char *api_keys_name_check(const char *name)
{
	const unsigned char *p = (const unsigned char *)name;
	size_t left = strlen(name), chars = 0;

	if (left == 0)
		return "the name must not be empty";
	while (left > 0) {
		size_t n = utf8_len(p, left);

		if (n == 0)
			return "the name is not valid UTF-8";
		/* U+0080..U+009F are C2 80..C2 9F */
		if (p[0] < 0x20 || p[0] == 0x7f || (n == 2 && p[0] == 0xc2 && p[1] < 0xa0))
			return "the name must not contain control characters";
		if (++chars > API_KEY_NAME_MAX)
			return "the name must be at most 50 characters";
		p += n;
		left -= n;
	}
	return NULL;
}

/* Into domain_r: "" for NULL or "", else the domain, lower-cased (RFC 5321 §2.4: case does not
 * matter, and the HTTP side then compares it with a sender's domain as stored). false with a
 * sentence in error when it is not a domain name. */
static bool api_keys_domain_norm(const char *domain, char domain_r[256], char *error, size_t error_size)
{
	const char *why = NULL;
	size_t len;

	domain_r[0] = '\0';
	if (domain == NULL || domain[0] == '\0')
		return true;
	len = strlen(domain);
	if (len > ADDR_DOMAIN_MAX || addr_parse_domain(domain, len, ADDR_ALLOW_UTF8, &why) != ADDR_OK) {
		snprintf(error, error_size, "invalid domain \"%.*s\": %s", len > 80 ? 80 : (int)len, domain,
			 why != NULL ? why : "too long");
		return false;
	}
	if (domain[0] == '[') {
		snprintf(error, error_size, "%s is an address literal; a key can only be limited to a domain",
			 domain);
		return false;
	}
	for (size_t i = 0; i <= len; i++)
		domain_r[i] = domain[i] >= 'A' && domain[i] <= 'Z' ? (char)(domain[i] - 'A' + 'a') : domain[i];
	return true;
}

static void api_keys_db_error(struct db *db, const char *what, char *error, size_t error_size)
{
	snprintf(error, error_size, "%s: %s: %s", API_KEYS_DB_NAME, what, sqlite3_errmsg(db_sqlite(db)));
}

/* ---- the cache (callers hold cache_mu) ---- */

/* The index of id, or where it would go (*found_r false). */
static size_t api_keys_cache_find(const struct api_keys *k, const char *id, bool *found_r)
{
	size_t lo = 0, hi = k->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(k->entries[mid].key.id, id);

		if (c == 0) {
			*found_r = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found_r = false;
	return lo;
}

static bool api_keys_cache_insert(struct api_keys *k, const struct api_keys_entry *e)
{
	bool found;
	size_t at = api_keys_cache_find(k, e->key.id, &found);
	struct api_keys_entry *grown;

	if (found) {
		k->entries[at] = *e;
		return true;
	}
	grown = realloc(k->entries, (k->count + 1) * sizeof(*grown));
	if (grown == NULL)
		return false;
	k->entries = grown;
	memmove(&grown[at + 1], &grown[at], (k->count - at) * sizeof(*grown));
	grown[at] = *e;
	k->count++;
	return true;
}

static void api_keys_cache_remove(struct api_keys *k, const char *id)
{
	bool found;
	size_t at = api_keys_cache_find(k, id, &found);

	if (!found)
		return;
	memmove(&k->entries[at], &k->entries[at + 1], (k->count - at - 1) * sizeof(*k->entries));
	k->count--;
}

/* ---- loading (reader_mu held) ---- */

/* One row of "SELECT id, name, token_hash, permission, domain, created_at, last_used_at" into key;
 * false for a row we cannot use (a field too long or a hash of the wrong size: written by something
 * other than this file). */
static bool api_keys_row(sqlite3_stmt *st, struct api_key *key, unsigned char hash_r[API_KEY_HASH_LEN])
{
	const char *id = (const char *)sqlite3_column_text(st, 0);
	const char *name = (const char *)sqlite3_column_text(st, 1);
	const void *hash = sqlite3_column_blob(st, 2);
	int hash_len = sqlite3_column_bytes(st, 2);
	int perm = sqlite3_column_int(st, 3);
	const char *domain = (const char *)sqlite3_column_text(st, 4);

	if (id == NULL || name == NULL || hash == NULL || hash_len != API_KEY_HASH_LEN
	    || strlen(id) > API_KEY_ID_LEN || strlen(name) >= sizeof(key->name)
	    || (domain != NULL && strlen(domain) >= sizeof(key->domain))
	    || (perm != API_KEY_FULL_ACCESS && perm != API_KEY_SENDING_ACCESS))
		return false;
	memset(key, 0, sizeof(*key));
	strcpy(key->id, id);
	strcpy(key->name, name);
	strcpy(key->domain, domain != NULL ? domain : "");
	key->permission = (enum api_key_permission)perm;
	key->created_at = sqlite3_column_int64(st, 5);
	key->last_used_at = sqlite3_column_int64(st, 6);
	if (hash_r != NULL)
		memcpy(hash_r, hash, API_KEY_HASH_LEN);
	return true;
}

/* Every row, sorted by id, in a new array. 0, or an SQLite code. */
static int api_keys_read_all(struct db *db, struct api_keys_entry **entries_r, size_t *count_r)
{
	sqlite3_stmt *st = db_stmt(db, "SELECT id, name, token_hash, permission, domain, created_at, last_used_at"
				       " FROM api_keys ORDER BY id");
	struct api_keys_entry *v = NULL;
	size_t n = 0, cap = 0;
	int rc;

	if (st == NULL)
		return db_errcode(db);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap == 0 ? 16 : cap * 2;
			struct api_keys_entry *grown = realloc(v, ncap * sizeof(*grown));

			if (grown == NULL) {
				rc = SQLITE_NOMEM;
				break;
			}
			v = grown;
			cap = ncap;
		}
		if (!api_keys_row(st, &v[n].key, v[n].hash))
			continue;
		v[n].flushed_at = v[n].key.last_used_at;
		n++;
	}
	/* done with it: a statement left stepping keeps its snapshot and holds back checkpoints (db.h) */
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		free(v);
		return rc;
	}
	*entries_r = v;
	*count_r = n;
	return SQLITE_OK;
}

/* Carries the usage times noted in the old cache, and not yet flushed or not yet seen by this
 * snapshot, over to the new one; both are sorted by id, so one pass. */
static void api_keys_usage_merge(struct api_keys_entry *to, size_t nto, const struct api_keys_entry *from,
				 size_t nfrom)
{
	size_t i = 0, j = 0;

	while (i < nto && j < nfrom) {
		int c = strcmp(to[i].key.id, from[j].key.id);

		if (c < 0) {
			i++;
		} else if (c > 0) {
			j++;
		} else {
			if (from[j].key.last_used_at > to[i].key.last_used_at)
				to[i].key.last_used_at = from[j].key.last_used_at;
			if (from[j].flushed_at > to[i].flushed_at)
				to[i].flushed_at = from[j].flushed_at;
			i++;
			j++;
		}
	}
}

/* Reloads when the file changed since the last load (another process, or our writer connection,
 * committed) or a write went through this struct. force: load whatever the version says (open).
 * 0, or -1 with a sentence; on failure the cache stays as it was. */
static int api_keys_reload(struct api_keys *k, bool force, char *error, size_t error_size)
{
	struct api_keys_entry *fresh = NULL, *old;
	size_t nfresh = 0, nold;
	int64_t version = 0;
	int rc = 0;

	pthread_mutex_lock(&k->reader_mu);
	/* PRAGMA data_version changes whenever another connection commits (sqlite.org/pragma.html
	 * #pragma_data_version); in WAL mode it reads the -shm header: no disk wait */
	if (db_int64(k->reader, "PRAGMA data_version", &version) != SQLITE_OK) {
		api_keys_db_error(k->reader, "cannot read the data version", error, error_size);
		rc = -1;
		goto out;
	}
	if (!force && version == k->loaded_version && !atomic_load(&k->stale))
		goto out;
	/* cleared before reading, so a write that commits while we read sets it again */
	atomic_store(&k->stale, false);
	if (api_keys_read_all(k->reader, &fresh, &nfresh) != SQLITE_OK) {
		api_keys_db_error(k->reader, "cannot load the keys", error, error_size);
		atomic_store(&k->stale, true);
		rc = -1;
		goto out;
	}
	pthread_mutex_lock(&k->cache_mu);
	api_keys_usage_merge(fresh, nfresh, k->entries, k->count);
	old = k->entries;
	nold = k->count;
	k->entries = fresh;
	k->count = nfresh;
	pthread_mutex_unlock(&k->cache_mu);
	k->loaded_version = version;
	/* hashes only, but no reason to leave them in freed memory */
	if (old != NULL)
		OPENSSL_cleanse(old, nold * sizeof(*old));
	free(old);
out:
	pthread_mutex_unlock(&k->reader_mu);
	return rc;
}

/* ---- opening ---- */

struct api_keys *api_keys_open(const char *data_dir, char *error, size_t error_size)
{
	/* Writer: creates and migrates the file; FULL, because a key that the CLI says exists (or is
	 * revoked) must stay so after a power cut. Reader: read-only, so the loop's connection can
	 * never take a write lock or fsync. NOMUTEX: each is used under its own mutex. */
	static const struct db_opts writer_opts = {
		.flags = SQLITE_OPEN_NOMUTEX,
		.sync = DB_SYNC_FULL,
		.schema = &api_keys_schema,
	};
	static const struct db_opts reader_opts = {
		.read_only = true,
		.flags = SQLITE_OPEN_NOMUTEX,
	};
	char path[4096];
	struct api_keys *k;
	int n = snprintf(path, sizeof(path), "%s/%s", data_dir, API_KEYS_DB_NAME);

	if (n < 0 || (size_t)n >= sizeof(path)) {
		snprintf(error, error_size, "the data directory path is too long");
		return NULL;
	}
	k = calloc(1, sizeof(*k));
	if (k == NULL) {
		snprintf(error, error_size, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&k->reader_mu, NULL);
	pthread_mutex_init(&k->writer_mu, NULL);
	pthread_mutex_init(&k->cache_mu, NULL);
	atomic_init(&k->stale, false);
	k->writer = db_open(path, &writer_opts, error, error_size);
	if (k->writer == NULL)
		goto fail;
	k->reader = db_open(path, &reader_opts, error, error_size);
	if (k->reader == NULL)
		goto fail;
	/* the first load may wait (this is not the loop yet, and there is nothing to serve without it) */
	if (api_keys_reload(k, true, error, error_size) != 0)
		goto fail;
	/* From now on the loop must never sleep in SQLite's busy handler. A WAL reader is busy only in
	 * rare moments (another connection recovering the WAL index); the reload then fails, the keys
	 * loaded before keep serving, and the next check tries again. */
	sqlite3_busy_timeout(db_sqlite(k->reader), 0);
	return k;
fail:
	api_keys_close(k);
	return NULL;
}

void api_keys_close(struct api_keys *k)
{
	if (k == NULL)
		return;
	db_close(k->reader);
	db_close(k->writer);
	if (k->entries != NULL)
		OPENSSL_cleanse(k->entries, k->count * sizeof(*k->entries));
	free(k->entries);
	pthread_mutex_destroy(&k->reader_mu);
	pthread_mutex_destroy(&k->writer_mu);
	pthread_mutex_destroy(&k->cache_mu);
	free(k);
}

/* ---- writes (worker threads) ---- */

int api_keys_create(struct api_keys *k, const char *name, enum api_key_permission perm, const char *domain,
		    char token_r[API_KEY_TOKEN_LEN + 1], struct api_key *key_r, bool *bad_input_r, char *error,
		    size_t error_size)
{
	struct api_keys_entry e;
	const char *why = NULL;
	sqlite3_stmt *st;
	int rc;

	*bad_input_r = true;
	token_r[0] = '\0';
	memset(&e, 0, sizeof(e));
	if (name == NULL || (why = api_keys_name_check(name)) != NULL) {
		snprintf(error, error_size, "%s", name == NULL ? "the name must not be empty" : why);
		return -1;
	}
	if (perm != API_KEY_FULL_ACCESS && perm != API_KEY_SENDING_ACCESS) {
		snprintf(error, error_size, "the permission must be full_access or sending_access");
		return -1;
	}
	if (!api_keys_domain_norm(domain, e.key.domain, error, error_size))
		return -1;
	/* Resend's rule: a domain limit only narrows sending; full access covers every domain anyway */
	if (e.key.domain[0] != '\0' && perm == API_KEY_FULL_ACCESS) {
		snprintf(error, error_size, "a key limited to a domain can only have sending_access");
		return -1;
	}
	*bad_input_r = false;
	strcpy(e.key.name, name);
	e.key.permission = perm;
	e.key.created_at = date_now_ms();
	if (!uuid_v4_new(e.key.id) || !api_keys_token_make(token_r)
	    || !api_keys_hash(token_r, API_KEY_TOKEN_LEN, e.hash)) {
		snprintf(error, error_size, "cannot make a key: no random numbers or no SHA-256 from OpenSSL");
		OPENSSL_cleanse(token_r, API_KEY_TOKEN_LEN + 1);
		return -1;
	}

	pthread_mutex_lock(&k->writer_mu);
	st = db_stmt(k->writer, "INSERT INTO api_keys(id, name, token_hash, permission, domain, created_at)"
				" VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
	rc = st != NULL ? SQLITE_OK : db_errcode(k->writer);
	if (st != NULL) {
		sqlite3_bind_text(st, 1, e.key.id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, e.key.name, -1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 3, e.hash, API_KEY_HASH_LEN, SQLITE_STATIC);
		sqlite3_bind_int(st, 4, (int)e.key.permission);
		sqlite3_bind_text(st, 5, e.key.domain, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, e.key.created_at);
		rc = sqlite3_step(st);
	}
	if (rc != SQLITE_DONE)
		api_keys_db_error(k->writer, "cannot store the new key", error, error_size);
	if (st != NULL)
		sqlite3_reset(st);
	pthread_mutex_unlock(&k->writer_mu);
	if (rc != SQLITE_DONE) {
		OPENSSL_cleanse(token_r, API_KEY_TOKEN_LEN + 1);
		return -1;
	}

	/* usable at once; should the memory run out, the reload that stale asks for brings it in */
	pthread_mutex_lock(&k->cache_mu);
	api_keys_cache_insert(k, &e);
	pthread_mutex_unlock(&k->cache_mu);
	atomic_store(&k->stale, true);
	if (key_r != NULL)
		*key_r = e.key;
	return 0;
}

int api_keys_revoke(struct api_keys *k, const char *id, char *error, size_t error_size)
{
	sqlite3_stmt *st;
	int rc, removed = 0;

	pthread_mutex_lock(&k->writer_mu);
	st = db_stmt(k->writer, "DELETE FROM api_keys WHERE id = ?1");
	rc = st != NULL ? SQLITE_OK : db_errcode(k->writer);
	if (st != NULL) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE)
			removed = sqlite3_changes(db_sqlite(k->writer)) > 0;
	}
	if (rc != SQLITE_DONE)
		api_keys_db_error(k->writer, "cannot delete the key", error, error_size);
	if (st != NULL)
		sqlite3_reset(st);
	pthread_mutex_unlock(&k->writer_mu);
	if (rc != SQLITE_DONE)
		return -1;

	/* refused from now on, even if the loop's next reload should fail */
	pthread_mutex_lock(&k->cache_mu);
	api_keys_cache_remove(k, id);
	pthread_mutex_unlock(&k->cache_mu);
	atomic_store(&k->stale, true);
	return removed;
}

int api_keys_list(struct api_keys *k, struct api_key **keys_r, size_t *count_r, char *error, size_t error_size)
{
	struct api_key *v = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int rc;

	*keys_r = NULL;
	*count_r = 0;
	pthread_mutex_lock(&k->writer_mu);
	st = db_stmt(k->writer, "SELECT id, name, token_hash, permission, domain, created_at, last_used_at"
				" FROM api_keys ORDER BY created_at DESC, id DESC");
	rc = st != NULL ? SQLITE_ROW : db_errcode(k->writer);
	while (st != NULL && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap == 0 ? 16 : cap * 2;
			struct api_key *grown = realloc(v, ncap * sizeof(*grown));

			if (grown == NULL) {
				rc = SQLITE_NOMEM;
				break;
			}
			v = grown;
			cap = ncap;
		}
		if (api_keys_row(st, &v[n], NULL))
			n++;
	}
	if (rc != SQLITE_DONE)
		api_keys_db_error(k->writer, "cannot list the keys", error, error_size);
	if (st != NULL)
		sqlite3_reset(st);
	pthread_mutex_unlock(&k->writer_mu);
	if (rc != SQLITE_DONE) {
		free(v);
		return -1;
	}

	/* uses noted in memory but not flushed yet are news too */
	pthread_mutex_lock(&k->cache_mu);
	for (size_t i = 0; i < n; i++) {
		bool found;
		size_t at = api_keys_cache_find(k, v[i].id, &found);

		if (found && k->entries[at].key.last_used_at > v[i].last_used_at)
			v[i].last_used_at = k->entries[at].key.last_used_at;
	}
	pthread_mutex_unlock(&k->cache_mu);
	*keys_r = v;
	*count_r = n;
	return 0;
}

/* ---- requests (the loop thread) ---- */

bool api_keys_check(struct api_keys *k, const char *token, struct api_key *key_r)
{
	unsigned char hash[API_KEY_HASH_LEN];
	char error[DB_ERROR_SIZE];
	bool found = false, failed;

	if (token == NULL || strnlen(token, API_KEY_TOKEN_LEN + 1) != API_KEY_TOKEN_LEN
	    || memcmp(token, API_KEY_PREFIX, API_KEY_PREFIX_LEN) != 0)
		return false;
	if (!api_keys_hash(token, API_KEY_TOKEN_LEN, hash))
		return false;
	/* a failed reload is not the client's fault: the keys loaded before keep serving */
	failed = api_keys_reload(k, false, error, sizeof(error)) != 0;
	if (failed && !k->reload_failing) {
		char value[LOG_VALUE_SIZE(DB_ERROR_SIZE)];

		log_warn("event=api_keys_reload_failed error=%s",
			 log_safe(value, sizeof(value), error, (unsigned)strlen(error)));
	} else if (!failed && k->reload_failing) {
		log_info("event=api_keys_reloaded");
	}
	k->reload_failing = failed;

	pthread_mutex_lock(&k->cache_mu);
	/* Constant-time comparison of hashes (no early exit inside one comparison). A linear scan is
	 * cheap next to the SHA-256 for the few thousand keys a setup has. */
	for (size_t i = 0; i < k->count; i++) {
		if (CRYPTO_memcmp(k->entries[i].hash, hash, API_KEY_HASH_LEN) == 0) {
			if (key_r != NULL)
				*key_r = k->entries[i].key;
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&k->cache_mu);
	return found;
}

bool api_keys_find(struct api_keys *k, const char *id, struct api_key *key_r)
{
	char error[DB_ERROR_SIZE];
	bool found;
	size_t at;

	(void)api_keys_reload(k, false, error, sizeof(error)); /* on a failure the keys loaded before serve */
	pthread_mutex_lock(&k->cache_mu);
	at = api_keys_cache_find(k, id, &found);
	if (found && key_r != NULL)
		*key_r = k->entries[at].key;
	pthread_mutex_unlock(&k->cache_mu);
	return found;
}

void api_keys_touch(struct api_keys *k, const char *id, int64_t now_ms)
{
	bool found;
	size_t at;

	pthread_mutex_lock(&k->cache_mu);
	at = api_keys_cache_find(k, id, &found);
	if (found && now_ms > k->entries[at].key.last_used_at)
		k->entries[at].key.last_used_at = now_ms;
	pthread_mutex_unlock(&k->cache_mu);
}

/* ---- usage (a worker) ---- */

struct api_keys_usage {
	char id[API_KEY_ID_LEN + 1];
	int64_t at;
};

int api_keys_flush_usage(struct api_keys *k, char *error, size_t error_size)
{
	struct api_keys_usage *todo = NULL;
	size_t n = 0, dirty = 0;
	int rc = SQLITE_OK;

	/* a copy of what to write, taken under cache_mu; the writing happens outside it */
	pthread_mutex_lock(&k->cache_mu);
	for (size_t i = 0; i < k->count; i++)
		dirty += k->entries[i].key.last_used_at > k->entries[i].flushed_at;
	if (dirty > 0)
		todo = malloc(dirty * sizeof(*todo));
	for (size_t i = 0; todo != NULL && i < k->count; i++) {
		const struct api_keys_entry *e = &k->entries[i];

		if (e->key.last_used_at > e->flushed_at) {
			strcpy(todo[n].id, e->key.id);
			todo[n++].at = e->key.last_used_at;
		}
	}
	pthread_mutex_unlock(&k->cache_mu);
	if (dirty == 0)
		return 0;
	if (todo == NULL) {
		snprintf(error, error_size, "out of memory");
		return -1;
	}

	pthread_mutex_lock(&k->writer_mu);
	/* IMMEDIATE: the write lock up front, so that the busy timeout waits for the CLI's writes
	 * instead of failing half-way through */
	if (sqlite3_exec(db_sqlite(k->writer), "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		api_keys_db_error(k->writer, "cannot record key usage", error, error_size);
		rc = SQLITE_ERROR;
	}
	for (size_t i = 0; rc == SQLITE_OK && i < n; i++) {
		/* MAX: a second server process, or an older snapshot of ours, never moves it back */
		sqlite3_stmt *st = db_stmt(k->writer, "UPDATE api_keys SET last_used_at = MAX(last_used_at, ?2)"
						      " WHERE id = ?1");

		if (st == NULL) {
			rc = db_errcode(k->writer);
		} else {
			sqlite3_bind_text(st, 1, todo[i].id, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, todo[i].at);
			rc = sqlite3_step(st);
			sqlite3_reset(st);
			rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
		}
		if (rc != SQLITE_OK)
			api_keys_db_error(k->writer, "cannot record key usage", error, error_size);
	}
	if (rc == SQLITE_OK && sqlite3_exec(db_sqlite(k->writer), "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		api_keys_db_error(k->writer, "cannot commit key usage", error, error_size);
		rc = SQLITE_ERROR;
	}
	if (rc != SQLITE_OK && !sqlite3_get_autocommit(db_sqlite(k->writer)))
		sqlite3_exec(db_sqlite(k->writer), "ROLLBACK", NULL, NULL, NULL);
	pthread_mutex_unlock(&k->writer_mu);

	if (rc == SQLITE_OK) {
		/* only what was written counts as flushed: a touch since then stays dirty */
		pthread_mutex_lock(&k->cache_mu);
		for (size_t i = 0; i < n; i++) {
			bool found;
			size_t at = api_keys_cache_find(k, todo[i].id, &found);

			if (found && todo[i].at > k->entries[at].flushed_at)
				k->entries[at].flushed_at = todo[i].at;
		}
		pthread_mutex_unlock(&k->cache_mu);
	}
	free(todo);
	return rc == SQLITE_OK ? 0 : -1;
}
