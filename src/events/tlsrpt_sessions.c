/* tlsrpt_sessions.c — TLS session outcomes (RFC 8460): the merging list and the counters in queue.db. */
#include "events/tlsrpt_sessions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "db/db.h"

const char tlsrpt_sessions_schema_sql[] =
	"CREATE TABLE tlsrpt_counts("
	" period INTEGER NOT NULL,"
	" policy_domain TEXT NOT NULL,"
	" policy_type INTEGER NOT NULL,"
	" policy_strings TEXT NOT NULL,"
	" mx_hosts TEXT NOT NULL,"
	" result INTEGER NOT NULL,"
	" receiving_mx TEXT NOT NULL,"
	" receiving_ip TEXT NOT NULL,"
	" sending_ip TEXT NOT NULL,"
	" additional TEXT NOT NULL,"
	" count INTEGER NOT NULL,"
	" PRIMARY KEY(period, policy_domain, policy_type, policy_strings, mx_hosts, result, receiving_mx,"
	"  receiving_ip, sending_ip, additional));"
	/* a report tried and not yet taken everywhere (RFC 8460 §5.3: retried, then dropped) */
	"CREATE TABLE tlsrpt_attempts("
	" period INTEGER NOT NULL,"
	" policy_domain TEXT NOT NULL,"
	" attempts INTEGER NOT NULL,"
	" next_attempt INTEGER NOT NULL,"
	" done_rua TEXT NOT NULL,"
	" PRIMARY KEY(period, policy_domain));";

const char *tlsrpt_policy_type_str(enum tlsrpt_policy_type t)
{
	switch (t) {
	case TLSRPT_POLICY_NONE: return "no-policy-found";
	case TLSRPT_POLICY_TLSA: return "tlsa";
	case TLSRPT_POLICY_STS: return "sts";
	case TLSRPT_POLICY_COUNT: break;
	}
	return "no-policy-found";
}

const char *tlsrpt_result_str(enum tlsrpt_result r)
{
	static const char *const names[TLSRPT_RESULT_COUNT] = {
		"success",
		"starttls-not-supported",
		"certificate-host-mismatch",
		"certificate-expired",
		"certificate-not-trusted",
		"validation-failure",
		"tlsa-invalid",
		"dnssec-invalid",
		"dane-required",
		"sts-policy-fetch-error",
		"sts-policy-invalid",
		"sts-webpki-invalid",
	};
	return (unsigned)r < TLSRPT_RESULT_COUNT ? names[r] : "validation-failure";
}

/* ---- the list ---- */

/* A copy of s cut to max octets, control characters (and '\n', the list separator) as '?': the
 * values come from DNS and from the peer, and end up in JSON and logs. */
