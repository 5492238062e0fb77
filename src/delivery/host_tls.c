/* host_tls.c — from a TLSA answer and DNSSEC states to the SMTP client's TLS policy for one host. */
#include "delivery/host_tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool host_tls_wants_tlsa(const struct host_tls_params *p, char *name_r, size_t name_size)
{
	if (p->literal || !p->validating || !p->mx_secure || !p->addr_secure)
		return false;
	int n = snprintf(name_r, name_size, "_%u._tcp.%s", p->port, p->host);
	return n > 0 && (size_t)n < name_size;
}

/* RFC 7672 §2.2: what the TLSA answer says, in the decision's terms */
static enum tls_decide_tlsa_state host_tls_tlsa_state(const struct dns_result *r)
{
	if (r == NULL)
		return TLS_DECIDE_TLSA_UNKNOWN;
	switch (r->status) {
	case DNS_STATUS_OK:
		return r->secure ? TLS_DECIDE_TLSA_RECORDS : TLS_DECIDE_TLSA_INSECURE;
	case DNS_STATUS_NXDOMAIN:
	case DNS_STATUS_NODATA:
		return r->secure ? TLS_DECIDE_TLSA_NONE : TLS_DECIDE_TLSA_INSECURE;
	case DNS_STATUS_TEMPFAIL:
	case DNS_STATUS_BOGUS:
		break;
	}
	return TLS_DECIDE_TLSA_ERROR;
}

static enum tls_decide_override host_tls_override(enum conf_tls_override o)
{
	switch (o) {
	case CONF_TLS_OVERRIDE_DANE_ONLY: return TLS_DECIDE_OVERRIDE_DANE_ONLY;
	case CONF_TLS_OVERRIDE_VERIFY: return TLS_DECIDE_OVERRIDE_VERIFY;
	case CONF_TLS_OVERRIDE_ENCRYPT: return TLS_DECIDE_OVERRIDE_ENCRYPT;
	case CONF_TLS_OVERRIDE_MAY: return TLS_DECIDE_OVERRIDE_MAY;
	case CONF_TLS_OVERRIDE_NONE: return TLS_DECIDE_OVERRIDE_NONE;
	}
	return TLS_DECIDE_OVERRIDE_UNSET;
}

/* Copies the records of r (and their data) into h. */
static bool host_tls_copy_records(struct host_tls *h, const struct dns_result *r)
{
	if (r == NULL || r->status != DNS_STATUS_OK || r->tlsas == NULL || r->count == 0)
		return true;
	size_t total = 0;
	for (size_t i = 0; i < r->count; i++)
		total += r->tlsas[i].len;
	h->records = calloc(r->count, sizeof(*h->records));
	h->data = malloc(total > 0 ? total : 1);
	if (h->records == NULL || h->data == NULL)
		return false;
	for (size_t i = 0, off = 0; i < r->count; i++) {
		h->records[i] = r->tlsas[i];
		memcpy(h->data + off, r->tlsas[i].data, r->tlsas[i].len);
		h->records[i].data = h->data + off;
		off += r->tlsas[i].len;
	}
	h->record_count = r->count;
	return true;
}

struct host_tls *host_tls_decide(const struct host_tls_params *p, const struct dns_result *tlsa)
{
	struct host_tls *h = calloc(1, sizeof(*h));
	if (h == NULL)
		return NULL;
	if (!host_tls_copy_records(h, tlsa)) {
		host_tls_free(h);
		return NULL;
	}
	snprintf(h->host, sizeof(h->host), "%s", p->host);
	/* an address literal has no DNS answer to be secure or bogus: an insecure one */
	struct tls_decide_input in = {
		.mx_host = h->host,
		.mx_dnssec = p->mx_secure && p->validating ? TLS_DECIDE_DNSSEC_SECURE : TLS_DECIDE_DNSSEC_INSECURE,
		.addr_dnssec = p->addr_secure && p->validating ? TLS_DECIDE_DNSSEC_SECURE : TLS_DECIDE_DNSSEC_INSECURE,
		.tlsa_state = host_tls_tlsa_state(tlsa),
		.tlsa = h->records,
		.tlsa_count = h->record_count,
		.sts_state = p->sts_state,
		.sts = p->sts,
		.requiretls = p->requiretls,
		.tls_required_no = p->tls_required_no,
		.global = p->global,
		.override = host_tls_override(p->override),
	};
	if (p->literal) {
		/* the decision wants a host name; a literal gets what [delivery] tls and the overrides say */
		in.mx_host = "address-literal.invalid";
	}
	tls_decide_mx(&in, &h->decision);
	switch (h->decision.action) {
	case TLS_DECIDE_SKIP: h->client_tls = DELIVERY_TLS_NONE; break;
	case TLS_DECIDE_CLEAR: h->client_tls = DELIVERY_TLS_NONE; break;
	case TLS_DECIDE_MAY: h->client_tls = DELIVERY_TLS_OPPORTUNISTIC; break;
	case TLS_DECIDE_ENCRYPT: h->client_tls = DELIVERY_TLS_ENCRYPT; break;
	case TLS_DECIDE_VERIFY: h->client_tls = DELIVERY_TLS_REQUIRED; break;
	case TLS_DECIDE_DANE: h->client_tls = DELIVERY_TLS_DANE; break;
	}
	for (size_t i = 0; i < h->decision.tlsa_count && i < TLS_DECIDE_TLSA_MAX; i++)
		h->dane[h->dane_count++] = *h->decision.tlsa[i];
	if (p->literal)
		for (size_t i = 0; i < h->decision.name_count; i++)
			h->decision.names[i] = h->host;
	return h;
}

void host_tls_free(struct host_tls *h)
{
	if (h == NULL)
		return;
	free(h->records);
	free(h->data);
	free(h);
}
