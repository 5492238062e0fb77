/* test_received_json.c — the JSON shapes of a received email (src/inbound/received_json.c): our
 * Authentication-Results field read back (RFC 8601 §2.2), hostile fields included (a quoted
 * pvalue or a comment holding ";"), the summary, the email.received event and the email of GET
 * /emails/receiving/{id} with its inline images as data: URIs (RFC 2392, RFC 2397) and its text
 * in local line ends. Every output is dumped and parsed back with jansson. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "auth/authres.h"
#include "inbound/received_json.h"
#include "inbound/received_view.h"

/* 2026-11-22 04:05:06.789 UTC */
#define T_MS 1795320306789LL
#define HOST "mx.example.com"
#define ID "0f7e1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b"

/* s with every "\n" made "\r\n", as messages are stored. */
static char *crlf(const char *s, size_t *len_r)
{
	size_t n = strlen(s), lf = 0;
	for (size_t i = 0; i < n; i++)
		lf += s[i] == '\n';
	char *out = malloc(n + lf + 1);
	assert_non_null(out);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\n')
			out[o++] = '\r';
		out[o++] = s[i];
	}
	out[o] = '\0';
	*len_r = o;
	return out;
}

/* A stored message (CRLF) and its view. */
struct msg {
	char *raw;
	size_t len;
	struct received_view v;
};

static void msg_of(const char *lf_text, struct msg *m)
{
	m->raw = crlf(lf_text, &m->len);
	const char *err = NULL;
	if (received_view_parse(m->raw, m->len, NULL, &m->v, &err) != RECEIVED_VIEW_OK)
		fail_msg("received_view_parse: %s", err != NULL ? err : "");
}

static void msg_clear(struct msg *m)
{
	received_view_clear(&m->v);
	free(m->raw);
}

/* j dumped and loaded again (what a client gets is what it reads), decref'd. */
static json_t *roundtrip(json_t *j)
{
	assert_non_null(j);
	char *s = json_dumps(j, JSON_COMPACT);
	assert_non_null(s);
	json_decref(j);
	json_error_t e;
	json_t *back = json_loads(s, JSON_REJECT_DUPLICATES, &e);
	if (back == NULL)
		fail_msg("not JSON again: %s in %.300s", e.text, s);
	free(s);
	return back;
}

static const char *str_at(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	if (!json_is_string(v))
		fail_msg("%s is not a string", key);
	return json_string_value(v);
}

/* ---- received_auth_read ------------------------------------------------------------------------------ */

/* The auth of a message whose header section is fields (LF lines). */
static bool auth_of(const char *fields, const char *hostname, struct received_auth *a)
{
	char text[4096];
	snprintf(text, sizeof(text), "%sFrom: a@example.net\nSubject: s\n\nbody\n", fields);
	struct msg m;
	msg_of(text, &m);
	memset(a, 'X', sizeof(*a)); /* cleared whatever the result */
	bool found = received_auth_read(&m.v, hostname, a);
	msg_clear(&m);
	return found;
}

