/* report_store.c — DATA_DIR/reports.db: the rows of DMARC aggregate reporting, added as messages
 * are evaluated and taken, grouped into reports, once a period (report_store.h). */
#include "report/report_store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "db/db.h"

struct report_store {
	struct db *conn; /* used under mu only: one thread at a time (db.h) */
	sqlite3 *db;     /* db_sqlite(conn) */
	pthread_mutex_t mu;
	char error[DB_ERROR_SIZE]; /* where *error_r points after a database error */
};

/* Version 1. grp is dmarc_report_row_key (it covers the policy domain and the rua list), so that a
 * report's records are its GROUP BY and deleting a taken record is one indexed DELETE. The messages
 * of one record within one UTC hour share a table row (count, the first and the latest time): a busy
 * server keeps a row per distinct record and hour, not per message, and a take whose end is a whole
 * hour never finds a row that straddles it. The policy fields of a shared row are those of its last
 * recorded message. Enumerations are kept as the words of their _str functions, rua as one mailbox
 * per line, the DKIM results as (domain, selector, result) NUL-terminated strings in a BLOB. */
static const char report_schema_sql[] =
	"CREATE TABLE IF NOT EXISTS dmarc_rows("
	" id INTEGER PRIMARY KEY AUTOINCREMENT," /* never reused: first_id names one report for good */
	" grp TEXT NOT NULL,"
	" hour INTEGER NOT NULL,"       /* time / 3600 of its messages */
	" first_time INTEGER NOT NULL," /* its first message's time; time is the latest one's */
	" policy_domain TEXT NOT NULL,"
	" rua TEXT NOT NULL,"
	" time INTEGER NOT NULL,"
	" count INTEGER NOT NULL,"
	" source_ip TEXT NOT NULL,"
	" header_from TEXT NOT NULL,"
	" envelope_from TEXT NOT NULL,"
	" envelope_to TEXT NOT NULL,"
	" org_domain TEXT NOT NULL,"
	" p TEXT NOT NULL, sp TEXT NOT NULL, np TEXT NOT NULL,"
	" adkim TEXT NOT NULL, aspf TEXT NOT NULL,"
	" testing INTEGER NOT NULL, psd TEXT NOT NULL, fo INTEGER NOT NULL,"
	" policy TEXT NOT NULL, disposition TEXT NOT NULL, override TEXT NOT NULL,"
	" dkim_aligned INTEGER NOT NULL, spf_aligned INTEGER NOT NULL,"
	" spf_domain TEXT NOT NULL, spf_scope TEXT NOT NULL, spf_result TEXT NOT NULL,"
	" dkim BLOB NOT NULL);"
	"CREATE UNIQUE INDEX IF NOT EXISTS dmarc_rows_grp ON dmarc_rows(grp, hour);"
	"CREATE INDEX IF NOT EXISTS dmarc_rows_domain ON dmarc_rows(policy_domain, time);";

/* Version 2: the MTA-STS policy cache (RFC 8461 §3.3) of outbound delivery, kept here because it is
 * the store of what delivery learns about other domains' transport security (TLS-RPT's rows will
 * join it). delivery/mtasts_store.c owns the rows; this file only creates the table. Texts as the
 * policy host sent them, so that a later reader parses them again rather than trusting a column. */
static const char report_schema_sts_sql[] =
	"CREATE TABLE IF NOT EXISTS mta_sts_policies("
	" domain TEXT PRIMARY KEY,"     /* the policy domain, lower case */
	" id TEXT NOT NULL,"            /* the _mta-sts TXT id the policy was fetched for */
	" fetched INTEGER NOT NULL,"    /* unix seconds */
	" expires INTEGER NOT NULL,"    /* fetched + max_age (capped at 31557600) */
	" mode TEXT NOT NULL,"          /* enforce | testing */
	" mx TEXT NOT NULL,"            /* the mx patterns, one per line */
	" policy TEXT NOT NULL);";      /* the policy text as fetched */

/* steps[v] brings version v to v + 1 (db.h); a new version is a new line at the end */
static const char *const report_schema_steps[] = { report_schema_sql, report_schema_sts_sql };
static const struct db_schema report_schema = {
	report_schema_steps, sizeof(report_schema_steps) / sizeof(report_schema_steps[0]),
};

