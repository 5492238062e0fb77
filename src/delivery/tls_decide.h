/* tls_decide.h — what TLS one MX host must get before a message goes to it: a pure function of the
 * DNSSEC state of the MX and address answers, the TLSA answer (RFC 7672), the MTA-STS policy and its
 * cache state (RFC 8461), REQUIRETLS and TLS-Required (RFC 8689), [delivery] tls and a per-domain
 * override. No I/O, no allocation, no clock: the lookups, the fetch and the cache live elsewhere and
 * hand their outcome in; the SMTP client carries the decision out.
 *
 * Outcomes (enum tls_decide_action):
 *   SKIP     do not use this MX host; `status` is the 4.x.x to defer with when no other host takes the
 *            message. A TLS-policy failure is always a deferral that tries the next MX, never a bounce:
 *            a recipient fails only at max_queue_lifetime (and, for MTA-STS, only after the TXT record
 *            was looked up again and shows no new policy id, RFC 8461 §5.1). maddy and Stalwart bounce
 *            at the first policy failure; an attacker who can fail one connection should not be able
 *            to bounce mail, and a domain that fixes its policy within the queue lifetime gets it.
 *   CLEAR    no STARTTLS at all.
 *   MAY      STARTTLS when offered, certificate not checked; a failed handshake is tried again in clear.
 *   ENCRYPT  TLS required, certificate not checked; no TLS means this host fails with `status`.
 *   VERIFY   TLS required with a certificate that chains to a trusted root and matches one of `names`
 *            (RFC 6125 DNS-IDs, a wildcard only as the leftmost label); else the host fails with `status`.
 *   DANE     TLS required and authenticated by the `tlsa` records (RFC 7672 §3: usage 3 matches the
 *            leaf, names not checked; usage 2 matches a trust anchor, then the leaf must match `names`);
 *            a DANE failure moves to the next MX and then defers with `status` (4.7.5), and is never
 *            rescued by MTA-STS or by falling back to less (RFC 8461 §2, RFC 7672 §2.2).
 *
 * The table, in the order it is applied. A row with an outcome decides (only rows 22-24 still look at
 * it); "at least X" sets a floor that later rows can raise (MAY < ENCRYPT < VERIFY), never lower. Each
 * row's word is its `reason`; tests/unit/test_tls_decide.c has one test row per line.
 *
 *   The host's DNS (whatever the TLS settings: data that failed validation is not used, RFC 4035 §4.3)
 *    0 mx_host is not a host name                   SKIP 4.3.0  invalid_input
 *    1 MX answer bogus                              SKIP 4.7.5  mx_bogus
 *    2 MX answer lookup error                       SKIP 4.4.3  mx_lookup_error
 *    3 address answer bogus                         SKIP 4.7.5  addr_bogus
 *    4 address answer lookup error                  SKIP 4.4.3  addr_lookup_error
 *   The operator (a [tls_policy] override replaces the published policies for its domain, as Postfix's
 *   policy table does; it does not relax REQUIRETLS, rows 22-24)
 *    5 override none                                CLEAR       override
 *    6 override may                                 MAY         override
 *    7 override encrypt                             ENCRYPT     override
 *    8 override verify                              VERIFY {MX} override
 *    9 override dane-only, DANE usable (row 14)     DANE        override
 *   10 override dane-only, anything else            SKIP 4.7.5  dane_only (the TLSA lookup error of row 13 included)
 *   [delivery] tls = none, and the message
 *   11 [delivery] tls = none                        CLEAR       config_none (DANE and MTA-STS are not
 *      consulted: the operator turned outbound TLS off, as Postfix's security level none does)
 *   12 TLS-Required: no, without REQUIRETLS         MAY         tls_required_no (RFC 8689 §4.2.2: published
 *      policies and tls = required are set aside for this message; the caller honours the field only
 *      from an authenticated sender, and it is ignored when REQUIRETLS is set)
 *   DANE (RFC 7672 §2.2), consulted only when the MX answer AND the host's address answer are secure
 *   (§2.2.1, §2.2.3); otherwise TLSA is not consulted at all and the host is opportunistic as far as
 *   DANE goes (rows 16-24 still apply)
 *   13 TLSA lookup error (SERVFAIL, timeout, bogus)  SKIP 4.7.5  tlsa_lookup_error
 *   14 TLSA secure, one or more usable records      DANE        dane (MTA-STS not consulted, RFC 8461 §2)
 *   15 TLSA secure, none usable                     at least ENCRYPT  tlsa_unusable (usable: usage 2 or
 *      3 (§3.1.3: 0 and 1 are unusable for SMTP), selector 0 or 1, matching type 0, 1 (32 octets) or
 *      2 (64 octets), RFC 6698 §2.1); MTA-STS still applies on top, and can only raise it
 *      TLSA secure NODATA/NXDOMAIN, or insecure      no DANE; on to MTA-STS
 *   MTA-STS (RFC 8461 §5), with the policy fetched now or, while a fetch is pending or has failed, a
 *   cached valid one (§3.3, §5.1: a failed refresh keeps the cached policy; sts_cached is set); mode
 *   none, no policy and no cached one: not consulted
 *   16 enforce, MX matches a pattern (§4.1)          at least VERIFY {MX}  sts_enforce (§4.2)
 *   17 enforce, MX matches no pattern                SKIP 4.7.5  sts_mx_mismatch (§4.1)
 *   18 testing, MX matches no pattern                no change; sts_testing_mismatch set for TLS-RPT
 *   19 testing, MX matches                           no change; sts_testing_verify set: the client checks
 *      the certificate against `names` and reports, but does not enforce (RFC 8461 §5, RFC 8460)
 *   The default
 *   20 [delivery] tls = required                     at least VERIFY {MX}  config_required
 *   21 otherwise                                     MAY         opportunistic
 *   REQUIRETLS (RFC 8689 §4.2.1), applied to the result of rows 5-21: the MX host must be authenticated
 *   (a secure MX answer, or a match with an MTA-STS policy in mode enforce or testing: its mx list is
 *   authenticated by HTTPS in both modes, REQUIRETLS supplies the enforcement) and its certificate
 *   verified (PKIX against the MX name, or DANE)
 *   22 DANE, or VERIFY with the MX authenticated     unchanged
 *   23 MAY or ENCRYPT with the MX authenticated      VERIFY {MX}  requiretls
 *   24 anything else (CLEAR, MX not authenticated)   SKIP 4.7.30  requiretls_unmet
 *   (A SKIP of an earlier row stays as it is, with its own status.)
 *   (Whether the server offers REQUIRETLS is learnt after EHLO, by the SMTP client. When every MX
 *   host of a REQUIRETLS message was refused for REQUIRETLS alone, row 24 or not offered, the pool
 *   returns the message with 5.7.30 rather than defer it: RFC 8689 §4.2.1, delivery/pool.c.)
 *
 * `names` for VERIFY: the MX host name as the MX record gave it (RFC 8461 §4.2; with override verify or
 * tls = required and an insecure MX answer that name is only as good as the DNS, as with Postfix's
 * verify level). For DANE: the TLSA base domain (the name the TLSA records were found at, after a
 * secure CNAME) and the MX host name (RFC 7672 §3.2.2). */
