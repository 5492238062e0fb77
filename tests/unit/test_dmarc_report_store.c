/* test_dmarc_report_store.c — DATA_DIR/reports.db in a temporary directory: rows added in batches,
 * taken per policy domain and rua list with their records grouped, kept when the callback refuses
 * and across a reopen, split past REPORT_STORE_RECORDS_MAX, the schema version and file mode, and the
 * daily run end to end (take, destination check, document, message). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "fake_dns.h"
#include "report/dmarc_report_dest.h"
#include "report/report_store.h"
#include "test_util.h"

#define T0 1767225600 /* 2026-01-01 00:00:00 UTC */

struct ctx {
	char dir[256];
	struct report_store *s;
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	const char *tmp = getenv("TMPDIR");
	snprintf(c->dir, sizeof(c->dir), "%s/test_dmarc_report_store.XXXXXX", tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	assert_non_null(mkdtemp(c->dir));
	const char *err = NULL;
	c->s = report_store_open(c->dir, &err);
	if (c->s == NULL)
		fail_msg("report_store_open: %s", err);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	report_store_close(c->s);
	static const char *const names[] = { "reports.db", "reports.db-wal", "reports.db-shm", "reports.db-journal" };
	char path[512];
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", c->dir, names[i]);
		unlink(path);
	}
	rmdir(c->dir);
	free(c);
	return 0;
}

static struct dmarc_report_row row_make(const char *pd, const char *ip, int64_t t)
{
	struct dmarc_report_row r;
	memset(&r, 0, sizeof(r));
	r.time = t;
	r.count = 1;
	snprintf(r.source_ip, sizeof(r.source_ip), "%s", ip);
	snprintf(r.header_from, sizeof(r.header_from), "%s", pd);
	snprintf(r.envelope_from, sizeof(r.envelope_from), "%s", pd);
	snprintf(r.envelope_to, sizeof(r.envelope_to), "example.org");
	snprintf(r.policy_domain, sizeof(r.policy_domain), "%s", pd);
	snprintf(r.org_domain, sizeof(r.org_domain), "%s", pd);
	r.published = (struct dmarc_report_policy){ .p = DMARC_POLICY_QUARANTINE, .sp = DMARC_POLICY_NONE,
						    .np = DMARC_POLICY_REJECT, .adkim = DMARC_ALIGN_STRICT,
						    .psd = DMARC_PSD_N, .fo = DMARC_FO_1 | DMARC_FO_S };
	r.policy = DMARC_POLICY_QUARANTINE;
	r.disposition = DMARC_POLICY_NONE;
	r.dkim_aligned = true;
	snprintf(r.spf_domain, sizeof(r.spf_domain), "%s", pd);
	r.spf_scope = DMARC_REPORT_SCOPE_HELO;
	r.spf_result = SPF_RESULT_SOFTFAIL;
	dmarc_report_row_add_dkim(&r, pd, "s1", DKIM_RESULT_PASS);
	dmarc_report_row_add_dkim(&r, "esp.example", "weird \xff selector", DKIM_RESULT_TEMPERROR);
	r.rua_count = 2;
	snprintf(r.rua[0], sizeof(r.rua[0]), "dmarc@%s", pd);
	snprintf(r.rua[1], sizeof(r.rua[1]), "\"quoted local\"@reports.example");
	return r;
}

static void add(struct ctx *c, const struct dmarc_report_row *rows, size_t n)
{
	const char *err = NULL;
	enum result r = report_store_add(c->s, rows, n, &err);
	if (r != RESULT_OK)
		fail_msg("report_store_add: %s (%s)", result_str(r), err != NULL ? err : "");
}

static uint64_t pending(struct ctx *c)
{
	uint64_t n = 0;
	const char *err;
	assert_int_equal(report_store_pending(c->s, &n, &err), RESULT_OK);
	return n;
}

/* What the callback saw, copied: batches are valid only during the call. */
struct seen_batch {
	char policy_domain[DNS_HOST_SIZE];
	size_t rua_count;
	char rua[DMARC_REPORT_RUA_MAX][DMARC_REPORT_ADDR_SIZE];
	size_t count;
	uint64_t messages, first_id;
	int64_t begin, end;
	bool split;
	struct dmarc_report_row first_row;
	uint32_t counts[8];
};

