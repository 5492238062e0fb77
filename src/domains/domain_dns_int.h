/* domain_dns_int.h — what domain_dns.c (the records) and domain_dns_check.c (the check) share;
 * nothing else includes it. */
#ifndef MAILWERK_DOMAINS_DOMAIN_DNS_INT_H
#define MAILWERK_DOMAINS_DOMAIN_DNS_INT_H

#include <arpa/inet.h>

#include "domains/domain_dns.h"

struct spf_eval;
struct dmarc_walk;

struct domain_dns_item {
	struct domain_rec rec;     /* first: domain_dns_rec hands out &item->rec */
	const EVP_PKEY *pkey;      /* DKIM: the key the published one must match */
	struct dns_addr addr;      /* ADDRESS, PTR: the address (family 0 for the "no address" record) */
	char ip[INET6_ADDRSTRLEN]; /* the same as text */
	unsigned char tlsa[32];    /* TLSA, TLSA_NEXT: the SPKI SHA-256 a 3 1 1 record must carry */
};

struct domain_dns {
	char *domain, *hostname, *return_path;
	struct domain_dns_item *items;
	size_t n, cap;
	struct dns_addr addrs[DOMAIN_DNS_IPS_MAX];
	char ips[DOMAIN_DNS_IPS_MAX][INET6_ADDRSTRLEN];
	size_t nips;
	int64_t now;
	char sts_id[40]; /* the MTA-STS id the TXT record must carry; "" when it was not given */
	bool validating; /* the check's resolver validates DNSSEC */

	/* the check (domain_dns_check.c) */
	bool started, done;
	bool discovering;  /* nips was 0: asking the host name's A and AAAA first */
	size_t cur;        /* the record being checked */
	unsigned sub;      /* its step */
	size_t ipi;        /* SPF: the address being evaluated */
	unsigned spf_lookups;
	struct spf_eval *spf;
	struct dmarc_walk *walk;
	unsigned asked;    /* questions so far (DOMAIN_DNS_QUESTIONS_MAX) */
	char lookup_why[256]; /* discovery: why a lookup failed, "" when none did */
};

/* A malloc'd sprintf; NULL when out of memory. */
char *domain_dns_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Sets r's status and its sentence: found for VERIFIED, problem otherwise (out of memory leaves the
 * sentence NULL). */
void domain_dns_verdict(struct domain_rec *r, enum domain_rec_status s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Puts a record at index at (d->n appends); takes name, value and comment, which are freed when it
 * fails (a NULL name or comment is out of memory; value may be NULL). NULL when out of memory. */
struct domain_dns_item *domain_dns_insert(struct domain_dns *d, size_t at, enum domain_rec_kind kind, bool needed,
					  const char *type, char *name, char *value, char *comment);

/* The ADDRESS and PTR records of d->addrs[ipi], put at index at (d->n appends). NULL when out of
 * memory. */
struct domain_dns_item *domain_dns_address_insert(struct domain_dns *d, size_t at, size_t ipi);
struct domain_dns_item *domain_dns_ptr_insert(struct domain_dns *d, size_t at, size_t ipi);

/* The check's sub-evaluators, freed (domain_dns_free calls it). */
void domain_dns_check_clear(struct domain_dns *d);

#endif