static const struct auth_case {
	const char *fields;
	bool found;
	const char *spf, *dkim, *dmarc;
} auth_cases[] = {
	/* as smtp/checks.c writes it: one result per folded line */
	{"Authentication-Results: mx.example.com;\n\tspf=pass smtp.mailfrom=a@example.net;\n"
	 "\tdkim=pass header.d=example.net header.s=s1 header.b=abcd;\n\tdmarc=pass header.from=example.net\n",
	 true, "pass", "pass", "pass"},
	/* RFC 8601 §2.5: the authserv-id compares case-insensitively; a version may follow it */
	{"Authentication-Results: MX.Example.COM; spf=fail smtp.mailfrom=a@example.net\n", true, "fail", "", ""},
	{"Authentication-Results: mx.example.com 1; spf=softfail; dkim=none; dmarc=fail\n", true, "softfail", "none",
	 "fail"},
	{"Authentication-Results: mx.example.com\t; dmarc=PASS\n", true, "", "", "pass"},
	/* §2.2 no-result */
	{"Authentication-Results: mx.example.com; none\n", true, "", "", ""},
	/* several dkim results: one pass is enough (RFC 6376 §6.1), else the first */
	{"Authentication-Results: mx.example.com; dkim=fail header.d=a.example; dkim=neutral; dkim=pass header.d=b\n",
	 true, "", "pass", ""},
	{"Authentication-Results: mx.example.com; dkim=fail; dkim=neutral; dkim=policy\n", true, "", "fail", ""},
	/* another authserv-id, or one that only starts with ours, is not ours; ours is found after it */
	{"Authentication-Results: other.example; spf=pass; dkim=pass; dmarc=pass\n"
	 "Authentication-Results: mx.example.com.evil.example; dmarc=pass\n"
	 "Authentication-Results: mx.example.community; dmarc=pass\n"
	 "Authentication-Results: mx.example.com; dmarc=fail\n",
	 true, "", "", "fail"},
	/* the first of ours is the one: a later field of ours says nothing */
	{"Authentication-Results: mx.example.com; spf=none\nAuthentication-Results: mx.example.com; spf=pass\n", true,
	 "none", "", ""},
	{"Authentication-Results: other.example; spf=pass\n", false, "", "", ""},
	{"", false, "", "", ""},
	{"Authentication-Results:\n", false, "", "", ""},
	/* §2.2: resinfo or no-result, after a ";", is not optional */
	{"Authentication-Results: mx.example.com\n", false, "", "", ""},
	/* methods we do not show, and broken resinfo, are skipped */
	{"Authentication-Results: mx.example.com; auth=pass smtp.auth=x; iprev=fail; spf; =pass; dkim=; dmarc pass;"
	 " spf = pass\n",
	 true, "pass", "", ""},
	/* hostile: a quoted pvalue (RFC 8601 §2.3) holding ";" and more results, as the sender's own MAIL FROM
	 * local part can make ours, separates nothing */
	{"Authentication-Results: mx.example.com;\n\tspf=fail smtp.mailfrom=\"\\\"x;dkim=pass;dmarc=pass\\\"@evil.example\";\n"
	 "\tdkim=none;\n\tdmarc=fail header.from=evil.example\n",
	 true, "fail", "none", "fail"},
	{"Authentication-Results: mx.example.com; spf=fail reason=\"a;dmarc=pass\"; dmarc=fail\n", true, "fail", "", "fail"},
	/* nor does one in a comment (RFC 5322 §3.2.2), nested or with a quoted-pair */
	{"Authentication-Results: mx.example.com; spf=fail (from (x; dmarc=pass) \\); dmarc=pass); dmarc=fail\n", true,
	 "fail", "", "fail"},
	/* a result word longer than its slot is cut, never overflows */
	{"Authentication-Results: mx.example.com; spf=averyveryveryverylongresultword\n", true, "averyveryveryve", "",
	 ""},
	/* a quoted string that never ends ends the field */
	{"Authentication-Results: mx.example.com; spf=pass smtp.mailfrom=\"x; dmarc=pass\n", true, "pass", "", ""},
};

static void test_auth_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(auth_cases) / sizeof(auth_cases[0]); i++) {
		const struct auth_case *c = &auth_cases[i];
		struct received_auth a;
		bool found = auth_of(c->fields, HOST, &a);
		if (found != c->found || strcmp(a.spf, c->spf) != 0 || strcmp(a.dkim, c->dkim) != 0 ||
		    strcmp(a.dmarc, c->dmarc) != 0)
			fail_msg("case %zu: found %d spf \"%.16s\" dkim \"%.16s\" dmarc \"%.16s\", want %d \"%s\" \"%s\" \"%s\"",
				 i, found, a.spf, a.dkim, a.dmarc, c->found, c->spf, c->dkim, c->dmarc);
	}
}

static void test_auth_hostile(void **state)
{
	(void)state;
	/* a field of many semicolons and words */
	size_t n = 20000;
	char *text = malloc(n * 16 + 200);
	assert_non_null(text);
	size_t o = (size_t)sprintf(text, "Authentication-Results: mx.example.com");
	for (size_t i = 0; i < n; i++)
		o += (size_t)sprintf(text + o, "; dkim=neutral");
	sprintf(text + o, "; spf=pass\nFrom: a@b.example\n\nx\n");
	struct msg m;
	msg_of(text, &m);
	struct received_auth a;
	assert_true(received_auth_read(&m.v, HOST, &a));
	/* received_view cut the field at max_field (64 KiB), the spf result with it */
	assert_string_equal(a.spf, "");
	assert_string_equal(a.dkim, "neutral");
	msg_clear(&m);
	free(text);
	/* an empty hostname matches no authserv-id */
	assert_false(auth_of("Authentication-Results: mx.example.com; spf=pass\n", "", &a));
	assert_string_equal(a.spf, "");
}

