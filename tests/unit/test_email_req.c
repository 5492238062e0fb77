/* test_email_req.c — table-driven tests of src/http/json.c (strict loading, the depth pre-scan) and
 * src/http/email_req.c (Resend's send request: every rule accepted and refused, with the error name
 * and a message naming the field), hostile inputs included. Run under ASan/LSan: nothing may leak. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/email_req.h"
#include "http/json.h"
#include "test_util.h"

/* 2024-08-05T11:52:01Z, the moment of Resend's own example */
#define NOW 1722858721

static const struct email_req_limits lim_default = { .max_size = 4 << 20,
						     .allow_attachment_urls = false,
						     .now = NOW };
static const struct email_req_limits lim_urls = { .max_size = 4 << 20,
						  .allow_attachment_urls = true,
						  .now = NOW };
static const struct email_req_limits lim_small = { .max_size = 10,
						   .allow_attachment_urls = false,
						   .now = NOW };
static const struct email_req_limits lim_small_urls = { .max_size = 10,
							.allow_attachment_urls = true,
							.now = NOW };

/* The tables write JSON with ' for ", so that they stay readable; no case needs an apostrophe. */
static char *test_q(const char *s)
{
	char *p = strdup(s);
	assert_non_null(p);
	for (char *c = p; *c; c++)
		if (*c == '\'')
			*c = '"';
	return p;
}

/* Loads json (exactly len octets, in a heap copy so that ASan sees overreads) and parses it. */
static enum email_req_error test_parse_n(const char *json, size_t len, const struct email_req_limits *lim,
					 struct email_req **r, char *msg, size_t msg_size)
{
	char err[256];
	char *buf = test_dup(json, len);
	json_t *j = http_json_load(buf, len, HTTP_JSON_MAX_DEPTH, err, sizeof(err));
	free(buf);
	if (j == NULL)
		fail_msg("not loaded: %s", err);
	memset(msg, 'X', msg_size); /* the parser must terminate it */
	enum email_req_error e = email_req_parse(j, lim, r, msg, msg_size);
	json_decref(j);
	return e;
}

static enum email_req_error test_parse(const char *qjson, const struct email_req_limits *lim,
				       struct email_req **r, char *msg, size_t msg_size)
{
	char *json = test_q(qjson);
	enum email_req_error e = test_parse_n(json, strlen(json), lim, r, msg, msg_size);
	free(json);
	return e;
}

/* ---- json.c ---- */

static json_t *load(const char *s, size_t len, unsigned depth, char *err, size_t size)
{
	char *buf = test_dup(s, len);
	json_t *j = http_json_load(buf, len, depth, err, size);
	free(buf);
	return j;
}

static void test_json_table(void **state)
{
	static const struct {
		const char *in;
		size_t len; /* 0: strlen */
		bool ok;
		const char *in_err;
	} cases[] = {
		{ "{}", 0, true, NULL },
		{ " [1, 2.5, \"x\", null, true, {\"a\": []}] \n", 0, true, NULL },
		{ "{\"s\":\"\\u00fc \\ud83d\\ude00 \\\" \\\\\"}", 0, true, NULL },
		/* a whole document: nothing after it */
		{ "{} x", 0, false, "Invalid JSON at line 1, column 4" },
		{ "{}{}", 0, false, "Invalid JSON at line 1" },
		{ "{\"a\":1}\n,", 0, false, "line 2" },
		/* RFC 8259 §4: names SHOULD be unique; here they must */
		{ "{\"a\":1,\"a\":2}", 0, false, "duplicate" },
		{ "{\"a\":{\"b\":1,\"b\":1}}", 0, false, "duplicate" },
		/* UTF-8 (RFC 8259 §8.1) */
		{ "{\"a\":\"\xff\"}", 0, false, "Invalid JSON" },
		{ "{\"a\":\"\xc3\"}", 0, false, "Invalid JSON" },
		{ "{\"a\":\"\xed\xa0\x80\"}", 0, false, "Invalid JSON" }, /* a surrogate */
		{ "{\"a\":\"\\ud800\"}", 0, false, "Invalid JSON" },      /* a lone surrogate escape */
		/* NUL: escaped, raw in a string, raw outside */
		{ "{\"a\":\"x\\u0000y\"}", 0, false, "Invalid JSON" },
		{ "{\"a\\u0000\":1}", 0, false, "Invalid JSON" },
		{ "{\"a\":\"x\0y\"}", 11, false, "Invalid JSON" },
		{ "{}\0", 3, false, "Invalid JSON" },
		/* raw control characters in strings */
		{ "{\"a\":\"x\ny\"}", 0, false, "Invalid JSON" },
		/* only an object or an array at the top */
		{ "\"x\"", 0, false, "Invalid JSON" },
		{ "1", 0, false, "Invalid JSON" },
		{ "", 0, false, "Invalid JSON" },
		{ "   ", 0, false, "Invalid JSON" },
		{ "{\"a\":1,}", 0, false, "Invalid JSON" },
		{ "{'a':1}", 0, false, "Invalid JSON" },
		{ "{\"a\":1e999}", 0, false, "Invalid JSON" },
		{ "\xef\xbb\xbf{}", 0, false, "Invalid JSON" }, /* RFC 8259 §8.1: no BOM */
		/* depth: brackets in strings do not count, escapes do not end strings */
		{ "[\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"]", 0, true, NULL },
		{ "[\"\\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"]", 0, true, NULL },
		/* after an escaped backslash the string has ended: the brackets count */
		{ "[\"\\\\\",[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]", 0, false,
		  "nested deeper than 32 levels" },
		/* unbalanced or unterminated: left to jansson */
		{ "]]]]{}", 0, false, "Invalid JSON" },
		{ "[\"abc", 0, false, "Invalid JSON" },
		{ "[\"abc\\", 0, false, "Invalid JSON" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[256], esc[512];
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].in);
		memset(err, 'X', sizeof(err));
		json_t *j = load(cases[i].in, len, HTTP_JSON_MAX_DEPTH, err, sizeof(err));
		if ((j != NULL) != cases[i].ok)
			fail_msg("json case %zu \"%s\": %s", i,
				 test_escape(cases[i].in, len, esc, sizeof(esc)), j ? "loaded" : err);
		if (j == NULL && strstr(err, cases[i].in_err) == NULL)
			fail_msg("json case %zu: error \"%s\" lacks \"%s\"", i, err, cases[i].in_err);
		if (j != NULL)
			assert_true(json_is_object(j) || json_is_array(j));
		json_decref(j);
	}
}

/* Nesting exactly at the limit loads; one more is refused by the pre-scan, with its position. */
static void test_json_depth(void **state)
{
	char err[256], buf[512];
	(void)state;
	/* {"k":[{"k":[ ... 0 ... ]}]}: objects and arrays in turn */
	for (unsigned depth = 1; depth <= 40; depth++) {
		for (unsigned limit = 1; limit <= 34; limit += 11) {
			size_t n = 0;
			for (unsigned k = 0; k < depth; k++) {
				if (k % 2) {
					buf[n++] = '[';
				} else {
					memcpy(buf + n, "{\"k\":", 5);
					n += 5;
				}
			}
			buf[n++] = '0';
			for (unsigned k = depth; k-- > 0;)
				buf[n++] = k % 2 ? ']' : '}';
			json_t *j = load(buf, n, limit, err, sizeof(err));
			if ((j != NULL) != (depth <= limit))
				fail_msg("depth %u limit %u: %s", depth, limit, j ? "loaded" : err);
			if (j == NULL && depth > limit)
				assert_non_null(strstr(err, "nested deeper than"));
			json_decref(j);
		}
	}
	/* the position of the refused bracket, counted as jansson counts (characters, lines from 1) */
	const char s[] = "{\"\xc3\xbc\":\n  [[[";
	json_t *j = load(s, sizeof(s) - 1, 3, err, sizeof(err));
	assert_null(j);
	assert_string_equal(err, "Invalid JSON at line 2, column 5: nested deeper than 3 levels.");
	/* a NULL or empty error buffer is allowed */
	assert_null(http_json_load("{", 1, 32, NULL, 0));
	assert_null(http_json_load(NULL, 0, 32, err, sizeof(err)));
	/* a small buffer is truncated, never overrun */
	char tiny[8];
	assert_null(load("{} x", 4, 32, tiny, sizeof(tiny)));
	assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
}

/* 1,000,000 '[' (and the same inside a string, then opened): refused before jansson sees them, at once. */
static void test_json_hostile_depth(void **state)
{
	(void)state;
	size_t n = 1000000;
	char *s = malloc(n + 3);
	char err[256];
	assert_non_null(s);
	memset(s, '[', n);
	clock_t t0 = clock();
	assert_null(http_json_load(s, n, HTTP_JSON_MAX_DEPTH, err, sizeof(err)));
	assert_non_null(strstr(err, "column 33: nested deeper than 32 levels"));
	/* inside a string they are text: the document is then simply unterminated */
	s[0] = '[';
	s[1] = '"';
	assert_null(http_json_load(s, n, HTTP_JSON_MAX_DEPTH, err, sizeof(err)));
	assert_null(strstr(err, "nested"));
	s[n] = '"';
	s[n + 1] = ']';
	json_t *j = http_json_load(s, n + 2, HTTP_JSON_MAX_DEPTH, err, sizeof(err));
	assert_non_null(j);
	assert_int_equal(json_string_length(json_array_get(j, 0)), n - 2);
	json_decref(j);
	/* linear: well under a second even with sanitizers */
	assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 2.0);
	free(s);
}

/* ---- email_mailbox_parse ---- */

