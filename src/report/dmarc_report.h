/* dmarc_report.h — DMARC aggregate reports (RFC 9990): the row the receiving side records for each
 * evaluated message, the <feedback> XML document of §3.1.1 built from a policy domain's rows, and
 * the report message of §3.5.2 (multipart/mixed, the XML gzip'd and attached). Pure: no I/O; every
 * string in a row may come from the network and is escaped, never trusted.
 *
 * How the pieces fit (the server does the rest):
 *   message evaluated → dmarc_report_row_fill() + SPF/DKIM/envelope fields → report_store_add()
 *   once a day: report_store_take() → per policy domain: dmarc_report_dest (which rua addresses
 *   may receive it, §4) → dmarc_report_xml() → dmarc_report_message() → the queue.
 *
 * Grouping (§3.1.1.7 "one record (IP, result, authentication identifiers) per tuple"): rows that
 * agree on everything a <record> shows — source IP, the disposition and reason as reported, DKIM and
 * SPF alignment, header_from, envelope_from, envelope_to and the auth results — and on the policy
 * domain and rua list form one record whose count is the sum of theirs. The published policy is not
 * part of a record: the report shows the one of the latest row (§3.1 "SHOULD note only the final
 * configuration observed during the period"). */
#ifndef MAILWERK_REPORT_DMARC_REPORT_H
#define MAILWERK_REPORT_DMARC_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "auth/dkim_verify.h"
#include "auth/dmarc.h"
#include "auth/spf.h"
#include "util/addr.h"

/* DKIM results kept per row; the best ones by the order of §3.1.3 (dmarc_report_row_add_dkim). The
 * RFC allows up to 100 per row; a message rarely carries more than two or three signatures. */
#define DMARC_REPORT_DKIM_MAX 4
/* Text of an IPv6 address with an embedded IPv4 one, and its NUL (INET6_ADDRSTRLEN). */
#define DMARC_REPORT_IP_SIZE 46
/* rua mailboxes kept per row: as many as a record keeps */
#define DMARC_REPORT_RUA_MAX DMARC_URIS_MAX
#define DMARC_REPORT_ADDR_SIZE (ADDR_TEXT_MAX + 1)
/* Report-IDs here are 1-64 letters and digits: the same text is the report_id element, the
 * Report-ID of the Subject and the unique-id of the file name (§3.1.4 "MUST be identical"), and the
 * file name's unique-id allows only ALPHA / DIGIT (§3.5.2). */
#define DMARC_REPORT_ID_SIZE 65
/* The longest XML document built. Records that would take a report past it are left out (see
 * dmarc_report_xml); the store's bound on records per report keeps honest data far below it. */
#define DMARC_REPORT_XML_MAX ((size_t)10 << 20)
/* dmarc_report_row_key: a SHA-256 in hex, and its NUL */
#define DMARC_REPORT_KEY_SIZE 65

/* RFC 9990 §3.1.6 policy override types (dmarc_report_override_str gives the schema's words). */
enum dmarc_report_override {
	DMARC_REPORT_OVERRIDE_NONE = 0,
	DMARC_REPORT_OVERRIDE_LOCAL_POLICY,
	DMARC_REPORT_OVERRIDE_MAILING_LIST,
	DMARC_REPORT_OVERRIDE_OTHER,
	DMARC_REPORT_OVERRIDE_POLICY_TEST_MODE,
	DMARC_REPORT_OVERRIDE_TRUSTED_FORWARDER,
};
const char *dmarc_report_override_str(enum dmarc_report_override o);

/* Which identity SPF checked. The schema knows only "mfrom" (§3.1.1.13); a HELO result (the null
 * reverse-path, RFC 9989 §3.2.4) is reported without a scope element. */
enum dmarc_report_scope {
	DMARC_REPORT_SCOPE_MFROM = 0,
	DMARC_REPORT_SCOPE_HELO,
};
const char *dmarc_report_scope_str(enum dmarc_report_scope s);

enum dmarc_report_error {
	DMARC_REPORT_OK = 0,
	DMARC_REPORT_INVALID,  /* an argument or row the caller should not have passed; *error_r says which */
	DMARC_REPORT_TOO_BIG,  /* the result would pass its size limit */
	DMARC_REPORT_NOMEM,
};
const char *dmarc_report_error_str(enum dmarc_report_error e);

