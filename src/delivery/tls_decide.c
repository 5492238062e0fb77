/* tls_decide.c — the per-MX TLS decision; the table it follows is at the top of tls_decide.h. */
#include "delivery/tls_decide.h"

#include <string.h>

#define TLS_DECIDE_STATUS_CRYPTO "4.7.5"     /* RFC 3463 X.7.5: cryptographic failure */
#define TLS_DECIDE_STATUS_DNS "4.4.3"        /* RFC 3463 X.4.3: directory server failure */
#define TLS_DECIDE_STATUS_REQUIRETLS "4.7.30" /* RFC 8689 §7 registers X.7.30, REQUIRETLS support required */
#define TLS_DECIDE_STATUS_OTHER "4.3.0"      /* RFC 3463 X.3.0: other mail system status */

const char *tls_decide_dnssec_str(enum tls_decide_dnssec d)
{
	switch (d) {
	case TLS_DECIDE_DNSSEC_INSECURE: return "insecure";
	case TLS_DECIDE_DNSSEC_SECURE: return "secure";
	case TLS_DECIDE_DNSSEC_BOGUS: return "bogus";
	case TLS_DECIDE_DNSSEC_ERROR: return "error";
	}
	return "?";
}

const char *tls_decide_tlsa_state_str(enum tls_decide_tlsa_state s)
{
	switch (s) {
	case TLS_DECIDE_TLSA_UNKNOWN: return "unknown";
	case TLS_DECIDE_TLSA_RECORDS: return "records";
	case TLS_DECIDE_TLSA_NONE: return "none";
	case TLS_DECIDE_TLSA_INSECURE: return "insecure";
	case TLS_DECIDE_TLSA_ERROR: return "error";
	}
	return "?";
}

const char *tls_decide_sts_state_str(enum tls_decide_sts_state s)
{
	switch (s) {
	case TLS_DECIDE_STS_NONE: return "none";
	case TLS_DECIDE_STS_POLICY: return "policy";
	case TLS_DECIDE_STS_PENDING: return "pending";
	case TLS_DECIDE_STS_FAILED: return "failed";
	}
	return "?";
}

const char *tls_decide_override_str(enum tls_decide_override o)
{
	switch (o) {
	case TLS_DECIDE_OVERRIDE_UNSET: return "unset";
	case TLS_DECIDE_OVERRIDE_DANE_ONLY: return "dane-only";
	case TLS_DECIDE_OVERRIDE_VERIFY: return "verify";
	case TLS_DECIDE_OVERRIDE_ENCRYPT: return "encrypt";
	case TLS_DECIDE_OVERRIDE_MAY: return "may";
	case TLS_DECIDE_OVERRIDE_NONE: return "none";
	}
	return "?";
}

const char *tls_decide_action_str(enum tls_decide_action a)
{
	switch (a) {
	case TLS_DECIDE_SKIP: return "skip";
	case TLS_DECIDE_CLEAR: return "clear";
	case TLS_DECIDE_MAY: return "may";
	case TLS_DECIDE_ENCRYPT: return "encrypt";
	case TLS_DECIDE_VERIFY: return "verify";
	case TLS_DECIDE_DANE: return "dane";
	}
	return "?";
}

const char *tls_decide_reason_str(enum tls_decide_reason r)
{
	switch (r) {
	case TLS_DECIDE_REASON_INVALID_INPUT: return "invalid_input";
	case TLS_DECIDE_REASON_MX_BOGUS: return "mx_bogus";
	case TLS_DECIDE_REASON_MX_LOOKUP_ERROR: return "mx_lookup_error";
	case TLS_DECIDE_REASON_ADDR_BOGUS: return "addr_bogus";
	case TLS_DECIDE_REASON_ADDR_LOOKUP_ERROR: return "addr_lookup_error";
	case TLS_DECIDE_REASON_OVERRIDE: return "override";
	case TLS_DECIDE_REASON_DANE_ONLY: return "dane_only";
	case TLS_DECIDE_REASON_TLS_REQUIRED_NO: return "tls_required_no";
	case TLS_DECIDE_REASON_CONFIG_NONE: return "config_none";
	case TLS_DECIDE_REASON_TLSA_LOOKUP_ERROR: return "tlsa_lookup_error";
	case TLS_DECIDE_REASON_DANE: return "dane";
	case TLS_DECIDE_REASON_TLSA_UNUSABLE: return "tlsa_unusable";
	case TLS_DECIDE_REASON_STS_ENFORCE: return "sts_enforce";
	case TLS_DECIDE_REASON_STS_MX_MISMATCH: return "sts_mx_mismatch";
	case TLS_DECIDE_REASON_CONFIG_REQUIRED: return "config_required";
	case TLS_DECIDE_REASON_OPPORTUNISTIC: return "opportunistic";
	case TLS_DECIDE_REASON_REQUIRETLS: return "requiretls";
	case TLS_DECIDE_REASON_REQUIRETLS_UNMET: return "requiretls_unmet";
	}
	return "?";
}

