/* domains.c — what the API shows of a local domain, beside its name in the domains table (users.c
 * owns the schema): its id, creation time, custom return path, capabilities, and the outcome of the
 * last DNS check, record by record (domain_checks). Storage only: what the records are and how they
 * are checked is domains/domain_dns.c's. */
#include "mailbox/users.h"
#include "mailbox/users_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "db/db.h"

#define DOMAIN_COLUMNS "id, name, return_path, created, sending, receiving, status, checked, verify_first, ready"

static void domain_copy(char *out, size_t size, const unsigned char *v)
{
	snprintf(out, size, "%s", v != NULL ? (const char *)v : "");
}

static void domain_row(sqlite3_stmt *st, struct users_domain *d)
{
	memset(d, 0, sizeof(*d));
	domain_copy(d->id, sizeof(d->id), sqlite3_column_text(st, 0));
	domain_copy(d->name, sizeof(d->name), sqlite3_column_text(st, 1));
	domain_copy(d->return_path, sizeof(d->return_path), sqlite3_column_text(st, 2));
	d->created_ms = sqlite3_column_int64(st, 3);
	d->sending = sqlite3_column_int(st, 4) != 0;
	d->receiving = sqlite3_column_int(st, 5) != 0;
	domain_copy(d->status, sizeof(d->status), sqlite3_column_text(st, 6));
	d->checked_ms = sqlite3_column_int64(st, 7);
	d->verify_first = sqlite3_column_int(st, 8) != 0;
	d->ready = sqlite3_column_int(st, 9) != 0;
}

enum result users_domain_get(struct users *u, const char *key, struct users_domain *d_r, const char **error_r)
{
	char name[ADDR_DOMAIN_MAX + 1];
	if (!users_domain_fold(key, name))
		return users_fail(u, RESULT_PERMFAIL, error_r, "no such domain");
	sqlite3_stmt *st = users_prepare(u, "SELECT " DOMAIN_COLUMNS " FROM domains WHERE id = ?1 OR name = ?1");
	if (st == NULL)
		return users_db_fail(u, error_r, "reading a domain");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		domain_row(st, d_r);
	users_done(u, st);
	if (rc == SQLITE_ROW)
		return RESULT_OK;
	return rc == SQLITE_DONE ? users_fail(u, RESULT_PERMFAIL, error_r, "no such domain")
				 : users_db_fail(u, error_r, "reading a domain");
}

static bool domain_fill(sqlite3_stmt *st, void *elem)
{
	domain_row(st, elem);
	return true;
}

enum result users_domain_page(struct users *u, unsigned limit, const char *after, const char *before,
			      struct users_domain **list_r, size_t *n_r, bool *more_r, const char **error_r)
{
	*list_r = NULL, *n_r = 0, *more_r = false;
	bool failed = false;
	sqlite3_int64 cursor = 0;
	const char *cursor_id = after != NULL ? after : before;
	if (cursor_id != NULL && (cursor = users_rowid_of(u, "SELECT rowid FROM domains WHERE id = ?1", cursor_id, &failed)) == 0)
		return failed ? users_db_fail(u, error_r, "listing domains")
			      : users_fail(u, RESULT_PERMFAIL, error_r, "the cursor is not the id of a domain");
	void *list;
	int rc = db_page(u->db, "SELECT " DOMAIN_COLUMNS " FROM domains", after != NULL ? cursor : 0,
			 before != NULL ? cursor : 0, limit, sizeof(struct users_domain), domain_fill, &list, n_r, more_r);
	if (rc != SQLITE_OK) {
		free(list);
		*n_r = 0;
		return rc == SQLITE_NOMEM ? users_fail(u, RESULT_TEMPFAIL, error_r, "out of memory")
					  : users_db_fail(u, error_r, "listing domains");
	}
	*list_r = list;
	return RESULT_OK;
}

/* Runs a one-row UPDATE of the domain name (bound as ?1). RESULT_PERMFAIL: no such domain. */
static enum result domain_update_run(struct users *u, sqlite3_stmt *st, const char **error_r)
{
	int rc = sqlite3_step(st);
	users_done(u, st);
	if (rc != SQLITE_DONE)
		return users_db_fail(u, error_r, "changing a domain");
	return sqlite3_changes(u->db) == 0 ? users_fail(u, RESULT_PERMFAIL, error_r, "no such domain") : RESULT_OK;
}

enum result users_domain_update(struct users *u, const char *name, const char *return_path, int sending,
				int receiving, int verify_first, const char **error_r)
{
	sqlite3_stmt *st = users_prepare(u, "UPDATE domains SET return_path = coalesce(?2, return_path),"
					    " sending = CASE WHEN ?3 < 0 THEN sending ELSE ?3 END,"
					    " receiving = CASE WHEN ?4 < 0 THEN receiving ELSE ?4 END,"
					    " verify_first = CASE WHEN ?5 < 0 THEN verify_first ELSE ?5 END WHERE name = ?1");
	if (st == NULL)
		return users_db_fail(u, error_r, "changing a domain");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (return_path != NULL)
		sqlite3_bind_text(st, 2, return_path, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, sending);
	sqlite3_bind_int(st, 4, receiving);
	sqlite3_bind_int(st, 5, verify_first);
	return domain_update_run(u, st, error_r);
}