static void test_mailbox(void **state)
{
	static const struct {
		const char *in;
		const char *name; /* NULL: none */
		const char *addr; /* NULL: refused */
	} cases[] = {
		{ "a@example.com", NULL, "a@example.com" },
		{ "  a@example.com\t", NULL, "a@example.com" },
		{ "<a@example.com>", NULL, "a@example.com" },
		{ "< a@example.com >", NULL, "a@example.com" },
		{ "Acme <onboarding@resend.dev>", "Acme", "onboarding@resend.dev" },
		{ "  Acme Corp   <a@b.example> ", "Acme Corp", "a@b.example" },
		{ "\"Doe, John\" <j@example.com>", "Doe, John", "j@example.com" },
		{ "\"Say \\\"hi\\\" \\\\ o\" <j@example.com>", "Say \"hi\" \\ o", "j@example.com" },
		{ "\"a <b@c.d>\" <j@example.com>", "a <b@c.d>", "j@example.com" },
		{ "\"\" <j@example.com>", NULL, "j@example.com" },
		{ "\"Jo\" Smith <j@example.com>", "\"Jo\" Smith", "j@example.com" },
		{ "J\xc3\xbcrgen <j@m\xc3\xbcnchen.example>", "J\xc3\xbcrgen", "j@m\xc3\xbcnchen.example" },
		{ "\"a<b\"@example.com", NULL, "\"a<b\"@example.com" },
		{ "Name\t<j@example.com>", "Name", "j@example.com" },
		/* refused */
		{ "", NULL, NULL },
		{ "   ", NULL, NULL },
		{ "nope", NULL, NULL },
		{ "Name a@example.com", NULL, NULL },
		{ "Name <a@example.com> x", NULL, NULL },
		{ "Name <a@example.com>>", NULL, NULL },
		{ "Name <a@example.com", NULL, NULL },
		{ "Name <>", NULL, NULL },
		{ "Name <a@>", NULL, NULL },
		{ "Name <a@b.c>, Other <d@e.f>", NULL, NULL },
		{ "\"unterminated <a@example.com>", NULL, NULL },
		{ "Na\r\nBcc: x@evil.example <a@example.com>", NULL, NULL },
		{ "Name\r\n <a@example.com>", NULL, NULL },
		{ "\"Na\\\r\\\nme\" <a@example.com>", NULL, NULL },
		{ "N\x01 <a@example.com>", NULL, NULL },
		{ "N\xff <a@example.com>", NULL, NULL },
		{ "a@example.com\r\n", NULL, NULL },
		{ "a@exa mple.com", NULL, NULL },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct email_mailbox m;
		const char *err = NULL;
		char esc[256];
		bool ok = email_mailbox_parse(cases[i].in, &m, &err);
		if (ok != (cases[i].addr != NULL))
			fail_msg("mailbox case %zu \"%s\": %s", i,
				 test_escape(cases[i].in, strlen(cases[i].in), esc, sizeof(esc)),
				 ok ? "accepted" : err);
		if (!ok) {
			assert_non_null(err);
			assert_null(m.name);
			continue;
		}
		assert_string_equal(m.addr.text, cases[i].addr);
		if (cases[i].name == NULL)
			assert_null(m.name);
		else
			assert_string_equal(m.name, cases[i].name);
		free(m.name);
	}

	/* the name: 256 octets, quoted or not; 257 refused */
	char buf[600];
	memset(buf, 'n', 256);
	strcpy(buf + 256, " <a@example.com>");
	struct email_mailbox m;
	const char *err;
	assert_true(email_mailbox_parse(buf, &m, &err));
	assert_int_equal(strlen(m.name), 256);
	free(m.name);
	buf[0] = '"';
	memset(buf + 1, 'n', 256);
	strcpy(buf + 257, "\" <a@example.com>");
	assert_true(email_mailbox_parse(buf, &m, &err));
	assert_int_equal(strlen(m.name), 256);
	free(m.name);
	memset(buf, 'n', 257);
	strcpy(buf + 257, " <a@example.com>");
	assert_false(email_mailbox_parse(buf, &m, &err));
	buf[0] = '"';
	memset(buf + 1, 'n', 257);
	strcpy(buf + 258, "\" <a@example.com>");
	assert_false(email_mailbox_parse(buf, &m, &err));
	assert_non_null(strstr(err, "256"));
}

/* ---- email_req_parse_time ---- */