#define ROW_COLUMNS \
	"policy_domain, rua, time, count, source_ip, header_from, envelope_from, envelope_to, org_domain," \
	" p, sp, np, adkim, aspf, testing, psd, fo, policy, disposition, override, dkim_aligned, spf_aligned," \
	" spf_domain, spf_scope, spf_result, dkim"

/* ?4 is the time: the first and the latest of a new row */
static const char report_insert_sql[] =
	"INSERT INTO dmarc_rows(grp, hour, first_time, " ROW_COLUMNS ") VALUES(?1, ?28, ?4, ?2, ?3, ?4, ?5, ?6, ?7,"
	" ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27)"
	" ON CONFLICT(grp, hour) DO UPDATE SET count = count + excluded.count, time = MAX(time, excluded.time),"
	" first_time = MIN(first_time, excluded.first_time), org_domain = excluded.org_domain, p = excluded.p,"
	" sp = excluded.sp, np = excluded.np, adkim = excluded.adkim, aspf = excluded.aspf,"
	" testing = excluded.testing, psd = excluded.psd, fo = excluded.fo, policy = excluded.policy,"
	" disposition = excluded.disposition, override = excluded.override";

/* ---- opening ---- */

static const char *report_sqlite_reason(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_CANTOPEN: return "cannot open " REPORT_STORE_DB_NAME " (does the data directory exist, and may we write to it?)";
	case SQLITE_PERM:
	case SQLITE_READONLY: return REPORT_STORE_DB_NAME " is read-only for this user";
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB: return REPORT_STORE_DB_NAME " is corrupt or not a SQLite database";
	case SQLITE_BUSY:
	case SQLITE_LOCKED: return REPORT_STORE_DB_NAME " stayed locked by another process";
	case SQLITE_FULL: return "disk full while writing " REPORT_STORE_DB_NAME;
	case SQLITE_IOERR: return "I/O error on " REPORT_STORE_DB_NAME;
	case SQLITE_NOMEM: return "out of memory";
	}
	return "database error on " REPORT_STORE_DB_NAME;
}

static const char *store_fail(struct report_store *s, int rc)
{
	snprintf(s->error, sizeof(s->error), "%s (%s)", report_sqlite_reason(rc), sqlite3_errmsg(s->db));
	return s->error;
}

struct db *report_store_db_open(const char *data_dir, const char *probe_sql, char *error_r, size_t error_size)
{
	/* mode 0600 like the queue: the rows name senders and recipients. FULL: a batch the caller was
	 * told is stored survives a power failure too (and a cached MTA-STS policy, RFC 8461 §10.2) */
	static const struct db_opts opts = {
		.create_mode = 0600,
		.sync = DB_SYNC_FULL,
		.schema = &report_schema,
	};
	char *path = NULL;
	if (asprintf(&path, "%s/%s", data_dir, REPORT_STORE_DB_NAME) < 0) {
		snprintf(error_r, error_size, "out of memory");
		return NULL;
	}
	struct db *conn = db_open(path, &opts, error_r, error_size);
	free(path);
	if (conn != NULL && db_stmt(conn, probe_sql) == NULL) {
		snprintf(error_r, error_size, "%s: %s", REPORT_STORE_DB_NAME, sqlite3_errmsg(db_sqlite(conn)));
		db_close(conn);
		conn = NULL;
	}
	return conn;
}

struct report_store *report_store_open(const char *data_dir, const char **error_r)
{
	/* s is gone when this fails: the sentence stays here until the next failed open on this thread */
	static _Thread_local char open_error[DB_ERROR_SIZE];
	struct report_store *s = calloc(1, sizeof(*s));
	if (s == NULL || pthread_mutex_init(&s->mu, NULL) != 0) {
		free(s);
		*error_r = "out of memory";
		return NULL;
	}
	/* the insert prepared now: a file whose table does not fit is refused at open, not at the first add */
	s->conn = report_store_db_open(data_dir, report_insert_sql, open_error, sizeof(open_error));
	if (s->conn == NULL) {
		*error_r = open_error;
		pthread_mutex_destroy(&s->mu);
		free(s);
		return NULL;
	}
	s->db = db_sqlite(s->conn);
	return s;
}

