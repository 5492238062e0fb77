/* users.c — accounts and local domains in DATA_DIR/mailwerk.db (SQLite, WAL), and the crypt(3)
 * password hashing they use. Owns the schema of the domains and users tables.
 *
 * Error sentences that name a domain or an address are formatted into a buffer inside struct users, so
 * an *error_r stays valid until the next call on the same handle; other errors are static strings. */
#include "mailbox/users.h"
#include "mailbox/users_db.h"

#include <crypt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include "db/db.h"
#include "util/addr.h"
#include "util/date.h"
#include "util/uuid.h"

/* Every schema change is a new step at the end of users_schema_steps. */
static const char users_schema_v1[] =
	"CREATE TABLE domains(name TEXT PRIMARY KEY);"
	"CREATE TABLE users("
	" address TEXT PRIMARY KEY,"
	" domain TEXT NOT NULL REFERENCES domains(name),"
	" hash TEXT NOT NULL,"
	" created INTEGER NOT NULL);"
	/* the case-insensitive fallback lookup and the duplicate check must not scan the table */
	"CREATE INDEX users_address_nocase ON users(address COLLATE NOCASE);"
	"CREATE INDEX users_domain ON users(domain);";

/* Version 2: aliases (an address "@domain" is the domain's catch-all) and per-user quotas. */
static const char users_schema_v2[] =
	"CREATE TABLE aliases("
	" address TEXT PRIMARY KEY,"
	" domain TEXT NOT NULL REFERENCES domains(name),"
	" targets TEXT NOT NULL);"
	"CREATE INDEX aliases_address_nocase ON aliases(address COLLATE NOCASE);"
	"ALTER TABLE users ADD COLUMN quota INTEGER NOT NULL DEFAULT 0;";

/* v3: what the API shows of a domain (domains.c): its id (a UUID v4, made here for the domains that
 * exist), when it was added, a custom return path host, its capabilities, whether it may send only
 * once its records verify (verify_first) and whether they did (ready), and the outcome of the last
 * DNS check, record by record in domain_checks. */
static const char users_schema_v3[] =
	"ALTER TABLE domains ADD COLUMN id TEXT;"
	"ALTER TABLE domains ADD COLUMN created INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE domains ADD COLUMN return_path TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE domains ADD COLUMN sending INTEGER NOT NULL DEFAULT 1;"
	"ALTER TABLE domains ADD COLUMN receiving INTEGER NOT NULL DEFAULT 1;"
	"ALTER TABLE domains ADD COLUMN status TEXT NOT NULL DEFAULT 'not_started';"
	"ALTER TABLE domains ADD COLUMN checked INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE domains ADD COLUMN verify_first INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE domains ADD COLUMN ready INTEGER NOT NULL DEFAULT 0;"
	"UPDATE domains SET created = CAST(strftime('%s', 'now') AS INTEGER) * 1000, id ="
	" lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' ||"
	" substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + abs(random()) % 4, 1) ||"
	" substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)));"
	"CREATE UNIQUE INDEX domains_id ON domains(id);"
	"CREATE TABLE domain_checks("
	" domain TEXT NOT NULL REFERENCES domains(name) ON DELETE CASCADE,"
	" seq INTEGER NOT NULL,"
	" kind TEXT NOT NULL,"
	" name TEXT NOT NULL,"
	" status TEXT NOT NULL,"
	" problem TEXT,"
	" PRIMARY KEY(domain, seq));";

/* v4: inbound routes (routes.c): an address "local@domain", or "@domain" for every address of the
 * domain, whose mail goes to the applications (the inbound store and email.received) instead of,
 * or with mailbox = 1 as well as, the mailbox or alias it resolves to; and the accounts that may
 * sign in to the dashboard (admin). */
