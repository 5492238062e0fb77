/* tlsrpt.h — SMTP TLS Reporting (RFC 8460), the pure parts: the _smtp._tls TXT record (§3), the
 * JSON report (§4) of one policy domain's sessions in one period (events/tlsrpt_sessions.h), and
 * the report message (§5.3). No I/O; every string may come from DNS or a peer and is treated as
 * hostile (the record parser is fuzzed: fuzz/fuzz_tlsrpt_record.c).
 *
 * How the pieces fit (report/tlsrpt_scheduler.c does the rest): once a period (a UTC day) has
 * ended, each policy domain with sessions: TXT _smtp._tls.DOMAIN → tlsrpt_record_select() →
 * tlsrpt_report_json() → gzip (§5.2) → https: POST application/tlsrpt+gzip (§5.4) and/or mailto:
 * tlsrpt_report_message() through the queue, DKIM-signed (§5.3), with TLS-Required: No. */
#ifndef MAILWERK_REPORT_TLSRPT_H
#define MAILWERK_REPORT_TLSRPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "events/tlsrpt_sessions.h"
#include "util/addr.h"

/* rua URIs kept per record at most (a receiver's limit, as §3 allows); URIs of other schemes are
 * skipped and not counted here. */
#define TLSRPT_RUA_MAX 8
#define TLSRPT_URI_MAX 2048
/* a TXT record longer than this is not ours to parse */
#define TLSRPT_RECORD_MAX 4096

enum tlsrpt_uri_kind {
	TLSRPT_URI_MAILTO = 0,
	TLSRPT_URI_HTTPS,
};

struct tlsrpt_uri {
	enum tlsrpt_uri_kind kind;
	char text[TLSRPT_URI_MAX + 1]; /* HTTPS: the URL as published; MAILTO: the mailbox, decoded */
};

struct tlsrpt_record {
	size_t rua_count;
	struct tlsrpt_uri rua[TLSRPT_RUA_MAX];
	size_t skipped; /* URIs left out: other schemes, malformed mailboxes, over the limit */
};

enum tlsrpt_record_error {
	TLSRPT_RECORD_OK = 0,
	TLSRPT_RECORD_NOT_TLSRPT, /* does not begin with v=TLSRPTv1 (§3: not a TLS-RPT record) */
	TLSRPT_RECORD_SYNTAX,     /* a TLS-RPT record that does not parse */
	TLSRPT_RECORD_NO_RUA,     /* parses, but no rua, or none of its URIs can be used */
};
const char *tlsrpt_record_error_str(enum tlsrpt_record_error e);

/* Parses one TXT record's text (len octets, may hold NULs). §3: "v=TLSRPTv1" first, fields
 * separated by ";" with optional white space, one rua of comma-separated URIs, extensions
 * (name=value) ignored. A mailto: URI's mailbox is percent-decoded and its "?..." hfields dropped;
 * it must be an ASCII local@domain (reports go without SMTPUTF8). An https: URI must pass
 * http_url_parse and be https. */
enum tlsrpt_record_error tlsrpt_record_parse(const char *text, size_t len, struct tlsrpt_record *r,
					     const char **error_r);

/* §3: of the TXT records texts[0..n), exactly one must begin with "v=TLSRPTv1" (others are not
 * counted); none or more than one → no report. The one found is parsed into r. */
enum tlsrpt_record_error tlsrpt_record_select(const char *const *texts, const size_t *lens, size_t n,
					      struct tlsrpt_record *r, const char **error_r);

/* report-id: "<begin>.<16 hex of SHA-256 of the policy domain>@<submitter>" — stable, so a report
 * sent again (a retry) carries the same one. */
#define TLSRPT_REPORT_ID_SIZE 320
void tlsrpt_report_id(char id_r[TLSRPT_REPORT_ID_SIZE], int64_t begin, const char *policy_domain,
		      const char *submitter);

struct tlsrpt_report_meta {
	const char *organization; /* organization-name */
	const char *contact;      /* contact-info: the mailbox */
	const char *report_id;
	int64_t begin, end;       /* date-range: [begin, end], end inclusive (the period's last second) */
};

/* The report JSON (§4, UTF-8) for one policy domain's sessions rows[0..n) (all of policy_domain):
 * one policies[] entry per distinct policy (type, strings, mx hosts), its summary counts and
 * failure-details, one per distinct failure. The peer's sentence goes into failure-reason-code;
 * additional-information (a URI) is not given. NULL when out of memory; the caller frees. */
char *tlsrpt_report_json(const struct tlsrpt_report_meta *m, const char *policy_domain,
			 const struct tlsrpt_session *rows, size_t n, size_t *len_r);

/* §5.3 the attachment's name: submitter!policy-domain!begin!end!id.json.gz, with the report-id's
 * characters other than letters, digits, '.', '-' and '_' as '_' (it is a file name). */
bool tlsrpt_report_filename(const char *submitter, const char *policy_domain, int64_t begin, int64_t end,
			    const char *report_id, char *name_r, size_t size);

struct tlsrpt_report_mail {
	const char *from;          /* the reporting mailbox */
	const char *const *to;     /* mailto: rua mailboxes, 1 to TLSRPT_RUA_MAX */
	size_t to_count;
	const char *submitter;     /* our host name */
	const char *policy_domain;
	const char *report_id;
	int64_t begin, end;
	int64_t date;
};

/* The whole §5.3 message, CRLF lines: From, To, Date, Subject "Report Domain: D Submitter: S
 * Report-ID: <id>", Message-ID, TLS-Report-Domain, TLS-Report-Submitter, TLS-Required: No (RFC
 * 8689 §5; §5.3.1: report mail must not wait on the policies it reports), Auto-Submitted,
 * multipart/report; report-type="tlsrpt" with a text part and gz[0..gz_len) as an
 * application/tlsrpt+gzip attachment in base64. NULL with *error_r on failure. */
char *tlsrpt_report_message(const struct tlsrpt_report_mail *m, const unsigned char *gz, size_t gz_len,
			    size_t *len_r, const char **error_r);

#endif