static void test_time(void **state)
{
	static const struct {
		const char *in;
		bool ok;
		int64_t t;
	} cases[] = {
		{ "2024-08-05T11:52:01.858Z", true, 1722858721 },
		{ "2024-08-05T11:52:01Z", true, 1722858721 },
		{ "2024-08-05t11:52:01z", true, 1722858721 },
		{ "2024-08-05 11:52:01Z", true, 1722858721 },
		{ "2024-08-05T13:52:01+02:00", true, 1722858721 },
		{ "2024-08-05T11:52:01.123456789-09:30", true, 1722892921 },
		{ "2024-08-05T11:52:01-00:00", true, 1722858721 },
		{ "2024-02-29T00:00:00Z", true, 1709164800 },
		{ "2000-02-29T23:59:59Z", true, 951868799 },
		{ "2000-02-29T23:59:60Z", true, 951868799 }, /* a leap second counts as :59 */
		{ "1969-12-31T23:59:59Z", true, -1 },
		{ "0001-01-01T00:00:00Z", true, -62135596800 },
		{ "9999-12-31T23:59:59Z", true, 253402300799 },
		{ "2024-12-31T23:59:59+23:59", true, 1735689599 - 86340 },
		/* refused */
		{ "2023-02-29T00:00:00Z", false, 0 },
		{ "1900-02-29T00:00:00Z", false, 0 },
		{ "2024-02-30T00:00:00Z", false, 0 },
		{ "2024-04-31T00:00:00Z", false, 0 },
		{ "2024-13-01T00:00:00Z", false, 0 },
		{ "2024-00-01T00:00:00Z", false, 0 },
		{ "2024-01-00T00:00:00Z", false, 0 },
		{ "2024-01-32T00:00:00Z", false, 0 },
		{ "2024-01-01T24:00:00Z", false, 0 },
		{ "2024-01-01T23:60:00Z", false, 0 },
		{ "2024-01-01T23:59:61Z", false, 0 },
		{ "2024-01-01T00:00:00+24:00", false, 0 },
		{ "2024-01-01T00:00:00+01:60", false, 0 },
		{ "2024-01-01T00:00:00+0100", false, 0 },
		{ "2024-01-01T00:00:00", false, 0 },
		{ "2024-01-01T00:00Z", false, 0 },
		{ "2024-01-01", false, 0 },
		{ "2024-01-01T00:00:00.Z", false, 0 },
		{ "2024-01-01T00:00:00ZZ", false, 0 },
		{ "2024-01-01T00:00:00Z ", false, 0 },
		{ " 2024-01-01T00:00:00Z", false, 0 },
		{ "2024-1-01T00:00:00Z", false, 0 },
		{ "+2024-01-01T00:00:00Z", false, 0 },
		{ "2024-01-01X00:00:00Z", false, 0 },
		{ "", false, 0 },
		{ "in 1 min", false, 0 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t t = 42;
		bool ok = email_req_parse_time(cases[i].in, &t);
		if (ok != cases[i].ok || (ok && t != cases[i].t))
			fail_msg("time case %zu \"%s\": %s %lld, want %lld", i, cases[i].in,
				 ok ? "ok" : "refused", (long long)t, (long long)cases[i].t);
	}
	/* every day of 1970..2100 agrees with timegm */
	for (int64_t day = 0; day < 131 * 366; day++) {
		time_t tt = (time_t)(day * 86400 + 3723);
		struct tm tm;
		char s[40];
		int64_t t;
		gmtime_r(&tt, &tm);
		strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%SZ", &tm);
		assert_true(email_req_parse_time(s, &t));
		assert_int_equal(t, (int64_t)tt);
	}
	/* to the millisecond: the fraction's first three digits, the offset applied */
	static const struct {
		const char *in;
		bool ok;
		int64_t ms;
	} ms_cases[] = {
		{"2024-02-29T12:00:00Z", true, 1709208000000},
		{"2024-02-29T12:00:00.5Z", true, 1709208000500},
		{"2024-02-29T12:00:00.123Z", true, 1709208000123},
		{"2024-02-29T12:00:00.1239999Z", true, 1709208000123},
		{"2024-02-29T13:00:00.040+01:00", true, 1709208000040},
		{"2024-02-29T12:00:00.Z", false, 0},
		{"2024-02-29T12:00:00.5", false, 0},
	};
	for (size_t i = 0; i < sizeof(ms_cases) / sizeof(ms_cases[0]); i++) {
		int64_t ms = 42;
		bool ok = email_req_parse_time_ms(ms_cases[i].in, &ms);
		if (ok != ms_cases[i].ok || (ok && ms != ms_cases[i].ms))
			fail_msg("ms case %zu \"%s\": %s %lld", i, ms_cases[i].in, ok ? "ok" : "refused", (long long)ms);
	}
}

/* ---- email_req_parse: a full request ---- */

static void test_full_request(void **state)
{
	(void)state;
	char msg[256];
	struct email_req *r = NULL;
	const char *json =
		"{'from':'\\'Acme, Inc.\\' <onboarding@resend.dev>',"
		"'to':['delivered@resend.dev','Bob <bob@example.org>'],'cc':'cc@example.org','bcc':[],"
		"'reply_to':['r1@example.org','R2 <r2@example.org>'],'subject':'hello w\xc3\xb6rld',"
		"'html':'<p>it works!</p>','text':'it works!',"
		"'headers':{'X-Entity-Ref-ID':'123456789','List-Unsubscribe':'<https://x.example/u>',"
		"'List-Unsubscribe-Post':'List-Unsubscribe=One-Click','Message-ID':'<abc@x.example>',"
		"'In-Reply-To':''},"
		"'attachments':[{'filename':'invoice.PDF','content':'aGVs\\r\\nbG8='},"
		"{'content':'aGk','content_id':'logo','content_type':'image/png'},"
		"{'filename':'invite.ics','content':'',"
		"'content_type':'text/calendar; method=REQUEST; charset=\\'utf-8\\''},"
		"{'filename':'x.tar.gz','content':'YQ==','content_id':null}],"
		"'tags':[{'name':'category','value':'confirm_email'},{'name':'A-b_9','value':'-'}],"
		"'scheduled_at':'in 1 min','topic_id':null,'unknown':{'deep':[1,2,3]},'react':null}";
	/* \' is the JSON escape \" once test_q has turned every ' into " */
	char *q = test_q(json);
	assert_int_equal(test_parse_n(q, strlen(q), &lim_default, &r, msg, sizeof(msg)), EMAIL_REQ_OK);
	free(q);
	assert_non_null(r);
	assert_string_equal(msg, "");
	assert_string_equal(r->from.name, "Acme, Inc.");
	assert_string_equal(r->from.addr.text, "onboarding@resend.dev");
	assert_int_equal(r->to_count, 2);
	assert_null(r->to[0].name);
	assert_string_equal(r->to[1].name, "Bob");
	assert_string_equal(r->to[1].addr.text, "bob@example.org");
	assert_int_equal(r->cc_count, 1);
	assert_int_equal(r->bcc_count, 0);
	assert_int_equal(r->reply_to_count, 2);
	assert_string_equal(r->reply_to[1].name, "R2");
	assert_string_equal(r->subject, "hello w\xc3\xb6rld");
	assert_string_equal(r->html, "<p>it works!</p>");
	assert_string_equal(r->text, "it works!");
	assert_int_equal(r->header_count, 5);
	assert_string_equal(r->headers[0].name, "X-Entity-Ref-ID");
	assert_string_equal(r->headers[0].value, "123456789");
	assert_string_equal(r->headers[3].name, "Message-ID");
	assert_string_equal(r->headers[4].value, "");
	assert_int_equal(r->attachment_count, 4);
	struct email_attachment *a = r->attachments;
	assert_string_equal(a[0].filename, "invoice.PDF");
	assert_int_equal(a[0].size, 5);
	assert_memory_equal(a[0].content, "hello", 5);
	assert_string_equal(a[0].content_type, "application/pdf");
	assert_null(a[0].content_id);
	assert_null(a[0].path);
	assert_null(a[1].filename);
	assert_int_equal(a[1].size, 2);
	assert_memory_equal(a[1].content, "hi", 2);
	assert_string_equal(a[1].content_id, "logo");
	assert_string_equal(a[1].content_type, "image/png");
	assert_int_equal(a[2].size, 0);
	assert_non_null(a[2].content);
	assert_string_equal(a[2].content_type, "text/calendar; method=REQUEST; charset=\"utf-8\"");
	assert_string_equal(a[3].content_type, "application/gzip");
	assert_int_equal(r->tag_count, 2);
	assert_string_equal(r->tags[1].name, "A-b_9");
	assert_string_equal(r->tags[1].value, "-");
	assert_int_equal(r->scheduled_at, NOW + 60);
	email_req_free(r);

	/* the smallest request, as the SDK sends it */
	assert_int_equal(test_parse("{'from':'a@example.com','to':'b@example.org','subject':'','html':''}",
				    &lim_default, &r, msg, sizeof(msg)),
			 EMAIL_REQ_OK);
	assert_null(r->from.name);
	assert_string_equal(r->subject, "");
	assert_string_equal(r->html, "");
	assert_null(r->text);
	assert_int_equal(r->scheduled_at, 0);
	assert_null(r->headers);
	assert_null(r->attachments);
	assert_null(r->tags);
	email_req_free(r);
	email_req_free(NULL);

	/* a URL attachment when allowed: kept for the fetcher, its type from the URL's name */
	assert_int_equal(test_parse("{'from':'a@example.com','to':'b@example.org','subject':'s','text':'t',"
				    "'attachments':[{'path':'https://cdn.example/a/logo.PNG?v=2#x'},"
				    "{'path':'http://cdn.example','filename':'r.csv'}]}",
				    &lim_urls, &r, msg, sizeof(msg)),
			 EMAIL_REQ_OK);
	assert_string_equal(r->attachments[0].path, "https://cdn.example/a/logo.PNG?v=2#x");
	assert_null(r->attachments[0].content);
	assert_int_equal(r->attachments[0].size, 0);
	assert_string_equal(r->attachments[0].content_type, "image/png");
	assert_string_equal(r->attachments[1].content_type, "text/csv");
	email_req_free(r);
}

/* ---- email_req_parse: the rules, one table ---- */

#define F "'from':'Acme <acme@example.com>'"
#define T "'to':'bob@example.org'"
#define S "'subject':'hi'"
#define X "'text':'body'"
#define B F "," T "," S "," X
#define ATT(x) "{" B ",'attachments':[" x "]}"
#define HDR(x) "{" B ",'headers':{" x "}}"
#define TAG(x) "{" B ",'tags':[" x "]}"
#define SCH(x) "{" B ",'scheduled_at':" x "}"
#define IRT(x) "{" B ",'in_reply_to':" x "}"
#define REF(x) "{" B ",'references':" x "}"

enum {
	OK = EMAIL_REQ_OK,
	MISS = EMAIL_REQ_MISSING_FIELD,
	VAL = EMAIL_REQ_VALIDATION,
	FROM = EMAIL_REQ_INVALID_FROM,
	ATTM = EMAIL_REQ_INVALID_ATTACHMENT
};

static const struct req_case {
	const char *json;
	int want;
	const char *in_msg;                 /* must appear in the message (the field it names) */
	const struct email_req_limits *lim; /* NULL: lim_default */
} req_cases[] = {
	/* the top level */
	{ "[]", VAL, "JSON object", NULL },
	{ "{}", MISS, "Missing `from` field.", NULL },
	{ "{" B ",'topic_id':'t','foo':{'bar':[null]},'react':5}", OK, NULL, NULL },
	{ "{" B ",'template':{'id':'x'}}", VAL, "`template` field is not supported", NULL },
	{ "{" B ",'template':null}", OK, NULL, NULL },
	/* from */
	{ "{" T "," S "," X "}", MISS, "Missing `from` field.", NULL },
	{ "{'from':null," T "," S "," X "}", MISS, "Missing `from` field.", NULL },
	{ "{'from':5," T "," S "," X "}", VAL, "The `from` field must be a string.", NULL },
	{ "{'from':['a@example.com']," T "," S "," X "}", VAL, "`from`", NULL },
	{ "{'from':'nope'," T "," S "," X "}", FROM,
	  "Invalid `from` field. The email address needs to follow the `email@example.com` or "
	  "`Name <email@example.com>` format.",
	  NULL },
	{ "{'from':''," T "," S "," X "}", FROM, "`from`", NULL },
	{ "{'from':'A <a@example.com> x'," T "," S "," X "}", FROM, "`from`", NULL },
	{ "{'from':'A <a@example.com'," T "," S "," X "}", FROM, "`from`", NULL },
	{ "{'from':'a@example.com, b@example.com'," T "," S "," X "}", FROM, "`from`", NULL },
	{ "{'from':'A\\r\\nBcc: x@evil.example <a@example.com>'," T "," S "," X "}", FROM, "`from`", NULL },
	{ "{'from':'<a@example.com>'," T "," S "," X "}", OK, NULL, NULL },
	{ "{'from':'a@[192.0.2.1]'," T "," S "," X "}", OK, NULL, NULL },
	/* to */
	{ "{" F "," S "," X "}", MISS, "Missing `to` field.", NULL },
	{ "{" F ",'to':null," S "," X "}", MISS, "Missing `to` field.", NULL },
	{ "{" F ",'to':[]," S "," X "}", VAL, "The `to` field must contain at least one recipient.", NULL },
	{ "{" F ",'to':5," S "," X "}", VAL, "The `to` field must be a string or an array of strings.",
	  NULL },
	{ "{" F ",'to':{'a':'b@example.org'}," S "," X "}", VAL, "`to` field must be a string or an array",
	  NULL },
	{ "{" F ",'to':['b@example.org',5]," S "," X "}", VAL, "`to` field must be a string or an array",
	  NULL },
	{ "{" F ",'to':['b@example.org',null]," S "," X "}", VAL, "`to` field must be a string or an array",
	  NULL },
	{ "{" F ",'to':'bad'," S "," X "}", VAL, "Invalid `to` field", NULL },
	{ "{" F ",'to':['b@example.org','bad']," S "," X "}", VAL, "Invalid `to[1]` field", NULL },
	{ "{" F ",'to':['b@example.org','x\\r\\n@example.org']," S "," X "}", VAL, "Invalid `to[1]` field",
	  NULL },
	{ "{" F ",'to':['Bob <b@example.org>','\\'C, D\\' <c@example.org>']," S "," X "}", OK, NULL, NULL },
	/* cc, bcc, reply_to: optional; null and [] are "not given" */
	{ "{" B ",'cc':null,'bcc':null,'reply_to':null}", OK, NULL, NULL },
	{ "{" B ",'cc':[],'bcc':[],'reply_to':[]}", OK, NULL, NULL },
	{ "{" B ",'cc':'bad'}", VAL, "Invalid `cc` field", NULL },
	{ "{" B ",'bcc':['a@example.org','bad']}", VAL, "Invalid `bcc[1]` field", NULL },
	{ "{" B ",'reply_to':'bad'}", VAL, "Invalid `reply_to` field", NULL },
	{ "{" B ",'reply_to':true}", VAL, "`reply_to` field must be a string or an array", NULL },
	{ "{" B ",'cc':5}", VAL, "`cc`", NULL },
	/* subject */
	{ "{" F "," T "," X "}", MISS, "Missing `subject` field.", NULL },
	{ "{" F "," T ",'subject':null," X "}", MISS, "Missing `subject` field.", NULL },
	{ "{" F "," T ",'subject':5," X "}", VAL, "The `subject` field must be a string.", NULL },
	{ "{" F "," T ",'subject':'a\\r\\nBcc: x@evil.example'," X "}", VAL,
	  "`subject` field must not contain CR or LF", NULL },
	{ "{" F "," T ",'subject':'a\\nb'," X "}", VAL, "`subject`", NULL },
	{ "{" F "," T ",'subject':'a\\rb'," X "}", VAL, "`subject`", NULL },
	{ "{" F "," T ",'subject':'tab\\there \xe2\x9c\x93'," X "}", OK, NULL, NULL },
	/* html, text */
	{ "{" F "," T "," S "}", MISS, "Missing `html` or `text` field.", NULL },
	{ "{" F "," T "," S ",'html':null,'text':null}", MISS, "Missing `html` or `text` field.", NULL },
	{ "{" F "," T "," S ",'html':'<b>x</b>'}", OK, NULL, NULL },
	{ "{" F "," T "," S ",'html':5}", VAL, "The `html` field must be a string.", NULL },
	{ "{" F "," T "," S ",'text':['x']}", VAL, "The `text` field must be a string.", NULL },
	{ "{" F "," T "," S ",'react':'<Email />'}", VAL, "`react`", NULL },
	/* headers */
	{ HDR(""), OK, NULL, NULL },
	{ "{" B ",'headers':null}", OK, NULL, NULL },
	{ "{" B ",'headers':[]}", VAL, "The `headers` field must be an object.", NULL },
	{ "{" B ",'headers':'X-A: b'}", VAL, "`headers`", NULL },
	{ HDR("'X-A':5"), VAL, "The `X-A` header in `headers` must be a string.", NULL },
	{ HDR("'X-A':null"), VAL, "`X-A`", NULL },
	{ HDR("'X-A':'a\\r\\nBcc: x@evil.example'"), VAL,
	  "The `X-A` header in `headers` must not contain CR or LF.", NULL },
	{ HDR("'X-A':'a\\nb'"), VAL, "`X-A`", NULL },
	{ HDR("'X-A':'a\\rb'"), VAL, "`X-A`", NULL },
	{ HDR("'X-A\\r\\nBcc':'x'"), VAL, "header name in `headers` contains CR or LF", NULL },
	{ HDR("'X-A\\n':'x'"), VAL, "CR or LF", NULL },
	{ HDR("'X A':'x'"), VAL, "header name in `headers` is not valid", NULL },
	{ HDR("'':'x'"), VAL, "not valid", NULL },
	{ HDR("'X:A':'x'"), VAL, "not valid", NULL },
	{ HDR("'X-\xc3\xbc':'x'"), VAL, "not valid", NULL },
	{ HDR("'X-\\u007f':'x'"), VAL, "not valid", NULL },
	{ HDR("'bcc':'x@evil.example'"), VAL,
	  "The `bcc` header cannot be set in `headers`: use the `bcc` field.", NULL },
	{ HDR("'REPLY-TO':'x@example.org'"), VAL,
	  "`REPLY-TO` header cannot be set in `headers`: use the `reply_to` field", NULL },
	{ HDR("'From':'x'"), VAL, "`from` field", NULL },
	{ HDR("'to':'x'"), VAL, "`to` field", NULL },
	{ HDR("'Cc':'x'"), VAL, "`cc` field", NULL },
	{ HDR("'Subject':'x'"), VAL, "`subject` field", NULL },
	{ HDR("'Sender':'x'"), VAL, "`Sender`", NULL },
	{ HDR("'Date':'x'"), VAL, "`scheduled_at`", NULL },
	{ HDR("'mime-version':'1.0'"), VAL, "`mime-version`", NULL },
	{ HDR("'Content-Type':'text/plain'"), VAL, "`Content-Type` header cannot be set", NULL },
	{ HDR("'Content-Transfer-Encoding':'8bit'"), VAL, "cannot be set", NULL },
	{ HDR("'Return-Path':'<x@example.org>'"), VAL, "cannot be set", NULL },
	{ HDR("'Content-ID':'<x@y>'"), VAL, "`content_id` in `attachments`", NULL },
	{ HDR("'content-disposition':'inline'"), VAL, "cannot be set", NULL },
	{ HDR("'Received':'from x'"), VAL, "cannot be set", NULL },
	{ HDR("'DKIM-Signature':'v=1'"), VAL, "cannot be set", NULL },
	{ HDR("'Authentication-Results':'x; dkim=pass'"), VAL, "cannot be set", NULL },
	{ HDR("'ARC-Seal':'i=1'"), VAL, "cannot be set", NULL },
	{ HDR("'X-A':'1','x-a':'2'"), VAL, "The `x-a` header is given twice in `headers`", NULL },
	{ HDR("'List-Unsubscribe':'<mailto:u@example.org>',"
	      "'List-Unsubscribe-Post':'List-Unsubscribe=One-Click'"),
	  OK, NULL, NULL },
	{ HDR("'Message-ID':'<a.b@example.org>','References':'<x@y> <z@w>','In-Reply-To':'<x@y>'"), OK, NULL,
	  NULL },
	{ HDR("'Message-ID':'nope'"), VAL,
	  "The `Message-ID` header in `headers` must look like `<id@domain>`", NULL },
	{ HDR("'message-id':'<a@b'"), VAL, "`Message-ID`", NULL },
	{ HDR("'Message-ID':'<@b>'"), VAL, "`Message-ID`", NULL },
	{ HDR("'Message-ID':'<a@>'"), VAL, "`Message-ID`", NULL },
	{ HDR("'Message-ID':'<a b@c>'"), VAL, "`Message-ID`", NULL },
	{ HDR("'Message-ID':'<a<b@c>'"), VAL, "`Message-ID`", NULL },
	{ HDR("'X-Utf8':'J\xc3\xbcrgen \\t tab'"), OK, NULL, NULL },
	/* attachments */
	{ "{" B ",'attachments':null}", OK, NULL, NULL },
	{ ATT(""), OK, NULL, NULL },
	{ "{" B ",'attachments':{}}", VAL, "The `attachments` field must be an array.", NULL },
	{ ATT("5"), ATTM, "The `attachments[0]` field must be an object.", NULL },
	{ ATT("{}"), ATTM, "Invalid `attachments[0]`: `content` or `path` is required.", NULL },
	{ ATT("{'filename':'a.txt','content':null,'path':null}"), ATTM, "`content` or `path` is required",
	  NULL },
	{ ATT("{'filename':'a.txt','content':'YQ==','path':'https://x.example/a'}"), ATTM, "not both", NULL },
	{ ATT("{'filename':'a.txt','content':'YQ=='},{'filename':'b.txt','content':'YQ=='},"
	      "{'filename':'c.txt','content':'not base64!'}"),
	  ATTM, "Invalid `attachments[2].content`: not base64.", NULL },
	{ ATT("{'filename':'a.txt','content':5}"), ATTM,
	  "The `attachments[0].content` field must be a string.", NULL },
	{ ATT("{'filename':'a.txt','content':[1,2]}"), ATTM, "`attachments[0].content`", NULL },
	{ ATT("{'filename':'a.txt','content':'YQ'}"), OK, NULL, NULL }, /* padding left out */
	{ ATT("{'filename':'a.txt','content':'YWI'}"), OK, NULL, NULL },
	{ ATT("{'filename':'a.txt','content':'YQ='}"), ATTM, "not base64", NULL }, /* padding half there */
	{ ATT("{'filename':'a.txt','content':'Y'}"), ATTM, "not base64", NULL },
	{ ATT("{'filename':'a.txt','content':'YQ==YQ=='}"), ATTM, "not base64", NULL },
	{ ATT("{'filename':'a.txt','content':'YQ==='}"), ATTM, "not base64", NULL },
	{ ATT("{'filename':'a.txt','content':'YWJj='}"), ATTM, "not base64", NULL },
	{ ATT("{'filename':'a.txt','content':'='}"), ATTM, "not base64", NULL },
	{ ATT("{'filename':'a.txt','content':'YW-_'}"), ATTM, "not base64",
	  NULL }, /* base64url is not base64 */
	{ ATT("{'filename':'a.txt','content':'data:text/plain;base64,YQ=='}"), ATTM, "not base64", NULL },
	{ ATT("{'filename':'a.txt','content':' YW Jj\\r\\nZG Vm\\n\\tZw = = '}"), OK, NULL, NULL },
	{ ATT("{'filename':'a.txt','path':'https://x.example/a.txt'}"), ATTM,
	  "Invalid `attachments[0].path`: this server does not fetch attachments from URLs", NULL },
	{ ATT("{'filename':'a.txt','path':'https://x.example/a.txt'}"), OK, NULL, &lim_urls },
	{ ATT("{'path':'ftp://x.example/a.txt'}"), ATTM,
	  "`attachments[0].path`: it must be an http or https URL", &lim_urls },
	{ ATT("{'path':'https://'}"), ATTM, "`attachments[0].path`", &lim_urls },
	{ ATT("{'path':'https://x.example/a b'}"), ATTM, "`attachments[0].path`", &lim_urls },
	{ ATT("{'path':'https://x.example/a\\r\\nb'}"), ATTM, "`attachments[0].path`", &lim_urls },
	{ ATT("{'path':5}"), ATTM, "`attachments[0].path`", &lim_urls },
	{ ATT("{'content':'YQ=='}"), MISS, "Missing `attachments[0].filename` field.", NULL },
	{ ATT("{'content':'YQ==','filename':false}"), MISS, "`attachments[0].filename`", NULL },
	{ ATT("{'content':'YQ==','filename':false,'content_id':'img1'}"), OK, NULL, NULL },
	{ ATT("{'content':'YQ==','filename':5}"), ATTM,
	  "The `attachments[0].filename` field must be a string.", NULL },
	{ ATT("{'content':'YQ==','filename':''}"), ATTM,
	  "Invalid `attachments[0].filename`: it must be 1 to 255 octets.", NULL },
	{ ATT("{'content':'YQ==','filename':'a\\r\\nContent-Type: text/html'}"), ATTM,
	  "Invalid `attachments[0].filename`: control characters", NULL },
	{ ATT("{'content':'YQ==','filename':'a\\tb.txt'}"), ATTM, "`attachments[0].filename`", NULL },
	{ ATT("{'content':'YQ==','filename':'R\xc3\xa9sum\xc3\xa9 \\'final\\'.pdf'}"), OK, NULL, NULL },
	{ ATT("{'content':'YQ==','filename':'a.txt','content_type':'pdf'}"), ATTM,
	  "Invalid `attachments[0].content_type`", NULL },
	{ ATT("{'content':'YQ==','filename':'a.txt','content_type':'text/'}"), ATTM,
	  "`attachments[0].content_type`", NULL },
	{ ATT("{'content':'YQ==','filename':'a.txt','content_type':'/plain'}"), ATTM,
	  "`attachments[0].content_type`", NULL },
	{ ATT("{'content':'YQ==','filename':'a.txt','content_type':'text/plain\\r\\nX: y'}"), ATTM,
	  "content_type", NULL },
	{ ATT("{'content':'YQ==','filename':'a.txt','content_type':'text/pl ain'}"), ATTM, "content_type",
	  NULL },
	{ ATT("{'content':'YQ==','filename':'a.txt','content_type':'text/plain;'}"), ATTM, "content_type",
	  NULL },
	{ ATT("{'content':'YQ==','filename':'a.txt','content_type':'text/plain; charset'}"), ATTM,
	  "content_type", NULL },
	{ ATT("{'content':'YQ==','filename':'a.txt','content_type':'text/plain; charset=\\'x'}"), ATTM,
	  "content_type", NULL },
	{ ATT("{'content':'YQ==','filename':'a.txt','content_type':'multipart/mixed; boundary=x'}"), ATTM,
	  "multipart", NULL },
	{ ATT("{'content':'YQ==','filename':'a.txt','content_type':'Text/Plain ; charset = utf-8'}"), ATTM,
	  "content_type", NULL },
	{ ATT("{'content':'YQ==','filename':'a.txt','content_type':'Text/Plain ; charset=utf-8 '}"), OK, NULL,
	  NULL },
	{ ATT("{'content':'YQ==','filename':'a.eml','content_type':'message/rfc822'}"), OK, NULL, NULL },
	{ ATT("{'content':'YQ==','filename':'a.txt','content_type':'application/vnd.ms-excel'}"), OK, NULL,
	  NULL },
	{ ATT("{'content':'YQ==','content_id':'a b'}"), ATTM, "Invalid `attachments[0].content_id`", NULL },
	{ ATT("{'content':'YQ==','content_id':'<x@y>'}"), ATTM, "`attachments[0].content_id`", NULL },
	{ ATT("{'content':'YQ==','content_id':''}"), ATTM, "`attachments[0].content_id`", NULL },
	{ ATT("{'content':'YQ==','content_id':'x\\r\\ny'}"), ATTM, "`attachments[0].content_id`", NULL },
	{ ATT("{'content':'YQ==','content_id':'\xc3\xbc'}"), ATTM, "`attachments[0].content_id`", NULL },
	{ ATT("{'content':'YQ==','content_id':5}"), ATTM, "`attachments[0].content_id`", NULL },
	{ ATT("{'content':'YQ==','content_id':'part1.x@example.org'}"), OK, NULL, NULL },
	/* the size: html + text + decoded attachments against max_size (10 here) */
	{ "{" F "," T "," S ",'text':'0123456789'}", OK, NULL, &lim_small },
	{ "{" F "," T "," S ",'text':'01234','html':'56789'}", OK, NULL, &lim_small },
	{ "{" F "," T "," S ",'text':'01234','html':'567890'}", VAL,
	  "The email is 11 octets (`html`, `text` and decoded `attachments` together), more than the "
	  "limit of 10.",
	  &lim_small },
	{ "{" F "," T "," S ",'text':'0123456','attachments':[{'filename':'a','content':'YWJj'}]}", OK, NULL,
	  &lim_small },
	{ "{" F "," T "," S ",'text':'0123456','attachments':[{'filename':'a','content':'YWJjZA=='}]}", VAL,
	  "The email is 11 octets", &lim_small },
	/* a URL's content is not known here: the fetcher checks it */
	{ "{" F "," T "," S ",'text':'0','attachments':[{'path':'https://x.example/big.bin'}]}", OK, NULL,
	  &lim_small_urls },
	/* tags */
	{ TAG(""), OK, NULL, NULL },
	{ "{" B ",'tags':null}", OK, NULL, NULL },
	{ "{" B ",'tags':{'name':'a','value':'b'}}", VAL, "The `tags` field must be an array.", NULL },
	{ TAG("5"), VAL, "The `tags[0]` field must be an object.", NULL },
	{ TAG("{'name':'a','value':'b'},{'name':'a'}"), VAL, "The `tags[1].value` field is required.", NULL },
	{ TAG("{'value':'b'}"), VAL, "The `tags[0].name` field is required.", NULL },
	{ TAG("{'name':5,'value':'b'}"), VAL, "The `tags[0].name` field must be a string.", NULL },
	{ TAG("{'name':'a','value':true}"), VAL, "The `tags[0].value` field must be a string.", NULL },
	{ TAG("{'name':'a b','value':'x'}"), VAL,
	  "The `tags[0].name` field must be 1 to 256 ASCII letters, digits, `_` or `-`.", NULL },
	{ TAG("{'name':'','value':'x'}"), VAL, "`tags[0].name`", NULL },
	{ TAG("{'name':'a','value':''}"), VAL, "`tags[0].value`", NULL },
	{ TAG("{'name':'a.b','value':'x'}"), VAL, "`tags[0].name`", NULL },
	{ TAG("{'name':'a','value':'\xc3\xbc'}"), VAL, "`tags[0].value`", NULL },
	{ TAG("{'name':'a','value':'x\\r\\ny'}"), VAL, "`tags[0].value`", NULL },
	{ TAG("{'name':'user_id','value':'Abc-123_x','extra':1}"), OK, NULL, NULL },
	/* scheduled_at: ISO 8601 or "in N unit", not before now - 60 s, not after now + 30 days + 60 s */
	{ SCH("null"), OK, NULL, NULL },
	{ SCH("5"), VAL, "The `scheduled_at` field must be a string.", NULL },
	{ SCH("'tomorrow at 9am'"), VAL, "The `scheduled_at` field must be an ISO 8601 date-time", NULL },
	{ SCH("''"), VAL, "`scheduled_at`", NULL },
	{ SCH("'2024-08-05T11:52:01'"), VAL, "`scheduled_at`", NULL },
	{ SCH("'2024-02-30T11:52:01Z'"), VAL, "`scheduled_at`", NULL },
	{ SCH("'2024-08-05T11:52:01.858Z'"), OK, NULL, NULL },
	{ SCH("'2024-08-05T11:51:01Z'"), OK, NULL, NULL },
	{ SCH("'2024-08-05T11:51:00Z'"), VAL, "The `scheduled_at` field must not be in the past.", NULL },
	{ SCH("'2020-01-01T00:00:00Z'"), VAL, "in the past", NULL },
	{ SCH("'2024-09-04T11:53:01Z'"), OK, NULL, NULL },
	{ SCH("'2024-09-04T11:53:02Z'"), VAL,
	  "The `scheduled_at` field must be at most 30 days in the future.", NULL },
	{ SCH("'2024-09-04 13:53:01+02:00'"), OK, NULL, NULL },
	{ SCH("'in 1 min'"), OK, NULL, NULL },
	{ SCH("'in 0 minutes'"), OK, NULL, NULL },
	{ SCH("'  IN  2   Hours '"), OK, NULL, NULL },
	{ SCH("'in 1minute'"), OK, NULL, NULL },
	{ SCH("'in 5 mins'"), OK, NULL, NULL },
	{ SCH("'in 1 hour'"), OK, NULL, NULL },
	{ SCH("'in 1 day'"), OK, NULL, NULL },
	{ SCH("'in 30 days'"), OK, NULL, NULL },
	{ SCH("'in 720 hours'"), OK, NULL, NULL },
	{ SCH("'in 721 hours'"), VAL, "at most 30 days", NULL },
	{ SCH("'in 31 days'"), VAL, "at most 30 days", NULL },
	{ SCH("'in 9999999 days'"), VAL, "at most 30 days", NULL },
	{ SCH("'in 99999999 days'"), VAL, "must be an ISO 8601", NULL },
	{ SCH("'in -1 min'"), VAL, "must be an ISO 8601", NULL },
	{ SCH("'in 1.5 hours'"), VAL, "must be an ISO 8601", NULL },
	{ SCH("'in 1 week'"), VAL, "must be an ISO 8601", NULL },
	{ SCH("'in 1 mi'"), VAL, "must be an ISO 8601", NULL },
	{ SCH("'in1 min'"), VAL, "must be an ISO 8601", NULL },
	{ SCH("'in 1 min ago'"), VAL, "must be an ISO 8601", NULL },
	{ SCH("'in min'"), VAL, "must be an ISO 8601", NULL },
	{ SCH("'in'"), VAL, "must be an ISO 8601", NULL },
	/* threading (RFC 5322 §3.6.4): in_reply_to is a received email's id or a msg-id */
	{ IRT("'<a@b>'"), OK, NULL, NULL },
	{ IRT("'<CAF+x.1=y_z@mail.example.com>'"), OK, NULL, NULL },
	{ IRT("'0f7e1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b'"), OK, NULL, NULL },
	{ IRT("'0F7E1B2C-3D4E-4F50-8A6B-7C8D9E0F1A2B'"), OK, NULL, NULL },
	{ IRT("null"), OK, NULL, NULL },
	{ IRT("'a@b'"), VAL, "The `in_reply_to` field must be a received email's id or a Message-ID", NULL },
	{ IRT("''"), VAL, "`in_reply_to`", NULL },
	{ IRT("'<>'"), VAL, "`in_reply_to`", NULL },
	{ IRT("'<@b>'"), VAL, "`in_reply_to`", NULL },
	{ IRT("'<a@>'"), VAL, "`in_reply_to`", NULL },
	{ IRT("'<ab>'"), VAL, "`in_reply_to`", NULL },
	{ IRT("'<a@b'"), VAL, "`in_reply_to`", NULL },
	{ IRT("'a@b>'"), VAL, "`in_reply_to`", NULL },
	{ IRT("' <a@b>'"), VAL, "`in_reply_to`", NULL },
	{ IRT("'<a b@c>'"), VAL, "`in_reply_to`", NULL },
	{ IRT("'<a\\tb@c>'"), VAL, "`in_reply_to`", NULL },
	{ IRT("'<a@b><c@d>'"), VAL, "`in_reply_to`", NULL },
	{ IRT("'<a@b> <c@d>'"), VAL, "`in_reply_to`", NULL },
	{ IRT("'<j\\u00f6rg@b>'"), VAL, "`in_reply_to`", NULL },
	{ IRT("'<a@b\\u007f>'"), VAL, "`in_reply_to`", NULL },
	{ IRT("'<a@b>\\r\\nBcc: x@evil.example'"), VAL, "`in_reply_to`", NULL },
	{ IRT("'0f7e1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2'"), VAL, "`in_reply_to`", NULL },
	{ IRT("'0f7e1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2bc'"), VAL, "`in_reply_to`", NULL },
	{ IRT("'0f7e1b2c03d4e-4f50-8a6b-7c8d9e0f1a2b'"), VAL, "`in_reply_to`", NULL },
	{ IRT("'0f7e1b2g-3d4e-4f50-8a6b-7c8d9e0f1a2b'"), VAL, "`in_reply_to`", NULL },
	{ IRT("5"), VAL, "The `in_reply_to` field must be a string.", NULL },
	{ IRT("['<a@b>']"), VAL, "`in_reply_to`", NULL },
	/* references: a msg-id, or an array of 1 to 100 of them */
	{ REF("'<a@b>'"), OK, NULL, NULL },
	{ REF("['<a@b>','<c@d>']"), OK, NULL, NULL },
	{ REF("null"), OK, NULL, NULL },
	{ REF("[]"), VAL, "The `references` field must be a Message-ID or an array of 1 to 100 of them.", NULL },
	{ REF("{}"), VAL, "array of 1 to 100", NULL },
	{ REF("5"), VAL, "array of 1 to 100", NULL },
	{ REF("true"), VAL, "array of 1 to 100", NULL },
	{ REF("[5]"), VAL, "The `references` field must be a string.", NULL },
	{ REF("[null]"), VAL, "`references`", NULL },
	{ REF("[['<a@b>']]"), VAL, "`references`", NULL },
	{ REF("'<a@b> <c@d>'"), VAL, "The `references` field must hold Message-IDs (<id@domain>).", NULL },
	{ REF("['<a@b>','c@d']"), VAL, "must hold Message-IDs", NULL },
	{ REF("['<a@b>','']"), VAL, "must hold Message-IDs", NULL },
	{ REF("'0f7e1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b'"), VAL, "must hold Message-IDs", NULL },
	/* given both as a field and in headers{}: which would win is not for us to guess */
	{ "{" B ",'in_reply_to':'<a@b>','headers':{'In-Reply-To':'<c@d>'}}", VAL,
	  "Give In-Reply-To and References either as fields or in `headers`, not both.", NULL },
	{ "{" B ",'in_reply_to':'<a@b>','headers':{'in-reply-to':'<a@b>'}}", VAL, "not both", NULL },
	{ "{" B ",'references':['<a@b>'],'headers':{'REFERENCES':'<a@b>'}}", VAL, "not both", NULL },
	{ "{" B ",'in_reply_to':null,'headers':{'In-Reply-To':'<c@d>'}}", OK, NULL, NULL },
	{ "{" B ",'in_reply_to':'<a@b>','headers':{'References':'<c@d>'}}", OK, NULL, NULL },
	{ "{" B ",'references':'<a@b>','headers':{'In-Reply-To':'<c@d>'}}", OK, NULL, NULL },
};

static void test_req_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++) {
		const struct req_case *c = &req_cases[i];
		char msg[512];
		struct email_req *r = (struct email_req *)&r; /* must be set to NULL on error */
		enum email_req_error e =
			test_parse(c->json, c->lim ? c->lim : &lim_default, &r, msg, sizeof(msg));
		if ((int)e != c->want)
			fail_msg("case %zu %s: got %s (%s), want %s", i, c->json, email_req_error_name(e),
				 msg, email_req_error_name((enum email_req_error)c->want));
		if (e == EMAIL_REQ_OK) {
			assert_non_null(r);
			assert_string_equal(msg, "");
			email_req_free(r);
			continue;
		}
		assert_null(r);
		if (c->in_msg != NULL && strstr(msg, c->in_msg) == NULL)
			fail_msg("case %zu %s: message \"%s\" lacks \"%s\"", i, c->json, msg, c->in_msg);
		/* a sentence */
		assert_true(strlen(msg) > 10);
		assert_int_equal(msg[strlen(msg) - 1], '.');
	}
}