static const char users_schema_v4[] =
	"CREATE TABLE routes("
	" id TEXT PRIMARY KEY,"
	" address TEXT NOT NULL UNIQUE,"
	" domain TEXT NOT NULL REFERENCES domains(name) ON DELETE CASCADE,"
	" mailbox INTEGER NOT NULL DEFAULT 0,"
	" created INTEGER NOT NULL);"
	"CREATE INDEX routes_address_nocase ON routes(address COLLATE NOCASE);"
	/* the recipient resolution asks first whether a domain has routes at all */
	"CREATE INDEX routes_domain ON routes(domain);"
	"ALTER TABLE users ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;";

/* v5: clients banned after too many failed logins (bans.c, server/login.c). */
static const char users_schema_v5[] =
	"CREATE TABLE auth_bans("
	" client TEXT PRIMARY KEY,"
	" since INTEGER NOT NULL,"
	" until INTEGER NOT NULL,"
	" failures INTEGER NOT NULL);";

/* steps[v] brings version v to v + 1 (db.h) */
static const char *const users_schema_steps[] = { users_schema_v1, users_schema_v2, users_schema_v3,
						  users_schema_v4, users_schema_v5 };
static const struct db_schema users_schema = {
	users_schema_steps, sizeof(users_schema_steps) / sizeof(users_schema_steps[0]),
};

enum result users_fail(struct users *u, enum result r, const char **error_r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(u->error, sizeof(u->error), fmt, ap);
	va_end(ap);
	if (error_r)
		*error_r = u->error;
	return r;
}

/* A database error is a temporary failure: the caller may retry, an SMTP peer gets a 4xx. */
enum result users_db_fail(struct users *u, const char **error_r, const char *what)
{
	return users_fail(u, RESULT_TEMPFAIL, error_r, "database error while %s: %s", what, sqlite3_errmsg(u->db));
}

/* RFC 5321 §2.4: domains are case-insensitive. Only ASCII is folded: U-labels would need the IDNA
 * mapping, which SQLite cannot do either, so a UTF-8 domain is matched as stored. */