/* The DMARC Policy Record as published (policy_published, §3.1.1.5). */
struct dmarc_report_policy {
	enum dmarc_policy p, sp, np; /* as dmarc_record applies them: sp falls back to p, np to sp */
	enum dmarc_align adkim, aspf;
	bool testing;                /* t=y */
	enum dmarc_psd psd;          /* kept for the store; the RFC 9990 schema has no element for it */
	unsigned fo;                 /* enum dmarc_fo bits */
};

struct dmarc_report_dkim {
	char domain[DNS_HOST_SIZE];   /* d= */
	char selector[DNS_HOST_SIZE]; /* s= */
	enum dkim_result result;
};

/* One evaluated message (count 1) or several identical ones. Every string is NUL-terminated
 * within its array; dmarc_report_row_check says whether a row may be stored. */
struct dmarc_report_row {
	int64_t time;                   /* when the message was evaluated (seconds since the epoch) */
	uint32_t count;                 /* messages this row stands for, at least 1 */
	char source_ip[DMARC_REPORT_IP_SIZE]; /* the SMTP client, as text (RFC 3986 §3.2.2 forms) */
	char header_from[DNS_HOST_SIZE];   /* the Author Domain (dmarc_outcome.author_domain) */
	char envelope_from[DNS_HOST_SIZE]; /* RFC5321.MailFrom domain; "" for the null reverse-path */
	char envelope_to[DNS_HOST_SIZE];   /* a recipient's domain; "" leaves envelope_to out */
	char policy_domain[DNS_HOST_SIZE]; /* where the applicable record was found; a host name */
	char org_domain[DNS_HOST_SIZE];    /* the Author Domain's Organizational Domain, "" when unknown */
	struct dmarc_report_policy published;
	enum dmarc_policy policy;          /* the p, sp or np that applied to the Author Domain */
	enum dmarc_policy disposition;     /* what was done with the message */
	/* Why disposition is not what the policy asked for, when the receiver decided so (§3.1.6).
	 * NONE lets the report say it: policy_test_mode under t=y, else local_policy. */
	enum dmarc_report_override override;
	bool dkim_aligned, spf_aligned;    /* the DMARC alignment results (policy_evaluated) */
	/* the SPF result (auth_results/spf); domain "" when SPF was not evaluated */
	char spf_domain[DNS_HOST_SIZE];
	enum dmarc_report_scope spf_scope;
	enum spf_result spf_result;
	size_t dkim_count;
	struct dmarc_report_dkim dkim[DMARC_REPORT_DKIM_MAX];
	/* the rua mailto: mailboxes of the record, in its order (before any §4 check) */
	size_t rua_count;
	char rua[DMARC_REPORT_RUA_MAX][DMARC_REPORT_ADDR_SIZE];
};

/* Zeroes *r and fills what the DMARC evaluation knows: header_from, policy and org domain, the
 * published and applied policy, disposition, alignment, the record's mailto: rua addresses; count 1.
 * The caller adds time, source_ip, envelope_from/to, the SPF result and the DKIM results. Returns
 * false (the message is not reported) when o has no record or the record has no mailto: rua. */
bool dmarc_report_row_fill(struct dmarc_report_row *r, const struct dmarc_outcome *o);

/* Adds one DKIM result, keeping the DMARC_REPORT_DKIM_MAX best in the order of §3.1.3: passing and
 * equal to header_from, passing and within the same organization (org_domain, or header_from when
 * that is unknown), other passes, the rest; equals keep their order. Set header_from (and
 * org_domain) first. Over-long values are cut to the field. */
void dmarc_report_row_add_dkim(struct dmarc_report_row *r, const char *domain, const char *selector,
			       enum dkim_result result);

/* Whether a row may be stored and reported: strings terminated, enums in range, count >= 1, a
 * policy domain that is a host name, 1 to DMARC_REPORT_RUA_MAX rua addresses without control
 * characters. Strings are otherwise not judged: the XML escapes them. */
enum dmarc_report_error dmarc_report_row_check(const struct dmarc_report_row *r, const char **error_r);

/* The grouping key of a row that passes dmarc_report_row_check (see the top of this file): a
 * SHA-256 of the length-prefixed fields, in hex. Rows with equal keys form one <record>; the store
 * groups by it too. */
void dmarc_report_row_key(const struct dmarc_report_row *r, char key_r[DMARC_REPORT_KEY_SIZE]);

