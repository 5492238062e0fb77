/* users_db.h — inside the accounts database: shared by users.c (domains, users, passwords) and
 * recipients.c (aliases, quotas, what an address delivers to). Not for other modules. */
#ifndef MAILWERK_MAILBOX_USERS_DB_H
#define MAILWERK_MAILBOX_USERS_DB_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>

#include "mailbox/users.h"
#include "util/addr.h"
#include "util/result.h"

struct db;

/* Statements kept prepared between calls (a recipient's resolution runs several for every RCPT
 * and API message): keyed by their text, each lent to one caller at a time, as the handle is
 * shared by threads (users_open). */
#define USERS_STMT_CACHE 48
struct users_stmt_slot {
	sqlite3_stmt *st;
	bool lent;
};

struct users {
	struct db *conn;
	sqlite3 *db; /* db_sqlite(conn) */
	char error[512];
	pthread_mutex_t stmt_mu; /* guards the slots (not the statements, which their borrower owns) */
	struct users_stmt_slot slots[USERS_STMT_CACHE];
	size_t slot_count;
};

/* Formats the error into u->error, points *error_r at it, returns r. */
enum result users_fail(struct users *u, enum result r, const char **error_r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* A database error is a temporary failure: the caller may retry, an SMTP peer gets a 4xx. */
enum result users_db_fail(struct users *u, const char **error_r, const char *what);
/* RFC 5321 §2.4: domains are case-insensitive; ASCII is folded. */
bool users_domain_fold(const char *domain, char out[ADDR_DOMAIN_MAX + 1]);
/* "local@domain" with the domain folded, the local part kept. */
bool users_address_fold(const char *address, char out[ADDR_TEXT_MAX + 1]);
/* A statement for sql, kept prepared or new; NULL on error. Give it back with users_done. */
sqlite3_stmt *users_prepare(struct users *u, const char *sql);
/* Resets a statement of users_prepare for the next caller, or finalizes it when it is not kept. */
void users_done(struct users *u, sqlite3_stmt *st);
/* The rowid sql ("SELECT rowid FROM t WHERE id = ?1") finds for id: a list cursor's place. 0 when
 * there is none (*failed_r says whether that is an error). */
sqlite3_int64 users_rowid_of(struct users *u, const char *sql, const char *id, bool *failed_r);
enum result users_tx_begin(struct users *u, const char **error_r);
enum result users_tx_commit(struct users *u, const char **error_r);
enum result users_tx_abort(struct users *u, enum result r);
enum result users_domain_is_local_folded(struct users *u, const char *name);
/* The user row for address: exact (domain folded), then the local part case-insensitively. Copies
 * the address as stored and, when hash_r is set, the hash. RESULT_PERMFAIL: no such user. */
enum result users_user_find(struct users *u, const char *address, char stored_r[ADDR_TEXT_MAX + 1], char *hash_r,
			    size_t hash_size, const char **error_r);
/* Whether the domain (folded) has a route and its receiving is on: one indexed read, so that an
 * address of a domain without routes costs the resolution no route lookups (routes.c). */
enum result users_domain_routed(struct users *u, const char *domain);
/* The route stored under key ("local@domain" with the domain folded, or "@domain") whose domain's
 * receiving is on: exact, then case-insensitively (routes.c). RESULT_PERMFAIL: none. */
enum result users_route_find(struct users *u, const char *key, struct users_route *r_r, const char **error_r);

#endif
