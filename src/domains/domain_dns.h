/* domain_dns.h — the DNS records a mail domain needs and whether they are published right. One
 * implementation behind two faces: `mailwerk dns records` / `dns check` (cli/cli_dnsrecords.c) and the
 * API's /domains (records[] and verify, http/domains.c). The check is a step function in the shape of
 * auth/auth_dns.h, so the CLI runs it with cli_dns_run and the server with net/dns_drive on its loop;
 * it judges what is published with the evaluators inbound mail gets (SPF by evaluating the record for
 * our addresses, DKIM by comparing the key, DMARC by the RFC 9989 tree walk). */
#ifndef MAILWERK_DOMAINS_DOMAIN_DNS_H
#define MAILWERK_DOMAINS_DOMAIN_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "auth/auth_dns.h"
#include "auth/dkim_key.h"
#include "keys/dkim_store.h"

#define DOMAIN_DNS_IPS_MAX 8

enum domain_rec_kind {
	DOMAIN_REC_ADDRESS,    /* the server's host name A/AAAA, one per address we send from */
	DOMAIN_REC_MX,         /* the domain's MX names the server (Resend's "Receiving") */
	DOMAIN_REC_SPF,        /* the domain's TXT v=spf1 authorizes our addresses */
	DOMAIN_REC_DKIM,       /* SELECTOR._domainkey TXT: one per active key, matching it */
	DOMAIN_REC_RETURN_MX,  /* the return path host's MX (API mail's VERP bounces come back here) */
	DOMAIN_REC_RETURN_SPF, /* the return path host's TXT v=spf1 (RFC 7208 §2.4 checks MAIL FROM) */
	DOMAIN_REC_DMARC,      /* _dmarc TXT, found by the tree walk */
	DOMAIN_REC_PTR,        /* reverse name of each address names the server, which resolves back */
	DOMAIN_REC_MTA_STS,    /* _mta-sts TXT v=STSv1 with the id of the policy we serve (recommended) */
	DOMAIN_REC_MTA_STS_HOST, /* mta-sts.DOMAIN names this server, which serves the policy (recommended) */
	DOMAIN_REC_TLS_RPT,    /* _smtp._tls TXT v=TLSRPTv1 (recommended) */
	DOMAIN_REC_TLSA,       /* _25._tcp.HOST TLSA 3 1 1 of the key served (recommended; needed once
				* published, as DANE senders defer mail when none matches) */
	DOMAIN_REC_TLSA_NEXT,  /* the same for the key staged for the next certificate (recommended) */
};
const char *domain_rec_kind_str(enum domain_rec_kind k); /* "mx", "spf", "dkim", "return_mx", ..., "mta_sts_host" */

enum domain_rec_status {
	DOMAIN_REC_NOT_STARTED, /* not checked (yet) */
	DOMAIN_REC_VERIFIED,    /* published and right */
	DOMAIN_REC_FAILED,      /* missing or wrong: problem says which, value is the fix */
	DOMAIN_REC_TEMPFAIL,    /* the lookup failed: try again */
};
const char *domain_rec_status_str(enum domain_rec_status s); /* "not_started", "verified", "failed", "temporary_failure" */

struct domain_rec {
	enum domain_rec_kind kind;
	bool needed;   /* false: recommended (MTA-STS, TLS-RPT); a failed one is "missing", not "wrong" */
	char *name;    /* absolute owner name, no trailing dot ("s1._domainkey.example.org") */
	const char *type; /* "MX", "TXT", "A", "AAAA", "PTR", "CNAME" */
	unsigned priority; /* MX only */
	char *value;   /* what to publish: TXT text unquoted and unsplit, MX/PTR host, an address */
	char *comment; /* one line on what it is for, for the zone-file output */
	enum domain_rec_status status;
	char *problem; /* after the check, when not verified: what is wrong, as a sentence naming the
	                * record ("MX of example.org: missing") */
	char *found;   /* after the check, when verified: what was found, as a sentence ("SPF of
	                * example.org authorizes 192.0.2.1 (2 of 10 lookups)") */
	char *note;    /* worth a word ("p=none only monitors ...", an answer DNSSEC did not
	                * validate), else NULL */
	bool dnssec_bogus; /* TLSA: the answer failed DNSSEC validation (the fix is in the zone's signing) */
};