const char *tls_decide_policy_str(enum tls_decide_policy p)
{
	switch (p) {
	case TLS_DECIDE_POLICY_NONE: return "no-policy-found";
	case TLS_DECIDE_POLICY_TLSA: return "tlsa";
	case TLS_DECIDE_POLICY_STS: return "sts";
	}
	return "?";
}

bool tls_decide_tlsa_usable(const struct dns_tlsa *r)
{
	/* RFC 7672 §3.1: only DANE-TA(2) and DANE-EE(3) serve SMTP; PKIX-TA(0) and PKIX-EE(1) are unusable
	 * (§3.1.3) */
	if (r->usage != 2 && r->usage != 3)
		return false;
	/* RFC 6698 §2.1.2: Cert(0) or SubjectPublicKeyInfo(1) */
	if (r->selector > 1)
		return false;
	if (r->data == NULL && r->len > 0)
		return false;
	/* RFC 6698 §2.1.3: Full(0), SHA2-256(1), SHA2-512(2); a digest of the wrong length cannot match
	 * anything: the record is malformed, and so unusable */
	switch (r->mtype) {
	case 0: return r->len > 0;
	case 1: return r->len == 32;
	case 2: return r->len == 64;
	}
	return false;
}

/* Values outside the enums, read as their most cautious neighbour (see tls_decide_mx). */
static enum tls_decide_dnssec tls_decide_dnssec_norm(enum tls_decide_dnssec d)
{
	return d <= TLS_DECIDE_DNSSEC_ERROR ? d : TLS_DECIDE_DNSSEC_ERROR;
}

static bool tls_decide_host_ok(const char *h)
{
	return h != NULL && dns_host_valid(h);
}

static void tls_decide_set(struct tls_decision *out, enum tls_decide_action a, enum tls_decide_reason r,
			   const char *status, const char *why)
{
	out->action = a;
	out->reason = r;
	out->status = status;
	out->why = why;
}

/* "At least a": a floor that later rows can raise, never lower. */
static void tls_decide_raise(struct tls_decision *out, enum tls_decide_action a, enum tls_decide_reason r,
			     const char *why)
{
	if (a > out->action)
		tls_decide_set(out, a, r, TLS_DECIDE_STATUS_CRYPTO, why);
}

static void tls_decide_names_mx(struct tls_decision *out, const struct tls_decide_input *in)
{
	out->names[0] = in->mx_host;
	out->name_count = 1;
}

/* RFC 7672 §3.2.2: the TLSA base domain, and the MX host name when it differs. */
static void tls_decide_names_dane(struct tls_decision *out, const struct tls_decide_input *in)
{
	out->name_count = 0;
	if (in->tlsa_base != NULL && strcmp(in->tlsa_base, in->mx_host) != 0)
		out->names[out->name_count++] = in->tlsa_base;
	out->names[out->name_count++] = in->mx_host;
}

enum tls_decide_dane_result {
	TLS_DECIDE_DANE_NOT_APPLICABLE, /* MX or address answer not secure, or no TLSA proven */
	TLS_DECIDE_DANE_ERROR,          /* row 13 */
	TLS_DECIDE_DANE_USABLE,         /* row 14 */
	TLS_DECIDE_DANE_UNUSABLE,       /* row 15 */
};

