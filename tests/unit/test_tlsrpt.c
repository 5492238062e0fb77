/* test_tlsrpt.c — RFC 8460: the _smtp._tls record (§3) with hostile input, the selection of one
 * record, the session list and its counters in a database (merge, store, read, delete, retry), and
 * the JSON report (§4) and its message (§5.3). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/db.h"
#include "events/tlsrpt_sessions.h"
#include "report/tlsrpt.h"
#include "test_util.h"

struct rec_case {
	const char *text;
	enum tlsrpt_record_error want;
	size_t rua;      /* usable URIs */
	size_t skipped;
	const char *first; /* the first URI's text, or NULL */
};

static const struct rec_case rec_cases[] = {
	{"v=TLSRPTv1; rua=mailto:reports@example.com", TLSRPT_RECORD_OK, 1, 0, "reports@example.com"},
	{"v=TLSRPTv1;rua=https://reports.example.com/tlsrpt", TLSRPT_RECORD_OK, 1, 0, "https://reports.example.com/tlsrpt"},
	{"v=TLSRPTv1; rua=mailto:a@example.com,https://r.example.net/x", TLSRPT_RECORD_OK, 2, 0, "a@example.com"},
	{"v=TLSRPTv1 ; rua=mailto:a@example.com , mailto:b@example.com ;", TLSRPT_RECORD_OK, 2, 0, "a@example.com"},
	{"v=TLSRPTv1; rua=mailto:a%40b@example.com", TLSRPT_RECORD_OK, 0, 0, NULL}, /* replaced below */
	{"v=TLSRPTv1; rua=mailto:tls%2Dreports@example.com", TLSRPT_RECORD_OK, 1, 0, "tls-reports@example.com"},
	{"v=TLSRPTv1; rua=mailto:r@example.com?subject=x", TLSRPT_RECORD_OK, 1, 0, "r@example.com"},
	{"v=TLSRPTv1; ext=1; rua=mailto:r@example.com; x-y.z=abc", TLSRPT_RECORD_OK, 1, 0, "r@example.com"},
	/* the version: first, exact, case-sensitive */
	{"v=tlsrptv1; rua=mailto:r@example.com", TLSRPT_RECORD_NOT_TLSRPT, 0, 0, NULL},
	{"v=TLSRPTv2; rua=mailto:r@example.com", TLSRPT_RECORD_NOT_TLSRPT, 0, 0, NULL},
	{"v=TLSRPTv10; rua=mailto:r@example.com", TLSRPT_RECORD_NOT_TLSRPT, 0, 0, NULL},
	{"rua=mailto:r@example.com; v=TLSRPTv1", TLSRPT_RECORD_NOT_TLSRPT, 0, 0, NULL},
	{" v=TLSRPTv1; rua=mailto:r@example.com", TLSRPT_RECORD_NOT_TLSRPT, 0, 0, NULL},
	{"", TLSRPT_RECORD_NOT_TLSRPT, 0, 0, NULL},
	{"v=spf1 -all", TLSRPT_RECORD_NOT_TLSRPT, 0, 0, NULL},
	/* rua: required, once, URIs without white space */
	{"v=TLSRPTv1", TLSRPT_RECORD_NO_RUA, 0, 0, NULL},
	{"v=TLSRPTv1;", TLSRPT_RECORD_NO_RUA, 0, 0, NULL},
	{"v=TLSRPTv1; ext=1", TLSRPT_RECORD_NO_RUA, 0, 0, NULL},
	{"v=TLSRPTv1; rua=mailto:a@example.com; rua=mailto:b@example.com", TLSRPT_RECORD_SYNTAX, 0, 0, NULL},
	{"v=TLSRPTv1; rua=", TLSRPT_RECORD_SYNTAX, 0, 0, NULL},
	{"v=TLSRPTv1; rua=mailto:a@example.com,,mailto:b@example.com", TLSRPT_RECORD_SYNTAX, 0, 0, NULL},
	{"v=TLSRPTv1; rua=mailto:a@exa mple.com", TLSRPT_RECORD_SYNTAX, 0, 0, NULL},
	{"v=TLSRPTv1 rua=mailto:a@example.com", TLSRPT_RECORD_SYNTAX, 0, 0, NULL},
	{"v=TLSRPTv1; rua", TLSRPT_RECORD_SYNTAX, 0, 0, NULL},
	{"v=TLSRPTv1; =x; rua=mailto:a@example.com", TLSRPT_RECORD_SYNTAX, 0, 0, NULL},
	{"v=TLSRPTv1; -bad=x; rua=mailto:a@example.com", TLSRPT_RECORD_SYNTAX, 0, 0, NULL},
	{"v=TLSRPTv1; ext=; rua=mailto:a@example.com", TLSRPT_RECORD_SYNTAX, 0, 0, NULL},
	/* URIs we cannot use are skipped, not fatal; none usable is NO_RUA */
	{"v=TLSRPTv1; rua=http://r.example.com/", TLSRPT_RECORD_NO_RUA, 0, 1, NULL},
	{"v=TLSRPTv1; rua=ftp://r.example.com/,mailto:r@example.com", TLSRPT_RECORD_OK, 1, 1, "r@example.com"},
	{"v=TLSRPTv1; rua=mailto:", TLSRPT_RECORD_NO_RUA, 0, 1, NULL},
	{"v=TLSRPTv1; rua=mailto:no-at-sign", TLSRPT_RECORD_NO_RUA, 0, 1, NULL},
	{"v=TLSRPTv1; rua=mailto:r@[192.0.2.1]", TLSRPT_RECORD_NO_RUA, 0, 1, NULL},
	{"v=TLSRPTv1; rua=mailto:r%00@example.com", TLSRPT_RECORD_NO_RUA, 0, 1, NULL},
	{"v=TLSRPTv1; rua=mailto:r%0D%0ABcc:x@example.com", TLSRPT_RECORD_NO_RUA, 0, 1, NULL},
	{"v=TLSRPTv1; rua=mailto:r%4@example.com", TLSRPT_RECORD_NO_RUA, 0, 1, NULL},
	{"v=TLSRPTv1; rua=https://user:pw@r.example.com/", TLSRPT_RECORD_NO_RUA, 0, 1, NULL},
	{"v=TLSRPTv1; rua=https://r.example.com/#frag", TLSRPT_RECORD_NO_RUA, 0, 1, NULL},
	{"v=TLSRPTv1; rua=https://", TLSRPT_RECORD_NO_RUA, 0, 1, NULL},
	/* the same destination once */
	{"v=TLSRPTv1; rua=mailto:r@example.com,mailto:R@EXAMPLE.COM", TLSRPT_RECORD_OK, 1, 0, "r@example.com"},
};