enum result users_domain_set_status(struct users *u, const char *name, const char *status, const char **error_r)
{
	sqlite3_stmt *st = users_prepare(u, "UPDATE domains SET status = ?2 WHERE name = ?1");
	if (st == NULL)
		return users_db_fail(u, error_r, "changing a domain");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
	return domain_update_run(u, st, error_r);
}

static enum result domain_exec_name(struct users *u, const char *sql, const char *name, const char **error_r)
{
	sqlite3_stmt *st = users_prepare(u, sql);
	if (st == NULL)
		return users_db_fail(u, error_r, "storing a domain's check");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	users_done(u, st);
	return rc == SQLITE_DONE ? RESULT_OK : users_db_fail(u, error_r, "storing a domain's check");
}

enum result users_domain_checks_store(struct users *u, const char *name, const char *status, bool ready,
				      int64_t checked_ms, const struct users_domain_check *c, size_t n,
				      const char **error_r)
{
	enum result r = users_tx_begin(u, error_r);
	if (r != RESULT_OK)
		return r;
	sqlite3_stmt *st = users_prepare(u, "UPDATE domains SET status = ?2, checked = ?3, ready = ?4 WHERE name = ?1");
	if (st == NULL)
		return users_tx_abort(u, users_db_fail(u, error_r, "storing a domain's check"));
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, checked_ms);
	sqlite3_bind_int(st, 4, ready);
	if ((r = domain_update_run(u, st, error_r)) != RESULT_OK)
		return users_tx_abort(u, r); /* deleted while it was checked */
	if ((r = domain_exec_name(u, "DELETE FROM domain_checks WHERE domain = ?1", name, error_r)) != RESULT_OK)
		return users_tx_abort(u, r);
	st = users_prepare(u, "INSERT INTO domain_checks(domain, seq, kind, name, status, problem)"
			      " VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
	if (st == NULL)
		return users_tx_abort(u, users_db_fail(u, error_r, "storing a domain's check"));
	for (size_t i = 0; i < n; i++) {
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
		sqlite3_bind_text(st, 3, c[i].kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, c[i].name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, c[i].status, -1, SQLITE_STATIC);
		if (c[i].problem != NULL)
			sqlite3_bind_text(st, 6, c[i].problem, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 6);
		if (sqlite3_step(st) != SQLITE_DONE) {
			users_done(u, st);
			return users_tx_abort(u, users_db_fail(u, error_r, "storing a domain's check"));
		}
	}
	users_done(u, st);
	return users_tx_commit(u, error_r);
}

void users_domain_checks_free(struct users_domain_check *c, size_t n)
{
	for (size_t i = 0; c != NULL && i < n; i++)
		free(c[i].problem);
	free(c);
}

enum result users_domain_checks(struct users *u, const char *name, struct users_domain_check **list_r, size_t *n_r,
				const char **error_r)
{
	*list_r = NULL;
	*n_r = 0;
	sqlite3_stmt *st = users_prepare(u, "SELECT kind, name, status, problem FROM domain_checks WHERE domain = ?1"
					    " ORDER BY seq");
	if (st == NULL)
		return users_db_fail(u, error_r, "reading a domain's check");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	struct users_domain_check *list = NULL;
	size_t n = 0, cap = 0;
	int rc;
	bool nomem = false;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap == 0 ? 16 : cap * 2;
			struct users_domain_check *g = realloc(list, ncap * sizeof(*g));
			if (g == NULL) {
				nomem = true;
				break;
			}
			list = g;
			cap = ncap;
		}
		struct users_domain_check *c = &list[n++];
		memset(c, 0, sizeof(*c));
		domain_copy(c->kind, sizeof(c->kind), sqlite3_column_text(st, 0));
		domain_copy(c->name, sizeof(c->name), sqlite3_column_text(st, 1));
		domain_copy(c->status, sizeof(c->status), sqlite3_column_text(st, 2));
		const unsigned char *p = sqlite3_column_text(st, 3);
		if (p != NULL && (c->problem = strdup((const char *)p)) == NULL) {
			nomem = true;
			break;
		}
	}
	users_done(u, st);
	if (nomem || rc != SQLITE_DONE) {
		users_domain_checks_free(list, n);
		return nomem ? users_fail(u, RESULT_TEMPFAIL, error_r, "out of memory")
			     : users_db_fail(u, error_r, "reading a domain's check");
	}
	*list_r = list;
	*n_r = n;
	return RESULT_OK;
}