void report_store_close(struct report_store *s)
{
	if (s == NULL)
		return;
	db_close(s->conn);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* ---- words and lists ---- */

typedef const char *word_fn(int v);

static const char *policy_word(int v) { return dmarc_policy_str((enum dmarc_policy)v); }
static const char *align_word(int v) { return dmarc_align_str((enum dmarc_align)v); }
static const char *psd_word(int v) { return dmarc_psd_str((enum dmarc_psd)v); }
static const char *override_word(int v) { return dmarc_report_override_str((enum dmarc_report_override)v); }
static const char *scope_word(int v) { return dmarc_report_scope_str((enum dmarc_report_scope)v); }
static const char *spf_word(int v) { return spf_result_str((enum spf_result)v); }
static const char *dkim_word(int v) { return dkim_result_str((enum dkim_result)v); }

/* The value 0..max whose word is w; 0 (each enum's first, harmless value) for a word not known,
 * which only a file edited by hand holds. */
static int word_value(word_fn *fn, int max, const char *w)
{
	for (int v = 0; w != NULL && v <= max; v++)
		if (strcmp(fn(v), w) == 0)
			return v;
	return 0;
}

static void copy_field(char *field, size_t size, const unsigned char *s)
{
	size_t n = s != NULL ? strnlen((const char *)s, size - 1) : 0;
	if (n > 0)
		memcpy(field, s, n);
	field[n] = '\0';
}

/* The rua list as one mailbox per line (dmarc_report_row_check keeps control characters out). */
static char *rua_join(const struct dmarc_report_row *r)
{
	size_t len = 0;
	for (size_t i = 0; i < r->rua_count; i++)
		len += strlen(r->rua[i]) + 1;
	char *s = malloc(len + 1), *p = s;
	if (s == NULL)
		return NULL;
	for (size_t i = 0; i < r->rua_count; i++) {
		size_t n = strlen(r->rua[i]);
		memcpy(p, r->rua[i], n);
		p += n;
		*p++ = '\n';
	}
	*p = '\0';
	return s;
}

static void rua_split(const char *text, struct dmarc_report_row *r)
{
	r->rua_count = 0;
	while (text != NULL && *text != '\0' && r->rua_count < DMARC_REPORT_RUA_MAX) {
		const char *nl = strchr(text, '\n');
		size_t n = nl != NULL ? (size_t)(nl - text) : strlen(text);
		if (n > 0 && n < DMARC_REPORT_ADDR_SIZE) {
			memcpy(r->rua[r->rua_count], text, n);
			r->rua[r->rua_count++][n] = '\0';
		}
		text += n + (nl != NULL);
	}
}

/* The DKIM results as NUL-terminated domain, selector, result word; *len_r octets. */
static size_t dkim_pack(const struct dmarc_report_row *r, char *out, size_t size)
{
	size_t o = 0;
	for (size_t i = 0; i < r->dkim_count; i++) {
		const char *f[3] = { r->dkim[i].domain, r->dkim[i].selector, dkim_result_str(r->dkim[i].result) };
		for (size_t j = 0; j < 3; j++) {
			size_t n = strlen(f[j]) + 1;
			if (o + n > size)
				return o;
			memcpy(out + o, f[j], n);
			o += n;
		}
	}
	return o;
}

static void dkim_unpack(const unsigned char *b, size_t len, struct dmarc_report_row *r)
{
	size_t o = 0;
	r->dkim_count = 0;
	while (o < len && r->dkim_count < DMARC_REPORT_DKIM_MAX) {
		const unsigned char *f[3];
		for (size_t j = 0; j < 3; j++) {
			const unsigned char *nul = o < len ? memchr(b + o, '\0', len - o) : NULL;
			if (nul == NULL)
				return; /* a BLOB cut short: what came before stays */
			f[j] = b + o;
			o = (size_t)(nul - b) + 1;
		}
		struct dmarc_report_dkim *d = &r->dkim[r->dkim_count++];
		copy_field(d->domain, sizeof(d->domain), f[0]);
		copy_field(d->selector, sizeof(d->selector), f[1]);
		d->result = (enum dkim_result)word_value(dkim_word, DKIM_RESULT_PERMERROR, (const char *)f[2]);
	}
}

/* ---- adding ---- */

static int insert_row(struct report_store *s, const struct dmarc_report_row *r)
{
	sqlite3_stmt *st = db_stmt(s->conn, report_insert_sql);
	char key[DMARC_REPORT_KEY_SIZE];
	char dkim[DMARC_REPORT_DKIM_MAX * (2 * DNS_HOST_SIZE + 16)];
	if (st == NULL)
		return db_errcode(s->conn);
	char *rua = rua_join(r);
	if (rua == NULL)
		return SQLITE_NOMEM;
	dmarc_report_row_key(r, key);
	const struct dmarc_report_policy *p = &r->published;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, r->policy_domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, rua, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, r->time);
	sqlite3_bind_int64(st, 5, r->count);
	sqlite3_bind_text(st, 6, r->source_ip, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, r->header_from, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, r->envelope_from, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, r->envelope_to, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 10, r->org_domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 11, dmarc_policy_str(p->p), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 12, dmarc_policy_str(p->sp), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 13, dmarc_policy_str(p->np), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 14, dmarc_align_str(p->adkim), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 15, dmarc_align_str(p->aspf), -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 16, p->testing);
	sqlite3_bind_text(st, 17, dmarc_psd_str(p->psd), -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 18, (int)p->fo);
	sqlite3_bind_text(st, 19, dmarc_policy_str(r->policy), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 20, dmarc_policy_str(r->disposition), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 21, dmarc_report_override_str(r->override), -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 22, r->dkim_aligned);
	sqlite3_bind_int(st, 23, r->spf_aligned);
	sqlite3_bind_text(st, 24, r->spf_domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 25, dmarc_report_scope_str(r->spf_scope), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 26, spf_result_str(r->spf_result), -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 27, dkim, (int)dkim_pack(r, dkim, sizeof(dkim)), SQLITE_STATIC);
	/* floor division: the hours before 1970 stay whole too */
	sqlite3_bind_int64(st, 28, r->time >= 0 ? r->time / 3600 : -((-r->time + 3599) / 3600));
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	free(rua);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

enum result report_store_add(struct report_store *s, const struct dmarc_report_row *rows, size_t n,
			     const char **error_r)
{
	for (size_t i = 0; i < n; i++)
		if (dmarc_report_row_check(&rows[i], error_r) != DMARC_REPORT_OK)
			return RESULT_PERMFAIL;
	if (n == 0)
		return RESULT_OK;
	pthread_mutex_lock(&s->mu);
	int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	for (size_t i = 0; rc == SQLITE_OK && i < n; i++)
		rc = insert_row(s, &rows[i]);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		*error_r = store_fail(s, rc);
		if (!sqlite3_get_autocommit(s->db))
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	}
	pthread_mutex_unlock(&s->mu);
	return rc == SQLITE_OK ? RESULT_OK : RESULT_TEMPFAIL;
}