/* Rows 13-15. On USABLE the usable records are in out->tlsa. */
static enum tls_decide_dane_result tls_decide_dane_eval(const struct tls_decide_input *in, struct tls_decision *out)
{
	/* RFC 7672 §2.2.1, §2.2.3: TLSA only for a host reached through secure MX and address answers; an
	 * insecure one could have been forged to lead anywhere, so its TLSA records prove nothing */
	if (tls_decide_dnssec_norm(in->mx_dnssec) != TLS_DECIDE_DNSSEC_SECURE ||
	    tls_decide_dnssec_norm(in->addr_dnssec) != TLS_DECIDE_DNSSEC_SECURE)
		return TLS_DECIDE_DANE_NOT_APPLICABLE;
	switch (in->tlsa_state) {
	case TLS_DECIDE_TLSA_NONE:
	case TLS_DECIDE_TLSA_INSECURE:
		return TLS_DECIDE_DANE_NOT_APPLICABLE; /* §2.2: no secure TLSA records, no DANE */
	case TLS_DECIDE_TLSA_RECORDS:
		break;
	case TLS_DECIDE_TLSA_UNKNOWN:
	case TLS_DECIDE_TLSA_ERROR:
	default:
		/* §2.2: a TLSA lookup that fails may be an attacker hiding the records; delivering without
		 * them would be the downgrade DANE exists to stop */
		return TLS_DECIDE_DANE_ERROR;
	}
	size_t n = in->tlsa != NULL ? in->tlsa_count : 0;
	out->tlsa_count = 0;
	out->tlsa_dropped = 0;
	for (size_t i = 0; i < n; i++) {
		if (!tls_decide_tlsa_usable(&in->tlsa[i]))
			continue;
		if (out->tlsa_count < TLS_DECIDE_TLSA_MAX)
			out->tlsa[out->tlsa_count++] = &in->tlsa[i];
		else
			out->tlsa_dropped++;
	}
	return out->tlsa_count > 0 ? TLS_DECIDE_DANE_USABLE : TLS_DECIDE_DANE_UNUSABLE;
}

/* The MTA-STS policy that applies, NULL for none (see enum tls_decide_sts_state). */
static const struct mtasts_policy *tls_decide_sts_policy(const struct tls_decide_input *in, bool *cached_r)
{
	*cached_r = false;
	if (in->sts == NULL || in->sts_state == TLS_DECIDE_STS_NONE)
		return NULL;
	/* RFC 8461 §3.3, §5.1: while a refresh is pending or after it failed, a cached policy that has not
	 * expired still applies; the caller hands in only such a one */
	*cached_r = in->sts_state != TLS_DECIDE_STS_POLICY;
	/* §5: mode none is "no policy" */
	return in->sts->mode == MTASTS_MODE_NONE ? NULL : in->sts;
}

static void tls_decide_by_override(const struct tls_decide_input *in, struct tls_decision *out)
{
	switch (in->override) {
	case TLS_DECIDE_OVERRIDE_NONE:
		tls_decide_set(out, TLS_DECIDE_CLEAR, TLS_DECIDE_REASON_OVERRIDE, NULL, "[tls_policy] none for this domain");
		return;
	case TLS_DECIDE_OVERRIDE_MAY:
		tls_decide_set(out, TLS_DECIDE_MAY, TLS_DECIDE_REASON_OVERRIDE, NULL, "[tls_policy] may for this domain");
		return;
	case TLS_DECIDE_OVERRIDE_ENCRYPT:
		tls_decide_set(out, TLS_DECIDE_ENCRYPT, TLS_DECIDE_REASON_OVERRIDE, TLS_DECIDE_STATUS_CRYPTO,
			       "[tls_policy] encrypt for this domain");
		return;
	case TLS_DECIDE_OVERRIDE_VERIFY:
		tls_decide_set(out, TLS_DECIDE_VERIFY, TLS_DECIDE_REASON_OVERRIDE, TLS_DECIDE_STATUS_CRYPTO,
			       "[tls_policy] verify for this domain");
		tls_decide_names_mx(out, in);
		return;
	case TLS_DECIDE_OVERRIDE_DANE_ONLY:
		switch (tls_decide_dane_eval(in, out)) {
		case TLS_DECIDE_DANE_USABLE:
			tls_decide_set(out, TLS_DECIDE_DANE, TLS_DECIDE_REASON_OVERRIDE, TLS_DECIDE_STATUS_CRYPTO,
				       "[tls_policy] dane-only for this domain, and the host has usable TLSA records");
			out->policy = TLS_DECIDE_POLICY_TLSA;
			tls_decide_names_dane(out, in);
			return;
		case TLS_DECIDE_DANE_ERROR:
			out->tlsa_count = 0;
			tls_decide_set(out, TLS_DECIDE_SKIP, TLS_DECIDE_REASON_DANE_ONLY, TLS_DECIDE_STATUS_CRYPTO,
				       "[tls_policy] dane-only, and the TLSA lookup failed");
			return;
		case TLS_DECIDE_DANE_UNUSABLE:
		case TLS_DECIDE_DANE_NOT_APPLICABLE:
			out->tlsa_count = 0;
			out->tlsa_dropped = 0;
			tls_decide_set(out, TLS_DECIDE_SKIP, TLS_DECIDE_REASON_DANE_ONLY, TLS_DECIDE_STATUS_CRYPTO,
				       "[tls_policy] dane-only, and the host has no usable TLSA records behind secure "
				       "MX and address answers");
			return;
		}
		return;
	case TLS_DECIDE_OVERRIDE_UNSET:
	default:
		return;
	}
}