static void test_record_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rec_cases) / sizeof(rec_cases[0]); i++) {
		const struct rec_case *c = &rec_cases[i];
		if (i == 4)
			continue; /* see test_record_encoded_at */
		struct tlsrpt_record r;
		const char *err = NULL;
		char *copy = test_dup(c->text, strlen(c->text));
		enum tlsrpt_record_error e = tlsrpt_record_parse(copy, strlen(c->text), &r, &err);
		free(copy);
		if (e != c->want)
			fail_msg("\"%s\": got %s (%s), want %s", c->text, tlsrpt_record_error_str(e), err ? err : "",
				 tlsrpt_record_error_str(c->want));
		assert_non_null(err);
		if (e == TLSRPT_RECORD_OK || e == TLSRPT_RECORD_NO_RUA) {
			if (r.rua_count != c->rua || r.skipped != c->skipped)
				fail_msg("\"%s\": %zu usable, %zu skipped; want %zu, %zu", c->text, r.rua_count, r.skipped, c->rua,
					 c->skipped);
		}
		if (c->first != NULL)
			assert_string_equal(r.rua[0].text, c->first);
	}
}

/* a percent-encoded '@' in the local part gives two '@': not a mailbox */
static void test_record_encoded_at(void **state)
{
	(void)state;
	struct tlsrpt_record r;
	const char *err;
	const char *t = "v=TLSRPTv1; rua=mailto:a%40b@example.com";
	assert_int_equal(tlsrpt_record_parse(t, strlen(t), &r, &err), TLSRPT_RECORD_NO_RUA);
}

