/* test_compose.c — compose_message and compose_html_to_text: every composed message is checked on the
 * wire (CRLF only, no line over 998 octets, no Bcc) and then parsed back with GMime, so that the MIME
 * tree, the decoded header values (RFC 2047), file names (RFC 2231) and attachment octets are what the
 * request held; plus the html→text converter on ordinary and hostile input. */
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

#include "http/compose.h"
#include "http/email_req.h"
#include "util/addr.h"

/* 2026-11-22 04:05:06 UTC */
#define T_DATE 1795320306

static struct email_mailbox mb(const char *name, const char *addr)
{
	struct email_mailbox m = {.name = (char *)name};
	const char *err = NULL;
	if (addr_parse_mailbox(addr, strlen(addr), ADDR_ALLOW_UTF8, &m.addr, &err) != ADDR_OK)
		fail_msg("addr_parse_mailbox(%s): %s", addr, err);
	return m;
}

static struct email_mailbox t_to[2], t_cc[1], t_bcc[1];

/* from, two To, one Cc, one Bcc, subject "Hello"; the body is up to the test */
static struct email_req base_req(void)
{
	t_to[0] = mb("Anna", "anna@example.net");
	t_to[1] = mb(NULL, "bob@example.net");
	t_cc[0] = mb(NULL, "carol@example.org");
	t_bcc[0] = mb("Hidden", "secret@example.com");
	struct email_req r = {
		.from = mb("Mailwerk Team", "team@example.com"),
		.to = t_to, .to_count = 2,
		.cc = t_cc, .cc_count = 1,
		.bcc = t_bcc, .bcc_count = 1,
		.subject = (char *)"Hello",
	};
	return r;
}

static const struct compose_opts base_opts = {
	.hostname = "mx.example.com",
	.message_id_local = "0123456789ABCDEFGHJK",
	.date = T_DATE,
};

/* RFC 5322 §2.1.1 and §2.3 on the raw bytes: CRLF line ends only, none over 998 octets, a final CRLF. */
static void check_wire(const char *m, size_t len)
{
	size_t line = 0;
	for (size_t i = 0; i < len; i++) {
		if (m[i] == '\r') {
			assert_true(i + 1 < len && m[i + 1] == '\n');
			assert_true(line <= 998);
			line = 0;
			i++;
		} else {
			assert_int_not_equal(m[i], '\n');
			assert_int_not_equal(m[i], '\0');
			line++;
		}
	}
	assert_true(len >= 2 && m[len - 2] == '\r' && m[len - 1] == '\n');
}

/* The header block: up to and including the CRLF before the blank line, NUL-terminated. */
static char *header_block(const char *m)
{
	const char *end = strstr(m, "\r\n\r\n");
	assert_non_null(end);
	size_t n = (size_t)(end - m) + 2;
	char *h = test_dup(m, n + 1);
	h[n] = '\0';
	return h;
}

static char *compose_ok(const struct email_req *r, const struct compose_opts *o, size_t *len_r, char **id_r)
{
	char err[256] = "";
	size_t len = 0;
	char *m = compose_message(r, o, &len, id_r, err, sizeof(err));
	if (m == NULL)
		fail_msg("compose_message: %s", err);
	if (getenv("TEST_COMPOSE_DUMP") != NULL)
		fprintf(stderr, "%.*s\n----\n", (int)(len < 6000 ? len : 6000), m);
	assert_int_equal(strlen(m), len);
	check_wire(m, len);
	/* Bcc recipients are never in the message (RFC 5322 §3.6.3) */
	char *h = header_block(m);
	assert_null(strcasestr(h, "\r\nBcc:"));
	assert_null(strstr(m, "secret@example.com"));
	free(h);
	if (len_r != NULL)
		*len_r = len;
	return m;
}

static GMimeMessage *parse(const char *m, size_t len)
{
	GMimeStream *s = g_mime_stream_mem_new_with_buffer(m, len);
	GMimeParser *p = g_mime_parser_new_with_stream(s);
	GMimeMessage *msg = g_mime_parser_construct_message(p, NULL);
	g_object_unref(p);
	g_object_unref(s);
	assert_non_null(msg);
	return msg;
}

/* The MIME tree as "multipart/mixed(text/plain,application/pdf)". */
static void shape_append(GMimeObject *o, GString *out)
{
	char *t = g_mime_content_type_get_mime_type(g_mime_object_get_content_type(o));
	g_string_append(out, t);
	g_free(t);
	if (GMIME_IS_MULTIPART(o)) {
		GMimeMultipart *mp = GMIME_MULTIPART(o);
		g_string_append_c(out, '(');
		for (int i = 0; i < g_mime_multipart_get_count(mp); i++) {
			if (i > 0)
				g_string_append_c(out, ',');
			shape_append(g_mime_multipart_get_part(mp, i), out);
		}
		g_string_append_c(out, ')');
	}
}

static void assert_shape(GMimeMessage *msg, const char *want)
{
	GString *s = g_string_new("");
	shape_append(g_mime_message_get_mime_part(msg), s);
	if (strcmp(s->str, want) != 0)
		fail_msg("shape %s, want %s", s->str, want);
	g_string_free(s, TRUE);
}

/* The part at a path of child indexes ("" for the root, "01" = second child of the first child). */
static GMimeObject *part_at(GMimeMessage *msg, const char *path)
{
	GMimeObject *o = g_mime_message_get_mime_part(msg);
	for (; *path != '\0'; path++) {
		assert_true(GMIME_IS_MULTIPART(o));
		o = g_mime_multipart_get_part(GMIME_MULTIPART(o), *path - '0');
		assert_non_null(o);
	}
	return o;
}