bool users_domain_fold(const char *domain, char out[ADDR_DOMAIN_MAX + 1])
{
	size_t len = strlen(domain);
	if (len == 0 || len > ADDR_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i <= len; i++) {
		char c = domain[i];
		out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	return true;
}

/* "local@domain" with the domain folded; the local part is kept as given (RFC 5321 §2.4). The last '@'
 * separates them because a quoted local part may itself contain '@'. */
bool users_address_fold(const char *address, char out[ADDR_TEXT_MAX + 1])
{
	const char *at = strrchr(address, '@');
	if (!at || at == address)
		return false;
	size_t local_len = (size_t)(at - address);
	size_t domain_len = strlen(at + 1);
	if (domain_len == 0 || local_len + 1 + domain_len > ADDR_TEXT_MAX)
		return false;
	memcpy(out, address, local_len + 1);
	for (size_t i = 0; i <= domain_len; i++) {
		char c = at[1 + i];
		out[local_len + 1 + i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	return true;
}

static int users_exec(struct users *u, const char *sql)
{
	return sqlite3_exec(u->db, sql, NULL, NULL, NULL);
}

/* BEGIN IMMEDIATE takes the write lock up front, so a check-then-write cannot race another process
 * (the CLI and the server share the file); busy_timeout makes it wait instead of failing at once. */
enum result users_tx_begin(struct users *u, const char **error_r)
{
	if (users_exec(u, "BEGIN IMMEDIATE") != SQLITE_OK)
		return users_db_fail(u, error_r, "starting a transaction");
	return RESULT_OK;
}

enum result users_tx_commit(struct users *u, const char **error_r)
{
	if (users_exec(u, "COMMIT") != SQLITE_OK) {
		enum result r = users_db_fail(u, error_r, "committing");
		users_exec(u, "ROLLBACK");
		return r;
	}
	return RESULT_OK;
}

/* Ends a transaction that failed; keeps the error already reported. */
enum result users_tx_abort(struct users *u, enum result r)
{
	users_exec(u, "ROLLBACK");
	return r;
}

sqlite3_stmt *users_prepare(struct users *u, const char *sql)
{
	sqlite3_stmt *st = NULL;
	pthread_mutex_lock(&u->stmt_mu);
	/* by text, not pointer: some callers build their SQL in a buffer */
	for (size_t i = 0; i < u->slot_count; i++) {
		struct users_stmt_slot *slot = &u->slots[i];
		if (!slot->lent && strcmp(sqlite3_sql(slot->st), sql) == 0) {
			slot->lent = true;
			pthread_mutex_unlock(&u->stmt_mu);
			return slot->st;
		}
	}
	bool keep = u->slot_count < USERS_STMT_CACHE;
	/* a second borrower of the same text (a nested walk) or a full cache: one of its own */
	if (sqlite3_prepare_v3(u->db, sql, -1, keep ? SQLITE_PREPARE_PERSISTENT : 0, &st, NULL) != SQLITE_OK)
		st = NULL;
	if (st != NULL && keep)
		u->slots[u->slot_count++] = (struct users_stmt_slot){st, true};
	pthread_mutex_unlock(&u->stmt_mu);
	return st;
}

void users_done(struct users *u, sqlite3_stmt *st)
{
	if (st == NULL)
		return;
	/* reset before it is lent again: a statement left on a row would keep its read snapshot */
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	pthread_mutex_lock(&u->stmt_mu);
	for (size_t i = 0; i < u->slot_count; i++)
		if (u->slots[i].st == st) {
			u->slots[i].lent = false;
			pthread_mutex_unlock(&u->stmt_mu);
			return;
		}
	pthread_mutex_unlock(&u->stmt_mu);
	sqlite3_finalize(st);
}

sqlite3_int64 users_rowid_of(struct users *u, const char *sql, const char *id, bool *failed_r)
{
	sqlite3_stmt *st = users_prepare(u, sql);
	*failed_r = st == NULL;
	if (st == NULL)
		return 0;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_int64 r = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	*failed_r = rc != SQLITE_ROW && rc != SQLITE_DONE;
	users_done(u, st);
	return r;
}

struct users *users_open(const char *data_dir, const char **error_r)
{
	/* u is gone when this fails: the sentence stays here until the next failed open on this thread */
	static _Thread_local char open_error[DB_ERROR_SIZE];
	/* The file holds password hashes: created without world access (its -wal and -shm files copy
	 * its mode). FULLMUTEX: the handle may be used from a worker thread as well as the loop thread;
	 * the statement cache (db.h, one thread at a time) serves only the opening, and users_prepare
	 * lends each kept statement to one caller at a time, so SQLite's mutex is all the handle needs.
	 * synchronous=FULL makes every commit durable, which an account change must be once the
	 * command says "done". foreign_keys: users and aliases must name a local domain. */
	static const struct db_opts opts = {
		.flags = SQLITE_OPEN_FULLMUTEX,
		.create_mode = 0640,
		.sync = DB_SYNC_FULL,
		.foreign_keys = true,
		.schema = &users_schema,
	};
	char path[4096];
	int n = snprintf(path, sizeof(path), "%s/mailwerk.db", data_dir);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		*error_r = "the data directory path is too long";
		return NULL;
	}
	struct users *u = calloc(1, sizeof(*u));
	if (!u) {
		*error_r = "out of memory";
		return NULL;
	}
	u->conn = db_open(path, &opts, open_error, sizeof(open_error));
	if (!u->conn) {
		*error_r = open_error;
		free(u);
		return NULL;
	}
	u->db = db_sqlite(u->conn);
	pthread_mutex_init(&u->stmt_mu, NULL);
	return u;
}

void users_close(struct users *u)
{
	if (!u)
		return;
	/* every statement has been given back (users_done) and reset: none is busy */
	for (size_t i = 0; i < u->slot_count; i++)
		sqlite3_finalize(u->slots[i].st);
	db_close(u->conn);
	pthread_mutex_destroy(&u->stmt_mu);
	free(u);
}

enum result users_domain_add(struct users *u, const char *domain, const char **error_r)
{
	const char *perr = NULL;
	if (addr_parse_domain(domain, strlen(domain), ADDR_ALLOW_UTF8, &perr) != ADDR_OK)
		return users_fail(u, RESULT_PERMFAIL, error_r, "invalid domain %s: %s", domain, perr ? perr : "syntax error");
	if (domain[0] == '[')
		return users_fail(u, RESULT_PERMFAIL, error_r, "%s is an address literal, not a domain", domain);
	char name[ADDR_DOMAIN_MAX + 1];
	if (!users_domain_fold(domain, name))
		return users_fail(u, RESULT_PERMFAIL, error_r, "invalid domain %s", domain);

	char id[UUID_TEXT_LEN + 1];
	if (!uuid_v4_new(id))
		return users_fail(u, RESULT_TEMPFAIL, error_r, "no randomness for the domain's id");
	sqlite3_stmt *st = users_prepare(u, "INSERT OR IGNORE INTO domains(name, id, created) VALUES (?1, ?2, ?3)");
	if (!st)
		return users_db_fail(u, error_r, "adding a domain");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, date_now_ms());
	int rc = sqlite3_step(st);
	users_done(u, st);
	if (rc != SQLITE_DONE)
		return users_db_fail(u, error_r, "adding a domain");
	if (sqlite3_changes(u->db) == 0)
		return users_fail(u, RESULT_PERMFAIL, error_r, "domain %s already exists", name);
	return RESULT_OK;
}

enum result users_domain_del(struct users *u, const char *domain, const char **error_r)
{
	char name[ADDR_DOMAIN_MAX + 1];
	if (!users_domain_fold(domain, name))
		return users_fail(u, RESULT_PERMFAIL, error_r, "no such domain: %s", domain);
	enum result r = users_tx_begin(u, error_r);
	if (r != RESULT_OK)
		return r;

	sqlite3_stmt *st = users_prepare(u, "SELECT (SELECT count(*) FROM users WHERE domain = ?1) + "
					    "(SELECT count(*) FROM aliases WHERE domain = ?1)");
	if (!st)
		return users_tx_abort(u, users_db_fail(u, error_r, "counting users"));
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_int64 count = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	users_done(u, st);
	if (rc != SQLITE_ROW)
		return users_tx_abort(u, users_db_fail(u, error_r, "counting users"));
	if (count > 0)
		return users_tx_abort(u, users_fail(u, RESULT_PERMFAIL, error_r,
						    "domain %s still has %lld user%s or alias%s; delete %s first (mailwerk user del / alias del)",
						    name, (long long)count, count == 1 ? "" : "s", count == 1 ? "" : "es",
						    count == 1 ? "it" : "them"));

	st = users_prepare(u, "DELETE FROM domains WHERE name = ?1");
	if (!st)
		return users_tx_abort(u, users_db_fail(u, error_r, "deleting a domain"));
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	users_done(u, st);
	if (rc != SQLITE_DONE)
		return users_tx_abort(u, users_db_fail(u, error_r, "deleting a domain"));
	if (sqlite3_changes(u->db) == 0)
		return users_tx_abort(u, users_fail(u, RESULT_PERMFAIL, error_r, "no such domain: %s", name));
	return users_tx_commit(u, error_r);
}

static enum result users_list(struct users *u, const char *sql, users_list_fn *fn, void *arg, const char **error_r)
{
	sqlite3_stmt *st = users_prepare(u, sql);
	if (!st)
		return users_db_fail(u, error_r, "listing");
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *name = sqlite3_column_text(st, 0);
		if (name)
			fn((const char *)name, arg);
	}
	users_done(u, st);
	if (rc != SQLITE_DONE)
		return users_db_fail(u, error_r, "listing");
	return RESULT_OK;
}