static void test_record_hostile(void **state)
{
	(void)state;
	struct tlsrpt_record r;
	const char *err;
	/* a NUL inside the TXT data */
	static const char nul[] = "v=TLSRPTv1; rua=mailto:r@example.com\0; rua=mailto:x@example.com";
	assert_int_equal(tlsrpt_record_parse(nul, sizeof(nul) - 1, &r, &err), TLSRPT_RECORD_SYNTAX);
	/* too long */
	size_t big = TLSRPT_RECORD_MAX + 10;
	char *s = malloc(big + 1);
	assert_non_null(s);
	memset(s, 'a', big);
	memcpy(s, "v=TLSRPTv1; rua=mailto:", 23);
	assert_int_equal(tlsrpt_record_parse(s, big, &r, &err), TLSRPT_RECORD_SYNTAX);
	/* many URIs: TLSRPT_RUA_MAX kept, the rest skipped */
	char many[4096] = "v=TLSRPTv1; rua=";
	for (int i = 0; i < 20; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "%smailto:r%d@example.com", i ? "," : "", i);
	assert_int_equal(tlsrpt_record_parse(many, strlen(many), &r, &err), TLSRPT_RECORD_OK);
	assert_int_equal(r.rua_count, TLSRPT_RUA_MAX);
	assert_int_equal(r.skipped, 20 - TLSRPT_RUA_MAX);
	/* an over-long URI */
	memset(s, 'a', big);
	memcpy(s, "v=TLSRPTv1; rua=https://", 24);
	memcpy(s + 3000, ".example/", 9);
	assert_int_not_equal(tlsrpt_record_parse(s, 3009, &r, &err), TLSRPT_RECORD_OK);
	/* 8-bit octets */
	const char *u8 = "v=TLSRPTv1; rua=mailto:r\xc3\xa9@example.com";
	assert_int_equal(tlsrpt_record_parse(u8, strlen(u8), &r, &err), TLSRPT_RECORD_SYNTAX);
	free(s);
}

static void test_record_select(void **state)
{
	(void)state;
	struct tlsrpt_record r;
	const char *err;
	const char *one[] = {"v=spf1 -all", "v=TLSRPTv1; rua=mailto:r@example.com", "something else"};
	size_t one_l[] = {11, strlen(one[1]), 14};
	assert_int_equal(tlsrpt_record_select(one, one_l, 3, &r, &err), TLSRPT_RECORD_OK);
	assert_int_equal(r.rua_count, 1);
	/* §3: two TLS-RPT records: the domain does not implement it */
	const char *two[] = {"v=TLSRPTv1; rua=mailto:r@example.com", "v=TLSRPTv1; rua=mailto:s@example.com"};
	size_t two_l[] = {strlen(two[0]), strlen(two[1])};
	assert_int_equal(tlsrpt_record_select(two, two_l, 2, &r, &err), TLSRPT_RECORD_NOT_TLSRPT);
	assert_int_equal(tlsrpt_record_select(one, one_l, 1, &r, &err), TLSRPT_RECORD_NOT_TLSRPT);
	assert_int_equal(tlsrpt_record_select(one, one_l, 0, &r, &err), TLSRPT_RECORD_NOT_TLSRPT);
	/* a v=TLSRPTv1x record is not one */
	const char *near[] = {"v=TLSRPTv1x; rua=mailto:r@example.com", "v=TLSRPTv1;rua=mailto:s@example.com"};
	size_t near_l[] = {strlen(near[0]), strlen(near[1])};
	assert_int_equal(tlsrpt_record_select(near, near_l, 2, &r, &err), TLSRPT_RECORD_OK);
	assert_string_equal(r.rua[0].text, "s@example.com");
}

/* ---- sessions and their counters ---- */

static void outcome(struct tlsrpt_sessions *l, const char *domain, enum tlsrpt_result res, const char *ip, int64_t t)
{
	static const char *const tlsa[] = {"3 1 1 aabb", "3 1 1 ccdd"};
	static const char *const mx[] = {"mx.example.com"};
	struct tlsrpt_outcome o = {
		.policy_domain = domain,
		.policy_type = TLSRPT_POLICY_TLSA,
		.policy_strings = tlsa,
		.policy_string_count = 2,
		.mx_hosts = mx,
		.mx_host_count = 1,
		.result = res,
		.receiving_mx = "mx.example.com",
		.receiving_ip = ip,
		.sending_ip = "192.0.2.1",
		.additional = "certificate not matched\r\nBcc: x",
		.time = t,
	};
	assert_true(tlsrpt_sessions_add(l, &o));
}

