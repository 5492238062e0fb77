/* dmarc_report_mail.c — the message that carries a DMARC aggregate report (RFC 9990 §3.5.2): RFC
 * 5322 header fields with the Subject the RFC prescribes, and a multipart/mixed body (RFC 2046 §5.1)
 * with a short text part and the report gzip'd (RFC 1952, zlib) in base64 (RFC 2045 §6.8). */
#include "report/dmarc_report.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "report/report_buf.h"
#include "util/date.h"
#include "util/base64.h"
#include "util/gzip.h"

/* RFC 5322 §2.1.1: lines SHOULD be at most 78 characters; header fields are folded to that */
#define MAIL_LINE_SOFT 78
/* RFC 2045 §6.8: "The encoded output stream must be represented in lines of no more than 76
 * characters each." */
#define MAIL_B64_LINE 76

/* ---- checks ---- */

/* An ASCII mailbox "local@domain" with a host name for its domain: what can go into a header
 * field and an SMTP command without SMTPUTF8. */
static bool mailbox_ok(const char *s)
{
	struct addr a;
	const char *err;
	if (s == NULL || addr_parse_mailbox(s, strlen(s), 0, &a, &err) != ADDR_OK || a.is_literal)
		return false;
	return true;
}

static bool mail_args_ok(const struct dmarc_report_mail *m, const char **error_r)
{
	if (m->receiver == NULL || !dns_host_valid(m->receiver)) {
		*error_r = "the receiver is not a host name";
		return false;
	}
	if (m->policy_domain == NULL || !dns_host_valid(m->policy_domain)) {
		*error_r = "the policy domain is not a host name";
		return false;
	}
	if (m->report_id == NULL || !dmarc_report_id_valid(m->report_id)) {
		*error_r = "the report id must be 1 to 64 letters and digits";
		return false;
	}
	/* §3.5.2 begin-timestamp, end-timestamp = 1*DIGIT */
	if (m->begin < 0 || m->end < m->begin) {
		*error_r = "the date range is not a range of times after the epoch";
		return false;
	}
	if (!mailbox_ok(m->from)) {
		*error_r = "the reporting address is not an ASCII mailbox";
		return false;
	}
	if (m->to_count == 0 || m->to_count > DMARC_REPORT_RUA_MAX) {
		*error_r = "a report goes to 1 to 8 addresses";
		return false;
	}
	for (size_t i = 0; i < m->to_count; i++) {
		if (!mailbox_ok(m->to[i])) {
			*error_r = "a report address is not an ASCII mailbox (SMTPUTF8 is not used for reports)";
			return false;
		}
	}
	return true;
}

bool dmarc_report_filename(const struct dmarc_report_mail *m, char *name_r, size_t size)
{
	const char *err;
	if (!mail_args_ok(m, &err))
		return false;
	/* §3.5.2: filename = receiver "!" policy-domain "!" begin-timestamp "!" end-timestamp
	 * [ "!" unique-id ] "." extension, with "xml.gz" for gzip */
	int n = snprintf(name_r, size, "%s!%s!%" PRId64 "!%" PRId64 "!%s.xml.gz", m->receiver, m->policy_domain,
			 m->begin, m->end, m->report_id);
	return n > 0 && (size_t)n < size;
}

/* ---- gzip and base64 ---- */

static void base64_lines(struct report_buf *b, const unsigned char *in, size_t len)
{
	char line[MAIL_B64_LINE + 2];
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		line[o++] = base64_digit(v >> 18);
		line[o++] = base64_digit(v >> 12);
		line[o++] = i + 1 < len ? base64_digit(v >> 6) : '=';
		line[o++] = i + 2 < len ? base64_digit(v) : '=';
		if (o == MAIL_B64_LINE) {
			line[o++] = '\r';
			line[o++] = '\n';
			report_buf_put(b, line, o);
			o = 0;
		}
	}
	if (o > 0) {
		line[o++] = '\r';
		line[o++] = '\n';
		report_buf_put(b, line, o);
	}
}

/* ---- header fields ---- */