struct domain_dns_key {
	const char *selector;
	const EVP_PKEY *pkey; /* the caller keeps it alive as long as the domain_dns */
	enum dkim_key_type type;
	unsigned bits;
};

/* A domain's active keys from the key store (domain_keys.c), for domain_dns_input: each pkey is
 * referenced until domain_keys_clear. At most one active key per algorithm signs, so the limit is
 * far off. domain_keys_load: 0, or -1 with a sentence. Any thread (it reads files). */
#define DOMAIN_KEYS_MAX 16
struct domain_keys {
	struct domain_dns_key k[DOMAIN_KEYS_MAX];
	char selectors[DOMAIN_KEYS_MAX][DKIM_SELECTOR_MAX + 1];
	size_t n;
};
int domain_keys_load(const char *data_dir, const char *domain, struct domain_keys *ks, char *err, size_t err_size);
void domain_keys_clear(struct domain_keys *ks);

struct domain_dns_input {
	const char *domain;      /* the mail domain, lower case */
	const char *hostname;    /* [server] hostname: the MX target and the name the PTRs give */
	const char *return_path; /* the return path host of API mail: custom, else [api] return_path_label.DOMAIN */
	const char *const *ips;  /* addresses the server sends from; nips 0: the check looks up the host name's */
	size_t nips;             /* at most DOMAIN_DNS_IPS_MAX */
	const struct domain_dns_key *keys; /* the domain's active DKIM keys */
	size_t nkeys;
	int64_t now;             /* unix seconds: SPF's clock (and the MTA-STS id when sts_id is "") */
	char sts_id[40];         /* the id of the MTA-STS policy served (delivery/mtasts_rules.h
				  * mtasts_policy_id of mtasts_served_text); "": a time stamp */
	/* DANE (RFC 7672 §3.1): SHA-256 of the SubjectPublicKeyInfo of the key the SMTP listener
	 * serves and of the one staged next (domains/domain_tlsa.h), 32 octets each; NULL: no TLSA
	 * record for it */
	const unsigned char *tlsa_current, *tlsa_next;
	bool dnssec_validating;  /* the check's resolver validates (so an insecure answer is unsigned) */
};

/* The most questions one check asks: below net/dns_drive's DNS_DRIVE_MAX_QUESTIONS, so that a
 * hostile zone (SPF records fanning out for every address) ends the check with its records
 * TEMPFAIL ("not checked") rather than the driver giving up on it. */
#define DOMAIN_DNS_QUESTIONS_MAX 480

struct domain_dns;

/* The id of the MTA-STS policy this server serves (the same for every local domain: [mta_sts]). */
struct conf;
void domain_dns_sts_id(const struct conf *c, char *id_r, size_t size);

/* The records for in, all DOMAIN_REC_NOT_STARTED, in the order above (the DKIM ones in the order of
 * in->keys), except the DKIM placeholder of a domain without keys ("_domainkey.DOMAIN", value NULL),
 * FAILED from the start. Copies what it keeps from in except the keys' pkeys. NULL when out of
 * memory, or when in is not usable (a NULL name, nips past DOMAIN_DNS_IPS_MAX, an ip that is not
 * an IPv4 or IPv6 address). */
struct domain_dns *domain_dns_new(const struct domain_dns_input *in);
void domain_dns_free(struct domain_dns *d);

/* The records; the count can grow during the check when nips was 0 (ADDRESS and PTR records for the
 * addresses found, put in the order above), and a pointer from domain_dns_rec is valid until then. */
size_t domain_dns_count(const struct domain_dns *d);
const struct domain_rec *domain_dns_rec(const struct domain_dns *d, size_t i);

/* auth_step_fn: checks every record, one question at a time; restartable with a fresh domain_dns
 * only. With the addresses given, an ADDRESS record is right when the host name resolves to it, and
 * a PTR record when the reverse name names the host name (the way back is the ADDRESS record's:
 * one missing A record is one item wrong, not two). */
enum auth_step domain_dns_check_step(void *d, const struct dns_result *answer, struct auth_query *q_r);

/* After the check: needed records not verified, recommended ones not verified; and whether every
 * record of the kind is verified (false when there is none; DKIM without a key has its FAILED
 * placeholder). */
unsigned domain_dns_needed_bad(const struct domain_dns *d);
unsigned domain_dns_recommended_missing(const struct domain_dns *d);
bool domain_dns_kind_verified(const struct domain_dns *d, enum domain_rec_kind k);

#endif
