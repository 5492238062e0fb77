/* db.c — opens SQLite files the way every store here needs them (db.h): created with a private
 * mode, WAL, a busy timeout, the durability the caller chose; migrates them by PRAGMA user_version;
 * keeps each connection's prepared statements. */
#include "db/db.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct db_cached {
	sqlite3_stmt *st;
	unsigned long used; /* db->clock when last asked for: the smallest goes first */
};

struct db {
	sqlite3 *conn;
	bool read_only;
	char name[256]; /* the file's base name, for sentences */
	struct db_cached cache[DB_STMT_CACHE_MAX];
	size_t cached;
	unsigned long clock;
};

/* ---- sentences ---- */

/* What an operator can do about the codes that have a remedy; "" for the others. */
static const char *db_hint(int rc, bool read_only)
{
	switch (rc & 0xff) {
	case SQLITE_CANTOPEN:
		return read_only ? " (does it exist, and may we read it?)"
				 : " (does the directory exist, and may we write to it?)";
	case SQLITE_PERM:
	case SQLITE_READONLY: return " (is it read-only for this user?)";
	case SQLITE_BUSY:
	case SQLITE_LOCKED: return " (another process kept it locked)";
	}
	return "";
}

/* error = the formatted what, ": ", SQLite's message for rc (msg when given) and the hint. */
static void db_fail(struct db *db, char *error, size_t size, int rc, const char *msg, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
static void db_fail(struct db *db, char *error, size_t size, int rc, const char *msg, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (size == 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(error, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size)
		return;
	if (msg == NULL)
		msg = db->conn != NULL ? sqlite3_errmsg(db->conn) : sqlite3_errstr(rc);
	snprintf(error + n, size - (size_t)n, ": %s%s", msg, db_hint(rc, db->read_only));
}

/* ---- opening ---- */

/* Creates the file with the caller's mode before SQLite does (SQLite would use 0644; the -wal and
 * -shm files then take the database file's mode). O_EXCL matters: close() on ANY descriptor of a
 * file drops every POSIX lock this process holds on it, SQLite's included, so opening and closing
 * an existing database that another connection of ours has open would let a second process
 * believe it is alone, checkpoint and delete our live WAL. */
static int db_precreate(const char *path, unsigned mode)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode != 0 ? (mode_t)mode : 0600);

	if (fd >= 0)
		close(fd);
	return fd >= 0 || errno == EEXIST ? 0 : -1;
}

/* Without WAL a reader blocks the writer and the other way round; some filesystems (network
 * mounts) cannot do WAL, and that is better found at open than under load. */
static int db_wal(struct db *db, char *error, size_t size)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db->conn, "PRAGMA journal_mode=WAL", -1, &st, NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *mode = (const char *)sqlite3_column_text(st, 0);

		rc = mode != NULL && sqlite3_stricmp(mode, "wal") == 0 ? SQLITE_OK : SQLITE_CANTOPEN;
		if (rc != SQLITE_OK)
			snprintf(error, size, "%s cannot be switched to WAL mode (is it on a network file system?)",
				 db->name);
	} else {
		db_fail(db, error, size, rc, NULL, "cannot switch %s to WAL mode", db->name);
	}
	sqlite3_finalize(st);
	return rc;
}