/* The decoded octets of a leaf part (g_free). */
static GByteArray *part_bytes(GMimeObject *o)
{
	assert_true(GMIME_IS_PART(o));
	GByteArray *ba = g_byte_array_new();
	GMimeStream *s = g_mime_stream_mem_new_with_byte_array(ba);
	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(s), FALSE);
	GMimeDataWrapper *w = g_mime_part_get_content(GMIME_PART(o));
	if (w != NULL)
		g_mime_data_wrapper_write_to_stream(w, s);
	g_object_unref(s);
	return ba;
}

/* Text parts compared in their local form: CRLF is the canonical line end on the wire (RFC 2046
 * §4.1.1), LF in the request. */
static void assert_part_text(GMimeObject *o, const char *want)
{
	GByteArray *ba = part_bytes(o);
	guint k = 0;
	for (guint i = 0; i < ba->len; i++)
		if (!(ba->data[i] == '\r' && i + 1 < ba->len && ba->data[i + 1] == '\n'))
			ba->data[k++] = ba->data[i];
	g_byte_array_set_size(ba, k);
	g_byte_array_append(ba, (const guint8 *)"", 1);
	if (strcmp((const char *)ba->data, want) != 0)
		fail_msg("part text \"%.200s\", want \"%.200s\"", (const char *)ba->data, want);
	g_byte_array_free(ba, TRUE);
}

static void assert_part_bytes(GMimeObject *o, const unsigned char *want, size_t n)
{
	GByteArray *ba = part_bytes(o);
	assert_int_equal(ba->len, n);
	if (n > 0)
		assert_memory_equal(ba->data, want, n);
	g_byte_array_free(ba, TRUE);
}

static const char *encoding_of(GMimeObject *o)
{
	return g_mime_content_encoding_to_string(g_mime_part_get_content_encoding(GMIME_PART(o)));
}

/* ---- structure ---------------------------------------------------------------------------------- */

static void test_text_only(void **state)
{
	(void)state;
	struct email_req r = base_req();
	r.text = (char *)"Hi Anna,\nthe report is attached.\n";
	size_t len;
	char *id = NULL;
	char *m = compose_ok(&r, &base_opts, &len, &id);
	assert_string_equal(id, "0123456789ABCDEFGHJK@mx.example.com");

	char *h = header_block(m);
	assert_non_null(strstr(h, "From: Mailwerk Team <team@example.com>\r\n"));
	assert_non_null(strstr(h, "\r\nTo: Anna <anna@example.net>, bob@example.net\r\n"));
	assert_non_null(strstr(h, "\r\nCc: carol@example.org\r\n"));
	assert_non_null(strstr(h, "\r\nSubject: Hello\r\n"));
	assert_non_null(strstr(h, "\r\nDate: Sun, 22 Nov 2026 04:05:06 +0000\r\n"));
	assert_non_null(strstr(h, "\r\nMessage-ID: <0123456789ABCDEFGHJK@mx.example.com>\r\n"));
	assert_non_null(strstr(h, "\r\nMIME-Version: 1.0\r\n"));
	assert_null(strcasestr(h, "List-Unsubscribe"));
	assert_null(strcasestr(h, "Reply-To"));
	/* the order of RFC 5322 §3.6's table, the body's fields last */
	assert_true(strstr(h, "\r\nTo:") < strstr(h, "\r\nSubject:"));
	assert_true(strstr(h, "\r\nSubject:") < strstr(h, "\r\nDate:"));
	assert_true(strstr(h, "\r\nMessage-ID:") < strstr(h, "\r\nMIME-Version:"));
	assert_true(strstr(h, "\r\nMIME-Version:") < strstr(h, "\r\nContent-Type:"));
	free(h);

	GMimeMessage *msg = parse(m, len);
	assert_shape(msg, "text/plain");
	GMimeObject *p = part_at(msg, "");
	assert_string_equal(g_mime_object_get_content_type_parameter(p, "charset"), "utf-8");
	assert_string_equal(encoding_of(p), "7bit");
	assert_part_text(p, r.text);
	assert_string_equal(g_mime_message_get_message_id(msg), id);
	g_object_unref(msg);
	free(m);
	free(id);
}

static void test_html_only(void **state)
{
	(void)state;
	struct email_req r = base_req();
	r.html = (char *)"<html><body><h1>Welcome</h1>"
			 "<p>Read <a href=\"https://example.com/x\">the guide</a>.</p></body></html>";
	size_t len;
	char *m = compose_ok(&r, &base_opts, &len, NULL);
	GMimeMessage *msg = parse(m, len);
	assert_shape(msg, "multipart/alternative(text/plain,text/html)");
	assert_part_text(part_at(msg, "0"), "Welcome\n\nRead the guide (https://example.com/x).");
	assert_part_text(part_at(msg, "1"), r.html);
	assert_string_equal(g_mime_object_get_content_type_parameter(part_at(msg, "1"), "charset"), "utf-8");
	g_object_unref(msg);
	free(m);
}

static void test_text_and_html(void **state)
{
	(void)state;
	struct email_req r = base_req();
	r.text = (char *)"Plain version";
	r.html = (char *)"<p>Rich version</p>";
	size_t len;
	char *m = compose_ok(&r, &base_opts, &len, NULL);
	GMimeMessage *msg = parse(m, len);
	/* RFC 2046 §5.1.4: the preferred (richest) alternative last */
	assert_shape(msg, "multipart/alternative(text/plain,text/html)");
	assert_part_text(part_at(msg, "0"), "Plain version");
	assert_part_text(part_at(msg, "1"), "<p>Rich version</p>");
	g_object_unref(msg);
	free(m);
}