static char *sess_strdup(const char *s, size_t max)
{
	if (s == NULL)
		s = "";
	size_t n = strnlen(s, max);
	char *d = malloc(n + 1);
	if (d == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		d[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	d[n] = '\0';
	return d;
}

/* The lines of a policy joined by '\n', each cleaned as above; at most TLSRPT_POLICY_LINES_MAX
 * lines and TLSRPT_POLICY_TEXT_MAX octets (whole lines only). */
static char *sess_join(const char *const *v, size_t n)
{
	size_t total = 0, used = 0;
	for (size_t i = 0; i < n && i < TLSRPT_POLICY_LINES_MAX; i++)
		total += strnlen(v[i] != NULL ? v[i] : "", TLSRPT_POLICY_TEXT_MAX) + 1;
	if (total > TLSRPT_POLICY_TEXT_MAX)
		total = TLSRPT_POLICY_TEXT_MAX;
	char *d = malloc(total + 1);
	if (d == NULL)
		return NULL;
	for (size_t i = 0; i < n && i < TLSRPT_POLICY_LINES_MAX; i++) {
		char *line = sess_strdup(v[i], TLSRPT_POLICY_TEXT_MAX);
		if (line == NULL) {
			free(d);
			return NULL;
		}
		size_t len = strlen(line);
		if (used + (used > 0) + len > total) {
			free(line);
			break;
		}
		if (used > 0)
			d[used++] = '\n';
		memcpy(d + used, line, len);
		used += len;
		free(line);
	}
	d[used] = '\0';
	return d;
}

static void sess_free(struct tlsrpt_session *s)
{
	free(s->policy_domain);
	free(s->policy_strings);
	free(s->mx_hosts);
	free(s->receiving_mx);
	free(s->receiving_ip);
	free(s->sending_ip);
	free(s->additional);
}

static bool sess_equal(const struct tlsrpt_session *a, const struct tlsrpt_session *b)
{
	/* merged within the same minute only, so that a batch across a period's end keeps both sides */
	return a->time / 60 == b->time / 60 && a->policy_type == b->policy_type && a->result == b->result &&
	       strcmp(a->policy_domain, b->policy_domain) == 0 && strcmp(a->policy_strings, b->policy_strings) == 0 &&
	       strcmp(a->mx_hosts, b->mx_hosts) == 0 && strcmp(a->receiving_mx, b->receiving_mx) == 0 &&
	       strcmp(a->receiving_ip, b->receiving_ip) == 0 && strcmp(a->sending_ip, b->sending_ip) == 0 &&
	       strcmp(a->additional, b->additional) == 0;
}

/* Takes s (its strings) into l, merged with an equal entry when there is one. */
static bool sess_take(struct tlsrpt_sessions *l, struct tlsrpt_session *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (sess_equal(&l->v[i], s)) {
			l->v[i].count += s->count;
			sess_free(s);
			return true;
		}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4;
		struct tlsrpt_session *g = realloc(l->v, cap * sizeof(*g));
		if (g == NULL) {
			sess_free(s);
			return false;
		}
		l->v = g;
		l->cap = cap;
	}
	l->v[l->n++] = *s;
	return true;
}

bool tlsrpt_sessions_add(struct tlsrpt_sessions *l, const struct tlsrpt_outcome *o)
{
	if (o->policy_domain == NULL || o->policy_domain[0] == '\0' || (unsigned)o->policy_type >= TLSRPT_POLICY_COUNT ||
	    (unsigned)o->result >= TLSRPT_RESULT_COUNT)
		return false;
	bool ok = o->result != TLSRPT_RESULT_SUCCESS;
	struct tlsrpt_session s = {
		.time = o->time,
		.policy_domain = sess_strdup(o->policy_domain, TLSRPT_FIELD_MAX),
		.policy_type = o->policy_type,
		.policy_strings = sess_join(o->policy_strings, o->policy_string_count),
		.mx_hosts = sess_join(o->mx_hosts, o->mx_host_count),
		.result = o->result,
		/* RFC 8460 §4.4: the details are of failures; a success counts in the summary only */
		.receiving_mx = sess_strdup(ok ? o->receiving_mx : NULL, TLSRPT_FIELD_MAX),
		.receiving_ip = sess_strdup(ok ? o->receiving_ip : NULL, TLSRPT_FIELD_MAX),
		.sending_ip = sess_strdup(ok ? o->sending_ip : NULL, TLSRPT_FIELD_MAX),
		.additional = sess_strdup(ok ? o->additional : NULL, TLSRPT_FIELD_MAX),
		.count = 1,
	};
	if (s.policy_domain == NULL || s.policy_strings == NULL || s.mx_hosts == NULL || s.receiving_mx == NULL ||
	    s.receiving_ip == NULL || s.sending_ip == NULL || s.additional == NULL) {
		sess_free(&s);
		return false;
	}
	/* host names compare case-insensitively (RFC 4343): kept in lower case */
	for (char *p = s.policy_domain; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return sess_take(l, &s);
}

bool tlsrpt_sessions_merge(struct tlsrpt_sessions *l, const struct tlsrpt_sessions *from)
{
	for (size_t i = 0; i < from->n; i++) {
		const struct tlsrpt_session *f = &from->v[i];
		struct tlsrpt_session s = *f;
		s.policy_domain = strdup(f->policy_domain);
		s.policy_strings = strdup(f->policy_strings);
		s.mx_hosts = strdup(f->mx_hosts);
		s.receiving_mx = strdup(f->receiving_mx);
		s.receiving_ip = strdup(f->receiving_ip);
		s.sending_ip = strdup(f->sending_ip);
		s.additional = strdup(f->additional);
		if (s.policy_domain == NULL || s.policy_strings == NULL || s.mx_hosts == NULL || s.receiving_mx == NULL ||
		    s.receiving_ip == NULL || s.sending_ip == NULL || s.additional == NULL) {
			sess_free(&s);
			return false;
		}
		if (!sess_take(l, &s))
			return false;
	}
	return true;
}

void tlsrpt_sessions_clear(struct tlsrpt_sessions *l)
{
	for (size_t i = 0; i < l->n; i++)
		sess_free(&l->v[i]);
	l->n = 0;
}

void tlsrpt_sessions_free(struct tlsrpt_sessions *l)
{
	tlsrpt_sessions_clear(l);
	free(l->v);
	l->v = NULL;
	l->cap = 0;
}

/* ---- the counters ---- */

static const char store_sql[] =
	"INSERT INTO tlsrpt_counts(period, policy_domain, policy_type, policy_strings, mx_hosts, result,"
	" receiving_mx, receiving_ip, sending_ip, additional, count) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
	" ON CONFLICT(period, policy_domain, policy_type, policy_strings, mx_hosts, result, receiving_mx,"
	" receiving_ip, sending_ip, additional) DO UPDATE SET count = count + excluded.count";

static int step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static void bind_row(sqlite3_stmt *st, int64_t period, const struct tlsrpt_session *s)
{
	sqlite3_bind_int64(st, 1, period);
	sqlite3_bind_text(st, 2, s->policy_domain, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, (int)s->policy_type);
	sqlite3_bind_text(st, 4, s->policy_strings, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, s->mx_hosts, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, (int)s->result);
	sqlite3_bind_text(st, 7, s->receiving_mx, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, s->receiving_ip, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, s->sending_ip, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 10, s->additional, -1, SQLITE_STATIC);
}

int tlsrpt_sessions_store(struct db *db, const struct tlsrpt_sessions *l, unsigned period)
{
	if (l == NULL || l->n == 0)
		return SQLITE_OK;
	sqlite3_stmt *st = db_stmt(db, store_sql);
	if (st == NULL)
		return db_errcode(db);
	if (period == 0)
		period = 86400;
	for (size_t i = 0; i < l->n; i++) {
		const struct tlsrpt_session *s = &l->v[i];
		bind_row(st, s->time / (int64_t)period * (int64_t)period, s);
		sqlite3_bind_int64(st, 11, (int64_t)s->count);
		int rc = step_done(st);
		if (rc != SQLITE_OK)
			return rc;
	}
	return SQLITE_OK;
}

void tlsrpt_aggregate_free(struct tlsrpt_aggregate *a)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < a->n; i++)
		sess_free(&a->rows[i]);
	free(a->rows);
	free(a->policy_domain);
	free(a->done_rua);
	memset(a, 0, sizeof(*a));
}