static int db_pragmas(struct db *db, const struct db_opts *o, char *error, size_t size)
{
	char sql[192];
	size_t n = 0;
	int rc;

	/* foreign_keys is per connection, so every connection says it (sqlite.org/foreignkeys.html §2) */
	n += (size_t)snprintf(sql + n, sizeof(sql) - n, "PRAGMA foreign_keys=%s;", o->foreign_keys ? "ON" : "OFF");
	if (!o->read_only) {
		n += (size_t)snprintf(sql + n, sizeof(sql) - n, "PRAGMA synchronous=%s;",
				      o->sync == DB_SYNC_NORMAL ? "NORMAL" : "FULL");
		if (o->journal_size_limit != 0)
			snprintf(sql + n, sizeof(sql) - n, "PRAGMA journal_size_limit=%lld;",
				 (long long)o->journal_size_limit);
	}
	rc = sqlite3_exec(db->conn, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		db_fail(db, error, size, rc, NULL, "cannot set up %s", db->name);
	return rc;
}

struct db *db_open(const char *path, const struct db_opts *opts, char *error, size_t error_size)
{
	static const struct db_opts defaults = { 0 };
	const struct db_opts *o = opts != NULL ? opts : &defaults;
	const char *slash = strrchr(path, '/');
	struct db *db = calloc(1, sizeof(*db));
	int flags, rc;

	if (db == NULL) {
		snprintf(error, error_size, "out of memory");
		return NULL;
	}
	snprintf(db->name, sizeof(db->name), "%s", slash != NULL ? slash + 1 : path);
	db->read_only = o->read_only;
	if (!o->read_only && db_precreate(path, o->create_mode) != 0) {
		snprintf(error, error_size, "cannot create %s: %s", db->name, strerror(errno));
		goto fail;
	}
	flags = (o->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | o->flags;
	rc = sqlite3_open_v2(path, &db->conn, flags, NULL);
	if (rc != SQLITE_OK) {
		db_fail(db, error, error_size, rc, NULL, "cannot open %s", db->name);
		goto fail;
	}
	sqlite3_extended_result_codes(db->conn, 1);
	/* before anything that locks: other connections and processes (the CLI) share the file */
	sqlite3_busy_timeout(db->conn, o->busy_timeout_ms > 0 ? o->busy_timeout_ms : DB_BUSY_TIMEOUT_MS);
	/* a read-only connection cannot change the journal mode; the writers have set it */
	if (!o->read_only && db_wal(db, error, error_size) != SQLITE_OK)
		goto fail;
	if (db_pragmas(db, o, error, error_size) != SQLITE_OK)
		goto fail;
	if (o->schema != NULL && db_migrate(db, o->schema, error, error_size) != SQLITE_OK)
		goto fail;
	return db;
fail:
	db_close(db);
	return NULL;
}

void db_close(struct db *db)
{
	if (db == NULL)
		return;
	for (size_t i = 0; i < db->cached; i++)
		sqlite3_finalize(db->cache[i].st);
	/* every cached statement is finalized above; the callers finalize their own */
	sqlite3_close(db->conn);
	free(db);
}

sqlite3 *db_sqlite(struct db *db)
{
	return db->conn;
}

/* ---- migrations ---- */

/* One step in its own transaction. IMMEDIATE takes the write lock before the version is read
 * again, so two processes opening an old file at once cannot both run the step; *v_r is the
 * version after it. */
static int db_migrate_step(struct db *db, const struct db_schema *s, int *v_r, char *error, size_t size)
{
	int64_t v = 0;
	char sql[64];
	int rc = sqlite3_exec(db->conn, "BEGIN IMMEDIATE", NULL, NULL, NULL);

	if (rc != SQLITE_OK) {
		db_fail(db, error, size, rc, NULL, "cannot upgrade the schema of %s", db->name);
		return rc;
	}
	rc = db_int64(db, "PRAGMA user_version", &v);
	if (rc == SQLITE_OK && v >= 0 && (size_t)v < s->count) {
		rc = sqlite3_exec(db->conn, s->steps[v], NULL, NULL, NULL);
		/* PRAGMA takes no parameters; the number is ours */
		snprintf(sql, sizeof(sql), "PRAGMA user_version=%lld", (long long)v + 1);
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(db->conn, sql, NULL, NULL, NULL);
		v++;
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db->conn, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		/* the sentence first: a ROLLBACK that succeeds replaces SQLite's message */
		db_fail(db, error, size, rc, NULL, "cannot upgrade %s to schema version %lld", db->name, (long long)v);
		if (!sqlite3_get_autocommit(db->conn))
			sqlite3_exec(db->conn, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	*v_r = (int)v;
	return SQLITE_OK;
}

int db_migrate(struct db *db, const struct db_schema *s, char *error, size_t error_size)
{
	int64_t v = 0;
	int rc = db_int64(db, "PRAGMA user_version", &v);

	if (rc != SQLITE_OK) {
		db_fail(db, error, error_size, rc, NULL, "cannot read the schema version of %s", db->name);
		return rc;
	}
	/* the usual case, an up-to-date file, takes no write lock */
	while (rc == SQLITE_OK && v >= 0 && (size_t)v < s->count) {
		int after = 0;

		if (db->read_only) {
			snprintf(error, error_size,
				 "%s has schema version %lld, older than this mailwerk's %zu; open it read-write once to upgrade it",
				 db->name, (long long)v, s->count);
			return SQLITE_READONLY;
		}
		rc = db_migrate_step(db, s, &after, error, error_size);
		v = after;
	}
	if (rc == SQLITE_OK && (v < 0 || (size_t)v > s->count)) {
		snprintf(error, error_size, "%s was written by a newer mailwerk (schema version %lld; this one knows up to %zu)",
			 db->name, (long long)v, s->count);
		return SQLITE_ERROR;
	}
	return rc;
}

/* ---- statements ---- */

/* The cached statement that is least recently asked for; the cache is full. */
static struct db_cached *db_cache_victim(struct db *db)
{
	struct db_cached *victim = &db->cache[0];

	for (size_t i = 1; i < db->cached; i++)
		if (db->cache[i].used < victim->used)
			victim = &db->cache[i];
	return victim;
}

sqlite3_stmt *db_stmt(struct db *db, const char *sql)
{
	struct db_cached *slot;
	sqlite3_stmt *st = NULL;
	const char *tail = NULL;

	db->clock++;
	/* Keyed by the text, not the pointer: a caller may build its SQL in a buffer it reuses. A
	 * linear search is enough for DB_STMT_CACHE_MAX entries next to what a step costs. */
	for (size_t i = 0; i < db->cached; i++) {
		struct db_cached *c = &db->cache[i];

		if (strcmp(sqlite3_sql(c->st), sql) == 0) {
			c->used = db->clock;
			sqlite3_reset(c->st);
			sqlite3_clear_bindings(c->st);
			return c->st;
		}
	}
	/* PERSISTENT: a hint that the statement is kept and run many times (sqlite.org/c3ref/prepare.html) */
	if (sqlite3_prepare_v3(db->conn, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, &tail) != SQLITE_OK || st == NULL)
		return NULL;
	/* A second statement (or anything after the first) would never run, and the text SQLite keeps
	 * would never match sql again: a mistake of the caller's. */
	if (tail != NULL && *tail != '\0') {
		sqlite3_finalize(st);
		return NULL;
	}
	if (db->cached < DB_STMT_CACHE_MAX) {
		slot = &db->cache[db->cached++];
	} else {
		slot = db_cache_victim(db);
		sqlite3_finalize(slot->st);
	}
	slot->st = st;
	slot->used = db->clock;
	return st;
}

int db_errcode(struct db *db)
{
	int rc = sqlite3_errcode(db->conn);

	return rc != SQLITE_OK ? rc : SQLITE_MISUSE;
}

int db_int64(struct db *db, const char *sql, int64_t *v_r)
{
	sqlite3_stmt *st = db_stmt(db, sql);
	int rc;

	if (st == NULL)
		return db_errcode(db);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*v_r = sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	}
	/* done with it: a statement left on its row would keep its read snapshot (db.h) */
	sqlite3_reset(st);
	return rc;
}

/* ---- Resend's list pages ---- */

int db_page(sqlite3 *db, const char *select, int64_t after, int64_t before, unsigned limit, size_t elem_size,
	    db_page_fill_fn *fill, void **list_r, size_t *n_r, bool *more_r)
{
	*list_r = NULL, *n_r = 0, *more_r = false;
	/* "after" goes on to older rows; "before" back to newer ones, read oldest first (so the limit
	 * takes the nearest) and turned round below */
	const char *tail = after != 0	 ? " WHERE rowid < ?1 ORDER BY rowid DESC LIMIT ?2"
			   : before != 0 ? " WHERE rowid > ?1 ORDER BY rowid ASC LIMIT ?2"
					 : " WHERE ?1 = 0 ORDER BY rowid DESC LIMIT ?2";
	size_t n = strlen(select) + strlen(tail) + 1;
	char *sql = malloc(n);
	unsigned char *list = calloc(limit > 0 ? limit : 1, elem_size);
	if (sql == NULL || list == NULL) {
		free(sql);
		free(list);
		return SQLITE_NOMEM;
	}
	snprintf(sql, n, "%s%s", select, tail);
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	free(sql);
	size_t got = 0;
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, after != 0 ? after : before);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)limit + 1);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (got == limit) {
				*more_r = true; /* the row past the page only tells that there is more */
				rc = SQLITE_DONE;
				break;
			}
			if (!fill(st, list + got++ * elem_size)) {
				rc = SQLITE_NOMEM;
				break;
			}
		}
		if (rc == SQLITE_DONE)
			rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	*list_r = list, *n_r = got;
	if (rc != SQLITE_OK)
		return rc;
	if (before != 0) {
		unsigned char tmp[512];
		for (size_t i = 0; i < got / 2; i++) {
			unsigned char *a = list + i * elem_size, *b = list + (got - 1 - i) * elem_size;
			for (size_t off = 0; off < elem_size; off += sizeof(tmp)) {
				size_t k = elem_size - off < sizeof(tmp) ? elem_size - off : sizeof(tmp);
				memcpy(tmp, a + off, k);
				memcpy(a + off, b + off, k);
				memcpy(b + off, tmp, k);
			}
		}
	}
	return SQLITE_OK;
}