static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
				    0, 0, 0, 0x0d, 'I', 'H', 'D', 'R'};

static void test_inline_image(void **state)
{
	(void)state;
	struct email_req r = base_req();
	r.html = (char *)"<p>Logo: <img src=\"cid:logo@mailwerk\" alt=\"Mailwerk\"></p>";
	struct email_attachment a = {
		.filename = (char *)"logo.png", .content = (unsigned char *)png, .size = sizeof(png),
		.content_type = (char *)"image/png", .content_id = (char *)"logo@mailwerk",
	};
	r.attachments = &a;
	r.attachment_count = 1;
	size_t len;
	char *m = compose_ok(&r, &base_opts, &len, NULL);
	assert_non_null(strstr(m, "\r\nContent-ID: <logo@mailwerk>\r\n"));
	GMimeMessage *msg = parse(m, len);
	assert_shape(msg, "multipart/alternative(text/plain,multipart/related(text/html,image/png))");
	assert_part_text(part_at(msg, "0"), "Logo: Mailwerk");
	/* RFC 2387 §3.1: the type parameter names the root */
	assert_string_equal(g_mime_object_get_content_type_parameter(part_at(msg, "1"), "type"), "text/html");
	GMimeObject *img = part_at(msg, "11");
	assert_string_equal(g_mime_object_get_content_id(img), "logo@mailwerk");
	assert_string_equal(g_mime_object_get_disposition(img), "inline");
	assert_string_equal(encoding_of(img), "base64");
	assert_part_bytes(img, png, sizeof(png));
	g_object_unref(msg);
	free(m);
}

static void test_attachment(void **state)
{
	(void)state;
	struct email_req r = base_req();
	r.text = (char *)"See attachment.";
	static const char pdf[] = "%PDF-1.4\n%\xe2\xe3\xcf\xd3\r\n1 0 obj\r<<>>\nendobj\n";
	struct email_attachment a = {
		.filename = (char *)"Überweisung März.pdf", .content = (unsigned char *)pdf,
		.size = sizeof(pdf) - 1, .content_type = (char *)"application/pdf",
	};
	r.attachments = &a;
	r.attachment_count = 1;
	size_t len;
	char *m = compose_ok(&r, &base_opts, &len, NULL);
	/* RFC 2231 §4: charset'language'percent-encoded, never raw 8-bit in the header */
	assert_non_null(strcasestr(m, "filename*=utf-8''%C3%9Cberweisung%20M%C3%A4rz.pdf"));
	GMimeMessage *msg = parse(m, len);
	assert_shape(msg, "multipart/mixed(text/plain,application/pdf)");
	GMimeObject *p = part_at(msg, "1");
	assert_string_equal(g_mime_object_get_disposition(p), "attachment");
	assert_string_equal(g_mime_part_get_filename(GMIME_PART(p)), "Überweisung März.pdf");
	assert_string_equal(encoding_of(p), "base64");
	assert_part_bytes(p, (const unsigned char *)pdf, sizeof(pdf) - 1);
	g_object_unref(msg);
	free(m);
}

/* The attachment's Content-Type parameters go out as given: a text file's charset (RFC 2046
 * §4.1.2), an invitation's method; the file name's parameter is added beside them. */
static void test_attachment_type_parameters(void **state)
{
	(void)state;
	struct email_req r = base_req();
	r.text = (char *)"See attachment.";
	static const char latin1[] = "Gr\xfc\xdf" "e\r\n";
	struct email_attachment a = {
		.filename = (char *)"gruss.txt", .content = (unsigned char *)latin1, .size = sizeof(latin1) - 1,
		.content_type = (char *)"text/plain; charset=iso-8859-1",
	};
	r.attachments = &a;
	r.attachment_count = 1;
	size_t len;
	char *m = compose_ok(&r, &base_opts, &len, NULL);
	GMimeMessage *msg = parse(m, len);
	GMimeObject *p = part_at(msg, "1");
	assert_string_equal(g_mime_object_get_content_type_parameter(p, "charset"), "iso-8859-1");
	assert_string_equal(g_mime_part_get_filename(GMIME_PART(p)), "gruss.txt");
	assert_part_bytes(p, (const unsigned char *)latin1, sizeof(latin1) - 1);
	g_object_unref(msg);
	free(m);
}