/* ---- taking ---- */

/* The (policy domain, rua list) sets with rows to take, oldest first. */
struct take_set {
	char *policy_domain, *rua;
	int64_t begin;
};

static const char take_sets_sql[] =
	"SELECT policy_domain, rua, MIN(first_time) FROM dmarc_rows WHERE time < ?1 AND id <= ?2"
	" GROUP BY policy_domain, rua ORDER BY MIN(id)";

/* One record per grp: the sums, and every field from the group's latest row (the key fields are the
 * same in all its rows; the policy and org domain are the latest ones). */
static const char take_records_sql[] =
	"SELECT g.n, g.first, g.grp, " ROW_COLUMNS " FROM"
	" (SELECT grp, SUM(count) AS n, MIN(id) AS first, MAX(id) AS last FROM dmarc_rows"
	"  WHERE policy_domain = ?1 AND rua = ?2 AND time < ?3 AND id <= ?4"
	"  GROUP BY grp ORDER BY first LIMIT ?5) AS g"
	" JOIN dmarc_rows AS r ON r.id = g.last ORDER BY g.first";

static const char take_delete_sql[] = "DELETE FROM dmarc_rows WHERE grp = ?1 AND time < ?2 AND id <= ?3";

static void take_sets_free(struct take_set *sets, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(sets[i].policy_domain);
		free(sets[i].rua);
	}
	free(sets);
}

