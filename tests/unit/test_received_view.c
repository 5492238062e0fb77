/* test_received_view.c — received_view_parse and received_view_attachment: addresses, decoded
 * subject and fields, bodies converted to UTF-8 from their charsets (8-bit Latin-1, windows-1252,
 * unlabelled), attachments with RFC 2231 names, Content-IDs, forwarded messages and their octets by
 * id; and hostile messages (deep nesting, many parts, huge fields, NUL octets, broken MIME) that must
 * stay within their limits in time and size. Every string of every view is checked for UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gmime/gmime.h>

#include "inbound/received_view.h"
#include "util/base64.h"
#include "util/utf8.h"

/* ---- checks and builders -------------------------------------------------------------------------------------- */

static void check_utf8(const char *what, const char *s)
{
	if (s == NULL)
		return;
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strlen(s);
	for (size_t i = 0; i < n;) {
		size_t k = utf8_len(u + i, n - i);
		if (k == 0)
			fail_msg("%s: ill-formed UTF-8 at %zu", what, i);
		i += k;
	}
}

static void check_list(const char *what, char **l, size_t n)
{
	assert_true(n == 0 || l != NULL);
	for (size_t i = 0; i < n; i++) {
		assert_non_null(l[i]);
		check_utf8(what, l[i]);
	}
}

/* Every string a view holds is well-formed UTF-8 (and so has no NUL inside: strlen is its end). */
static void check_view(const struct received_view *v)
{
	check_utf8("from", v->from);
	check_list("to", v->to, v->to_count);
	check_list("cc", v->cc, v->cc_count);
	check_list("reply_to", v->reply_to, v->reply_to_count);
	check_utf8("subject", v->subject);
	check_utf8("message_id", v->message_id);
	check_utf8("in_reply_to", v->in_reply_to);
	check_utf8("references", v->references);
	for (size_t i = 0; i < v->header_count; i++) {
		assert_non_null(v->headers[i].name);
		assert_non_null(v->headers[i].value);
		check_utf8("header name", v->headers[i].name);
		check_utf8("header value", v->headers[i].value);
	}
	check_utf8("text", v->text);
	check_utf8("html", v->html);
	for (size_t i = 0; i < v->attachment_count; i++) {
		const struct received_attachment *a = &v->attachments[i];
		assert_int_equal(strlen(a->id), RECEIVED_ID_LEN);
		assert_non_null(a->content_type);
		assert_non_null(strchr(a->content_type, '/'));
		check_utf8("filename", a->filename);
		check_utf8("content_type", a->content_type);
		check_utf8("content_id", a->content_id);
		assert_true(strcmp(a->content_disposition, "attachment") == 0 ||
			    strcmp(a->content_disposition, "inline") == 0);
		assert_true(a->part[0] != '\0');
	}
}

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

/* Parses raw (an exact heap copy, for ASan) with lim; expects OK. */
static void view_of_raw(const char *raw, size_t len, const struct received_view_limits *lim,
			struct received_view *v)
{
	char *copy = test_dup(raw, len);
	const char *err = NULL;
	enum received_view_error e = received_view_parse(copy, len, lim, v, &err);
	free(copy);
	if (e != RECEIVED_VIEW_OK)
		fail_msg("received_view_parse: %s (%s)", received_view_error_str(e), err != NULL ? err : "");
	assert_ptr_equal(err, v->limited);
	check_view(v);
}