static void test_all_together(void **state)
{
	(void)state;
	struct email_req r = base_req();
	r.text = (char *)"Text part";
	r.html = (char *)"<p>Html part <img src=\"cid:a1\"> <img src=\"cid:a2\"></p>";
	size_t big = 70000;
	unsigned char *rnd = malloc(big);
	assert_non_null(rnd);
	srand(42);
	for (size_t i = 0; i < big; i++)
		rnd[i] = (unsigned char)rand();
	struct email_attachment a[5] = {
		{.filename = (char *)"a.png", .content = (unsigned char *)png, .size = sizeof(png),
		 .content_type = (char *)"image/png", .content_id = (char *)"a1"},
		{.filename = (char *)"random.bin", .content = rnd, .size = big,
		 .content_type = (char *)"application/octet-stream"},
		{.filename = (char *)"empty.txt", .content = NULL, .size = 0,
		 .content_type = (char *)"text/plain"},
		/* an id in brackets is taken without them; no file name at all */
		{.content = (unsigned char *)png, .size = sizeof(png), .content_type = (char *)"image/gif",
		 .content_id = (char *)"<a2>"},
		/* a type that may not be base64-encoded (RFC 2045 §6.4) is sent as an opaque file */
		{.filename = (char *)"fwd.eml", .content = (unsigned char *)"Subject: x\r\n\r\ny\r\n",
		 .size = 17, .content_type = (char *)"message/rfc822"},
	};
	r.attachments = a;
	r.attachment_count = 5;
	size_t len;
	char *m = compose_ok(&r, &base_opts, &len, NULL);
	GMimeMessage *msg = parse(m, len);
	assert_shape(msg, "multipart/mixed(multipart/alternative(text/plain,"
			  "multipart/related(text/html,image/png,image/gif)),"
			  "application/octet-stream,text/plain,application/octet-stream)");
	assert_part_text(part_at(msg, "00"), "Text part");
	assert_part_text(part_at(msg, "010"), r.html);
	assert_part_bytes(part_at(msg, "011"), png, sizeof(png));
	assert_string_equal(g_mime_object_get_content_id(part_at(msg, "012")), "a2");
	assert_part_bytes(part_at(msg, "1"), rnd, big);
	assert_string_equal(g_mime_part_get_filename(GMIME_PART(part_at(msg, "1"))), "random.bin");
	assert_part_bytes(part_at(msg, "2"), NULL, 0);
	assert_string_equal(g_mime_part_get_filename(GMIME_PART(part_at(msg, "2"))), "empty.txt");
	assert_part_bytes(part_at(msg, "3"), a[4].content, a[4].size);
	g_object_unref(msg);
	free(m);
	free(rnd);
}

/* Inline parts with no html to show them travel as attachments. */
static void test_inline_without_html(void **state)
{
	(void)state;
	struct email_req r = base_req();
	r.text = (char *)"x";
	struct email_attachment a = {.filename = (char *)"l.png", .content = (unsigned char *)png,
				     .size = sizeof(png), .content_type = (char *)"image/png",
				     .content_id = (char *)"l"};
	r.attachments = &a;
	r.attachment_count = 1;
	size_t len;
	char *m = compose_ok(&r, &base_opts, &len, NULL);
	GMimeMessage *msg = parse(m, len);
	assert_shape(msg, "multipart/mixed(text/plain,image/png)");
	assert_string_equal(g_mime_object_get_disposition(part_at(msg, "1")), "attachment");
	g_object_unref(msg);
	free(m);
}

/* ---- header encoding ---------------------------------------------------------------------------- */

static void test_header_encoding(void **state)
{
	(void)state;
	struct email_req r = base_req();
	r.from = mb("Jörg Müller", "joerg@example.com");
	t_to[0] = mb("Doe, John \"JD\"", "john@example.net");
	t_to[1] = mb("Zoë (Team) <x>", "zoe@example.net");
	struct email_mailbox reply[2] = {mb("Support, 1st level", "support@example.com"),
					 mb(NULL, "b@example.com")};
	r.reply_to = reply;
	r.reply_to_count = 2;
	r.subject = (char *)"Grüße aus München — Frühling 2026 🎉 with a rather long tail so that "
			    "it must be folded somewhere";
	r.text = (char *)"x";
	char url[300];
	snprintf(url, sizeof(url), "https://example.com/track?%0200d", 7);
	struct email_header hs[3] = {
		{.name = (char *)"X-Campaign", .value = (char *)"Frühjahr “Sonderaktion”"},
		{.name = (char *)"X-Url", .value = url},
		{.name = (char *)"X-Plain", .value = (char *)"two  spaces\tand a tab"},
	};
	r.headers = hs;
	r.header_count = 3;
	size_t len;
	char *m = compose_ok(&r, &base_opts, &len, NULL);

	/* the header block is ASCII: every non-ASCII character went into an encoded word */
	char *h = header_block(m);
	for (const char *p = h; *p != '\0'; p++)
		assert_true((unsigned char)*p < 0x80);
	assert_non_null(strcasestr(h, "=?utf-8?b?"));
	/* a long URL stays one word on its own (folded) line: never cut by folding */
	assert_non_null(strstr(h, url));
	assert_non_null(strstr(h, "\r\nX-Plain: two  spaces\tand a tab\r\n"));
	free(h);

	GMimeMessage *msg = parse(m, len);
	assert_string_equal(g_mime_message_get_subject(msg), r.subject);
	InternetAddressList *from = g_mime_message_get_from(msg);
	assert_int_equal(internet_address_list_length(from), 1);
	assert_string_equal(internet_address_get_name(internet_address_list_get_address(from, 0)),
			    "Jörg Müller");
	InternetAddressList *to = g_mime_message_get_to(msg);
	assert_int_equal(internet_address_list_length(to), 2);
	InternetAddress *a0 = internet_address_list_get_address(to, 0);
	assert_string_equal(internet_address_get_name(a0), "Doe, John \"JD\"");
	assert_string_equal(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a0)),
			    "john@example.net");
	InternetAddress *a1 = internet_address_list_get_address(to, 1);
	assert_string_equal(internet_address_get_name(a1), "Zoë (Team) <x>");
	assert_string_equal(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a1)),
			    "zoe@example.net");
	InternetAddressList *rt = g_mime_message_get_reply_to(msg);
	assert_int_equal(internet_address_list_length(rt), 2);
	assert_string_equal(internet_address_get_name(internet_address_list_get_address(rt, 0)),
			    "Support, 1st level");
	assert_string_equal(g_mime_object_get_header(GMIME_OBJECT(msg), "X-Campaign"), hs[0].value);
	assert_string_equal(g_mime_object_get_header(GMIME_OBJECT(msg), "X-Url"), url);
	g_object_unref(msg);
	free(m);
}