/* Our own writer's field (auth/authres.c) read back: what a sender put in its MAIL FROM, its
 * From domain or its DKIM signature stays in the pvalues and cannot add a result. */
static void test_auth_of_our_writer(void **state)
{
	(void)state;
	static const char *const hostile[] = {
		"\"x;dkim=pass;dmarc=pass\"@evil.example",
		"\"x\\\";dmarc=pass\"@evil.example",
		"\"(x;dmarc=pass\"@evil.example",
		"x;dmarc=pass@evil.example",
		"\";\"@evil.example",
	};
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		struct authres_method m[3] = {
			{.method = "spf", .result = "fail", .props = {{"smtp.mailfrom", hostile[i]}}},
			{.method = "dkim", .result = "fail", .reason = "signature; dmarc=pass",
			 .props = {{"header.d", "evil;dkim=pass"}, {"header.s", "s;1"}, {"header.b", "ab;c"}}},
			{.method = "dmarc", .result = "fail", .reason = "policy (p=reject; dkim=pass)",
			 .props = {{"header.from", "evil.example;dmarc=pass"}}},
		};
		char *field = authres_format(HOST, m, 3);
		assert_non_null(field);
		size_t n = strlen(field);
		char *text = malloc(n + 100);
		assert_non_null(text);
		snprintf(text, n + 100, "%sFrom: e@evil.example\r\nSubject: s\r\n\r\nbody\r\n", field);
		free(field);
		struct received_view v;
		const char *err = NULL;
		assert_int_equal(received_view_parse(text, strlen(text), NULL, &v, &err), RECEIVED_VIEW_OK);
		struct received_auth a;
		assert_true(received_auth_read(&v, HOST, &a));
		if (strcmp(a.spf, "fail") != 0 || strcmp(a.dkim, "fail") != 0 || strcmp(a.dmarc, "fail") != 0)
			fail_msg("%s: spf %s dkim %s dmarc %s, want fail each", hostile[i], a.spf, a.dkim, a.dmarc);
		received_view_clear(&v);
		free(text);
	}
}

/* ---- the summary and the event ----------------------------------------------------------------------- */

static const char full_msg[] =
	"Authentication-Results: mx.example.com; spf=pass smtp.mailfrom=anna@example.net; dkim=none; dmarc=fail\n"
	"From: Anna Example <anna@example.net>\n"
	"To: bob@example.com, \"Doe, Carol\" <carol@example.com>\n"
	"Cc: =?utf-8?q?J=C3=B6rg?= <joerg@example.org>\n"
	"Reply-To: eve@example.net\n"
	"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\n"
	"Date: Sun, 22 Nov 2026 05:05:06 +0100\n"
	"Message-ID: <abc.123@example.net>\n"
	"In-Reply-To: <prev@example.com>\n"
	"References: <first@example.com> <prev@example.com>\n"
	"X-Twice: one\n"
	"X-Twice: two\n"
	"MIME-Version: 1.0\n"
	"Content-Type: multipart/mixed; boundary=\"mix\"\n"
	"\n"
	"--mix\n"
	"Content-Type: multipart/alternative; boundary=\"alt\"\n"
	"\n"
	"--alt\n"
	"Content-Type: text/plain; charset=utf-8\n"
	"\n"
	"line one\n"
	"line two\n"
	"--alt\n"
	"Content-Type: multipart/related; boundary=\"rel\"\n"
	"\n"
	"--rel\n"
	"Content-Type: text/html; charset=utf-8\n"
	"\n"
	"<p>hi</p>\n"
	"<img src=\"cid:logo@example.net\"><img src='CID:logo%40example.net'><img src=cid:logo@example.net>\n"
	"<img src=\"cid:doc@example.net\"><img src=\"cid:ghost@example.net\"> see cid:logo@example.net\n"
	"<img src=\"cid:\"><img src=\"cid:logo%4\">\n"
	"--rel\n"
	"Content-Type: image/png\n"
	"Content-Transfer-Encoding: base64\n"
	"Content-ID: <logo@example.net>\n"
	"\n"
	"iVBORw0KGgo=\n"
	"--rel\n"
	"Content-Type: application/pdf; name=\"doc.pdf\"\n"
	"Content-ID: <doc@example.net>\n"
	"Content-Disposition: attachment; filename=\"doc.pdf\"\n"
	"\n"
	"%PDF\n"
	"--rel--\n"
	"--alt--\n"
	"--mix--\n";