#ifndef MAILWERK_DELIVERY_TLS_DECIDE_H
#define MAILWERK_DELIVERY_TLS_DECIDE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "delivery/mtasts.h"
#include "net/dns_parse.h"

/* Usable TLSA records handed on; more are counted in tlsa_dropped. */
#define TLS_DECIDE_TLSA_MAX 32
#define TLS_DECIDE_NAMES_MAX 2

/* The DNSSEC state of an answer (RFC 4035 §4.3). Zero is insecure: nothing is trusted by default. */
enum tls_decide_dnssec {
	TLS_DECIDE_DNSSEC_INSECURE = 0, /* no chain of trust: unsigned zone, or an upstream that strips */
	TLS_DECIDE_DNSSEC_SECURE,       /* validated in this process, data or proven absence */
	TLS_DECIDE_DNSSEC_BOGUS,        /* validation failed */
	TLS_DECIDE_DNSSEC_ERROR,        /* no answer: SERVFAIL, timeout, resolver trouble */
};
const char *tls_decide_dnssec_str(enum tls_decide_dnssec d);

/* The TLSA lookup at _25._tcp.HOST (RFC 7672 §2.2). Zero means it was not made, which for a host whose
 * MX and address answers are secure is treated as a lookup error: fail closed. */
enum tls_decide_tlsa_state {
	TLS_DECIDE_TLSA_UNKNOWN = 0,
	TLS_DECIDE_TLSA_RECORDS,  /* secure, records in `tlsa` */
	TLS_DECIDE_TLSA_NONE,     /* secure NODATA or NXDOMAIN: proven absent */
	TLS_DECIDE_TLSA_INSECURE, /* an answer without a chain of trust, records or not */
	TLS_DECIDE_TLSA_ERROR,    /* SERVFAIL, timeout, bogus */
};
const char *tls_decide_tlsa_state_str(enum tls_decide_tlsa_state s);

/* Whether a record can authenticate an SMTP server (row 15 of the table). */
bool tls_decide_tlsa_usable(const struct dns_tlsa *r);

/* Where the domain's MTA-STS policy stands. */
enum tls_decide_sts_state {
	TLS_DECIDE_STS_NONE = 0, /* no policy: no TXT record, an unusable one, two of them, or mode none */
	TLS_DECIDE_STS_POLICY,   /* a valid policy, freshly fetched or cached and unexpired */
	TLS_DECIDE_STS_PENDING,  /* a fetch is under way; `sts` is a cached valid policy or NULL */
	TLS_DECIDE_STS_FAILED,   /* the fetch failed; `sts` is a cached valid policy or NULL */
};
const char *tls_decide_sts_state_str(enum tls_decide_sts_state s);

/* [tls_policy] DOMAIN = dane-only | verify | encrypt | may | none */
enum tls_decide_override {
	TLS_DECIDE_OVERRIDE_UNSET = 0,
	TLS_DECIDE_OVERRIDE_DANE_ONLY,
	TLS_DECIDE_OVERRIDE_VERIFY,
	TLS_DECIDE_OVERRIDE_ENCRYPT,
	TLS_DECIDE_OVERRIDE_MAY,
	TLS_DECIDE_OVERRIDE_NONE,
};
const char *tls_decide_override_str(enum tls_decide_override o);

