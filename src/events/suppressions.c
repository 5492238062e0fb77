/* suppressions.c — the suppression list in queue.db (suppressions.h). */
#include "events/suppressions.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"

const char suppressions_schema_sql[] =
	"CREATE TABLE suppressions("
	" id TEXT PRIMARY KEY,"
	" domain TEXT NOT NULL,"
	" email TEXT NOT NULL,"
	" origin INTEGER NOT NULL,"
	" source_id TEXT NOT NULL DEFAULT '',"
	" created_at INTEGER NOT NULL,"
	" UNIQUE(email, domain));";

const char *suppression_origin_str(enum suppression_origin o)
{
	static const char *const names[SUPPRESSION_ORIGIN_COUNT] = {"bounce", "complaint", "unsubscribe", "manual"};
	return (unsigned)o < SUPPRESSION_ORIGIN_COUNT ? names[o] : "manual";
}

bool suppression_origin_parse(const char *s, enum suppression_origin *o_r)
{
	for (int i = 0; i < SUPPRESSION_ORIGIN_COUNT; i++)
		if (strcmp(s, suppression_origin_str((enum suppression_origin)i)) == 0) {
			*o_r = (enum suppression_origin)i;
			return true;
		}
	return false;
}

static void lower_copy(char *dst, size_t size, const char *src)
{
	size_t i = 0;
	for (; src[i] != '\0' && i + 1 < size; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[i] = '\0';
}

static void row_read(sqlite3_stmt *st, struct suppression *s)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->id, sizeof(s->id), "%s", (const char *)sqlite3_column_text(st, 0));
	snprintf(s->domain, sizeof(s->domain), "%s", (const char *)sqlite3_column_text(st, 1));
	snprintf(s->email, sizeof(s->email), "%s", (const char *)sqlite3_column_text(st, 2));
	s->origin = (enum suppression_origin)sqlite3_column_int(st, 3);
	snprintf(s->source_id, sizeof(s->source_id), "%s", (const char *)sqlite3_column_text(st, 4));
	s->created_at = sqlite3_column_int64(st, 5);
}

#define SUPPRESSION_COLUMNS "id, domain, email, origin, source_id, created_at"

/* Runs st (bound) and reads its first row: 1, 0 or -1; st is reset. */
static int one_row(sqlite3_stmt *st, struct suppression *s_r)
{
	int rc = sqlite3_step(st), r = 0;
	if (rc == SQLITE_ROW) {
		row_read(st, s_r);
		r = 1;
	} else if (rc != SQLITE_DONE) {
		r = -1;
	}
	sqlite3_reset(st);
	return r;
}

int suppression_find(struct db *db, const char *domain, const char *email, struct suppression *s_r)
{
	char d[256], e[256];
	lower_copy(d, sizeof(d), domain);
	lower_copy(e, sizeof(e), email);
	/* the domain's own entry first, then one for every domain */
	sqlite3_stmt *st = db_stmt(db, "SELECT " SUPPRESSION_COLUMNS " FROM suppressions"
				       " WHERE email = ?1 AND domain IN (?2, '') ORDER BY domain = '' LIMIT 1");
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, e, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, d, -1, SQLITE_TRANSIENT);
	return one_row(st, s_r);
}

int suppression_add(struct db *db, const char *domain, const char *email, enum suppression_origin origin,
		    const char *source_id, int64_t now_ms, struct suppression *s_r, bool *existed_r)
{
	struct suppression s = {.origin = origin, .created_at = now_ms};
	lower_copy(s.domain, sizeof(s.domain), domain);
	lower_copy(s.email, sizeof(s.email), email);
	snprintf(s.source_id, sizeof(s.source_id), "%s", source_id != NULL ? source_id : "");
	*existed_r = false;
	sqlite3_stmt *st = db_stmt(db, "SELECT " SUPPRESSION_COLUMNS " FROM suppressions WHERE email = ?1 AND domain = ?2");
	if (st == NULL)
		return db_errcode(db);
	sqlite3_bind_text(st, 1, s.email, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, s.domain, -1, SQLITE_STATIC);
	int found = one_row(st, s_r);
	if (found < 0)
		return SQLITE_ERROR;
	if (found == 1) {
		*existed_r = true;
		return SQLITE_OK;
	}
	email_id_new(s.id);
	st = db_stmt(db, "INSERT INTO suppressions(" SUPPRESSION_COLUMNS ") VALUES(?1,?2,?3,?4,?5,?6)");
	if (st == NULL)
		return db_errcode(db);
	sqlite3_bind_text(st, 1, s.id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, s.domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, s.email, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, origin);
	sqlite3_bind_text(st, 5, s.source_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, now_ms);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return rc;
	*s_r = s;
	return SQLITE_OK;
}

