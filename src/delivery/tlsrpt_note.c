/* tlsrpt_note.c — one outbound session's outcome in RFC 8460's terms (see tlsrpt_note.h). */
#include "delivery/tlsrpt_note.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RFC 8460 §4.3.1: the PKIX failures by OpenSSL's verify result */
static enum tlsrpt_result note_pkix(long v)
{
	switch (v) {
	case X509_V_ERR_HOSTNAME_MISMATCH:
		return TLSRPT_RESULT_CERT_HOST_MISMATCH;
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return TLSRPT_RESULT_CERT_EXPIRED;
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_CERT_UNTRUSTED:
		return TLSRPT_RESULT_CERT_NOT_TRUSTED;
	default:
		return TLSRPT_RESULT_VALIDATION_FAILURE;
	}
}

/* A host skipped before connecting: which of its reasons is a TLS failure to report. */
static bool note_skip(const struct tls_decision *d, enum tlsrpt_result *res_r)
{
	switch (d->reason) {
	case TLS_DECIDE_REASON_MX_BOGUS:
	case TLS_DECIDE_REASON_ADDR_BOGUS:
	case TLS_DECIDE_REASON_TLSA_LOOKUP_ERROR:
		*res_r = TLSRPT_RESULT_DNSSEC_INVALID; /* §4.3.2: no valid records from the resolver */
		return true;
	case TLS_DECIDE_REASON_DANE_ONLY:
		*res_r = TLSRPT_RESULT_DANE_REQUIRED;
		return true;
	case TLS_DECIDE_REASON_STS_MX_MISMATCH:
		*res_r = TLSRPT_RESULT_VALIDATION_FAILURE;
		return true;
	default:
		/* no TLS question was asked (lookup errors, REQUIRETLS unmet, bad input) */
		return false;
	}
}

bool tlsrpt_note_result(const struct tlsrpt_note *n, enum tlsrpt_result *res_r)
{
	if (n->htls == NULL || n->domain == NULL)
		return false;
	const struct tls_decision *d = &n->htls->decision;
	if (n->r == NULL)
		return d->action == TLS_DECIDE_SKIP && note_skip(d, res_r);
	if (n->client_tls == DELIVERY_TLS_NONE)
		return false; /* in clear by our own policy: not a TLS session */
	const struct delivery_result *r = n->r;
	if (n->sts_failure != TLSRPT_RESULT_SUCCESS && r->error != DELIVERY_ERR_CONNECT) {
		*res_r = n->sts_failure;
		return true;
	}
	switch (r->error) {
	case DELIVERY_ERR_TLS_UNAVAILABLE:
		*res_r = TLSRPT_RESULT_STARTTLS_NOT_SUPPORTED;
		return true;
	case DELIVERY_ERR_TLS_HANDSHAKE:
		if (n->client_tls == DELIVERY_TLS_DANE)
			*res_r = r->tls_verify_error != 0 ? TLSRPT_RESULT_TLSA_INVALID : TLSRPT_RESULT_VALIDATION_FAILURE;
		else if (r->tls_verify_error != 0)
			*res_r = note_pkix(r->tls_verify_error);
		else
			*res_r = TLSRPT_RESULT_VALIDATION_FAILURE;
		return true;
	case DELIVERY_ERR_CONNECT:
	case DELIVERY_ERR_GREETING:
	case DELIVERY_ERR_HELO:
		return false; /* no TLS question was reached */
	default:
		break;
	}
	if (r->tls) {
		*res_r = TLSRPT_RESULT_SUCCESS;
		return true;
	}
	/* got past EHLO without TLS: an opportunistic client found no STARTTLS (RFC 3207) */
	if (n->client_tls == DELIVERY_TLS_OPPORTUNISTIC && r->esmtp && r->error != DELIVERY_ERR_TIMEOUT &&
	    r->error != DELIVERY_ERR_LOST && r->error != DELIVERY_ERR_PROTOCOL) {
		*res_r = TLSRPT_RESULT_STARTTLS_NOT_SUPPORTED;
		return true;
	}
	return false;
}

bool tlsrpt_note_add(struct tlsrpt_sessions *l, const struct tlsrpt_note *n)
{
	enum tlsrpt_result res;
	if (!tlsrpt_note_result(n, &res))
		return true;
	const struct host_tls *h = n->htls;
	struct tlsrpt_outcome o = {
		.policy_domain = n->domain,
		.result = res,
		.receiving_mx = n->mx_host,
		.time = n->now,
	};
	char ip[INET6_ADDRSTRLEN + 1] = "";
	if (n->peer != NULL) {
		const void *a = n->peer->sa_family == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)n->peer)->sin6_addr
							       : (const void *)&((const struct sockaddr_in *)n->peer)->sin_addr;
		if (inet_ntop(n->peer->sa_family, a, ip, sizeof(ip)) == NULL)
			ip[0] = '\0';
	}
	o.receiving_ip = ip;
	o.sending_ip = n->r != NULL ? n->r->local_ip : "";
	o.additional = n->r != NULL ? n->r->error_text : h->decision.why;
	if (res == TLSRPT_RESULT_STARTTLS_NOT_SUPPORTED && n->r != NULL && n->r->error == DELIVERY_ERR_NONE)
		o.additional = "STARTTLS not offered";
	/* the policy: the caller's MTA-STS one, else the decision's */
	const char *mx[1] = {n->mx_host};
	char **tlsa = NULL;
	size_t tlsa_n = 0;
	if (n->policy_type == TLSRPT_POLICY_STS) {
		o.policy_type = TLSRPT_POLICY_STS;
		o.policy_strings = n->policy_strings;
		o.policy_string_count = n->policy_string_count;
		o.mx_hosts = n->mx_hosts;
		o.mx_host_count = n->mx_host_count;
	} else if (h->decision.policy == TLS_DECIDE_POLICY_TLSA) {
		/* §4.4: policy-string is the TLSA RRset in presentation form; mx-host the MX host */
		o.policy_type = TLSRPT_POLICY_TLSA;
		size_t count = h->record_count < TLSRPT_POLICY_LINES_MAX ? h->record_count : TLSRPT_POLICY_LINES_MAX;
		tlsa = calloc(count > 0 ? count : 1, sizeof(*tlsa));
		if (tlsa == NULL)
			return false;
		for (size_t i = 0; i < count; i++) {
			const struct dns_tlsa *t = &h->records[i];
			size_t len = t->len < 512 ? t->len : 512;
			if ((tlsa[i] = malloc(16 + 2 * len)) == NULL)
				break;
			dns_tlsa_text(t, len, tlsa[i], 16 + 2 * len);
			tlsa_n++;
		}
		o.policy_strings = (const char *const *)tlsa;
		o.policy_string_count = tlsa_n;
		o.mx_hosts = mx;
		o.mx_host_count = 1;
	} else {
		o.policy_type = TLSRPT_POLICY_NONE;
	}
	bool ok = tlsrpt_sessions_add(l, &o);
	for (size_t i = 0; i < tlsa_n; i++)
		free(tlsa[i]);
	free(tlsa);
	return ok;
}