static void test_sessions_merge(void **state)
{
	(void)state;
	struct tlsrpt_sessions l = {0}, m = {0};
	int64_t t = 1700000000;
	outcome(&l, "Example.COM", TLSRPT_RESULT_SUCCESS, "198.51.100.1", t);
	outcome(&l, "example.com", TLSRPT_RESULT_SUCCESS, "198.51.100.2", t + 1); /* a success keeps no address */
	outcome(&l, "example.com", TLSRPT_RESULT_TLSA_INVALID, "198.51.100.1", t);
	outcome(&l, "example.com", TLSRPT_RESULT_TLSA_INVALID, "198.51.100.2", t);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.v[0].count, 2);
	assert_string_equal(l.v[0].policy_domain, "example.com");
	assert_string_equal(l.v[0].receiving_ip, "");
	assert_string_equal(l.v[1].policy_strings, "3 1 1 aabb\n3 1 1 ccdd");
	/* control characters from the peer do not survive */
	assert_null(strchr(l.v[1].additional, '\r'));
	assert_null(strchr(l.v[1].additional, '\n'));
	/* not usable: no domain, values out of range */
	struct tlsrpt_outcome bad = {.policy_domain = "", .result = TLSRPT_RESULT_SUCCESS};
	assert_false(tlsrpt_sessions_add(&l, &bad));
	bad.policy_domain = "example.com";
	bad.result = TLSRPT_RESULT_COUNT;
	assert_false(tlsrpt_sessions_add(&l, &bad));
	assert_true(tlsrpt_sessions_merge(&m, &l));
	assert_true(tlsrpt_sessions_merge(&m, &l));
	assert_int_equal(m.n, 3);
	assert_int_equal(m.v[0].count, 4);
	/* a session a minute later is kept apart (it may belong to the next period) */
	outcome(&m, "example.com", TLSRPT_RESULT_SUCCESS, "", t + 120);
	assert_int_equal(m.n, 4);
	tlsrpt_sessions_free(&l);
	tlsrpt_sessions_free(&m);
}

static struct db *test_db(char *path, size_t size)
{
	snprintf(path, size, "/tmp/test_tlsrpt_%d.db", (int)getpid());
	unlink(path);
	char err[256];
	struct db *db = db_open(path, NULL, err, sizeof(err));
	assert_non_null(db);
	assert_int_equal(sqlite3_exec(db_sqlite(db), tlsrpt_sessions_schema_sql, NULL, NULL, NULL), SQLITE_OK);
	return db;
}

