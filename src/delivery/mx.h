/* mx.h — where mail for a domain goes (RFC 5321 §5.1): the MX hosts in the order to try, each with
 * its addresses, or why there is nowhere to go. Asynchronous, on the loop thread, over net/dns.h. */
#ifndef MAILWERK_DELIVERY_MX_H
#define MAILWERK_DELIVERY_MX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/dns_parse.h"
#include "util/result.h"

struct dns;
struct mx_query;

/* Hosts tried per domain and addresses per host; the rest of a larger set is left out. */
#define MX_HOSTS_MAX 16
#define MX_ADDRS_MAX 8

enum mx_status {
	MX_STATUS_OK = 0,     /* at least one target with an address */
	MX_STATUS_TEMPFAIL,   /* 4.4.3: a DNS failure that may pass (SERVFAIL, timeout, DNSSEC bogus): defer */
	MX_STATUS_NXDOMAIN,   /* 5.1.2: the domain does not exist */
	MX_STATUS_NULL_MX,    /* 5.1.10: RFC 7505 null MX, the domain accepts no mail */
	MX_STATUS_NO_ADDRESS, /* 5.1.2 (no MX, no address) or 5.4.4 (no MX host has an address) */
	MX_STATUS_BAD_DOMAIN, /* 5.1.2: not a domain name or address literal we can route */
};
const char *mx_status_str(enum mx_status s);

struct mx_target {
	char host[DNS_HOST_SIZE]; /* the MX exchange; the domain itself (implicit); or the literal "[...]" */
	uint16_t pref;
	bool implicit;            /* RFC 5321 §5.1 implicit MX (no MX records), or an address literal */
	bool secure;              /* its A and AAAA answers were DNSSEC-validated (for DANE, RFC 7672 §2.2) */
	size_t addr_count;        /* >= 1 */
	struct dns_addr addrs[MX_ADDRS_MAX]; /* IPv4 first, then IPv6 */
};

struct mx_result {
	enum mx_status status;
	enum result result;     /* OK, TEMPFAIL or PERMFAIL: what delivery does with it */
	const char *enhanced;   /* RFC 3463 code for a failure ("5.1.10"), "" for OK */
	char reason[512];       /* one human sentence for logs and bounces */
	const char *domain;
	bool mx_secure;         /* the MX answer (or its absence) was DNSSEC-validated */
	bool incomplete;        /* some host or address family was left out after a temporary failure */
	size_t count;
	struct mx_target targets[MX_HOSTS_MAX]; /* in the order to try */
};

/* Called once on the loop thread, never from inside mx_resolve; r is valid during the call only. */
typedef void mx_done_fn(void *arg, const struct mx_result *r);

/* Starts resolving domain (a domain name, or an address literal "[192.0.2.1]" / "[IPv6:...]",
 * which skips DNS). The handle is valid until done has returned or mx_cancel; NULL (and no callback)
 * when memory ran out. Cancel every query before dns_free(d). */
struct mx_query *mx_resolve(struct dns *d, const char *domain, mx_done_fn *done, void *arg);
/* The same for one named host (a smarthost): its A and AAAA addresses, no MX lookup. */
struct mx_query *mx_resolve_host(struct dns *d, const char *host, mx_done_fn *done, void *arg);
/* done is not called after this. A no-op from inside done. */
void mx_cancel(struct mx_query *q);

#endif