static int take_sets(struct report_store *s, int64_t end, int64_t top, struct take_set **sets_r, size_t *n_r)
{
	sqlite3_stmt *st;
	struct take_set *sets = NULL;
	size_t n = 0, cap = 0;
	if ((st = db_stmt(s->conn, take_sets_sql)) == NULL)
		return db_errcode(s->conn);
	int rc;
	sqlite3_bind_int64(st, 1, end);
	sqlite3_bind_int64(st, 2, top);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			size_t c = cap > 0 ? cap * 2 : 16;
			struct take_set *p = realloc(sets, c * sizeof(*p));
			if (p == NULL) {
				rc = SQLITE_NOMEM;
				break;
			}
			sets = p;
			cap = c;
		}
		const char *pd = (const char *)sqlite3_column_text(st, 0), *rua = (const char *)sqlite3_column_text(st, 1);
		sets[n].policy_domain = strdup(pd != NULL ? pd : "");
		sets[n].rua = strdup(rua != NULL ? rua : "");
		sets[n].begin = sqlite3_column_int64(st, 2);
		n++;
		if (sets[n - 1].policy_domain == NULL || sets[n - 1].rua == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		take_sets_free(sets, n);
		return rc;
	}
	*sets_r = sets;
	*n_r = n;
	return SQLITE_OK;
}

/* The columns of ROW_COLUMNS, in order */
enum row_col {
	COL_POLICY_DOMAIN, COL_RUA, COL_TIME, COL_COUNT, COL_SOURCE_IP, COL_HEADER_FROM, COL_ENVELOPE_FROM,
	COL_ENVELOPE_TO, COL_ORG_DOMAIN, COL_P, COL_SP, COL_NP, COL_ADKIM, COL_ASPF, COL_TESTING, COL_PSD, COL_FO,
	COL_POLICY, COL_DISPOSITION, COL_OVERRIDE, COL_DKIM_ALIGNED, COL_SPF_ALIGNED, COL_SPF_DOMAIN, COL_SPF_SCOPE,
	COL_SPF_RESULT, COL_DKIM,
};

/* take_records_sql's columns before ROW_COLUMNS: n, first, grp */
#define TAKE_COL_N 0
#define TAKE_COL_FIRST 1
#define TAKE_COL_GRP 2
#define TAKE_COL_ROW 3

static const unsigned char *col_uc(sqlite3_stmt *st, enum row_col c)
{
	return sqlite3_column_text(st, TAKE_COL_ROW + (int)c);
}

static const char *col_text(sqlite3_stmt *st, enum row_col c)
{
	return (const char *)col_uc(st, c);
}

static int64_t col_int(sqlite3_stmt *st, enum row_col c)
{
	return sqlite3_column_int64(st, TAKE_COL_ROW + (int)c);
}

