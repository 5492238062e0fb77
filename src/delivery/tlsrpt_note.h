/* tlsrpt_note.h — what one outbound TLS session of MX delivery was, in RFC 8460's terms: the pool
 * calls tlsrpt_note_add() once per outcome (a connection's first result, or a host skipped by its
 * TLS policy before connecting), and the outcome goes into the job's session list
 * (events/tlsrpt_sessions.h), which the runner commits with the job's results. A connection
 * reused for another message had no handshake and is not noted (RFC 8460 §4.1 counts sessions).
 *
 * Which sessions count: only those where TLS was attempted or required. A host our policy sends to
 * in clear (CLEAR: [delivery] tls = none, a [tls_policy] none; an opportunistic retry in clear
 * after a failed handshake) and connections that failed before any TLS question (connect, greeting)
 * are not TLS sessions.
 *
 * Result types (§4.3):
 *   STARTTLS required and not offered, or not offered to an opportunistic client → starttls-not-supported
 *   PKIX verification failed: hostname mismatch → certificate-host-mismatch; expired or not yet
 *   valid → certificate-expired; no chain to a trusted root → certificate-not-trusted; else
 *   validation-failure
 *   DANE: no TLSA record matched the certificate → tlsa-invalid (§4.3.2 "none of the records in
 *   the RRset were found to be valid"); Postfix reports the same case so too
 *   the host skipped because its MX, address or TLSA answer was bogus or the TLSA lookup failed →
 *   dnssec-invalid; [tls_policy] dane-only without usable TLSA → dane-required; an MTA-STS policy
 *   in enforce mode whose mx patterns the host does not match → validation-failure
 *   a handshake that failed otherwise → validation-failure
 *
 * The policy: the caller's when it gives one (policy_type STS with the policy's lines and mx
 * patterns: the MTA-STS code knows them, this file does not), else the decision's: "tlsa" with the
 * host's TLSA records in presentation form and the MX host, or "no-policy-found". */
#ifndef MAILWERK_DELIVERY_TLSRPT_NOTE_H
#define MAILWERK_DELIVERY_TLSRPT_NOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "delivery/client.h"
#include "delivery/host_tls.h"
#include "events/tlsrpt_sessions.h"

struct tlsrpt_note {
	const char *domain;                /* the recipient domain: the policy domain */
	const char *mx_host;               /* the MX host tried */
	const struct host_tls *htls;       /* its TLS decision and TLSA answer */
	enum delivery_tls_policy client_tls; /* what the client was asked to do on this attempt */
	const struct sockaddr *peer;       /* NULL: the host was skipped before connecting */
	const struct delivery_result *r;   /* NULL: the same */
	/* an MTA-STS policy applied to the host, given by the caller: policy_type TLSRPT_POLICY_STS
	 * with its lines (policy-string) and mx patterns (mx-host). TLSRPT_POLICY_NONE: the decision's
	 * own policy as described above. sts_failure: a failure of the policy itself
	 * (sts-policy-fetch-error, sts-policy-invalid, sts-webpki-invalid), or what a policy in mode
	 * testing found and did not enforce (RFC 8461 §5: an MX mismatch or a certificate that did
	 * not verify, reported although the mail went); it is the session's result whenever a
	 * connection was made. SUCCESS when none. */
	enum tlsrpt_policy_type policy_type;
	const char *const *policy_strings;
	size_t policy_string_count;
	const char *const *mx_hosts;
	size_t mx_host_count;
	enum tlsrpt_result sts_failure;
	int64_t now;
};

/* The result type of the session, or false when it is not a TLS session to report. */
bool tlsrpt_note_result(const struct tlsrpt_note *n, enum tlsrpt_result *res_r);

/* Adds the session to l when it is one (see above). false only when out of memory. */
bool tlsrpt_note_add(struct tlsrpt_sessions *l, const struct tlsrpt_note *n);

#endif