static void test_counters(void **state)
{
	(void)state;
	char path[128];
	struct db *db = test_db(path, sizeof(path));
	struct tlsrpt_sessions l = {0};
	int64_t day = 1700006400; /* a UTC midnight */
	outcome(&l, "example.com", TLSRPT_RESULT_SUCCESS, "", day + 10);
	outcome(&l, "example.com", TLSRPT_RESULT_STARTTLS_NOT_SUPPORTED, "198.51.100.1", day + 10);
	outcome(&l, "example.org", TLSRPT_RESULT_SUCCESS, "", day + 10);
	outcome(&l, "example.com", TLSRPT_RESULT_SUCCESS, "", day + 86400 + 5); /* the next day */
	/* two batches: counts add up */
	assert_int_equal(tlsrpt_sessions_store(db, &l, 86400), SQLITE_OK);
	assert_int_equal(tlsrpt_sessions_store(db, &l, 86400), SQLITE_OK);
	uint64_t pending;
	assert_int_equal(tlsrpt_sessions_pending(db, &pending), SQLITE_OK);
	assert_int_equal(pending, 8);
	/* before the first day has ended: nothing due */
	struct tlsrpt_aggregate *v;
	size_t n;
	assert_int_equal(tlsrpt_sessions_due(db, day, day + 100, 10, &v, &n), SQLITE_OK);
	assert_int_equal(n, 0);
	free(v);
	/* after it: two domains of that day */
	assert_int_equal(tlsrpt_sessions_due(db, day + 86400, day + 86400, 10, &v, &n), SQLITE_OK);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].policy_domain, "example.com");
	assert_int_equal(v[0].begin, day);
	assert_int_equal(v[0].n, 2);
	assert_int_equal(v[0].rows[0].result, TLSRPT_RESULT_SUCCESS);
	assert_int_equal(v[0].rows[0].count, 2);
	assert_int_equal(v[0].rows[1].count, 2);
	/* a failed attempt: not due again until its time */
	assert_int_equal(tlsrpt_sessions_retry(db, &v[0], day + 86400 + 600, "mailto:r@example.com"), SQLITE_OK);
	/* meanwhile, another session of that day is recorded (a late batch) */
	struct tlsrpt_sessions late = {0};
	outcome(&late, "example.com", TLSRPT_RESULT_SUCCESS, "", day + 20);
	assert_int_equal(tlsrpt_sessions_store(db, &late, 86400), SQLITE_OK);
	struct tlsrpt_aggregate *w;
	size_t wn;
	assert_int_equal(tlsrpt_sessions_due(db, day + 86400, day + 86400 + 10, 10, &w, &wn), SQLITE_OK);
	assert_int_equal(wn, 1);
	assert_string_equal(w[0].policy_domain, "example.org");
	for (size_t i = 0; i < wn; i++)
		tlsrpt_aggregate_free(&w[i]);
	free(w);
	assert_int_equal(tlsrpt_sessions_due(db, day + 86400, day + 86400 + 600, 10, &w, &wn), SQLITE_OK);
	assert_int_equal(wn, 2);
	assert_int_equal(w[0].attempts, 1);
	assert_string_equal(w[0].done_rua, "mailto:r@example.com");
	for (size_t i = 0; i < wn; i++)
		tlsrpt_aggregate_free(&w[i]);
	free(w);
	/* the report read before the late session went: only what it had is deleted */
	assert_int_equal(tlsrpt_sessions_delete(db, &v[0]), SQLITE_OK);
	assert_int_equal(tlsrpt_sessions_pending(db, &pending), SQLITE_OK);
	assert_int_equal(pending, 2 + 2 + 1); /* example.org 2, the next day 2, the late one */
	assert_int_equal(tlsrpt_sessions_due(db, day + 86400, day + 86400 + 600, 10, &w, &wn), SQLITE_OK);
	assert_int_equal(wn, 2);
	assert_int_equal(w[0].attempts, 0); /* the attempt row went with the report */
	assert_int_equal(w[0].n, 1);
	assert_int_equal(w[0].rows[0].count, 1);
	for (size_t i = 0; i < wn; i++)
		tlsrpt_aggregate_free(&w[i]);
	free(w);
	for (size_t i = 0; i < n; i++)
		tlsrpt_aggregate_free(&v[i]);
	free(v);
	tlsrpt_sessions_free(&l);
	tlsrpt_sessions_free(&late);
	db_close(db);
	unlink(path);
}

/* ---- the report ---- */