struct seen {
	bool accept;
	size_t n;
	struct seen_batch b[8];
};

static bool take_cb(void *arg, const struct report_store_batch *b)
{
	struct seen *s = arg;
	if (s->n < sizeof(s->b) / sizeof(s->b[0])) {
		struct seen_batch *sb = &s->b[s->n];
		snprintf(sb->policy_domain, sizeof(sb->policy_domain), "%s", b->policy_domain);
		sb->rua_count = b->rua_count;
		for (size_t i = 0; i < b->rua_count; i++)
			snprintf(sb->rua[i], sizeof(sb->rua[i]), "%s", b->rua[i]);
		sb->count = b->count;
		sb->messages = b->messages;
		sb->first_id = b->first_id;
		sb->begin = b->begin;
		sb->end = b->end;
		sb->split = b->split;
		sb->first_row = b->rows[0];
		for (size_t i = 0; i < b->count && i < 8; i++)
			sb->counts[i] = b->rows[i].count;
		/* every record must be one a report can be built from */
		struct dmarc_report_meta meta = { .org_name = "o", .email = "e@x.example", .report_id = "1",
						  .begin = b->begin, .end = b->end };
		char *xml;
		size_t len;
		const char *err;
		if (dmarc_report_xml(&meta, b->rows, b->count, &xml, &len, NULL, &err) != DMARC_REPORT_OK)
			fail_msg("the batch makes no report: %s", err);
		free(xml);
	}
	s->n++;
	return s->accept;
}

static struct report_store_take_stats take(struct ctx *c, time_t end, struct seen *seen)
{
	struct report_store_take_stats st;
	const char *err = NULL;
	enum result r = report_store_take(c->s, end, take_cb, seen, &st, &err);
	if (r != RESULT_OK)
		fail_msg("report_store_take: %s", err != NULL ? err : "");
	assert_int_equal(st.batches, seen->n);
	return st;
}

static uint64_t table_rows(struct ctx *c)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/reports.db", c->dir);
	sqlite3 *db;
	sqlite3_stmt *q;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM dmarc_rows", -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	uint64_t n = (uint64_t)sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return n;
}

