/* recipients.c — what a local address delivers to: users, aliases (the alias "@domain" is that
 * domain's catch-all), plus-addressing, and per-user quotas. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mailbox/users.h"
#include "mailbox/users_db.h"

/* RFC 5321 §4.5.3.1.8 wants 100 recipients per message; an alias may fan out further, but not without end. */
#define RCPT_EXPAND_MAX 1000
#define RCPT_EXPAND_DEPTH 8

/* Splits "local@domain" (last '@'); out_domain folded. "@domain" gives an empty local part. */
static bool rcpt_split(const char *address, char local_r[ADDR_LOCAL_MAX * 4 + 1], char domain_r[ADDR_DOMAIN_MAX + 1])
{
	const char *at = strrchr(address, '@');
	if (at == NULL || (size_t)(at - address) > ADDR_LOCAL_MAX * 4)
		return false;
	memcpy(local_r, address, (size_t)(at - address));
	local_r[at - address] = '\0';
	return users_domain_fold(at + 1, domain_r);
}

/* key = local[0..local_len) "@" domain; false when over the RFC 5321 §4.5.3.1 limits. */
static bool rcpt_key(char key_r[ADDR_TEXT_MAX + 1], const char *local, size_t local_len, const char *domain)
{
	size_t dlen = strlen(domain);
	if (local_len + 1 + dlen > ADDR_TEXT_MAX)
		return false;
	memcpy(key_r, local, local_len);
	key_r[local_len] = '@';
	memcpy(key_r + local_len + 1, domain, dlen + 1);
	return true;
}

