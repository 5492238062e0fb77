/* test_dmarc_vectors.c — runs every case of $MAILWERK_TESTDATA/dmarc/rfc9989-appendix-b-vectors.json
 * (RFC 9989 §4.10, §4.10.2, §5.1.8 and Appendix B restated) against the tree walk, the evaluator
 * and the record parser, over the fake zone. Records the vectors leave open (null, "contains psd=n",
 * "contains psd=y", "no psd tag") become "v=DMARC1; p=none" plus the psd tag they name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>

#include "auth/dmarc.h"
#include "fake_dns.h"
#include "test_util.h"

struct tally {
	unsigned passed, failed;
};

/* Records a failed check of the current case (printed, counted once per case by the caller). */
static bool check(bool ok, const char *id, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static bool check(bool ok, const char *id, const char *fmt, ...)
{
	if (ok)
		return true;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "vector %s: ", id);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	return false;
}

static void count(struct tally *t, bool ok)
{
	if (ok)
		t->passed++;
	else
		t->failed++;
}

static const char *record_text(const json_t *v)
{
	if (json_is_null(v) || (json_is_string(v) && strcmp(json_string_value(v), "no psd tag") == 0))
		return "v=DMARC1; p=none";
	if (strcmp(json_string_value(v), "contains psd=n") == 0)
		return "v=DMARC1; p=none; psd=n";
	if (strcmp(json_string_value(v), "contains psd=y") == 0)
		return "v=DMARC1; p=none; psd=y";
	return json_string_value(v);
}

static struct fake_dns *zone_new(const json_t *records)
{
	struct fake_dns *z = fake_dns_new();
	const char *name;
	const json_t *v;
	if (records != NULL)
		json_object_foreach((json_t *)records, name, v) fake_dns_add(z, name, DNS_RRTYPE_TXT, record_text(v));
	return z;
}

/* Compares the zone's question log with a JSON array of _dmarc names (all TXT). */
static bool check_log(const struct fake_dns *z, const json_t *want, const char *id)
{
	bool ok = check(fake_dns_log_count(z) == json_array_size(want), id, "%zu questions, want %zu",
			fake_dns_log_count(z), json_array_size(want));
	for (size_t i = 0; i < json_array_size(want) && i < fake_dns_log_count(z); i++) {
		char line[300];
		snprintf(line, sizeof(line), "%s TXT", json_string_value(json_array_get(want, i)));
		ok &= check(strcmp(fake_dns_log(z, i), line) == 0, id, "question %zu is \"%s\", want \"%s\"", i + 1,
			    fake_dns_log(z, i), line);
	}
	return ok;
}

/* Runs a standalone walk from start over z (log cleared first); returns its org domain. */
static void walk_run(struct fake_dns *z, const char *start, char *org, size_t size)
{
	fake_dns_log_clear(z);
	struct dmarc_walk *w = dmarc_walk_new(start);
	assert_non_null(w);
	fake_dns_run(z, dmarc_walk_step, w);
	const struct dmarc_walk_result *r = dmarc_walk_result(w);
	snprintf(org, size, "%s", r->status == DMARC_WALK_OK ? r->org_domain : "(walk failed)");
	dmarc_walk_free(w);
}

static bool walk_case(const json_t *c, const char *id)
{
	const json_t *records = json_object_get(c, "dmarc_records");
	struct fake_dns *z = zone_new(records);
	char org[DNS_HOST_SIZE + 16];
	walk_run(z, json_string_value(json_object_get(c, "start")), org, sizeof(org));
	bool ok = true;
	const json_t *q = json_object_get(c, "expected_queries");
	if (q != NULL)
		ok &= check_log(z, q, id);
	const json_t *o = json_object_get(c, "expected_org_domain");
	if (o != NULL)
		ok &= check(strcmp(org, json_string_value(o)) == 0, id, "org domain %s, want %s", org, json_string_value(o));
	fake_dns_free(z);
	return ok;
}

/* One evaluation; the outcome is copied out. */
static void eval_run(struct fake_dns *z, const char *author, const char *spf, const char *dkim, struct dmarc_outcome *o)
{
	const char *dk[1] = { dkim };
	struct dmarc_input in = {
		.author_domain = author,
		.spf_pass = spf != NULL,
		.spf_domain = spf,
		.dkim_pass_domains = dk,
		.dkim_pass_count = dkim != NULL ? 1 : 0,
	};
	struct dmarc_eval *e = dmarc_eval_new(&in);
	assert_non_null(e);
	fake_dns_log_clear(z);
	fake_dns_run(z, dmarc_eval_step, e);
	memcpy(o, dmarc_eval_outcome(e), sizeof(*o));
	o->reason = "";
	dmarc_eval_free(e);
}