enum result users_domain_list(struct users *u, users_list_fn *fn, void *arg, const char **error_r)
{
	return users_list(u, "SELECT name FROM domains ORDER BY name", fn, arg, error_r);
}

enum result users_domain_is_local_folded(struct users *u, const char *name)
{
	sqlite3_stmt *st = users_prepare(u, "SELECT 1 FROM domains WHERE name = ?1");
	if (!st)
		return RESULT_TEMPFAIL;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	users_done(u, st);
	if (rc == SQLITE_ROW)
		return RESULT_OK;
	return rc == SQLITE_DONE ? RESULT_PERMFAIL : RESULT_TEMPFAIL;
}

enum result users_domain_is_local(struct users *u, const char *domain)
{
	char name[ADDR_DOMAIN_MAX + 1];
	if (!users_domain_fold(domain, name))
		return RESULT_PERMFAIL;
	return users_domain_is_local_folded(u, name);
}

/* Finds the stored row for address: the exact address first (domain folded), then the local part
 * case-insensitively. Two rows that differ only in case cannot be told apart that way, so such a
 * lookup finds nobody rather than guessing (users_user_add refuses to create them, but a database
 * edited by hand may hold them). Copies the stored address and, when hash_r is set, the hash. */
enum result users_user_find(struct users *u, const char *address, char stored_r[ADDR_TEXT_MAX + 1],
				   char *hash_r, size_t hash_size, const char **error_r)
{
	char folded[ADDR_TEXT_MAX + 1];
	if (!users_address_fold(address, folded))
		return users_fail(u, RESULT_PERMFAIL, error_r, "no such user: %s", address);

	static const char *const queries[] = {
		"SELECT address, hash FROM users WHERE address = ?1",
		"SELECT address, hash FROM users WHERE address = ?1 COLLATE NOCASE LIMIT 2",
	};
	for (size_t q = 0; q < sizeof(queries) / sizeof(queries[0]); q++) {
		sqlite3_stmt *st = users_prepare(u, queries[q]);
		if (!st)
			return users_db_fail(u, error_r, "looking up a user");
		sqlite3_bind_text(st, 1, folded, -1, SQLITE_STATIC);
		int rows = 0, rc;
		enum result r = RESULT_OK;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (++rows > 1)
				break;
			const char *a = (const char *)sqlite3_column_text(st, 0);
			const char *h = (const char *)sqlite3_column_text(st, 1);
			if (!a || !h || strlen(a) > ADDR_TEXT_MAX) {
				r = users_fail(u, RESULT_TEMPFAIL, error_r, "database error: malformed row for %s", folded);
				break;
			}
			strcpy(stored_r, a);
			if (hash_r) {
				size_t hlen = strlen(h);
				if (hlen >= hash_size) {
					r = users_fail(u, RESULT_TEMPFAIL, error_r, "the stored hash of %s is too long", a);
					break;
				}
				memcpy(hash_r, h, hlen + 1);
			}
		}
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			r = users_db_fail(u, error_r, "looking up a user");
		users_done(u, st);
		if (r != RESULT_OK)
			return r;
		if (rows == 1)
			return RESULT_OK;
		if (rows > 1)
			break;
	}
	if (hash_r && hash_size > 0)
		hash_r[0] = '\0';
	return users_fail(u, RESULT_PERMFAIL, error_r, "no such user: %s", address);
}

