/* test_dmarc_report.c — DMARC aggregate report rows and the RFC 9990 XML document: grouping into
 * records, the words of policy_evaluated, the published policy of the latest row, escaping of
 * hostile values, the size limit, and the arguments refused.
 *
 * The documents are checked here by string search and by a small well-formedness check (tags
 * balance, no raw markup characters or control octets in text, valid UTF-8). With
 * MAILWERK_REPORT_XML_DIR set, each document is also written there, for xmllint --noout (and
 * --schema with the XSD of RFC 9990 Appendix A). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "report/dmarc_report.h"
#include "report/report_xml.h"
#include "test_util.h"

/* ---- rows and document checks ---- */

static struct dmarc_report_row row_make(const char *ip, bool dkim_pass, bool spf_pass)
{
	struct dmarc_report_row r;
	memset(&r, 0, sizeof(r));
	r.time = 1767225600 + 3600;
	r.count = 1;
	snprintf(r.source_ip, sizeof(r.source_ip), "%s", ip);
	snprintf(r.header_from, sizeof(r.header_from), "example.com");
	snprintf(r.envelope_from, sizeof(r.envelope_from), "bounce.example.com");
	snprintf(r.envelope_to, sizeof(r.envelope_to), "example.org");
	snprintf(r.policy_domain, sizeof(r.policy_domain), "example.com");
	snprintf(r.org_domain, sizeof(r.org_domain), "example.com");
	r.published = (struct dmarc_report_policy){ .p = DMARC_POLICY_REJECT, .sp = DMARC_POLICY_QUARANTINE,
						    .np = DMARC_POLICY_REJECT, .fo = DMARC_FO_0 };
	r.policy = DMARC_POLICY_REJECT;
	r.dkim_aligned = dkim_pass;
	r.spf_aligned = spf_pass;
	r.disposition = dkim_pass || spf_pass ? DMARC_POLICY_NONE : DMARC_POLICY_REJECT;
	snprintf(r.spf_domain, sizeof(r.spf_domain), "bounce.example.com");
	r.spf_scope = DMARC_REPORT_SCOPE_MFROM;
	r.spf_result = spf_pass ? SPF_RESULT_PASS : SPF_RESULT_FAIL;
	dmarc_report_row_add_dkim(&r, "example.com", "sel2026", dkim_pass ? DKIM_RESULT_PASS : DKIM_RESULT_FAIL);
	r.rua_count = 1;
	snprintf(r.rua[0], sizeof(r.rua[0]), "dmarc@example.com");
	return r;
}

static const struct dmarc_report_meta meta = {
	.org_name = "Example Receiver",
	.email = "postmaster@mx.example.org",
	.report_id = "1767225600x1",
	.begin = 1767225600,
	.end = 1767311999,
};

static size_t occurrences(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
		n++;
	return n;
}

/* The offset of needle in hay, failing when it is not there. */
static size_t at(const char *hay, const char *needle)
{
	const char *p = strstr(hay, needle);
	if (p == NULL)
		fail_msg("\"%s\" not found", needle);
	return (size_t)(p - hay);
}

/* Well-formedness as far as these documents go: one declaration, then elements without attributes
 * (the root's xmlns aside) that nest properly; text without '<' or '>' or a bare '&', without
 * control octets, in valid UTF-8. */
