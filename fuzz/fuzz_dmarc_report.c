/* fuzz_dmarc_report.c — libFuzzer harness for src/report/: the XML escaping and the whole report
 * document with hostile values in every string of a row (the output must stay well-formed UTF-8
 * XML: balanced tags, no control octets, '&' only in entity references), and the RFC 9990 §4
 * destination check with hostile addresses and DNS answers (the first octet picks each answer's
 * status, the text after the first '|' gives its TXT records, cut at '|'; the text before it gives
 * the addresses, cut at ','). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "report/dmarc_report.h"
#include "report/dmarc_report_dest.h"
#include "report/report_xml.h"

#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			__builtin_trap(); \
	} while (0)

#define FUZZ_PIECES 8

/* The length of the valid UTF-8 sequence at p (RFC 3629), 0 for none. */
static size_t utf8_len(const unsigned char *p, size_t left)
{
	size_t n = p[0] < 0x80 ? 1 : p[0] >= 0xc2 && p[0] <= 0xdf ? 2 : p[0] >= 0xe0 && p[0] <= 0xef ? 3
		 : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : 0;
	if (n == 0 || n > left)
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

/* Text as report_xml_text promises it: UTF-8, no control octets, no markup characters, every '&' an
 * entity reference; in a whole document (document true) tags balance and text may hold '\n'. */
static void check_text(const char *s, size_t len, bool document)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t depth = 0;
	for (size_t i = 0; i < len;) {
		if (document && p[i] == '<') {
			const unsigned char *end = memchr(p + i, '>', len - i);
			FUZZ_CHECK(end != NULL);
			if (p[i + 1] == '/') {
				FUZZ_CHECK(depth > 0);
				depth--;
			} else if (p[i + 1] != '?') {
				depth++;
			}
			i = (size_t)(end - p) + 1;
			continue;
		}
		FUZZ_CHECK(p[i] != '<' && p[i] != '>');
		FUZZ_CHECK(p[i] >= 0x20 || (document && p[i] == '\n'));
		FUZZ_CHECK(p[i] != 0x7f);
		if (p[i] == '&')
			FUZZ_CHECK(strncmp(s + i, "&lt;", 4) == 0 || strncmp(s + i, "&gt;", 4) == 0 ||
				   strncmp(s + i, "&amp;", 5) == 0);
		size_t n = utf8_len(p + i, len - i);
		FUZZ_CHECK(n > 0);
		i += n;
	}
	FUZZ_CHECK(depth == 0);
}

static void fuzz_text(const uint8_t *data, size_t size)
{
	struct report_xml x;
	report_xml_init(&x);
	report_xml_text(&x, (const char *)data, size);
	if (x.nomem)
		return;
	check_text(x.buf != NULL ? x.buf : "", x.len, false);
	report_xml_free(&x);
}

static void field(char *f, size_t fsize, const uint8_t *data, size_t size, size_t off)
{
	size_t n = 0;
	for (size_t i = off; n < size && n + 1 < fsize; i++) {
		char c = (char)data[i % size];
		f[n++] = c == '\0' ? ' ' : c;
	}
	f[n] = '\0';
}

static void fuzz_document(const uint8_t *data, size_t size)
{
	static struct dmarc_report_row rows[2];
	memset(rows, 0, sizeof(rows));
	struct dmarc_report_row *r = &rows[0];
	r->count = 1;
	field(r->source_ip, sizeof(r->source_ip), data, size, 0);
	field(r->header_from, sizeof(r->header_from), data, size, 1);
	field(r->envelope_from, sizeof(r->envelope_from), data, size, 2);
	field(r->envelope_to, sizeof(r->envelope_to), data, size, 3);
	field(r->spf_domain, sizeof(r->spf_domain), data, size, 4);
	strcpy(r->policy_domain, "example.com");
	r->dkim_aligned = size > 0 && (data[0] & 1);
	r->published.testing = size > 0 && (data[0] & 2);
	r->disposition = size > 0 && (data[0] & 4) ? DMARC_POLICY_QUARANTINE : DMARC_POLICY_NONE;
	r->policy = DMARC_POLICY_REJECT;
	char d[DNS_HOST_SIZE], s[DNS_HOST_SIZE];
	for (size_t i = 0; i < DMARC_REPORT_DKIM_MAX + 1; i++) {
		field(d, sizeof(d), data, size, 5 + i);
		field(s, sizeof(s), data, size, 9 + i);
		dmarc_report_row_add_dkim(r, d, s, (enum dkim_result)(i % (DKIM_RESULT_PERMERROR + 1)));
	}
	FUZZ_CHECK(r->dkim_count == DMARC_REPORT_DKIM_MAX);
	r->rua_count = 1;
	strcpy(r->rua[0], "dmarc@example.com");
	rows[1] = rows[0];
	rows[1].count = 2;

	char org[300];
	field(org, sizeof(org), data, size, 7);
	struct dmarc_report_meta meta = {
		.org_name = org, .email = org, .extra_contact_info = org, .report_id = "1", .begin = 0, .end = 1,
	};
	char *xml;
	size_t len;
	const char *err;
	struct dmarc_report_xml_info info;
	enum dmarc_report_error e = dmarc_report_xml(&meta, rows, 2, &xml, &len, &info, &err);
	if (e == DMARC_REPORT_NOMEM)
		return;
	FUZZ_CHECK(e == DMARC_REPORT_OK);
	FUZZ_CHECK(strlen(xml) == len && len <= DMARC_REPORT_XML_MAX);
	FUZZ_CHECK(info.records == 1 && info.messages == 3);
	check_text(xml, len, true);
	free(xml);
}