/* Only hashes we can verify may be stored: anything else (a plain password passed by mistake, an MD5
 * crypt hash) would lock the account out or weaken it without a word. */
static enum result users_hash_check_storable(struct users *u, const char *hash, const char **error_r)
{
	if (!hash || !users_hash_importable(hash))
		return users_fail(u, RESULT_PERMFAIL, error_r,
				  "the password hash is not a complete $y$ (yescrypt), $2b$ (bcrypt) or $6$ (SHA-512) crypt hash");
	return RESULT_OK;
}

enum result users_user_add(struct users *u, const char *address, const char *hash, const char **error_r)
{
	struct addr a;
	const char *perr = NULL;
	if (addr_parse_mailbox(address, strlen(address), ADDR_ALLOW_UTF8, &a, &perr) != ADDR_OK)
		return users_fail(u, RESULT_PERMFAIL, error_r, "invalid address %s: %s", address, perr ? perr : "syntax error");
	if (a.is_literal)
		return users_fail(u, RESULT_PERMFAIL, error_r, "%s: an address literal cannot be a local domain", address);
	/* the local part names the user's Maildir directory (maildir_path), where '/' and a leading '.'
	 * would have to be rewritten, and two users could then share one mailbox */
	if (memchr(a.text, '/', a.local_len) != NULL || a.text[0] == '.' || (a.text[0] == '"' && a.text[1] == '.'))
		return users_fail(u, RESULT_PERMFAIL, error_r,
				  "%s: a user name may not contain '/' or start with '.' (it names a directory)", address);
	enum result r = users_hash_check_storable(u, hash, error_r);
	if (r != RESULT_OK)
		return r;