/* One result row of take_records_sql into *r. */
static void record_read(sqlite3_stmt *st, struct dmarc_report_row *r)
{
	memset(r, 0, sizeof(*r));
	int64_t n = sqlite3_column_int64(st, TAKE_COL_N);
	r->count = n < 1 ? 1 : n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
	copy_field(r->policy_domain, sizeof(r->policy_domain), col_uc(st, COL_POLICY_DOMAIN));
	rua_split(col_text(st, COL_RUA), r);
	r->time = col_int(st, COL_TIME);
	copy_field(r->source_ip, sizeof(r->source_ip), col_uc(st, COL_SOURCE_IP));
	copy_field(r->header_from, sizeof(r->header_from), col_uc(st, COL_HEADER_FROM));
	copy_field(r->envelope_from, sizeof(r->envelope_from), col_uc(st, COL_ENVELOPE_FROM));
	copy_field(r->envelope_to, sizeof(r->envelope_to), col_uc(st, COL_ENVELOPE_TO));
	copy_field(r->org_domain, sizeof(r->org_domain), col_uc(st, COL_ORG_DOMAIN));
	struct dmarc_report_policy *p = &r->published;
	p->p = (enum dmarc_policy)word_value(policy_word, DMARC_POLICY_REJECT, col_text(st, COL_P));
	p->sp = (enum dmarc_policy)word_value(policy_word, DMARC_POLICY_REJECT, col_text(st, COL_SP));
	p->np = (enum dmarc_policy)word_value(policy_word, DMARC_POLICY_REJECT, col_text(st, COL_NP));
	p->adkim = (enum dmarc_align)word_value(align_word, DMARC_ALIGN_STRICT, col_text(st, COL_ADKIM));
	p->aspf = (enum dmarc_align)word_value(align_word, DMARC_ALIGN_STRICT, col_text(st, COL_ASPF));
	p->testing = col_int(st, COL_TESTING) != 0;
	p->psd = (enum dmarc_psd)word_value(psd_word, DMARC_PSD_N, col_text(st, COL_PSD));
	p->fo = (unsigned)col_int(st, COL_FO) & (DMARC_FO_0 | DMARC_FO_1 | DMARC_FO_D | DMARC_FO_S);
	r->policy = (enum dmarc_policy)word_value(policy_word, DMARC_POLICY_REJECT, col_text(st, COL_POLICY));
	r->disposition = (enum dmarc_policy)word_value(policy_word, DMARC_POLICY_REJECT, col_text(st, COL_DISPOSITION));
	r->override = (enum dmarc_report_override)word_value(override_word, DMARC_REPORT_OVERRIDE_TRUSTED_FORWARDER,
							      col_text(st, COL_OVERRIDE));
	r->dkim_aligned = col_int(st, COL_DKIM_ALIGNED) != 0;
	r->spf_aligned = col_int(st, COL_SPF_ALIGNED) != 0;
	copy_field(r->spf_domain, sizeof(r->spf_domain), col_uc(st, COL_SPF_DOMAIN));
	r->spf_scope = (enum dmarc_report_scope)word_value(scope_word, DMARC_REPORT_SCOPE_HELO, col_text(st, COL_SPF_SCOPE));
	r->spf_result = (enum spf_result)word_value(spf_word, SPF_RESULT_PERMERROR, col_text(st, COL_SPF_RESULT));
	dkim_unpack(sqlite3_column_blob(st, TAKE_COL_ROW + COL_DKIM),
		    (size_t)sqlite3_column_bytes(st, TAKE_COL_ROW + COL_DKIM), r);
}

/* Reads up to max + 1 records of one set into rows (max + 1 entries) and their keys, oldest first;
 * *n_r records, *first_r the smallest row id among them. */
static int take_records(struct report_store *s, const struct take_set *set, int64_t end, int64_t top, size_t max,
			struct dmarc_report_row *rows, char (*keys)[DMARC_REPORT_KEY_SIZE], uint64_t *first_r,
			size_t *n_r)
{
	sqlite3_stmt *st = db_stmt(s->conn, take_records_sql);
	if (st == NULL)
		return db_errcode(s->conn);
	int rc;
	sqlite3_bind_text(st, 1, set->policy_domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, set->rua, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, end);
	sqlite3_bind_int64(st, 4, top);
	sqlite3_bind_int64(st, 5, (int64_t)max + 1);
	size_t n = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && n <= max) {
		record_read(st, &rows[n]);
		/* ordered by each record's first id: the first record's is the batch's */
		if (n == 0)
			*first_r = (uint64_t)sqlite3_column_int64(st, TAKE_COL_FIRST);
		/* the stored key, not one computed again: it is what the DELETE must match */
		copy_field(keys[n], DMARC_REPORT_KEY_SIZE, sqlite3_column_text(st, TAKE_COL_GRP));
		n++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return rc;
	*n_r = n;
	return SQLITE_OK;
}

/* Deletes the taken records (their rows up to top and before end) in one transaction; *deleted_r
 * rows. */