static void expect_well_formed(const char *xml, size_t len)
{
	assert_int_equal(strlen(xml), len);
	assert_true(strncmp(xml, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", 39) == 0);
	char stack[16][32];
	size_t depth = 0, elements = 0;
	const char *p = xml + 39;
	while (*p != '\0') {
		if (*p == '<') {
			const char *end = strchr(p, '>');
			assert_non_null(end);
			char tag[128];
			size_t n = (size_t)(end - p - 1);
			assert_true(n > 0 && n < sizeof(tag));
			memcpy(tag, p + 1, n);
			tag[n] = '\0';
			if (tag[0] == '/') {
				assert_true(depth > 0);
				if (strcmp(stack[depth - 1], tag + 1) != 0)
					fail_msg("</%s> closes <%s>", tag + 1, stack[depth - 1]);
				depth--;
			} else {
				char *sp = strchr(tag, ' ');
				if (sp != NULL) {
					assert_int_equal(elements, 0); /* only the root has an attribute */
					*sp = '\0';
				}
				assert_true(depth < 16 && strlen(tag) < 32);
				strcpy(stack[depth++], tag);
				elements++;
			}
			p = end + 1;
			continue;
		}
		unsigned char c = (unsigned char)*p;
		if (c == '>')
			fail_msg("raw '>' in text");
		if (c < 0x20 && c != '\n')
			fail_msg("control octet 0x%02x in text", c);
		if (c == '&') {
			assert_true(strncmp(p, "&lt;", 4) == 0 || strncmp(p, "&gt;", 4) == 0 || strncmp(p, "&amp;", 5) == 0);
		}
		if (c >= 0x80) {
			/* a lead octet and its continuations; the escaper decided validity, here only shape */
			size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
			assert_true(c >= 0xc2 && c <= 0xf4);
			for (size_t i = 1; i < n; i++)
				assert_int_equal((unsigned char)p[i] & 0xc0, 0x80);
			p += n;
			continue;
		}
		p++;
	}
	assert_int_equal(depth, 0);
	assert_true(elements > 0);
}

/* With MAILWERK_REPORT_XML_DIR set, keeps the document as <dir>/<name>.xml for xmllint. */
static void keep_document(const char *name, const char *xml, size_t len)
{
	const char *dir = getenv("MAILWERK_REPORT_XML_DIR");
	if (dir == NULL || dir[0] == '\0')
		return;
	char path[512];
	snprintf(path, sizeof(path), "%s/%s.xml", dir, name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(xml, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static char *build(const struct dmarc_report_row *rows, size_t n, struct dmarc_report_xml_info *info)
{
	char *xml = NULL;
	size_t len = 0;
	const char *err = NULL;
	enum dmarc_report_error e = dmarc_report_xml(&meta, rows, n, &xml, &len, info, &err);
	if (e != DMARC_REPORT_OK)
		fail_msg("dmarc_report_xml: %s (%s)", dmarc_report_error_str(e), err != NULL ? err : "");
	expect_well_formed(xml, len);
	return xml;
}

/* ---- the document ---- */

static void test_document(void **state)
{
	struct dmarc_report_row rows[4];
	rows[0] = row_make("192.0.2.1", true, true);
	rows[1] = row_make("2001:db8::25", false, false);
	rows[2] = row_make("192.0.2.1", true, true); /* the same record as rows[0] */
	rows[2].time += 60;
	rows[2].count = 3;
	rows[3] = row_make("192.0.2.1", true, true);
	rows[3].envelope_from[0] = '\0'; /* the null reverse-path: another record */
	rows[3].spf_scope = DMARC_REPORT_SCOPE_HELO;
	snprintf(rows[3].spf_domain, sizeof(rows[3].spf_domain), "mx.example.com");
	rows[3].envelope_to[0] = '\0';
	struct dmarc_report_xml_info info;
	char *xml = build(rows, 4, &info);
	keep_document("document", xml, strlen(xml));

	assert_int_equal(info.records, 3);
	assert_int_equal(info.messages, 6);
	assert_int_equal(info.records_dropped, 0);
	assert_non_null(strstr(xml, "<feedback xmlns=\"urn:ietf:params:xml:ns:dmarc-2.0\">\n  <version>1.0</version>\n"));
	/* RFC 9990 §3.1.1.2: version, report_metadata, policy_published, record+ in this order */
	assert_true(at(xml, "<version>") < at(xml, "<report_metadata>"));
	assert_true(at(xml, "</report_metadata>") < at(xml, "<policy_published>"));
	assert_true(at(xml, "</policy_published>") < at(xml, "<record>"));
	assert_non_null(strstr(xml, "<org_name>Example Receiver</org_name>"));
	assert_non_null(strstr(xml, "<email>postmaster@mx.example.org</email>"));
	assert_non_null(strstr(xml, "<report_id>1767225600x1</report_id>"));
	assert_non_null(strstr(xml, "<date_range>\n      <begin>1767225600</begin>\n      <end>1767311999</end>\n"));
	assert_non_null(strstr(xml, "<generator>mailwerk "));
	assert_null(strstr(xml, "<extra_contact_info>"));
	/* §3.1.1.5 */
	assert_non_null(strstr(xml, "<policy_published>\n    <domain>example.com</domain>\n"
				    "    <discovery_method>treewalk</discovery_method>\n    <p>reject</p>\n"
				    "    <sp>quarantine</sp>\n    <np>reject</np>\n    <fo>0</fo>\n    <adkim>r</adkim>\n"
				    "    <aspf>r</aspf>\n    <testing>n</testing>\n  </policy_published>"));
	assert_int_equal(occurrences(xml, "<record>"), 3);
	/* records in the order of their first row, the first with 1 + 3 messages */
	assert_true(at(xml, "<source_ip>192.0.2.1</source_ip>\n      <count>4</count>") <
		    at(xml, "<source_ip>2001:db8::25</source_ip>\n      <count>1</count>"));
	assert_non_null(strstr(xml, "<source_ip>192.0.2.1</source_ip>\n      <count>1</count>"));
	/* §3.1.1.9: pass under p=reject is "pass"; a failure under it is "reject"; order kept */
	assert_non_null(strstr(xml, "<policy_evaluated>\n        <disposition>pass</disposition>\n"
				    "        <dkim>pass</dkim>\n        <spf>pass</spf>\n      </policy_evaluated>"));
	assert_non_null(strstr(xml, "<policy_evaluated>\n        <disposition>reject</disposition>\n"
				    "        <dkim>fail</dkim>\n        <spf>fail</spf>\n      </policy_evaluated>"));
	assert_null(strstr(xml, "<reason>"));
	/* §3.1.1.10 */
	assert_non_null(strstr(xml, "<identifiers>\n      <header_from>example.com</header_from>\n"
				    "      <envelope_from>bounce.example.com</envelope_from>\n"
				    "      <envelope_to>example.org</envelope_to>\n    </identifiers>"));
	assert_non_null(strstr(xml, "<identifiers>\n      <header_from>example.com</header_from>\n"
				    "      <envelope_from></envelope_from>\n    </identifiers>"));
	/* §3.1.1.11-13: dkim before spf; a HELO result has no scope */
	assert_non_null(strstr(xml, "<auth_results>\n      <dkim>\n        <domain>example.com</domain>\n"
				    "        <selector>sel2026</selector>\n        <result>pass</result>\n      </dkim>\n"
				    "      <spf>\n        <domain>bounce.example.com</domain>\n        <scope>mfrom</scope>\n"
				    "        <result>pass</result>\n      </spf>\n    </auth_results>"));
	assert_non_null(strstr(xml, "<spf>\n        <domain>mx.example.com</domain>\n        <result>pass</result>\n"));
	assert_true(strlen(xml) > 13 && strcmp(xml + strlen(xml) - 12, "</feedback>\n") == 0);
	free(xml);
}

static void test_latest_policy_and_metadata(void **state)
{
	struct dmarc_report_row rows[2];
	rows[0] = row_make("192.0.2.1", true, false);
	rows[1] = row_make("192.0.2.1", true, false);
	/* the record changed during the period: the later row's policy is the report's (§3.1) */
	rows[0].time += 100;
	rows[1].published.p = DMARC_POLICY_NONE;
	rows[1].published.testing = true;
	rows[1].published.adkim = DMARC_ALIGN_STRICT;
	rows[1].published.fo = DMARC_FO_1 | DMARC_FO_D | DMARC_FO_S;
	struct dmarc_report_meta m = meta;
	m.extra_contact_info = "call +1 555 0100 & ask";
	m.generator = "test generator";
	char *xml = NULL;
	size_t len;
	const char *err;
	assert_int_equal(dmarc_report_xml(&m, rows, 2, &xml, &len, NULL, &err), DMARC_REPORT_OK);
	expect_well_formed(xml, len);
	assert_non_null(strstr(xml, "<p>reject</p>"));
	assert_non_null(strstr(xml, "<testing>n</testing>"));
	assert_non_null(strstr(xml, "<extra_contact_info>call +1 555 0100 &amp; ask</extra_contact_info>"));
	assert_non_null(strstr(xml, "<generator>test generator</generator>"));
	/* the published policy is no part of a record: one record of 2 */
	assert_int_equal(occurrences(xml, "<record>"), 1);
	assert_non_null(strstr(xml, "<count>2</count>"));
	free(xml);

	rows[1].time = rows[0].time + 1;
	assert_int_equal(dmarc_report_xml(&m, rows, 2, &xml, &len, NULL, &err), DMARC_REPORT_OK);
	assert_non_null(strstr(xml, "<p>none</p>"));
	assert_non_null(strstr(xml, "<fo>1:d:s</fo>"));
	assert_non_null(strstr(xml, "<adkim>s</adkim>"));
	assert_non_null(strstr(xml, "<testing>y</testing>"));
	keep_document("latest_policy", xml, len);
	free(xml);
}

/* §3.1.1.9 and §3.1.6: the disposition words and the reasons */
static void test_dispositions_and_reasons(void **state)
{
	struct dmarc_report_row r = row_make("192.0.2.1", false, false);
	assert_string_equal(dmarc_report_row_disposition(&r), "reject");
	assert_int_equal(dmarc_report_row_reason(&r), DMARC_REPORT_OVERRIDE_NONE);
	/* t=y: reject became quarantine */
	r.published.testing = true;
	r.disposition = DMARC_POLICY_QUARANTINE;
	assert_string_equal(dmarc_report_row_disposition(&r), "quarantine");
	assert_int_equal(dmarc_report_row_reason(&r), DMARC_REPORT_OVERRIDE_POLICY_TEST_MODE);
	/* the receiver did not apply the policy (dmarc_action = report) */
	r.published.testing = false;
	r.disposition = DMARC_POLICY_NONE;
	assert_string_equal(dmarc_report_row_disposition(&r), "none");
	assert_int_equal(dmarc_report_row_reason(&r), DMARC_REPORT_OVERRIDE_LOCAL_POLICY);
	r.override = DMARC_REPORT_OVERRIDE_MAILING_LIST;
	assert_int_equal(dmarc_report_row_reason(&r), DMARC_REPORT_OVERRIDE_MAILING_LIST);
	/* p=none: a pass is "none" (no enforcing policy), a failure too, without a reason */
	struct dmarc_report_row n = row_make("192.0.2.2", true, false);
	n.policy = DMARC_POLICY_NONE;
	assert_string_equal(dmarc_report_row_disposition(&n), "none");
	n.dkim_aligned = false;
	assert_string_equal(dmarc_report_row_disposition(&n), "none");
	assert_int_equal(dmarc_report_row_reason(&n), DMARC_REPORT_OVERRIDE_NONE);

	r.override = DMARC_REPORT_OVERRIDE_NONE;
	r.published.testing = true;
	r.disposition = DMARC_POLICY_QUARANTINE;
	char *xml = build(&r, 1, NULL);
	assert_non_null(strstr(xml, "<disposition>quarantine</disposition>\n        <dkim>fail</dkim>\n"
				    "        <spf>fail</spf>\n        <reason>\n          <type>policy_test_mode</type>\n"
				    "        </reason>\n      </policy_evaluated>"));
	keep_document("reason", xml, strlen(xml));
	free(xml);
	for (int o = DMARC_REPORT_OVERRIDE_NONE; o <= DMARC_REPORT_OVERRIDE_TRUSTED_FORWARDER; o++)
		assert_string_not_equal(dmarc_report_override_str((enum dmarc_report_override)o), "?");
}

/* ---- escaping ---- */

static void expect_text(const char *in, size_t len, const char *want)
{
	struct report_xml x;
	report_xml_init(&x);
	report_xml_text(&x, in, len);
	char esc[256];
	const char *got = x.buf != NULL ? x.buf : "";
	if (strcmp(got, want) != 0)
		fail_msg("\"%s\": got \"%s\", want \"%s\"", test_escape(in, len, esc, sizeof(esc)), got, want);
	report_xml_free(&x);
}

#define FFFD "\xef\xbf\xbd"

static void test_escaping(void **state)
{
	expect_text("plain.example", 13, "plain.example");
	expect_text("<a&b>\"'", 7, "&lt;a&amp;b&gt;\"'");
	expect_text("]]>", 3, "]]&gt;");
	expect_text("&amp;", 5, "&amp;amp;");
	/* control characters, tab and line ends included, and DEL */
	expect_text("a\x01" "b\tc\r\nd\x7f", 9, "a" FFFD "b" FFFD "c" FFFD FFFD "d" FFFD);
	/* valid UTF-8 stays: é, 中, U+1F600 */
	expect_text("\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80", 9, "\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80");
	/* invalid: lone continuation, overlong '/', surrogate, beyond U+10FFFF, truncated, 0xff */
	expect_text("\x80", 1, FFFD);
	expect_text("\xc0\xaf", 2, FFFD FFFD);
	expect_text("\xe0\x80\xaf", 3, FFFD FFFD FFFD);
	expect_text("\xed\xa0\x80", 3, FFFD FFFD FFFD);
	expect_text("\xf4\x90\x80\x80", 4, FFFD FFFD FFFD FFFD);
	expect_text("x\xe4\xb8", 3, "x" FFFD FFFD);
	expect_text("\xff<", 2, FFFD "&lt;");
	/* C1 controls and the non-characters U+FFFE, U+FFFF; U+FFFD itself stays */
	expect_text("\xc2\x85", 2, FFFD);
	expect_text("\xef\xbf\xbe\xef\xbf\xbf", 6, FFFD FFFD);
	expect_text(FFFD, 3, FFFD);
	/* NUL inside a counted text */
	expect_text("a\0b", 3, "a" FFFD "b");
}

static void test_hostile_row(void **state)
{
	struct dmarc_report_row r = row_make("192.0.2.1<x>", false, false);
	snprintf(r.header_from, sizeof(r.header_from), "</header_from><evil>&\"'");
	snprintf(r.envelope_from, sizeof(r.envelope_from), "a\r\nb\x1b[31m");
	snprintf(r.envelope_to, sizeof(r.envelope_to), "\xff\xfe\xc3(");
	snprintf(r.spf_domain, sizeof(r.spf_domain), "]]>");
	r.dkim_count = 0;
	dmarc_report_row_add_dkim(&r, "<d>", "s\x01<!--", DKIM_RESULT_PERMERROR);
	struct dmarc_report_meta m = meta;
	m.org_name = "Org <&> \xe2\x82";
	m.email = "a\"b@example.org";
	char *xml = NULL;
	size_t len;
	const char *err;
	assert_int_equal(dmarc_report_xml(&m, &r, 1, &xml, &len, NULL, &err), DMARC_REPORT_OK);
	expect_well_formed(xml, len);
	keep_document("hostile", xml, len);
	assert_non_null(strstr(xml, "<source_ip>192.0.2.1&lt;x&gt;</source_ip>"));
	assert_non_null(strstr(xml, "<header_from>&lt;/header_from&gt;&lt;evil&gt;&amp;\"'</header_from>"));
	assert_non_null(strstr(xml, "<envelope_from>a" FFFD FFFD "b" FFFD "[31m</envelope_from>"));
	assert_non_null(strstr(xml, "<envelope_to>" FFFD FFFD FFFD "(</envelope_to>"));
	assert_non_null(strstr(xml, "<domain>]]&gt;</domain>"));
	assert_non_null(strstr(xml, "<selector>s" FFFD "&lt;!--</selector>"));
	assert_non_null(strstr(xml, "<org_name>Org &lt;&amp;&gt; " FFFD FFFD "</org_name>"));
	assert_int_equal(occurrences(xml, "<header_from>"), 1);
	free(xml);
}

/* Records past DMARC_REPORT_XML_MAX are left out, counted, and the document stays whole. */
static void test_size_limit(void **state)
{
	size_t n = 1000;
	struct dmarc_report_row *rows = calloc(n, sizeof(*rows));
	assert_non_null(rows);
	char amp[DNS_HOST_SIZE];
	memset(amp, '&', sizeof(amp) - 1);
	amp[sizeof(amp) - 1] = '\0';
	for (size_t i = 0; i < n; i++) {
		rows[i] = row_make("192.0.2.1", false, false);
		snprintf(rows[i].source_ip, sizeof(rows[i].source_ip), "10.%zu.%zu.1", i / 256, i % 256);
		memcpy(rows[i].header_from, amp, sizeof(amp));
		memcpy(rows[i].envelope_from, amp, sizeof(amp));
		memcpy(rows[i].envelope_to, amp, sizeof(amp));
		memcpy(rows[i].spf_domain, amp, sizeof(amp));
		rows[i].dkim_count = 0;
		for (size_t j = 0; j < DMARC_REPORT_DKIM_MAX; j++)
			dmarc_report_row_add_dkim(&rows[i], amp, amp, DKIM_RESULT_FAIL);
		assert_int_equal(rows[i].dkim_count, DMARC_REPORT_DKIM_MAX);
	}
	struct dmarc_report_xml_info info;
	char *xml = NULL;
	size_t len;
	const char *err;
	assert_int_equal(dmarc_report_xml(&meta, rows, n, &xml, &len, &info, &err), DMARC_REPORT_OK);
	assert_true(len <= DMARC_REPORT_XML_MAX);
	assert_true(len > DMARC_REPORT_XML_MAX - 20000);
	assert_true(info.records_dropped > 0);
	assert_int_equal(info.records + info.records_dropped, n);
	assert_int_equal(info.messages + info.messages_dropped, n);
	assert_int_equal(occurrences(xml, "<record>"), info.records);
	expect_well_formed(xml, len);
	keep_document("size_limit", xml, len);
	free(xml);
	free(rows);
}

static void expect_refused(const struct dmarc_report_meta *m, const struct dmarc_report_row *rows, size_t n,
			   const char *why)
{
	char *xml = (char *)"untouched";
	size_t len = 1;
	const char *err = NULL;
	assert_int_equal(dmarc_report_xml(m, rows, n, &xml, &len, NULL, &err), DMARC_REPORT_INVALID);
	assert_null(xml);
	assert_non_null(err);
	if (strstr(err, why) == NULL)
		fail_msg("error \"%s\", want one with \"%s\"", err, why);
}

static void test_refused(void **state)
{
	struct dmarc_report_row rows[2] = { row_make("192.0.2.1", true, true), row_make("192.0.2.2", true, true) };
	expect_refused(&meta, rows, 0, "at least one row");
	struct dmarc_report_meta m = meta;
	m.report_id = "id-with-dash";
	expect_refused(&m, rows, 1, "letters and digits");
	m.report_id = "";
	expect_refused(&m, rows, 1, "letters and digits");
	m = meta;
	m.begin = m.end + 1;
	expect_refused(&m, rows, 1, "ends before");
	m = meta;
	m.email = NULL;
	expect_refused(&m, rows, 1, "required");
	snprintf(rows[1].policy_domain, sizeof(rows[1].policy_domain), "example.net");
	expect_refused(&meta, rows, 2, "more than one policy domain");
	rows[1] = rows[0];
	rows[1].count = 0;
	expect_refused(&meta, rows, 2, "counts no message");
	rows[1] = rows[0];
	snprintf(rows[1].policy_domain, sizeof(rows[1].policy_domain), "not a host");
	expect_refused(&meta, rows + 1, 1, "host name");
	rows[1] = rows[0];
	memset(rows[1].source_ip, 'x', sizeof(rows[1].source_ip));
	expect_refused(&meta, rows + 1, 1, "not terminated");
	rows[1] = rows[0];
	rows[1].rua_count = 0;
	expect_refused(&meta, rows + 1, 1, "rua");
	rows[1] = rows[0];
	snprintf(rows[1].rua[0], sizeof(rows[1].rua[0]), "a@b\r\nBcc: c@d");
	expect_refused(&meta, rows + 1, 1, "control character");
	rows[1] = rows[0];
	rows[1].disposition = (enum dmarc_policy)7;
	expect_refused(&meta, rows + 1, 1, "out of range");
	rows[1] = rows[0];
	rows[1].dkim_count = DMARC_REPORT_DKIM_MAX + 1;
	expect_refused(&meta, rows + 1, 1, "DKIM");
}

/* ---- rows ---- */

static void test_row_fill(void **state)
{
	struct dmarc_outcome o;
	memset(&o, 0, sizeof(o));
	const char *why;
	const char *txt = "v=DMARC1; p=quarantine; sp=none; adkim=s; t=y; fo=1:d;"
			  " rua=mailto:agg@example.com,https://reports.example/x,mailto:dmarc%2Brua@third.example";
	assert_int_equal(dmarc_record_parse(txt, strlen(txt), &o.record, &why), DMARC_RECORD_OK);
	o.has_record = true;
	o.result = DMARC_RESULT_FAIL;
	o.policy = DMARC_POLICY_NONE;
	o.disposition = DMARC_POLICY_NONE;
	snprintf(o.author_domain, sizeof(o.author_domain), "news.example.com");
	snprintf(o.policy_domain, sizeof(o.policy_domain), "example.com");
	snprintf(o.org_domain, sizeof(o.org_domain), "example.com");
	struct dmarc_report_row r;
	assert_true(dmarc_report_row_fill(&r, &o));
	assert_int_equal(r.count, 1);
	assert_string_equal(r.header_from, "news.example.com");
	assert_string_equal(r.policy_domain, "example.com");
	assert_string_equal(r.org_domain, "example.com");
	assert_int_equal(r.published.p, DMARC_POLICY_QUARANTINE);
	assert_int_equal(r.published.sp, DMARC_POLICY_NONE);
	assert_int_equal(r.published.np, DMARC_POLICY_NONE);
	assert_int_equal(r.published.adkim, DMARC_ALIGN_STRICT);
	assert_true(r.published.testing);
	assert_int_equal(r.published.fo, DMARC_FO_1 | DMARC_FO_D);
	/* only the mailto: URIs, decoded */
	assert_int_equal(r.rua_count, 2);
	assert_string_equal(r.rua[0], "agg@example.com");
	assert_string_equal(r.rua[1], "dmarc+rua@third.example");
	snprintf(r.source_ip, sizeof(r.source_ip), "192.0.2.7");
	assert_int_equal(dmarc_report_row_check(&r, &why), DMARC_REPORT_OK);

	/* nothing to report: no record, or no mailto: rua */
	const char *no_rua = "v=DMARC1; p=reject; rua=https://reports.example/x";
	assert_int_equal(dmarc_record_parse(no_rua, strlen(no_rua), &o.record, &why), DMARC_RECORD_OK);
	assert_false(dmarc_report_row_fill(&r, &o));
	o.has_record = false;
	assert_false(dmarc_report_row_fill(&r, &o));
}

/* §3.1.3: strict-aligned passes, relaxed-aligned passes, other passes, the rest */
static void test_dkim_order(void **state)
{
	struct dmarc_report_row r = row_make("192.0.2.1", true, true);
	r.dkim_count = 0;
	snprintf(r.header_from, sizeof(r.header_from), "news.example.com");
	dmarc_report_row_add_dkim(&r, "news.example.com", "f1", DKIM_RESULT_FAIL);
	dmarc_report_row_add_dkim(&r, "esp.example.net", "p1", DKIM_RESULT_PASS);
	dmarc_report_row_add_dkim(&r, "example.com", "r1", DKIM_RESULT_PASS);
	dmarc_report_row_add_dkim(&r, "News.Example.COM", "s1", DKIM_RESULT_PASS);
	dmarc_report_row_add_dkim(&r, "other.example", "f2", DKIM_RESULT_TEMPERROR);
	assert_int_equal(r.dkim_count, DMARC_REPORT_DKIM_MAX);
	assert_string_equal(r.dkim[0].selector, "s1");
	assert_string_equal(r.dkim[1].selector, "r1");
	assert_string_equal(r.dkim[2].selector, "p1");
	assert_string_equal(r.dkim[3].selector, "f1");
	/* a better one still pushes the worst out */
	dmarc_report_row_add_dkim(&r, "mail.example.com", "r2", DKIM_RESULT_PASS);
	assert_string_equal(r.dkim[2].selector, "r2");
	assert_string_equal(r.dkim[3].selector, "p1");
	/* without an org domain, a parent or child of header_from counts as relaxed */
	r.org_domain[0] = '\0';
	r.dkim_count = 0;
	dmarc_report_row_add_dkim(&r, "esp.example.net", "p1", DKIM_RESULT_PASS);
	dmarc_report_row_add_dkim(&r, "example.com", "r1", DKIM_RESULT_PASS);
	assert_string_equal(r.dkim[0].selector, "r1");
	/* over-long values are cut to the field */
	char big[600];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	dmarc_report_row_add_dkim(&r, big, big, DKIM_RESULT_FAIL);
	assert_int_equal(strlen(r.dkim[2].domain), DNS_HOST_SIZE - 1);
}

static void test_keys_and_ids(void **state)
{
	struct dmarc_report_row a = row_make("192.0.2.1", true, true), b = a;
	char ka[DMARC_REPORT_KEY_SIZE], kb[DMARC_REPORT_KEY_SIZE];
	/* time, count, published policy and org domain are no part of the key */
	b.time += 1000;
	b.count = 9;
	b.published.p = DMARC_POLICY_NONE;
	b.org_domain[0] = '\0';
	dmarc_report_row_key(&a, ka);
	dmarc_report_row_key(&b, kb);
	assert_int_equal(strlen(ka), 64);
	assert_string_equal(ka, kb);
	/* the applied policy only through the words it gives: pass under reject or quarantine alike */
	b.policy = DMARC_POLICY_QUARANTINE;
	dmarc_report_row_key(&b, kb);
	assert_string_equal(ka, kb);
	struct dmarc_report_row c[] = { a, a, a, a, a, a, a };
	snprintf(c[0].source_ip, sizeof(c[0].source_ip), "192.0.2.2");
	c[1].spf_aligned = false;
	snprintf(c[2].rua[0], sizeof(c[2].rua[0]), "other@example.com");
	c[3].dkim[0].result = DKIM_RESULT_FAIL;
	c[4].envelope_to[0] = '\0';
	c[5].override = DMARC_REPORT_OVERRIDE_TRUSTED_FORWARDER;
	/* fields that run into each other must not collide: "ab"+"c" vs "a"+"bc" */
	snprintf(c[6].envelope_from, sizeof(c[6].envelope_from), "bounce.example.comexample.org");
	c[6].envelope_to[0] = '\0';
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		dmarc_report_row_key(&c[i], kb);
		if (strcmp(ka, kb) == 0)
			fail_msg("variant %zu has the same key", i);
	}

	char id[DMARC_REPORT_ID_SIZE];
	dmarc_report_id_make(id, 1767225600, 42);
	assert_string_equal(id, "1767225600x42");
	assert_true(dmarc_report_id_valid(id));
	dmarc_report_id_make(id, INT64_MAX, UINT64_MAX);
	assert_true(dmarc_report_id_valid(id));
	assert_false(dmarc_report_id_valid(""));
	assert_false(dmarc_report_id_valid("a.b"));
	assert_false(dmarc_report_id_valid("<a@b>"));
	char long_id[80];
	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	assert_false(dmarc_report_id_valid(long_id));
	long_id[64] = '\0';
	assert_true(dmarc_report_id_valid(long_id));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_document),      cmocka_unit_test(test_latest_policy_and_metadata),
		cmocka_unit_test(test_dispositions_and_reasons), cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_hostile_row),   cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_refused),       cmocka_unit_test(test_row_fill),
		cmocka_unit_test(test_dkim_order),    cmocka_unit_test(test_keys_and_ids),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