/* A subject that is one word longer than a line may be: encoded words split it (RFC 2047 §2). */
static void test_long_subject_word(void **state)
{
	(void)state;
	struct email_req r = base_req();
	char subj[1500];
	memset(subj, 'a', sizeof(subj) - 1);
	subj[sizeof(subj) - 1] = '\0';
	r.subject = subj;
	r.text = (char *)"x";
	size_t len;
	char *m = compose_ok(&r, &base_opts, &len, NULL);
	GMimeMessage *msg = parse(m, len);
	assert_string_equal(g_mime_message_get_subject(msg), subj);
	g_object_unref(msg);
	free(m);
}

/* RFC 6531 addresses are written as they are (the domain may become its A-label). */
static void test_utf8_address(void **state)
{
	(void)state;
	struct email_req r = base_req();
	t_to[1] = mb("Jörg", "jörg@example.de");
	r.text = (char *)"x";
	size_t len;
	char *m = compose_ok(&r, &base_opts, &len, NULL);
	GMimeMessage *msg = parse(m, len);
	InternetAddress *a = internet_address_list_get_address(g_mime_message_get_to(msg), 1);
	assert_string_equal(internet_address_get_name(a), "Jörg");
	assert_string_equal(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a)),
			    "jörg@example.de");
	g_object_unref(msg);
	free(m);
}

static void test_message_id_from_headers(void **state)
{
	(void)state;
	struct email_req r = base_req();
	r.text = (char *)"x";
	struct email_header h = {.name = (char *)"message-id", .value = (char *)"<custom.1@client.example>"};
	r.headers = &h;
	r.header_count = 1;
	size_t len;
	char *id = NULL;
	char *m = compose_ok(&r, &base_opts, &len, &id);
	assert_string_equal(id, "custom.1@client.example");
	assert_non_null(strstr(m, "\r\nMessage-ID: <custom.1@client.example>\r\n"));
	assert_null(strstr(m, "0123456789ABCDEFGHJK"));
	/* exactly one field */
	assert_null(strcasestr(strcasestr(m, "Message-ID:") + 1, "Message-ID:"));
	free(m);
	free(id);

	/* without brackets it gets them, so the field is still a msg-id (RFC 5322 §3.6.4) */
	h.value = (char *)"bare@client.example";
	m = compose_ok(&r, &base_opts, &len, &id);
	assert_string_equal(id, "bare@client.example");
	assert_non_null(strstr(m, "\r\nMessage-ID: <bare@client.example>\r\n"));
	free(m);
	free(id);
}

/* RFC 5322 §3.6.4: In-Reply-To and References from the request's threading fields, once each,
 * after the Message-ID; a long References folded between its msg-ids. */
static void test_threading_fields(void **state)
{
	(void)state;
	struct email_req r = base_req();
	r.text = (char *)"x";
	r.in_reply_to = (char *)"<p@x.example>";
	r.references = (char *)"<a@x.example> <p@x.example>";
	size_t len;
	char *m = compose_ok(&r, &base_opts, &len, NULL);
	char *h = header_block(m);
	const char *irt = strstr(h, "\r\nIn-Reply-To: <p@x.example>\r\n");
	const char *refs = strstr(h, "\r\nReferences: <a@x.example> <p@x.example>\r\n");
	assert_non_null(irt);
	assert_non_null(refs);
	assert_true(strstr(h, "\r\nMessage-ID: ") < irt);
	assert_true(irt < refs && refs < strstr(h, "\r\nMIME-Version: "));
	assert_null(strcasestr(irt + 2, "\r\nIn-Reply-To:"));
	assert_null(strcasestr(refs + 2, "\r\nReferences:"));
	free(h);
	GMimeMessage *msg = parse(m, len);
	assert_string_equal(g_mime_object_get_header(GMIME_OBJECT(msg), "In-Reply-To"), "<p@x.example>");
	g_object_unref(msg);
	free(m);

	/* neither given: neither written */
	r.in_reply_to = r.references = NULL;
	m = compose_ok(&r, &base_opts, &len, NULL);
	assert_null(strcasestr(m, "In-Reply-To:"));
	assert_null(strcasestr(m, "References:"));
	free(m);

	/* 100 references: folded before a msg-id, never inside one, and read back whole */
	GString *all = g_string_new("");
	for (int i = 0; i < 100; i++)
		g_string_append_printf(all, "%s<%d.0123456789abcdef0123456789@mail%d.example.com>", i ? " " : "", i, i);
	r.references = all->str;
	m = compose_ok(&r, &base_opts, &len, NULL);
	h = header_block(m);
	const char *f = strstr(h, "\r\nReferences: ");
	assert_non_null(f);
	for (const char *p = f + 2; (p = strstr(p, "\r\n")) != NULL && (p[2] == ' ' || p[2] == '\t'); p += 2)
		assert_int_equal(p[3], '<'); /* the continuation starts at a msg-id */
	free(h);
	msg = parse(m, len);
	const char *back = g_mime_object_get_header(GMIME_OBJECT(msg), "References");
	assert_non_null(back);
	GString *unfolded = g_string_new("");
	for (const char *p = back; *p; p++)
		if (*p != '\r' && *p != '\n')
			g_string_append_c(unfolded, *p == '\t' ? ' ' : *p);
	assert_non_null(strstr(unfolded->str, "<0.0123456789abcdef0123456789@mail0.example.com>"));
	assert_non_null(strstr(unfolded->str, "<99.0123456789abcdef0123456789@mail99.example.com>"));
	g_string_free(unfolded, TRUE);
	g_object_unref(msg);
	free(m);
	g_string_free(all, TRUE);
	r.references = NULL;

	/* a msg-id as long as a line may hold with its field name goes out; a longer one is refused
	 * with a sentence rather than sent over the line limit (RFC 5322 §2.1.1) */
	char id[1000];
	id[0] = '<';
	memset(id + 1, 'i', sizeof(id) - 1);
	size_t fits = 998 - strlen("In-Reply-To: ");
	memcpy(id + fits - 3, "@x>", 4);
	r.in_reply_to = id;
	m = compose_ok(&r, &base_opts, &len, NULL);
	free(m);
	id[fits - 3] = 'i';
	memcpy(id + fits - 2, "@x>", 4);
	char err[256] = "";
	assert_null(compose_message(&r, &base_opts, &len, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "RFC 5322 §2.1.1"));
}