/* Rows 13-21: the published policies and [delivery] tls = opportunistic or required. */
static void tls_decide_published(const struct tls_decide_input *in, struct tls_decision *out)
{
	/* row 21, the floor everything else raises */
	tls_decide_set(out, TLS_DECIDE_MAY, TLS_DECIDE_REASON_OPPORTUNISTIC, NULL,
		       "no DANE or MTA-STS policy applies: STARTTLS when offered, certificate not checked");

	switch (tls_decide_dane_eval(in, out)) {
	case TLS_DECIDE_DANE_ERROR:
		tls_decide_set(out, TLS_DECIDE_SKIP, TLS_DECIDE_REASON_TLSA_LOOKUP_ERROR, TLS_DECIDE_STATUS_CRYPTO,
			       "the TLSA lookup for a host behind secure DNS failed (RFC 7672 §2.2)");
		out->policy = TLS_DECIDE_POLICY_TLSA;
		return;
	case TLS_DECIDE_DANE_USABLE:
		/* RFC 8461 §2: DANE wins, MTA-STS is not consulted; an MX missing from the domain's mx
		 * patterns is still used, since its name came from a signed answer and its TLSA records
		 * authenticate it, which is what the mx list would have done */
		tls_decide_set(out, TLS_DECIDE_DANE, TLS_DECIDE_REASON_DANE, TLS_DECIDE_STATUS_CRYPTO,
			       "the host has usable TLSA records behind secure DNS (RFC 7672)");
		out->policy = TLS_DECIDE_POLICY_TLSA;
		tls_decide_names_dane(out, in);
		return;
	case TLS_DECIDE_DANE_UNUSABLE:
		/* RFC 7672 §2.2: TLSA records exist, so the server promised TLS, but none can authenticate it */
		tls_decide_raise(out, TLS_DECIDE_ENCRYPT, TLS_DECIDE_REASON_TLSA_UNUSABLE,
				 "the host's TLSA records are all unusable: TLS required, certificate not checked "
				 "(RFC 7672 §2.2)");
		out->policy = TLS_DECIDE_POLICY_TLSA;
		break;
	case TLS_DECIDE_DANE_NOT_APPLICABLE:
		break;
	}

	bool cached;
	const struct mtasts_policy *sts = tls_decide_sts_policy(in, &cached);
	if (sts != NULL) {
		bool match = mtasts_policy_mx_match(sts, in->mx_host);
		out->sts_cached = cached;
		out->policy = TLS_DECIDE_POLICY_STS;
		if (sts->mode == MTASTS_MODE_ENFORCE && !match) {
			/* §4.1: a host the policy does not name is not a valid MX for the domain */
			out->tlsa_count = 0;
			tls_decide_set(out, TLS_DECIDE_SKIP, TLS_DECIDE_REASON_STS_MX_MISMATCH, TLS_DECIDE_STATUS_CRYPTO,
				       "the MX host matches none of the domain's MTA-STS mx patterns (RFC 8461 §4.1)");
			return;
		}
		if (sts->mode == MTASTS_MODE_ENFORCE) {
			/* §4.2: a certificate valid for the MX host name */
			tls_decide_raise(out, TLS_DECIDE_VERIFY, TLS_DECIDE_REASON_STS_ENFORCE,
					 "MTA-STS enforce: TLS with a certificate verified for the MX host (RFC 8461 §4.2)");
			tls_decide_names_mx(out, in);
		} else if (!match) {
			out->sts_testing_mismatch = true; /* §5: testing reports, it does not refuse */
		} else {
			out->sts_testing_verify = true;
			if (out->name_count == 0)
				tls_decide_names_mx(out, in);
		}
	}

	if (in->global != CONF_TLS_OPPORTUNISTIC) { /* required, or a value outside the enum */
		if (out->action < TLS_DECIDE_VERIFY)
			tls_decide_names_mx(out, in);
		tls_decide_raise(out, TLS_DECIDE_VERIFY, TLS_DECIDE_REASON_CONFIG_REQUIRED,
				 "[delivery] tls = required: TLS with a certificate verified for the MX host");
	}
}