	char stored[ADDR_TEXT_MAX + 1], domain[ADDR_DOMAIN_MAX + 1];
	if (!users_address_fold(a.text, stored) || !users_domain_fold(addr_domain(&a), domain))
		return users_fail(u, RESULT_PERMFAIL, error_r, "invalid address %s", address);

	r = users_tx_begin(u, error_r);
	if (r != RESULT_OK)
		return r;
	r = users_domain_is_local_folded(u, domain);
	if (r == RESULT_TEMPFAIL)
		return users_tx_abort(u, users_db_fail(u, error_r, "looking up a domain"));
	if (r == RESULT_PERMFAIL)
		return users_tx_abort(u, users_fail(u, RESULT_PERMFAIL, error_r,
						    "domain %s is not local; add it with: mailwerk domain add %s",
						    domain, domain));

	/* Local parts are case-sensitive on the wire, but logins and RCPT TO fall back to a
	 * case-insensitive match; two accounts differing only in case would make that ambiguous. */
	char existing[ADDR_TEXT_MAX + 1];
	const char *ferr = NULL;
	r = users_user_find(u, stored, existing, NULL, 0, &ferr);
	if (r == RESULT_OK)
		return users_tx_abort(u, users_fail(u, RESULT_PERMFAIL, error_r, "user %s already exists", existing));
	if (r == RESULT_TEMPFAIL) {
		if (error_r)
			*error_r = ferr;
		return users_tx_abort(u, r);
	}

	sqlite3_stmt *st = users_prepare(u, "INSERT INTO users(address, domain, hash, created) VALUES (?1, ?2, ?3, ?4)");
	if (!st)
		return users_tx_abort(u, users_db_fail(u, error_r, "adding a user"));
	sqlite3_bind_text(st, 1, stored, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, hash, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)time(NULL));
	int rc = sqlite3_step(st);
	users_done(u, st);
	if (rc != SQLITE_DONE)
		return users_tx_abort(u, users_db_fail(u, error_r, "adding a user"));
	return users_tx_commit(u, error_r);
}

/* Runs sql with ?1 = the stored address of address (and ?2 = extra when given); RESULT_PERMFAIL when
 * nobody matches, also when the row vanished between the lookup and the write. */
