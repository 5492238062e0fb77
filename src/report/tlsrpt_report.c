/* tlsrpt_report.c — the TLS-RPT report (RFC 8460 §4) as JSON with jansson, its file name and its
 * report message (§5.3). Pure. */
#include "report/tlsrpt.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "report/report_buf.h"
#include "util/base64.h"
#include "util/date.h"

void tlsrpt_report_id(char id_r[TLSRPT_REPORT_ID_SIZE], int64_t begin, const char *policy_domain,
		      const char *submitter)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	if (EVP_Digest(policy_domain, strlen(policy_domain), md, &mdlen, EVP_sha256(), NULL) != 1)
		mdlen = 0;
	char hex[17] = "0000000000000000";
	for (unsigned i = 0; i < 8 && i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	snprintf(id_r, TLSRPT_REPORT_ID_SIZE, "%" PRId64 ".%s@%s", begin, hex, submitter);
}

/* §4.1 date-time, RFC 3339 in UTC: "2016-04-01T00:00:00Z" */
static void rfc3339(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (gmtime_r(&tt, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* '\n'-joined lines as a JSON array of strings; "" as an empty array */
static json_t *lines_array(const char *joined)
{
	json_t *a = json_array();
	if (a == NULL)
		return NULL;
	const char *p = joined;
	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);
		/* json_stringn_nocheck would pass invalid UTF-8 through; json_stringn refuses it, and a
		 * value that is not UTF-8 is left out rather than sent broken */
		json_t *s = json_stringn(p, n);
		if (s != NULL)
			json_array_append_new(a, s);
		p += n;
		if (*p == '\n')
			p++;
	}
	return a;
}

static bool same_policy(const struct tlsrpt_session *a, const struct tlsrpt_session *b)
{
	return a->policy_type == b->policy_type && strcmp(a->policy_strings, b->policy_strings) == 0 &&
	       strcmp(a->mx_hosts, b->mx_hosts) == 0;
}

static int set_str(json_t *o, const char *key, const char *v)
{
	json_t *s = json_string(v);
	if (s == NULL)
		s = json_string("?"); /* not UTF-8: from a peer */
	return json_object_set_new(o, key, s);
}

/* One policies[] entry: the policy of rows[first] and every row with the same policy. */
static json_t *policy_entry(const char *policy_domain, const struct tlsrpt_session *rows, size_t n, size_t first)
{
	const struct tlsrpt_session *p = &rows[first];
	json_t *e = json_object(), *pol = json_object(), *sum = json_object(), *fails = json_array();
	if (e == NULL || pol == NULL || sum == NULL || fails == NULL) {
		json_decref(e);
		json_decref(pol);
		json_decref(sum);
		json_decref(fails);
		return NULL;
	}
	set_str(pol, "policy-type", tlsrpt_policy_type_str(p->policy_type));
	if (p->policy_strings[0] != '\0')
		json_object_set_new(pol, "policy-string", lines_array(p->policy_strings));
	set_str(pol, "policy-domain", policy_domain);
	if (p->mx_hosts[0] != '\0')
		json_object_set_new(pol, "mx-host", lines_array(p->mx_hosts));
	uint64_t ok = 0, failed = 0;
	for (size_t i = first; i < n; i++) {
		const struct tlsrpt_session *r = &rows[i];
		if (!same_policy(p, r))
			continue;
		if (r->result == TLSRPT_RESULT_SUCCESS) {
			ok += r->count;
			continue;
		}
		failed += r->count;
		json_t *f = json_object();
		if (f == NULL)
			continue;
		set_str(f, "result-type", tlsrpt_result_str(r->result));
		if (r->sending_ip[0] != '\0')
			set_str(f, "sending-mta-ip", r->sending_ip);
		if (r->receiving_mx[0] != '\0')
			set_str(f, "receiving-mx-hostname", r->receiving_mx);
		if (r->receiving_ip[0] != '\0')
			set_str(f, "receiving-ip", r->receiving_ip);
		json_object_set_new(f, "failed-session-count", json_integer((json_int_t)r->count));
		/* §4.4: additional-information is a URI; our sentence is a failure-reason-code */
		if (r->additional[0] != '\0')
			set_str(f, "failure-reason-code", r->additional);
		json_array_append_new(fails, f);
	}
	json_object_set_new(sum, "total-successful-session-count", json_integer((json_int_t)ok));
	json_object_set_new(sum, "total-failure-session-count", json_integer((json_int_t)failed));
	json_object_set_new(e, "policy", pol);
	json_object_set_new(e, "summary", sum);
	if (json_array_size(fails) > 0)
		json_object_set_new(e, "failure-details", fails);
	else
		json_decref(fails);
	return e;
}

char *tlsrpt_report_json(const struct tlsrpt_report_meta *m, const char *policy_domain,
			 const struct tlsrpt_session *rows, size_t n, size_t *len_r)
{
	json_t *root = json_object(), *range = json_object(), *policies = json_array();
	if (root == NULL || range == NULL || policies == NULL) {
		json_decref(root);
		json_decref(range);
		json_decref(policies);
		return NULL;
	}
	char b[32], e[32];
	rfc3339(m->begin, b);
	rfc3339(m->end, e);
	set_str(root, "organization-name", m->organization);
	set_str(range, "start-datetime", b);
	set_str(range, "end-datetime", e);
	json_object_set_new(root, "date-range", range);
	set_str(root, "contact-info", m->contact);
	set_str(root, "report-id", m->report_id);
	for (size_t i = 0; i < n; i++) {
		bool seen = false;
		for (size_t k = 0; k < i && !seen; k++)
			seen = same_policy(&rows[k], &rows[i]);
		if (seen)
			continue;
		json_t *entry = policy_entry(policy_domain, rows, n, i);
		if (entry != NULL)
			json_array_append_new(policies, entry);
	}
	/* §4: policies is an array, also with one entry */
	json_object_set_new(root, "policies", policies);
	char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (text != NULL)
		*len_r = strlen(text);
	return text;
}

bool tlsrpt_report_filename(const char *submitter, const char *policy_domain, int64_t begin, int64_t end,
			    const char *report_id, char *name_r, size_t size)
{
	char id[TLSRPT_REPORT_ID_SIZE];
	size_t i = 0;
	for (; report_id[i] != '\0' && i + 1 < sizeof(id); i++) {
		char c = report_id[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
			  c == '-' || c == '_';
		id[i] = ok ? c : '_';
	}
	id[i] = '\0';
	/* §5.3: filename = sender "!" policy-domain "!" begin-timestamp "!" end-timestamp [ "!" unique-id ]
	 * "." extension, with "json.gz" for a compressed report */
	int n = snprintf(name_r, size, "%s!%s!%" PRId64 "!%" PRId64 "!%s.json.gz", submitter, policy_domain, begin, end, id);
	return n > 0 && (size_t)n < size;
}

/* ---- the message (§5.3) ---- */

static bool mail_text_ok(const char *s)
{
	if (s == NULL || s[0] == '\0')
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f || *s == '"' || *s == '<' || *s == '>')
			return false;
	return true;
}

char *tlsrpt_report_message(const struct tlsrpt_report_mail *m, const unsigned char *gz, size_t gz_len,
			    size_t *len_r, const char **error_r)
{
	if (m->to_count == 0 || m->to_count > TLSRPT_RUA_MAX || !mail_text_ok(m->from) || !mail_text_ok(m->submitter) ||
	    !mail_text_ok(m->policy_domain) || !mail_text_ok(m->report_id)) {
		*error_r = "an address or name of the report cannot go into a header field";
		return NULL;
	}
	for (size_t i = 0; i < m->to_count; i++)
		if (!mail_text_ok(m->to[i])) {
			*error_r = "a rua mailbox cannot go into a header field";
			return NULL;
		}
	char filename[2 * 256 + 2 * 24 + TLSRPT_REPORT_ID_SIZE + 16];
	if (!tlsrpt_report_filename(m->submitter, m->policy_domain, m->begin, m->end, m->report_id, filename,
				    sizeof(filename))) {
		*error_r = "the file name does not fit";
		return NULL;
	}
	char date[40], b[32], e[32];
	date_rfc5322_format((time_t)m->date, date, sizeof(date));
	rfc3339(m->begin, b);
	rfc3339(m->end, e);
	char boundary[64];
	snprintf(boundary, sizeof(boundary), "=_tlsrpt_%" PRId64, m->begin);

	struct report_buf mb = {0};
	report_buf_printf(&mb, "From: %s\r\n", m->from);
	report_buf_printf(&mb, "To: %s", m->to[0]);
	for (size_t i = 1; i < m->to_count; i++)
		report_buf_printf(&mb, ",\r\n %s", m->to[i]);
	report_buf_printf(&mb, "\r\nDate: %s\r\n", date);
	/* §5.3: Subject: Report Domain: <policy domain> Submitter: <submitter> Report-ID: <<id>> */
	report_buf_printf(&mb, "Subject: Report Domain: %s\r\n Submitter: %s\r\n Report-ID: <%s>\r\n", m->policy_domain, m->submitter,
		  m->report_id);
	report_buf_printf(&mb, "Message-ID: <%s>\r\n", m->report_id); /* the same for a report sent again */
	report_buf_printf(&mb, "TLS-Report-Domain: %s\r\n", m->policy_domain);
	report_buf_printf(&mb, "TLS-Report-Submitter: %s\r\n", m->submitter);
	/* RFC 8689 §5 and RFC 8460 §5.3.1: a report about failing TLS must not be held back by them */
	report_buf_printf(&mb, "TLS-Required: No\r\n");
	report_buf_printf(&mb, "Auto-Submitted: auto-generated\r\n"); /* RFC 3834 §5 */
	report_buf_printf(&mb, "MIME-Version: 1.0\r\n");
	report_buf_printf(&mb, "Content-Type: multipart/report; report-type=\"tlsrpt\";\r\n boundary=\"%s\"\r\n\r\n", boundary);
	report_buf_printf(&mb, "This is a message in MIME format (RFC 2045).\r\n\r\n--%s\r\n", boundary);
	report_buf_printf(&mb, "Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n");
	report_buf_printf(&mb, "This is an SMTP TLS report (RFC 8460) from %s\r\nfor %s, %s to %s.\r\n", m->submitter,
		  m->policy_domain, b, e);
	report_buf_printf(&mb, "\r\n--%s\r\n", boundary);
	/* §6.4: application/tlsrpt+gzip; the name in both places, as mail readers look in either */
	report_buf_printf(&mb, "Content-Type: application/tlsrpt+gzip;\r\n name=\"%s\"\r\n", filename);
	report_buf_printf(&mb, "Content-Transfer-Encoding: base64\r\n");
	report_buf_printf(&mb, "Content-Disposition: attachment;\r\n filename=\"%s\"\r\n\r\n", filename);
	size_t enc_size = BASE64_ENCODED_SIZE(gz_len);
	char *enc = malloc(enc_size);
	if (enc == NULL || !base64_encode(gz, gz_len, enc, enc_size)) {
		free(enc);
		free(mb.p);
		*error_r = "out of memory";
		return NULL;
	}
	/* RFC 2045 §6.8: lines of at most 76 characters */
	size_t elen = strlen(enc);
	for (size_t i = 0; i < elen; i += 76) {
		report_buf_put(&mb, enc + i, elen - i < 76 ? elen - i : 76);
		report_buf_put(&mb, "\r\n", 2);
	}
	free(enc);
	report_buf_printf(&mb, "\r\n--%s--\r\n", boundary);
	if (mb.failed) {
		free(mb.p);
		*error_r = "out of memory";
		return NULL;
	}
	*len_r = mb.len;
	return mb.p;
}