static void test_list_unsubscribe(void **state)
{
	(void)state;
	struct email_req r = base_req();
	r.text = (char *)"x";
	struct compose_opts o = base_opts;
	o.list_unsubscribe_url = "https://example.com/unsubscribe?u=42&l=7";
	size_t len;
	char *m = compose_ok(&r, &o, &len, NULL);
	char *h = header_block(m);
	assert_non_null(strstr(h, "\r\nList-Unsubscribe: <https://example.com/unsubscribe?u=42&l=7>\r\n"));
	assert_non_null(strstr(h, "\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
	free(h);
	free(m);

	/* headers{} may give its own, which replaces ours rather than doubling the field */
	struct email_header hd = {.name = (char *)"List-Unsubscribe",
				  .value = (char *)"<mailto:u@example.com>"};
	r.headers = &hd;
	r.header_count = 1;
	m = compose_ok(&r, &o, &len, NULL);
	assert_non_null(strstr(m, "\r\nList-Unsubscribe: <mailto:u@example.com>\r\n"));
	assert_null(strstr(m, "unsubscribe?u=42"));
	assert_null(strstr(m, "List-Unsubscribe-Post"));
	free(m);
}

static void test_custom_header_order(void **state)
{
	(void)state;
	struct email_req r = base_req();
	r.text = (char *)"x";
	struct email_header hs[3] = {
		{.name = (char *)"X-B", .value = (char *)"2"},
		{.name = (char *)"X-A", .value = (char *)"1"},
		{.name = (char *)"X-Empty", .value = (char *)""},
	};
	r.headers = hs;
	r.header_count = 3;
	size_t len;
	char *m = compose_ok(&r, &base_opts, &len, NULL);
	char *h = header_block(m);
	const char *b = strstr(h, "\r\nX-B: 2\r\n"), *a = strstr(h, "\r\nX-A: 1\r\n");
	assert_non_null(a);
	assert_non_null(b);
	assert_true(strstr(h, "\r\nMIME-Version:") < b && b < a);
	assert_non_null(strstr(h, "\r\nX-Empty: \r\n"));
	free(h);
	free(m);
}

/* A long field of many tokens is folded here, not by GMime's per-field formatters. */
static void test_hostile_header_value(void **state)
{
	(void)state;
	struct email_req r = base_req();
	r.text = (char *)"x";
	size_t n = 200000;
	char *v = malloc(5 * n + 1);
	assert_non_null(v);
	for (size_t i = 0; i < n; i++)
		memcpy(v + 5 * i, "from ", 5);
	v[5 * n] = '\0';
	struct email_header h = {.name = (char *)"Received", .value = v};
	r.headers = &h;
	r.header_count = 1;
	size_t len;
	char *m = compose_ok(&r, &base_opts, &len, NULL);
	free(m);
	free(v);
}

static void test_refusals(void **state)
{
	(void)state;
	struct email_req r = base_req();
	r.text = (char *)"x";
	char err[256];
	size_t len;
	static const char *refused[] = {"From", "bcc", "To", "Subject", "Content-Type", "MIME-Version"};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		struct email_header h = {.name = (char *)refused[i], .value = (char *)"x@example.com"};
		r.headers = &h;
		r.header_count = 1;
		err[0] = '\0';
		assert_null(compose_message(&r, &base_opts, &len, NULL, err, sizeof(err)));
		assert_non_null(strstr(err, refused[i]));
	}
	/* RFC 5322 §3.6: once only, whatever the case */
	struct email_header two[2] = {{.name = (char *)"Date", .value = (char *)"a"},
				      {.name = (char *)"date", .value = (char *)"b"}};
	r.headers = two;
	r.header_count = 2;
	assert_null(compose_message(&r, &base_opts, &len, NULL, err, sizeof(err)));
	/* a broken field that the parser should have refused */
	struct email_header bad = {.name = (char *)"X-Bad", .value = (char *)"a\r\nBcc: x@example.com"};
	r.headers = &bad;
	r.header_count = 1;
	assert_null(compose_message(&r, &base_opts, &len, NULL, err, sizeof(err)));
	r.header_count = 0;
	/* no Message-ID to make */
	struct compose_opts o = base_opts;
	o.hostname = NULL;
	char *id = (char *)"untouched";
	assert_null(compose_message(&r, &o, &len, &id, err, sizeof(err)));
	assert_null(id);
	/* an attachment whose URL was not fetched */
	struct email_attachment a = {.filename = (char *)"f", .path = (char *)"https://example.com/f"};
	r.attachments = &a;
	r.attachment_count = 1;
	assert_null(compose_message(&r, &base_opts, &len, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "path"));
}

/* ---- transfer encodings and line lengths -------------------------------------------------------- */

static void test_long_lines(void **state)
{
	(void)state;
	struct email_req r = base_req();
	size_t n = 5000;
	char *text = malloc(n + 32);
	assert_non_null(text);
	memset(text, 'x', n);
	for (size_t i = 7; i < n; i += 50)
		text[i] = ' ';
	strcpy(text + n, "\nsecond line\n");
	r.text = text;
	char *html = malloc(n + 32);
	assert_non_null(html);
	strcpy(html, "<p>");
	memset(html + 3, 'y', n);
	strcpy(html + 3 + n, "</p>");
	r.html = html;
	size_t len;
	char *m = compose_ok(&r, &base_opts, &len, NULL);
	GMimeMessage *msg = parse(m, len);
	/* RFC 2045 §6.7: the soft line breaks of quoted-printable carry the long lines */
	assert_string_equal(encoding_of(part_at(msg, "0")), "quoted-printable");
	assert_string_equal(encoding_of(part_at(msg, "1")), "quoted-printable");
	assert_part_text(part_at(msg, "0"), text);
	assert_part_text(part_at(msg, "1"), html);
	g_object_unref(msg);
	free(m);
	free(text);
	free(html);
}

static void test_text_encodings(void **state)
{
	(void)state;
	struct email_req r = base_req();
	size_t len;
	/* a little 8-bit text: quoted-printable */
	r.text = (char *)"Grüße aus Köln, bis bald und viele Grüße an alle anderen auch.\n";
	char *m = compose_ok(&r, &base_opts, &len, NULL);
	GMimeMessage *msg = parse(m, len);
	assert_string_equal(encoding_of(part_at(msg, "")), "quoted-printable");
	assert_part_text(part_at(msg, ""), r.text);
	g_object_unref(msg);
	free(m);

	/* mostly 8-bit text: base64 */
	r.text = (char *)"Привет! Это письмо написано по-русски, почти без ASCII.\n";
	m = compose_ok(&r, &base_opts, &len, NULL);
	msg = parse(m, len);
	assert_string_equal(encoding_of(part_at(msg, "")), "base64");
	assert_part_text(part_at(msg, ""), r.text);
	g_object_unref(msg);
	free(m);

	/* CRLF and a lone CR are line breaks like LF; none survives bare (RFC 5322 §2.3) */
	r.text = (char *)"one\r\ntwo\rthree\nfour";
	m = compose_ok(&r, &base_opts, &len, NULL);
	msg = parse(m, len);
	assert_string_equal(encoding_of(part_at(msg, "")), "7bit");
	assert_part_text(part_at(msg, ""), "one\ntwo\nthree\nfour\n");
	g_object_unref(msg);
	free(m);

	/* no body at all is an empty text/plain */
	r.text = NULL;
	m = compose_ok(&r, &base_opts, &len, NULL);
	msg = parse(m, len);
	assert_shape(msg, "text/plain");
	g_object_unref(msg);
	free(m);
}

/* compose may run on worker threads: GMime is initialised once, whoever comes first. */
static void *compose_thread(void *arg)
{
	(void)arg;
	/* its own request: base_req's arrays are shared */
	struct email_mailbox to = mb("Thread", "thread@example.net");
	struct email_req r = {.from = mb("T", "t@example.com"), .to = &to, .to_count = 1,
			      .subject = (char *)"Grüße", .html = (char *)"<p>thread</p>"};
	for (int i = 0; i < 20; i++) {
		char err[256];
		size_t len;
		char *m = compose_message(&r, &base_opts, &len, NULL, err, sizeof(err));
		if (m == NULL)
			return (void *)1;
		free(m);
	}
	return NULL;
}

static void test_threads(void **state)
{
	(void)state;
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, compose_thread, NULL), 0);
	for (int i = 0; i < 4; i++) {
		void *rv;
		assert_int_equal(pthread_join(t[i], &rv), 0);
		assert_null(rv);
	}
}