static void test_summary(void **state)
{
	(void)state;
	struct msg m;
	msg_of(full_msg, &m);
	struct received_auth a;
	assert_true(received_auth_read(&m.v, HOST, &a));
	json_t *s = roundtrip(received_summary_json(&m.v, ID, T_MS, "bob+tag@example.com", &a));
	assert_string_equal(str_at(s, "id"), ID);
	assert_string_equal(str_at(s, "created_at"), "2026-11-22T04:05:06.789Z");
	assert_string_equal(str_at(s, "from"), "Anna Example <anna@example.net>");
	const json_t *to = json_object_get(s, "to");
	assert_int_equal(json_array_size(to), 2);
	assert_string_equal(json_string_value(json_array_get(to, 1)), "\"Doe, Carol\" <carol@example.com>");
	assert_string_equal(json_string_value(json_array_get(json_object_get(s, "cc"), 0)),
			    "J\xc3\xb6rg <joerg@example.org>");
	assert_string_equal(json_string_value(json_array_get(json_object_get(s, "reply_to"), 0)), "eve@example.net");
	assert_true(json_is_null(json_object_get(s, "bcc")));
	/* a list, as Resend's */
	assert_int_equal(json_array_size(json_object_get(s, "received_for")), 1);
	assert_string_equal(json_string_value(json_array_get(json_object_get(s, "received_for"), 0)), "bob+tag@example.com");
	assert_string_equal(str_at(s, "subject"), "Gr\xc3\xbc\xc3\x9f" "e");
	assert_string_equal(str_at(s, "message_id"), "<abc.123@example.net>");
	assert_string_equal(str_at(s, "in_reply_to"), "<prev@example.com>");
	assert_string_equal(str_at(s, "references"), "<first@example.com> <prev@example.com>");
	const json_t *att = json_object_get(s, "attachments");
	assert_int_equal(json_array_size(att), 2);
	const json_t *logo = json_array_get(att, 0), *doc = json_array_get(att, 1);
	assert_string_equal(str_at(logo, "id"), m.v.attachments[0].id);
	assert_true(json_is_null(json_object_get(logo, "filename")));
	assert_int_equal(json_integer_value(json_object_get(logo, "size")), 8);
	assert_string_equal(str_at(logo, "content_type"), "image/png");
	assert_string_equal(str_at(logo, "content_id"), "logo@example.net");
	assert_string_equal(str_at(logo, "content_disposition"), "inline");
	assert_string_equal(str_at(doc, "filename"), "doc.pdf");
	assert_string_equal(str_at(doc, "content_disposition"), "attachment");
	const json_t *au = json_object_get(s, "authentication");
	assert_string_equal(str_at(au, "spf"), "pass");
	assert_string_equal(str_at(au, "dkim"), "none");
	assert_string_equal(str_at(au, "dmarc"), "fail");
	json_decref(s);

	/* not checked by the MX: authentication is null; a result the field lacks is null */
	s = roundtrip(received_summary_json(&m.v, ID, T_MS, "bob@example.com", NULL));
	assert_true(json_is_null(json_object_get(s, "authentication")));
	json_decref(s);
	struct received_auth partial = {.spf = "pass"};
	s = roundtrip(received_summary_json(&m.v, ID, T_MS, "bob@example.com", &partial));
	au = json_object_get(s, "authentication");
	assert_string_equal(str_at(au, "spf"), "pass");
	assert_true(json_is_null(json_object_get(au, "dkim")));
	assert_true(json_is_null(json_object_get(au, "dmarc")));
	json_decref(s);
	msg_clear(&m);

	/* a message with nothing but one field: "" and [] where Resend has strings and lists, null for the rest */
	msg_of("X-Only: 1\n\n", &m);
	s = roundtrip(received_summary_json(&m.v, ID, 0, "x@example.com", NULL));
	assert_string_equal(str_at(s, "created_at"), "1970-01-01T00:00:00.000Z");
	assert_string_equal(str_at(s, "from"), "");
	assert_true(json_is_array(json_object_get(s, "to")));
	assert_int_equal(json_array_size(json_object_get(s, "to")), 0);
	assert_true(json_is_null(json_object_get(s, "cc")));
	assert_true(json_is_null(json_object_get(s, "reply_to")));
	assert_string_equal(str_at(s, "subject"), "");
	assert_string_equal(str_at(s, "message_id"), "");
	assert_true(json_is_null(json_object_get(s, "in_reply_to")));
	assert_true(json_is_null(json_object_get(s, "references")));
	assert_int_equal(json_array_size(json_object_get(s, "attachments")), 0);
	json_decref(s);
	msg_clear(&m);
}