static const char *str(const json_t *c, const char *key)
{
	return json_string_value(json_object_get(c, key));
}

/* B.1: alignment alone, under a record at the author's two last labels with aspf/adkim set. */
static bool alignment_mode(const char *author, const char *spf, const char *dkim, bool strict, bool want, const char *id)
{
	const char *org = author;
	for (const char *p = author; *p != '\0'; p++)
		if (*p == '.' && strchr(p + 1, '.') != NULL)
			org = p + 1;
	char name[300], rec[64];
	snprintf(name, sizeof(name), "_dmarc.%s", org);
	snprintf(rec, sizeof(rec), "v=DMARC1; p=reject; aspf=%s; adkim=%s", strict ? "s" : "r", strict ? "s" : "r");
	struct fake_dns *z = fake_dns_new();
	fake_dns_add(z, name, DNS_RRTYPE_TXT, rec);
	struct dmarc_outcome o;
	eval_run(z, author, spf, dkim, &o);
	fake_dns_free(z);
	bool got = spf != NULL ? o.spf_aligned : o.dkim_aligned;
	return check(got == want && o.result == (want ? DMARC_RESULT_PASS : DMARC_RESULT_FAIL), id,
		     "%s %s alignment: %d (%s), want %d", strict ? "strict" : "relaxed", spf != NULL ? "SPF" : "DKIM",
		     got, dmarc_result_str(o.result), want);
}

static bool message_case(const json_t *c, const char *id)
{
	const char *author = str(c, "author_domain");
	const char *spf = str(c, "mail_from_domain");
	if (spf == NULL)
		spf = str(c, "spf_authenticated_identifier");
	const char *dkim = str(c, "dkim_d");
	if (dkim == NULL)
		dkim = str(c, "dkim_authenticated_identifier");
	const json_t *exp = json_object_get(c, "expected");
	const json_t *records = json_object_get(c, "dmarc_records");
	bool ok = true;

	struct dmarc_outcome o;
	memset(&o, 0, sizeof(o));
	struct fake_dns *z = zone_new(records);
	if (records != NULL)
		eval_run(z, author, spf, dkim, &o);
	const char *key;
	const json_t *v;
	json_object_foreach((json_t *)exp, key, v) {
		char org[DNS_HOST_SIZE + 16];
		if (strcmp(key, "spf_aligned_strict") == 0 || strcmp(key, "spf_aligned_relaxed") == 0 ||
		    strcmp(key, "dkim_aligned_strict") == 0 || strcmp(key, "dkim_aligned_relaxed") == 0) {
			bool is_spf = key[0] == 's', strict = strstr(key, "strict") != NULL;
			if (records == NULL) {
				ok &= alignment_mode(author, is_spf ? spf : NULL, is_spf ? NULL : dkim, strict, json_is_true(v), id);
			} else {
				bool got = is_spf ? o.spf_aligned : o.dkim_aligned;
				ok &= check(got == json_is_true(v), id, "%s: %d", key, got);
			}
		} else if (strcmp(key, "spf_aligned") == 0 || strcmp(key, "dkim_aligned") == 0) {
			bool got = key[0] == 's' ? o.spf_aligned : o.dkim_aligned;
			ok &= check(records != NULL && got == json_is_true(v), id, "%s: %d", key, got);
		} else if (strcmp(key, "dmarc") == 0) {
			ok &= check(records != NULL && strcmp(dmarc_result_str(o.result), json_string_value(v)) == 0, id,
				    "dmarc=%s, want %s", dmarc_result_str(o.result), json_string_value(v));
		} else if (strcmp(key, "policy_domain") == 0) {
			ok &= check(records != NULL && strcmp(o.policy_domain, json_string_value(v)) == 0, id,
				    "policy domain %s, want %s", o.policy_domain, json_string_value(v));
		} else if (strncmp(key, "org_domain_", 11) == 0) {
			const char *which = key + 11;
			const char *start = strcmp(which, "author") == 0 ? author : strcmp(which, "dkim") == 0 ? dkim : spf;
			walk_run(z, start, org, sizeof(org));
			ok &= check(strcmp(org, json_string_value(v)) == 0, id, "%s: %s, want %s", key, org, json_string_value(v));
		} else if (strcmp(key, "author_walk_queries") == 0 || strcmp(key, "dkim_walk_queries") == 0) {
			walk_run(z, key[0] == 'a' ? author : dkim, org, sizeof(org));
			ok &= check_log(z, v, id);
		} else {
			ok &= check(false, id, "unknown expectation %s", key);
		}
	}
	fake_dns_free(z);
	return ok;
}