/* ---- generated and hostile inputs ---- */

/* Appends to a growing buffer. */
struct sbuf {
	char *p;
	size_t len, size;
};

__attribute__((format(printf, 2, 3))) static void sb_add(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (b->len + (size_t)n + 1 > b->size) {
		b->size = (b->len + (size_t)n + 1) * 2;
		b->p = realloc(b->p, b->size);
		assert_non_null(b->p);
	}
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, b->size - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static void sb_fill(struct sbuf *b, char c, size_t n)
{
	if (b->len + n + 1 > b->size) {
		b->size = b->len + n + 1;
		b->p = realloc(b->p, b->size);
		assert_non_null(b->p);
	}
	memset(b->p + b->len, c, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* A request with n addresses in each of the named lists: {to, cc, bcc, reply_to}. */
static enum email_req_error rcpts(size_t nto, size_t ncc, size_t nbcc, size_t nreply, struct email_req **r,
				  char *msg, size_t size)
{
	const char *fields[4] = { "to", "cc", "bcc", "reply_to" };
	size_t counts[4] = { nto, ncc, nbcc, nreply };
	struct sbuf b = { 0 };
	sb_add(&b, "{\"from\":\"a@example.com\",\"subject\":\"s\",\"text\":\"t\"");
	for (size_t f = 0; f < 4; f++) {
		if (counts[f] == 0)
			continue;
		sb_add(&b, ",\"%s\":[", fields[f]);
		for (size_t i = 0; i < counts[f]; i++)
			sb_add(&b, "%s\"User %zu <u%zu@list%zu.example.org>\"", i ? "," : "", i, i, f);
		sb_add(&b, "]");
	}
	sb_add(&b, "}");
	enum email_req_error e = test_parse_n(b.p, b.len, &lim_default, r, msg, size);
	free(b.p);
	return e;
}

/* a whole request, as JSON text, to which fields are appended */
#define BIG_ALL "{\"from\":\"a@example.com\",\"to\":\"b@example.org\",\"subject\":\"s\",\"text\":\"t\""

static void test_limits(void **state)
{
	(void)state;
	char msg[256];
	struct email_req *r;

	/* 50 recipients in to, cc and bcc together; 51 refused wherever the 51st is */
	assert_int_equal(rcpts(50, 0, 0, 50, &r, msg, sizeof(msg)), EMAIL_REQ_OK);
	assert_int_equal(r->to_count, 50);
	assert_int_equal(r->reply_to_count, 50);
	assert_string_equal(r->to[49].addr.text, "u49@list0.example.org");
	assert_string_equal(r->to[49].name, "User 49");
	email_req_free(r);
	assert_int_equal(rcpts(20, 20, 10, 0, &r, msg, sizeof(msg)), EMAIL_REQ_OK);
	email_req_free(r);
	assert_int_equal(rcpts(51, 0, 0, 0, &r, msg, sizeof(msg)), EMAIL_REQ_VALIDATION);
	assert_string_equal(msg, "The `to` field must contain at most 50 recipients.");
	assert_int_equal(rcpts(1, 0, 51, 0, &r, msg, sizeof(msg)), EMAIL_REQ_VALIDATION);
	assert_non_null(strstr(msg, "`bcc`"));
	assert_int_equal(rcpts(30, 21, 0, 0, &r, msg, sizeof(msg)), EMAIL_REQ_VALIDATION);
	assert_string_equal(msg,
			    "The `to`, `cc` and `bcc` fields must contain at most 50 recipients together.");
	assert_int_equal(rcpts(1, 0, 0, 51, &r, msg, sizeof(msg)), EMAIL_REQ_VALIDATION);
	assert_non_null(strstr(msg, "`reply_to` field must contain at most 50 addresses"));
	/* a huge array is refused by its size, before anything is parsed */
	assert_int_equal(rcpts(100000, 0, 0, 0, &r, msg, sizeof(msg)), EMAIL_REQ_VALIDATION);
	assert_null(r);

	/* headers: 100, then 101 */
	for (size_t n = 100; n <= 101; n++) {
		struct sbuf b = { 0 };
		sb_add(&b, BIG_ALL ",\"headers\":{");
		for (size_t i = 0; i < n; i++)
			sb_add(&b, "%s\"X-H%zu\":\"v%zu\"", i ? "," : "", i, i);
		sb_add(&b, "}}");
		enum email_req_error e = test_parse_n(b.p, b.len, &lim_default, &r, msg, sizeof(msg));
		free(b.p);
		if (n == 100) {
			assert_int_equal(e, EMAIL_REQ_OK);
			assert_int_equal(r->header_count, 100);
			assert_string_equal(r->headers[99].name, "X-H99");
			email_req_free(r);
		} else {
			assert_int_equal(e, EMAIL_REQ_VALIDATION);
			assert_string_equal(msg, "The `headers` field must contain at most 100 headers.");
		}
	}
	/* attachments: 100, then 101 */
	for (size_t n = 100; n <= 101; n++) {
		struct sbuf b = { 0 };
		sb_add(&b, BIG_ALL ",\"attachments\":[");
		for (size_t i = 0; i < n; i++)
			sb_add(&b, "%s{\"filename\":\"f%zu.png\",\"content\":\"iVBORw0KGgo=\"}", i ? "," : "",
			       i);
		sb_add(&b, "]}");
		enum email_req_error e = test_parse_n(b.p, b.len, &lim_default, &r, msg, sizeof(msg));
		free(b.p);
		if (n == 100) {
			assert_int_equal(e, EMAIL_REQ_OK);
			assert_int_equal(r->attachment_count, 100);
			assert_int_equal(r->attachments[99].size, 8);
			assert_memory_equal(r->attachments[99].content, "\x89PNG\r\n\x1a\n", 8);
			assert_string_equal(r->attachments[99].content_type, "image/png");
			email_req_free(r);
		} else {
			assert_int_equal(e, EMAIL_REQ_VALIDATION);
			assert_non_null(strstr(msg, "`attachments` field must contain at most 100"));
		}
	}
	/* tags: 50, then 51; 256 characters, then 257 */
	for (size_t n = 50; n <= 51; n++) {
		struct sbuf b = { 0 };
		sb_add(&b, BIG_ALL ",\"tags\":[");
		for (size_t i = 0; i < n; i++)
			sb_add(&b, "%s{\"name\":\"t%zu\",\"value\":\"", i ? "," : "", i),
				sb_fill(&b, 'v', 256), sb_add(&b, "\"}");
		sb_add(&b, "]}");
		enum email_req_error e = test_parse_n(b.p, b.len, &lim_default, &r, msg, sizeof(msg));
		free(b.p);
		assert_int_equal(e, n == 50 ? EMAIL_REQ_OK : EMAIL_REQ_VALIDATION);
		if (e == EMAIL_REQ_OK)
			email_req_free(r);
		else
			assert_string_equal(msg, "The `tags` field must contain at most 50 tags.");
	}
	struct sbuf b = { 0 };
	sb_add(&b, BIG_ALL ",\"tags\":[{\"value\":\"v\",\"name\":\"");
	sb_fill(&b, 'n', 257);
	sb_add(&b, "\"}]}");
	assert_int_equal(test_parse_n(b.p, b.len, &lim_default, &r, msg, sizeof(msg)), EMAIL_REQ_VALIDATION);
	assert_non_null(strstr(msg, "`tags[0].name`"));
	free(b.p);

	/* a tiny message buffer is truncated, never overrun */
	char tiny[6];
	assert_int_equal(test_parse("{}", &lim_default, &r, tiny, sizeof(tiny)), EMAIL_REQ_MISSING_FIELD);
	assert_string_equal(tiny, "Missi");
	json_t *j = json_object();
	assert_int_equal(email_req_parse(j, &lim_default, &r, NULL, 0), EMAIL_REQ_MISSING_FIELD);
	assert_null(r);
	json_decref(j);
}

/* A request whose field (given as JSON text) is a string of n times c, and what it must give. */
static void big(const char *before, char c, size_t n, const char *after, enum email_req_error want,
		const char *in_msg)
{
	char msg[256];
	struct email_req *r;
	struct sbuf b = { 0 };
	sb_add(&b, "%s", before);
	sb_fill(&b, c, n);
	sb_add(&b, "%s", after);
	enum email_req_error e = test_parse_n(b.p, b.len, &lim_default, &r, msg, sizeof(msg));
	free(b.p);
	if (e != want)
		fail_msg("%s...%s (%zu): got %s (%s)", before, after, n, email_req_error_name(e), msg);
	if (e == EMAIL_REQ_OK)
		email_req_free(r);
	else if (strstr(msg, in_msg) == NULL)
		fail_msg("%s...%s: message \"%s\" lacks \"%s\"", before, after, msg, in_msg);
}

#define BIG_HEAD "{\"from\":\"a@example.com\",\"to\":\"b@example.org\","
static void test_big_strings(void **state)
{
	(void)state;
	size_t mb = 1 << 20;
	/* bodies of 1 MiB are fine under a 4 MiB limit; five are not */
	big(BIG_HEAD "\"subject\":\"s\",\"html\":\"", 'h', mb, "\"}", EMAIL_REQ_OK, NULL);
	big(BIG_HEAD "\"subject\":\"s\",\"html\":\"", 'h', 5 * mb, "\"}", EMAIL_REQ_VALIDATION,
	    "more than the limit of 4194304");
	/* a 1 MiB attachment, in 76-column lines */
	{
		struct sbuf b = { 0 };
		char msg[256];
		struct email_req *r;
		sb_add(&b, BIG_HEAD "\"subject\":\"s\",\"text\":\"t\","
				    "\"attachments\":[{\"filename\":\"a.bin\",\"content\":\"");
		for (size_t i = 0; i < mb / 57; i++)
			sb_add(&b, "%s",
			       "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
			       "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\\r\\n");
		sb_add(&b, "\"}]}");
		assert_int_equal(test_parse_n(b.p, b.len, &lim_default, &r, msg, sizeof(msg)), EMAIL_REQ_OK);
		assert_int_equal(r->attachments[0].size, mb / 57 * 57);
		assert_int_equal(r->attachments[0].content[12345], 'A');
		assert_string_equal(r->attachments[0].content_type, "application/octet-stream");
		email_req_free(r);
		free(b.p);
	}
	/* 1 MiB where a short string belongs */
	big(BIG_HEAD "\"text\":\"t\",\"subject\":\"", 's', mb, "\"}", EMAIL_REQ_VALIDATION,
	    "`subject` field must be at most 16384");
	big(BIG_HEAD "\"text\":\"t\",\"subject\":\"", 's', 16384, "\"}", EMAIL_REQ_OK, NULL);
	big(BIG_HEAD "\"text\":\"t\",\"subject\":\"s\",\"headers\":{\"X-A\":\"", 'v', mb, "\"}}",
	    EMAIL_REQ_VALIDATION, "`X-A` header in `headers` must be at most 16384");
	big(BIG_HEAD "\"text\":\"t\",\"subject\":\"s\",\"headers\":{\"X-A\":\"", 'v', 16384, "\"}}",
	    EMAIL_REQ_OK, NULL);
	/* header names: 76 octets, then 77 */
	big(BIG_HEAD "\"text\":\"t\",\"subject\":\"s\",\"headers\":{\"X-", 'n', 74, "\":\"v\"}}",
	    EMAIL_REQ_OK, NULL);
	big(BIG_HEAD "\"text\":\"t\",\"subject\":\"s\",\"headers\":{\"X-", 'n', 75, "\":\"v\"}}",
	    EMAIL_REQ_VALIDATION, "1 to 76 printable ASCII");
	big(BIG_HEAD "\"text\":\"t\",\"subject\":\"s\",\"headers\":{\"X-", 'n', mb, "\":\"v\"}}",
	    EMAIL_REQ_VALIDATION, "header name in `headers` is not valid");
	big(BIG_HEAD "\"text\":\"t\",\"subject\":\"s\",\"attachments\":[{\"content\":\"\",\"filename\":\"",
	    'f', mb, "\"}]}", EMAIL_REQ_INVALID_ATTACHMENT, "`attachments[0].filename`: it must be 1 to 255");
	big(BIG_HEAD "\"text\":\"t\",\"subject\":\"s\",\"attachments\":[{\"content\":\"\",\"filename\":\"",
	    'f', 255, "\"}]}", EMAIL_REQ_OK, NULL);
	big(BIG_HEAD "\"text\":\"t\",\"subject\":\"s\",\"attachments\":[{\"content\":\"\",\"content_id\":\"",
	    'c', mb, "\"}]}", EMAIL_REQ_INVALID_ATTACHMENT, "`attachments[0].content_id`");
	big(BIG_HEAD "\"text\":\"t\",\"subject\":\"s\",\"attachments\":[{\"content\":\"\",\"filename\":\"a\","
		     "\"content_type\":\"a/",
	    'c', mb, "\"}]}", EMAIL_REQ_INVALID_ATTACHMENT, "`attachments[0].content_type`");
	big("{\"to\":\"b@example.org\",\"subject\":\"s\",\"text\":\"t\",\"from\":\"", 'f', mb,
	    "@example.com\"}", EMAIL_REQ_INVALID_FROM, "`from`");
	big("{\"from\":\"a@example.com\",\"subject\":\"s\",\"text\":\"t\",\"to\":\"", 'n', mb,
	    " <b@example.org>\"}", EMAIL_REQ_VALIDATION, "`to`");
	big(BIG_HEAD "\"text\":\"t\",\"subject\":\"s\",\"scheduled_at\":\"in ", '9', mb, " min\"}",
	    EMAIL_REQ_VALIDATION, "`scheduled_at`");
	big(BIG_HEAD "\"text\":\"t\",\"subject\":\"s\",\"scheduled_at\":\"2024-08-05T11:52:01.", '9', mb,
	    "Z\"}", EMAIL_REQ_OK, NULL);
	big(BIG_HEAD "\"text\":\"t\",\"subject\":\"s\",\"attachments\":[{\"filename\":\"a\","
		     "\"path\":\"https://x.example/",
	    'p', mb, "\"}]}", EMAIL_REQ_INVALID_ATTACHMENT, "`attachments[0].path`");
}

/* json_t values made without http_json_load may hold a NUL: refused, never cut short. */
static void test_nul_from_elsewhere(void **state)
{
	(void)state;
	static const char *const fields[] = { "from", "to", "subject", "text" };
	for (size_t f = 0; f < 4; f++) {
		json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "from", "a@example.com", "to", "b@example.org",
				      "subject", "s", "text", "t");
		assert_non_null(j);
		json_object_set_new(j, fields[f], json_stringn("a@example.com\0\r\nBcc: x@evil.example", 35));
		char msg[256];
		struct email_req *r;
		enum email_req_error e = email_req_parse(j, &lim_default, &r, msg, sizeof(msg));
		assert_int_not_equal(e, EMAIL_REQ_OK);
		assert_null(r);
		char want[32];
		snprintf(want, sizeof(want), "`%s`", fields[f]);
		assert_non_null(strstr(msg, want));
		json_decref(j);
	}
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:{}}", "from", "a@example.com", "to", "b@example.org",
			      "subject", "s", "text", "t", "headers");
	json_object_set_new(json_object_get(j, "headers"), "X-A", json_stringn("a\0b", 3));
	char msg[256];
	struct email_req *r;
	assert_int_equal(email_req_parse(j, &lim_default, &r, msg, sizeof(msg)), EMAIL_REQ_VALIDATION);
	assert_non_null(strstr(msg, "`X-A`"));
	json_object_del(json_object_get(j, "headers"), "X-A");
	json_object_setn_new(json_object_get(j, "headers"), "X-A\0B", 5, json_string("v"));
	assert_int_equal(email_req_parse(j, &lim_default, &r, msg, sizeof(msg)), EMAIL_REQ_VALIDATION);
	assert_non_null(strstr(msg, "NUL"));
	json_decref(j);
	assert_int_equal(email_req_parse(NULL, &lim_default, &r, msg, sizeof(msg)), EMAIL_REQ_VALIDATION);
}