static void test_event(void **state)
{
	(void)state;
	struct msg m;
	msg_of(full_msg, &m);
	struct received_auth a;
	assert_true(received_auth_read(&m.v, HOST, &a));
	json_t *s = received_summary_json(&m.v, ID, T_MS, "bob@example.com", &a);
	assert_non_null(s);
	char *text = received_event_json(s, T_MS + 1000);
	assert_non_null(text);
	json_error_t e;
	json_t *ev = json_loads(text, JSON_REJECT_DUPLICATES, &e);
	assert_non_null(ev);
	assert_null(strchr(text, '\n')); /* compact */
	free(text);
	assert_string_equal(str_at(ev, "type"), "email.received");
	assert_string_equal(str_at(ev, "created_at"), "2026-11-22T04:05:07.789Z");
	const json_t *d = json_object_get(ev, "data");
	assert_string_equal(str_at(d, "email_id"), ID);
	assert_string_equal(str_at(d, "created_at"), "2026-11-22T04:05:06.789Z");
	assert_string_equal(str_at(d, "from"), "Anna Example <anna@example.net>");
	assert_int_equal(json_array_size(json_object_get(d, "to")), 2);
	assert_int_equal(json_array_size(json_object_get(d, "cc")), 1);
	assert_true(json_is_array(json_object_get(d, "bcc")));
	assert_string_equal(json_string_value(json_array_get(json_object_get(d, "received_for"), 0)), "bob@example.com");
	assert_string_equal(str_at(d, "message_id"), "<abc.123@example.net>");
	assert_string_equal(str_at(d, "in_reply_to"), "<prev@example.com>");
	assert_string_equal(str_at(json_object_get(d, "authentication"), "dmarc"), "fail");
	const json_t *att = json_object_get(d, "attachments");
	assert_int_equal(json_array_size(att), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(att, 0), "size")), 8);
	assert_string_equal(str_at(json_array_get(att, 1), "filename"), "doc.pdf");
	assert_true(json_is_null(json_object_get(json_array_get(att, 0), "filename")));
	/* the summary's extras stay out of Resend's event shape */
	assert_null(json_object_get(d, "reply_to"));
	json_decref(ev);
	json_decref(s);
	msg_clear(&m);

	/* ReceivedEmailEventData: cc is a list even when the summary's is null */
	msg_of("From: a@example.net\n\nx\n", &m);
	s = received_summary_json(&m.v, ID, T_MS, "bob@example.com", NULL);
	text = received_event_json(s, T_MS);
	assert_non_null(text);
	ev = json_loads(text, 0, &e);
	assert_non_null(ev);
	d = json_object_get(ev, "data");
	assert_true(json_is_array(json_object_get(d, "cc")));
	assert_int_equal(json_array_size(json_object_get(d, "cc")), 0);
	assert_true(json_is_null(json_object_get(d, "authentication")));
	assert_true(json_is_null(json_object_get(d, "references")));
	free(text);
	json_decref(ev);
	json_decref(s);
	msg_clear(&m);
}