/* The view of an LF-written message stored with CRLF. */
static void view_of(const char *msg, struct received_view *v)
{
	size_t len = 0;
	char *raw = crlf(msg, &len);
	view_of_raw(raw, len, NULL, v);
	free(raw);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A growing message text for the hostile cases. */
struct text {
	char *p;
	size_t len, cap;
};

static void text_put(struct text *t, const char *s, size_t n)
{
	if (t->len + n + 1 > t->cap) {
		t->cap = (t->len + n + 1) * 2;
		t->p = realloc(t->p, t->cap);
		assert_non_null(t->p);
	}
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = '\0';
}

static void text_puts(struct text *t, const char *s)
{
	text_put(t, s, strlen(s));
}

/* ---- ordinary messages ---------------------------------------------------------------------------- */

static const char plain_msg[] =
	"Received: from mx.example.net by mx.example.com; Sun, 22 Nov 2026 04:05:07 +0000\n"
	"From: Anna Example <anna@example.net>\n"
	"To: bob@example.com, \"Doe, Carol\" <carol@example.com>\n"
	"Cc: =?utf-8?q?J=C3=B6rg?= <joerg@example.org>\n"
	"Reply-To: Team: dave@example.net, Eve <eve@example.net>;\n"
	"Subject: Hello\n"
	" world\n"
	"Date: Sun, 22 Nov 2026 05:05:06 +0100\n"
	"Message-ID: <abc.123@example.net>\n"
	"In-Reply-To: <prev@example.com>\n"
	"References: <first@example.com>\n"
	"\t<prev@example.com>\n"
	"X-Custom:   spaced value  \n"
	"\n"
	"Hi Bob,\n"
	"plain text.\n";

static void test_plain(void **state)
{
	(void)state;
	struct received_view v;
	view_of(plain_msg, &v);
	assert_string_equal(v.from, "Anna Example <anna@example.net>");
	assert_int_equal(v.to_count, 2);
	assert_string_equal(v.to[0], "bob@example.com");
	assert_string_equal(v.to[1], "\"Doe, Carol\" <carol@example.com>");
	assert_int_equal(v.cc_count, 1);
	assert_string_equal(v.cc[0], "J\xc3\xb6rg <joerg@example.org>");
	/* RFC 5322 §3.4: a group's members, not its name */
	assert_int_equal(v.reply_to_count, 2);
	assert_string_equal(v.reply_to[0], "dave@example.net");
	assert_string_equal(v.reply_to[1], "Eve <eve@example.net>");
	assert_string_equal(v.subject, "Hello world");
	assert_string_equal(v.message_id, "<abc.123@example.net>");
	assert_string_equal(v.in_reply_to, "<prev@example.com>");
	assert_string_equal(v.references, "<first@example.com>\t<prev@example.com>");
	assert_int_equal(v.date, 1795320306); /* 2026-11-22 04:05:06 UTC */
	assert_int_equal(v.header_count, 11);
	assert_string_equal(v.headers[0].name, "Received");
	assert_string_equal(v.headers[1].name, "From");
	assert_string_equal(v.headers[5].name, "Subject");
	assert_string_equal(v.headers[5].value, "Hello world");
	assert_string_equal(v.headers[10].name, "X-Custom");
	assert_string_equal(v.headers[10].value, "spaced value");
	assert_string_equal(v.text, "Hi Bob,\r\nplain text.\r\n");
	assert_null(v.html);
	assert_int_equal(v.attachment_count, 0);
	assert_null(v.limited);
	received_view_clear(&v);
	received_view_clear(&v); /* cleared twice: still fine */
}

/* Without Subject, Message-ID or Date: NULL and 0; without Content-Type: text/plain (RFC 2045 §5.2). */
static void test_minimal(void **state)
{
	(void)state;
	struct received_view v;
	view_of("From: a@example.com\n\nbody\n", &v);
	assert_string_equal(v.from, "a@example.com");
	assert_int_equal(v.to_count, 0);
	assert_null(v.to);
	assert_null(v.subject);
	assert_null(v.message_id);
	assert_null(v.in_reply_to);
	assert_int_equal(v.date, 0);
	assert_string_equal(v.text, "body\r\n");
	received_view_clear(&v);

	view_of("Subject: x\nDate: not a date\nFrom: =?utf-8?b?SGFsbMO2?=\n\n", &v);
	assert_int_equal(v.date, 0);
	assert_string_equal(v.from, "Hall\xc3\xb6"); /* no address in it: the decoded text */
	assert_string_equal(v.text, "");
	received_view_clear(&v);
}

static void test_alternative(void **state)
{
	(void)state;
	struct received_view v;
	view_of("From: a@example.com\n"
		"MIME-Version: 1.0\n"
		"Content-Type: multipart/alternative; boundary=\"=_alt\"\n"
		"\n"
		"This is a multi-part message in MIME format.\n"
		"--=_alt\n"
		"Content-Type: text/plain; charset=utf-8\n"
		"Content-Transfer-Encoding: quoted-printable\n"
		"\n"
		"Gr=C3=BC=C3=9Fe, a long line that is soft=\n"
		" broken.\n"
		"--=_alt\n"
		"Content-Type: text/html; charset=utf-8\n"
		"\n"
		"<p>Gr\xc3\xbc\xc3\x9f" "e</p>\n"
		"--=_alt--\n"
		"epilogue\n",
		&v);
	assert_string_equal(v.text, "Gr\xc3\xbc\xc3\x9f" "e, a long line that is soft broken.");
	assert_string_equal(v.html, "<p>Gr\xc3\xbc\xc3\x9f" "e</p>");
	assert_int_equal(v.attachment_count, 0);
	assert_null(v.limited);
	received_view_clear(&v);
}

static void test_latin1_8bit(void **state)
{
	(void)state;
	struct received_view v;
	view_of("From: a@example.com\n"
		"Subject: Gr\xfc\xdf" "e\n" /* 8-bit in a field, not UTF-8: windows-1252 */
		"Content-Type: text/plain; charset=ISO-8859-1\n"
		"Content-Transfer-Encoding: 8bit\n"
		"\n"
		"Gr\xfc\xdf" "e\n",
		&v);
	assert_string_equal(v.text, "Gr\xc3\xbc\xc3\x9f" "e\r\n");
	assert_string_equal(v.subject, "Gr\xc3\xbc\xc3\x9f" "e");
	received_view_clear(&v);

	/* RFC 6532: a UTF-8 field stays as it is */
	view_of("From: J\xc3\xb6rg <j@example.com>\nSubject: \xe2\x82\xac 5\n\nx\n", &v);
	assert_string_equal(v.from, "J\xc3\xb6rg <j@example.com>");
	assert_string_equal(v.subject, "\xe2\x82\xac 5");
	received_view_clear(&v);
}

static void test_charsets(void **state)
{
	(void)state;
	static const struct {
		const char *charset; /* NULL: no Content-Type */
		const char *body, *want;
	} cases[] = {
		/* windows-1252 smart quotes, dash, euro */
		{"windows-1252", "\x93quoted\x94 \x96 \x80", "\xe2\x80\x9cquoted\xe2\x80\x9d \xe2\x80\x93 \xe2\x82\xac"},
		/* labelled iso-8859-1 but carrying windows-1252 quotes (WHATWG reads the label so) */
		{"iso-8859-1", "\x93x\x94", "\xe2\x80\x9cx\xe2\x80\x9d"},
		/* unlabelled: well-formed UTF-8 stays UTF-8, anything else is windows-1252 */
		{NULL, "caf\xc3\xa9", "caf\xc3\xa9"},
		{NULL, "caf\xe9", "caf\xc3\xa9"},
		{"us-ascii", "caf\xe9", "caf\xc3\xa9"},
		{"x-no-such-charset", "caf\xe9", "caf\xc3\xa9"},
		{"x-no-such-charset", "caf\xc3\xa9", "caf\xc3\xa9"},
		/* declared UTF-8 with a broken octet: U+FFFD for it */
		{"utf-8", "a\xff" "b", "a\xef\xbf\xbd" "b"},
		{"UTF8", "a\xc3", "a\xef\xbf\xbd"},
		/* through iconv */
		{"iso-8859-15", "\xa4", "\xe2\x82\xac"},
		{"koi8-r", "\xf0\xd2\xc9\xd7\xc5\xd4", "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82"},
		{"iso-2022-jp", "\x1b$B$3$s\x1b(B", "\xe3\x81\x93\xe3\x82\x93"},
		{"shift_jis", "\x82\xa0\xff", "\xe3\x81\x82\xef\xbf\xbd"},
		/* a charset name is not a path or an iconv option */
		{"utf-8//IGNORE", "caf\xe9", "caf\xc3\xa9"},
		{"../../x", "caf\xe9", "caf\xc3\xa9"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char msg[512];
		if (cases[i].charset != NULL)
			snprintf(msg, sizeof(msg), "From: a@example.com\nContent-Type: text/plain; charset=\"%s\"\n\n%s",
				 cases[i].charset, cases[i].body);
		else
			snprintf(msg, sizeof(msg), "From: a@example.com\n\n%s", cases[i].body);
		struct received_view v;
		view_of(msg, &v);
		if (strcmp(v.text, cases[i].want) != 0) {
			char got[256], want[256];
			fail_msg("case %zu (%s): \"%s\" != \"%s\"", i, cases[i].charset ? cases[i].charset : "none",
				 test_escape(v.text, strlen(v.text), got, sizeof(got)),
				 test_escape(cases[i].want, strlen(cases[i].want), want, sizeof(want)));
		}
		received_view_clear(&v);
	}
}

/* RFC 2047 words in two charsets, the space between adjacent words dropped (§6.2). */
static void test_subject_two_charsets(void **state)
{
	(void)state;
	struct received_view v;
	view_of("From: a@example.com\n"
		"Subject: =?UTF-8?B?R3LDvMOfZQ==?= =?ISO-8859-1?Q?_aus_K=F6ln?=\n"
		" und =?windows-1252?q?=93mehr=94?=\n"
		"\n",
		&v);
	assert_string_equal(v.subject, "Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln und \xe2\x80\x9cmehr\xe2\x80\x9d");
	assert_string_equal(v.headers[1].value, v.subject);
	received_view_clear(&v);
}

static const unsigned char pdf_bytes[] = "%PDF-1.4\n\x00\x01\x02\xff\xfe binary \r\n%%EOF\n";

static char *pdf_message(size_t *len_r)
{
	char b64[BASE64_ENCODED_SIZE(sizeof(pdf_bytes))];
	assert_true(base64_encode(pdf_bytes, sizeof(pdf_bytes), b64, sizeof(b64)));
	char msg[2048];
	snprintf(msg, sizeof(msg),
		 "From: bank@example.com\n"
		 "Content-Type: multipart/mixed; boundary=mix\n"
		 "\n"
		 "--mix\n"
		 "Content-Type: text/plain\n"
		 "\n"
		 "See the attachment.\n"
		 "--mix\n"
		 "Content-Type: application/PDF; name=\"fallback.pdf\"\n"
		 "Content-Transfer-Encoding: base64\n"
		 "Content-Disposition: attachment;\n"
		 " filename*=utf-8''%%C3%%9Cberweisung.pdf\n"
		 "\n"
		 "%.20s\n%s\n"
		 "--mix--\n",
		 b64, b64 + 20);
	return crlf(msg, len_r);
}

static void test_pdf_attachment(void **state)
{
	(void)state;
	size_t len = 0;
	char *raw = pdf_message(&len);
	struct received_view v;
	view_of_raw(raw, len, NULL, &v);
	assert_string_equal(v.text, "See the attachment.");
	assert_int_equal(v.attachment_count, 1);
	const struct received_attachment *a = &v.attachments[0];
	assert_string_equal(a->filename, "\xc3\x9c" "berweisung.pdf"); /* RFC 2231 over the name parameter */
	assert_string_equal(a->content_type, "application/pdf");
	assert_null(a->content_id);
	assert_string_equal(a->content_disposition, "attachment");
	assert_int_equal(a->size, sizeof(pdf_bytes));
	assert_string_equal(a->part, "2");
	/* a UUID's shape, version 8 */
	assert_int_equal(a->id[8], '-');
	assert_int_equal(a->id[14], '8');

	char id[RECEIVED_ID_LEN + 1];
	memcpy(id, a->id, sizeof(id));
	size_t size = 0;
	char *ct = NULL, *fn = NULL;
	unsigned char *got = received_view_attachment(raw, len, NULL, id, &size, &ct, &fn);
	assert_non_null(got);
	assert_int_equal(size, sizeof(pdf_bytes));
	assert_memory_equal(got, pdf_bytes, sizeof(pdf_bytes));
	assert_string_equal(ct, "application/pdf");
	assert_string_equal(fn, "\xc3\x9c" "berweisung.pdf");
	free(got);
	free(ct);
	free(fn);
	received_view_clear(&v);

	/* the same octets give the same id; other octets another */
	view_of_raw(raw, len, NULL, &v);
	assert_string_equal(v.attachments[0].id, id);
	received_view_clear(&v);
	raw[len - 3] = 'x';
	view_of_raw(raw, len, NULL, &v);
	assert_string_not_equal(v.attachments[0].id, id);
	received_view_clear(&v);
	assert_null(received_view_attachment(raw, len, NULL, id, &size, &ct, &fn));
	assert_int_equal(size, 0);
	assert_null(ct);
	assert_null(fn);
	assert_null(received_view_attachment(raw, len, NULL, "nope", NULL, NULL, NULL));
	assert_null(received_view_attachment(raw, len, NULL, NULL, NULL, NULL, NULL));
	free(raw);
}

static void test_inline_image(void **state)
{
	(void)state;
	struct received_view v;
	size_t len = 0;
	char *raw = crlf("From: a@example.com\n"
			 "Content-Type: multipart/related; boundary=\"rel\"; type=\"text/html\"\n"
			 "\n"
			 "--rel\n"
			 "Content-Type: text/html; charset=us-ascii\n"
			 "\n"
			 "<img src=\"cid:logo@example.com\">\n"
			 "--rel\n"
			 "Content-Type: image/png\n"
			 "Content-Transfer-Encoding: base64\n"
			 "Content-ID: <logo@example.com>\n"
			 "\n"
			 "iVBORw0KGgo=\n"
			 "--rel\n"
			 "Content-Type: image/gif; name=\"x.gif\"\n"
			 "Content-Disposition: inline\n"
			 "\n"
			 "GIF89a\n"
			 "--rel\n"
			 "Content-Type: image/jpeg\n"
			 "Content-Disposition: x-unknown-kind\n"
			 "\n"
			 "JPEG\n"
			 "--rel--\n",
			 &len);
	view_of_raw(raw, len, NULL, &v);
	assert_string_equal(v.html, "<img src=\"cid:logo@example.com\">");
	assert_null(v.text);
	assert_int_equal(v.attachment_count, 3);
	assert_string_equal(v.attachments[0].content_type, "image/png");
	assert_string_equal(v.attachments[0].content_id, "logo@example.com");
	assert_string_equal(v.attachments[0].content_disposition, "inline");
	assert_null(v.attachments[0].filename);
	assert_int_equal(v.attachments[0].size, 8); /* the PNG signature */
	assert_string_equal(v.attachments[0].part, "2");
	assert_string_equal(v.attachments[1].content_disposition, "inline");
	assert_string_equal(v.attachments[1].filename, "x.gif");
	assert_int_equal(v.attachments[1].size, 6);
	/* RFC 2183 §2.8: an unknown disposition is an attachment */
	assert_string_equal(v.attachments[2].content_disposition, "attachment");

	size_t size = 0;
	unsigned char *png = received_view_attachment(raw, len, NULL, v.attachments[0].id, &size, NULL, NULL);
	assert_non_null(png);
	assert_int_equal(size, 8);
	assert_memory_equal(png, "\x89PNG\r\n\x1a\n", 8);
	free(png);
	received_view_clear(&v);
	free(raw);
}

/* A forwarded message is one attachment (its octets the message), not walked into; nested
 * multiparts get IMAP part numbers. */
static void test_rfc822_attachment(void **state)
{
	(void)state;
	/* the line break before the next delimiter is the delimiter's (RFC 2046 §5.1.1) */
	static const char inner[] = "From: old@example.org\r\nSubject: original\r\n\r\nold text";
	struct received_view v;
	size_t len = 0;
	char msg[2048];
	snprintf(msg, sizeof(msg),
		 "From: a@example.com\n"
		 "Content-Type: multipart/mixed; boundary=outer\n"
		 "\n"
		 "--outer\n"
		 "Content-Type: multipart/alternative; boundary=inner\n"
		 "\n"
		 "--inner\n"
		 "Content-Type: text/plain\n"
		 "\n"
		 "new text\n"
		 "--inner\n"
		 "Content-Type: text/html\n"
		 "\n"
		 "<p>new</p>\n"
		 "--inner--\n"
		 "--outer\n"
		 "Content-Type: message/rfc822\n"
		 "Content-Disposition: attachment; filename=\"fwd.eml\"\n"
		 "\n"
		 "From: old@example.org\n"
		 "Subject: original\n"
		 "\n"
		 "old text\n"
		 "--outer\n"
		 "Content-Type: text/plain\n"
		 "Content-Disposition: inline\n"
		 "\n"
		 "a second text part\n"
		 "--outer--\n");
	char *raw = crlf(msg, &len);
	view_of_raw(raw, len, NULL, &v);
	assert_string_equal(v.text, "new text");
	assert_string_equal(v.html, "<p>new</p>");
	assert_null(v.subject);
	assert_int_equal(v.attachment_count, 2);
	assert_string_equal(v.attachments[0].content_type, "message/rfc822");
	assert_string_equal(v.attachments[0].filename, "fwd.eml");
	assert_string_equal(v.attachments[0].part, "2");
	assert_int_equal(v.attachments[0].size, strlen(inner));
	/* the text after the first is an inline attachment */
	assert_string_equal(v.attachments[1].content_type, "text/plain");
	assert_string_equal(v.attachments[1].content_disposition, "inline");
	assert_string_equal(v.attachments[1].part, "3");
	size_t size = 0;
	unsigned char *eml = received_view_attachment(raw, len, NULL, v.attachments[0].id, &size, NULL, NULL);
	assert_non_null(eml);
	assert_int_equal(size, strlen(inner));
	assert_memory_equal(eml, inner, size);
	free(eml);
	received_view_clear(&v);
	free(raw);

	/* RFC 2046 §5.1.5: in a digest a part without Content-Type is a message */
	view_of("From: a@example.com\nContent-Type: multipart/digest; boundary=d\n\n--d\n\nFrom: x@y\n\nhi\n--d--\n", &v);
	assert_int_equal(v.attachment_count, 1);
	assert_string_equal(v.attachments[0].content_type, "message/rfc822");
	assert_string_equal(v.attachments[0].part, "1");
	received_view_clear(&v);
}

/* A single-part body that is not text is attachment "1". */
static void test_single_part_attachment(void **state)
{
	(void)state;
	struct received_view v;
	view_of("From: a@example.com\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
		"AAEC\n",
		&v);
	assert_null(v.text);
	assert_int_equal(v.attachment_count, 1);
	assert_string_equal(v.attachments[0].part, "1");
	assert_int_equal(v.attachments[0].size, 3);
	received_view_clear(&v);

	/* x-uuencode: from the line after "begin" */
	size_t len = 0;
	char *raw = crlf("From: a@example.com\nContent-Type: application/octet-stream\n"
			 "Content-Transfer-Encoding: x-uuencode\n\nbegin 644 a.bin\n#86)C\n`\nend\n",
			 &len);
	view_of_raw(raw, len, NULL, &v);
	assert_int_equal(v.attachments[0].size, 3);
	size_t size = 0;
	unsigned char *d = received_view_attachment(raw, len, NULL, v.attachments[0].id, &size, NULL, NULL);
	assert_non_null(d);
	assert_int_equal(size, 3);
	assert_memory_equal(d, "abc", 3);
	free(d);
	received_view_clear(&v);
	free(raw);
}

struct thread_arg {
	const char *raw;
	size_t len;
	int bad;
};

static void *thread_main(void *p)
{
	struct thread_arg *a = p;
	for (int i = 0; i < 200; i++) {
		struct received_view v;
		const char *err = NULL;
		if (received_view_parse(a->raw, a->len, NULL, &v, &err) != RECEIVED_VIEW_OK || v.attachment_count != 1 ||
		    strcmp(v.attachments[0].filename, "\xc3\x9c" "berweisung.pdf") != 0 ||
		    strcmp(v.text, "See the attachment.") != 0)
			a->bad++;
		size_t size = 0;
		unsigned char *d = v.attachment_count == 1 ? received_view_attachment(a->raw, a->len, NULL,
										     v.attachments[0].id, &size, NULL, NULL)
							   : NULL;
		if (d == NULL || size != sizeof(pdf_bytes) || memcmp(d, pdf_bytes, size) != 0)
			a->bad++;
		free(d);
		received_view_clear(&v);
	}
	return NULL;
}

/* Any thread: GMime is initialised once and every call has its own objects. */
static void test_threads(void **state)
{
	(void)state;
	size_t len = 0;
	char *raw = pdf_message(&len);
	pthread_t th[4];
	struct thread_arg args[4];
	for (int i = 0; i < 4; i++) {
		args[i] = (struct thread_arg){.raw = raw, .len = len};
		assert_int_equal(pthread_create(&th[i], NULL, thread_main, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(args[i].bad, 0);
	}
	free(raw);
}

/* ---- limits and errors ---------------------------------------------------------------------------- */

static void test_errors(void **state)
{
	(void)state;
	struct received_view v;
	const char *err = NULL;
	assert_int_equal(received_view_parse(NULL, 0, NULL, &v, &err), RECEIVED_VIEW_NOT_A_MESSAGE);
	assert_non_null(err);
	static const char *const not_messages[] = {"", "just some text\n", "\r\n\r\nbody", " folded: x\n",
						   "From a@b Mon Jan  1 00:00:00 2024\n", "\x00: x\n"};
	for (size_t i = 0; i < sizeof(not_messages) / sizeof(not_messages[0]); i++) {
		size_t n = i == 5 ? 5 : strlen(not_messages[i]);
		char *raw = test_dup(not_messages[i], n);
		err = NULL;
		assert_int_equal(received_view_parse(raw, n, NULL, &v, &err), RECEIVED_VIEW_NOT_A_MESSAGE);
		assert_non_null(err);
		assert_null(v.text);
		received_view_clear(&v);
		assert_null(received_view_attachment(raw, n, NULL, "00000000-0000-8000-8000-000000000000", NULL, NULL,
						     NULL));
		free(raw);
	}
	struct received_view_limits lim = {.max_size = 10};
	static const char big[] = "From: a@example.com\n\nbody\n";
	assert_int_equal(received_view_parse(big, strlen(big), &lim, &v, &err), RECEIVED_VIEW_TOO_LARGE);
	assert_non_null(err);
	received_view_clear(&v);
	assert_string_equal(received_view_error_str(RECEIVED_VIEW_TOO_LARGE), "too_large");
}

static void test_limit_text_and_headers(void **state)
{
	(void)state;
	struct text t = {0};
	for (int i = 0; i < 30; i++) {
		char line[64];
		snprintf(line, sizeof(line), "X-Field-%d: %d\n", i, i);
		text_puts(&t, line);
	}
	text_puts(&t, "Subject: found after the limit\nContent-Type: text/plain; charset=utf-8\n\n");
	for (int i = 0; i < 100; i++)
		text_puts(&t, "\xc3\xa4"); /* two octets each: a cut must not split one */
	struct received_view_limits lim = {.max_headers = 10, .max_text = 51};
	struct received_view v;
	view_of_raw(t.p, t.len, &lim, &v);
	assert_int_equal(v.header_count, 10);
	assert_string_equal(v.subject, "found after the limit");
	assert_int_equal(strlen(v.text), 50);
	assert_non_null(v.limited);
	received_view_clear(&v);
	free(t.p);
}

static void test_hostile_nesting(void **state)
{
	(void)state;
	struct text t = {0};
	text_puts(&t, "From: a@example.com\n");
	for (int i = 0; i < 10000; i++) {
		char line[128];
		snprintf(line, sizeof(line), "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i, i);
		text_puts(&t, line);
	}
	text_puts(&t, "Content-Type: text/plain\n\ndeep\n");
	for (int i = 9999; i >= 0; i--) {
		char line[64];
		snprintf(line, sizeof(line), "--b%d--\n", i);
		text_puts(&t, line);
	}
	double t0 = now_s();
	struct received_view v;
	view_of_raw(t.p, t.len, NULL, &v);
	double dt = now_s() - t0;
	assert_non_null(v.limited);
	assert_null(v.text); /* past the depth limit */
	assert_int_equal(v.attachment_count, 0);
	received_view_clear(&v);
	if (dt > 2.0)
		fail_msg("10000 levels: %.2f s", dt);

	/* one boundary for every level: each level's parts are cut at the first delimiter */
	t.len = 0;
	text_puts(&t, "From: a@example.com\n");
	for (int i = 0; i < 10000; i++)
		text_puts(&t, "Content-Type: multipart/mixed; boundary=b\n\n--b\n");
	view_of_raw(t.p, t.len, NULL, &v);
	received_view_clear(&v);

	/* the deepest level the limit allows is walked, with its part number */
	t.len = 0;
	text_puts(&t, "From: a@example.com\n");
	for (int i = 0; i < 20; i++) {
		char line[128];
		snprintf(line, sizeof(line), "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i, i);
		text_puts(&t, line);
	}
	text_puts(&t, "Content-Type: application/x-deep\n\ndeep\n");
	view_of_raw(t.p, t.len, NULL, &v);
	assert_null(v.limited);
	assert_int_equal(v.attachment_count, 1);
	assert_string_equal(v.attachments[0].part, "1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1"); /* 20 levels */
	size_t size = 0;
	unsigned char *d = received_view_attachment(t.p, t.len, NULL, v.attachments[0].id, &size, NULL, NULL);
	assert_non_null(d);
	assert_int_equal(size, 5);
	free(d);
	received_view_clear(&v);
	free(t.p);
}

static void test_hostile_parts(void **state)
{
	(void)state;
	struct text t = {0};
	text_puts(&t, "From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n");
	for (int i = 0; i < 100000; i++)
		text_puts(&t, "--b\n\nx\n");
	double t0 = now_s();
	struct received_view v;
	view_of_raw(t.p, t.len, NULL, &v);
	double dt = now_s() - t0;
	assert_non_null(v.limited);
	/* the multipart is one of the 500 entities; the first leaf is the text */
	assert_string_equal(v.text, "x");
	assert_int_equal(v.attachment_count, 498);
	assert_string_equal(v.attachments[497].part, "499");
	received_view_clear(&v);
	if (dt > 2.0)
		fail_msg("100000 parts: %.2f s", dt);

	/* an attachment past the limit is not found */
	struct received_view_limits lim = {.max_parts = 3};
	view_of_raw(t.p, t.len, &lim, &v);
	assert_int_equal(v.attachment_count, 1);
	char id[RECEIVED_ID_LEN + 1];
	memcpy(id, v.attachments[0].id, sizeof(id));
	received_view_clear(&v);
	unsigned char *d = received_view_attachment(t.p, t.len, &lim, id, NULL, NULL, NULL);
	assert_non_null(d);
	free(d);
	free(t.p);
}

/* A field of 1 MiB in many shapes: unstructured, addresses, Content-Type parameters, a date. */
static void test_hostile_fields(void **state)
{
	(void)state;
	static const char *const names[] = {"Subject", "X-Long", "To", "From", "Date", "Content-Type",
					    "Content-Disposition"};
	static const char *const patterns[] = {"a@b.c, ", "=?utf-8?q?=C3=A4?= ", "(", "\"", "<", "x*0*=a;", "\xff",
					       "\xc3", "; a=b"};
	size_t n = (size_t)1 << 20;
	for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		for (size_t p = 0; p < sizeof(patterns) / sizeof(patterns[0]); p++) {
			struct text t = {0};
			text_puts(&t, "From: a@example.com\n");
			text_puts(&t, names[k]);
			text_puts(&t, strcmp(names[k], "Content-Type") == 0 ? ": text/plain; " : ": ");
			size_t pl = strlen(patterns[p]);
			for (size_t i = 0; i < n; i += pl) {
				text_put(&t, patterns[p], pl);
				if (i % 900 < pl)
					text_puts(&t, "\n "); /* folded */
			}
			text_puts(&t, "\n\nbody\n");
			double t0 = now_s();
			struct received_view v;
			view_of_raw(t.p, t.len, NULL, &v);
			double dt = now_s() - t0;
			if (strcmp(names[k], "To") == 0 && p == 0) {
				assert_non_null(v.limited); /* read up to max_field, 64 KiB */
				assert_true(v.to_count > 8000 && v.to_count < 10000);
			}
			assert_non_null(v.limited);
			for (size_t h = 0; h < v.header_count; h++)
				assert_true(strlen(v.headers[h].value) <= 3 * ((size_t)64 << 10)); /* U+FFFD: 3 octets per octet */
			received_view_clear(&v);
			if (dt > 2.0)
				fail_msg("%s of \"%s\": %.2f s", names[k], patterns[p], dt);
			free(t.p);
		}
	}
}

static void test_hostile_broken(void **state)
{
	(void)state;
	struct received_view v;
	/* no empty line: the line that is not a field starts the body */
	view_of("From: a@example.com\nSubject: x\nThis is the body\n", &v);
	assert_string_equal(v.text, "This is the body\r\n");
	assert_int_equal(v.header_count, 2);
	received_view_clear(&v);
	/* header fields only */
	view_of("From: a@example.com\nSubject: x", &v);
	assert_string_equal(v.text, "");
	received_view_clear(&v);
	/* bare LF lines and a boundary that never closes */
	static const char lf[] = "From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
				 "Content-Type: text/plain\n\nfirst\n--b\nContent-Type: application/zip\n\nPK...";
	view_of_raw(lf, strlen(lf), NULL, &v);
	assert_string_equal(v.text, "first");
	assert_int_equal(v.attachment_count, 1);
	assert_int_equal(v.attachments[0].size, 5);
	received_view_clear(&v);
	/* a boundary that never opens: no parts at all */
	view_of("From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\nno delimiters\n", &v);
	assert_null(v.text);
	assert_int_equal(v.attachment_count, 0);
	received_view_clear(&v);
	/* a multipart without a boundary, an invalid Content-Type: text/plain (RFC 2045 §5.2) */
	view_of("From: a@example.com\nContent-Type: multipart/mixed\n\ntext\n", &v);
	assert_string_equal(v.text, "text\r\n");
	received_view_clear(&v);
	view_of("From: a@example.com\nContent-Type: ;;;\n\ntext\n", &v);
	assert_string_equal(v.text, "text\r\n");
	received_view_clear(&v);
	/* invalid base64: what is not in the alphabet is passed over */
	view_of("From: a@example.com\nContent-Type: application/x\nContent-Transfer-Encoding: base64\n\n"
		"@@!!QU\x01JD*\n====\nRA\n",
		&v);
	assert_int_equal(v.attachments[0].size, 3); /* "ABC": GMime's decoder ends at the padding */
	received_view_clear(&v);
	/* a field is one line: a CR or LF from an encoded word or a parameter is a space */
	view_of("From: a@example.com\nSubject: =?utf-8?q?a=0D=0Ab?=\nContent-Type: application/x;\n"
		" name*=utf-8''a%0Ab\n\n",
		&v);
	assert_string_equal(v.subject, "a  b");
	assert_string_equal(v.attachments[0].filename, "a b");
	received_view_clear(&v);
	/* a delimiter with trailing garbage is not one; with transport padding it is */
	view_of("From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b  \n\none\n--bx\n--b--\t\n", &v);
	assert_string_equal(v.text, "one\r\n--bx");
	received_view_clear(&v);
}

static void test_hostile_nul(void **state)
{
	(void)state;
	static const char msg[] = "From: A\0B <a@example.com>\r\n"
				  "Subject: x\0y\r\n"
				  "X-\0: z\r\n"
				  "Content-Type: multipart/mixed; boundary=b\0c\r\n"
				  "\r\n"
				  "--b\r\n"
				  "Content-Type: text/plain; charset=utf-8\r\n"
				  "\r\n"
				  "a\0b\r\n"
				  "--b\r\n"
				  "Content-Type: text/html; charset=iso-8859-1\r\n"
				  "\r\n"
				  "c\0d\r\n"
				  "--b--\r\n";
	struct received_view v;
	view_of_raw(msg, sizeof(msg) - 1, NULL, &v);
	assert_string_equal(v.subject, "x\xef\xbf\xbdy");
	assert_int_equal(v.header_count, 2); /* "X-\0" is not a field name: the body starts there */
	received_view_clear(&v);

	static const char body[] = "From: a@example.com\r\nContent-Type: text/plain\r\n\r\na\0b\r\n";
	view_of_raw(body, sizeof(body) - 1, NULL, &v);
	assert_string_equal(v.text, "a\xef\xbf\xbd" "b\r\n");
	received_view_clear(&v);
}

/* Random octets and random mutations of the messages above: never a crash, always UTF-8. */
static void test_hostile_random(void **state)
{
	(void)state;
	size_t plen = 0;
	char *pdf = pdf_message(&plen);
	size_t len0 = 0;
	char *plain = crlf(plain_msg, &len0);
	unsigned seed = 12345;
	for (int round = 0; round < 2000; round++) {
		const char *src = round % 2 ? pdf : plain;
		size_t n = round % 2 ? plen : len0;
		char *m = test_dup(src, n);
		for (int k = 0; k < 8; k++) {
			seed = seed * 1103515245u + 12345u;
			m[(seed >> 8) % n] = (char)(seed >> 20);
		}
		seed = seed * 1103515245u + 12345u;
		size_t cut = (seed >> 8) % (n + 1);
		struct received_view v;
		const char *err = NULL;
		if (received_view_parse(m, cut, NULL, &v, &err) == RECEIVED_VIEW_OK) {
			check_view(&v);
			if (v.attachment_count > 0) {
				size_t size = 0;
				unsigned char *d = received_view_attachment(m, cut, NULL, v.attachments[0].id, &size,
									    NULL, NULL);
				assert_non_null(d);
				assert_int_equal(size, v.attachments[0].size);
				free(d);
			}
		}
		received_view_clear(&v);
		free(m);
	}
	free(pdf);
	free(plain);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_alternative),
		cmocka_unit_test(test_latin1_8bit),
		cmocka_unit_test(test_charsets),
		cmocka_unit_test(test_subject_two_charsets),
		cmocka_unit_test(test_pdf_attachment),
		cmocka_unit_test(test_inline_image),
		cmocka_unit_test(test_rfc822_attachment),
		cmocka_unit_test(test_single_part_attachment),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_limit_text_and_headers),
		cmocka_unit_test(test_hostile_nesting),
		cmocka_unit_test(test_hostile_parts),
		cmocka_unit_test(test_hostile_fields),
		cmocka_unit_test(test_hostile_broken),
		cmocka_unit_test(test_hostile_nul),
		cmocka_unit_test(test_hostile_random),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	g_mime_shutdown(); /* received_view initialised GMime once */
	return rc;
}
