/* routes.c — inbound routes (users.h): which addresses of the local domains have their mail go to
 * the applications. Stored in the routes table (users.c owns the schema) under the same key as an
 * alias: "local@domain" with the domain folded, or "@domain" for the whole domain ("*@domain" to
 * the API and the CLI). Storage only: what the delivery does with a route is delivery/local.c's. */
#include "mailbox/users.h"
#include "mailbox/users_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "db/db.h"
#include "util/date.h"
#include "util/uuid.h"

#define ROUTE_COLUMNS "id, address, domain, mailbox, created"

static void route_text(char *out, size_t size, const unsigned char *v)
{
	snprintf(out, size, "%s", v != NULL ? (const char *)v : "");
}

static bool route_row(sqlite3_stmt *st, void *elem)
{
	struct users_route *r = elem;
	char key[ADDR_TEXT_MAX + 1];
	route_text(r->id, sizeof(r->id), sqlite3_column_text(st, 0));
	route_text(key, sizeof(key), sqlite3_column_text(st, 1));
	/* the whole domain is stored as the catch-all's key "@domain" and shown as "*@domain" */
	snprintf(r->address, sizeof(r->address), "%s%s", key[0] == '@' ? "*" : "", key);
	route_text(r->domain, sizeof(r->domain), sqlite3_column_text(st, 2));
	r->mailbox = sqlite3_column_int(st, 3) != 0;
	r->created_ms = sqlite3_column_int64(st, 4);
	return true;
}

/* The stored key of a route's address ("a@b", "*@b" or "@b"), with its folded domain; false when it
 * is neither an address nor a domain's wildcard. */
static bool route_key(const char *address, char key_r[ADDR_TEXT_MAX + 1], char domain_r[ADDR_DOMAIN_MAX + 1])
{
	const char *at = strrchr(address, '@');
	if (at == NULL)
		return false;
	bool wildcard = at == address || (at == address + 1 && address[0] == '*');
	if (wildcard) {
		const char *err;
		const char *domain = at + 1;
		if (domain[0] == '[' || addr_parse_domain(domain, strlen(domain), ADDR_ALLOW_UTF8, &err) != ADDR_OK ||
		    !users_domain_fold(domain, domain_r))
			return false;
		snprintf(key_r, ADDR_TEXT_MAX + 1, "@%s", domain_r);
		return true;
	}
	struct addr a;
	const char *err;
	if (addr_parse_mailbox(address, strlen(address), ADDR_ALLOW_UTF8, &a, &err) != ADDR_OK || a.is_literal ||
	    !users_address_fold(a.text, key_r))
		return false;
	return users_domain_fold(addr_domain(&a), domain_r);
}

enum result users_route_add(struct users *u, const char *address, bool mailbox, struct users_route *r_r,
			    const char **error_r)
{
	char key[ADDR_TEXT_MAX + 1], domain[ADDR_DOMAIN_MAX + 1];
	if (!route_key(address, key, domain))
		return users_fail(u, RESULT_PERMFAIL, error_r,
				  "invalid route \"%s\": expected local@domain or *@domain", address);
	enum result r = users_tx_begin(u, error_r);
	if (r != RESULT_OK)
		return r;
	r = users_domain_is_local_folded(u, domain);
	if (r != RESULT_OK)
		return users_tx_abort(u, r == RESULT_PERMFAIL ? users_fail(u, r, error_r,
			"domain %s is not local; add it first (mailwerk domain add %s, or POST /domains)", domain, domain)
						      : users_db_fail(u, error_r, "looking up a domain"));
	struct users_route nr = {.mailbox = mailbox, .created_ms = date_now_ms()};
	if (!uuid_v4_new(nr.id))
		return users_tx_abort(u, users_fail(u, RESULT_TEMPFAIL, error_r, "no randomness for an id"));
	snprintf(nr.domain, sizeof(nr.domain), "%s", domain);
	snprintf(nr.address, sizeof(nr.address), "%s%s", key[0] == '@' ? "*" : "", key);
	sqlite3_stmt *st = users_prepare(u, "INSERT INTO routes(id, address, domain, mailbox, created)"
					    " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(address) DO NOTHING");
	if (st == NULL)
		return users_tx_abort(u, users_db_fail(u, error_r, "adding a route"));
	sqlite3_bind_text(st, 1, nr.id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, domain, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, mailbox ? 1 : 0);
	sqlite3_bind_int64(st, 5, nr.created_ms);
	int rc = sqlite3_step(st);
	users_done(u, st);
	if (rc != SQLITE_DONE)
		return users_tx_abort(u, users_db_fail(u, error_r, "adding a route"));
	if (sqlite3_changes(u->db) == 0)
		return users_tx_abort(u, users_fail(u, RESULT_PERMFAIL, error_r, "%s is already routed", nr.address));
	r = users_tx_commit(u, error_r);
	if (r == RESULT_OK && r_r != NULL)
		*r_r = nr;
	return r;
}