/* The words policy_evaluated shows for a row: disposition (§3.1.1.9, the schema's
 * ActionDispositionType: "pass" for a message that passed under an enforcing policy) and the
 * override reason (NONE when there is none to report). */
const char *dmarc_report_row_disposition(const struct dmarc_report_row *r);
enum dmarc_report_override dmarc_report_row_reason(const struct dmarc_report_row *r);

/* A Report-ID from the start of the period and a number unique in the store (report_store's
 * first_id): "<begin>x<serial>", letters and digits only. */
void dmarc_report_id_make(char id_r[DMARC_REPORT_ID_SIZE], int64_t begin, uint64_t serial);
/* Whether id is 1-64 letters and digits. */
bool dmarc_report_id_valid(const char *id);

/* report_metadata (§3.1.1.3) */
struct dmarc_report_meta {
	const char *org_name;           /* the Reporting Organization */
	const char *email;              /* its contact address */
	const char *extra_contact_info; /* NULL to leave it out */
	const char *report_id;          /* dmarc_report_id_valid */
	int64_t begin, end;             /* date_range (§3.1.1.4), seconds since the epoch, begin <= end */
	const char *generator;          /* NULL for "mailwerk <version>" */
};

struct dmarc_report_xml_info {
	size_t records;           /* <record> elements written */
	uint64_t messages;        /* the sum of their counts */
	size_t records_dropped;   /* left out by the size limit */
	uint64_t messages_dropped;
};

/* Builds the <feedback> document (RFC 9990 §3.1.1, namespace urn:ietf:params:xml:ns:dmarc-2.0,
 * UTF-8) for rows[0..n), which must all have the same policy domain (n >= 1, every row passing
 * dmarc_report_row_check). Records follow the order of their first row. Strings are escaped for
 * XML; octets that are not valid UTF-8, control characters and what XML 1.0 cannot carry become
 * U+FFFD. Size rule: when a record would take the document past DMARC_REPORT_XML_MAX, it and the
 * records after it are left out (counted in *info_r; the document stays whole and valid); the first
 * record always fits. *xml_r (NUL-terminated, *len_r octets without the NUL) is the caller's to
 * free. info_r may be NULL. */
enum dmarc_report_error dmarc_report_xml(const struct dmarc_report_meta *meta, const struct dmarc_report_row *rows,
					 size_t n, char **xml_r, size_t *len_r, struct dmarc_report_xml_info *info_r,
					 const char **error_r);

/* The report message (§3.5.2). */
struct dmarc_report_mail {
	const char *from;          /* the reporting mailbox (From:); ASCII local@domain */
	const char *const *to;     /* the verified rua mailboxes (To:), 1 to DMARC_REPORT_RUA_MAX */
	size_t to_count;
	const char *receiver;      /* our host name: Submitter, the file name, Message-ID */
	const char *policy_domain; /* a host name */
	const char *report_id;     /* dmarc_report_id_valid; the same as the XML's */
	int64_t begin, end;        /* the same as the XML's date_range */
	int64_t date;              /* Date: */
};

/* The longest message built: the base64 of a gzip'd report of DMARC_REPORT_XML_MAX octets that
 * does not compress at all, plus headers. */
#define DMARC_REPORT_MESSAGE_MAX ((size_t)16 << 20)

/* Builds the whole RFC 5322 message with CRLF line ends: From, To, Date, Subject "Report Domain:
 * <policy domain> Submitter: <receiver> Report-ID: <id>", Message-ID <<id>.<policy domain>@<receiver>>
 * (so a report sent again has the same one, §3.5.2), MIME-Version, Auto-Submitted (RFC 3834), and a
 * multipart/mixed body: a short text/plain part and xml[0..xml_len) gzip'd (RFC 1952) as an
 * application/gzip attachment named "<receiver>!<policy domain>!<begin>!<end>!<id>.xml.gz", in
 * base64 lines of 76 characters. Addresses must be ASCII mailboxes (RFC 5321 §4.1.2; no SMTPUTF8).
 * *msg_r is the caller's to free. */
enum dmarc_report_error dmarc_report_message(const struct dmarc_report_mail *m, const char *xml, size_t xml_len,
					     char **msg_r, size_t *len_r, const char **error_r);

/* The attachment's file name (§3.5.2), into name_r of size bytes; false when it does not fit or an
 * argument is invalid. */
bool dmarc_report_filename(const struct dmarc_report_mail *m, char *name_r, size_t size);

#endif