/* ---- compose_html_to_text ----------------------------------------------------------------------- */

struct h2t_case {
	const char *in, *want;
};

static const struct h2t_case h2t_cases[] = {
	{"", ""},
	{"plain", "plain"},
	{"  a \n\t b  ", "a b"},
	{"<p>one</p><p>two</p>", "one\n\ntwo"},
	{"a<br>b<br/>c<BR >d", "a\nb\nc\nd"},
	{"a<br><br><br><br>b", "a\n\nb"},
	{"<div>a</div><div>b</div>", "a\nb"},
	{"<h1>Title</h1>text", "Title\n\ntext"},
	{"<ul><li>one</li><li>two</li></ul>after", "- one\n- two\nafter"},
	{"<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc"},
	{"<a href=\"https://x.example/\">Site</a>", "Site (https://x.example/)"},
	{"<a href='https://x.example/'>https://x.example/</a>", "https://x.example/"},
	{"<a href=https://x.example/?a=1&amp;b=2>go</a>", "go (https://x.example/?a=1&b=2)"},
	{"<a href=\"mailto:a@example.com\">a@example.com</a>", "a@example.com"},
	{"<a href=\"https://x.example/\"></a>", "https://x.example/"},
	{"<a href=\"#top\">top</a> <a href=\"javascript:void(0)\">js</a>", "top js"},
	{"<a name=x>anchor</a>", "anchor"},
	{"<a href=\"/a\">one<a href=\"/b\">two</a>", "one (/a)two (/b)"},
	{"x<script>var a = '<p>';</script>y<style type=text/css>p {}</style>z", "xyz"},
	{"x<SCRIPT>a</ScRiPt >y", "xy"},
	{"<title>t</title>body", "body"},
	{"a<!-- hidden <p> -->b", "ab"},
	{"<!DOCTYPE html><html>ok</html>", "ok"},
	{"&amp; &lt; &gt; &quot; &#39; &apos; a&nbsp;b", "& < > \" ' ' a b"},
	{"&#65;&#x42;&#X43;&#100", "ABCd"},
	{"&#x20AC; &#8364; &euro;", "€ € €"},
	{"&#x1F600;", "\xf0\x9f\x98\x80"},
	{"&#0; &#xD800; &#1;", "\xef\xbf\xbd \xef\xbf\xbd \xef\xbf\xbd"},
	{"&unknown; & &; &#; &#x;", "&unknown; & &; &#; &#x;"},
	{"1 < 2 and 3 > 2", "1 < 2 and 3 > 2"},
	{"a <3 b", "a <3 b"},
	{"<pre>a  b\n  c</pre>d", "a  b\n  c\nd"},
	{"<img src=x alt=\"Logo\"><img src=y alt=\"\">", "Logo"},
	{"Müller &amp; Söhne", "Müller & Söhne"},
	{"&nbsp;<p>&nbsp;x&nbsp;</p>&nbsp;", "x"},
	{"<p>\n  para   one\n</p>\n\n<p>para two</p>\n", "para one\n\npara two"},
	/* hostile: cut off by the end of input */
	{"Hello <a href=", "Hello"},
	{"Hello <a href=\"https://x", "Hello"},
	{"x <!-- never closed <p>y</p>", "x"},
	{"a &#x110000; b", "a \xef\xbf\xbd b"},
	{"&#99999999999999999999;", "\xef\xbf\xbd"},
	{"<script>never closed", ""},
	{"a<", "a<"},
	{"a</", "a</"},
	{"a<!", "a"},
	{"<<<>>>", "<<<>>>"},
	{"&", "&"},
	{"&amp", "&amp"},
};