static enum result users_user_write(struct users *u, const char *address, const char *sql, const char *extra,
				    const char *what, const char **error_r)
{
	char stored[ADDR_TEXT_MAX + 1];
	enum result r = users_user_find(u, address, stored, NULL, 0, error_r);
	if (r != RESULT_OK)
		return r;
	sqlite3_stmt *st = users_prepare(u, sql);
	if (!st)
		return users_db_fail(u, error_r, what);
	sqlite3_bind_text(st, 1, stored, -1, SQLITE_STATIC);
	if (extra)
		sqlite3_bind_text(st, 2, extra, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	users_done(u, st);
	if (rc != SQLITE_DONE)
		return users_db_fail(u, error_r, what);
	if (sqlite3_changes(u->db) == 0)
		return users_fail(u, RESULT_PERMFAIL, error_r, "no such user: %s", address);
	return RESULT_OK;
}

enum result users_user_set_hash(struct users *u, const char *address, const char *hash, const char **error_r)
{
	enum result r = users_hash_check_storable(u, hash, error_r);
	if (r != RESULT_OK)
		return r;
	return users_user_write(u, address, "UPDATE users SET hash = ?2 WHERE address = ?1", hash,
				"changing a password", error_r);
}

enum result users_user_del(struct users *u, const char *address, const char **error_r)
{
	return users_user_write(u, address, "DELETE FROM users WHERE address = ?1", NULL, "deleting a user", error_r);
}

enum result users_user_list(struct users *u, users_list_fn *fn, void *arg, const char **error_r)
{
	return users_list(u, "SELECT address FROM users ORDER BY domain, address", fn, arg, error_r);
}

enum result users_user_hash(struct users *u, const char *address, char *hash_r, size_t size,
			   char canonical_r[ADDR_TEXT_MAX + 1], const char **error_r)
{
	char stored[ADDR_TEXT_MAX + 1];
	if (size == 0)
		return users_fail(u, RESULT_TEMPFAIL, error_r, "no room for the hash");
	enum result r = users_user_find(u, address, stored, hash_r, size, error_r);
	if (r == RESULT_OK && canonical_r != NULL)
		memcpy(canonical_r, stored, sizeof(stored));
	return r;
}

enum result users_user_set_admin(struct users *u, const char *address, bool admin, const char **error_r)
{
	return users_user_write(u, address, admin ? "UPDATE users SET admin = 1 WHERE address = ?1"
						  : "UPDATE users SET admin = 0 WHERE address = ?1",
				NULL, "changing the admin flag", error_r);
}

enum result users_user_admin(struct users *u, const char *address, bool *admin_r, const char **error_r)
{
	char stored[ADDR_TEXT_MAX + 1];
	*admin_r = false;
	enum result r = users_user_find(u, address, stored, NULL, 0, error_r);
	if (r != RESULT_OK)
		return r;
	sqlite3_stmt *st = users_prepare(u, "SELECT admin FROM users WHERE address = ?1");
	if (!st)
		return users_db_fail(u, error_r, "reading the admin flag");
	sqlite3_bind_text(st, 1, stored, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*admin_r = sqlite3_column_int(st, 0) != 0;
	users_done(u, st);
	if (rc == SQLITE_DONE)
		return users_fail(u, RESULT_PERMFAIL, error_r, "no such user: %s", address);
	if (rc != SQLITE_ROW)
		return users_db_fail(u, error_r, "reading the admin flag");
	return RESULT_OK;
}

/* struct crypt_data is about 32 KiB: too big for a worker thread's stack. calloc also gives the
 * zeroed "initialized" field crypt_r wants on first use. */
static struct crypt_data *users_crypt_data_new(void)
{
	return calloc(1, sizeof(struct crypt_data));
}

/* The scratch area holds the passphrase and intermediate state: wipe it before it goes back. */
static void users_crypt_data_free(struct crypt_data *cd)
{
	if (!cd)
		return;
	OPENSSL_cleanse(cd, sizeof(*cd));
	free(cd);
}

/* libxcrypt signals failure with NULL or a string starting with '*' ("*0" / "*1"), depending on
 * how it was built. */
static bool users_crypt_failed(const char *out)
{
	return !out || out[0] == '*';
}

enum result users_hash_password(const char *password, char hash_r[USERS_HASH_MAX])
{
	hash_r[0] = '\0';
	if (!password)
		return RESULT_PERMFAIL;
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	/* NULL random bytes: libxcrypt reads them from the kernel itself. count 0: its default cost. */
	if (!crypt_gensalt_rn("$y$", 0, NULL, 0, salt, (int)sizeof(salt)))
		return RESULT_TEMPFAIL;
	struct crypt_data *cd = users_crypt_data_new();
	if (!cd)
		return RESULT_TEMPFAIL;
	enum result r = RESULT_TEMPFAIL;
	const char *out = crypt_r(password, salt, cd);
	if (!users_crypt_failed(out) && strlen(out) < USERS_HASH_MAX) {
		memcpy(hash_r, out, strlen(out) + 1);
		r = RESULT_OK;
	}
	users_crypt_data_free(cd);
	return r;
}

bool users_check_password(const char *password, const char *hash)
{
	/* '*' and '!' mark disabled accounts (shadow(5) convention); an empty password never matches,
	 * whatever the hash, so a client that sends nothing cannot log in. */
	if (!password || !hash || password[0] == '\0' || hash[0] == '\0' || hash[0] == '*' || hash[0] == '!')
		return false;
	size_t hlen = strlen(hash);
	if (hlen >= CRYPT_OUTPUT_SIZE)
		return false;
	struct crypt_data *cd = users_crypt_data_new();
	if (!cd)
		return false;
	bool ok = false;
	const char *out = crypt_r(password, hash, cd);
	/* The length is not secret (it follows from the scheme); the bytes are compared in constant time. */
	if (!users_crypt_failed(out) && strlen(out) == hlen && CRYPTO_memcmp(out, hash, hlen) == 0)
		ok = true;
	users_crypt_data_free(cd);
	return ok;
}

bool users_hash_importable(const char *hash)
{
	static const char *const prefixes[] = { "$y$", "$2b$", "$6$" };
	if (!hash)
		return false;
	size_t len = strlen(hash);
	const char *prefix = NULL;
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		if (strncmp(hash, prefixes[i], strlen(prefixes[i])) == 0)
			prefix = prefixes[i];
	}
	if (!prefix || len <= strlen(prefix) || len >= USERS_HASH_MAX)
		return false;
	/* crypt hashes are printable ASCII; ':' would also break a passwd-style export */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)hash[i];
		if (c <= 0x20 || c >= 0x7f || c == ':')
			return false;
	}
	struct crypt_data *cd = users_crypt_data_new();
	if (!cd)
		return false;
	/* Let libcrypt prove it can compute this scheme with these parameters. Rehashing a complete hash
	 * yields a string of the same length; a shorter one means the checksum part was missing or cut,
	 * which would lock the account out with no error. */
	const char *out = crypt_r("mailwerk-import-check", hash, cd);
	bool ok = !users_crypt_failed(out) && strncmp(out, prefix, strlen(prefix)) == 0 && strlen(out) == len;
	users_crypt_data_free(cd);
	return ok;
}

enum result users_password_generate(char *password_r, size_t size)
{
	/* No 0/O/o, 1/l/I: the password is read off a terminal and typed into a mail client. 56 symbols,
	 * so 20 of them carry about 116 bits. */
	static const char alphabet[] = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
	const unsigned n = sizeof(alphabet) - 1;
	const unsigned limit = 256 - 256 % n; /* reject above a multiple of n so no symbol is favoured */
	if (size == 0)
		return RESULT_PERMFAIL;
	size_t have = 0;
	unsigned char buf[64];
	while (have + 1 < size) {
		if (RAND_bytes(buf, (int)sizeof(buf)) != 1) {
			OPENSSL_cleanse(password_r, size);
			password_r[0] = '\0';
			return RESULT_TEMPFAIL;
		}
		for (size_t i = 0; i < sizeof(buf) && have + 1 < size; i++) {
			if (buf[i] < limit)
				password_r[have++] = alphabet[buf[i] % n];
		}
	}
	password_r[have] = '\0';
	OPENSSL_cleanse(buf, sizeof(buf));
	return RESULT_OK;
}