/* What the threading fields become: in_reply_to and references as given (references joined by
 * spaces, RFC 5322 §3.6.4), and an In-Reply-To header that holds a received email's id taken out
 * of headers{} into in_reply_to, as the SDK (which has only headers) sends it. */
static void test_threading(void **state)
{
	(void)state;
	char msg[256];
	struct email_req *r;
	assert_int_equal(test_parse("{" B ",'in_reply_to':'<p@x.example>','references':['<a@x.example>','<p@x.example>']}",
				    &lim_default, &r, msg, sizeof(msg)),
			 EMAIL_REQ_OK);
	assert_string_equal(r->in_reply_to, "<p@x.example>");
	assert_string_equal(r->references, "<a@x.example> <p@x.example>");
	assert_int_equal(r->header_count, 0);
	email_req_free(r);
	assert_int_equal(test_parse(REF("'<only@x.example>'"), &lim_default, &r, msg, sizeof(msg)), EMAIL_REQ_OK);
	assert_null(r->in_reply_to);
	assert_string_equal(r->references, "<only@x.example>");
	email_req_free(r);
	assert_int_equal(test_parse("{" B "}", &lim_default, &r, msg, sizeof(msg)), EMAIL_REQ_OK);
	assert_null(r->in_reply_to);
	assert_null(r->references);
	email_req_free(r);

	/* a received id in the In-Reply-To header: moved, the other headers kept in their order */
	assert_int_equal(test_parse("{" B ",'headers':{'X-A':'1','In-Reply-To':'0f7e1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b',"
				    "'X-B':'2','References':'<a@x.example>'}}",
				    &lim_default, &r, msg, sizeof(msg)),
			 EMAIL_REQ_OK);
	assert_string_equal(r->in_reply_to, "0f7e1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b");
	assert_null(r->references);
	assert_int_equal(r->header_count, 3);
	assert_string_equal(r->headers[0].name, "X-A");
	assert_string_equal(r->headers[1].name, "X-B");
	assert_string_equal(r->headers[1].value, "2");
	assert_string_equal(r->headers[2].name, "References");
	assert_null(email_req_header_find(r, "in-reply-to"));
	email_req_free(r);
	/* the only header, any case of its name */
	assert_int_equal(test_parse(HDR("'in-reply-to':'0F7E1B2C-3D4E-4F50-8A6B-7C8D9E0F1A2B'"), &lim_default, &r, msg,
				    sizeof(msg)),
			 EMAIL_REQ_OK);
	assert_string_equal(r->in_reply_to, "0F7E1B2C-3D4E-4F50-8A6B-7C8D9E0F1A2B");
	assert_int_equal(r->header_count, 0);
	email_req_free(r);
	/* a msg-id, or anything else, in the header stays a header */
	assert_int_equal(test_parse(HDR("'In-Reply-To':'<p@x.example>'"), &lim_default, &r, msg, sizeof(msg)),
			 EMAIL_REQ_OK);
	assert_null(r->in_reply_to);
	assert_int_equal(r->header_count, 1);
	assert_string_equal(email_req_header_find(r, "IN-REPLY-TO")->value, "<p@x.example>");
	email_req_free(r);
	assert_int_equal(test_parse(HDR("'In-Reply-To':' 0f7e1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b x'"), &lim_default, &r,
				    msg, sizeof(msg)),
			 EMAIL_REQ_OK);
	assert_null(r->in_reply_to);
	assert_int_equal(r->header_count, 1);
	email_req_free(r);

	assert_true(email_req_is_received_id("0f7e1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b"));
	assert_false(email_req_is_received_id(""));
	assert_false(email_req_is_received_id("0f7e1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b\n"));
	assert_false(email_req_is_received_id("0f7e1b2c-3d4e-4f50-8a6b+7c8d9e0f1a2b"));
	assert_false(email_req_is_received_id("------------------------------------"));
}