static bool record_case(const json_t *c, const char *id)
{
	char txt[1024] = "";
	const json_t *s;
	size_t i;
	json_array_foreach(json_object_get(c, "txt_strings"), i, s)
		snprintf(txt + strlen(txt), sizeof(txt) - strlen(txt), "%s", json_string_value(s));
	struct dmarc_record r;
	const char *err = "";
	enum dmarc_record_error e = dmarc_record_parse(txt, strlen(txt), &r, &err);
	bool ok = check(e != DMARC_RECORD_NOT_DMARC, id, "not read as a DMARC record: %s", err);
	const char *key;
	const json_t *v;
	json_object_foreach(json_object_get(c, "expected_tags"), key, v) {
		if (strcmp(key, "v") == 0) {
			ok &= check(strcmp(json_string_value(v), "DMARC1") == 0 && e != DMARC_RECORD_NOT_DMARC, id, "v");
		} else if (strcmp(key, "p") == 0) {
			ok &= check(e == DMARC_RECORD_OK && r.p_given && strcmp(dmarc_policy_str(r.p), json_string_value(v)) == 0,
				    id, "p=%s, want %s", dmarc_policy_str(r.p), json_string_value(v));
		} else if (strcmp(key, "t") == 0) {
			ok &= check(r.testing == (strcmp(json_string_value(v), "y") == 0), id, "t");
		} else if (strcmp(key, "rua") == 0 || strcmp(key, "ruf") == 0) {
			const struct dmarc_uri *list = key[2] == 'a' ? r.rua : r.ruf;
			size_t n = key[2] == 'a' ? r.rua_count : r.ruf_count;
			ok &= check(n == json_array_size(v), id, "%s has %zu URIs, want %zu", key, n, json_array_size(v));
			for (size_t k = 0; k < n && k < json_array_size(v); k++)
				ok &= check(strcmp(dmarc_uri_text(&r, &list[k]), json_string_value(json_array_get(v, k))) == 0,
					    id, "%s[%zu] = %s", key, k, dmarc_uri_text(&r, &list[k]));
		} else {
			ok &= check(false, id, "unknown tag expectation %s", key);
		}
	}
	/* the tags the case does not list are absent */
	if (json_object_get(json_object_get(c, "expected_tags"), "p") == NULL)
		ok &= check(!r.p_given, id, "p present");
	if (json_object_get(json_object_get(c, "expected_tags"), "ruf") == NULL)
		ok &= check(r.ruf_count == 0, id, "ruf present");
	return ok;
}

static void test_vectors(void **state)
{
	const char *dir = getenv("MAILWERK_TESTDATA");
	assert_non_null(dir);
	char path[1024];
	snprintf(path, sizeof(path), "%s/dmarc/rfc9989-appendix-b-vectors.json", dir);
	json_error_t jerr;
	json_t *root = json_load_file(path, 0, &jerr);
	if (root == NULL)
		fail_msg("%s:%d: %s", path, jerr.line, jerr.text);

	struct tally t = { 0, 0 };
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(root, "tree_walk_query_sequences"), i, c)
		count(&t, walk_case(c, str(c, "id")));
	json_array_foreach(json_object_get(root, "organizational_domain_cases"), i, c)
		count(&t, walk_case(c, str(c, "id")));
	json_array_foreach(json_object_get(root, "message_cases"), i, c)
		count(&t, message_case(c, str(c, "id")));
	json_array_foreach(json_object_get(root, "record_examples"), i, c) {
		char id[128];
		snprintf(id, sizeof(id), "%s %s", str(c, "section"), str(c, "owner"));
		count(&t, record_case(c, id));
	}
	json_decref(root);
	printf("dmarc vectors: %u passed, %u failed (of %u)\n", t.passed, t.failed, t.passed + t.failed);
	assert_int_equal(t.failed, 0);
	assert_int_equal(t.passed, 24);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