static void test_add_take(void **state)
{
	struct ctx *c = *state;
	struct dmarc_report_row rows[6] = {
		row_make("example.com", "192.0.2.1", T0 + 10),
		row_make("example.net", "192.0.2.9", T0 + 20),
		row_make("example.com", "192.0.2.1", T0 + 30), /* the same record as rows[0], the same hour */
		row_make("example.com", "2001:db8::1", T0 + 40),
		row_make("example.com", "192.0.2.1", T0 + 86400 + 5), /* the next day */
		row_make("example.com", "192.0.2.1", T0 + 7200), /* the same record, two hours later */
	};
	rows[2].count = 4;
	add(c, rows, 2);
	add(c, rows + 2, 4);
	assert_int_equal(pending(c), 9);
	/* rows[0] and rows[2] share a table row; rows[5] is in another hour */
	assert_int_equal(table_rows(c), 5);

	struct seen seen = { .accept = true };
	struct report_store_take_stats st = take(c, T0 + 86400, &seen);
	assert_int_equal(seen.n, 2);
	assert_int_equal(st.accepted, 2);
	assert_int_equal(st.messages, 8);
	/* oldest first: example.com's first row came first */
	struct seen_batch *com = &seen.b[0], *net = &seen.b[1];
	assert_string_equal(com->policy_domain, "example.com");
	assert_string_equal(net->policy_domain, "example.net");
	assert_int_equal(com->count, 2);
	assert_int_equal(com->messages, 7);
	assert_int_equal(com->counts[0], 6);
	assert_int_equal(com->counts[1], 1);
	assert_int_equal(com->begin, T0 + 10);
	assert_int_equal(com->end, T0 + 86399);
	assert_int_equal(net->begin, T0 + 20);
	assert_false(com->split);
	assert_int_equal(com->first_id, 1);
	assert_int_equal(net->first_id, 2);
	/* the rua list and the whole row come back as they went in */
	assert_int_equal(com->rua_count, 2);
	assert_string_equal(com->rua[0], "dmarc@example.com");
	assert_string_equal(com->rua[1], "\"quoted local\"@reports.example");
	const struct dmarc_report_row *r = &com->first_row;
	assert_string_equal(r->source_ip, "192.0.2.1");
	assert_string_equal(r->header_from, "example.com");
	assert_string_equal(r->envelope_to, "example.org");
	assert_int_equal(r->published.p, DMARC_POLICY_QUARANTINE);
	assert_int_equal(r->published.np, DMARC_POLICY_REJECT);
	assert_int_equal(r->published.adkim, DMARC_ALIGN_STRICT);
	assert_int_equal(r->published.psd, DMARC_PSD_N);
	assert_int_equal(r->published.fo, DMARC_FO_1 | DMARC_FO_S);
	assert_int_equal(r->policy, DMARC_POLICY_QUARANTINE);
	assert_true(r->dkim_aligned);
	assert_false(r->spf_aligned);
	assert_int_equal(r->spf_scope, DMARC_REPORT_SCOPE_HELO);
	assert_int_equal(r->spf_result, SPF_RESULT_SOFTFAIL);
	assert_int_equal(r->dkim_count, 2);
	assert_string_equal(r->dkim[0].selector, "s1");
	assert_int_equal(r->dkim[1].result, DKIM_RESULT_TEMPERROR);
	assert_string_equal(r->dkim[1].selector, "weird \xff selector");
	/* the same key as the rows that went in */
	char k1[DMARC_REPORT_KEY_SIZE], k2[DMARC_REPORT_KEY_SIZE];
	dmarc_report_row_key(&rows[0], k1);
	dmarc_report_row_key(r, k2);
	assert_string_equal(k1, k2);

	/* the next day's row stays; nothing is taken twice */
	assert_int_equal(pending(c), 1);
	assert_int_equal(table_rows(c), 1);
	struct seen again = { .accept = true };
	take(c, T0 + 86400, &again);
	assert_int_equal(again.n, 0);
	take(c, T0 + 2 * 86400, &again);
	assert_int_equal(again.n, 1);
	assert_true(again.b[0].first_id > 2);
	assert_int_equal(again.b[0].begin, T0 + 86400 + 5);
	assert_int_equal(pending(c), 0);
}

/* A refused batch keeps its rows, and taken again it has the same first_id (so the same
 * Report-ID); a reopened store keeps them too. */
static void test_refuse_and_reopen(void **state)
{
	struct ctx *c = *state;
	struct dmarc_report_row rows[3] = {
		row_make("example.com", "192.0.2.1", T0 + 10),
		row_make("example.net", "192.0.2.2", T0 + 20),
		row_make("example.com", "192.0.2.3", T0 + 30),
	};
	add(c, rows, 3);
	struct seen no = { .accept = false };
	struct report_store_take_stats st = take(c, T0 + 86400, &no);
	assert_int_equal(no.n, 2);
	assert_int_equal(st.accepted, 0);
	assert_int_equal(st.messages, 0);
	assert_int_equal(pending(c), 3);

	report_store_close(c->s);
	const char *err = NULL;
	c->s = report_store_open(c->dir, &err);
	assert_non_null(c->s);
	assert_int_equal(pending(c), 3);

	struct seen yes = { .accept = true };
	take(c, T0 + 86400, &yes);
	assert_int_equal(yes.n, 2);
	assert_int_equal(yes.b[0].first_id, no.b[0].first_id);
	assert_int_equal(yes.b[1].first_id, no.b[1].first_id);
	assert_int_equal(yes.b[0].count, 2);
	assert_int_equal(pending(c), 0);

	/* ids are not reused after a delete: a new report gets a new first_id */
	add(c, rows, 1);
	struct seen later = { .accept = true };
	take(c, T0 + 86400, &later);
	assert_int_equal(later.n, 1);
	assert_true(later.b[0].first_id > yes.b[1].first_id);
}

/* Rows of one policy domain with different rua lists make different reports; the published
 * policy and org domain of a record are its latest row's. */
