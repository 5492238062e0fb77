/* dmarc_report_dest.h — RFC 9990 §4 "Verifying External Destinations": whether a rua mailbox
 * outside the policy domain's organization has agreed to receive its reports, so that a DMARC
 * record cannot turn receivers into a flood aimed at someone else. A pure state machine on the step
 * protocol of auth_dns.h, like the DMARC evaluators.
 *
 * Organization, kept simple: no tree walk is done for the destination. The policy domain's
 * Organizational Domain is the one the DMARC evaluation found for the Author Domain
 * (dmarc_outcome.org_domain, kept in the report row), and a destination is internal (no check)
 * - when that is known and holds the policy domain: if the destination is it or below it;
 * - when it is known but the policy domain lies above it (a PSD's record, RFC 9989 §4.10.2 step 2,
 *   whose names below belong to other organizations): only if the destination is the policy
 *   domain itself;
 * - when it is not known (the evaluation needed no walk, so the record is the Author Domain's own):
 *   if the destination is the policy domain or below it.
 * A destination below the organization is taken to share it (a psd=n record in between would make
 * it its own; that is not looked up). A destination the evaluation could not place is checked:
 * that costs one question and at worst drops a destination RFC 9990 would not have checked, never
 * the other way round.
 *
 * The check (§4 steps 1-9), for each external destination:
 * - the name is "<policy domain>._report._dmarc.<destination domain>" (A-labels; the policy domain
 *   is already in DMARC's normal form); longer than DNS allows → not verified (step 4);
 * - TXT records there that start with v=DMARC1 (the DMARC Policy Record syntax, §4.7 of RFC 9989)
 *   authorize the destination; none → not verified; a failed question → tempfail (step 5: the
 *   caller may try again later or leave the destination out for this report);
 * - step 9: when that record has a rua with mailto: URIs, they replace the destination — but only
 *   if every one of them is at the same destination host; otherwise neither the original nor the
 *   override receives reports. URIs of other schemes in it are not used (we send by mail only).
 * Destinations with the same domain share one question. Addresses that are not ASCII mailboxes at a
 * host name are refused (reports are sent without SMTPUTF8). */
#ifndef MAILWERK_REPORT_DMARC_REPORT_DEST_H
#define MAILWERK_REPORT_DMARC_REPORT_DEST_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/auth_dns.h"
#include "report/dmarc_report.h"

/* Destinations checked per report (the rest are ignored), and addresses that may come out of them
 * after overrides: "up to the Receiver's limits on supported URIs" (§3.5). */
#define DMARC_REPORT_DEST_MAX DMARC_REPORT_RUA_MAX

enum dmarc_report_dest_status {
	DMARC_REPORT_DEST_INTERNAL = 0, /* within the policy domain's organization: allowed, not asked */
	DMARC_REPORT_DEST_CHECK,        /* external: the TXT question below decides */
	DMARC_REPORT_DEST_VERIFIED,     /* external, authorized by a v=DMARC1 record */
	DMARC_REPORT_DEST_UNVERIFIED,   /* external, no such record: not allowed */
	DMARC_REPORT_DEST_TEMPFAIL,     /* the question failed: not allowed now */
	DMARC_REPORT_DEST_FOREIGN_OVERRIDE, /* the record's rua is at another host: neither is allowed */
	DMARC_REPORT_DEST_INVALID,      /* not a usable address, or a name too long to ask */
};
const char *dmarc_report_dest_status_str(enum dmarc_report_dest_status s);

/* Classifies one address for a policy domain (and its Organizational Domain, "" or NULL when
 * unknown): INTERNAL, CHECK (name_r, DNS_HOST_SIZE octets, is the TXT name to ask) or INVALID
 * (*error_r says why). */
enum dmarc_report_dest_status dmarc_report_dest_classify(const char *policy_domain, const char *org_domain,
							 const char *addr, char *name_r, const char **error_r);

struct dmarc_report_dests;

/* For addrs[0..n) (the first DMARC_REPORT_DEST_MAX; copied). NULL when out of memory or when
 * policy_domain is not a host name. */
struct dmarc_report_dests *dmarc_report_dests_new(const char *policy_domain, const char *org_domain,
						  const char *const *addrs, size_t n);
/* auth_step_fn: one TXT question per distinct external destination domain. */
enum auth_step dmarc_report_dests_step(void *d, const struct dns_result *answer, struct auth_query *q_r);

/* After AUTH_STEP_DONE: the outcome for input i (i < the n given, at most DMARC_REPORT_DEST_MAX),
 * with a sentence for logs. */
size_t dmarc_report_dests_count(const struct dmarc_report_dests *d);
enum dmarc_report_dest_status dmarc_report_dests_status(const struct dmarc_report_dests *d, size_t i,
							const char **why_r);
/* The mailboxes a report may go to, in input order, overrides applied, duplicates removed, at most
 * DMARC_REPORT_DEST_MAX: the To of dmarc_report_message. Valid while d lives. */
size_t dmarc_report_dests_allowed(const struct dmarc_report_dests *d, const char *const **addrs_r);
/* Whether some destination failed only for a DNS failure (the caller may want to try again). */
bool dmarc_report_dests_tempfail(const struct dmarc_report_dests *d);
void dmarc_report_dests_free(struct dmarc_report_dests *d);

#endif