static void test_html_to_text_table(void **state)
{
	(void)state;
	char b1[512], b2[512], b3[512];
	for (size_t i = 0; i < sizeof(h2t_cases) / sizeof(h2t_cases[0]); i++) {
		const struct h2t_case *c = &h2t_cases[i];
		/* an exact-length heap copy, so that ASan sees any read past the end */
		char *in = test_dup(c->in, strlen(c->in) + 1);
		char *got = compose_html_to_text(in);
		assert_non_null(got);
		if (strcmp(got, c->want) != 0)
			fail_msg("case %zu: \"%s\" -> \"%s\", want \"%s\"", i,
				 test_escape(c->in, strlen(c->in), b1, sizeof(b1)),
				 test_escape(got, strlen(got), b2, sizeof(b2)),
				 test_escape(c->want, strlen(c->want), b3, sizeof(b3)));
		free(got);
		free(in);
	}
	char *got = compose_html_to_text(NULL);
	assert_non_null(got);
	assert_string_equal(got, "");
	free(got);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One MB of each pattern: linear time (well under a second even with sanitizers), no recursion. */
static void test_html_to_text_huge(void **state)
{
	(void)state;
	static const char *patterns[] = {"<", "<a", "<a href=\"x\">", "&", "&#", "<p>", "<!", "</x", "<li>",
					 "<a href=x>y</a>", "<br>", " \n"};
	size_t n = 1 << 20;
	for (size_t k = 0; k < sizeof(patterns) / sizeof(patterns[0]); k++) {
		size_t pl = strlen(patterns[k]);
		char *in = malloc(n + 1);
		assert_non_null(in);
		for (size_t i = 0; i < n; i++)
			in[i] = patterns[k][i % pl];
		in[n] = '\0';
		double t0 = now_s();
		char *got = compose_html_to_text(in);
		double dt = now_s() - t0;
		assert_non_null(got);
		if (dt > 2.0)
			fail_msg("pattern \"%s\": %.2f s", patterns[k], dt);
		if (k == 0)
			assert_int_equal(strlen(got), n); /* every '<' is text */
		free(got);
		free(in);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_only),
		cmocka_unit_test(test_html_only),
		cmocka_unit_test(test_text_and_html),
		cmocka_unit_test(test_inline_image),
		cmocka_unit_test(test_attachment),
		cmocka_unit_test(test_all_together),
		cmocka_unit_test(test_inline_without_html),
		cmocka_unit_test(test_header_encoding),
		cmocka_unit_test(test_long_subject_word),
		cmocka_unit_test(test_utf8_address),
		cmocka_unit_test(test_message_id_from_headers),
		cmocka_unit_test(test_threading_fields),
		cmocka_unit_test(test_list_unsubscribe),
		cmocka_unit_test(test_custom_header_order),
		cmocka_unit_test(test_hostile_header_value),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_text_encodings),
		cmocka_unit_test(test_attachment_type_parameters),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_html_to_text_table),
		cmocka_unit_test(test_html_to_text_huge),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	/* compose initialised GMime once; its tables stay reachable (LSan is quiet either way), but a
	 * clean shutdown keeps it so should GLib ever drop the last pointer to them */
	g_mime_shutdown();
	return rc;
}