/* Rows 22-24: RFC 8689 §4.2.1. */
static void tls_decide_requiretls(const struct tls_decide_input *in, struct tls_decision *out)
{
	if (out->action == TLS_DECIDE_SKIP || out->action == TLS_DECIDE_DANE)
		return;
	bool cached;
	const struct mtasts_policy *sts = tls_decide_sts_policy(in, &cached);
	bool mx_auth = tls_decide_dnssec_norm(in->mx_dnssec) == TLS_DECIDE_DNSSEC_SECURE ||
		       (sts != NULL && mtasts_policy_mx_match(sts, in->mx_host));
	if (!mx_auth || out->action == TLS_DECIDE_CLEAR) {
		out->tlsa_count = 0;
		out->name_count = 0;
		tls_decide_set(out, TLS_DECIDE_SKIP, TLS_DECIDE_REASON_REQUIRETLS_UNMET, TLS_DECIDE_STATUS_REQUIRETLS,
			       out->action == TLS_DECIDE_CLEAR
				       ? "the message requires TLS (REQUIRETLS) and TLS is turned off for this host"
				       : "the message requires TLS (REQUIRETLS) and the MX host is authenticated neither by "
					 "DNSSEC nor by an MTA-STS policy (RFC 8689 §4.2.1)");
		return;
	}
	if (out->action == TLS_DECIDE_VERIFY)
		return;
	tls_decide_set(out, TLS_DECIDE_VERIFY, TLS_DECIDE_REASON_REQUIRETLS, TLS_DECIDE_STATUS_CRYPTO,
		       "the message requires TLS (REQUIRETLS): a certificate verified for the MX host (RFC 8689 §4.2.1)");
	tls_decide_names_mx(out, in);
}

void tls_decide_mx(const struct tls_decide_input *in, struct tls_decision *out)
{
	memset(out, 0, sizeof(*out));

	/* row 0 */
	if (!tls_decide_host_ok(in->mx_host) || (in->tlsa_base != NULL && !tls_decide_host_ok(in->tlsa_base))) {
		tls_decide_set(out, TLS_DECIDE_SKIP, TLS_DECIDE_REASON_INVALID_INPUT, TLS_DECIDE_STATUS_OTHER,
			       "the MX or TLSA base name is not a host name");
		return;
	}
	/* rows 1-4: RFC 4035 §4.3, RFC 7672 §2.1.1: bogus data is not used; a lookup that failed leaves
	 * nothing to use */
	switch (tls_decide_dnssec_norm(in->mx_dnssec)) {
	case TLS_DECIDE_DNSSEC_BOGUS:
		tls_decide_set(out, TLS_DECIDE_SKIP, TLS_DECIDE_REASON_MX_BOGUS, TLS_DECIDE_STATUS_CRYPTO,
			       "the MX answer failed DNSSEC validation");
		return;
	case TLS_DECIDE_DNSSEC_ERROR:
		tls_decide_set(out, TLS_DECIDE_SKIP, TLS_DECIDE_REASON_MX_LOOKUP_ERROR, TLS_DECIDE_STATUS_DNS,
			       "the MX lookup failed");
		return;
	default:
		break;
	}
	switch (tls_decide_dnssec_norm(in->addr_dnssec)) {
	case TLS_DECIDE_DNSSEC_BOGUS:
		tls_decide_set(out, TLS_DECIDE_SKIP, TLS_DECIDE_REASON_ADDR_BOGUS, TLS_DECIDE_STATUS_CRYPTO,
			       "the MX host's address answer failed DNSSEC validation");
		return;
	case TLS_DECIDE_DNSSEC_ERROR:
		tls_decide_set(out, TLS_DECIDE_SKIP, TLS_DECIDE_REASON_ADDR_LOOKUP_ERROR, TLS_DECIDE_STATUS_DNS,
			       "the MX host's address lookup failed");
		return;
	default:
		break;
	}

	/* rows 5-10 */
	tls_decide_by_override(in, out);
	if (out->why == NULL) {
		if (in->global == CONF_TLS_NONE) /* row 11 */
			tls_decide_set(out, TLS_DECIDE_CLEAR, TLS_DECIDE_REASON_CONFIG_NONE, NULL, "[delivery] tls = none");
		else if (in->tls_required_no && !in->requiretls) /* row 12: RFC 8689 §4.2.2 */
			tls_decide_set(out, TLS_DECIDE_MAY, TLS_DECIDE_REASON_TLS_REQUIRED_NO, NULL,
				       "the message has TLS-Required: No; DANE and MTA-STS are set aside for it (RFC 8689 §4.2.2)");
		else /* rows 13-21 */
			tls_decide_published(in, out);
	}
	if (in->requiretls) /* rows 22-24 */
		tls_decide_requiretls(in, out);
	if (out->action != TLS_DECIDE_DANE) {
		out->tlsa_count = 0;
		out->tlsa_dropped = 0;
	}
	if (out->action == TLS_DECIDE_SKIP || out->action == TLS_DECIDE_CLEAR) {
		out->name_count = 0;
		out->sts_testing_verify = false;
	}
}