/* The longest msg-id taken (998 octets, RFC 5322 §2.1.1), 100 references, and one more of each. */
static void test_threading_limits(void **state)
{
	(void)state;
	big(BIG_HEAD "\"subject\":\"s\",\"text\":\"t\",\"in_reply_to\":\"<a@", 'd', 998 - 4, ">\"}", EMAIL_REQ_OK, NULL);
	big(BIG_HEAD "\"subject\":\"s\",\"text\":\"t\",\"in_reply_to\":\"<a@", 'd', 998 - 3, ">\"}", EMAIL_REQ_VALIDATION,
	    "`in_reply_to`");
	big(BIG_HEAD "\"subject\":\"s\",\"text\":\"t\",\"references\":\"<a@", 'd', 998 - 3, ">\"}", EMAIL_REQ_VALIDATION,
	    "`references`");
	big(BIG_HEAD "\"subject\":\"s\",\"text\":\"t\",\"in_reply_to\":\"<a@", 'd', 1 << 20, ">\"}", EMAIL_REQ_VALIDATION,
	    "`in_reply_to`");
	for (size_t n = 99; n <= 101; n++) {
		struct sbuf b = { 0 };
		sb_add(&b, BIG_HEAD "\"subject\":\"s\",\"text\":\"t\",\"references\":[");
		for (size_t i = 0; i < n; i++)
			sb_add(&b, "%s\"<m%zu@x.example>\"", i ? "," : "", i);
		sb_add(&b, "]}");
		char msg[256];
		struct email_req *r;
		enum email_req_error e = test_parse_n(b.p, b.len, &lim_default, &r, msg, sizeof(msg));
		free(b.p);
		if (n <= 100) {
			assert_int_equal(e, EMAIL_REQ_OK);
			assert_non_null(strstr(r->references, "<m0@x.example> <m1@x.example>"));
			char last[32];
			snprintf(last, sizeof(last), " <m%zu@x.example>", n - 1);
			assert_string_equal(r->references + strlen(r->references) - strlen(last), last);
			email_req_free(r);
		} else {
			assert_int_equal(e, EMAIL_REQ_VALIDATION);
			assert_non_null(strstr(msg, "1 to 100"));
		}
	}
}

