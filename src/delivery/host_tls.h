/* host_tls.h — the TLS one MX host gets, made concrete: the TLSA answer (RFC 7672 §2.2) and the
 * host's DNSSEC state, with the domain's MTA-STS policy, go through tls_decide_mx, and the decision becomes the SMTP client's TLS
 * policy, with copies of the DANE records it needs. The pool makes the TLSA lookup (only when
 * host_tls_wants_tlsa says so) and hands its answer here. */
#ifndef MAILWERK_DELIVERY_HOST_TLS_H
#define MAILWERK_DELIVERY_HOST_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/conf.h"
#include "delivery/client.h"
#include "delivery/tls_decide.h"
#include "net/dns_parse.h"

struct host_tls_params {
	const char *host;      /* the MX host name (or the domain, for an implicit MX) */
	bool literal;          /* an address literal: no DNS, no DANE */
	bool validating;       /* the resolver validates DNSSEC (a trust anchor is configured) */
	bool mx_secure;        /* the MX answer validated */
	bool addr_secure;      /* the host's address answers validated */
	unsigned port;         /* the SMTP port, for _PORT._tcp.HOST (RFC 6698 §3) */
	bool requiretls, tls_required_no; /* the message's (RFC 8689) */
	enum conf_tls_policy global;      /* [delivery] tls */
	enum conf_tls_override override;  /* [tls_policy] of the destination domain, 0: none */
	/* the destination's MTA-STS policy (RFC 8461) as the cache answered (delivery/mtasts_cache.h) */
	enum tls_decide_sts_state sts_state;
	const struct mtasts_policy *sts;  /* NULL: none known */
};

struct host_tls {
	struct tls_decision decision;
	enum delivery_tls_policy client_tls; /* unless decision.action is TLS_DECIDE_SKIP */
	struct dns_tlsa dane[TLS_DECIDE_TLSA_MAX]; /* DANE: the usable records, for the client job */
	size_t dane_count;
	/* owned copies of the TLSA answer and the names the decision points to */
	struct dns_tlsa *records;
	size_t record_count;
	unsigned char *data;
	char host[DNS_HOST_SIZE];
};

/* Whether a TLSA lookup is to be made for the host (RFC 7672 §2.2.1, §2.2.3: only when the MX and
 * the address answers validated); its name is written to name_r (_PORT._tcp.HOST). */
bool host_tls_wants_tlsa(const struct host_tls_params *p, char *name_r, size_t name_size);

/* Decides for the host; tlsa is the answer of the lookup host_tls_wants_tlsa asked for, NULL when
 * none was made. NULL when memory ran out. */
struct host_tls *host_tls_decide(const struct host_tls_params *p, const struct dns_result *tlsa);
void host_tls_free(struct host_tls *h);

#endif