static void test_json(void **state)
{
	(void)state;
	struct tlsrpt_sessions l = {0};
	int64_t day = 1700006400;
	outcome(&l, "example.com", TLSRPT_RESULT_SUCCESS, "", day);
	outcome(&l, "example.com", TLSRPT_RESULT_SUCCESS, "", day);
	outcome(&l, "example.com", TLSRPT_RESULT_TLSA_INVALID, "198.51.100.1", day);
	struct tlsrpt_outcome none = {.policy_domain = "example.com", .result = TLSRPT_RESULT_STARTTLS_NOT_SUPPORTED,
				      .receiving_mx = "mx2.example.com", .receiving_ip = "198.51.100.9", .time = day,
				      .additional = "\xff\xfe not UTF-8"};
	assert_true(tlsrpt_sessions_add(&l, &none));
	char id[TLSRPT_REPORT_ID_SIZE], id2[TLSRPT_REPORT_ID_SIZE];
	tlsrpt_report_id(id, day, "example.com", "mail.example.net");
	tlsrpt_report_id(id2, day, "example.com", "mail.example.net");
	assert_string_equal(id, id2); /* the same report again has the same id */
	struct tlsrpt_report_meta meta = {"mail.example.net", "tls-reports@example.net", id, day, day + 86399};
	size_t len;
	char *text = tlsrpt_report_json(&meta, "example.com", l.v, l.n, &len);
	assert_non_null(text);
	json_error_t je;
	json_t *root = json_loads(text, 0, &je);
	assert_non_null(root);
	assert_string_equal(json_string_value(json_object_get(root, "organization-name")), "mail.example.net");
	json_t *range = json_object_get(root, "date-range");
	assert_string_equal(json_string_value(json_object_get(range, "start-datetime")), "2023-11-15T00:00:00Z");
	assert_string_equal(json_string_value(json_object_get(range, "end-datetime")), "2023-11-15T23:59:59Z");
	assert_string_equal(json_string_value(json_object_get(root, "report-id")), id);
	json_t *pols = json_object_get(root, "policies");
	assert_true(json_is_array(pols));
	assert_int_equal(json_array_size(pols), 2);
	json_t *p0 = json_array_get(pols, 0);
	json_t *pol = json_object_get(p0, "policy");
	assert_string_equal(json_string_value(json_object_get(pol, "policy-type")), "tlsa");
	assert_int_equal(json_array_size(json_object_get(pol, "policy-string")), 2);
	assert_string_equal(json_string_value(json_object_get(pol, "policy-domain")), "example.com");
	json_t *sum = json_object_get(p0, "summary");
	assert_int_equal(json_integer_value(json_object_get(sum, "total-successful-session-count")), 2);
	assert_int_equal(json_integer_value(json_object_get(sum, "total-failure-session-count")), 1);
	json_t *fd = json_array_get(json_object_get(p0, "failure-details"), 0);
	assert_string_equal(json_string_value(json_object_get(fd, "result-type")), "tlsa-invalid");
	assert_string_equal(json_string_value(json_object_get(fd, "receiving-ip")), "198.51.100.1");
	assert_string_equal(json_string_value(json_object_get(fd, "sending-mta-ip")), "192.0.2.1");
	assert_int_equal(json_integer_value(json_object_get(fd, "failed-session-count")), 1);
	json_t *p1 = json_object_get(json_array_get(pols, 1), "policy");
	assert_string_equal(json_string_value(json_object_get(p1, "policy-type")), "no-policy-found");
	assert_null(json_object_get(p1, "policy-string"));
	json_t *fd1 = json_array_get(json_object_get(json_array_get(pols, 1), "failure-details"), 0);
	assert_string_equal(json_string_value(json_object_get(fd1, "result-type")), "starttls-not-supported");
	/* what is not UTF-8 does not go out as it came */
	assert_string_equal(json_string_value(json_object_get(fd1, "failure-reason-code")), "?");
	json_decref(root);
	free(text);
	tlsrpt_sessions_free(&l);
}

static void test_message(void **state)
{
	(void)state;
	const char *to[] = {"r@example.com", "s@example.com"};
	const unsigned char gz[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0};
	struct tlsrpt_report_mail m = {"tls-reports@example.net", to, 2, "mail.example.net", "example.com",
				       "1700006400.abcd@mail.example.net", 1700006400, 1700092799, 1700092800};
	size_t len;
	const char *err;
	char *msg = tlsrpt_report_message(&m, gz, sizeof(gz), &len, &err);
	assert_non_null(msg);
	assert_non_null(strstr(msg, "TLS-Report-Domain: example.com\r\n"));
	assert_non_null(strstr(msg, "TLS-Report-Submitter: mail.example.net\r\n"));
	assert_non_null(strstr(msg, "TLS-Required: No\r\n"));
	assert_non_null(strstr(msg, "report-type=\"tlsrpt\""));
	assert_non_null(strstr(msg, "filename=\"mail.example.net!example.com!1700006400!1700092799!"
				    "1700006400.abcd_mail.example.net.json.gz\""));
	free(msg);
	/* a header field cannot be smuggled in */
	const char *evil[] = {"r@example.com\r\nBcc: x@example.org"};
	m.to = evil;
	m.to_count = 1;
	assert_null(tlsrpt_report_message(&m, gz, sizeof(gz), &len, &err));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_cases),   cmocka_unit_test(test_record_encoded_at),
		cmocka_unit_test(test_record_hostile), cmocka_unit_test(test_record_select),
		cmocka_unit_test(test_sessions_merge), cmocka_unit_test(test_counters),
		cmocka_unit_test(test_json),           cmocka_unit_test(test_message),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