/* Checks and normalises a target list "a@x, b@y" into "a@x,b@y". */
static enum result alias_targets_normalise(struct users *u, const char *targets, char *out, size_t size,
					   const char **error_r)
{
	size_t o = 0;
	const char *p = targets;
	unsigned n = 0;
	while (*p != '\0') {
		while (*p == ' ' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		const char *end = p;
		while (*end != '\0' && *end != ',')
			end++;
		const char *last = end;
		while (last > p && last[-1] == ' ')
			last--;
		struct addr a;
		const char *err;
		if (addr_parse_mailbox(p, (size_t)(last - p), ADDR_ALLOW_UTF8, &a, &err) != ADDR_OK)
			return users_fail(u, RESULT_PERMFAIL, error_r, "invalid target \"%.*s\": %s", (int)(last - p), p, err);
		size_t len = strlen(a.text);
		if (o + len + 2 > size)
			return users_fail(u, RESULT_PERMFAIL, error_r, "too many targets");
		if (n++ > 0)
			out[o++] = ',';
		memcpy(out + o, a.text, len + 1);
		o += len;
		p = end;
	}
	if (n == 0)
		return users_fail(u, RESULT_PERMFAIL, error_r, "an alias needs at least one target");
	return RESULT_OK;
}

enum result users_alias_add(struct users *u, const char *address, const char *targets, const char **error_r)
{
	char local[ADDR_LOCAL_MAX * 4 + 1], domain[ADDR_DOMAIN_MAX + 1], key[ADDR_TEXT_MAX + 1], list[USERS_TARGETS_MAX];
	if (!rcpt_split(address, local, domain))
		return users_fail(u, RESULT_PERMFAIL, error_r, "invalid alias \"%s\": expected local@domain or @domain", address);
	if (local[0] != '\0') {
		struct addr a;
		const char *err;
		if (addr_parse_mailbox(address, strlen(address), ADDR_ALLOW_UTF8, &a, &err) != ADDR_OK)
			return users_fail(u, RESULT_PERMFAIL, error_r, "invalid alias \"%s\": %s", address, err);
	}
	if (!rcpt_key(key, local, strlen(local), domain))
		return users_fail(u, RESULT_PERMFAIL, error_r, "alias \"%s\" is too long", address);
	enum result r = alias_targets_normalise(u, targets, list, sizeof(list), error_r);
	if (r != RESULT_OK)
		return r;
	if ((r = users_tx_begin(u, error_r)) != RESULT_OK)
		return r;
	r = users_domain_is_local_folded(u, domain);
	if (r != RESULT_OK)
		return users_tx_abort(u, r == RESULT_PERMFAIL ? users_fail(u, r, error_r,
			"domain %s is not local; add it with: mailwerk domain add %s", domain, domain)
						      : users_db_fail(u, error_r, "looking up a domain"));
	char stored[ADDR_TEXT_MAX + 1];
	const char *ferr;
	if (local[0] != '\0' && users_user_find(u, key, stored, NULL, 0, &ferr) == RESULT_OK)
		return users_tx_abort(u, users_fail(u, RESULT_PERMFAIL, error_r, "%s is a user; an alias cannot shadow it", stored));
	sqlite3_stmt *st = users_prepare(u, "INSERT INTO aliases(address, domain, targets) VALUES(?1, ?2, ?3) "
					    "ON CONFLICT(address) DO UPDATE SET targets = excluded.targets");
	if (st == NULL)
		return users_tx_abort(u, users_db_fail(u, error_r, "adding an alias"));
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, list, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	users_done(u, st);
	if (rc != SQLITE_DONE)
		return users_tx_abort(u, users_db_fail(u, error_r, "adding an alias"));
	return users_tx_commit(u, error_r);
}

enum result users_alias_del(struct users *u, const char *address, const char **error_r)
{
	char local[ADDR_LOCAL_MAX * 4 + 1], domain[ADDR_DOMAIN_MAX + 1], key[ADDR_TEXT_MAX + 1];
	if (!rcpt_split(address, local, domain) || !rcpt_key(key, local, strlen(local), domain))
		return users_fail(u, RESULT_PERMFAIL, error_r, "no such alias: %s", address);
	sqlite3_stmt *st = users_prepare(u, "DELETE FROM aliases WHERE address = ?1");
	if (st == NULL)
		return users_db_fail(u, error_r, "deleting an alias");
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	users_done(u, st);
	if (rc != SQLITE_DONE)
		return users_db_fail(u, error_r, "deleting an alias");
	if (sqlite3_changes(u->db) == 0)
		return users_fail(u, RESULT_PERMFAIL, error_r, "no such alias: %s", address);
	return RESULT_OK;
}

enum result users_alias_list(struct users *u, users_alias_list_fn *fn, void *arg, const char **error_r)
{
	sqlite3_stmt *st = users_prepare(u, "SELECT address, targets FROM aliases ORDER BY domain, address");
	if (st == NULL)
		return users_db_fail(u, error_r, "listing aliases");
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		fn((const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1), arg);
	users_done(u, st);
	return rc == SQLITE_DONE ? RESULT_OK : users_db_fail(u, error_r, "listing aliases");
}

/* The alias row for key ("local@domain" folded, or "@domain"): exact, then case-insensitively. */
static enum result alias_find(struct users *u, const char *key, char *targets_r, size_t size, const char **error_r)
{
	static const char *const queries[] = {
		"SELECT targets FROM aliases WHERE address = ?1",
		"SELECT targets FROM aliases WHERE address = ?1 COLLATE NOCASE LIMIT 2",
	};
	for (size_t q = 0; q < 2; q++) {
		sqlite3_stmt *st = users_prepare(u, queries[q]);
		if (st == NULL)
			return users_db_fail(u, error_r, "looking up an alias");
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		int rows = 0, rc;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW && ++rows == 1)
			snprintf(targets_r, size, "%s", (const char *)sqlite3_column_text(st, 0));
		users_done(u, st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return users_db_fail(u, error_r, "looking up an alias");
		if (rows == 1)
			return RESULT_OK;
		if (rows > 1)
			break; /* ambiguous by case: nobody rather than a guess */
	}
	return RESULT_PERMFAIL;
}

/* Route (when routes), then user, then alias, for one exact key. */
static enum result rcpt_lookup(struct users *u, const char *key, bool routes, struct users_rcpt *r,
			       const char **error_r)
{
	const char *err;
	enum result res = routes ? users_route_find(u, key, &r->route, error_r) : RESULT_PERMFAIL;
	if (res != RESULT_PERMFAIL) {
		r->kind = USERS_RCPT_ROUTE;
		return res;
	}
	res = users_user_find(u, key, r->address, NULL, 0, &err);
	if (res == RESULT_OK) {
		r->kind = USERS_RCPT_USER;
		return RESULT_OK;
	}
	if (res == RESULT_TEMPFAIL)
		return users_fail(u, res, error_r, "%s", err);
	res = alias_find(u, key, r->targets, sizeof(r->targets), error_r);
	if (res == RESULT_OK) {
		r->kind = USERS_RCPT_ALIAS;
		memcpy(r->address, key, strlen(key) + 1);
	}
	return res;
}

static enum result rcpt_resolve(struct users *u, const char *address, const char *delims, bool routes,
				struct users_rcpt *r, const char **error_r)
{
	char local[ADDR_LOCAL_MAX * 4 + 1], domain[ADDR_DOMAIN_MAX + 1], key[ADDR_TEXT_MAX + 1];
	if (!rcpt_split(address, local, domain) || local[0] == '\0' || !rcpt_key(key, local, strlen(local), domain))
		return users_fail(u, RESULT_PERMFAIL, error_r, "no such recipient: %s", address);
	/* most domains have no routes: then none is looked for at any name */
	if (routes) {
		enum result has = users_domain_routed(u, domain);
		if (has == RESULT_TEMPFAIL)
			return users_db_fail(u, error_r, "looking up a route");
		routes = has == RESULT_OK;
	}
	/* a routed address is delivered under the name it was given (received_for) */
	if (routes)
		snprintf(r->address, sizeof(r->address), "%s", address);
	enum result res = rcpt_lookup(u, key, routes, r, error_r);
	if (res != RESULT_PERMFAIL)
		return res;
	/* plus-addressing: "user+tag@domain" is user@domain (the first delimiter starts the tag) */
	size_t base = delims != NULL && delims[0] != '\0' ? strcspn(local, delims) : strlen(local);
	if (base > 0 && local[base] != '\0') {
		rcpt_key(key, local, base, domain);
		res = rcpt_lookup(u, key, routes, r, error_r);
		if (res != RESULT_PERMFAIL)
			return res;
	}
	/* the whole domain: its route, then its catch-all */
	rcpt_key(key, "", 0, domain);
	res = routes ? users_route_find(u, key, &r->route, error_r) : RESULT_PERMFAIL;
	if (res != RESULT_PERMFAIL) {
		r->kind = USERS_RCPT_ROUTE;
		return res;
	}
	res = alias_find(u, key, r->targets, sizeof(r->targets), error_r);
	if (res == RESULT_OK) {
		r->kind = USERS_RCPT_ALIAS;
		memcpy(r->address, key, strlen(key) + 1);
		return RESULT_OK;
	}
	if (res == RESULT_PERMFAIL)
		return users_fail(u, RESULT_PERMFAIL, error_r, "no such recipient: %s", address);
	return res;
}

enum result users_rcpt_resolve(struct users *u, const char *address, const char *delims, struct users_rcpt *r,
			       const char **error_r)
{
	return rcpt_resolve(u, address, delims, true, r, error_r);
}

enum result users_rcpt_resolve_unrouted(struct users *u, const char *address, const char *delims,
					struct users_rcpt *r, const char **error_r)
{
	return rcpt_resolve(u, address, delims, false, r, error_r);
}

struct rcpt_expansion {
	const char *delims;
	users_rcpt_fn *fn;
	void *arg;
	char **seen;
	size_t count;
};

static bool expansion_seen(struct rcpt_expansion *x, const char *address)
{
	for (size_t i = 0; i < x->count; i++)
		if (strcasecmp(x->seen[i], address) == 0)
			return true;
	return false;
}

static enum result expansion_emit(struct users *u, struct rcpt_expansion *x, const char *address, const char **error_r)
{
	if (expansion_seen(x, address))
		return RESULT_OK; /* each mailbox once, however many ways it was named */
	if (x->count == RCPT_EXPAND_MAX)
		return users_fail(u, RESULT_PERMFAIL, error_r, "aliases expand to more than %d recipients", RCPT_EXPAND_MAX);
	char **grown = realloc(x->seen, (x->count + 1) * sizeof(char *));
	char *copy = strdup(address);
	if (grown == NULL || copy == NULL) {
		free(copy);
		if (grown != NULL)
			x->seen = grown;
		return users_fail(u, RESULT_TEMPFAIL, error_r, "out of memory");
	}
	x->seen = grown;
	x->seen[x->count++] = copy;
	x->fn(address, x->arg);
	return RESULT_OK;
}

static enum result expansion_walk(struct users *u, struct rcpt_expansion *x, const char *address, int depth,
				  const char **error_r)
{
	char local[ADDR_LOCAL_MAX * 4 + 1], domain[ADDR_DOMAIN_MAX + 1];
	if (!rcpt_split(address, local, domain))
		return expansion_emit(u, x, address, error_r);
	enum result r = users_domain_is_local_folded(u, domain);
	if (r == RESULT_PERMFAIL)
		return expansion_emit(u, x, address, error_r); /* remote: delivered elsewhere */
	if (r != RESULT_OK)
		return users_db_fail(u, error_r, "looking up a domain");
	struct users_rcpt rc;
	r = users_rcpt_resolve(u, address, x->delims, &rc, error_r);
	if (r != RESULT_OK)
		return r;
	if (rc.kind == USERS_RCPT_ROUTE) {
		/* delivered to the applications under the name it was given; with mailbox, also where it
		 * goes without the route (the delivery of this address reaches a user's Maildir itself) */
		if ((r = expansion_emit(u, x, address, error_r)) != RESULT_OK || !rc.route.mailbox)
			return r;
		r = users_rcpt_resolve_unrouted(u, address, x->delims, &rc, error_r);
		if (r == RESULT_PERMFAIL)
			return RESULT_OK; /* nobody besides the route */
		if (r != RESULT_OK || rc.kind == USERS_RCPT_USER)
			return r;
	}
	if (rc.kind == USERS_RCPT_USER)
		return expansion_emit(u, x, address, error_r); /* as given: "+tag" stays for Delivered-To */
	if (depth >= RCPT_EXPAND_DEPTH)
		return users_fail(u, RESULT_PERMFAIL, error_r, "aliases nest deeper than %d levels at %s (a loop?)",
				  RCPT_EXPAND_DEPTH, rc.address);
	char *save = NULL;
	for (char *t = strtok_r(rc.targets, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save))
		if ((r = expansion_walk(u, x, t, depth + 1, error_r)) != RESULT_OK)
			return r;
	return RESULT_OK;
}

enum result users_rcpt_expand(struct users *u, const char *const *addresses, size_t count, const char *delims,
			      users_rcpt_fn *fn, void *arg, const char **error_r)
{
	struct rcpt_expansion x = {.delims = delims, .fn = fn, .arg = arg};
	enum result r = RESULT_OK;
	for (size_t i = 0; i < count && r == RESULT_OK; i++)
		r = expansion_walk(u, &x, addresses[i], 0, error_r);
	for (size_t i = 0; i < x.count; i++)
		free(x.seen[i]);
	free(x.seen);
	return r;
}

enum result users_user_set_quota(struct users *u, const char *address, uint64_t bytes, const char **error_r)
{
	char stored[ADDR_TEXT_MAX + 1];
	enum result r = users_user_find(u, address, stored, NULL, 0, error_r);
	if (r != RESULT_OK)
		return r;
	sqlite3_stmt *st = users_prepare(u, "UPDATE users SET quota = ?2 WHERE address = ?1");
	if (st == NULL)
		return users_db_fail(u, error_r, "setting a quota");
	sqlite3_bind_text(st, 1, stored, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)bytes);
	int rc = sqlite3_step(st);
	users_done(u, st);
	return rc == SQLITE_DONE ? RESULT_OK : users_db_fail(u, error_r, "setting a quota");
}

enum result users_user_quota(struct users *u, const char *address, uint64_t *bytes_r, const char **error_r)
{
	sqlite3_stmt *st = users_prepare(u, "SELECT quota FROM users WHERE address = ?1");
	if (st == NULL)
		return users_db_fail(u, error_r, "reading a quota");
	sqlite3_bind_text(st, 1, address, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	*bytes_r = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
	users_done(u, st);
	if (rc == SQLITE_DONE)
		return users_fail(u, RESULT_PERMFAIL, error_r, "no such user: %s", address);
	return rc == SQLITE_ROW ? RESULT_OK : users_db_fail(u, error_r, "reading a quota");
}