int suppression_get(struct db *db, const char *id_or_email, struct suppression *s_r)
{
	char e[256];
	lower_copy(e, sizeof(e), id_or_email);
	sqlite3_stmt *st = db_stmt(db, "SELECT " SUPPRESSION_COLUMNS " FROM suppressions WHERE id = ?1 OR email = ?2"
				       " ORDER BY id = ?1 DESC, rowid LIMIT 1");
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, id_or_email, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, e, -1, SQLITE_TRANSIENT);
	return one_row(st, s_r);
}

int suppression_remove(struct db *db, const char *id_or_email)
{
	char e[256];
	lower_copy(e, sizeof(e), id_or_email);
	sqlite3_stmt *st = db_stmt(db, "DELETE FROM suppressions WHERE id = ?1 OR email = ?2");
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, id_or_email, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, e, -1, SQLITE_TRANSIENT);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? sqlite3_changes(db_sqlite(db)) : -1;
}

int suppression_list(struct db *db, unsigned limit, const char *after, const char *before, int origin,
		     struct suppression **s_r, size_t *count_r, bool *has_more_r)
{
	if (limit > 1000)
		limit = 1000; /* the callers ask for at most 100; the arithmetic below stays small */
	*s_r = NULL, *count_r = 0, *has_more_r = false;
	const char *cursor = after != NULL ? after : before;
	int64_t row = 0;
	if (cursor != NULL) {
		sqlite3_stmt *c = db_stmt(db, "SELECT rowid FROM suppressions WHERE id = ?1");
		if (c == NULL)
			return -1;
		sqlite3_bind_text(c, 1, cursor, -1, SQLITE_STATIC);
		int rc = sqlite3_step(c);
		row = rc == SQLITE_ROW ? sqlite3_column_int64(c, 0) : 0;
		sqlite3_reset(c);
		if (rc != SQLITE_ROW)
			return rc == SQLITE_DONE ? 0 : -1;
	}
	const char *sql = after != NULL ? "SELECT " SUPPRESSION_COLUMNS " FROM suppressions WHERE rowid < ?1"
					  " AND (?2 < 0 OR origin = ?2) ORDER BY rowid DESC LIMIT ?3"
			: before != NULL ? "SELECT " SUPPRESSION_COLUMNS " FROM suppressions WHERE rowid > ?1"
					   " AND (?2 < 0 OR origin = ?2) ORDER BY rowid ASC LIMIT ?3"
					 : "SELECT " SUPPRESSION_COLUMNS " FROM suppressions WHERE (?2 < 0 OR origin = ?2)"
					   " ORDER BY rowid DESC LIMIT ?3";
	sqlite3_stmt *st = db_stmt(db, sql);
	struct suppression *v = st != NULL ? calloc(limit + 1, sizeof(*v)) : NULL;
	if (v == NULL) {
		if (st != NULL)
			sqlite3_reset(st);
		return -1;
	}
	if (cursor != NULL)
		sqlite3_bind_int64(st, 1, row);
	sqlite3_bind_int(st, 2, origin);
	sqlite3_bind_int(st, 3, (int)limit + 1);
	size_t n = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && n <= limit)
		row_read(st, &v[n++]);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		free(v);
		return -1;
	}
	if (n > limit) {
		*has_more_r = true;
		n--;
	}
	if (before != NULL)
		for (size_t i = 0; i < n / 2; i++) {
			struct suppression t = v[i];
			v[i] = v[n - 1 - i];
			v[n - 1 - i] = t;
		}
	*s_r = v, *count_r = n;
	return 1;
}