static void test_error_names(void **state)
{
	(void)state;
	assert_string_equal(email_req_error_name(EMAIL_REQ_MISSING_FIELD), "missing_required_field");
	assert_string_equal(email_req_error_name(EMAIL_REQ_VALIDATION), "validation_error");
	assert_string_equal(email_req_error_name(EMAIL_REQ_INVALID_FROM), "invalid_from_address");
	assert_string_equal(email_req_error_name(EMAIL_REQ_INVALID_ATTACHMENT), "invalid_attachment");
	assert_string_equal(email_req_error_name(EMAIL_REQ_NO_MEMORY), "internal_server_error");
	assert_string_equal(email_req_error_name(EMAIL_REQ_OK), "ok");
}

/* Content types derived from file names. */
static void test_content_types(void **state)
{
	static const struct {
		const char *filename, *type;
	} cases[] = {
		{ "a.pdf", "application/pdf" },
		{ "A.PDF", "application/pdf" },
		{ "photo.JPeG", "image/jpeg" },
		{ "x.jpg", "image/jpeg" },
		{ "x.png", "image/png" },
		{ "x.gif", "image/gif" },
		{ "x.webp", "image/webp" },
		{ "x.svg", "image/svg+xml" },
		{ "x.txt", "text/plain" },
		{ "x.htm", "text/html" },
		{ "x.html", "text/html" },
		{ "x.csv", "text/csv" },
		{ "x.json", "application/json" },
		{ "x.xml", "application/xml" },
		{ "x.zip", "application/zip" },
		{ "x.tar.gz", "application/gzip" },
		{ "invite.ics", "text/calendar" },
		{ "x.doc", "application/msword" },
		{ "x.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" },
		{ "x.mp3", "audio/mpeg" },
		{ "x.mp4", "video/mp4" },
		{ "x.wav", "audio/wav" },
		{ "x.eml", "application/octet-stream" },
		{ "README", "application/octet-stream" },
		{ "x.", "application/octet-stream" },
		{ "x.pdfx", "application/octet-stream" },
		{ ".pdf", "application/pdf" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char json[256], msg[256];
		struct email_req *r;
		snprintf(json, sizeof(json), "{" B ",'attachments':[{'filename':'%s','content':'YQ=='}]}",
			 cases[i].filename);
		assert_int_equal(test_parse(json, &lim_default, &r, msg, sizeof(msg)), EMAIL_REQ_OK);
		if (strcmp(r->attachments[0].content_type, cases[i].type) != 0)
			fail_msg("%s: %s, want %s", cases[i].filename, r->attachments[0].content_type,
				 cases[i].type);
		email_req_free(r);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_table),
		cmocka_unit_test(test_json_depth),
		cmocka_unit_test(test_json_hostile_depth),
		cmocka_unit_test(test_mailbox),
		cmocka_unit_test(test_time),
		cmocka_unit_test(test_full_request),
		cmocka_unit_test(test_req_table),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_big_strings),
		cmocka_unit_test(test_nul_from_elsewhere),
		cmocka_unit_test(test_threading),
		cmocka_unit_test(test_threading_limits),
		cmocka_unit_test(test_error_names),
		cmocka_unit_test(test_content_types),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