static void fuzz_dests(const uint8_t *data, size_t size)
{
	if (size == 0)
		return;
	char *text = malloc(size);
	if (text == NULL)
		return;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	/* addresses before the first '|', answers' TXT records after it */
	char *bar = memchr(text, '|', size - 1);
	const char *addrs[FUZZ_PIECES];
	size_t naddrs = 0;
	struct dns_txt txts[FUZZ_PIECES];
	size_t ntxt = 0;
	if (bar != NULL)
		*bar = '\0';
	for (char *p = text; naddrs < FUZZ_PIECES;) {
		addrs[naddrs++] = p;
		char *comma = strchr(p, ',');
		if (comma == NULL)
			break;
		*comma = '\0';
		p = comma + 1;
	}
	if (bar != NULL) {
		char *end = text + size - 1;
		for (char *p = bar + 1; ntxt < FUZZ_PIECES && p <= end;) {
			char *next = memchr(p, '|', (size_t)(end - p));
			size_t n = next != NULL ? (size_t)(next - p) : (size_t)(end - p);
			p[n] = '\0';
			txts[ntxt].text = p;
			txts[ntxt].len = n;
			ntxt++;
			p += n + 1;
		}
	}
	struct dmarc_report_dests *d = dmarc_report_dests_new("example.com", "example.com", addrs, naddrs);
	if (d == NULL) {
		free(text);
		return;
	}
	static const enum dns_status st[] = { DNS_STATUS_OK, DNS_STATUS_NXDOMAIN, DNS_STATUS_NODATA, DNS_STATUS_TEMPFAIL };
	struct auth_query q;
	unsigned asked = 0;
	enum auth_step step = dmarc_report_dests_step(d, NULL, &q);
	while (step == AUTH_STEP_QUERY) {
		FUZZ_CHECK(++asked <= naddrs);
		FUZZ_CHECK(q.rrtype == DNS_RRTYPE_TXT && strlen(q.name) < DNS_HOST_SIZE);
		FUZZ_CHECK(strncmp(q.name, "example.com._report._dmarc.", 27) == 0 && dns_host_valid(q.name + 27));
		struct dns_result res = { .status = st[(data[0] >> (asked % 4 * 2)) & 3], .rrtype = q.rrtype,
					  .name = q.name, .canonname = q.name, .why = "fuzz" };
		if (res.status == DNS_STATUS_OK) {
			res.count = ntxt;
			res.txts = txts;
			if (ntxt == 0)
				res.status = DNS_STATUS_NODATA;
		}
		step = dmarc_report_dests_step(d, &res, &q);
	}
	const char *const *allowed;
	size_t n = dmarc_report_dests_allowed(d, &allowed);
	FUZZ_CHECK(n <= DMARC_REPORT_DEST_MAX);
	for (size_t i = 0; i < dmarc_report_dests_count(d); i++) {
		const char *why;
		enum dmarc_report_dest_status s = dmarc_report_dests_status(d, i, &why);
		FUZZ_CHECK(s != DMARC_REPORT_DEST_CHECK && s <= DMARC_REPORT_DEST_INVALID && why != NULL);
	}
	for (size_t i = 0; i < n; i++) {
		/* every allowed address could go into a header field: no octet the message builder refuses */
		const char *at = strrchr(allowed[i], '@');
		FUZZ_CHECK(at != NULL && dns_host_valid(at + 1));
		for (const char *c = allowed[i]; *c != '\0'; c++)
			FUZZ_CHECK((unsigned char)*c >= 0x20 && (unsigned char)*c < 0x7f);
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(allowed[i], allowed[j]) != 0);
	}
	dmarc_report_dests_free(d);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_text(data, size);
	fuzz_document(data, size);
	fuzz_dests(data, size);
	return 0;
}