static void test_sets_and_latest(void **state)
{
	struct ctx *c = *state;
	struct dmarc_report_row rows[3] = {
		row_make("example.com", "192.0.2.1", T0 + 10),
		row_make("example.com", "192.0.2.1", T0 + 20),
		row_make("example.com", "192.0.2.1", T0 + 30),
	};
	rows[1].published.p = DMARC_POLICY_REJECT;
	rows[1].policy = DMARC_POLICY_REJECT;
	rows[1].published.testing = true;
	rows[2].rua_count = 1;
	add(c, rows, 3);
	struct seen seen = { .accept = true };
	take(c, T0 + 86400, &seen);
	assert_int_equal(seen.n, 2);
	assert_int_equal(seen.b[0].rua_count, 2);
	assert_int_equal(seen.b[0].count, 1);
	assert_int_equal(seen.b[0].messages, 2);
	assert_int_equal(seen.b[0].first_row.published.p, DMARC_POLICY_REJECT);
	assert_true(seen.b[0].first_row.published.testing);
	assert_int_equal(seen.b[1].rua_count, 1);
	assert_int_equal(seen.b[1].messages, 1);
}

/* More records than REPORT_STORE_RECORDS_MAX: split into reports in the same run. */
static void test_split(void **state)
{
	struct ctx *c = *state;
	size_t n = REPORT_STORE_RECORDS_MAX + 5;
	struct dmarc_report_row *rows = calloc(n, sizeof(*rows));
	assert_non_null(rows);
	for (size_t i = 0; i < n; i++) {
		char ip[DMARC_REPORT_IP_SIZE];
		snprintf(ip, sizeof(ip), "10.%zu.%zu.1", i / 256, i % 256);
		rows[i] = row_make("example.com", ip, T0 + (int64_t)i);
	}
	add(c, rows, n);
	free(rows);

	/* refused: both parts stay (only the first is offered) */
	struct seen no = { .accept = false };
	take(c, T0 + 86400, &no);
	assert_int_equal(no.n, 1);
	assert_int_equal(no.b[0].count, REPORT_STORE_RECORDS_MAX);
	assert_true(no.b[0].split);
	assert_int_equal(pending(c), n);

	struct seen seen = { .accept = true };
	struct report_store_take_stats st = take(c, T0 + 86400, &seen);
	assert_int_equal(seen.n, 2);
	assert_int_equal(st.accepted, 2);
	assert_int_equal(st.messages, n);
	assert_int_equal(seen.b[0].count, REPORT_STORE_RECORDS_MAX);
	assert_int_equal(seen.b[1].count, 5);
	assert_true(seen.b[0].split && seen.b[1].split);
	assert_int_equal(seen.b[0].first_id, 1);
	assert_int_equal(seen.b[1].first_id, REPORT_STORE_RECORDS_MAX + 1);
	/* one date range for the policy domain's period */
	assert_int_equal(seen.b[0].begin, seen.b[1].begin);
	assert_int_equal(seen.b[0].end, seen.b[1].end);
	assert_int_equal(pending(c), 0);
}

static void test_invalid_rows(void **state)
{
	struct ctx *c = *state;
	struct dmarc_report_row rows[2] = {
		row_make("example.com", "192.0.2.1", T0),
		row_make("example.com", "192.0.2.1", T0),
	};
	rows[1].rua_count = 0;
	const char *err = NULL;
	assert_int_equal(report_store_add(c->s, rows, 2, &err), RESULT_PERMFAIL);
	assert_non_null(err);
	assert_int_equal(pending(c), 0); /* the good row was not stored either */
	assert_int_equal(report_store_add(c->s, rows, 0, &err), RESULT_OK);
}

static void test_schema_and_mode(void **state)
{
	struct ctx *c = *state;
	char path[512];
	snprintf(path, sizeof(path), "%s/reports.db", c->dir);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_stmt *q;
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(q, 0), 2); /* 2: the MTA-STS cache table */
	sqlite3_finalize(q);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
	sqlite3_finalize(q);

	/* a file from a newer version is refused, not changed */
	report_store_close(c->s);
	c->s = NULL;
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL), SQLITE_OK);
	const char *err = NULL;
	assert_null(report_store_open(c->dir, &err));
	assert_non_null(strstr(err, "newer"));
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=1", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	c->s = report_store_open(c->dir, &err);
	assert_non_null(c->s);

	/* a directory that does not exist */
	assert_null(report_store_open("/nonexistent/mailwerk", &err));
	assert_non_null(err);
}