/* ---- the email --------------------------------------------------------------------------------------- */

static json_t *email_of(struct msg *m, bool cid, const char *url)
{
	json_t *s = received_summary_json(&m->v, ID, T_MS, "bob@example.com", NULL);
	assert_non_null(s);
	json_t *e = received_email_json(s, &m->v, m->raw, m->len, NULL, cid, url, T_MS + 3600 * 1000);
	json_decref(s);
	return roundtrip(e);
}

/* Occurrences of what in s, by hand: AddressSanitizer's strstr measures the whole rest of s at
 * every call. */
static size_t count_of(const char *s, const char *what)
{
	size_t n = 0, k = strlen(what);
	for (const char *p = s; *p != '\0'; p++)
		if (*p == *what && strncmp(p, what, k) == 0)
			n++;
	return n;
}

static void test_email_inline_images(void **state)
{
	(void)state;
	struct msg m;
	msg_of(full_msg, &m);
	json_t *e = email_of(&m, false, NULL);
	assert_string_equal(str_at(e, "object"), "email");
	assert_string_equal(str_at(e, "id"), ID);
	const char *html = str_at(e, "html");
	/* the image named three ways in attributes, by its Content-ID with %-escapes too (RFC 2392) */
	assert_int_equal(count_of(html, "data:image/png;base64,iVBORw0KGgo="), 3);
	assert_non_null(strstr(html, "<img src=\"data:image/png;base64,iVBORw0KGgo=\">"));
	assert_non_null(strstr(html, "<img src='data:image/png;base64,iVBORw0KGgo='>"));
	assert_non_null(strstr(html, "<img src=data:image/png;base64,iVBORw0KGgo=>"));
	/* not an image, not there, not in an attribute, empty or broken: kept as written */
	assert_non_null(strstr(html, "<img src=\"cid:doc@example.net\">"));
	assert_non_null(strstr(html, "<img src=\"cid:ghost@example.net\">"));
	assert_non_null(strstr(html, " see cid:logo@example.net\n"));
	assert_non_null(strstr(html, "<img src=\"cid:\"><img src=\"cid:logo%4\">"));
	/* RFC 2046 §4.1.1 CRLF read as "\n" */
	assert_null(strchr(html, '\r'));
	assert_string_equal(str_at(e, "text"), "line one\nline two");
	/* each field's first occurrence */
	const json_t *h = json_object_get(e, "headers");
	assert_string_equal(str_at(h, "X-Twice"), "one");
	assert_string_equal(str_at(h, "Message-ID"), "<abc.123@example.net>");
	assert_string_equal(str_at(h, "Content-Type"), "multipart/mixed; boundary=\"mix\"");
	assert_true(json_is_null(json_object_get(e, "raw")));
	/* the summary's members are all there */
	assert_int_equal(json_array_size(json_object_get(e, "attachments")), 2);
	assert_string_equal(json_string_value(json_array_get(json_object_get(e, "received_for"), 0)), "bob@example.com");
	json_decref(e);

	/* cid: asked for: the html as it came, but in local line ends */
	e = email_of(&m, true, "https://api.example.com/emails/receiving/" ID "/raw?expires=1&signature=x");
	html = str_at(e, "html");
	assert_null(strstr(html, "data:"));
	assert_non_null(strstr(html, "<p>hi</p>\n<img src=\"cid:logo@example.net\">"));
	assert_null(strchr(html, '\r'));
	const json_t *raw = json_object_get(e, "raw");
	assert_string_equal(str_at(raw, "download_url"),
			    "https://api.example.com/emails/receiving/" ID "/raw?expires=1&signature=x");
	assert_string_equal(str_at(raw, "expires_at"), "2026-11-22T05:05:06.789Z");
	json_decref(e);
	msg_clear(&m);
}