struct tls_decide_input {
	const char *mx_host;   /* the MX record's exchange (or the domain itself for an implicit MX, RFC 5321
				* §5.1): a host name without a trailing dot, as dns_rdata_mx_parse gives it */
	enum tls_decide_dnssec mx_dnssec;   /* the MX answer (for an implicit MX: the NODATA answer) */
	enum tls_decide_dnssec addr_dnssec; /* the A/AAAA answer of mx_host */
	enum tls_decide_tlsa_state tlsa_state;
	const char *tlsa_base; /* where the TLSA records were found (after a secure CNAME), a host name;
				* NULL: mx_host */
	const struct dns_tlsa *tlsa;
	size_t tlsa_count;
	enum tls_decide_sts_state sts_state;
	const struct mtasts_policy *sts; /* see enum tls_decide_sts_state; NULL for none */
	bool requiretls;      /* the message came with REQUIRETLS (RFC 8689 §4) */
	bool tls_required_no; /* the message has "TLS-Required: No" from an authenticated sender (§3, §4.2.2) */
	enum conf_tls_policy global;       /* [delivery] tls */
	enum tls_decide_override override; /* [tls_policy] for the recipient domain */
};

enum tls_decide_action {
	TLS_DECIDE_SKIP = 0,
	TLS_DECIDE_CLEAR,
	TLS_DECIDE_MAY,
	TLS_DECIDE_ENCRYPT,
	TLS_DECIDE_VERIFY,
	TLS_DECIDE_DANE,
};
const char *tls_decide_action_str(enum tls_decide_action a);

/* The row that decided, as a stable word for logs (reason=...). */
enum tls_decide_reason {
	TLS_DECIDE_REASON_INVALID_INPUT = 0, /* mx_host is not a host name */
	TLS_DECIDE_REASON_MX_BOGUS,
	TLS_DECIDE_REASON_MX_LOOKUP_ERROR,
	TLS_DECIDE_REASON_ADDR_BOGUS,
	TLS_DECIDE_REASON_ADDR_LOOKUP_ERROR,
	TLS_DECIDE_REASON_OVERRIDE,
	TLS_DECIDE_REASON_DANE_ONLY,
	TLS_DECIDE_REASON_TLS_REQUIRED_NO,
	TLS_DECIDE_REASON_CONFIG_NONE,
	TLS_DECIDE_REASON_TLSA_LOOKUP_ERROR,
	TLS_DECIDE_REASON_DANE,
	TLS_DECIDE_REASON_TLSA_UNUSABLE,
	TLS_DECIDE_REASON_STS_ENFORCE,
	TLS_DECIDE_REASON_STS_MX_MISMATCH,
	TLS_DECIDE_REASON_CONFIG_REQUIRED,
	TLS_DECIDE_REASON_OPPORTUNISTIC,
	TLS_DECIDE_REASON_REQUIRETLS,
	TLS_DECIDE_REASON_REQUIRETLS_UNMET,
};
const char *tls_decide_reason_str(enum tls_decide_reason r);

/* Which published policy governs the host, in RFC 8460 §4.3's words (policy-type), for TLS-RPT. */
enum tls_decide_policy {
	TLS_DECIDE_POLICY_NONE = 0, /* "no-policy-found" */
	TLS_DECIDE_POLICY_TLSA,     /* "tlsa" */
	TLS_DECIDE_POLICY_STS,      /* "sts" */
};
const char *tls_decide_policy_str(enum tls_decide_policy p);

struct tls_decision {
	enum tls_decide_action action;
	enum tls_decide_reason reason;
	enum tls_decide_policy policy;
	const char *status; /* SKIP: the enhanced status to defer with (RFC 3463); ENCRYPT, VERIFY, DANE:
			     * the one for a failed handshake or check; CLEAR, MAY: NULL */
	const char *why;    /* one sentence for the log and the DSN */
	size_t name_count;  /* VERIFY, DANE; also with sts_testing_verify */
	const char *names[TLS_DECIDE_NAMES_MAX]; /* point into the input's strings */
	size_t tlsa_count;  /* DANE: the usable records, pointing into the input's */
	const struct dns_tlsa *tlsa[TLS_DECIDE_TLSA_MAX];
	size_t tlsa_dropped; /* usable records beyond TLS_DECIDE_TLSA_MAX, not handed on */
	bool sts_cached;     /* the MTA-STS policy used is a cached one (fetch pending or failed) */
	bool sts_testing_mismatch; /* row 18 */
	bool sts_testing_verify;   /* row 19 */
};

/* Decides for one MX host. *out is always filled. Values outside the enums are read as the most
 * cautious neighbour: a DNSSEC or TLSA state as a lookup error, an MTA-STS state as a failed fetch, an
 * override as unset, a [delivery] tls value as required. */
void tls_decide_mx(const struct tls_decide_input *in, struct tls_decision *out);

#endif