static void date_iso(int64_t t, char out[80])
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (gmtime_r(&tt, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	snprintf(out, 80, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec);
}

/* "Name: w1 w2 ...", folded before a word that would take the line past 78 characters
 * (RFC 5322 §2.2.3: folding inserts CRLF before existing white space). sep goes after every word
 * but the last (", " for address lists, " " otherwise). */
static void header_words(struct report_buf *b, const char *name, const char *const *words, size_t n, const char *sep)
{
	size_t col = strlen(name) + 1;
	report_buf_str(b, name);
	report_buf_str(b, ":");
	size_t seplen = strlen(sep);
	for (size_t i = 0; i < n; i++) {
		size_t w = strlen(words[i]) + (i + 1 < n ? seplen - 1 : 0);
		if (i > 0 && col + 1 + w > MAIL_LINE_SOFT) {
			report_buf_str(b, "\r\n");
			col = 0;
		}
		report_buf_str(b, " ");
		report_buf_str(b, words[i]);
		if (i + 1 < n)
			report_buf_put(b, sep, seplen - 1); /* the separator's trailing space is the next word's */
		col += 1 + w;
	}
	report_buf_str(b, "\r\n");
}

static void put_headers(struct report_buf *b, const struct dmarc_report_mail *m, const char *boundary)
{
	char date[40];
	date_rfc5322_format((time_t)m->date, date, sizeof(date));
	report_buf_printf(b, "From: %s\r\n", m->from);
	header_words(b, "To", m->to, m->to_count, ", ");
	report_buf_printf(b, "Date: %s\r\n", date);
	/* §3.5.2 dmarc-subject: "Report" 1*FWS "Domain:" 1*FWS domain-name 1*FWS "Submitter:" 1*FWS
	 * domain-name [1*FWS "Report-ID:" 1*FWS ridtxt]; the words are case-sensitive (%s) */
	const char *subject[] = {
		"Report", "Domain:", m->policy_domain, "Submitter:", m->receiver, "Report-ID:", m->report_id,
	};
	header_words(b, "Subject", subject, sizeof(subject) / sizeof(subject[0]), " ");
	/* §3.5.2: the Report-ID "as a part or whole of the RFC5322.Message-Id" */
	report_buf_printf(b, "Message-ID: <%s.%s@%s>\r\n", m->report_id, m->policy_domain, m->receiver);
	report_buf_str(b, "MIME-Version: 1.0\r\n");
	/* RFC 3834 §5: a report is generated by a machine, not a reply to anyone */
	report_buf_str(b, "Auto-Submitted: auto-generated\r\n");
	report_buf_printf(b, "Content-Type: multipart/mixed;\r\n boundary=\"%s\"\r\n", boundary);
}

static void put_text_part(struct report_buf *b, const struct dmarc_report_mail *m, const char *filename)
{
	char begin[80], end[80];
	date_iso(m->begin, begin);
	date_iso(m->end, end);
	report_buf_str(b, "Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n");
	report_buf_printf(b, "This is a DMARC aggregate report (RFC 9990) from\r\n%s\r\n\r\n", m->receiver);
	report_buf_printf(b, "Policy domain: %s\r\n", m->policy_domain);
	report_buf_printf(b, "Period: %s to %s UTC\r\n", begin, end);
	report_buf_printf(b, "Report-ID: %s\r\n\r\n", m->report_id);
	report_buf_printf(b, "The report is the attached XML file, compressed with gzip:\r\n%s\r\n", filename);
}

enum dmarc_report_error dmarc_report_message(const struct dmarc_report_mail *m, const char *xml, size_t xml_len,
					     char **msg_r, size_t *len_r, const char **error_r)
{
	*msg_r = NULL;
	*len_r = 0;
	if (!mail_args_ok(m, error_r))
		return DMARC_REPORT_INVALID;
	if (xml_len > DMARC_REPORT_XML_MAX) {
		*error_r = "the report is larger than DMARC_REPORT_XML_MAX";
		return DMARC_REPORT_TOO_BIG;
	}
	char filename[2 * DNS_HOST_SIZE + 2 * 24 + DMARC_REPORT_ID_SIZE + 16];
	if (!dmarc_report_filename(m, filename, sizeof(filename))) {
		*error_r = "the file name does not fit";
		return DMARC_REPORT_INVALID;
	}
	unsigned char *gz;
	size_t gz_len;
	if (!gzip_compress(xml, xml_len, &gz, &gz_len)) {
		*error_r = "out of memory while compressing the report";
		return DMARC_REPORT_NOMEM;
	}
	/* base64 cannot hold "=_" (RFC 2045 §6.8: "=" only pads at the end), nor the text part: the
	 * boundary cannot occur in either (RFC 2046 §5.1.1) */
	char boundary[DMARC_REPORT_ID_SIZE + 32];
	snprintf(boundary, sizeof(boundary), "=_dmarc_report_%s", m->report_id);

	struct report_buf b = { 0 };
	put_headers(&b, m, boundary);
	report_buf_str(&b, "\r\nThis is a message in MIME format (RFC 2045).\r\n");
	report_buf_printf(&b, "\r\n--%s\r\n", boundary);
	put_text_part(&b, m, filename);
	report_buf_printf(&b, "\r\n--%s\r\n", boundary);
	/* RFC 6713 application/gzip; the name in both places, as mail readers look in either */
	report_buf_printf(&b, "Content-Type: application/gzip;\r\n name=\"%s\"\r\n", filename);
	report_buf_str(&b, "Content-Transfer-Encoding: base64\r\n");
	report_buf_printf(&b, "Content-Disposition: attachment;\r\n filename=\"%s\"\r\n\r\n", filename);
	base64_lines(&b, gz, gz_len);
	free(gz);
	report_buf_printf(&b, "\r\n--%s--\r\n", boundary);
	if (b.failed) {
		free(b.p);
		*error_r = "out of memory while building the report message";
		return DMARC_REPORT_NOMEM;
	}
	if (b.len > DMARC_REPORT_MESSAGE_MAX) {
		free(b.p);
		*error_r = "the report message passes DMARC_REPORT_MESSAGE_MAX";
		return DMARC_REPORT_TOO_BIG;
	}
	*msg_r = b.p;
	*len_r = b.len;
	return DMARC_REPORT_OK;
}