static void test_email_plain(void **state)
{
	(void)state;
	struct msg m;
	/* no html: null; a lone CR is not a line break and stays */
	msg_of("From: a@example.net\nContent-Type: text/plain; charset=utf-8\n\na\rb\nc\n", &m);
	json_t *e = email_of(&m, false, NULL);
	assert_true(json_is_null(json_object_get(e, "html")));
	assert_string_equal(str_at(e, "text"), "a\rb\nc\n");
	json_decref(e);
	msg_clear(&m);

	/* html only, with an empty image of that Content-ID: data: with nothing after the comma */
	msg_of("From: a@example.net\n"
	       "Content-Type: multipart/related; boundary=b\n"
	       "\n"
	       "--b\n"
	       "Content-Type: text/html\n"
	       "\n"
	       "<img src=\"cid:e\">\n"
	       "--b\n"
	       "Content-Type: image/gif\n"
	       "Content-ID: <e>\n"
	       "\n"
	       "\n"
	       "--b--\n",
	       &m);
	e = email_of(&m, false, NULL);
	assert_true(json_is_null(json_object_get(e, "text")));
	assert_string_equal(str_at(e, "html"), "<img src=\"data:image/gif;base64,\">");
	json_decref(e);
	msg_clear(&m);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A related message: a text part of pad octets, an html of n references "<img src=\"cid:i\">", and
 * the image i of size octets. */
static void many_refs_msg(size_t n, size_t size, size_t pad, struct msg *m)
{
	const char *ref = "<img src=\"cid:i\">";
	size_t cap = strlen(ref) * n + size * 2 + pad * 2 + 512;
	char *text = malloc(cap);
	assert_non_null(text);
	size_t o = (size_t)snprintf(text, cap,
				    "From: a@example.net\nContent-Type: multipart/related; boundary=b\n\n--b\n"
				    "Content-Type: text/plain\n\n");
	for (size_t i = 0; i < pad; i++)
		text[o++] = i % 100 == 99 ? '\n' : 't';
	o += (size_t)snprintf(text + o, cap - o, "\n--b\nContent-Type: text/html\n\n");
	for (size_t i = 0; i < n; i++)
		o += (size_t)snprintf(text + o, cap - o, "%s", ref);
	o += (size_t)snprintf(text + o, cap - o, "\n--b\nContent-Type: image/png\nContent-ID: <i>\n\n");
	for (size_t i = 0; i < size; i++)
		text[o++] = (char)('A' + i % 26);
	snprintf(text + o, cap - o, "\n--b--\n");
	msg_of(text, m);
	free(text);
}

/* An html of many references to one image: each inlined, the message read once for it, not once
 * per reference. */
static void test_email_many_references(void **state)
{
	(void)state;
	size_t n = 2000;
	struct msg m;
	double t0 = now_s();
	many_refs_msg(n, 3, 512 * 1024, &m);
	double parse_s = now_s() - t0;
	t0 = now_s();
	json_t *e = email_of(&m, false, NULL);
	double email_s = now_s() - t0;
	if (getenv("TEST_RECEIVED_JSON_TIMES") != NULL)
		fprintf(stderr, "view %.4f s, email %.4f s\n", parse_s, email_s);
	/* reading the message again for each reference would take thousands of times one view */
	assert_true(email_s < 20 * parse_s + 0.05);
	assert_int_equal(count_of(str_at(e, "html"), "data:image/png;base64,QUJD"), n);
	json_decref(e);
	msg_clear(&m);
}

/* One large image named again and again: the data: URIs stop at 4 times the message's size, and
 * the references past that stay cid: ones. */
static void test_email_inline_budget(void **state)
{
	(void)state;
	size_t n = 200, size = 30000;
	struct msg m;
	many_refs_msg(n, size, 0, &m);
	json_t *e = email_of(&m, false, NULL);
	const char *html = str_at(e, "html");
	size_t inlined = count_of(html, "data:image/png;base64,"), kept = count_of(html, "\"cid:i\"");
	assert_int_equal(inlined + kept, n);
	assert_true(inlined >= 3); /* each URI is about the message's size */
	assert_true(inlined <= 4);
	assert_true(strlen(html) < 5 * m.len);
	json_decref(e);
	msg_clear(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_auth_table),
		cmocka_unit_test(test_auth_hostile),
		cmocka_unit_test(test_auth_of_our_writer),
		cmocka_unit_test(test_summary),
		cmocka_unit_test(test_event),
		cmocka_unit_test(test_email_inline_images),
		cmocka_unit_test(test_email_plain),
		cmocka_unit_test(test_email_many_references),
		cmocka_unit_test(test_email_inline_budget),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
