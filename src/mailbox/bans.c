/* bans.c — the auth_bans table of DATA_DIR/mailwerk.db: clients banned after too many failed
 * logins. Each call is one statement, so each is its own transaction. */
#include "mailbox/users.h"
#include "mailbox/users_db.h"

#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

enum result users_ban_put(struct users *u, const struct users_ban *b, const char **error_r)
{
	if (b->client[0] == '\0' || strnlen(b->client, USERS_BAN_CLIENT_SIZE) >= USERS_BAN_CLIENT_SIZE)
		return users_fail(u, RESULT_PERMFAIL, error_r, "not a client");
	/* rows are few (one per client banned within a ban time): ended ones go when a new one comes */
	sqlite3_stmt *st = users_prepare(u, "DELETE FROM auth_bans WHERE until <= ?1");
	if (st == NULL)
		return users_db_fail(u, error_r, "pruning bans");
	sqlite3_bind_int64(st, 1, b->since);
	int rc = sqlite3_step(st);
	users_done(u, st);
	if (rc != SQLITE_DONE)
		return users_db_fail(u, error_r, "pruning bans");
	st = users_prepare(u, "INSERT INTO auth_bans(client, since, until, failures) VALUES (?1, ?2, ?3, ?4)"
			      " ON CONFLICT(client) DO UPDATE SET since = ?2, until = ?3, failures = ?4");
	if (st == NULL)
		return users_db_fail(u, error_r, "storing a ban");
	sqlite3_bind_text(st, 1, b->client, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, b->since);
	sqlite3_bind_int64(st, 3, b->until);
	sqlite3_bind_int64(st, 4, b->failures);
	rc = sqlite3_step(st);
	users_done(u, st);
	return rc == SQLITE_DONE ? RESULT_OK : users_db_fail(u, error_r, "storing a ban");
}

/* One row into b; false for a row this program did not write (a client too long or empty). */
static bool ban_row(sqlite3_stmt *st, struct users_ban *b)
{
	const unsigned char *client = sqlite3_column_text(st, 0);
	int len = sqlite3_column_bytes(st, 0);
	if (client == NULL || len <= 0 || len >= USERS_BAN_CLIENT_SIZE || memchr(client, '\0', (size_t)len) != NULL)
		return false;
	memcpy(b->client, client, (size_t)len);
	b->client[len] = '\0';
	b->since = sqlite3_column_int64(st, 1);
	b->until = sqlite3_column_int64(st, 2);
	sqlite3_int64 f = sqlite3_column_int64(st, 3);
	b->failures = f < 0 ? 0 : f > UINT32_MAX ? UINT32_MAX : (unsigned)f;
	return true;
}

enum result users_ban_list(struct users *u, int64_t now, size_t max, struct users_ban **list_r, size_t *n_r,
			   const char **error_r)
{
	*list_r = NULL;
	*n_r = 0;
	sqlite3_stmt *st = users_prepare(u, "SELECT client, since, until, failures FROM auth_bans WHERE until > ?1"
					    " ORDER BY since, client LIMIT ?2");
	if (st == NULL)
		return users_db_fail(u, error_r, "reading bans");
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
	struct users_ban *list = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct users_ban *grown = realloc(list, ncap * sizeof(*list));
			if (grown == NULL) {
				users_done(u, st);
				free(list);
				return users_fail(u, RESULT_TEMPFAIL, error_r, "out of memory reading bans");
			}
			list = grown;
			cap = ncap;
		}
		if (ban_row(st, &list[n]))
			n++;
	}
	users_done(u, st);
	if (rc != SQLITE_DONE) {
		free(list);
		return users_db_fail(u, error_r, "reading bans");
	}
	*list_r = list;
	*n_r = n;
	return RESULT_OK;
}

enum result users_ban_del(struct users *u, const char *client, const char **error_r)
{
	sqlite3_stmt *st = users_prepare(u, "DELETE FROM auth_bans WHERE client = ?1");
	if (st == NULL)
		return users_db_fail(u, error_r, "removing a ban");
	sqlite3_bind_text(st, 1, client, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	int changed = sqlite3_changes(u->db);
	users_done(u, st);
	if (rc != SQLITE_DONE)
		return users_db_fail(u, error_r, "removing a ban");
	return changed > 0 ? RESULT_OK : users_fail(u, RESULT_PERMFAIL, error_r, "no ban for %s", client);
}

enum result users_ban_del_all(struct users *u, int64_t now, unsigned *n_r, const char **error_r)
{
	/* RETURNING counts in the same statement, so a ban added meanwhile cannot be miscounted */
	sqlite3_stmt *st = users_prepare(u, "DELETE FROM auth_bans RETURNING until > ?1");
	if (st == NULL)
		return users_db_fail(u, error_r, "removing bans");
	sqlite3_bind_int64(st, 1, now);
	unsigned in_force = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		in_force += sqlite3_column_int(st, 0) != 0;
	users_done(u, st);
	if (rc != SQLITE_DONE)
		return users_db_fail(u, error_r, "removing bans");
	if (n_r != NULL)
		*n_r = in_force;
	return RESULT_OK;
}
