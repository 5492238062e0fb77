/* mtasts_store.c — the mta_sts_policies rows of DATA_DIR/reports.db (mtasts_store.h). */
#include "delivery/mtasts_store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "db/db.h"
#include "report/report_store.h"

struct mtasts_store {
	struct db *conn; /* under mu */
	pthread_mutex_t mu;
	char error[DB_ERROR_SIZE];
};

static const char put_sql[] =
	"INSERT INTO mta_sts_policies(domain, id, fetched, expires, mode, mx, policy) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"
	" ON CONFLICT(domain) DO UPDATE SET id = excluded.id, fetched = excluded.fetched, expires = excluded.expires,"
	" mode = excluded.mode, mx = excluded.mx, policy = excluded.policy";
static const char delete_sql[] = "DELETE FROM mta_sts_policies WHERE domain = ?1";
static const char each_sql[] =
	"SELECT domain, id, fetched, expires, mode, mx, policy FROM mta_sts_policies ORDER BY domain LIMIT ?1";

struct mtasts_store *mtasts_store_open(const char *data_dir, const char **error_r)
{
	static _Thread_local char open_error[DB_ERROR_SIZE];
	struct mtasts_store *s = calloc(1, sizeof(*s));
	if (s == NULL || pthread_mutex_init(&s->mu, NULL) != 0) {
		free(s);
		*error_r = "out of memory";
		return NULL;
	}
	/* FULL sync (report_store_db_open): a cached enforce policy must survive a power failure, or an
	 * attacker who can cause one gets a window without it (RFC 8461 §10.2) */
	s->conn = report_store_db_open(data_dir, put_sql, open_error, sizeof(open_error));
	if (s->conn == NULL) {
		*error_r = open_error;
		pthread_mutex_destroy(&s->mu);
		free(s);
		return NULL;
	}
	return s;
}

void mtasts_store_close(struct mtasts_store *s)
{
	if (s == NULL)
		return;
	db_close(s->conn);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static enum result store_fail(struct mtasts_store *s, sqlite3_stmt *st, const char **error_r)
{
	snprintf(s->error, sizeof(s->error), "%s: %s", REPORT_STORE_DB_NAME, sqlite3_errmsg(db_sqlite(s->conn)));
	if (st != NULL)
		sqlite3_reset(st);
	*error_r = s->error;
	return RESULT_TEMPFAIL;
}

enum result mtasts_store_put(struct mtasts_store *s, const struct mtasts_store_row *r, const char **error_r)
{
	pthread_mutex_lock(&s->mu);
	sqlite3_stmt *st = db_stmt(s->conn, put_sql);
	enum result res = RESULT_OK;
	if (st == NULL) {
		res = store_fail(s, NULL, error_r);
	} else {
		sqlite3_bind_text(st, 1, r->domain, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, r->id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, r->fetched);
		sqlite3_bind_int64(st, 4, r->expires);
		sqlite3_bind_text(st, 5, r->mode, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, r->mx != NULL ? r->mx : "", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 7, r->policy != NULL ? r->policy : "", (int)r->policy_len, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			res = store_fail(s, st, error_r);
		else
			sqlite3_reset(st);
	}
	pthread_mutex_unlock(&s->mu);
	return res;
}

enum result mtasts_store_delete(struct mtasts_store *s, const char *domain, const char **error_r)
{
	pthread_mutex_lock(&s->mu);
	sqlite3_stmt *st = db_stmt(s->conn, delete_sql);
	enum result res = RESULT_OK;
	if (st == NULL) {
		res = store_fail(s, NULL, error_r);
	} else {
		sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			res = store_fail(s, st, error_r);
		else
			sqlite3_reset(st);
	}
	pthread_mutex_unlock(&s->mu);
	return res;
}

static void copy_text(char *out, size_t size, const unsigned char *t)
{
	snprintf(out, size, "%s", t != NULL ? (const char *)t : "");
}

enum result mtasts_store_each(struct mtasts_store *s, size_t limit, mtasts_store_row_fn *fn, void *arg,
			      const char **error_r)
{
	pthread_mutex_lock(&s->mu);
	sqlite3_stmt *st = db_stmt(s->conn, each_sql);
	enum result res = RESULT_OK;
	if (st == NULL) {
		res = store_fail(s, NULL, error_r);
		pthread_mutex_unlock(&s->mu);
		return res;
	}
	sqlite3_bind_int64(st, 1, limit > 0 ? (sqlite3_int64)limit : -1);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct mtasts_store_row r = {0};
		copy_text(r.domain, sizeof(r.domain), sqlite3_column_text(st, 0));
		copy_text(r.id, sizeof(r.id), sqlite3_column_text(st, 1));
		r.fetched = sqlite3_column_int64(st, 2);
		r.expires = sqlite3_column_int64(st, 3);
		copy_text(r.mode, sizeof(r.mode), sqlite3_column_text(st, 4));
		r.mx = (const char *)sqlite3_column_text(st, 5);
		r.policy = (const char *)sqlite3_column_text(st, 6);
		r.policy_len = (size_t)sqlite3_column_bytes(st, 6);
		if (r.mx == NULL)
			r.mx = "";
		if (r.policy == NULL)
			r.policy = "";
		if (!fn(arg, &r))
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		res = store_fail(s, st, error_r);
	else
		sqlite3_reset(st);
	pthread_mutex_unlock(&s->mu);
	return res;
}