static int take_delete(struct report_store *s, char (*keys)[DMARC_REPORT_KEY_SIZE], size_t n, int64_t end,
		       int64_t top, uint64_t *deleted_r)
{
	sqlite3_stmt *st = NULL;
	*deleted_r = 0;
	int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc == SQLITE_OK && (st = db_stmt(s->conn, take_delete_sql)) == NULL)
		rc = db_errcode(s->conn);
	for (size_t i = 0; rc == SQLITE_OK && i < n; i++) {
		sqlite3_bind_text(st, 1, keys[i], -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, end);
		sqlite3_bind_int64(st, 3, top);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc == SQLITE_DONE) {
			*deleted_r += (uint64_t)sqlite3_changes(s->db);
			rc = SQLITE_OK;
		}
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK && !sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/* Takes one set, batch after batch while the callback accepts and records are left. */
static int take_set(struct report_store *s, const struct take_set *set, int64_t end, int64_t top,
		    struct dmarc_report_row *rows, char (*keys)[DMARC_REPORT_KEY_SIZE], report_store_take_fn *fn,
		    void *arg, struct report_store_take_stats *stats)
{
	for (size_t part = 0;; part++) {
		size_t n = 0;
		uint64_t first_id = 0;
		int rc = take_records(s, set, end, top, REPORT_STORE_RECORDS_MAX, rows, keys, &first_id, &n);
		if (rc != SQLITE_OK || n == 0)
			return rc;
		size_t count = n < REPORT_STORE_RECORDS_MAX ? n : REPORT_STORE_RECORDS_MAX;
		const char *rua[DMARC_REPORT_RUA_MAX];
		for (size_t i = 0; i < rows[0].rua_count; i++)
			rua[i] = rows[0].rua[i];
		struct report_store_batch b = {
			.policy_domain = rows[0].policy_domain,
			.rua = rua,
			.rua_count = rows[0].rua_count,
			.rows = rows,
			.count = count,
			.begin = set->begin,
			.end = end - 1, /* the last second the report covers, as in RFC 9990 Appendix B */
			.first_id = first_id,
			.split = part > 0 || n > REPORT_STORE_RECORDS_MAX,
		};
		for (size_t i = 0; i < count; i++)
			b.messages += rows[i].count;
		stats->batches++;
		if (!fn(arg, &b))
			return SQLITE_OK;
		uint64_t deleted;
		rc = take_delete(s, keys, count, end, top, &deleted);
		if (rc != SQLITE_OK)
			return rc;
		stats->accepted++;
		stats->messages += b.messages;
		/* nothing deleted would take the same records again forever */
		if (n <= REPORT_STORE_RECORDS_MAX || deleted == 0)
			return SQLITE_OK;
	}
}

enum result report_store_take(struct report_store *s, time_t end, report_store_take_fn *fn, void *arg,
			      struct report_store_take_stats *stats_r, const char **error_r)
{
	struct report_store_take_stats stats = { 0 };
	struct take_set *sets = NULL;
	size_t nsets = 0;
	int64_t top = 0;
	pthread_mutex_lock(&s->mu);
	/* rows recorded while the callbacks run wait for the next take, whatever their time */
	int rc = db_int64(s->conn, "SELECT COALESCE(MAX(id), 0) FROM dmarc_rows", &top);
	if (rc == SQLITE_OK)
		rc = take_sets(s, (int64_t)end, top, &sets, &nsets);
	struct dmarc_report_row *rows = NULL;
	char (*keys)[DMARC_REPORT_KEY_SIZE] = NULL;
	if (rc == SQLITE_OK && nsets > 0) {
		rows = calloc(REPORT_STORE_RECORDS_MAX + 1, sizeof(*rows));
		keys = calloc(REPORT_STORE_RECORDS_MAX + 1, sizeof(*keys));
		if (rows == NULL || keys == NULL)
			rc = SQLITE_NOMEM;
	}
	for (size_t i = 0; rc == SQLITE_OK && i < nsets; i++)
		rc = take_set(s, &sets[i], (int64_t)end, top, rows, keys, fn, arg, &stats);
	if (rc != SQLITE_OK)
		*error_r = store_fail(s, rc);
	pthread_mutex_unlock(&s->mu);
	free(rows);
	free(keys);
	take_sets_free(sets, nsets);
	if (stats_r != NULL)
		*stats_r = stats;
	return rc == SQLITE_OK ? RESULT_OK : RESULT_TEMPFAIL;
}

enum result report_store_pending(struct report_store *s, uint64_t *messages_r, const char **error_r)
{
	int64_t messages = 0;
	pthread_mutex_lock(&s->mu);
	int rc = db_int64(s->conn, "SELECT COALESCE(SUM(count), 0) FROM dmarc_rows", &messages);
	*messages_r = (uint64_t)messages;
	if (rc != SQLITE_OK)
		*error_r = store_fail(s, rc);
	pthread_mutex_unlock(&s->mu);
	return rc == SQLITE_OK ? RESULT_OK : RESULT_TEMPFAIL;
}
