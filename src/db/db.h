/* db.h — the one way this program opens a SQLite database: WAL, a busy timeout, the durability the
 * caller asks for, schema migrations by PRAGMA user_version, and a small cache of prepared
 * statements. The queue, the accounts and the report stores all open their files through it.
 *
 * Threads: a struct db is used by one thread at a time (its statement cache has no lock). A caller
 * that shares one between threads serializes its calls itself; a thread that needs its own
 * connection opens its own struct db. */
#ifndef MAILWERK_DB_DB_H
#define MAILWERK_DB_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

/* Room for any sentence db_open() and db_migrate() write: a file name and SQLite's message. */
#define DB_ERROR_SIZE 512
#define DB_BUSY_TIMEOUT_MS 5000
/* Statements kept per connection; the least recently asked for is finalized to make room. */
#define DB_STMT_CACHE_MAX 32

enum db_sync {
	/* WAL: every COMMIT fsyncs the WAL, so a commit that returned survives a power failure
	 * (sqlite.org/pragma.html#pragma_synchronous). The zero value: a forgotten field stays durable. */
	DB_SYNC_FULL = 0,
	/* WAL: commits stay atomic and the file consistent, but the last ones may be lost on power failure. */
	DB_SYNC_NORMAL,
};

/* The schema as a list of steps: steps[v] brings version v to version v + 1 (one or more SQL
 * statements, without BEGIN/COMMIT and without setting user_version), so the code knows version
 * count. Steps are only ever added at the end. */
struct db_schema {
	const char *const *steps;
	size_t count;
};

struct db_opts {
	bool read_only;          /* SQLITE_OPEN_READONLY: the file must exist; nothing is switched or migrated */
	int flags;               /* more sqlite3_open_v2 flags: SQLITE_OPEN_NOMUTEX, SQLITE_OPEN_FULLMUTEX */
	unsigned create_mode;    /* the mode a new file is created with; 0 is 0600 */
	enum db_sync sync;
	bool foreign_keys;       /* per connection: needed for REFERENCES … ON DELETE CASCADE to act */
	int busy_timeout_ms;     /* 0 is DB_BUSY_TIMEOUT_MS */
	int64_t journal_size_limit; /* bytes the WAL is cut back to after a checkpoint; 0 leaves SQLite's default */
	const struct db_schema *schema; /* migrated to on open; NULL leaves the schema alone (a second connection) */
};

struct db;

/* Opens path with opts (NULL: read-write, created if missing, FULL). NULL on failure, with a
 * sentence naming the file and saying what SQLite (or the system) said in error[error_size]. */
struct db *db_open(const char *path, const struct db_opts *opts, char *error, size_t error_size);
/* Finalizes the cached statements and closes; NULL is allowed. */
void db_close(struct db *db);
sqlite3 *db_sqlite(struct db *db);

/* Applies the steps of s above the file's user_version, each in its own transaction that also sets
 * user_version, so a step that fails leaves the file at the version before it. Refuses a file whose
 * user_version is above s->count (a newer program wrote it), and one that needs steps when opened
 * read-only. SQLITE_OK, or an SQLite code with a sentence in error. */
int db_migrate(struct db *db, const struct db_schema *s, char *error, size_t error_size);

/* The prepared statement for sql (one statement; keyed by its text), from the cache or prepared
 * now; reset, with its bindings cleared. NULL when it does not prepare (db_errcode, sqlite3_errmsg).
 * Reset it when done with it: a statement left stepping keeps its read snapshot, and in WAL mode
 * no checkpoint gets past a snapshot that is still open, so the WAL grows (sqlite.org/wal.html §5).
 * Never finalize it. It stays valid while fewer than DB_STMT_CACHE_MAX other
 * statements are asked for. */
sqlite3_stmt *db_stmt(struct db *db, const char *sql);
/* Why db_stmt gave NULL: sqlite3_errcode, or SQLITE_MISUSE when SQLite had nothing to say (sql
 * held more than one statement). Never SQLITE_OK. */
int db_errcode(struct db *db);

/* Runs sql (no parameters; through the cache) and gives the first column of its first row; NULL
 * reads as 0. SQLITE_OK, SQLITE_DONE when there is no row, or the error. */
int db_int64(struct db *db, const char *sql, int64_t *v_r);

/* ---- Resend's list pages ---- */

/* One page of a table, newest first by rowid, as Resend's lists go (limit, after, before): the
 * first page (after and before 0), the rows older than rowid after, or the rows newer than rowid
 * before (still newest first). select is "SELECT columns FROM table" (no WHERE, no ORDER); each
 * row is copied by fill into the next of an array of elem_size-octet elements (malloc'd in
 * *list_r, which the caller frees with what fill put in it; fill returns false when out of
 * memory). *more_r: rows lie beyond the page. SQLITE_OK, or the error (with *n_r elements filled). */
typedef bool db_page_fill_fn(sqlite3_stmt *st, void *elem);
int db_page(sqlite3 *db, const char *select, int64_t after, int64_t before, unsigned limit, size_t elem_size,
	    db_page_fill_fn *fill, void **list_r, size_t *n_r, bool *more_r);

#endif
