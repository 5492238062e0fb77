/* test_dmarc_report_mail.c — the report message of RFC 9990 §3.5.2: header fields (the Subject's
 * fixed words, folding), the MIME structure, base64 line lengths, and the attachment, decoded and
 * gunzip'd here with zlib, giving back the XML; plus the arguments refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <zlib.h>

#include "report/dmarc_report.h"
#include "test_util.h"

static const char *const rua[] = { "dmarc@example.com", "agg@reports.example.net" };

static struct dmarc_report_mail mail_make(void)
{
	return (struct dmarc_report_mail){
		.from = "dmarc-reports@mx.example.org",
		.to = rua,
		.to_count = 2,
		.receiver = "mx.example.org",
		.policy_domain = "example.com",
		.report_id = "1767225600x1",
		.begin = 1767225600,
		.end = 1767311999,
		.date = 1767225600 + 13 * 3600 + 61,
	};
}

static const char xml_doc[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback xmlns=\"urn:ietf:params:xml:ns:dmarc-2.0\">\n"
	"  <version>1.0</version>\n</feedback>\n";

static char *build(const struct dmarc_report_mail *m, const char *xml, size_t len, size_t *msg_len)
{
	char *msg = NULL;
	const char *err = NULL;
	enum dmarc_report_error e = dmarc_report_message(m, xml, len, &msg, msg_len, &err);
	if (e != DMARC_REPORT_OK)
		fail_msg("dmarc_report_message: %s (%s)", dmarc_report_error_str(e), err != NULL ? err : "");
	assert_int_equal(strlen(msg), *msg_len);
	return msg;
}

/* With MAILWERK_REPORT_XML_DIR set, keeps the message as <dir>/<name>.eml for a MIME parser. */
static void keep_message(const char *name, const char *msg, size_t len)
{
	const char *dir = getenv("MAILWERK_REPORT_XML_DIR");
	if (dir == NULL || dir[0] == '\0')
		return;
	char path[512];
	snprintf(path, sizeof(path), "%s/%s.eml", dir, name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(msg, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Every line ends in CRLF (no bare CR or LF) and is at most max octets; header lines at most
 * header_max. */
static void expect_lines(const char *msg, size_t max, size_t header_max)
{
	bool header = true;
	const char *line = msg;
	while (*line != '\0') {
		const char *lf = strchr(line, '\n');
		assert_non_null(lf);
		if (lf == line || lf[-1] != '\r')
			fail_msg("bare LF after \"%.40s\"", line);
		size_t len = (size_t)(lf - 1 - line);
		assert_null(memchr(line, '\r', len));
		if (len == 0)
			header = false;
		if (len > max || (header && len > header_max))
			fail_msg("line of %zu octets: \"%.60s...\"", len, line);
		line = lf + 1;
	}
}

/* The unfolded value of the first header field called name (RFC 5322 §2.2.3), in a static buffer;
 * NULL when there is none. */
static const char *header(const char *msg, const char *name)
{
	static char value[2048];
	size_t nl = strlen(name);
	const char *end = strstr(msg, "\r\n\r\n");
	assert_non_null(end);
	for (const char *p = msg; p < end; p = strstr(p, "\r\n") + 2) {
		if (strncmp(p, name, nl) != 0 || p[nl] != ':')
			continue;
		size_t o = 0;
		const char *v = p + nl + 1;
		while (*v == ' ')
			v++;
		for (;;) {
			const char *crlf = strstr(v, "\r\n");
			size_t n = (size_t)(crlf - v);
			assert_true(o + n < sizeof(value));
			memcpy(value + o, v, n);
			o += n;
			if (crlf[2] != ' ' && crlf[2] != '\t')
				break;
			v = crlf + 2; /* unfolding removes the CRLF, keeps the white space */
		}
		value[o] = '\0';
		return value;
	}
	return NULL;
}

static int b64_value(char c)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = c != '\0' ? strchr(alphabet, c) : NULL;
	return p != NULL ? (int)(p - alphabet) : -1;
}

/* Decodes the base64 lines from p up to the blank line before the boundary, checking the line
 * lengths of RFC 2045 §6.8; returns the octets (malloc'd). */
static unsigned char *b64_decode_lines(const char *p, size_t *len_r)
{
	const char *end = strstr(p, "\r\n\r\n");
	assert_non_null(end);
	unsigned char *out = malloc((size_t)(end - p));
	assert_non_null(out);
	size_t o = 0, lines = 0;
	bool short_seen = false;
	while (p < end + 2) {
		const char *crlf = strstr(p, "\r\n");
		size_t n = (size_t)(crlf - p);
		assert_true(n > 0 && n <= 76 && n % 4 == 0);
		assert_false(short_seen); /* only the last line may be shorter */
		short_seen = n < 76;
		for (size_t i = 0; i < n; i += 4) {
			int v[4];
			for (size_t j = 0; j < 4; j++)
				v[j] = p[i + j] == '=' ? 0 : b64_value(p[i + j]);
			for (size_t j = 0; j < 4; j++)
				assert_true(v[j] >= 0);
			uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
			out[o++] = (unsigned char)(w >> 16);
			if (p[i + 2] != '=')
				out[o++] = (unsigned char)(w >> 8);
			if (p[i + 3] != '=')
				out[o++] = (unsigned char)w;
		}
		lines++;
		p = crlf + 2;
	}
	assert_true(lines > 0);
	*len_r = o;
	return out;
}

static char *gunzip(const unsigned char *in, size_t len, size_t *out_len)
{
	/* RFC 1952 §2.3.1: ID1 ID2 CM (deflate) */
	assert_true(len > 18 && in[0] == 0x1f && in[1] == 0x8b && in[2] == 8);
	z_stream z;
	memset(&z, 0, sizeof(z));
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
	size_t cap = 1 << 20;
	char *out = malloc(cap);
	assert_non_null(out);
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)len;
	z.next_out = (Bytef *)out;
	z.avail_out = (uInt)cap;
	assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
	assert_int_equal(z.avail_in, 0);
	*out_len = z.total_out;
	inflateEnd(&z);
	return out;
}

/* The attachment of msg, decoded and gunzip'd. */
static char *attachment(const char *msg, const char *filename, size_t *len_r)
{
	char marker[1024];
	snprintf(marker, sizeof(marker), "Content-Disposition: attachment;\r\n filename=\"%s\"\r\n\r\n", filename);
	const char *p = strstr(msg, marker);
	if (p == NULL)
		fail_msg("no attachment named %s", filename);
	size_t gz_len;
	unsigned char *gz = b64_decode_lines(p + strlen(marker), &gz_len);
	char *xml = gunzip(gz, gz_len, len_r);
	free(gz);
	return xml;
}

static void test_message(void **state)
{
	struct dmarc_report_mail m = mail_make();
	size_t len;
	char *msg = build(&m, xml_doc, strlen(xml_doc), &len);
	expect_lines(msg, 998, 78);
	keep_message("message", msg, len);

	assert_string_equal(header(msg, "From"), "dmarc-reports@mx.example.org");
	assert_string_equal(header(msg, "To"), "dmarc@example.com, agg@reports.example.net");
	assert_string_equal(header(msg, "Date"), "Thu, 01 Jan 2026 13:01:01 +0000");
	/* §3.5.2 dmarc-subject, with the Report-ID that the XML and the file name carry (§3.1.4) */
	assert_string_equal(header(msg, "Subject"),
			    "Report Domain: example.com Submitter: mx.example.org Report-ID: 1767225600x1");
	assert_string_equal(header(msg, "Message-ID"), "<1767225600x1.example.com@mx.example.org>");
	assert_string_equal(header(msg, "MIME-Version"), "1.0");
	assert_string_equal(header(msg, "Auto-Submitted"), "auto-generated");
	assert_string_equal(header(msg, "Content-Type"), "multipart/mixed; boundary=\"=_dmarc_report_1767225600x1\"");
	assert_true(strncmp(msg, "From: ", 6) == 0);

	/* two parts and the close delimiter at the very end (RFC 2046 §5.1.1) */
	const char *body = strstr(msg, "\r\n\r\n") + 4;
	size_t parts = 0;
	for (const char *p = strstr(body, "\r\n--=_dmarc_report_1767225600x1\r\n"); p != NULL;
	     p = strstr(p + 1, "\r\n--=_dmarc_report_1767225600x1\r\n"))
		parts++;
	assert_int_equal(parts, 2);
	const char *close = "\r\n--=_dmarc_report_1767225600x1--\r\n";
	assert_string_equal(msg + len - strlen(close), close);
	const char *text = strstr(body, "Content-Type: text/plain; charset=us-ascii\r\n");
	const char *gz = strstr(body, "Content-Type: application/gzip;\r\n name=\"");
	assert_non_null(text);
	assert_non_null(gz);
	assert_true(text < gz);
	assert_non_null(strstr(text, "Policy domain: example.com\r\n"));
	assert_non_null(strstr(text, "Period: 2026-01-01 00:00:00 to 2026-01-01 23:59:59 UTC\r\n"));
	assert_non_null(strstr(gz, "Content-Transfer-Encoding: base64\r\n"));

	/* §3.5.2 file name, and the attachment gives back the document */
	char name[600];
	assert_true(dmarc_report_filename(&m, name, sizeof(name)));
	assert_string_equal(name, "mx.example.org!example.com!1767225600!1767311999!1767225600x1.xml.gz");
	char small[20];
	assert_false(dmarc_report_filename(&m, small, sizeof(small)));
	assert_non_null(strstr(gz, "name=\"mx.example.org!example.com!1767225600!1767311999!1767225600x1.xml.gz\""));
	size_t xml_len;
	char *xml = attachment(msg, name, &xml_len);
	assert_int_equal(xml_len, strlen(xml_doc));
	assert_memory_equal(xml, xml_doc, xml_len);
	free(xml);

	/* a report built again is the same octets: same Message-ID, same gzip (no time stamp) */
	size_t len2;
	char *again = build(&m, xml_doc, strlen(xml_doc), &len2);
	assert_int_equal(len, len2);
	assert_memory_equal(msg, again, len);
	free(again);
	free(msg);
}

/* A report large enough for many base64 lines, with octets of every value. */
static void test_large_attachment(void **state)
{
	size_t n = 300000;
	char *doc = malloc(n + 1);
	assert_non_null(doc);
	uint32_t x = 12345;
	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245 + 12345;
		doc[i] = (char)(x >> 16);
	}
	doc[n] = '\0';
	struct dmarc_report_mail m = mail_make();
	size_t len;
	char *msg = build(&m, doc, n, &len);
	expect_lines(msg, 998, 78);
	char name[600];
	assert_true(dmarc_report_filename(&m, name, sizeof(name)));
	size_t out_len;
	char *out = attachment(msg, name, &out_len);
	assert_int_equal(out_len, n);
	assert_memory_equal(out, doc, n);
	free(out);
	free(msg);
	free(doc);
}