/* The route stored under key (id, or an address as users_route_add takes it). */
enum result users_route_get(struct users *u, const char *key, struct users_route *r_r, const char **error_r)
{
	char addr_key[ADDR_TEXT_MAX + 1], domain[ADDR_DOMAIN_MAX + 1];
	if (!route_key(key, addr_key, domain))
		snprintf(addr_key, sizeof(addr_key), "%s", key); /* not an address: only an id can match */
	sqlite3_stmt *st = users_prepare(u, "SELECT " ROUTE_COLUMNS " FROM routes WHERE id = ?1 OR address = ?2");
	if (st == NULL)
		return users_db_fail(u, error_r, "reading a route");
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, addr_key, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		route_row(st, r_r);
	users_done(u, st);
	if (rc == SQLITE_ROW)
		return RESULT_OK;
	return rc == SQLITE_DONE ? users_fail(u, RESULT_PERMFAIL, error_r, "no such route: %s", key)
				 : users_db_fail(u, error_r, "reading a route");
}

/* Runs a one-row change of the route whose id is bound as ?1. RESULT_PERMFAIL: no such route. */
static enum result route_change(struct users *u, sqlite3_stmt *st, const char *key, const char **error_r)
{
	int rc = sqlite3_step(st);
	users_done(u, st);
	if (rc != SQLITE_DONE)
		return users_db_fail(u, error_r, "changing a route");
	return sqlite3_changes(u->db) == 0 ? users_fail(u, RESULT_PERMFAIL, error_r, "no such route: %s", key)
					   : RESULT_OK;
}

enum result users_route_del(struct users *u, const char *key, const char **error_r)
{
	struct users_route r;
	enum result res = users_route_get(u, key, &r, error_r);
	if (res != RESULT_OK)
		return res;
	sqlite3_stmt *st = users_prepare(u, "DELETE FROM routes WHERE id = ?1");
	if (st == NULL)
		return users_db_fail(u, error_r, "deleting a route");
	sqlite3_bind_text(st, 1, r.id, -1, SQLITE_TRANSIENT);
	return route_change(u, st, key, error_r);
}

enum result users_route_set_mailbox(struct users *u, const char *key, bool mailbox, const char **error_r)
{
	struct users_route r;
	enum result res = users_route_get(u, key, &r, error_r);
	if (res != RESULT_OK)
		return res;
	sqlite3_stmt *st = users_prepare(u, "UPDATE routes SET mailbox = ?2 WHERE id = ?1");
	if (st == NULL)
		return users_db_fail(u, error_r, "changing a route");
	sqlite3_bind_text(st, 1, r.id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 2, mailbox ? 1 : 0);
	return route_change(u, st, key, error_r);
}

enum result users_route_page(struct users *u, unsigned limit, const char *after, const char *before,
			     struct users_route **list_r, size_t *n_r, bool *more_r, const char **error_r)
{
	bool failed = false;
	sqlite3_int64 cursor = 0;
	const char *cursor_id = after != NULL ? after : before;
	*list_r = NULL, *n_r = 0, *more_r = false;
	if (cursor_id != NULL && (cursor = users_rowid_of(u, "SELECT rowid FROM routes WHERE id = ?1", cursor_id, &failed)) == 0)
		return failed ? users_db_fail(u, error_r, "listing routes")
			      : users_fail(u, RESULT_PERMFAIL, error_r, "the cursor is not the id of a route");
	void *list;
	int rc = db_page(u->db, "SELECT " ROUTE_COLUMNS " FROM routes", after != NULL ? cursor : 0,
			 before != NULL ? cursor : 0, limit, sizeof(struct users_route), route_row, &list, n_r, more_r);
	if (rc != SQLITE_OK) {
		free(list);
		*n_r = 0;
		return rc == SQLITE_NOMEM ? users_fail(u, RESULT_TEMPFAIL, error_r, "out of memory")
					  : users_db_fail(u, error_r, "listing routes");
	}
	*list_r = list;
	return RESULT_OK;
}

enum result users_domain_routed(struct users *u, const char *domain)
{
	sqlite3_stmt *st = users_prepare(u, "SELECT 1 FROM routes r JOIN domains d ON d.name = r.domain"
					    " WHERE r.domain = ?1 AND d.receiving = 1 LIMIT 1");
	if (st == NULL)
		return RESULT_TEMPFAIL;
	sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	users_done(u, st);
	return rc == SQLITE_ROW ? RESULT_OK : rc == SQLITE_DONE ? RESULT_PERMFAIL : RESULT_TEMPFAIL;
}

/* The route under key ("local@domain" folded, or "@domain") of a domain whose receiving is on:
 * exact, then case-insensitively, as alias_find. */
enum result users_route_find(struct users *u, const char *key, struct users_route *r_r, const char **error_r)
{
	static const char *const queries[] = {
		"SELECT r.id, r.address, r.domain, r.mailbox, r.created FROM routes r JOIN domains d"
		" ON d.name = r.domain WHERE r.address = ?1 AND d.receiving = 1",
		"SELECT r.id, r.address, r.domain, r.mailbox, r.created FROM routes r JOIN domains d"
		" ON d.name = r.domain WHERE r.address = ?1 COLLATE NOCASE AND d.receiving = 1 LIMIT 2",
	};
	for (size_t q = 0; q < 2; q++) {
		sqlite3_stmt *st = users_prepare(u, queries[q]);
		if (st == NULL)
			return users_db_fail(u, error_r, "looking up a route");
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		int rows = 0, rc;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW && ++rows == 1)
			route_row(st, r_r);
		users_done(u, st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return users_db_fail(u, error_r, "looking up a route");
		if (rows == 1)
			return RESULT_OK;
		if (rows > 1)
			break; /* ambiguous by case: nobody rather than a guess */
	}
	return RESULT_PERMFAIL;
}
