/* received_json.h — a received email as the API and its webhook show it, in the shapes of the
 * official Resend SDK: the summary (ListReceivingEmail, kept in the store's row), the email
 * (GetReceivingEmailResponseSuccess) and the email.received event (EmailReceivedEvent). mailwerk
 * adds, without changing Resend's members: "authentication" (what our MX found of SPF, DKIM and
 * DMARC), "in_reply_to" and "references" (for threading a reply) and each attachment's "size" in
 * the event. Pure: no I/O. */
#ifndef MAILWERK_INBOUND_RECEIVED_JSON_H
#define MAILWERK_INBOUND_RECEIVED_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "inbound/received_view.h"

/* The results of the Authentication-Results field (RFC 8601) that our MX put on the message. */
struct received_auth {
	char spf[16], dkim[16], dmarc[16]; /* RFC 8601 §2.7 result words; "" when the field has none */
};

/* The results of the first Authentication-Results field of v whose authserv-id is hostname
 * (case-insensitive, RFC 8601 §2.5). Of several dkim results, "pass" wins (one valid signature is
 * enough, RFC 6376 §6.1), else the first. false when there is no such field. */
bool received_auth_read(const struct received_view *v, const char *hostname, struct received_auth *a_r);

/* The summary of v, stored as the copy id for the envelope recipient rcpt at created_ms; auth NULL
 * when the MX did not check (then "authentication" is null). NULL when out of memory. */
json_t *received_summary_json(const struct received_view *v, const char *id, int64_t created_ms, const char *rcpt,
			      const struct received_auth *auth);

/* The email.received body ({type, created_at, data}) for a summary; malloc'd compact JSON, NULL
 * when out of memory. */
char *received_event_json(const json_t *summary, int64_t now_ms);

/* The email of GET /emails/receiving/{id}: the summary with object, html, text, headers (each
 * field's name and the value of its first occurrence) and raw ({download_url, expires_at}, null
 * when raw_url is NULL). Unless cid, an inline image the html names by "cid:" (RFC 2392) is put in
 * as a data: URI (RFC 2397) of the attachment, read from raw (len octets) under lim, as Resend does
 * by default; each image once, and the URIs together at most 4 times the message's size (a
 * reference past that stays "cid:"). NULL when out of memory. */
json_t *received_email_json(const json_t *summary, const struct received_view *v, const char *raw, size_t len,
			    const struct received_view_limits *lim, bool cid, const char *raw_url, int64_t expires_ms);

#endif