/* Long names: the Subject and To fold at white space, nothing passes 998 octets. */
static void test_folding(void **state)
{
	char pd[DNS_HOST_SIZE], rcv[DNS_HOST_SIZE];
	snprintf(pd, sizeof(pd), "%.60s.%.60s.%.60s.%.60s", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
		 "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc", "example");
	snprintf(rcv, sizeof(rcv), "mx.%.60s.example.org", "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd");
	const char *to[DMARC_REPORT_RUA_MAX];
	char addrs[DMARC_REPORT_RUA_MAX][64];
	for (size_t i = 0; i < DMARC_REPORT_RUA_MAX; i++) {
		snprintf(addrs[i], sizeof(addrs[i]), "reports-%zu@aggregate-reports-%zu.example.net", i, i);
		to[i] = addrs[i];
	}
	struct dmarc_report_mail m = mail_make();
	m.policy_domain = pd;
	m.receiver = rcv;
	m.to = to;
	m.to_count = DMARC_REPORT_RUA_MAX;
	size_t len;
	char *msg = build(&m, xml_doc, strlen(xml_doc), &len);
	expect_lines(msg, 998, 998);
	keep_message("folded", msg, len);
	char want[1024];
	snprintf(want, sizeof(want), "Report Domain: %s Submitter: %s Report-ID: 1767225600x1", pd, rcv);
	assert_string_equal(header(msg, "Subject"), want);
	assert_non_null(strstr(msg, "\r\n Submitter:"));
	/* To folds between addresses, every line within 78 */
	const char *to_field = strstr(msg, "\r\nTo: ") + 2;
	const char *date = strstr(to_field, "\r\nDate: ");
	for (const char *l = to_field; l < date; l = strstr(l, "\r\n") + 2)
		assert_true(strstr(l, "\r\n") - l <= 78);
	const char *tv = header(msg, "To");
	for (size_t i = 0; i < DMARC_REPORT_RUA_MAX; i++)
		assert_non_null(strstr(tv, addrs[i]));
	assert_int_equal(strlen(tv), DMARC_REPORT_RUA_MAX * strlen(addrs[0]) + (DMARC_REPORT_RUA_MAX - 1) * 2);
	char name[600];
	assert_true(dmarc_report_filename(&m, name, sizeof(name)));
	size_t xml_len;
	free(attachment(msg, name, &xml_len));
	assert_int_equal(xml_len, strlen(xml_doc));
	free(msg);
}