/* The daily run as the server does it: take, check the destinations, build the document and the
 * message; a report whose destinations are all refused is dropped (accepted without a message). */
struct pipeline {
	struct fake_dns *zone;
	size_t messages;
	char report_id[DMARC_REPORT_ID_SIZE];
	char to[2][DMARC_REPORT_ADDR_SIZE];
	size_t to_count;
	char *last;
};

static bool pipeline_cb(void *arg, const struct report_store_batch *b)
{
	struct pipeline *p = arg;
	struct dmarc_report_dests *d = dmarc_report_dests_new(b->policy_domain, b->rows[0].org_domain, b->rua, b->rua_count);
	assert_non_null(d);
	fake_dns_run(p->zone, dmarc_report_dests_step, d);
	const char *const *to;
	size_t nto = dmarc_report_dests_allowed(d, &to);
	if (nto == 0) {
		dmarc_report_dests_free(d);
		return true;
	}
	char id[DMARC_REPORT_ID_SIZE];
	dmarc_report_id_make(id, b->begin, b->first_id);
	struct dmarc_report_meta meta = { .org_name = "mx.example.org", .email = "postmaster@mx.example.org",
					  .report_id = id, .begin = b->begin, .end = b->end };
	char *xml, *msg;
	size_t xml_len, msg_len;
	const char *err;
	assert_int_equal(dmarc_report_xml(&meta, b->rows, b->count, &xml, &xml_len, NULL, &err), DMARC_REPORT_OK);
	struct dmarc_report_mail m = { .from = "dmarc-reports@mx.example.org", .to = to, .to_count = nto,
				       .receiver = "mx.example.org", .policy_domain = b->policy_domain,
				       .report_id = id, .begin = b->begin, .end = b->end, .date = b->end + 60 };
	assert_int_equal(dmarc_report_message(&m, xml, xml_len, &msg, &msg_len, &err), DMARC_REPORT_OK);
	free(xml);
	snprintf(p->report_id, sizeof(p->report_id), "%s", id);
	p->to_count = nto < 2 ? nto : 2;
	for (size_t i = 0; i < p->to_count; i++)
		snprintf(p->to[i], sizeof(p->to[i]), "%s", to[i]);
	free(p->last);
	p->last = msg;
	p->messages++;
	dmarc_report_dests_free(d);
	return true;
}

static void test_pipeline(void **state)
{
	struct ctx *c = *state;
	struct dmarc_report_row rows[2] = {
		row_make("example.com", "192.0.2.1", T0 + 10),
		row_make("example.net", "192.0.2.2", T0 + 20),
	};
	/* example.net's only destination is external and not authorized */
	rows[1].rua_count = 1;
	snprintf(rows[1].rua[0], sizeof(rows[1].rua[0]), "dmarc@reports.example");
	add(c, rows, 2);
	struct pipeline p = { .zone = fake_dns_new() };
	fake_dns_add(p.zone, "example.com._report._dmarc.reports.example", DNS_RRTYPE_TXT, "v=DMARC1");
	struct report_store_take_stats st;
	const char *err;
	assert_int_equal(report_store_take(c->s, T0 + 86400, pipeline_cb, &p, &st, &err), RESULT_OK);
	assert_int_equal(st.batches, 2);
	assert_int_equal(st.accepted, 2);
	assert_int_equal(p.messages, 1);
	assert_string_equal(p.report_id, "1767225610x1");
	assert_int_equal(p.to_count, 2);
	assert_string_equal(p.to[0], "dmarc@example.com");
	assert_string_equal(p.to[1], "\"quoted local\"@reports.example");
	assert_non_null(strstr(p.last, "Report-ID:"));
	assert_non_null(strstr(p.last, "mx.example.org!example.com!1767225610!1767311999!1767225610x1.xml.gz"));
	assert_int_equal(pending(c), 0);
	free(p.last);
	fake_dns_free(p.zone);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_add_take, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_and_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sets_and_latest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_split, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema_and_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipeline, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