static char *col_dup(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	return strdup(t != NULL ? (const char *)t : "");
}

static const char due_sql[] =
	"SELECT c.period, c.policy_domain, COALESCE(a.attempts, 0), COALESCE(a.next_attempt, 0), COALESCE(a.done_rua, '')"
	" FROM (SELECT DISTINCT period, policy_domain FROM tlsrpt_counts WHERE period < ?1) c"
	" LEFT JOIN tlsrpt_attempts a ON a.period = c.period AND a.policy_domain = c.policy_domain"
	" WHERE COALESCE(a.next_attempt, 0) <= ?2 ORDER BY c.period, c.policy_domain LIMIT ?3";
static const char rows_sql[] =
	"SELECT policy_type, policy_strings, mx_hosts, result, receiving_mx, receiving_ip, sending_ip, additional, count"
	" FROM tlsrpt_counts WHERE period = ?1 AND policy_domain = ?2 ORDER BY result, rowid LIMIT ?3";

static int read_rows(struct db *db, struct tlsrpt_aggregate *a)
{
	sqlite3_stmt *st = db_stmt(db, rows_sql);
	if (st == NULL)
		return db_errcode(db);
	sqlite3_bind_int64(st, 1, a->begin);
	sqlite3_bind_text(st, 2, a->policy_domain, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 3, TLSRPT_AGGREGATE_ROWS_MAX);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (a->n % 16 == 0) {
			struct tlsrpt_session *g = realloc(a->rows, (a->n + 16) * sizeof(*g));
			if (g == NULL) {
				rc = SQLITE_NOMEM;
				break;
			}
			a->rows = g;
		}
		struct tlsrpt_session *s = &a->rows[a->n];
		int pt = sqlite3_column_int(st, 0), res = sqlite3_column_int(st, 3);
		*s = (struct tlsrpt_session){
			.time = a->begin,
			.policy_domain = strdup(a->policy_domain),
			.policy_type = (unsigned)pt < TLSRPT_POLICY_COUNT ? (enum tlsrpt_policy_type)pt : TLSRPT_POLICY_NONE,
			.policy_strings = col_dup(st, 1),
			.mx_hosts = col_dup(st, 2),
			.result = (unsigned)res < TLSRPT_RESULT_COUNT ? (enum tlsrpt_result)res : TLSRPT_RESULT_VALIDATION_FAILURE,
			.receiving_mx = col_dup(st, 4),
			.receiving_ip = col_dup(st, 5),
			.sending_ip = col_dup(st, 6),
			.additional = col_dup(st, 7),
			.count = (uint64_t)sqlite3_column_int64(st, 8),
		};
		a->n++;
		if (s->policy_domain == NULL || s->policy_strings == NULL || s->mx_hosts == NULL || s->receiving_mx == NULL ||
		    s->receiving_ip == NULL || s->sending_ip == NULL || s->additional == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int tlsrpt_sessions_due(struct db *db, int64_t before, int64_t now, size_t max, struct tlsrpt_aggregate **out_r,
			size_t *n_r)
{
	*out_r = NULL;
	*n_r = 0;
	sqlite3 *sq = db_sqlite(db);
	int rc = sqlite3_exec(sq, "BEGIN", NULL, NULL, NULL); /* one snapshot for the list and its rows */
	if (rc != SQLITE_OK)
		return rc;
	struct tlsrpt_aggregate *v = calloc(max > 0 ? max : 1, sizeof(*v));
	size_t n = 0;
	sqlite3_stmt *st = v != NULL ? db_stmt(db, due_sql) : NULL;
	if (st == NULL) {
		rc = v == NULL ? SQLITE_NOMEM : db_errcode(db);
	} else {
		sqlite3_bind_int64(st, 1, before);
		sqlite3_bind_int64(st, 2, now);
		sqlite3_bind_int64(st, 3, (int64_t)max);
		while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
			struct tlsrpt_aggregate *a = &v[n++];
			a->begin = sqlite3_column_int64(st, 0);
			a->policy_domain = col_dup(st, 1);
			a->attempts = (unsigned)sqlite3_column_int(st, 2);
			a->next_attempt = sqlite3_column_int64(st, 3);
			a->done_rua = col_dup(st, 4);
			if (a->policy_domain == NULL || a->done_rua == NULL) {
				rc = SQLITE_NOMEM;
				break;
			}
		}
		sqlite3_reset(st);
		if (rc == SQLITE_DONE || rc == SQLITE_ROW)
			rc = SQLITE_OK;
		for (size_t i = 0; i < n && rc == SQLITE_OK; i++)
			rc = read_rows(db, &v[i]);
	}
	sqlite3_exec(sq, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		for (size_t i = 0; i < n; i++)
			tlsrpt_aggregate_free(&v[i]);
		free(v);
		return rc;
	}
	*out_r = v;
	*n_r = n;
	return SQLITE_OK;
}

static const char sub_sql[] =
	"UPDATE tlsrpt_counts SET count = count - ?11 WHERE period = ?1 AND policy_domain = ?2 AND policy_type = ?3"
	" AND policy_strings = ?4 AND mx_hosts = ?5 AND result = ?6 AND receiving_mx = ?7 AND receiving_ip = ?8"
	" AND sending_ip = ?9 AND additional = ?10";
static const char gone_sql[] = "DELETE FROM tlsrpt_counts WHERE period = ?1 AND policy_domain = ?2 AND count <= 0";
static const char attempt_del_sql[] = "DELETE FROM tlsrpt_attempts WHERE period = ?1 AND policy_domain = ?2";

int tlsrpt_sessions_delete(struct db *db, const struct tlsrpt_aggregate *a)
{
	sqlite3 *sq = db_sqlite(db);
	int rc = sqlite3_exec(sq, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	sqlite3_stmt *st;
	for (size_t i = 0; i < a->n && rc == SQLITE_OK; i++) {
		if ((st = db_stmt(db, sub_sql)) == NULL) {
			rc = db_errcode(db);
			break;
		}
		bind_row(st, a->begin, &a->rows[i]);
		sqlite3_bind_int64(st, 11, (int64_t)a->rows[i].count);
		rc = step_done(st);
	}
	const char *const after[] = {gone_sql, attempt_del_sql};
	for (size_t k = 0; k < 2 && rc == SQLITE_OK; k++) {
		if ((st = db_stmt(db, after[k])) == NULL) {
			rc = db_errcode(db);
			break;
		}
		sqlite3_bind_int64(st, 1, a->begin);
		sqlite3_bind_text(st, 2, a->policy_domain, -1, SQLITE_STATIC);
		rc = step_done(st);
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(sq, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK && !sqlite3_get_autocommit(sq))
		sqlite3_exec(sq, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static const char retry_sql[] =
	"INSERT INTO tlsrpt_attempts(period, policy_domain, attempts, next_attempt, done_rua) VALUES(?1, ?2, ?3, ?4, ?5)"
	" ON CONFLICT(period, policy_domain) DO UPDATE SET attempts = excluded.attempts,"
	" next_attempt = excluded.next_attempt, done_rua = excluded.done_rua";

int tlsrpt_sessions_retry(struct db *db, const struct tlsrpt_aggregate *a, int64_t next, const char *done_rua)
{
	sqlite3_stmt *st = db_stmt(db, retry_sql);
	if (st == NULL)
		return db_errcode(db);
	sqlite3_bind_int64(st, 1, a->begin);
	sqlite3_bind_text(st, 2, a->policy_domain, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, (int)a->attempts + 1);
	sqlite3_bind_int64(st, 4, next);
	sqlite3_bind_text(st, 5, done_rua != NULL ? done_rua : "", -1, SQLITE_STATIC);
	return step_done(st);
}

int tlsrpt_sessions_pending(struct db *db, uint64_t *count_r)
{
	int64_t v = 0;
	int rc = db_int64(db, "SELECT COALESCE(SUM(count), 0) FROM tlsrpt_counts", &v);
	*count_r = rc == SQLITE_OK || rc == SQLITE_DONE ? (uint64_t)v : 0;
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}