static void expect_refused(const struct dmarc_report_mail *m, size_t xml_len, enum dmarc_report_error want)
{
	char *msg = (char *)"untouched";
	size_t len = 1;
	const char *err = NULL;
	assert_int_equal(dmarc_report_message(m, xml_doc, xml_len, &msg, &len, &err), want);
	assert_null(msg);
	assert_int_equal(len, 0);
	assert_non_null(err);
}

static void test_refused(void **state)
{
	struct dmarc_report_mail m = mail_make();
	m.to_count = 0;
	expect_refused(&m, strlen(xml_doc), DMARC_REPORT_INVALID);
	m.to_count = DMARC_REPORT_RUA_MAX + 1;
	expect_refused(&m, strlen(xml_doc), DMARC_REPORT_INVALID);
	const char *bad_to[][1] = {
		{ "r\xc3\xa9ports@example.com" }, /* would need SMTPUTF8 */
		{ "a@b.example\r\nBcc: victim@example.org" },
		{ "no-at-sign" },
		{ "x@[192.0.2.1]" },
		{ "" },
	};
	for (size_t i = 0; i < sizeof(bad_to) / sizeof(bad_to[0]); i++) {
		m = mail_make();
		m.to = bad_to[i];
		m.to_count = 1;
		expect_refused(&m, strlen(xml_doc), DMARC_REPORT_INVALID);
	}
	m = mail_make();
	m.from = "reports@mx.example.org\r\nX-Evil: 1";
	expect_refused(&m, strlen(xml_doc), DMARC_REPORT_INVALID);
	m = mail_make();
	m.receiver = "mx example org";
	expect_refused(&m, strlen(xml_doc), DMARC_REPORT_INVALID);
	m = mail_make();
	m.policy_domain = "example.com\r\nBcc: x@y";
	expect_refused(&m, strlen(xml_doc), DMARC_REPORT_INVALID);
	m = mail_make();
	m.report_id = "a!b";
	expect_refused(&m, strlen(xml_doc), DMARC_REPORT_INVALID);
	m = mail_make();
	m.begin = m.end + 1;
	expect_refused(&m, strlen(xml_doc), DMARC_REPORT_INVALID);
	m = mail_make();
	m.begin = -1;
	expect_refused(&m, strlen(xml_doc), DMARC_REPORT_INVALID);
	/* the size is checked before a byte is read */
	m = mail_make();
	expect_refused(&m, DMARC_REPORT_XML_MAX + 1, DMARC_REPORT_TOO_BIG);
	char name[600];
	m.receiver = NULL;
	assert_false(dmarc_report_filename(&m, name, sizeof(name)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_message),
		cmocka_unit_test(test_large_attachment),
		cmocka_unit_test(test_folding),
		cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
